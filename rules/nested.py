"""Nested fields as columns of their own: BigQuery STRUCT (also inside ARRAY) and Snowflake OBJECT.

A reader of ``billing.tier`` breaks when ``tier`` leaves the ``billing`` struct, and a reader of
``billing.plan`` does not; so a struct's (or a typed object's) fields are named by their path
(``billing.tier``, ``items.sku`` through an array) with their own types, and compared one by one.
"""

from __future__ import annotations

import re
from functools import lru_cache

from sqlglot import exp

_CONTAINERS = frozenset({exp.DataType.Type.STRUCT, exp.DataType.Type.OBJECT})
MAX_DEPTH = 8


@lru_cache(maxsize=4096)
def nested_fields(type_text: str, dialect: str | None) -> dict[str, str]:
    """``{"tier": "STRING", "address.city": "STRING"}``: every field path under a struct/object
    type with its type; empty for any other type (or one sqlglot cannot read)."""
    try:
        datatype = exp.DataType.build(type_text, dialect=dialect or None, udt=False)
    except Exception:  # noqa: BLE001 - an unreadable type has no fields we can name
        return {}
    found: dict[str, str] = {}
    _walk(datatype, "", found, dialect, 0)
    return found


def _walk(datatype: exp.DataType, prefix: str, found: dict[str, str], dialect: str | None, depth: int) -> None:
    if depth > MAX_DEPTH:
        return
    if datatype.this == exp.DataType.Type.ARRAY and datatype.expressions:
        inner = datatype.expressions[0]
        if isinstance(inner, exp.DataType):
            _walk(inner, prefix, found, dialect, depth + 1)
        return
    if datatype.this not in _CONTAINERS:
        return
    for field in datatype.expressions:
        kind = field.args.get("kind") if isinstance(field, exp.ColumnDef) else None
        if not isinstance(kind, exp.DataType) or not field.name:
            continue
        path = f"{prefix}{field.name.lower()}"
        found[path] = kind.sql(dialect=dialect or None)
        _walk(kind, path + ".", found, dialect, depth + 1)


def field_named(sql: str | None, column: str, field_path: str) -> bool:
    """Whether a reader's SQL names a field of ``column`` (``billing.tier``, ``billing:tier``,
    ``billing['tier']``, or ``item.qty`` over ``unnest(items) as item``): the column and the last
    part of the path, each as a word. A name that only appears elsewhere over-asks, never misses."""
    if not sql:
        return True  # nothing to look at: assume it reads the field
    leaf = field_path.rsplit(".", 1)[-1]
    lowered = sql.lower()
    return all(
        re.search(rf"(?<![\w$]){re.escape(word.lower())}(?![\w$])", lowered) is not None for word in (column, leaf)
    )
