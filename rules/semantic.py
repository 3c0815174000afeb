"""What a change to a query means: grain, filters, joins and column logic, compared scope by scope.

Both queries are parsed with the dialect, qualified (``GROUP BY 1`` and alias references resolved)
and their derived tables hoisted into CTEs. Then the outermost select is compared with the
outermost select, and each CTE with its counterpart: the CTE of the same name, or, for a CTE that
was renamed, the one whose body means the same. Table aliases are replaced by what they name, and
case, whitespace and comments are dropped, AND-ed conditions are sorted, and an import CTE
(``with orders as (select * from ...)``) is read through, so reformatting, re-aliasing, renaming
a CTE or adding an import CTE finds nothing. A column changed inside a CTE is reported on the
output columns that read it. LIMIT/OFFSET count as filters; GROUP BY ALL is the grain of the
non-aggregate columns.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.optimizer.eliminate_subqueries import eliminate_subqueries
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify import qualify

from rules.catalog import RuleId
from rules.infer import group_by_all_keys, is_cte_reference, query_of

_FILTER_CLAUSES = (("where", "WHERE"), ("having", "HAVING"), ("qualify", "QUALIFY"))
_OUTER = ""


@dataclass(frozen=True)
class SemanticDiff:
    """One difference in meaning between two versions of a query."""

    rule: RuleId
    column: str | None
    message: str
    before: str | None = None
    after: str | None = None
    keys_are_new_columns: bool = False
    """A grain change that only adds GROUP BY keys, each one a column the select newly outputs: the
    projection grew and SQL asks every plain column to be grouped. Rows split only if the new key
    is not determined by the old ones, which the SQL alone cannot tell."""


# --- normalisation ----------------------------------------------------------------------------


def _strip_comments(node: exp.Expression) -> exp.Expression:
    for sub in node.walk():
        if sub.comments:
            sub.comments = None
    return node


_PARSED: OrderedDict[tuple[str, str], tuple[exp.Expression | None, ...] | Exception] = OrderedDict()
"""The last queries :func:`parsed_statements` parsed (or the error parsing raised), by text and dialect."""
_PARSED_KEPT = 32


def parsed_statements(sql: str, dialect: str | None, *, take: bool = False) -> tuple[exp.Expression | None, ...]:
    """``sqlglot.parse(sql)``, parsed once for the readers that follow each other: a diff reads
    every changed query three times (its canonical text, its final ``select *``, its meaning),
    and a parse costs more than a copy. The trees are shared: a reader that changes one copies
    it first, except the last reader, which ``take``s them (they are then parsed again if anyone
    asks later). Raises what parsing raised."""
    key = (sql, dialect or "")
    found = _PARSED.pop(key, None) if take else _PARSED.get(key)
    if found is None:
        try:
            found = tuple(sqlglot.parse(sql, dialect=dialect or None))
        except Exception as error:  # sqlglot raises ParseError/TokenError, and worse on odd input
            found = error
        if not take:
            _PARSED[key] = found
            while len(_PARSED) > _PARSED_KEPT:
                _PARSED.popitem(last=False)
    if isinstance(found, Exception):
        raise found
    return found


def normalize_sql(sql: str, dialect: str) -> str:
    """The query in one canonical spelling: case, whitespace and comments never count."""
    dialect = dialect or None  # type: ignore[assignment]
    try:
        statements = [s.copy() for s in parsed_statements(sql, dialect) if s is not None]
    except Exception:
        return _token_text(sql, dialect)
    if not statements or any(isinstance(s, exp.Command) for s in statements):
        return _token_text(sql, dialect)
    parts = []
    for statement in statements:
        try:
            statement = normalize_identifiers(statement, dialect=dialect)
        except Exception:
            pass
        # the statement is this function's own copy: the generator need not copy it again
        parts.append(_strip_comments(statement).sql(dialect=dialect, comments=False, copy=False))
    return ";\n".join(parts)


def _token_text(sql: str, dialect: str | None) -> str:
    """Fallback for SQL sqlglot cannot parse: its tokens, lower-cased (comments are not tokens)."""
    try:
        tokens = sqlglot.tokenize(sql, dialect=dialect)
    except Exception:
        return " ".join(sql.lower().split())
    return " ".join(t.text if t.token_type.name in ("STRING", "IDENTIFIER") else t.text.lower() for t in tokens)


def _prepare(sql: str, dialect: str) -> exp.Query | None:
    try:  # the last reader of the query's trees (see parsed_statements): they are this one's to change
        statements = [s for s in parsed_statements(sql, dialect, take=True) if s is not None]
    except Exception:
        return None
    query, _problem = query_of(statements)
    if query is None:
        return None
    query = _strip_comments(query)
    try:
        query = qualify(
            query,
            dialect=dialect,
            validate_qualify_columns=False,
            quote_identifiers=False,
            identify=False,
        )
    except Exception:
        try:
            query = normalize_identifiers(query, dialect=dialect)
        except Exception:
            pass
    try:
        query = eliminate_subqueries(query)
    except Exception:
        pass
    for ident in query.find_all(exp.Identifier):  # show names as people write them
        if not ident.quoted:
            ident.set("this", ident.this.lower())
    return query if isinstance(query, exp.Query) else None


# --- one scope in comparable form -------------------------------------------------------------


@dataclass
class _Scope:
    """The comparable parts of one select (or of each branch of a set operation)."""

    distinct: str | None = None
    group: frozenset[str] = frozenset()
    filters: dict[str, str] = field(default_factory=dict)
    sources: list[tuple[str, str, str]] = field(default_factory=list)
    """(source, join kind, condition) in order; the FROM source has kind ``from``."""
    columns: dict[str, str] = field(default_factory=dict)
    reads: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    """Output column -> the (cte, column) pairs it reads directly."""
    branches: list[_Scope] = field(default_factory=list)
    set_kind: str | None = None
    dedup: frozenset[str] | None = None
    """Partition keys of a ``row_number() ... = 1`` filter (QUALIFY, or a WHERE on a CTE's row
    number): the select keeps one row per key, so the keys are grain like GROUP BY's."""
    dedup_in_qualify: bool = False
    dedup_reads: frozenset[tuple[str, str]] = frozenset()
    """The (cte, column) whose row number the WHERE keeps at 1."""
    rebased: Callable[[], tuple[frozenset[str], dict[str, str]]] | None = field(
        default=None, compare=False, repr=False
    )
    """Group keys and column texts with the FROM source's qualifier dropped (joins only): compared
    against a single-source select, whose columns carry no qualifier, re-qualifying is no change."""

    def signature(self) -> tuple[object, ...]:
        return (
            self.distinct,
            self.group,
            self.dedup,
            tuple(sorted(self.filters.items())),
            tuple(self.sources),
            tuple(self.columns.items()),
            self.set_kind,
            tuple(b.signature() for b in self.branches),
        )


