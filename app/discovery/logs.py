"""Query-log exports, streamed: each warehouse's documented column layout read into rows.

Every format is a file of records: CSV with a header row, JSON lines, or a JSON array (read whole;
use JSON lines for large exports). A folder is every such file in it, in name order. What differs
between warehouses is only which column holds what, and the SQL dialect:

- ``snowflake``: ``ACCOUNT_USAGE.QUERY_HISTORY`` joined to ``ACCESS_HISTORY`` on ``QUERY_ID``
  (``QUERY_TEXT``, ``USER_NAME``, ``ROLE_NAME``, ``START_TIME``, ``DATABASE_NAME``,
  ``SCHEMA_NAME``, ``DIRECT_OBJECTS_ACCESSED``); the objects' column lists are used as recorded,
  the text is parsed only when they are absent.
- ``bigquery``: ``INFORMATION_SCHEMA.JOBS`` (``query``, ``user_email``, ``creation_time``,
  ``project_id``, ``referenced_tables``, ``job_type``); a query that cannot be parsed still reads
  its ``referenced_tables`` (every column).
- ``databricks``: ``system.query.history`` (``statement_text``, ``executed_by``, ``start_time``).
- ``redshift``: ``SYS_QUERY_HISTORY`` with the user's name (``query_text``, ``user_name``,
  ``start_time``, ``database_name``) or ``STL_QUERY`` (``querytxt``, ``usename``, ``starttime``).
- ``postgres``: a ``pg_stat_statements`` export joined to ``pg_roles`` (``query``, ``rolname``,
  ``calls``): it has no times, so its rows count as seen when read.
- ``jsonl``: anything else, one object a line: ``query``, ``user``, ``role``, ``time`` (and
  optionally ``database``, ``schema``, ``calls``).
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from app.discovery.aggregate import Malformed, QueryRow
from rules.querylog import TableRead

RECORD_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".json")
MAX_JSON_ARRAY = 256_000_000
"""A JSON array is parsed whole, so above this size it is refused with a message (JSON lines stream)."""
MAX_FIELD = 1 << 24
"""CSV fields up to 16 MiB (query texts are long); the default 128 KiB refuses real logs."""


@dataclass(frozen=True)
class Layout:
    """Where a warehouse's export keeps each thing (candidate column names, any case)."""

    kind: str
    dialect: str
    query: tuple[str, ...]
    user: tuple[str, ...] = ()
    role: tuple[str, ...] = ()
    time: tuple[str, ...] = ()
    database: tuple[str, ...] = ()
    schema: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()


LAYOUTS: dict[str, Layout] = {
    "snowflake": Layout("snowflake", "snowflake", ("query_text",), ("user_name",), ("role_name",),
                        ("start_time", "query_start_time"), ("database_name",), ("schema_name",)),
    "bigquery": Layout("bigquery", "bigquery", ("query",), ("user_email",), (), ("creation_time", "start_time"),
                       ("project_id",)),
    "databricks": Layout("databricks", "databricks", ("statement_text",), ("executed_by", "executed_as"), (),
                         ("start_time",)),
    "redshift": Layout("redshift", "redshift", ("query_text", "querytxt"), ("user_name", "usename"), (),
                       ("start_time", "starttime"), ("database_name", "database")),
    "postgres": Layout("postgres", "postgres", ("query",), ("usename",), ("rolname", "role"), (), ("datname",),
                       (), ("calls",)),
    "jsonl": Layout("jsonl", "postgres", ("query",), ("user",), ("role",), ("time", "timestamp"),
                    ("database",), ("schema",), ("calls", "count")),
}


def files_of(source: Path) -> list[Path]:
    """The record files of a file or folder, in name order."""
    if source.is_dir():
        return sorted(p for p in source.rglob("*") if p.is_file() and p.name.lower().endswith(RECORD_SUFFIXES))
    return [source]


def records(path: Path) -> Iterator[tuple[str, Mapping[str, Any] | str]]:
    """``(where, record)`` for each record of a file, streamed; a string record is a reason it
    could not be read."""
    name = path.name.lower()
    with path.open("rb") as handle:
        head = handle.read(1 << 12).lstrip()
    if name.endswith(".csv"):
        csv.field_size_limit(min(MAX_FIELD, sys.maxsize))
        with path.open(newline="", encoding="utf-8-sig", errors="replace") as text:
            reader = csv.DictReader(text)
            try:
                for number, row in enumerate(reader, start=2):
                    yield f"{path.name}:{number}", row
            except csv.Error as error:
                yield f"{path.name}:{reader.line_num}", f"CSV error: {error}"
        return
    if head.startswith(b"["):
        if path.stat().st_size > MAX_JSON_ARRAY:
            yield path.name, (
                f"a JSON array of {path.stat().st_size / 1e6:,.0f} MB is read whole; export JSON lines (one object a"
                f" line) above {MAX_JSON_ARRAY // 1_000_000} MB, which stream")
            return
        try:
            items = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as error:
            yield path.name, f"not valid JSON: {error}"
            return
        for index, item in enumerate(items):
            yield f"{path.name}[{index}]", item if isinstance(item, Mapping) else "not an object"
        return
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError as error:
                yield f"{path.name}:{number}", f"not valid JSON: {error}"
                continue
            yield f"{path.name}:{number}", item if isinstance(item, Mapping) else "not an object"


