"""Output columns, types and column-level lineage of one query, inferred with sqlglot.

One pass per query: parse with the explicit dialect, qualify and annotate types once against the
parents' schemas, then walk the qualified scopes ourselves to trace each output column back to
the parent columns it reads (much faster than ``sqlglot.lineage`` per column). Columns used in
WHERE/HAVING/QUALIFY, JOIN ON/USING and GROUP BY become edges with ``downstream_column=None``:
the whole downstream asset depends on them. Nothing here raises on bad SQL: the answer then says
``columns_known=False`` and why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, fields
from functools import lru_cache
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.optimizer.annotate_types import TypeAnnotator, annotate_types
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope
from sqlglot.schema import MappingSchema, normalize_name

from rules.dbt_macros import STAR_FUNCTION, UNION_FUNCTION
from rules.model import UNKNOWN, Column, Edge
from rules.types import compare_types, normalize_type

Resolver = Callable[[exp.Table], "str | None"]

_PLACEHOLDER = "__tessera_parent_"
_STAR = "*"


@dataclass(frozen=True)
class QueryInfo:
    """What a query produces and reads."""

    columns: tuple[Column, ...] = ()
    edges: tuple[Edge, ...] = ()
    depends_on: tuple[str, ...] = ()
    columns_known: bool = False
    problems: tuple[str, ...] = ()

    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def default_table_name(table: exp.Table) -> str:
    """A table reference as written, lower-case: ``db.schema.name``, ``schema.name`` or ``name``."""
    return ".".join(part.name.lower() for part in table.parts if part.name)


# --- per-dialect corrections of sqlglot's function result types ------------------------------


_DT = exp.DataType.Type
_EXACT_DECIMALS = {_DT.DECIMAL, _DT.UDECIMAL, _DT.DECIMAL32, _DT.DECIMAL64, _DT.DECIMAL128, _DT.DECIMAL256}


def _arg_type(expression: exp.Expression) -> exp.DataType | None:
    arg = expression.this
    kind = arg.type if isinstance(arg, exp.Expression) else None
    return kind if isinstance(kind, exp.DataType) and kind.this != _DT.UNKNOWN else None


def _decimal_params(kind: exp.DataType) -> tuple[int, int] | None:
    """(precision, scale) of a decimal type with both written, else None."""
    values = []
    for param in kind.expressions:
        literal = param.this if isinstance(param, exp.DataTypeParam) else param
        if not (isinstance(literal, exp.Literal) and literal.is_int):
            return None
        values.append(int(literal.this))
    if len(values) == 1:
        values.append(0)
    return (values[0], values[1]) if len(values) == 2 else None


def _decimal(precision: int, scale: int) -> exp.DataType:
    return exp.DataType.build(f"DECIMAL({precision}, {scale})")


def _literal_int(node: exp.Expression | None) -> int | None:
    if isinstance(node, exp.Literal) and node.is_int:
        return int(node.this)
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and node.this.is_int:
        return -int(node.this.this)
    return None


def _round_type(precision_rule: str) -> Callable[[Any, exp.Expression], None]:
    """ROUND of a decimal is a decimal in warehouses (sqlglot says DOUBLE); of an integer, the
    integer. ``precision_rule`` ``scale`` (duckdb) also narrows the scale to the digits kept."""

    def annotate(annotator: Any, expression: exp.Expression) -> None:
        kind = _arg_type(expression)
        if kind is not None and kind.this in _EXACT_DECIMALS:
            params = _decimal_params(kind)
            if precision_rule == "scale" and params is not None:
                digits = _literal_int(expression.args.get("decimals"))
                scale = 0 if digits is None else max(0, min(digits, params[1]))
                annotator._set_type(expression, _decimal(params[0], scale))
            else:
                annotator._set_type(expression, kind)
        elif kind is not None and kind.this in exp.DataType.INTEGER_TYPES:
            annotator._set_type(expression, kind)
        else:
            annotator._set_type(expression, _DT.DOUBLE)

    return annotate


def _floor_ceil_decimal_scale_zero(annotator: Any, expression: exp.Expression) -> None:
    """FLOOR/CEIL of DECIMAL(p, s) is DECIMAL(p, 0) in duckdb; other types keep their type."""
    kind = _arg_type(expression)
    params = _decimal_params(kind) if kind is not None and kind.this in _EXACT_DECIMALS else None
    if params is not None:
        annotator._set_type(expression, _decimal(params[0], 0))
    else:
        annotator._set_type(expression, kind or _DT.UNKNOWN)


def _sum_type(rule: str) -> Callable[[Any, exp.Expression], None]:
    """SUM widens: decimals to 38 digits (``38``) or by 10 (``plus10``), keeping the scale;
    integers to HUGEINT in duckdb (``hugeint``) and BIGINT elsewhere."""

    def annotate(annotator: Any, expression: exp.Expression) -> None:
        kind = _arg_type(expression)
        if kind is None:
            annotator._set_type(expression, _DT.UNKNOWN)
            return
        params = _decimal_params(kind) if kind.this in _EXACT_DECIMALS else None
        if params is not None:
            precision = 38 if rule in ("38", "hugeint") else min(38, params[0] + 10)
            annotator._set_type(expression, _decimal(precision, params[1]))
        elif kind.this in exp.DataType.INTEGER_TYPES:
            annotator._set_type(expression, _DT.INT128 if rule == "hugeint" else _DT.BIGINT)
        elif kind.this in (_DT.FLOAT, _DT.DOUBLE):
            annotator._set_type(expression, _DT.DOUBLE)
        else:
            annotator._set_type(expression, kind)

    return annotate


def _division_is_double(annotator: Any, expression: exp.Expression) -> None:
    """``/`` is floating-point division in duckdb, decimals included."""
    annotator._set_type(expression, _DT.DOUBLE)


_DATE_UNITS = {"millennium", "century", "decade", "year", "quarter", "month", "week", "day", "isoyear", "yearweek"}


def _duckdb_date_trunc(annotator: Any, expression: exp.Expression) -> None:
    """DuckDB's date_trunc gives a DATE for units of a day or more, else a TIMESTAMP; a
    TIMESTAMPTZ stays one."""
    kind = _arg_type(expression)
    if kind is not None and kind.this in (_DT.TIMESTAMPTZ, _DT.TIMESTAMPLTZ):
        annotator._set_type(expression, kind)
        return
    unit = expression.args.get("unit")
    name = (unit.name if isinstance(unit, exp.Expression) else str(unit or "")).lower()
    annotator._set_type(expression, _DT.DATE if name in _DATE_UNITS else _DT.TIMESTAMP)


def _returns_text(annotator: Any, expression: exp.Expression) -> None:
    """String functions sqlglot leaves untyped in some dialects: they return text."""
    kind = _arg_type(expression)
    if kind is not None and kind.this in exp.DataType.TEXT_TYPES:
        annotator._set_type(expression, kind)
    else:
        annotator._set_type(expression, _DT.VARCHAR)


def _returns_datetime(annotator: Any, expression: exp.Expression) -> None:
    """BigQuery's ``DATETIME(...)``: a civil date-time, whatever it is built from."""
    annotator._set_type(expression, _DT.DATETIME)


def _json_path_type(annotator: Any, expression: exp.Expression) -> None:
    """Trino's ``json_query`` and ``json_extract_scalar`` return varchar, ``json_extract`` JSON."""
    is_json = isinstance(expression, exp.JSONExtract) and not expression.args.get("json_query")
    annotator._set_type(expression, _DT.JSON if is_json else _DT.VARCHAR)


_TEXT_FUNCTIONS: tuple[type[exp.Expression], ...] = (
    exp.Replace,
    exp.Left,
    exp.Right,
    exp.Pad,
    exp.SplitPart,
    exp.RegexpReplace,
)