class _Reader:
    """Turns a prepared query into named scopes, with CTE names mapped through ``renames``."""

    def __init__(
        self,
        dialect: str,
        ctes: Iterable[tuple[str, exp.Expression]],
        renames: Mapping[str, str],
        passthrough: set[str] | None = None,
    ) -> None:
        self.dialect = dialect
        self.bodies = dict(ctes)
        self.cte_names = set(self.bodies)
        self.renames = dict(renames)
        self.passthrough = passthrough
        """CTE names (as in the base query) that may be read through; None: every plain one."""
        self._through: dict[str, str | None] = {}

    def _source_name(self, table: exp.Table) -> str:
        if table.name in self.cte_names and is_cte_reference(table):
            through = self._passthrough(table.name)
            if through is not None:
                return through
            return "cte:" + self.renames.get(table.name, table.name)
        return ".".join(p.name for p in table.parts)

    def _passthrough(self, name: str) -> str | None:
        """The relation an import CTE (``with orders as (select * from ref)``) merely renames:
        reading through it is reading that relation, so adding or removing one changes nothing."""
        if name in self._through:
            return self._through[name]
        self._through[name] = None  # guards cycles
        body = self.bodies.get(name)
        result = None
        allowed = self.passthrough is None or self.renames.get(name, name) in self.passthrough
        if allowed and isinstance(body, exp.Select) and _is_plain_projection(body):
            from_ = body.args.get("from_") or body.args.get("from")
            if isinstance(from_, exp.From) and isinstance(from_.this, exp.Table):
                result = self._source_name(from_.this)
        self._through[name] = result
        return result

    def _display(self, source: str) -> str:
        return source.removeprefix("cte:")

    def read(self, query: exp.Expression) -> _Scope:
        if isinstance(query, exp.Subquery):
            query = query.this
        if isinstance(query, exp.SetOperation):
            scope = _Scope(set_kind=type(query).__name__ + ("" if query.args.get("distinct") else " ALL"))
            for branch in (query.this, query.expression):
                inner = self.read(branch)
                if inner.set_kind == scope.set_kind:
                    scope.branches.extend(inner.branches)
                else:
                    scope.branches.append(inner)
            first = scope.branches[0] if scope.branches else _Scope()
            scope.columns = dict(first.columns)
            for branch in scope.branches:
                for position, reads in enumerate(branch.reads.values()):
                    names = list(first.columns)
                    if position < len(names):
                        scope.reads.setdefault(names[position], set()).update(reads)
            return scope
        if not isinstance(query, exp.Select):
            return _Scope(columns={"*": self._text(query, {})})
        aliases = self._aliases(query)
        scope = _Scope()
        distinct = query.args.get("distinct")
        if distinct is not None:
            on = distinct.args.get("on")
            scope.distinct = "DISTINCT" + (f" ON {self._text(on, aliases)}" if on is not None else "")
        group = query.args.get("group")
        keys: list[exp.Expression] = []
        if isinstance(group, exp.Group):
            keys = group_by_all_keys(query) if group.args.get("all") else list(group.expressions)
            keys = [_positional(key, query) for key in keys]
            scope.group = frozenset(self._text(g, aliases) for g in keys)
        self._read_dedup(query, scope, aliases)
        for arg, label in _FILTER_CLAUSES:
            node = query.args.get(arg)
            if isinstance(node, exp.Expression):
                scope.filters[label] = self._condition(node.this, aliases)
        for arg, label in (("limit", "LIMIT"), ("offset", "OFFSET")):
            node = query.args.get(arg)
            if isinstance(node, exp.Expression):
                scope.filters[label] = self._text(node.expression or node.this, aliases) if isinstance(
                    node.expression or node.this, exp.Expression
                ) else self._text(node, aliases)
        from_ = query.args.get("from_") or query.args.get("from")
        if isinstance(from_, exp.From):
            scope.sources.append((self._source_of(from_.this), "from", ""))
        for join in query.args.get("joins") or ():
            kind = " ".join(
                part for part in (join.args.get("method"), join.args.get("side"), join.args.get("kind")) if part
            ).upper() or "INNER"
            condition = join.args.get("on")
            using = join.args.get("using")
            text = self._condition(condition, aliases) if isinstance(condition, exp.Expression) else ""
            if using:
                text = "USING " + ",".join(self._text(u, aliases) for u in using)
            scope.sources.append((self._source_of(join.this), kind, text))
        for projection in query.selects:
            name = projection.alias_or_name
            body = projection.unalias() if isinstance(projection, exp.Alias) else projection
            scope.columns[name] = self._text(body, aliases)
            scope.reads[name] = self._reads(body, aliases)
        if isinstance(from_, exp.From) and isinstance(from_.this, exp.Table) and len(scope.sources) > 1:
            scope.rebased = self._rebase(query, keys, {**aliases, from_.this.alias_or_name: ""})
        return scope

    def _rebase(
        self, query: exp.Select, keys: list[exp.Expression], aliases: Mapping[str, str | None]
    ) -> Callable[[], tuple[frozenset[str], dict[str, str]]]:
        """Texts read with ``aliases`` on demand (only a comparison against a single-source select
        needs them, so most selects never pay for a second rendering)."""
        found: list[tuple[frozenset[str], dict[str, str]]] = []

        def texts() -> tuple[frozenset[str], dict[str, str]]:
            if not found:
                columns = {
                    p.alias_or_name: self._text(p.unalias() if isinstance(p, exp.Alias) else p, aliases)
                    for p in query.selects
                }
                found.append((frozenset(self._text(k, aliases) for k in keys), columns))
            return found[0]

        return texts

    def _read_dedup(self, query: exp.Select, scope: _Scope, aliases: Mapping[str, str | None]) -> None:
        """The partition keys of a ``row_number() = 1`` filter, in QUALIFY or in a WHERE on a row
        number computed by this select or by the CTE it reads."""
        qualify = query.args.get("qualify")
        if isinstance(qualify, exp.Qualify):
            keys = self._dedup_keys(qualify.this, query, aliases)
            if keys is not None:
                scope.dedup, scope.dedup_in_qualify = keys, True
                return
        where = query.args.get("where")
        if not isinstance(where, exp.Where):
            return
        from_ = query.args.get("from_") or query.args.get("from")
        source = from_.this if isinstance(from_, exp.From) else None
        if not isinstance(source, exp.Table) or not (source.name in self.cte_names and is_cte_reference(source)):
            return
        body = self.bodies.get(source.name)
        if not isinstance(body, exp.Select):
            return
        for part in _conjuncts(where.this):
            column = _kept_first(part)
            if not isinstance(column, exp.Column):
                continue
            window = _row_number(_projection(body, column.name))
            if window is not None:
                scope.dedup = self._partition(window, self._aliases(body))
                scope.dedup_reads = frozenset({(self.renames.get(source.name, source.name), column.name)})
                return

    def _dedup_keys(
        self, condition: exp.Expression, query: exp.Select, aliases: Mapping[str, str | None]
    ) -> frozenset[str] | None:
        for part in _conjuncts(condition):
            kept = _kept_first(part)
            if isinstance(kept, exp.Column) and not kept.table:
                kept = _projection(query, kept.name)
            window = _row_number(kept)
            if window is not None:
                return self._partition(window, aliases)
        return None

    def _partition(self, window: exp.Window, aliases: Mapping[str, str | None]) -> frozenset[str]:
        return frozenset(self._text(key, aliases) for key in window.args.get("partition_by") or ())

    def _source_of(self, node: exp.Expression) -> str:
        if isinstance(node, exp.Table):
            return self._source_name(node)
        return "query:" + self._text(node, {})

    def _aliases(self, select: exp.Select) -> dict[str, str | None]:
        """alias -> source name, or None where it must stay (a source used twice)."""
        found: dict[str, str] = {}
        nodes = []
        from_ = select.args.get("from_") or select.args.get("from")
        if isinstance(from_, exp.From):
            nodes.append(from_.this)
        nodes.extend(j.this for j in select.args.get("joins") or ())
        for node in nodes:
            if isinstance(node, exp.Table):
                found[node.alias_or_name] = self._source_name(node)
        shown = {alias: self._display(source).rsplit(".", 1)[-1] for alias, source in found.items()}
        counts: dict[str, int] = {}
        for name in shown.values():
            counts[name] = counts.get(name, 0) + 1
        single = len(found) == 1
        out: dict[str, str | None] = {}
        for alias in found:
            if single:
                out[alias] = ""
            elif counts[shown[alias]] == 1:
                out[alias] = shown[alias]
            else:
                out[alias] = None
        return out

    def _reads(self, node: exp.Expression, aliases: Mapping[str, str | None]) -> set[tuple[str, str]]:
        del aliases
        reads: set[tuple[str, str]] = set()
        select = node.find_ancestor(exp.Select)
        lookup: dict[str, str] = {}
        if isinstance(select, exp.Select):
            from_ = select.args.get("from_") or select.args.get("from")
            nodes = [from_.this] if isinstance(from_, exp.From) else []
            nodes.extend(j.this for j in select.args.get("joins") or ())
            for source in nodes:
                if isinstance(source, exp.Table):
                    lookup[source.alias_or_name] = self._source_name(source)
        cte_sources = [s for s in lookup.values() if s.startswith("cte:")]
        for column in node.find_all(exp.Column):
            if column.table:
                source = lookup.get(column.table)
                if source and source.startswith("cte:"):
                    reads.add((source[4:], column.name))
            else:
                for source in cte_sources:
                    reads.add((source[4:], column.name))
        return reads

    def _condition(self, node: exp.Expression, aliases: Mapping[str, str | None]) -> str:
        """A condition's text with AND-ed parts sorted and ``a = b`` / ``b = a`` made one, so that
        reordering a filter or a join condition is not a change."""
        node = node.unnest() if isinstance(node, exp.Paren) else node
        if isinstance(node, exp.And):
            parts = sorted(self._condition(part, aliases) for part in node.flatten())
            return " AND ".join(parts)
        if isinstance(node, exp.EQ | exp.NEQ):
            left, right = node.this, node.expression
            if isinstance(left, exp.Literal) and not isinstance(right, exp.Literal):
                left, right = right, left  # 'paid' = status reads as status = 'paid'
            sides = [self._text(left, aliases), self._text(right, aliases)]
            if not isinstance(right, exp.Literal):
                sides.sort()
            operator = "=" if isinstance(node, exp.EQ) else "<>"
            return f"{sides[0]} {operator} {sides[1]}"
        return self._text(node, aliases)

    def _text(self, node: exp.Expression, aliases: Mapping[str, str | None]) -> str:
        """The node's SQL with table aliases replaced by what they name and CTE names mapped.

        The tree is rewritten in place and restored afterwards (copying it costs more than
        everything else here)."""
        restore: list[tuple[exp.Expression, str, object]] = []
        for column in node.find_all(exp.Column):
            table = column.table
            if not table or table not in aliases:
                continue
            replacement = aliases[table]
            if replacement is None:
                continue
            restore.append((column, "table", column.args.get("table")))
            column.set("table", exp.to_identifier(replacement) if replacement else None)
        for table in node.find_all(exp.Table):
            if table.name in self.renames and is_cte_reference(table):
                restore.append((table, "this", table.args.get("this")))
                table.set("this", exp.to_identifier(self.renames[table.name]))
        try:
            return _generator(self.dialect).generate(node, copy=False)
        except Exception:
            return node.sql(comments=False)
        finally:
            for target, arg, value in reversed(restore):
                target.set(arg, value)