def query_rows(source: Path, layout: Layout, *, now: dt.datetime) -> Iterator[QueryRow | Malformed]:
    """The rows of every record file of ``source`` in ``layout``."""
    for path in files_of(source):
        for where, record in records(path):
            if isinstance(record, str):
                yield Malformed(where, record)
                continue
            yield row_of(record, layout, where, now=now)


@functools.lru_cache(maxsize=256)
def _lowered(keys: tuple[str, ...]) -> dict[str, str]:
    """Lower-case column name → the record's own key; exports repeat one header, so it is cached."""
    return {str(k).lower(): k for k in keys}


def _field(record: Mapping[str, Any], names: Sequence[str], lowered: Mapping[str, str]) -> Any:
    for name in names:
        key = lowered.get(name)
        if key is not None:
            value = record[key]
            if value not in (None, ""):
                return value
    return None


def row_of(record: Mapping[str, Any], layout: Layout, where: str, *, now: dt.datetime) -> QueryRow | Malformed:
    """One record as a :class:`QueryRow` (or why it is not one)."""
    lowered = _lowered(tuple(record))
    query = _field(record, layout.query, lowered)
    reads = _recorded_reads(record, layout, lowered)
    if not isinstance(query, str) and reads is None:
        return Malformed(where, f"no query text (expected {' or '.join(layout.query)})")
    if layout.kind == "bigquery":
        job_type = _field(record, ("job_type",), lowered)
        if job_type is not None and str(job_type).upper() != "QUERY":
            reads = ()
    if layout.time:
        raw_time = _field(record, layout.time, lowered)
        at = parse_time(raw_time)
        if at is None:
            return Malformed(where, f"no readable time in {'/'.join(layout.time)}: {str(raw_time)[:40]!r}")
    else:
        at = now
    calls = _field(record, layout.calls, lowered) if layout.calls else 1
    try:
        count = max(0, int(calls)) if calls is not None else 1
    except (TypeError, ValueError):
        return Malformed(where, f"calls is not a number: {str(calls)[:40]!r}")
    user, role = _field(record, layout.user, lowered), _field(record, layout.role, lowered)
    database, schema = _field(record, layout.database, lowered), _field(record, layout.schema, lowered)
    return QueryRow(
        query=query if isinstance(query, str) else None,
        user=str(user) if user is not None else None,
        role=str(role) if role is not None else None,
        at=at,
        database=str(database) if database is not None else None,
        schema=str(schema) if schema is not None else None,
        calls=count,
        reads=reads if reads is not None else None,
        fallback=referenced_tables(record) if layout.kind == "bigquery" else (),
    )


def _recorded_reads(record: Mapping[str, Any], layout: Layout, lowered: Mapping[str, str]) -> tuple[TableRead, ...] | None:
    """What the warehouse itself recorded the query read: Snowflake's accessed objects with their
    columns. None when the record says nothing (then the text is parsed)."""
    if layout.kind != "snowflake":
        return None
    objects = _json_value(_field(record, ("direct_objects_accessed",), lowered))
    if not isinstance(objects, list) or not objects:
        return None
    reads: list[TableRead] = []
    for item in objects:
        if not isinstance(item, Mapping) or not isinstance(item.get("objectName"), str):
            continue
        if str(item.get("objectDomain", "Table")).lower() not in ("table", "view", "materialized view", "external table"):
            continue
        columns = [c.get("columnName") for c in item.get("columns") or [] if isinstance(c, Mapping)]
        names = frozenset(str(c).lower() for c in columns if c)
        reads.append(TableRead(_object_name(item["objectName"]), names, every_column=not names))
    return tuple(reads)


def referenced_tables(record: Mapping[str, Any]) -> tuple[TableRead, ...]:
    """BigQuery's ``referenced_tables`` (project, dataset, table): read, columns unknown."""
    lowered = {str(k).lower(): k for k in record}
    tables = _json_value(_field(record, ("referenced_tables",), lowered))
    reads = []
    for item in tables if isinstance(tables, list) else []:
        if isinstance(item, Mapping) and item.get("table_id"):
            parts = [str(item[k]) for k in ("project_id", "dataset_id", "table_id") if item.get(k)]
            reads.append(TableRead(".".join(parts).lower(), frozenset(), every_column=True))
    return tuple(reads)


def _object_name(name: str) -> str:
    return ".".join(p.strip().strip('"').lower() for p in name.split("."))


def _json_value(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


_OFFSET = re.compile(r"\s*([+-]\d{2}):?(\d{2})$")


def parse_time(value: Any) -> dt.datetime | None:
    """A timestamp as exports write them: ISO 8601 (``Z``, offsets, a space for ``T``), with a
    trailing ``UTC`` or ``-0800``, or epoch seconds / milliseconds. Naive times are UTC."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return dt.datetime.fromtimestamp(seconds, dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    text = str(value).strip()
    if text.endswith(" UTC"):
        text = text[:-4]
    text = _OFFSET.sub(lambda m: f"{m.group(1)}:{m.group(2)}", text)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)