_FUNCTION_TYPE_OVERRIDES: dict[str, dict[type[exp.Expression], Callable[..., None]]] = {
    "duckdb": {
        exp.Round: _round_type("scale"),
        exp.Floor: _floor_ceil_decimal_scale_zero,
        exp.Ceil: _floor_ceil_decimal_scale_zero,
        exp.Sum: _sum_type("hugeint"),
        exp.Div: _division_is_double,
        exp.TimestampTrunc: _duckdb_date_trunc,
        exp.DateTrunc: _duckdb_date_trunc,
        **{f: _returns_text for f in (*_TEXT_FUNCTIONS, exp.Trim)},
    },
    "postgres": {exp.Round: _round_type("keep"), exp.Trim: _returns_text},
    "redshift": {exp.Round: _round_type("keep"), exp.Sum: _sum_type("38"), exp.Trim: _returns_text},
    "snowflake": {exp.Sum: _sum_type("38"), exp.Trim: _returns_text},
    "databricks": {
        exp.Round: _round_type("keep"), exp.Sum: _sum_type("plus10"), exp.SplitPart: _returns_text,
        exp.Trim: _returns_text,
    },
    "spark": {exp.Round: _round_type("keep"), exp.Sum: _sum_type("plus10"), exp.Trim: _returns_text},
    "trino": {exp.JSONExtract: _json_path_type, exp.JSONExtractScalar: _json_path_type},
    "athena": {exp.JSONExtract: _json_path_type, exp.JSONExtractScalar: _json_path_type},
    "bigquery": {
        exp.SplitPart: _returns_text,
        exp.Trim: _returns_text,
        exp.TsOrDsToDatetime: _returns_datetime,
        exp.Datetime: _returns_datetime,
    },
}
"""Corrections of sqlglot's function result types, per dialect, checked against real engines
where we could (DuckDB in the test suite)."""


@lru_cache(maxsize=32)
def _expression_metadata(dialect: str) -> dict[Any, Any] | None:
    overrides = _FUNCTION_TYPE_OVERRIDES.get(dialect)
    if not overrides:
        return None
    metadata = dict(Dialect.get_or_raise(dialect).EXPRESSION_METADATA)
    for node_type, annotator in overrides.items():
        metadata[node_type] = {"annotator": annotator}
    return metadata


# --- parsing ---------------------------------------------------------------------------------


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]


def parse_query(sql: str, dialect: str) -> tuple[exp.Query | None, str | None]:
    """The query of ``sql`` (the last query statement; a CTAS's SELECT), or None and why not."""
    try:
        statements = [s for s in sqlglot.parse(sql, dialect=dialect) if s is not None]
    except Exception as error:  # sqlglot raises ParseError/TokenError, and worse on odd input
        return None, f"cannot parse SQL: {_first_line(error)}"
    return query_of(statements)


def query_of(statements: list[exp.Expression]) -> tuple[exp.Query | None, str | None]:
    """The query of parsed statements as :func:`parse_query` picks it, or None and why not."""
    for statement in reversed(statements):
        if isinstance(statement, exp.Query):
            return statement, None
        if isinstance(statement, exp.Create) and isinstance(statement.expression, exp.Query):
            return statement.expression, None
    if any(isinstance(s, exp.Command) for s in statements):
        return None, "SQL that sqlglot cannot parse (kept as an opaque command)"
    return None, "no SELECT query found"


def output_names(sql: str, dialect: str) -> tuple[str, ...] | None:
    """The names of a query's output columns, in order, from its text alone (a parse, no
    schemas): as :func:`infer_query` names them. None when naming them needs the parents'
    schemas (a star), sqlglot would invent a name (an expression without an alias), or a name is
    quoted (qualifying can respell it)."""
    query, _problem = parse_query(sql, dialect)
    if query is None:
        return None
    names = []
    for projection in query.selects:
        if isinstance(projection, exp.Alias):
            ident = projection.args.get("alias")
        elif isinstance(projection, exp.Column):
            ident = projection.this
        else:
            return None
        if not isinstance(ident, exp.Identifier) or ident.quoted:
            return None
        names.append(_output_name(projection))
    return tuple(names) or None


def is_cte_reference(table: exp.Table) -> bool:
    """Whether a table reference names a CTE visible where it stands.

    A CTE is visible to the CTEs after it and to the body of its query, not to its own body
    (unless the WITH is RECURSIVE): in dbt's ``with orders as (select * from orders)`` the inner
    ``orders`` is the relation, the outer one the CTE.
    """
    if table.args.get("db") or not isinstance(table.this, exp.Identifier):
        return False
    name = table.name.lower()
    child: exp.Expression = table
    parent = table.parent
    while parent is not None:
        if isinstance(parent, exp.With) and isinstance(child, exp.CTE):
            names = [cte.alias_or_name.lower() for cte in parent.expressions]
            index = next((i for i, cte in enumerate(parent.expressions) if cte is child), len(names))
            visible = names[: index + 1] if parent.args.get("recursive") else names[:index]
            if name in visible:
                return True
        elif isinstance(parent, exp.Query) and not isinstance(child, exp.With):
            with_ = parent.args.get("with_") or parent.args.get("with")
            if isinstance(with_, exp.With) and child is not with_:
                if name in {cte.alias_or_name.lower() for cte in with_.expressions}:
                    return True
        child, parent = parent, parent.parent
    return False


def _physical_tables(query: exp.Expression) -> list[exp.Table]:
    """Table references that name a relation (not a CTE, not a table function), in the order
    ``find_all`` gives them; the walk does not descend into the leaves that make up most of a
    wide query (columns, names, literals, types), which never hold a table."""
    return [
        node
        for node in query.walk(bfs=False, prune=_holds_no_table)
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier) and not is_cte_reference(node)
    ]


def _holds_no_table(node: exp.Expression) -> bool:
    return type(node) in _TABLELESS


_TABLELESS = frozenset({exp.Column, exp.Identifier, exp.Literal, exp.DataType})


# --- the scope walk --------------------------------------------------------------------------


def _ident_name(name: str, quoted: bool) -> str:
    return name if quoted else name.lower()


def _output_name(projection: exp.Expression) -> str:
    ident = projection.args.get("alias")
    if isinstance(ident, exp.TableAlias):
        ident = ident.this
    if isinstance(ident, exp.Identifier):
        return _ident_name(ident.this, ident.quoted)
    if isinstance(projection, exp.Column) and isinstance(projection.this, exp.Identifier):
        return _ident_name(projection.this.this, projection.this.quoted)
    return projection.alias_or_name.lower()


Origin = tuple[str, str | None]
"""(parent fqn, column) a value comes from; column None means the whole parent (unknown/star)."""


