"""The column types dbt gives a seed's table, from its CSV file.

``dbt seed`` reads the CSV with agate, which tries, per column, integer, number, date,
date-time, boolean and text in that order and keeps the first that fits every value (empty
cells and ``null`` fit any); the adapter then names the type in its warehouse's terms. A
``column_types`` config overrides a column's type. Knowing the types means a seed edited from
``1`` to ``1.5`` (integer → float) or to ``n/a`` (→ text) is a type change its readers see.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping

MAX_SEED_ROWS = 100_000
"""Rows read for inference: dbt reads them all, but a seed this long is not a seed."""

_INTEGER = re.compile(r"-?\d+")
_NUMBER = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")
_BOOLEAN = frozenset({"true", "false"})
_NULLS = frozenset({"", "null"})

ADAPTER_TYPES: Mapping[str, Mapping[str, str]] = {
    "bigquery": {"integer": "int64", "float": "float64", "date": "date", "datetime": "datetime",
                 "boolean": "bool", "text": "string"},
    "snowflake": {"integer": "integer", "float": "float8", "date": "date",
                  "datetime": "timestamp without time zone", "boolean": "boolean", "text": "text"},
    "databricks": {"integer": "bigint", "float": "double", "date": "date", "datetime": "timestamp",
                   "boolean": "boolean", "text": "string"},
    "spark": {"integer": "bigint", "float": "double", "date": "date", "datetime": "timestamp",
              "boolean": "boolean", "text": "string"},
}
"""How each adapter names agate's types (dbt's ``convert_*_type``); others as dbt's default."""

DEFAULT_TYPES: Mapping[str, str] = {
    "integer": "integer", "float": "float8", "date": "date", "datetime": "timestamp without time zone",
    "boolean": "boolean", "text": "text",
}


def _kind(values: Iterable[str]) -> str:
    """agate's type for one column's values, in its order of preference (each distinct value
    tested once: a seed's columns repeat a few codes over thousands of rows)."""
    present = [v for v in {v.strip() for v in set(values)} if v.lower() not in _NULLS]
    for kind, fits in (
        ("integer", lambda v: _INTEGER.fullmatch(v) is not None),
        ("float", lambda v: _NUMBER.fullmatch(v) is not None),
        ("date", lambda v: _DATE.fullmatch(v) is not None),
        ("datetime", lambda v: _DATETIME.fullmatch(v) is not None),
        ("boolean", lambda v: v.lower() in _BOOLEAN),
    ):
        if all(fits(v) for v in present):
            return kind
    return "text"


def csv_column_types(text: str, dialect: str | None) -> dict[str, str]:
    """Header name (as written) → the type ``dbt seed`` creates it with; empty for a file with no
    data rows (nothing to infer from) or that is not CSV."""
    try:
        rows = list(_rows(text))
    except csv.Error:
        return {}
    if len(rows) < 2:
        return {}
    header, body = rows[0], rows[1:]
    names = ADAPTER_TYPES.get(dialect or "", DEFAULT_TYPES)
    out: dict[str, str] = {}
    width = len(header)
    if all(len(row) == width for row in body):
        columns: list[Iterable[str]] = list(zip(*body, strict=True))  # an even file, at once
    else:
        columns = [[row[index] if index < len(row) else "" for row in body] for index in range(width)]
    for name, values in zip(header, columns, strict=True):
        name = name.strip()
        if name:
            out[name] = names[_kind(values)]
    return out


def project_column_types(seeds_config: Mapping[str, object], parts: tuple[str, ...]) -> dict[str, str]:
    """``column_types`` set for a seed in ``dbt_project.yml``'s ``seeds:`` block, along the path
    ``parts`` (project name, folders, seed name); deeper levels win. Names lower-cased."""
    out: dict[str, str] = {}
    tree: object = seeds_config
    for part in ("", *parts):
        if part:
            tree = tree.get(part) if isinstance(tree, Mapping) else None
        if not isinstance(tree, Mapping):
            break
        for key in ("column_types", "+column_types"):
            found = tree.get(key)
            if isinstance(found, Mapping):
                out.update({str(k).lower(): str(v) for k, v in found.items()})
    return out


def _rows(text: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text))
    rows = []
    for row in reader:
        rows.append(row)
        if len(rows) > MAX_SEED_ROWS:
            break
    return rows