@lru_cache(maxsize=32)
def _positional(key: exp.Expression, query: exp.Select) -> exp.Expression:
    """``GROUP BY 2`` groups by the second projection: compare what it names, not the number."""
    if isinstance(key, exp.Literal) and key.is_int:
        index = int(key.this) - 1
        if 0 <= index < len(query.selects):
            projection = query.selects[index]
            return projection.unalias() if isinstance(projection, exp.Alias) else projection
    return key


def _conjuncts(node: exp.Expression) -> list[exp.Expression]:
    node = node.unnest() if isinstance(node, exp.Paren) else node
    return list(node.flatten()) if isinstance(node, exp.And) else [node]


def _kept_first(node: exp.Expression) -> exp.Expression | None:
    """``x = 1``, ``x <= 1`` or ``x < 2`` (either way round): the ``x`` kept at its first row."""
    if not isinstance(node, exp.EQ | exp.LTE | exp.LT | exp.GTE | exp.GT):
        return None
    left, right = node.this, node.expression
    flipped = isinstance(left, exp.Literal)
    if flipped:
        left, right = right, left
    if not isinstance(right, exp.Literal) or not right.is_int:
        return None
    value = int(right.this)
    wanted = {exp.EQ: 1, exp.LTE: 1, exp.LT: 2} if not flipped else {exp.EQ: 1, exp.GTE: 1, exp.GT: 2}
    return left if wanted.get(type(node)) == value else None