class _Tracer:
    """Traces columns of a qualified query back to parent columns, scope by scope, memoised."""

    def __init__(self, root: Scope, placeholders: Mapping[str, str], unknown: set[str]) -> None:
        self.root = root
        self.placeholders = placeholders
        self.unknown_parents = unknown
        self.column_scope: dict[int, Scope] = {}
        self.scopes = list(root.traverse())
        for scope in self.scopes:
            for column in scope.columns:
                self.column_scope[id(column)] = scope
        self._memo: dict[tuple[int, str], frozenset[Origin]] = {}
        self._by_name: dict[int, dict[str, exp.Expression]] = {}

    def _projections(self, scope: Scope) -> dict[str, exp.Expression]:
        """Output name -> projection of a select scope (the first one wins, as in SQL)."""
        found = self._by_name.get(id(scope))
        if found is None:
            found = {}
            selects = scope.expression.selects if isinstance(scope.expression, exp.Query) else []
            for projection in selects:
                found.setdefault(_output_name(projection), projection)
            self._by_name[id(scope)] = found
        return found

    def _table_fqn(self, source: exp.Table) -> str | None:
        return self.placeholders.get(source.name.lower())

    def scope_of(self, column: exp.Column) -> Scope | None:
        return self.column_scope.get(id(column))

    def origins_of_expression(self, node: exp.Expression, scope: Scope) -> set[Origin]:
        """Every parent column that ``node`` (a projection, a condition) reads."""
        out: set[Origin] = set()
        if isinstance(node, exp.Column):  # the common case: a column passed through
            return self.origins_of_column(node, self.scope_of(node) or scope)
        for found in node.find_all(exp.Column, exp.Star):
            if isinstance(found, exp.Column):
                out |= self.origins_of_column(found, self.scope_of(found) or scope)
            elif not isinstance(found.parent, exp.Column | exp.Count):
                # a bare * (t.* is a column, COUNT(*) reads no column)
                out |= self._star_origins(scope, None)
        return out

    def origins_of_column(self, column: exp.Column, scope: Scope) -> set[Origin]:
        table = column.table
        if isinstance(column.this, exp.Star):
            return self._star_origins(scope, table or None)
        name = _ident_name(column.this.this, column.this.quoted) if isinstance(
            column.this, exp.Identifier
        ) else column.name.lower()
        if not table:
            return self._unqualified(scope, name)
        source = scope.sources.get(table)
        if source is None:
            # a correlated reference to an outer scope
            parent = scope.parent
            while parent is not None and source is None:
                source = parent.sources.get(table)
                parent = parent.parent
        if isinstance(source, exp.Table) and self._table_fqn(source):
            return {(self._table_fqn(source) or "", name)}
        if isinstance(source, Scope):
            return set(self.trace(source, name))
        if isinstance(source, exp.Expression):
            return self._function_source_origins(source, scope, table)
        return set()

    def _function_source_origins(self, source: exp.Expression, scope: Scope, alias: str) -> set[Origin]:
        """A column of FLATTEN(...)/UNNEST(...)/a table function reads the columns passed to it."""
        out: set[Origin] = set()
        for column in source.find_all(exp.Column):
            if column.table and column.table != alias:
                out |= self.origins_of_column(column, scope)
        return out

    def _unqualified(self, scope: Scope, name: str) -> set[Origin]:
        """A column qualify could not place: one source gets it, else every source that may have it."""
        sources = list(scope.selected_sources.values()) if scope.selected_sources else []
        if len(sources) == 1:
            _node, source = sources[0]
            if isinstance(source, exp.Table):
                fqn = self._table_fqn(source)
                return {(fqn, name)} if fqn else set()
            if isinstance(source, Scope):
                return set(self.trace(source, name))
        # it comes from one of the sources whose columns we do not know: it reads that column
        # of each of them (a source with known columns and no such column cannot be it)
        out: set[Origin] = set()
        for _node, source in sources:
            if isinstance(source, exp.Table):
                fqn = self._table_fqn(source)
                if fqn and fqn in self.unknown_parents:
                    out.add((fqn, name))
            elif isinstance(source, Scope):
                out |= self.trace(source, name)
        return out

    def _star_origins(self, scope: Scope, table: str | None) -> set[Origin]:
        """An unexpanded star: the whole of each source it covers."""
        return self._through_star(scope, table, None)

    def _through_star(self, scope: Scope, table: str | None, column: str | None) -> set[Origin]:
        """What ``column`` (None: every column) of a star over ``table`` (None: all sources) reads."""
        out: set[Origin] = set()
        items = scope.selected_sources.items() if scope.selected_sources else ()
        for alias, (_node, source) in items:
            if table and alias != table:
                continue
            if isinstance(source, exp.Table):
                fqn = self._table_fqn(source)
                if fqn:
                    out.add((fqn, column))
            elif isinstance(source, Scope):
                out |= self.trace(source, _STAR if column is None else column)
        return out

    def trace(self, scope: Scope, name: str) -> frozenset[Origin]:
        """The parent columns behind output column ``name`` of ``scope``."""
        key = (id(scope), name)
        cached = self._memo.get(key)
        if cached is not None:
            return cached
        self._memo[key] = frozenset()  # guards recursive CTEs
        result: set[Origin] = set()
        if scope.set_operation_scopes:
            index = self._union_index(scope, name)
            for branch in scope.set_operation_scopes:
                result |= self._trace_branch(branch, name, index)
        elif scope.is_udtf:
            result = self._trace_udtf(scope, name)
        else:
            result = self._trace_select(scope, name)
        frozen = frozenset(result)
        self._memo[key] = frozen
        return frozen

    def _trace_udtf(self, scope: Scope, name: str) -> set[Origin]:
        """LATERAL (subquery) traces into the subquery; FLATTEN/UNNEST read what they are given."""
        inner = [s for s in scope.sources.values() if isinstance(s, Scope) and isinstance(s.expression, exp.Query)]
        if inner:
            out: set[Origin] = set()
            for sub in inner:
                out |= self.trace(sub, name)
            return out
        found: set[Origin] = set()
        for column in scope.expression.find_all(exp.Column):
            found |= self.origins_of_column(column, scope)
        return found

    def _union_index(self, scope: Scope, name: str) -> int | None:
        selects = scope.expression.selects if isinstance(scope.expression, exp.Query) else []
        for index, projection in enumerate(selects):
            if _output_name(projection) == name:
                return index
        return None

    def _trace_branch(self, branch: Scope, name: str, index: int | None) -> set[Origin]:
        if branch.set_operation_scopes:
            out: set[Origin] = set()
            for sub in branch.set_operation_scopes:
                out |= self._trace_branch(sub, name, index)
            return out
        selects = branch.expression.selects if isinstance(branch.expression, exp.Query) else []
        if name == _STAR or index is None or index >= len(selects):
            return set(self.trace(branch, name))
        return set(self.origins_of_expression(selects[index], branch))

    def _trace_select(self, scope: Scope, name: str) -> set[Origin]:
        expression = scope.expression
        selects = expression.selects if isinstance(expression, exp.Query) else []
        if name == _STAR:
            out: set[Origin] = set()
            for projection in selects:
                out |= self.origins_of_expression(projection, scope)
            return out
        projection = self._projections(scope).get(name)
        if projection is not None:
            return self.origins_of_expression(projection, scope)
        # not a named projection: it may come through an unexpanded star
        out = set()
        for projection in selects:
            if isinstance(projection, exp.Star) or (
                isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
            ):
                table = projection.table if isinstance(projection, exp.Column) else None
                out |= self._through_star(scope, table, name)
        return out


_USAGE_CLAUSES: tuple[tuple[str, str], ...] = (
    ("where", "filter"),
    ("having", "filter"),
    ("qualify", "filter"),
    ("group", "group"),
)


def group_by_all_keys(select: exp.Select) -> list[exp.Expression]:
    """GROUP BY ALL groups by every projection that is not an aggregate."""
    keys = []
    for projection in select.selects:
        body = projection.unalias() if isinstance(projection, exp.Alias) else projection
        if body.find(exp.AggFunc) is None and not isinstance(body, exp.Literal):
            keys.append(body)
    return keys


def _usage_nodes(scope: Scope) -> Iterable[tuple[exp.Expression, str]]:
    """The WHERE/HAVING/QUALIFY, GROUP BY and JOIN conditions of a select scope."""
    select = scope.expression
    if not isinstance(select, exp.Select):
        return
    for arg, usage in _USAGE_CLAUSES:
        node = select.args.get(arg)
        if isinstance(node, exp.Group) and node.args.get("all"):
            yield from ((key, usage) for key in group_by_all_keys(select))
        elif isinstance(node, exp.Expression):
            yield node, usage
    for join in select.args.get("joins") or ():
        on = join.args.get("on")
        if isinstance(on, exp.Expression):
            yield on, "join"
        for using in join.args.get("using") or ():
            if isinstance(using, exp.Expression):
                yield using, "join"


# --- the public function ---------------------------------------------------------------------


def _expression_text(
    projection: exp.Expression, scope: Scope, dialect: str, placeholders: Mapping[str, str]
) -> str:
    """The projection without its alias and with table aliases replaced by what they name, so
    that re-aliasing a table or a column does not change it."""
    names: dict[str, str | None] = {}
    selected = scope.selected_sources or {}
    for alias, (source_node, source) in selected.items():
        if isinstance(source, Scope):
            names[alias] = source_node.name.lower() if isinstance(source_node, exp.Table) else alias
        elif isinstance(source, exp.Table) and source.name.lower() in placeholders:
            names[alias] = placeholders[source.name.lower()].rsplit(".", 1)[-1]
        else:
            names[alias] = None
    return _expression_text_with(projection, names, len(selected) == 1, dialect, placeholders)


