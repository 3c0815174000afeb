"""When a new GROUP BY key cannot split a row: keys functionally dependent on the old ones.

A report that groups by ``organization_key`` and now also by ``organization_name`` keeps one row
per organization when the name depends on the key. Nothing in SQL says so by itself; declared
keys do. A new key is dependent when it is reached from the old keys through:

- a relation unique on columns the keys already hold: a derived table or CTE grouped by them
  (``group by k``), one selecting ``distinct``, or a model, seed or source that declares them a
  key (a ``unique`` test, ``dbt_utils.unique_combination_of_columns``, a primary key, the
  ``unique_key``): every column of that relation is then fixed;
- an equality in a join condition (``a.k = b.k``) with a column already fixed;
- the model's own declared unique key, when the old keys hold all of its columns (the test says
  two rows never share them, so no added key can split one).

Only additions are judged here; anything else (a removed key, DISTINCT or a dedup changed, keys
that are not columns) stays the grain finding it was.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from sqlglot import exp

from rules.infer import parse_query
from rules.model import Asset, column_key

ANY = "*"
"""A relation's every column (it is fixed once one of its unique keys is)."""

Lookup = Callable[[exp.Table], "Asset | None"]
Ref = tuple[str, str]
"""A column as (relation identity, column key): the identity is the table's name (what it reads,
not the alias it is given in one query) or a derived table's alias."""

_KEY = re.compile(r"^\s*(unique|primary_key)\s*\(([^)]*)\)", re.I)


def declared_keys(asset: Asset) -> list[frozenset[str]]:
    """The column sets ``asset`` declares unique: tests, constraints and the incremental key."""
    keys: list[frozenset[str]] = []
    for col in asset.columns:
        if any(c.split(":", 1)[0].strip().lower() in ("unique", "primary_key") for c in col.constraints):
            keys.append(frozenset({col.key}))
    for raw in asset.constraints:
        match = _KEY.match(raw)
        if match is not None:
            keys.append(frozenset(column_key(c.strip().strip("'\"")) for c in match.group(2).split(",") if c.strip()))
    if asset.unique_key:
        names = [column_key(p.strip().strip("'\"")) for k in asset.unique_key for p in re.split(r"[,\[\]]", k)]
        keys.append(frozenset(n for n in names if n))
    return [k for k in keys if k]


def only_dependent_keys_added(before_sql: str, after_sql: str, dialect: str, head: Asset, lookup: Lookup) -> bool:
    """Whether the head query only adds GROUP BY keys that the base keys already determine."""
    before, _ = parse_query(before_sql, dialect)
    after, _ = parse_query(after_sql, dialect)
    if not isinstance(before, exp.Select) or not isinstance(after, exp.Select):
        return False
    if bool(before.args.get("distinct")) != bool(after.args.get("distinct")):
        return False
    b_sources, a_sources = _sources(before, lookup), _sources(after, lookup)
    b_keys, a_keys = _group_keys(before, b_sources), _group_keys(after, a_sources)
    if b_keys is None or a_keys is None or not b_keys or not set(b_keys) < set(a_keys):
        return False
    kept = {key for key in b_keys if isinstance(key, tuple)}
    if _own_key_held(after, a_sources, kept, head):
        return True
    fixed = _closure(after, a_sources, kept)
    added = [key for key in a_keys if key not in b_keys]
    return all(isinstance(key, tuple) and (key in fixed or (key[0], ANY) in fixed) for key in added)


class _Source:
    """One relation a SELECT reads: what it is, and the column sets it is unique on."""

    def __init__(self, identity: str, keys: list[frozenset[str]]) -> None:
        self.identity, self.keys = identity, keys


def _sources(select: exp.Select, lookup: Lookup) -> dict[str, _Source]:
    """The FROM and JOIN relations of ``select`` by the name its columns use (alias or name)."""
    ctes = {cte.alias_or_name.lower(): cte.this for cte in (select.args.get("with_") or exp.With()).expressions}
    found: dict[str, _Source] = {}
    relations = [select.args.get("from_")] + list(select.args.get("joins") or [])
    for node in relations:
        target = node.this if isinstance(node, (exp.From, exp.Join)) else None
        if isinstance(target, exp.Table):
            name = target.name.lower()
            alias = (target.alias or target.name).lower()
            if not target.db and name in ctes:
                found[alias] = _Source(f"cte:{name}", _query_keys(ctes[name]))
            else:
                asset = lookup(target)
                found[alias] = _Source(".".join(p for p in (target.db.lower(), name) if p), declared_keys(asset) if asset else [])
        elif isinstance(target, exp.Subquery):
            alias = target.alias.lower()
            found[alias] = _Source(f"subquery:{alias}", _query_keys(target.this))
    return found