def _projection(select: exp.Select, name: str) -> exp.Expression | None:
    for projection in select.selects:
        if isinstance(projection, exp.Alias) and projection.alias_or_name.lower() == name.lower():
            return projection.unalias()
    return None


def _row_number(node: exp.Expression | None) -> exp.Window | None:
    """The window of a ``row_number() over (partition by ...)`` (the dedup idiom), else None."""
    if isinstance(node, exp.Window) and isinstance(node.this, exp.RowNumber) and node.args.get("partition_by"):
        return node
    return None


def _generator(dialect: str) -> Dialect:
    return Dialect.get_or_raise(dialect)


_ROW_CHANGING_ARGS = ("where", "group", "having", "qualify", "distinct", "limit", "offset", "joins", "laterals")


def _is_plain_projection(select: exp.Select) -> bool:
    """A select that only passes columns through (``*`` or columns under their own names)."""
    if any(select.args.get(arg) for arg in _ROW_CHANGING_ARGS):
        return False
    for projection in select.selects:
        if isinstance(projection, exp.Star):
            continue
        body = projection.unalias() if isinstance(projection, exp.Alias) else projection
        if not isinstance(body, exp.Column) or body.name != projection.alias_or_name:
            return False
    return True


def _plain_ctes(query: exp.Query, renames: Mapping[str, str]) -> set[str]:
    return {
        renames.get(name, name)
        for name, body in _ctes(query)
        if isinstance(body, exp.Select) and _is_plain_projection(body)
    }