def _expression_text_with(
    projection: exp.Expression,
    names: Mapping[str, str | None],
    single: bool,
    dialect: str,
    placeholders: Mapping[str, str],
) -> str:
    """See :func:`_expression_text`: ``names`` maps each source alias of the projection's
    scope to the name shown for it; ``single`` when the scope reads one source."""
    node = projection.unalias() if isinstance(projection, exp.Alias) else projection

    def qualifier(table: str) -> str | None:
        return None if single or not table else (names.get(table) or table)

    if isinstance(node, exp.Column) and isinstance(node.this, exp.Identifier):
        # the common case (a column passed through): no need to render a tree
        ident = node.this
        name = ident.this if ident.quoted else ident.this.lower()
        if ident.quoted:
            name = _render(exp.to_identifier(name, quoted=True), dialect)
        prefix = qualifier(node.table)
        return f"{prefix.lower()}.{name}" if prefix else name

    # rewrite in place and restore afterwards: much cheaper than copying the tree
    restore: list[tuple[exp.Expression, str, Any]] = []
    for column in node.find_all(exp.Column):
        table = column.table
        if not table:
            continue
        restore.append((column, "table", column.args.get("table")))
        prefix = qualifier(table)
        column.set("table", exp.to_identifier(prefix) if prefix else None)
    for table in node.find_all(exp.Table):
        fqn = placeholders.get(table.name.lower())
        if fqn:
            restore.append((table, "this", table.args.get("this")))
            table.set("this", exp.to_identifier(fqn.rsplit(".", 1)[-1]))
            if "." in fqn:
                restore.append((table, "db", table.args.get("db")))
                table.set("db", exp.to_identifier(fqn.rsplit(".", 1)[0]))
    for ident in node.find_all(exp.Identifier):
        if not ident.quoted and ident.this != ident.this.lower():
            restore.append((ident, "this", ident.this))
            ident.set("this", ident.this.lower())
    try:
        return _render(node, dialect)
    except Exception:
        return projection.sql()
    finally:
        for target, arg, value in reversed(restore):
            target.set(arg, value)


def _origin_table_name(table: exp.Table) -> str:
    return table.name.lower()


def infer_query(
    sql: str,
    *,
    dialect: str,
    schema: Mapping[str, Mapping[str, str]],
    fqn: str,
    resolve: Resolver | None = None,
    lineage: bool = True,
) -> QueryInfo:
    """Output columns (names, types, expressions) and column lineage of ``sql`` into ``fqn``.

    ``schema`` maps parent fqn -> {column: type}; ``resolve`` maps a table reference to a parent
    fqn (default: the lower-case name as written). Never raises: bad SQL gives
    ``columns_known=False`` and a problem.

    ``lineage=False`` is the schema-only mode for ancestors read only for their output schema:
    the same column names, types, ``columns_known``, ``depends_on`` and problems, but no edges
    and no expression text (the lineage walk is a quarter of an inference).
    """
    try:
        return _infer(sql, dialect=dialect, schema=schema, fqn=fqn, resolve=resolve, lineage=lineage)
    except FastPathMismatch:
        raise
    except Exception as error:  # sqlglot can fail deep inside on odd SQL; never crash a worker
        return QueryInfo(problems=(f"cannot analyse SQL: {_first_line(error)}",))


def _infer(
    sql: str,
    *,
    dialect: str,
    schema: Mapping[str, Mapping[str, str]],
    fqn: str,
    resolve: Resolver | None,
    lineage: bool = True,
    fast: bool = True,
) -> QueryInfo:
    query, problem = parse_query(sql, dialect)
    if query is None:
        return QueryInfo(problems=(problem or "no query",))
    if STAR_FUNCTION in sql or UNION_FUNCTION in sql:
        _expand_star_macros(query, schema, resolve, dialect)

    placeholders: dict[str, str] = {}  # placeholder -> parent fqn
    by_fqn: dict[str, str] = {}
    depends_on: list[str] = []
    for table in _physical_tables(query):
        parent = (resolve(table) if resolve else None) or default_table_name(table)
        parent = parent.lower()
        if parent not in by_fqn:
            by_fqn[parent] = f"{_PLACEHOLDER}{len(by_fqn)}"
            placeholders[by_fqn[parent]] = parent
            depends_on.append(parent)
        alias = table.args.get("alias")
        if not isinstance(alias, exp.TableAlias) or not alias.name:
            table.set("alias", exp.TableAlias(this=exp.to_identifier(_origin_table_name(table))))
        table.set("catalog", None)
        table.set("db", None)
        table.set("this", exp.to_identifier(by_fqn[parent]))

    mapping: dict[str, dict[str, str]] = {}
    unknown: set[str] = set()
    for parent, placeholder in by_fqn.items():
        columns = _parent_columns(schema, parent)
        if columns:
            # normalised here, once per spelling, as MappingSchema would on every construction
            mapping[_normalized_name(placeholder, dialect, True)] = {
                _normalized_name(name, dialect, False): _schema_type(kind, dialect)
                for name, kind in columns.items()
            }
        else:
            unknown.add(parent)

    if fast and not unknown:
        subject = query.copy() if CHECK_FAST_PATH else query
        if lineage:
            fast_info = fast_lineage(subject, mapping, dialect, placeholders, fqn, tuple(depends_on))
        else:
            outputs = fast_output_types(subject, mapping, dialect)
            fast_info = None if outputs is None else QueryInfo(columns=outputs, depends_on=tuple(depends_on), columns_known=True)
        if fast_info is not None:
            if CHECK_FAST_PATH:
                slow = _infer(sql, dialect=dialect, schema=schema, fqn=fqn, resolve=resolve, lineage=lineage, fast=False)
                if slow != fast_info:
                    raise FastPathMismatch(f"fast path {fast_info} != sqlglot {slow} for {sql!r}")
            return fast_info

    problems: list[str] = []
    mapping_schema = MappingSchema(mapping, dialect=dialect, normalize=False) if mapping else None
    qualified = _qualify(query, dialect, mapping_schema, problems)
    try:
        annotated = annotate_types(
            qualified,
            schema=mapping_schema,
            dialect=dialect,
            expression_metadata=_expression_metadata(dialect),
        )
    except Exception as error:
        problems.append(f"cannot infer types: {_first_line(error)}")
        annotated = qualified

    if not lineage:
        return _schema_only(annotated, dialect, tuple(depends_on), problems)

    root = build_scope(annotated)
    if root is None:
        return QueryInfo(depends_on=tuple(depends_on), problems=(*problems, "no query scope"))
    tracer = _Tracer(root, placeholders, unknown)

    columns: list[Column] = []
    edges: list[Edge] = []
    seen_edges: set[Edge] = set()
    columns_known = not problems

    def add(edge: Edge) -> None:
        if edge not in seen_edges:
            seen_edges.add(edge)
            edges.append(edge)

    out_scope = root
    while out_scope.set_operation_scopes:
        out_scope = out_scope.set_operation_scopes[0]
    position = 0
    for projection in annotated.selects:
        if isinstance(projection, exp.Star) or (
            isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
        ):
            columns_known = False
            for upstream, _col in sorted(tracer.origins_of_expression(projection, out_scope), key=_origin_key):
                add(Edge(upstream, None, fqn, None, "star"))  # sorted: a set's order changes per process
            continue
        name = _output_name(projection)
        position += 1
        type_text = _set_operation_type(root, position - 1, dialect) if root.set_operation_scopes else (
            _type_text(projection, dialect)
        )
        columns.append(
            Column(
                name=name,
                type=type_text,
                position=position,
                expression=_expression_text(projection, out_scope, dialect, placeholders),
            )
        )
        for upstream, upstream_column in sorted(tracer.trace(root, name), key=_origin_key):
            if upstream_column is None:
                add(Edge(upstream, None, fqn, None, "star"))
            else:
                add(Edge(upstream, upstream_column, fqn, name, "select"))

    for scope in tracer.scopes:
        for node, usage in _usage_nodes(scope):
            for upstream, upstream_column in sorted(
                tracer.origins_of_expression(node, scope), key=_origin_key
            ):
                add(Edge(upstream, upstream_column, fqn, None, usage if upstream_column else "star"))

    return QueryInfo(
        columns=tuple(columns),
        edges=tuple(edges),
        depends_on=tuple(depends_on),
        columns_known=columns_known,
        problems=tuple(problems),
    )


