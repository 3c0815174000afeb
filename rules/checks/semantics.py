"""Checks on what a query means: grain, filters, joins and column logic (through
:mod:`rules.semantic`), and SQL that changed only in form.

Both sides are compared in one form: an unpinned ``ref`` switching to a new latest version reads
as the model itself (VERSION_DEPRECATED says it once), and ``select * from final`` is unwrapped.
Comparisons are kept in the run's cache (the costliest step of a diff), so a warm ``tessera
check`` compares nothing twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

import sqlglot
from sqlglot import exp

from rules.catalog import RuleId
from rules.checks.context import DiffContext, Finding, Pair, emits
from rules.checks.grain import declared_keys, only_dependent_keys_added
from rules.model import UNKNOWN, Asset, column_key
from rules.semantic import SemanticDiff, compare_queries, normalize_sql, parsed_statements

_KNOWN_RULES = frozenset(rule.value for rule in RuleId)


@emits(
    RuleId.GRAIN_CHANGED, RuleId.FILTER_CHANGED, RuleId.JOIN_CHANGED, RuleId.COLUMN_LOGIC_CHANGED,
    RuleId.METADATA_CHANGED,
)
def query(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    """The query's meaning, scope by scope; a change only in form is METADATA_CHANGED."""
    both = pair.both
    if both is None:
        return
    b, h = both
    fqn = pair.fqn
    if not b.sql or not h.sql or b.sql == h.sql:
        return
    if not h.columns_known and h.path in ctx.problem_paths:
        return  # the new query could not be read: UNPARSED says so, a comparison would be noise
    dialect = ctx.dialect(h, b)
    before_sql, after_sql = _unversioned(ctx, b.sql, dialect), _unversioned(ctx, h.sql, dialect)
    # Queries equal in canonical text never differ in meaning, so a comparison that finds a
    # difference settles it; the canonical texts (a copy and a print of each query) are made only
    # when it finds none, or cannot compare.
    diffs = _compared(ctx, before_sql, after_sql, dialect)
    if not diffs and _normalized(ctx, before_sql, dialect) == _normalized(ctx, after_sql, dialect):
        if pair.renamed_to is not None or before_sql != b.sql or after_sql != h.sql:
            return  # ASSET_RENAMED / VERSION_DEPRECATED already say why the SQL changed
        yield Finding(
            RuleId.METADATA_CHANGED, asset=fqn, path=h.path, line=h.line,
            message=f"The SQL of `{fqn}` changed only in form (formatting, comments, case).",
        )
        return
    skip = pair.gone | set(pair.renames) | set(pair.renames.values())
    if diffs is None:
        yield from _expression_changes(b, h, fqn, skip)
        return
    for d in diffs:
        if d.rule not in _KNOWN_RULES or _said_otherwise(d, pair, skip, dialect):
            continue
        if d.rule == RuleId.GRAIN_CHANGED and _dependent_keys(ctx, before_sql, after_sql, dialect, h):
            continue
        yield _semantic_finding(d, fqn, b, h)


def _semantic_finding(d: SemanticDiff, fqn: str, b: Asset, h: Asset) -> Finding:
    """One difference as a finding. New GROUP BY keys that are also new columns, where nothing
    declares the grain, are a review: adding an attribute forces it into the GROUP BY, and only a
    declared key could show the rows split (a declared key the old keys hold shows they do not)."""
    hc = h.column(d.column) if d.column else None
    unproven = d.rule == RuleId.GRAIN_CHANGED and d.keys_are_new_columns and not (declared_keys(b) or declared_keys(h))
    message = d.message or f"{d.rule} in `{fqn}`."
    if unproven:
        message += (
            " Each new key is also a new column, and nothing declares the grain of"
            f" `{fqn}` (no unique test, primary key or unique_key): rows split only if the new key"
            " is not fixed by the old ones, so this is for review, not an acknowledgement."
        )
    return Finding(
        RuleId(d.rule), asset=fqn, column=(hc.name if hc is not None else d.column), path=h.path,
        line=(hc.line if hc is not None and hc.line else h.line),
        message=message, before=d.before, after=d.after, cap="review" if unproven else None,
    )