def _ctes(query: exp.Query) -> list[tuple[str, exp.Expression]]:
    with_ = query.args.get("with_") or query.args.get("with")
    if not isinstance(with_, exp.With):
        return []
    return [(cte.alias_or_name, cte.this) for cte in with_.expressions]


def _read_all(
    query: exp.Query, dialect: str, renames: Mapping[str, str], passthrough: set[str] | None = None
) -> tuple[dict[str, _Scope], list[str]]:
    ctes = _ctes(query)
    reader = _Reader(dialect, ctes, renames, passthrough)
    scopes = {renames.get(name, name): reader.read(body) for name, body in ctes}
    scopes[_OUTER] = reader.read(query)  # reading a select never looks into its WITH
    return scopes, [renames.get(name, name) for name, _ in ctes]


def _match_ctes(before: exp.Query, after: exp.Query, dialect: str) -> dict[str, str]:
    """after name -> before name, for CTEs renamed without changing what they compute."""
    before_names = [name for name, _ in _ctes(before)]
    after_ctes = _ctes(after)
    renames: dict[str, str] = {}
    unmatched_before = [n for n in before_names if n not in {a for a, _ in after_ctes}]
    if not unmatched_before:
        return renames
    before_scopes, _ = _read_all(before, dialect, {})
    for name, body in after_ctes:
        if name in before_names:
            continue
        reader = _Reader(dialect, after_ctes, renames)
        signature = reader.read(body).signature()
        for candidate in unmatched_before:
            if before_scopes[candidate].signature() == signature:
                renames[name] = candidate
                unmatched_before.remove(candidate)
                break
    return renames