CHECK_FAST_PATH = False
"""When True (the test suite sets it), every answer of :func:`fast_output_types` and
:func:`fast_lineage` is compared with what qualify + annotate_types and the scope walk give for
the same query, and a difference raises :class:`FastPathMismatch`."""


class FastPathMismatch(AssertionError):
    """The fast path and sqlglot disagree on a query's output columns (a bug in the fast path)."""


class _Fallback(Exception):
    """The fast path cannot answer exactly what sqlglot would: let sqlglot answer."""


def fast_output_types(
    query: exp.Query, mapping: Mapping[str, Mapping[str, exp.DataType]], dialect: str
) -> tuple[Column, ...] | None:
    """The output columns and types of ``query`` (its tables already replaced by placeholders
    whose schemas ``mapping`` holds, normalised), as qualify + annotate_types would give them, or
    None when this cannot be sure.

    Why: an ancestor is inferred only for its output types, and most ancestors are plain
    selects of columns, casts and functions from their parents through CTEs. Resolving their
    columns directly and letting sqlglot's own type annotator type each projection costs a
    fraction of qualifying the whole query. Anything less plain (set operations, subqueries,
    quoted names, USING joins, lateral column aliases, stars over joins, table functions) falls
    back to sqlglot; the test suite checks every answer against sqlglot's (``CHECK_FAST_PATH``).
    """
    try:
        return _FastTypes(query, mapping, dialect).columns()
    except _Fallback:
        return None


def fast_lineage(
    query: exp.Query,
    mapping: Mapping[str, Mapping[str, exp.DataType]],
    dialect: str,
    placeholders: Mapping[str, str],
    fqn: str,
    depends_on: tuple[str, ...],
) -> QueryInfo | None:
    """The whole inference (columns with expression texts, column and usage edges) of a plain
    query without qualify, or None (see :func:`fast_output_types`; the same limits, and GROUP
    BY ALL or by position, which qualify rewrites, go to sqlglot as well)."""
    try:
        return _FastTypes(query, mapping, dialect, placeholders).query_info(fqn, depends_on)
    except _Fallback:
        return None


def _column(**values: Any) -> Column:
    """``Column(**values)`` without the frozen dataclass's ``__init__`` (a field-by-field
    ``object.__setattr__``): the fast paths make one for every output of every model."""
    column = object.__new__(Column)
    column.__dict__.update(_COLUMN_FIELDS, meta={}, **values)  # in field order, as __init__ sets them
    return column


_COLUMN_FIELDS = {f.name: None if f.default is MISSING else f.default for f in fields(Column)}
_SourceColumns = dict[str, exp.DataType]
_PLAIN_JOINS = (None, "", "INNER", "OUTER", "CROSS")


_Ref = tuple[tuple[str, str], str]
"""A column reference resolved by the fast path: (("table", parent fqn) or ("cte", name), column)."""


@dataclass
class _SelectInfo:
    """What the fast path learned about one plain SELECT (for lineage)."""

    outputs: list[tuple[str, str, exp.DataType]]
    refs: list[list[_Ref]]
    """Per output, the columns it reads."""
    usage: list[tuple[str, list[_Ref]]]
    """Per WHERE/HAVING/QUALIFY/GROUP BY clause and JOIN condition, in that order, what it reads."""
    names: dict[str, str | None]
    """Source alias -> the name expression texts show for it (see :func:`_expression_text`)."""
    sources: dict[str, tuple[_SourceColumns, tuple[str, str]]]
    """Source alias -> its columns and where they come from."""