def _query_keys(query: exp.Expression | None) -> list[frozenset[str]]:
    """What a derived table is unique on: its GROUP BY columns (when it outputs them all), or its
    whole row under DISTINCT."""
    if not isinstance(query, exp.Select):
        return []
    outputs = {e.alias_or_name.lower(): e.unalias() for e in query.expressions}
    if query.args.get("distinct"):
        return [frozenset(column_key(n) for n in outputs)]
    group = query.args.get("group")
    if group is None:
        return []
    named: set[str] = set()
    for key in group.expressions:
        if isinstance(key, exp.Literal) and key.is_int and 0 < int(key.this) <= len(query.expressions):
            named.add(query.expressions[int(key.this) - 1].alias_or_name.lower())
            continue
        out = next((n for n, e in outputs.items() if e == key or (isinstance(key, exp.Column) and n == key.name.lower())), None)
        if out is None:
            return []
        named.add(out)
    return [frozenset(column_key(n) for n in named)]


def _ref(column: exp.Column, sources: dict[str, _Source]) -> Ref | None:
    if column.table:
        source = sources.get(column.table.lower())
        return (source.identity, column_key(column.name)) if source else None
    if len(sources) == 1:
        return (next(iter(sources.values())).identity, column_key(column.name))
    return None


def _group_keys(select: exp.Select, sources: dict[str, _Source]) -> list[Ref | str] | None:
    """GROUP BY keys as column refs where they are columns (position and output-alias keys
    resolved), else their SQL; None without a GROUP BY."""
    group = select.args.get("group")
    if group is None:
        return None
    aliases = {e.alias.lower(): e.this for e in select.expressions if isinstance(e, exp.Alias)}
    keys: list[Ref | str] = []
    for key in group.expressions:
        if isinstance(key, exp.Literal) and key.is_int and 0 < int(key.this) <= len(select.expressions):
            key = select.expressions[int(key.this) - 1].unalias()
        elif isinstance(key, exp.Column) and not key.table and key.name.lower() in aliases:
            key = aliases[key.name.lower()]
        ref = _ref(key, sources) if isinstance(key, exp.Column) else None
        keys.append(ref if ref is not None else key.sql().lower())
    return keys


def _equalities(select: exp.Select) -> Iterable[tuple[exp.Column, exp.Column]]:
    for join in select.args.get("joins") or []:
        condition = join.args.get("on")
        for eq in condition.find_all(exp.EQ) if condition is not None else ():
            if isinstance(eq.this, exp.Column) and isinstance(eq.expression, exp.Column):
                yield eq.this, eq.expression


def _closure(select: exp.Select, sources: dict[str, _Source], start: set[Ref]) -> set[Ref]:
    """Every column the ``start`` columns determine, through join equalities and unique keys."""
    fixed = set(start)
    pairs = [(_ref(a, sources), _ref(b, sources)) for a, b in _equalities(select)]
    edges = [(a, b) for a, b in pairs if a is not None and b is not None]
    while True:
        grown = set(fixed)
        for a, b in edges:
            if a in grown or (a[0], ANY) in grown:
                grown.add(b)
            if b in grown or (b[0], ANY) in grown:
                grown.add(a)
        for source in sources.values():
            if any(all((source.identity, c) in grown for c in key) for key in source.keys):
                grown.add((source.identity, ANY))
        if grown == fixed:
            return fixed
        fixed = grown


def _own_key_held(select: exp.Select, sources: dict[str, _Source], kept: set[Ref], head: Asset) -> bool:
    """The model's declared unique key is made of outputs that are all old group keys."""
    outputs: dict[str, Ref | None] = {}
    for e in select.expressions:
        inner = e.unalias()
        outputs[column_key(e.alias_or_name)] = _ref(inner, sources) if isinstance(inner, exp.Column) else None
    return any(all(outputs.get(c) in kept for c in key) for key in declared_keys(head))