# --- comparison -------------------------------------------------------------------------------


def _where(name: str) -> str:
    return "the final select" if name == _OUTER else f"CTE `{name}`"


def _dependents(scopes: Mapping[str, _Scope], cte: str, column: str) -> list[str]:
    """Output columns of the final select that read ``cte.column``, directly or through CTEs."""
    memo: dict[tuple[str, str], bool] = {}

    def reaches(scope_name: str, col: str, depth: int = 0) -> bool:
        key = (scope_name, col)
        if key in memo or depth > 50:
            return memo.get(key, False)
        memo[key] = False
        scope = scopes.get(scope_name)
        if scope is None:
            return False
        result = False
        for source, source_col in scope.reads.get(col, ()):
            if (source == cte and source_col == column) or reaches(source, source_col, depth + 1):
                result = True
                break
        memo[key] = result
        return result

    return [name for name in scopes[_OUTER].columns if reaches(_OUTER, name)]


def _requalified(b: _Scope, a: _Scope) -> tuple[frozenset[str], dict[str, str], frozenset[str], dict[str, str]]:
    """Group keys and columns of both sides, comparable when one side joined a new source to the
    same FROM (its columns now carry the qualifier the single-source side never needed)."""
    b_group, b_cols, a_group, a_cols = b.group, b.columns, a.group, a.columns
    if b.sources and a.sources and b.sources[0][0] == a.sources[0][0]:
        if len(b.sources) == 1 and a.rebased is not None:
            a_group, a_cols = a.rebased()
        elif len(a.sources) == 1 and b.rebased is not None:
            b_group, b_cols = b.rebased()
    return b_group, b_cols, a_group, a_cols