def _said_otherwise(d: SemanticDiff, pair: Pair, skip: set[str], dialect: str | None) -> bool:
    """Whether another finding already says this difference: the column is renamed or gone, only
    a cast changed (the type finding says it, or the type is the same), or the new unique key
    already says the grain changed."""
    if d.column is not None and (column_key(d.column) in skip or column_key(d.column) in pair.nested):
        return True
    if d.rule == RuleId.GRAIN_CHANGED:
        return pair.grain_said
    if d.rule != RuleId.COLUMN_LOGIC_CHANGED or not d.column or pair.both is None:
        return False
    b, h = pair.both
    hc, bc = h.column(d.column), b.column(d.column)
    return (
        hc is not None and bc is not None
        and (hc.key in pair.retyped or (bc.type == hc.type != UNKNOWN))
        and _without_casts(d.before, dialect) == _without_casts(d.after, dialect)
    )


def _dependent_keys(ctx: DiffContext, before: str, after: str, dialect: str | None, h: Asset) -> bool:
    """The new GROUP BY keys are fixed by the old ones (see :mod:`rules.checks.grain`): the
    output's new columns ride along, one row still means what it meant."""
    relations = {_plain(a.relation): a for a in ctx.head.assets.values() if a.relation}

    def lookup(table: exp.Table) -> Asset | None:
        name = ".".join(p.name.lower() for p in table.parts)
        return relations.get(name) or ctx.head.assets.get(name) or ctx.head.assets.get(table.name.lower())

    try:
        return only_dependent_keys_added(
            _unwrap_final_select_star(before, dialect), _unwrap_final_select_star(after, dialect),
            dialect or "", h, lookup,
        )
    except Exception:  # noqa: BLE001 - unsure: the grain finding stands
        return False


def _plain(relation: str | None) -> str:
    return ".".join(p.strip().strip('"`[]') for p in (relation or "").split(".") if p.strip()).lower()


def _expression_changes(b: Asset, h: Asset, fqn: str, skip: set[str]) -> Iterator[Finding]:
    """Without the semantic comparison, a column's normalised expression still tells."""
    for bc in b.columns:
        hc = h.column(bc.name)
        if hc is None or bc.key in skip or bc.expression is None or hc.expression is None:
            continue
        if bc.expression != hc.expression:
            yield Finding(
                RuleId.COLUMN_LOGIC_CHANGED, asset=fqn, column=hc.name, path=h.path,
                line=hc.line or h.line,
                message=f"`{hc.name}` in `{fqn}` is computed differently.",
                before=bc.expression, after=hc.expression,
            )


def _normalized(ctx: DiffContext, sql: str, dialect: str | None) -> str:
    if ctx.cache is None:
        return normalized_sql(sql, dialect)
    key = ctx.cache_key("normalized", dialect, sql)
    hit = ctx.cache.get(key)
    if isinstance(hit, str):
        return hit
    value = normalized_sql(sql, dialect)
    ctx.cache.put(key, value)
    return value


def _compared(ctx: DiffContext, before: str, after: str, dialect: str | None) -> tuple[SemanticDiff, ...] | None:
    if ctx.cache is None:
        return _compare_queries(before, after, dialect)
    key = ctx.cache_key("semantic", dialect, before, after)
    hit = ctx.cache.get(key)
    if isinstance(hit, dict) and "diffs" in hit:
        diffs: tuple[SemanticDiff, ...] | None = hit["diffs"]
        return diffs
    value = _compare_queries(before, after, dialect)
    ctx.cache.put(key, {"diffs": value})
    return value


def _unversioned(ctx: DiffContext, sql: str, dialect: str | None) -> str:
    """``sql`` with every versioned model's relation (``dim_customers_v2``) read as the model
    (``dim_customers``): an unpinned ``ref`` switching to a new latest version is said once, by
    VERSION_DEPRECATED, not as a new grain, join and column logic in every reader."""
    names = ctx.version_relations
    lowered = sql.lower()
    if not names or not any(n in lowered for n in names):
        return sql
    try:
        tree = sqlglot.parse_one(sql, read=dialect or None)
    except Exception:  # noqa: BLE001 - the comparison reports unreadable SQL itself
        return sql
    touched = False
    for table in tree.find_all(exp.Table):
        model = names.get(table.name.lower())
        if model is not None:
            table.set("this", exp.to_identifier(model))
            touched = True
    for column in tree.find_all(exp.Column):  # ``dim_customers_v2.id`` qualifiers too
        model = names.get(column.table.lower()) if column.table else None
        if model is not None:
            column.set("table", exp.to_identifier(model))
    return tree.sql(dialect=dialect or None) if touched else sql