class _FastTypes:
    def __init__(
        self,
        query: exp.Query,
        mapping: Mapping[str, Mapping[str, exp.DataType]],
        dialect: str,
        placeholders: Mapping[str, str] | None = None,
    ) -> None:
        self.query = query
        self.mapping = mapping
        self.dialect = dialect
        self.placeholders = placeholders
        """Placeholder table name -> parent fqn; given, the fast path also collects lineage."""
        self.ctes: dict[str, exp.Select | None] = {}
        self.cte_columns: dict[str, _SourceColumns] = {}
        self.info: dict[int, _SelectInfo] = {}
        self.annotator: TypeAnnotator | None = None
        self._origins: dict[tuple[str, str], frozenset[Origin]] = {}
        self._output_refs: dict[int, dict[str, list[_Ref]]] = {}

    def columns(self) -> tuple[Column, ...]:
        query = self.query
        if not isinstance(query, exp.Select):
            raise _Fallback
        with_ = query.args.get("with_")
        if with_ is not None:
            if with_.args.get("recursive"):
                raise _Fallback
            for cte in with_.expressions:
                alias = cte.args.get("alias")
                if not isinstance(alias, exp.TableAlias) or alias.columns:
                    raise _Fallback
                body = cte.this
                plain = isinstance(body, exp.Select) and body.args.get("with_") is None
                self.ctes[self._norm(alias.this)] = body if plain else None
        for name in self.ctes:  # qualify reads every CTE, used or not: so must this
            self._cte(name)
        outputs = self._select(query)
        if not outputs:
            raise _Fallback
        # columns passed through share their parent's type object: its text is made once (by
        # object: every type here stays alive in ``outputs`` meanwhile, so no id is reused)
        texts: dict[int, str] = {}
        columns = []
        for index, (name, _key, kind) in enumerate(outputs, start=1):
            text = texts.get(id(kind))
            if text is None:
                text = texts[id(kind)] = _data_type_text(kind, self.dialect)
            columns.append(_column(name=name, type=text, position=index))
        return tuple(columns)

    def query_info(self, fqn: str, depends_on: tuple[str, ...]) -> QueryInfo:
        """Columns (with expression texts) and edges, as :func:`_infer` would give them."""
        columns = self.columns()
        query = self.query
        assert isinstance(query, exp.Select)
        root = self.info[id(query)]
        edges: list[Edge] = []
        seen: set[Edge] = set()

        def add(edge: Edge) -> None:
            if edge not in seen:
                seen.add(edge)
                edges.append(edge)

        first: dict[str, list[_Ref]] = {}
        for (name, _key, _kind), refs in zip(root.outputs, root.refs, strict=True):
            first.setdefault(name, refs)
        for column in columns:
            for upstream, upstream_column in sorted(self._origins_of(first[column.name]), key=_origin_key):
                add(Edge(upstream, upstream_column, fqn, column.name, "select"))
        with_ = query.args.get("with_")
        bodies = [cte.this for cte in with_.expressions] if with_ is not None else []
        for select in (*bodies, query):
            for usage, refs in self.info[id(select)].usage:
                for upstream, upstream_column in sorted(self._origins_of(refs), key=_origin_key):
                    add(Edge(upstream, upstream_column, fqn, None, usage))
        texts = self._texts(query, root)
        columns = tuple(
            _column(name=c.name, type=c.type, position=c.position, expression=t)
            for c, t in zip(columns, texts, strict=True)
        )
        return QueryInfo(columns=columns, edges=tuple(edges), depends_on=depends_on, columns_known=True)

    def _text(self, projection: exp.Expression, info: _SelectInfo) -> str:
        assert self.placeholders is not None
        return _expression_text_with(projection, info.names, len(info.names) == 1, self.dialect, self.placeholders)

    def _texts(self, query: exp.Select, info: _SelectInfo) -> list[str]:
        """Each output's expression text; a star's columns show as their names, qualified by
        their source's name when the select reads more than one."""
        texts: list[str] = []
        for projection in query.selects:
            if not _is_star(projection):
                texts.append(self._text(projection, info))
                continue
            expanded, _refs = self._star(projection, info.sources)
            if len(info.names) == 1:
                texts.extend(name for name, _key, _kind in expanded)
            else:
                alias = self._norm(projection.args.get("table"))
                prefix = (info.names.get(alias) or alias).lower()
                texts.extend(f"{prefix}.{name}" for name, _key, _kind in expanded)
        return texts

    def _origins_of(self, refs: list[_Ref]) -> set[Origin]:
        out: set[Origin] = set()
        for (kind, where), name in refs:
            if kind == "table":
                out.add((where, name))
            else:
                out |= self._cte_origins(where, name)
        return out

    def _cte_origins(self, cte: str, name: str) -> frozenset[Origin]:
        key = (cte, name)
        found = self._origins.get(key)
        if found is None:
            self._origins[key] = frozenset()  # guards a cycle (never in a plain query)
            body = self.ctes.get(cte)
            assert body is not None
            refs = self._refs_by_output(body).get(name)
            if refs is None:
                raise _Fallback  # a column the CTE does not produce: sqlglot decides
            found = self._origins[key] = frozenset(self._origins_of(refs))
        return found

    def _refs_by_output(self, body: exp.Select) -> dict[str, list[_Ref]]:
        """What each output of a CTE's select reads, by output name (the first output of a name,
        as a scan in order finds it): looked up once per column, not scanned for each."""
        found = self._output_refs.get(id(body))
        if found is None:
            info = self.info[id(body)]
            found = self._output_refs[id(body)] = {}
            for (name, _key, _kind), refs in zip(info.outputs, info.refs, strict=True):
                found.setdefault(name, refs)
        return found

    def _norm(self, ident: object) -> str:
        if not isinstance(ident, exp.Identifier) or ident.quoted or not ident.this:
            raise _Fallback
        return _normalized_name(ident.this, self.dialect, False)

    def _source(self, table: exp.Expression) -> tuple[str, _SourceColumns, tuple[str, str], str | None]:
        """(alias, columns, where its columns come from, the name expression texts show)."""
        if isinstance(table, exp.Subquery):
            return self._derived(table)
        if not isinstance(table, exp.Table) or not isinstance(table.this, exp.Identifier):
            raise _Fallback
        if table.args.get("db") or table.args.get("catalog") or table.args.get("pivots"):
            raise _Fallback
        if any(table.args.get(arg) for arg in ("joins", "laterals", "hints", "when", "version", "sample")):
            raise _Fallback
        alias = table.args.get("alias")
        if isinstance(alias, exp.TableAlias):
            if alias.columns:
                raise _Fallback
            name = self._norm(alias.this)
        else:
            name = self._norm(table.this)
        if table.name.startswith(_PLACEHOLDER):
            columns = self.mapping.get(_normalized_name(table.name, self.dialect, True))
            if columns is None:
                raise _Fallback
            fqn = (self.placeholders or {}).get(table.name.lower(), "")
            if self.placeholders is not None and not fqn:
                raise _Fallback
            return name, dict(columns), ("table", fqn), fqn.rsplit(".", 1)[-1] if fqn else None
        cte = self._norm(table.this)
        return name, self._cte(cte), ("cte", cte), table.name.lower()

    def _derived(self, subquery: exp.Subquery) -> tuple[str, _SourceColumns, tuple[str, str], str | None]:
        """A derived table ``(select ...) as name`` read for types only: its columns are its plain
        select's, as a CTE's are (a dbt snapshot's rendered SQL reads its query this way). Its
        lineage (where the names texts show and edges go) is left to sqlglot."""
        if self.placeholders is not None:
            raise _Fallback
        alias = subquery.args.get("alias")
        body = subquery.this
        if (
            not isinstance(alias, exp.TableAlias) or alias.columns
            or any(value for arg, value in subquery.args.items() if arg not in ("this", "alias"))
            or not isinstance(body, exp.Select) or body.args.get("with_") is not None
        ):
            raise _Fallback
        name = self._norm(alias.this)
        return name, {key: kind for _name, key, kind in self._select(body)}, ("derived", name), None

    def _cte(self, name: str) -> _SourceColumns:
        found = self.cte_columns.get(name)
        if found is None:
            body = self.ctes.get(name)
            if body is None:
                raise _Fallback
            found = self.cte_columns[name] = {key: kind for _name, key, kind in self._select(body)}
        return found

    def _select(self, select: exp.Select) -> list[tuple[str, str, exp.DataType]]:
        """(output name, normalised name, type) of each projection of a plain SELECT."""
        for arg in ("kind", "exclude", "operation_modifiers", "laterals", "into", "connect", "match"):
            if select.args.get(arg):
                raise _Fallback
        from_ = select.args.get("from_")
        if from_ is None:
            raise _Fallback
        sources: dict[str, tuple[_SourceColumns, tuple[str, str]]] = {}
        names: dict[str, str | None] = {}
        joins = select.args.get("joins") or []
        for table in (from_.this, *(join.this for join in joins)):
            name, columns, where, shown = self._source(table)
            if name in sources:
                raise _Fallback
            sources[name] = (columns, where)
            names[name] = shown
        for join in joins:
            if join.args.get("using") or join.args.get("method") or join.args.get("kind") not in _PLAIN_JOINS:
                raise _Fallback
        aliases = {
            self._norm(p.args.get("alias")) for p in select.expressions if isinstance(p, exp.Alias)
        }
        outputs: list[tuple[str, str, exp.DataType]] = []
        refs: list[list[_Ref]] = []
        single = next(iter(sources.items())) if len(sources) == 1 else None
        for projection in select.expressions:
            ident = projection.this
            if (
                single is not None and type(projection) is exp.Column and type(ident) is exp.Identifier
                and ident.this and not ident.quoted
                and not (projection.args.get("table") or projection.args.get("db") or projection.args.get("catalog"))
            ):
                # most projections of a wide select: a bare column of its one source, placed as
                # _type places it, without its calls (the select's cost is mostly these)
                alias, (columns, where) = single
                own = _normalized_name(ident.this, self.dialect, False)
                if own not in columns:
                    raise _Fallback
                found: list[_Ref] = []
                if self.placeholders is not None:
                    projection.set("table", exp.to_identifier(alias))
                    found.append((where, _ident_name(ident.this, False)))
                self._annotator()._set_type(projection, columns[own])
                kind = projection.type
                if not isinstance(kind, exp.DataType):
                    raise _Fallback
                outputs.append((_ident_name(ident.this, False), own, kind))
                refs.append(found)
                continue
            if _is_star(projection):
                expanded, star_refs = self._star(projection, sources)
                outputs.extend(expanded)
                refs.extend([r] for r in star_refs)
                continue
            if isinstance(projection, exp.Alias):
                ident = projection.args.get("alias")
                own = self._norm(ident)
            elif isinstance(projection, exp.Column):
                ident = projection.this
                own = self._norm(ident)
            else:
                raise _Fallback  # sqlglot would invent the name
            found = []
            kind = self._type(projection, sources, aliases, found, own)
            outputs.append((_ident_name(ident.this, False), own, kind))
            refs.append(found)
        # conditions are resolved in both modes: a column qualify cannot place anywhere in the
        # query changes what it does with every column, so it must send the query to sqlglot
        usage: list[tuple[str, list[_Ref]]] = []
        for arg, use in _USAGE_CLAUSES:
            node = select.args.get(arg)
            if node is None:
                continue
            if (
                self.placeholders is not None
                and isinstance(node, exp.Group)
                and (node.args.get("all") or any(isinstance(k, exp.Literal) for k in node.expressions))
            ):
                raise _Fallback  # GROUP BY ALL / ordinals: qualify rewrites what they read
            found = []
            self._resolve(node, sources, aliases, found)
            usage.append((use, found))
        for join in joins:
            on = join.args.get("on")
            if isinstance(on, exp.Expression):
                found = []
                self._resolve(on, sources, aliases, found)
                usage.append(("join", found))
        if self.placeholders is not None:
            self.info[id(select)] = _SelectInfo(outputs, refs, usage, names, sources)
        return outputs

    def _star(
        self, star: exp.Expression, sources: dict[str, tuple[_SourceColumns, tuple[str, str]]]
    ) -> tuple[list[tuple[str, str, exp.DataType]], list[_Ref]]:
        node = star.this if isinstance(star, exp.Column) else star
        if any(value for key, value in node.args.items()):
            raise _Fallback  # EXCEPT / REPLACE / RENAME
        if isinstance(star, exp.Column):
            if star.args.get("db") or star.args.get("catalog"):
                raise _Fallback
            source = sources.get(self._norm(star.args.get("table")))
        else:
            source = next(iter(sources.values())) if len(sources) == 1 else None
        if source is None:
            raise _Fallback
        columns, where = source
        expanded = []
        refs: list[_Ref] = []
        for key, kind in columns.items():
            ident = exp.to_identifier(key)
            if ident.quoted and self.placeholders is not None:
                raise _Fallback  # its expression text would be quoted
            name = _ident_name(ident.this, ident.quoted)
            expanded.append((name, key, kind))
            refs.append((where, name))
        return expanded, refs

    def _resolve(
        self,
        node: exp.Expression,
        sources: dict[str, tuple[_SourceColumns, tuple[str, str]]],
        aliases: set[str],
        found: list[_Ref],
        own: str | None = None,
    ) -> None:
        """Give every column under ``node`` its source (qualifying it, as qualify would) and
        type; raise :class:`_Fallback` for anything sqlglot must place."""
        for child in node.walk():
            kind = _NODE_KINDS.get(type(child))
            if kind is None:
                kind = _node_kind(type(child))
            if kind == _ORDINARY:
                continue
            if kind == _REFUSED or (kind == _STAR and not isinstance(child.parent, exp.Count)):
                raise _Fallback
            if kind == _COLUMN:
                assert isinstance(child, exp.Column)
                self._place(child, sources, aliases, found, own)

    def _place(
        self,
        column: exp.Column,
        sources: dict[str, tuple[_SourceColumns, tuple[str, str]]],
        aliases: set[str],
        found: list[_Ref],
        own: str | None,
    ) -> None:
        """One column reference: its source and type (see :meth:`_resolve`). A name among
        ``aliases`` other than ``own`` (the projection's own output name) reads a lateral alias."""
        if column.args.get("db") or column.args.get("catalog") or not isinstance(column.this, exp.Identifier):
            raise _Fallback
        name = self._norm(column.this)
        table = column.args.get("table")
        if table is not None:
            alias = self._norm(table)
            source = sources.get(alias)
            if source is None or name not in source[0]:
                raise _Fallback
        else:
            if name in aliases and name != own:
                raise _Fallback  # a lateral alias reference: dialects differ
            matches = [a for a, (columns, _where) in sources.items() if name in columns]
            if len(matches) != 1:
                raise _Fallback
            alias = matches[0]
            source = sources[alias]
        if self.placeholders is not None:
            column.set("table", exp.to_identifier(alias))
            found.append((source[1], _ident_name(column.this.this, False)))
        self._annotator()._set_type(column, source[0][name])

    def _annotator(self) -> TypeAnnotator:
        if self.annotator is None:
            self.annotator = TypeAnnotator(
                schema=MappingSchema(dialect=self.dialect), expression_metadata=_expression_metadata(self.dialect)
            )
        return self.annotator

    def _type(
        self,
        projection: exp.Expression,
        sources: dict[str, tuple[_SourceColumns, tuple[str, str]]],
        aliases: set[str],
        found: list[_Ref],
        own: str,
    ) -> exp.DataType:
        if type(projection) is exp.Column:  # most projections: a column as it is, nothing to walk
            self._place(projection, sources, aliases, found, own)
        else:
            self._resolve(projection, sources, aliases, found, own)
        annotator = self._annotator()
        column = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(column, exp.Column) and isinstance(column.type, exp.DataType):
            # a column as it is (most projections): its type is its source's, which _resolve set;
            # the annotator would only copy it up
            if column is not projection:
                annotator._set_type(projection, column.type)
            return column.type
        annotator.annotate_expression(projection)
        for node in list(annotator._null_expressions.values()):
            annotator._set_type(node, annotator.dialect.DEFAULT_NULL_TYPE)
        annotator._null_expressions.clear()
        kind = projection.type
        if not isinstance(kind, exp.DataType):
            raise _Fallback
        return kind