def _compare_scope(
    name: str, b: _Scope, a: _Scope, b_all: Mapping[str, _Scope], a_all: Mapping[str, _Scope],
    dedup_changed: frozenset[tuple[str, str]] = frozenset(),
) -> list[SemanticDiff]:
    out: list[SemanticDiff] = []
    where = _where(name)
    if b.set_kind or a.set_kind:
        if b.set_kind != a.set_kind or len(b.branches) != len(a.branches):
            out.append(
                SemanticDiff(
                    RuleId.FILTER_CHANGED,
                    None,
                    f"The set operation in {where} changed ({b.set_kind or 'none'}, {len(b.branches) or 1}"
                    f" branches → {a.set_kind or 'none'}, {len(a.branches) or 1} branches): rows come from"
                    " different queries.",
                    b.set_kind,
                    a.set_kind,
                )
            )
            return out
        for index, (bb, ab) in enumerate(zip(b.branches, a.branches, strict=True)):
            branch_diffs = _compare_scope(name, bb, ab, b_all, a_all, dedup_changed)
            for diff in branch_diffs:
                if diff.rule == RuleId.COLUMN_LOGIC_CHANGED:
                    continue  # positional: reported below on the set operation's columns
                out.append(
                    SemanticDiff(diff.rule, diff.column, f"{diff.message} (branch {index + 1})", diff.before, diff.after)
                )
            for position, (bcol, acol) in enumerate(zip(bb.columns.values(), ab.columns.values(), strict=False)):
                names = list(a.columns)
                if bcol != acol and position < len(names):
                    out.append(_column_diff(name, names[position], bcol, acol, a_all))
        return _dedupe(out)

    b_group, b_columns, a_group, a_columns = _requalified(b, a)
    if (b.distinct, b_group, b.dedup) != (a.distinct, a_group, a.dedup):
        before = _grain_text(b, b_group)
        after = _grain_text(a, a_group)
        passes_through = name == _OUTER or not (a_all[_OUTER].group or a_all[_OUTER].distinct)
        rule = RuleId.GRAIN_CHANGED if passes_through else RuleId.COLUMN_LOGIC_CHANGED
        new_outputs = {text for column, text in a_columns.items() if column not in b_columns}
        out.append(
            SemanticDiff(
                rule,
                None,
                f"The grain of {where} changed: one row per {before} → one row per {after}.",
                before,
                after,
                keys_are_new_columns=(
                    (b.distinct, b.dedup) == (a.distinct, a.dedup) and b_group < a_group
                    and a_group - b_group <= new_outputs
                ),
            )
        )
    for label in ("WHERE", "HAVING", "QUALIFY", "LIMIT", "OFFSET"):
        old, new = b.filters.get(label), a.filters.get(label)
        if old == new or (
            label == "QUALIFY" and b.dedup != a.dedup
            and (b.dedup_in_qualify or old is None) and (a.dedup_in_qualify or new is None)
        ):
            continue  # a new (or no longer a) dedup key is the grain finding above
        verb = "added" if old is None else "removed" if new is None else "changed"
        out.append(SemanticDiff(RuleId.FILTER_CHANGED, None, f"The {label} filter of {where} was {verb}.", old, new))
    out.extend(_compare_sources(where, b.sources, a.sources))
    for column, old in b_columns.items():
        new = a_columns.get(column)
        if new is None or new == old or (name, column) in dedup_changed:
            continue
        if name == _OUTER:
            out.append(_column_diff(name, column, old, new, a_all))
        else:
            dependents = _dependents(a_all, name, column)
            if not dependents and column in b.columns:
                out.append(
                    SemanticDiff(
                        RuleId.COLUMN_LOGIC_CHANGED,
                        None,
                        f"`{column}` in {where} is computed differently.",
                        old,
                        new,
                    )
                )
            for dependent in dependents:
                out.append(
                    SemanticDiff(
                        RuleId.COLUMN_LOGIC_CHANGED,
                        dependent,
                        f"`{dependent}` reads `{column}` of {where}, which is computed differently.",
                        old,
                        new,
                    )
                )
    return out


def _column_diff(name: str, column: str, old: str, new: str, a_all: Mapping[str, _Scope]) -> SemanticDiff:
    del a_all
    return SemanticDiff(
        RuleId.COLUMN_LOGIC_CHANGED,
        column,
        f"`{column}` in {_where(name)} is computed differently.",
        old,
        new,
    )


def _grain_text(scope: _Scope, group: frozenset[str]) -> str:
    parts = []
    if group:
        parts.append("(" + ", ".join(sorted(group)) + ")")
    if scope.dedup:
        parts.append("first row per (" + ", ".join(sorted(scope.dedup)) + ")")
    if scope.distinct:
        parts.append(scope.distinct.lower() + " row")
    return " and ".join(parts) if parts else "input row"


