"""What a query read, column by column, from its text: the parsing half of consumer discovery.

A warehouse's query log says who ran which SQL; this module says which relations and columns that
SQL read. Each statement is qualified by sqlglot against the schemas Tessera knows (so ``select *``
expands to real columns, unqualified columns find their table and unqualified tables the session's
schema), then every scope is walked: a column whose source is a table (not a CTE or a subquery) is
a read of that table. CTEs and subqueries are followed to the tables underneath; a view is a
relation of its own, and the engine's lineage carries a change through it.

``select *`` over a table whose columns are unknown reads every column; ``count(*)`` reads no
column (only asset-wide changes reach it). A query sqlglot cannot parse raises
:class:`QueryNotParsed`: callers count it and carry on.

Logs repeat the same query shapes millions of times with different literals, so
:class:`ReadCache` keeps the answers of recent shapes (literals and whitespace folded away),
bounded in size.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, SchemaError, SqlglotError, TokenError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope

WRITE_STATEMENTS = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create)
"""Statements whose target is written, not read (their SELECT parts still read)."""


INTERNAL_ERRORS = (SqlglotError, RecursionError, ValueError, KeyError, AttributeError, TypeError, IndexError)
"""What sqlglot may raise on text it does not understand (beyond its own errors): one odd query in a
log of millions is counted, never the end of the run."""


class QueryNotParsed(ValueError):
    """sqlglot could not parse (or qualify) the query text."""


@dataclass(frozen=True)
class TableRead:
    """One relation a query read: the columns it used, or every column (an unexpanded ``*``)."""

    relation: str
    """Lower-case dotted name as the warehouse knows it (``db.schema.table`` or ``schema.table``)."""
    columns: frozenset[str] = frozenset()
    every_column: bool = False


Schemas = Mapping[str, Iterable[str]]
"""Known relations (lower-case dotted names) and their column names, for ``select *`` and
unqualified columns."""


def table_reads(
    sql: str,
    *,
    dialect: str,
    schemas: Schemas | None = None,
    database: str | None = None,
    default_schema: str | None = None,
) -> tuple[TableRead, ...]:
    """The relations and columns ``sql`` reads (every statement of it), merged per relation.

    ``database`` and ``default_schema`` are the session's defaults: unqualified table names get
    them. Raises :class:`QueryNotParsed` when sqlglot cannot read the text."""
    try:
        statements = sqlglot.parse(sql, dialect=dialect)
    except (ParseError, TokenError) as error:
        raise QueryNotParsed(_first_line(error)) from None
    except INTERNAL_ERRORS as error:
        raise QueryNotParsed(_first_line(error)) from None
    nested = _nested_schema(schemas or {})
    reads: dict[str, _Acc] = {}
    for statement in statements:
        if statement is None or isinstance(statement, exp.Command):
            continue
        try:
            qualified = _qualified(statement, dialect, nested, default_schema)
            scopes = traverse_scope(qualified)
        except INTERNAL_ERRORS as error:
            raise QueryNotParsed(_first_line(error)) from None
        targets = _write_targets(qualified)
        for scope in scopes:
            _scope_reads(scope, schemas or {}, database, targets, reads)
    return tuple(
        TableRead(name, frozenset(acc.columns), acc.every) for name, acc in sorted(reads.items())
    )


def _qualified(
    statement: exp.Expression, dialect: str, nested: Mapping[str, object], default_schema: str | None
) -> exp.Expression:
    """The statement with tables (and, where sqlglot can tell, columns) qualified.

    Without the schemas sqlglot sometimes cannot tell whose a column is (an alias used in
    ``QUALIFY`` or ``GROUP BY``, a subquery's column that may be the outer query's): then only the
    tables are qualified, and each unqualified column counts for the tables of its scope."""
    options = {"dialect": dialect, "schema": nested or None, "db": default_schema,
               "validate_qualify_columns": False, "quote_identifiers": False, "identify": False}
    try:
        return qualify(statement.copy(), **options)  # type: ignore[arg-type]
    except (OptimizeError, SchemaError):
        return qualify(statement, qualify_columns=False, **options)  # type: ignore[arg-type]


@dataclass
class _Acc:
    columns: set[str]
    every: bool = False


def _relation(table: exp.Table, database: str | None) -> str:
    parts = [p.name.lower() for p in table.parts if p.name]
    if database and len(parts) == 2:
        parts.insert(0, database.lower())
    return ".".join(parts)


def _write_targets(statement: exp.Expression) -> set[int]:
    """Ids of the table nodes a statement writes to (an INSERT's target is not a read)."""
    if not isinstance(statement, WRITE_STATEMENTS):
        return set()
    target = statement.this
    if isinstance(target, exp.Schema):
        target = target.this
    return {id(target)} if isinstance(target, exp.Table) else set()


def _scope_reads(
    scope: Scope, schemas: Schemas, database: str | None, targets: set[int], reads: dict[str, _Acc]
) -> None:
    tables = {
        alias: source for alias, source in scope.sources.items()
        if isinstance(source, exp.Table) and id(source) not in targets
    }
    if not tables:
        return
    names = {alias: _relation(table, database) for alias, table in tables.items()}
    for name in names.values():
        reads.setdefault(name, _Acc(set()))
    aliases = _select_aliases(scope)
    for column in scope.columns:
        if isinstance(column.this, exp.Star):
            continue
        key = column.name.lower()
        if not column.table:
            place = _placement(column, scope.expression)
            if place == "elsewhere":
                continue  # an inner query's column: its own scope counts it
            if place == "clause" and key in aliases:
                continue  # a select alias used again (ORDER BY, QUALIFY) is not a column of a table
        if column.table:
            if column.table in names:
                reads[names[column.table]].columns.add(key)
            continue
        # an unqualified column of several tables: the ones known to have it, else each may be it
        candidates = [n for n in names.values() if key in _known(schemas, n)] or list(names.values())
        for name in candidates:
            reads[name].columns.add(key)
    for star in _stars(scope):
        table = star.table if isinstance(star, exp.Column) else ""
        for alias, name in names.items():
            if not table or table == alias:
                reads[name].every = True


def _placement(column: exp.Column, select: exp.Expression) -> str:
    """Where an unqualified column sits in its scope's query: in the ``select`` list, in another
    clause (WHERE, GROUP BY, QUALIFY...), or ``elsewhere`` (inside a nested query)."""
    node: exp.Expression = column
    while node.parent is not None and node.parent is not select:
        if isinstance(node.parent, exp.Query | exp.Subquery) and node.parent is not select:
            return "elsewhere"
        node = node.parent
    if node.parent is None:
        return "elsewhere"
    return "select" if node.arg_key == "expressions" else "clause"


def _select_aliases(scope: Scope) -> set[str]:
    expression = scope.expression
    if not isinstance(expression, exp.Select):
        return set()
    return {e.alias.lower() for e in expression.expressions if isinstance(e, exp.Alias) and e.alias}


def _known(schemas: Schemas, relation: str) -> set[str]:
    found = schemas.get(relation)
    if found is None and relation.count(".") == 2:
        found = schemas.get(relation.split(".", 1)[1])
    return {c.lower() for c in found} if found is not None else set()


def _stars(scope: Scope) -> list[exp.Expression]:
    """``*`` and ``t.*`` left in the select list after qualification: their columns are unknown."""
    expression = scope.expression
    if not isinstance(expression, exp.Select):
        return []
    found: list[exp.Expression] = []
    for item in expression.expressions:
        if isinstance(item, exp.Star) or (isinstance(item, exp.Column) and isinstance(item.this, exp.Star)):
            found.append(item)
    return found


def _nested_schema(schemas: Schemas) -> dict[str, dict[str, dict[str, str]]]:
    """``{schema: {table: {column: type}}}`` for sqlglot (two levels: the database is left to
    :func:`_relation`)."""
    nested: dict[str, dict[str, dict[str, str]]] = {}
    for relation, columns in schemas.items():
        parts = relation.lower().split(".")
        if len(parts) < 2:
            continue
        schema, table = parts[-2], parts[-1]
        nested.setdefault(schema, {})[table] = {c.lower(): "text" for c in columns}
    return nested


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]