_ORDINARY, _REFUSED, _STAR, _COLUMN = range(4)
_NODE_KINDS: dict[type, int] = {}
"""What the fast resolver does with a node, by its class (one lookup per node, not five
isinstance checks: this walk runs over every projection and condition)."""


def _node_kind(cls: type) -> int:
    if issubclass(cls, (exp.Query, exp.Subquery, exp.Lambda, exp.Placeholder, exp.Parameter)):
        kind = _REFUSED
    elif issubclass(cls, exp.Star):
        kind = _STAR
    elif issubclass(cls, exp.Column):
        kind = _COLUMN
    else:
        kind = _ORDINARY
    _NODE_KINDS[cls] = kind
    return kind


def _is_star(projection: exp.Expression) -> bool:
    return isinstance(projection, exp.Star) or (
        isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
    )


def _schema_only(
    annotated: exp.Expression, dialect: str, depends_on: tuple[str, ...], problems: list[str]
) -> QueryInfo:
    """The columns of an annotated query as :func:`_infer` gives them, minus expressions and
    edges (the scope is built only for a set operation, whose column types need its branches)."""
    selects = annotated.selects if isinstance(annotated, exp.Query) else []
    root = build_scope(annotated) if isinstance(annotated, exp.SetOperation) else None
    if isinstance(annotated, exp.SetOperation) and root is None:
        return QueryInfo(depends_on=depends_on, problems=(*problems, "no query scope"))
    columns: list[Column] = []
    columns_known = not problems
    for projection in selects:
        if isinstance(projection, exp.Star) or (
            isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
        ):
            columns_known = False
            continue
        index = len(columns)
        type_text = (
            _set_operation_type(root, index, dialect)
            if root is not None and root.set_operation_scopes
            else _type_text(projection, dialect)
        )
        columns.append(Column(name=_output_name(projection), type=type_text, position=index + 1))
    return QueryInfo(
        columns=tuple(columns), depends_on=depends_on, columns_known=columns_known, problems=tuple(problems)
    )


@lru_cache(maxsize=65536)
def _normalized_name(name: str, dialect: str, is_table: bool) -> str:
    """A schema key as ``MappingSchema(normalize=True)`` would normalise it (cached: the same
    parent columns are normalised for every child that reads them). A plain name skips the
    identifier parse ``normalize_name`` starts with: it reads as itself in every dialect."""
    if _PLAIN_IDENTIFIER.match(name):
        identifier = exp.to_identifier(name)
        identifier.meta["is_table"] = is_table  # as normalize_name marks it (BigQuery's table rules)
        return _dialect_of(dialect).normalize_identifier(identifier).name
    return normalize_name(name, dialect=dialect, is_table=is_table).name


_PLAIN_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


_UNKNOWN_TYPE = exp.DataType(this=exp.DataType.Type.UNKNOWN)


@lru_cache(maxsize=4096)
def _schema_type(text: str | None, dialect: str) -> exp.DataType:
    """A parent column's type as sqlglot's DataType, parsed once per spelling (schemas repeat)."""
    if not text or text == UNKNOWN:
        return _UNKNOWN_TYPE
    try:
        return exp.DataType.build(text, dialect=dialect)
    except Exception:
        return _UNKNOWN_TYPE


@lru_cache(maxsize=64)
def _dialect_of(dialect: str) -> Dialect:
    return Dialect.get_or_raise(dialect)


def _render(node: exp.Expression, dialect: str) -> str:
    """SQL text of a node without the copy sqlglot makes by default (we never let it change)."""
    return _dialect_of(dialect).generate(node, copy=False)


_TYPE_TEXT: dict[tuple[exp.DataType.Type, str, tuple[str, ...]], str] = {}
"""Type texts by (type, dialect, numeric parameters): printing a type is a generator run, and a
wide project's columns repeat a few types (``decimal(18,2)``) thousands of times."""


def _type_text(projection: exp.Expression, dialect: str) -> str:
    return _data_type_text(projection.type, dialect)


