"""BI tools as consumers: LookML projects, Metabase and Tableau metadata exports.

Each BI object people open (a Looker explore, a Metabase question, a Tableau workbook or
published data source) becomes a reader of kind ``bi`` of the tables under it, with the columns its
fields use, owned by the team its folder (LookML project, Metabase collection, Tableau project)
is mapped to.

- LookML (``*.lkml``, parsed with ``lkml``): a view reads its ``sql_table_name`` through its
  dimensions' and measures' ``${TABLE}.column`` (a field without ``sql`` is ``${TABLE}.<name>``),
  or whatever its ``derived_table: {sql: ...}`` reads (``${view.SQL_TABLE_NAME}`` replaced by that
  view's table, Liquid tags dropped); an explore reads the views it starts from and joins. The
  folder is the project: the source folder's name.
- Metabase: the JSON of ``GET /api/card`` (a list, or ``{"cards": [...], "tables": [...]}`` with
  the ``tables`` of ``GET /api/database/{id}/metadata`` to name the tables and fields that
  structured questions use by id). Native questions are parsed (``{{tags}}`` and ``[[optional]]``
  clauses neutralised). The folder is the collection.
- Tableau: the Metadata API's GraphQL answer for ``workbooks`` and ``publishedDatasources``
  (``name``, ``projectName``, ``upstreamTables {fullName}``, ``fields {upstreamColumns {name
  table {fullName}}}``). The folder is the project.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lkml
import orjson

from app.discovery.aggregate import Malformed
from rules.querylog import QueryNotParsed, table_reads


@dataclass(frozen=True)
class BiRead:
    """One BI object reading one table."""

    reader: str
    relation: str
    columns: frozenset[str]
    every_column: bool
    folder: str | None


# --- LookML -------------------------------------------------------------------------------------

_TABLE_COLUMN = re.compile(r"\$\{TABLE\}\s*\.\s*(\"[^\"]+\"|`[^`]+`|\w+)", re.IGNORECASE)
_SQL_TABLE_NAME = re.compile(r"\$\{(\w+)\.SQL_TABLE_NAME\}", re.IGNORECASE)
_LIQUID = re.compile(r"\{%.*?%\}|\{\{.*?\}\}", re.DOTALL)
_FIELD_REF = re.compile(r"\$\{[^}]*\}")


@dataclass
class _View:
    name: str
    table: str | None
    columns: set[str]
    every_column: bool
    derived_sql: str | None


def lookml_reads(folder: Path, *, dialect: str) -> Iterator[BiRead | Malformed]:
    """The explores (and views no explore uses) of a LookML project folder, as reads of its tables."""
    files = (
        (str(path.relative_to(folder)), path.read_text(encoding="utf-8", errors="replace"))
        for path in sorted(folder.rglob("*.lkml"))
    )
    return lookml_files(files, project=folder.name, dialect=dialect)


def lookml_files(files: Iterable[tuple[str, str]], *, project: str, dialect: str) -> Iterator[BiRead | Malformed]:
    """Like :func:`lookml_reads`, over ``(path, text)`` pairs (a repository installed with the App)."""
    views: dict[str, _View] = {}
    explores: list[tuple[str, dict[str, Any]]] = []
    for path, text in files:
        try:
            parsed = lkml.load(text)
        except Exception as error:  # noqa: BLE001 - lkml raises bare syntax errors; one file never stops the rest
            yield Malformed(path, f"LookML not parsed: {error}")
            continue
        name = path.rsplit("/", 1)[-1]
        model = name.split(".")[0]
        for view in parsed.get("views", []):
            if isinstance(view, dict) and view.get("name"):
                views[view["name"]] = _view(view)
        for explore in parsed.get("explores", []):
            if isinstance(explore, dict) and explore.get("name"):
                explores.append((f"{model}.{explore['name']}" if name.endswith(".model.lkml") else explore["name"], explore))
    tables = {name: v.table for name, v in views.items() if v.table}
    used: set[str] = set()
    for name, explore in explores:
        members = [explore.get("from") or explore["name"]]
        members += [j.get("from") or j.get("name") for j in explore.get("joins", []) if isinstance(j, dict)]
        for member in members:
            if member in views:
                used.add(member)
                yield from _view_reads(views[member], f"looker explore {name}", project, tables, dialect)
    for name, view in sorted(views.items()):
        if name not in used:
            yield from _view_reads(view, f"looker view {name}", project, tables, dialect)


def _view(view: Mapping[str, Any]) -> _View:
    table = view.get("sql_table_name")
    derived = view.get("derived_table") if isinstance(view.get("derived_table"), dict) else None
    columns: set[str] = set()
    for key in ("dimensions", "measures", "dimension_groups", "filters"):
        for field in view.get(key, []) or []:
            if not isinstance(field, dict):
                continue
            sql = field.get("sql")
            if sql is None and key in ("dimensions", "dimension_groups") and field.get("name"):
                columns.add(str(field["name"]).lower())
                continue
            for match in _TABLE_COLUMN.finditer(str(sql or "")):
                columns.add(match.group(1).strip('"`').lower())
    return _View(
        name=str(view.get("name")),
        table=str(table).strip().rstrip(";").strip().strip('"').lower() if table else None,
        columns=columns,
        every_column=False,
        derived_sql=str(derived.get("sql")) if derived and derived.get("sql") else None,
    )


def _view_reads(
    view: _View, reader: str, project: str, tables: Mapping[str, str], dialect: str
) -> Iterator[BiRead | Malformed]:
    if view.table and not view.derived_sql:
        yield BiRead(reader, view.table, frozenset(view.columns), not view.columns, project)
        return
    if not view.derived_sql:
        return
    sql = _SQL_TABLE_NAME.sub(lambda m: tables.get(m.group(1), m.group(1)), view.derived_sql)
    sql = _FIELD_REF.sub("NULL", _LIQUID.sub(" ", sql)).rstrip().rstrip(";")
    try:
        found = table_reads(sql, dialect=dialect)
    except QueryNotParsed as error:
        yield Malformed(f"view {view.name}", f"derived_table SQL not parsed: {error}")
        return
    for read in found:
        yield BiRead(reader, read.relation, read.columns, read.every_column, project)


# --- Metabase -----------------------------------------------------------------------------------

_TEMPLATE_TAG = re.compile(r"\{\{[^}]*\}\}")
_OPTIONAL = re.compile(r"\[\[(.*?)\]\]", re.DOTALL)


def metabase_reads(path: Path, *, dialect: str) -> Iterator[BiRead | Malformed]:
    data = _load_json(path)
    if isinstance(data, Malformed):
        yield data
        return
    cards = data.get("cards") if isinstance(data, dict) else data
    if not isinstance(cards, list):
        yield Malformed(path.name, "expected a list of cards (GET /api/card) or {\"cards\": [...]}")
        return
    tables: dict[int, tuple[str, dict[int, str]]] = {}
    for table in (data.get("tables") or []) if isinstance(data, dict) else []:
        if isinstance(table, dict) and isinstance(table.get("id"), int):
            name = ".".join(str(p) for p in (table.get("schema"), table.get("name")) if p).lower()
            fields = {f["id"]: str(f.get("name", "")).lower() for f in table.get("fields") or []
                      if isinstance(f, dict) and isinstance(f.get("id"), int)}
            tables[table["id"]] = (name, fields)
    for index, card in enumerate(cards):
        if not isinstance(card, dict) or not isinstance(card.get("dataset_query"), dict):
            yield Malformed(f"{path.name}[{index}]", "a card without dataset_query")
            continue
        collection = card.get("collection") if isinstance(card.get("collection"), dict) else {}
        folder = str(collection.get("name")) if collection.get("name") else None
        reader = f"metabase card {card.get('id', index)} {card.get('name') or ''}".strip()
        query = card["dataset_query"]
        if query.get("type") == "native":
            sql = str((query.get("native") or {}).get("query") or "")
            sql = _TEMPLATE_TAG.sub("NULL", _OPTIONAL.sub(" ", sql))
            try:
                found = table_reads(sql, dialect=dialect)
            except QueryNotParsed as error:
                yield Malformed(reader, f"native query not parsed: {error}")
                continue
            for read in found:
                yield BiRead(reader, read.relation, read.columns, read.every_column, folder)
            continue
        structured = query.get("query") or {}
        table_id = structured.get("source-table", card.get("table_id"))
        if not isinstance(table_id, int) or table_id not in tables:
            yield Malformed(reader, f"source table {table_id!r} is not among the exported tables")
            continue
        name, fields = tables[table_id]
        used = {fields[i] for i in _field_ids(structured) | _field_ids(card.get("result_metadata")) if i in fields}
        yield BiRead(reader, name, frozenset(used), not used, folder)


def _field_ids(value: Any) -> set[int]:
    """Every ``["field", <id>, ...]`` reference in an MBQL query or result metadata."""
    found: set[int] = set()
    if isinstance(value, list):
        if len(value) >= 2 and value[0] in ("field", "field-id") and isinstance(value[1], int):
            found.add(value[1])
        for item in value:
            found |= _field_ids(item)
    elif isinstance(value, dict):
        for item in value.values():
            found |= _field_ids(item)
    return found


# --- Tableau ------------------------------------------------------------------------------------


def tableau_reads(path: Path) -> Iterator[BiRead | Malformed]:
    data = _load_json(path)
    if isinstance(data, Malformed):
        yield data
        return
    root = data.get("data", data) if isinstance(data, dict) else {}
    found = False
    for kind, label in (("workbooks", "workbook"), ("publishedDatasources", "datasource")):
        for index, item in enumerate(root.get(kind) or []):
            found = True
            if not isinstance(item, dict) or not item.get("name"):
                yield Malformed(f"{kind}[{index}]", "an object without a name")
                continue
            reader = f"tableau {label} {item['name']}"
            folder = str(item.get("projectName")) if item.get("projectName") else None
            columns: dict[str, set[str]] = {}
            for table in item.get("upstreamTables") or []:
                if isinstance(table, dict) and _tableau_name(table):
                    columns.setdefault(_tableau_name(table), set())
            sources = [item, *(d for d in item.get("embeddedDatasources") or [] if isinstance(d, dict))]
            for source in sources:
                for field in source.get("fields") or []:
                    for column in (field.get("upstreamColumns") or []) if isinstance(field, dict) else []:
                        table = column.get("table") if isinstance(column, dict) else None
                        if isinstance(table, dict) and _tableau_name(table) and column.get("name"):
                            columns.setdefault(_tableau_name(table), set()).add(str(column["name"]).lower())
            for relation, used in sorted(columns.items()):
                yield BiRead(reader, relation, frozenset(used), not used, folder)
    if not found:
        yield Malformed(path.name, "no workbooks or publishedDatasources (a Metadata API answer was expected)")


def _tableau_name(table: Mapping[str, Any]) -> str:
    full = table.get("fullName")
    if isinstance(full, str) and full.strip():
        return ".".join(p.strip("[]\"` ").lower() for p in re.split(r"\]\.\[|\.", full.strip()) if p.strip("[]"))
    parts = [table.get("schema"), table.get("name")]
    return ".".join(str(p).lower() for p in parts if p)


def _load_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except (orjson.JSONDecodeError, OSError) as error:
        return Malformed(path.name, f"not valid JSON: {error}")