# --- repeated shapes ----------------------------------------------------------------------------

_LITERALS = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")
_SPACES = re.compile(r"\s+")


def query_shape(sql: str) -> str:
    """The query with string and number literals and runs of whitespace folded: the same report
    or dashboard run with other parameters has the same shape, and reads the same columns.
    (Two plain substitutions: a Python callback per match cost more than the rest of a line.)"""
    return _SPACES.sub(" ", _LITERALS.sub("?", sql.strip()))


class ReadCache:
    """The reads of recently seen query shapes, least recently used dropped past ``size``."""

    def __init__(self, *, dialect: str, schemas: Schemas | None = None, size: int = 20_000) -> None:
        self.dialect = dialect
        self.schemas = schemas or {}
        self.size = size
        self._items: OrderedDict[tuple[str, str | None, str | None], tuple[TableRead, ...] | str] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def reads(
        self, sql: str, *, database: str | None = None, default_schema: str | None = None
    ) -> tuple[TableRead, ...]:
        """Like :func:`table_reads`; raises :class:`QueryNotParsed` (remembered too)."""
        key = (query_shape(sql), database, default_schema)
        found = self._items.get(key)
        if found is not None:
            self.hits += 1
            self._items.move_to_end(key)
        else:
            self.misses += 1
            try:
                found = table_reads(
                    sql, dialect=self.dialect, schemas=self.schemas, database=database, default_schema=default_schema
                )
            except QueryNotParsed as error:
                found = str(error) or "not parsed"
            self._items[key] = found
            if len(self._items) > self.size:
                self._items.popitem(last=False)
        if isinstance(found, str):
            raise QueryNotParsed(found)
        return found