def _data_type_text(kind: object, dialect: str) -> str:
    if not isinstance(kind, exp.DataType) or kind.this in (exp.DataType.Type.UNKNOWN, exp.DataType.Type.NULL):
        return UNKNOWN
    if kind.args.get("nested") or kind.args.get("values"):
        return normalize_type(_render(kind, dialect), dialect)
    params = _numeric_params(kind) if kind.expressions else ()
    if params is None:
        return normalize_type(_render(kind, dialect), dialect)
    key = (kind.this, dialect, params)  # one text per type and parameters, computed once
    text = _TYPE_TEXT.get(key)
    if text is None:
        text = _TYPE_TEXT[key] = normalize_type(_render(kind, dialect), dialect)
    return text


def _numeric_params(kind: exp.DataType) -> tuple[str, ...] | None:
    """The parameters of a type written only with numbers (``DECIMAL(18, 2)``, ``VARCHAR(20)``),
    which alone decide how it prints; None for anything else (names, nested types, comments)."""
    if kind.comments or any(value for arg, value in kind.args.items() if arg not in ("this", "expressions", "nested")):
        return None
    values = []
    for param in kind.expressions:
        literal = param.this if type(param) is exp.DataTypeParam else None
        if (
            type(literal) is not exp.Literal or literal.is_string or param.args.get("expression") is not None
            or param.comments or literal.comments
        ):
            return None
        values.append(str(literal.this))
    return tuple(values)


def _set_operation_type(scope: Scope, index: int, dialect: str) -> str:
    """The type of a UNION column: the widest of its branches' types, UNKNOWN when they clash."""
    branch_types: list[str] = []
    pending = [scope]
    while pending:
        current = pending.pop(0)
        if current.set_operation_scopes:
            pending[:0] = current.set_operation_scopes
            continue
        selects = current.expression.selects if isinstance(current.expression, exp.Query) else []
        if index >= len(selects):
            return UNKNOWN
        if isinstance(selects[index].unalias(), exp.Null):
            continue  # a NULL branch says nothing about the column's type
        branch_types.append(_type_text(selects[index], dialect))
    if not branch_types or UNKNOWN in branch_types:
        return UNKNOWN
    result = branch_types[0]
    for other in branch_types[1:]:
        verdict = compare_types(result, other, dialect)
        if verdict == "widened":
            result = other
        elif verdict not in ("same", "narrowed"):
            return UNKNOWN
    return result


def _qualify(
    query: exp.Query, dialect: str, schema: MappingSchema | None, problems: list[str]
) -> exp.Expression:
    """Qualify tables and columns; when sqlglot cannot place a column (a correlated subquery
    over a parent we know nothing about), qualify the tables only and let the scope walk place
    columns where it can."""
    try:
        return qualify(
            query,
            dialect=dialect,
            schema=schema,
            validate_qualify_columns=False,
            quote_identifiers=False,
            identify=False,
        )
    except Exception:
        pass
    try:
        return qualify(
            query,
            dialect=dialect,
            schema=schema,
            validate_qualify_columns=False,
            quote_identifiers=False,
            identify=False,
            qualify_columns=False,
        )
    except Exception as error:
        problems.append(f"cannot qualify columns: {_first_line(error)}")
        return query


def expand_star_macros(
    sql: str, *, dialect: str, schema: Mapping[str, Mapping[str, str]], resolve: Resolver | None
) -> str:
    """``sql`` with its ``dbt_utils.star`` placeholders expanded (see :func:`_expand_star_macros`),
    so that every reader of the model's SQL (inference, the semantic diff) sees real columns.
    The text is unchanged when there is none or it does not parse."""
    if STAR_FUNCTION not in sql and UNION_FUNCTION not in sql:
        return sql
    try:
        statements = sqlglot.parse(sql, dialect=dialect)
        for statement in statements:
            if statement is not None:
                _expand_star_macros(statement, schema, resolve, dialect)
        # the statements were parsed here and are dropped after: printing need not copy them
        return ";\n".join(s.sql(dialect=dialect, pretty=True, copy=False) for s in statements if s is not None)
    except Exception:  # noqa: BLE001 (bad SQL: inference reports it as it is)
        return sql


def _expand_star_macros(
    query: exp.Expression, schema: Mapping[str, Mapping[str, str]], resolve: Resolver | None, dialect: str
) -> None:
    """Replace each ``dbt_utils.star`` placeholder (see ``rules.dbt_macros``) with the columns of
    its relation, less the excluded ones, aliased with its prefix and suffix, and each
    ``union_relations`` one with its select's share of the relations' columns; with a plain star
    when a relation's columns are not known (then the model's columns are not either)."""
    def columns_of(relation: str) -> Mapping[str, str] | None:
        try:
            table = exp.to_table(relation, dialect=dialect)
        except Exception:  # noqa: BLE001 (a relation sqlglot cannot read: nothing to expand)
            return None
        parent = ((resolve(table) if resolve else None) or default_table_name(table)).lower()
        return _parent_columns(schema, parent)

    for call in list(query.find_all(exp.Anonymous)):
        function = str(call.this).lower()
        if function not in (STAR_FUNCTION, UNION_FUNCTION) or not isinstance(call.parent, exp.Select):
            continue
        args = [a.name if isinstance(a, exp.Literal) else a.sql(dialect=dialect) for a in call.expressions]
        if function == UNION_FUNCTION:
            projections = _union_projections(args, columns_of, dialect)
        else:
            relation, alias, prefix, suffix, *excluded = [*args, "", "", "", ""][: max(4, len(args))]
            columns = columns_of(relation)
            if not columns:
                projections = [exp.Column(this=exp.Star(), table=exp.to_identifier(alias)) if alias else exp.Star()]
            else:
                skip = {name.lower() for name in excluded}
                projections = []
                for name in columns:
                    if name.lower() in skip:
                        continue
                    column = exp.column(name, table=alias or None)
                    projections.append(exp.alias_(column, f"{prefix}{name}{suffix}") if prefix or suffix else column)
        select = call.parent
        index = next(i for i, e in enumerate(select.expressions) if e is call)
        select.set("expressions", [*select.expressions[:index], *projections, *select.expressions[index + 1 :]])


def _union_projections(
    args: list[str], columns_of: Callable[[str], Mapping[str, str] | None], dialect: str
) -> list[exp.Expression]:
    """One select of ``dbt_utils.union_relations``: every column of any of the relations, in
    order of first appearance (``+name`` arguments keep only those, ``-name`` drop them), null
    where this relation lacks it; a plain star when a relation's columns are not known."""
    this, rest = (args[0], args[1:]) if args else ("", [])
    relations = [a for a in rest if not a.startswith(("+", "-"))]
    include = {a[1:].lower() for a in rest if a.startswith("+")}
    exclude = {a[1:].lower() for a in rest if a.startswith("-")}
    superset: dict[str, tuple[str, str]] = {}
    own: Mapping[str, str] | None = None
    for relation in relations:
        columns = columns_of(relation)
        if not columns:
            return [exp.Star()]
        if relation == this:
            own = columns
        for name, kind in columns.items():
            superset.setdefault(name.lower(), (name, kind))
    if own is None:
        return [exp.Star()]
    present = {name.lower(): name for name in own}
    projections: list[exp.Expression] = []
    for key, (name, kind) in superset.items():
        if (include and key not in include) or key in exclude:
            continue
        if key in present:
            projections.append(exp.column(present[key]))
        else:
            null = exp.cast(exp.null(), _schema_type(kind, dialect))
            projections.append(exp.alias_(null, name))
    return projections


def _parent_columns(schema: Mapping[str, Mapping[str, str]], parent: str) -> Mapping[str, str] | None:
    """A parent's columns, looked up by fqn (exact, then ignoring case): large schemas are only
    ever read for the parents a query names."""
    found = schema.get(parent)
    if found is None:
        for key, columns in schema.items():
            if key.lower() == parent:
                return columns
    return found


def _origin_key(origin: Origin) -> tuple[str, str]:
    return (origin[0], origin[1] or "")