# --- comparing SQL ------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def normalized_sql(sql: str, dialect: str | None) -> str:
    """``semantic.normalize_sql``: two queries equal after it differ only in form, never meaning.

    Cached: rename detection compares every removed asset with every added one."""
    try:
        return normalize_sql(sql, dialect or "")
    except Exception:  # noqa: BLE001 - bad SQL must not stop the diff; compare roughly instead
        return _rough_normalize(sql)


def _rough_normalize(sql: str) -> str:
    text = re.sub(r"--[^\n]*", " ", sql)
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return " ".join(text.lower().split())


_CLAUSES_OF_A_PLAIN_SELECT_STAR = (
    "joins", "where", "group", "having", "qualify", "order", "limit", "offset", "distinct",
    "laterals", "pivots", "windows", "sample",
)


def _final_select_star_target(tree: exp.Expression) -> exp.CTE | None:
    """The CTE ``tree`` is a bare ``select * from`` of, when it is of that shape."""
    with_ = tree.args.get("with_") if isinstance(tree, exp.Select) else None
    source = tree.args.get("from_") if with_ is not None else None
    table = source.this if isinstance(source, exp.From) else None
    if (
        with_ is None or with_.args.get("recursive")
        or len(tree.expressions) != 1 or not isinstance(tree.expressions[0], exp.Star)
        or any(tree.args.get(k) for k in _CLAUSES_OF_A_PLAIN_SELECT_STAR)
        or not isinstance(table, exp.Table) or table.db or table.catalog
    ):
        return None
    name = table.name.lower()
    target = next((c for c in with_.expressions if c.alias_or_name.lower() == name), None)
    if target is None or not isinstance(target.this, exp.Select) or target.this.args.get("with_"):
        return None
    rest = [c for c in with_.expressions if c is not target]
    if any(t.name.lower() == name and not t.db for c in rest for t in c.find_all(exp.Table)):
        return None  # another CTE reads it too: it must stay a CTE
    return target


def _unwrap_final_select_star(sql: str, dialect: str | None) -> str:
    """``with ..., final as (<q>) select * from final`` → ``with ... <q>``: the same query.

    dbt style guides end models with ``select * from final``; moving a query into such a CTE
    changes nothing a reader sees, so both sides are compared in this form. Returns ``sql``
    unchanged when it is not of that shape (or cannot be parsed)."""
    if "*" not in sql:
        return sql
    try:
        statements = parsed_statements(sql, dialect)
    except Exception:  # noqa: BLE001 - the comparison reports unreadable SQL itself
        return sql
    if len(statements) != 1 or statements[0] is None:
        return sql  # several statements are not one query of that shape
    tree = statements[0]  # shared (see parsed_statements): only read here, the unwrapped parts copied
    changed = False
    for _ in range(8):  # a chain of select * from final CTEs
        target = _final_select_star_target(tree)
        if target is None:
            break
        rest = [c for c in tree.args["with_"].expressions if c is not target]
        body = target.this.copy()
        if rest:
            body.set("with_", exp.With(expressions=[c.copy() for c in rest]))
        tree, changed = body, True
    return tree.sql(dialect=dialect or None, copy=False) if changed else sql  # changed: a copy of ours


@lru_cache(maxsize=1024)
def _compare_queries(before: str, after: str, dialect: str | None) -> tuple[SemanticDiff, ...] | None:
    """``semantic.compare_queries``, or None when it fails (then per-column expressions decide).

    Cached: the service re-analyses a PR on every push, mostly with the same model pairs, and
    a comparison costs tens of milliseconds."""
    try:
        before, after = _unwrap_final_select_star(before, dialect), _unwrap_final_select_star(after, dialect)
        return tuple(compare_queries(before, after, dialect=dialect or ""))
    except Exception:  # noqa: BLE001 - a comparison failure must not stop the diff
        return None


def _without_casts(expression: str | None, dialect: str | None) -> str | None:
    """An expression with every CAST/TRY_CAST/``::`` unwrapped and ``count(1)`` read as
    ``count(*)``: equal texts differ only in casts or in how rows are counted."""
    if expression is None:
        return None
    try:
        tree = sqlglot.parse_one(expression, read=dialect or None)
    except Exception:  # noqa: BLE001 - not comparable: keep the finding
        return expression
    tree = tree.transform(lambda n: n.this if isinstance(n, (exp.Cast, exp.TryCast)) else n)
    for count in tree.find_all(exp.Count):  # count(1) counts rows exactly as count(*) does
        if isinstance(count.this, exp.Literal) and not count.args.get("distinct"):
            count.set("this", exp.Star())
    return tree.sql(dialect=dialect or None).lower()