def _compare_sources(
    where: str, before: list[tuple[str, str, str]], after: list[tuple[str, str, str]]
) -> list[SemanticDiff]:
    out: list[SemanticDiff] = []
    b_from = next((s for s in before if s[1] == "from"), None)
    a_from = next((s for s in after if s[1] == "from"), None)
    if b_from and a_from and b_from[0] != a_from[0]:
        out.append(
            SemanticDiff(
                RuleId.JOIN_CHANGED,
                None,
                f"{where[0].upper()}{where[1:]} reads from `{_show(a_from[0])}` instead of `{_show(b_from[0])}`.",
                _show(b_from[0]),
                _show(a_from[0]),
            )
        )
    b_joins = [s for s in before if s[1] != "from"]
    a_joins = [s for s in after if s[1] != "from"]
    remaining = list(a_joins)
    for join in b_joins:
        match = next((j for j in remaining if j[0] == join[0]), None)
        if match is None:
            out.append(
                SemanticDiff(
                    RuleId.JOIN_CHANGED, None, f"The {join[1]} JOIN to `{_show(join[0])}` in {where} was removed.",
                    _join_text(join), None,
                )
            )
            continue
        remaining.remove(match)
        if match != join:
            what = "type" if match[1] != join[1] else "condition"
            out.append(
                SemanticDiff(
                    RuleId.JOIN_CHANGED, None, f"The {what} of the JOIN to `{_show(join[0])}` in {where} changed.",
                    _join_text(join), _join_text(match),
                )
            )
    for join in remaining:
        out.append(
            SemanticDiff(
                RuleId.JOIN_CHANGED, None, f"A new {join[1]} JOIN to `{_show(join[0])}` was added in {where}.",
                None, _join_text(join),
            )
        )
    return out


def _show(source: str) -> str:
    return source.removeprefix("cte:").removeprefix("query:")


def _join_text(join: tuple[str, str, str]) -> str:
    source, kind, condition = join
    on = "" if not condition else (f" {condition}" if condition.startswith("USING") else f" ON {condition}")
    return f"{kind} JOIN {_show(source)}{on}"


def _dedupe(diffs: list[SemanticDiff]) -> list[SemanticDiff]:
    """One finding per difference, even when several scopes show it."""
    seen: set[tuple[str, str | None, str | None, str | None]] = set()
    out = []
    for diff in diffs:
        key = (diff.rule, diff.column, diff.before, diff.after)
        if key not in seen:
            seen.add(key)
            out.append(diff)
    return out


def compare_queries(before: str, after: str, *, dialect: str) -> list[SemanticDiff]:
    """The differences in meaning between two versions of a query (empty when only form changed).

    Raises nothing: SQL that cannot be parsed compares as text, and a difference there is one
    RuleId.COLUMN_LOGIC_CHANGED without a column.
    """
    b = _prepare(before, dialect)
    a = _prepare(after, dialect)
    if b is None or a is None:
        if normalize_sql(before, dialect) == normalize_sql(after, dialect):
            return []
        return [SemanticDiff(RuleId.COLUMN_LOGIC_CHANGED, None, "The query changed (it could not be compared in detail).")]
    renames = _match_ctes(b, a, dialect)
    # an import CTE is read through only where it is one on both sides (or exists on one side
    # only): a CTE that gains logic must not look like a change of source
    b_names = {name for name, _ in _ctes(b)}
    a_names = {renames.get(name, name) for name, _ in _ctes(a)}
    b_plain, a_plain = _plain_ctes(b, {}), _plain_ctes(a, renames)
    passthrough = (b_plain & a_plain) | (b_plain - a_names) | (a_plain - b_names)
    b_scopes, _ = _read_all(b, dialect, {}, passthrough)
    a_scopes, _ = _read_all(a, dialect, renames, passthrough)
    # the row number a changed dedup filters on is that grain change, not a logic change of its own
    dedup_changed = frozenset(
        read for name, scope in a_scopes.items()
        if name in b_scopes and b_scopes[name].dedup != scope.dedup
        for read in scope.dedup_reads | b_scopes[name].dedup_reads
    )
    diffs: list[SemanticDiff] = []
    diffs.extend(_compare_scope(_OUTER, b_scopes[_OUTER], a_scopes[_OUTER], b_scopes, a_scopes, dedup_changed))
    for name, scope in b_scopes.items():
        if name == _OUTER or name not in a_scopes:
            continue
        diffs.extend(_compare_scope(name, scope, a_scopes[name], b_scopes, a_scopes, dedup_changed))
    return _dedupe(diffs)
