"""Migration builders: for one breaking finding, a concrete way to ship it without breaking anyone.

Each builder turns a finding into steps and, where it can be generated, the SQL (or dbt YAML) to
paste: keep a removed column for the window, ship a new name beside the old one, add ``<col>_v2``
for a new type, keep a view under a removed name, or publish a new version of a contracted dbt
model with ``deprecation_date`` on the old one. Which builder serves which rule is said by the
rule's row in :mod:`rules.catalog`; when to suggest at all is :mod:`rules.migrations`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from rules.model import UNKNOWN, Asset, Change, Column, Migration


@dataclass(frozen=True)
class MigrationContext:
    """What a builder gets: the finding, the asset on both sides, the end of the window."""

    change: Change
    base: Asset | None
    head: Asset | None
    until: str
    summary: str = ""
    """The rule's description and advice (the generic suggestion says them)."""

    @property
    def dialect(self) -> str | None:
        for asset in (self.head, self.base):
            if asset is not None and asset.dialect:
                return asset.dialect
        return None

    @property
    def asset(self) -> Asset | None:
        return self.head or self.base

    @property
    def is_dbt(self) -> bool:
        return self.asset is not None and self.asset.kind == "model"

    @property
    def is_table(self) -> bool:
        return self.asset is not None and self.asset.kind == "table" and not self.asset.sql

    def base_column(self) -> Column | None:
        if self.base is None or self.change.column is None:
            return None
        return self.base.column(self.change.column)

    def head_column(self, name: str | None = None) -> Column | None:
        name = name or self.change.column
        if self.head is None or name is None:
            return None
        return self.head.column(name)


# --- SQL text helpers -------------------------------------------------------------------------


def _ident(name: str, dialect: str | None) -> str:
    """A column name as the dialect writes it (quoted only when it must be)."""
    try:
        return exp.to_identifier(name).sql(dialect=dialect or "")
    except Exception:  # noqa: BLE001 - an odd name still gets a readable suggestion
        return name


def _table(fqn: str, dialect: str | None) -> str:
    try:
        return exp.to_table(fqn).sql(dialect=dialect or "")
    except Exception:  # noqa: BLE001
        return fqn


def _type(text: str | None) -> str | None:
    return None if not text or text == UNKNOWN else text.lower()


def _deprecation_comment(table: str, column: str, note: str, dialect: str | None) -> str:
    """Mark a column deprecated where readers look (its comment), in the dialect's own syntax."""
    note = note.replace("'", "''")
    if dialect == "bigquery":
        return f"ALTER TABLE {table} ALTER COLUMN {column} SET OPTIONS (description = '{note}');"
    if dialect in ("databricks", "spark"):
        return f"ALTER TABLE {table} ALTER COLUMN {column} COMMENT '{note}';"
    return f"COMMENT ON COLUMN {table}.{column} IS '{note}';"


# --- one builder per rule ---------------------------------------------------------------------


def column_removed(ctx: MigrationContext) -> Migration:
    change, d = ctx.change, ctx.dialect
    name = change.column or ""
    col = _ident(name, d)
    bc = ctx.base_column()
    hc = ctx.head_column()
    if ctx.is_table and hc is not None and change.after:  # dropped and added again
        table = _table(change.asset, d)
        type_ = _type(hc.type) or "<type>"
        steps = (
            f"Do not drop and re-add `{name}` to change it: that empties it for every existing row. "
            f"Change its type in place, converting the values, or add `{name}_v2` beside it and "
            f"move readers to it by {ctx.until}."
        )
        sql = (f"ALTER TABLE {table} ALTER COLUMN {col} TYPE {type_} USING {col}::{type_};"
               if (d or "").lower() in ("postgres", "duckdb") else
               f"ALTER TABLE {table} ADD COLUMN {_ident(name + '_v2', d)} {type_};")
        return Migration(change.rule, change.asset, name, steps, sql)
    if ctx.is_table:
        table = _table(change.asset, d)
        steps = (
            f"Do not drop `{name}` from `{change.asset}` yet: keep it until {ctx.until}, mark it "
            f"deprecated so readers see it, and drop it in a later migration after {ctx.until}."
        )
        sql = _deprecation_comment(table, col, f"deprecated: will be dropped after {ctx.until}", d)
        sql += f"\n-- after {ctx.until}:\n-- ALTER TABLE {table} DROP COLUMN {col};"
        return Migration(change.rule, change.asset, name, steps, sql)
    written, grouped = _as_written(ctx.base.sql if ctx.base is not None else None, name, d)
    expression = written or (bc.expression if bc is not None and bc.expression else col)
    steps = (
        f"Keep `{name}` in `{change.asset}` for a deprecation window until {ctx.until}: add it back "
        f"to the select list, tell its readers to move off it, and remove it after {ctx.until}."
    )
    if grouped:
        steps += f" The query groups its rows: add `{expression}` to its GROUP BY too, or it will not run."
    if ctx.is_dbt and ctx.base is not None and not ctx.base.contract_enforced:
        plan = version_plan(ctx.base, ctx.until, [name])
        steps += (f" Or ship `{plan.name}` v{plan.next} without it and give v{plan.current} a "
                  f"`deprecation_date` of {ctx.until}.")
    sql = f"{expression} as {col}  -- deprecated: remove after {ctx.until}" if expression != col else (
        f"{col}  -- deprecated: remove after {ctx.until}"
    )
    if grouped:
        sql += f"\n-- and in the GROUP BY: {expression}"
    if ctx.head is not None and ctx.head.kind == "view" and ctx.head.sql:
        view = _view_with_column(ctx.head.sql, change.asset, expression, name, d, grouped=grouped)
        if view is not None:
            sql = f"-- keep {name} until {ctx.until}\n{view}"
    return Migration(change.rule, change.asset, name, steps, sql)


def _as_written(query: str | None, name: str, dialect: str | None) -> tuple[str | None, bool]:
    """The expression that produced ``name`` in ``query`` as its author wrote it (with their table
    aliases, which the inferred lineage does not keep), and whether the query groups its rows while
    that expression is no aggregate (then putting it back needs it in the GROUP BY too)."""
    if not query:
        return None, False
    try:
        parsed = sqlglot.parse_one(query, dialect=dialect or None)
    except Exception:  # noqa: BLE001 - advice only: fall back to the inferred expression
        return None, False
    if not isinstance(parsed, exp.Select):
        return None, False
    for projection in parsed.expressions:
        if projection.alias_or_name.lower() == name.lower():
            inner = projection.unalias()
            grouped = bool(parsed.args.get("group")) and inner.find(exp.AggFunc) is None
            return inner.sql(dialect=dialect or None), grouped
    return None, False


def _view_with_column(
    query: str, fqn: str, expression: str, name: str, dialect: str | None, *, grouped: bool = False
) -> str | None:
    """``CREATE OR REPLACE VIEW`` of the new query with the old column selected again (and grouped
    by, where the query groups), or None."""
    try:
        parsed = sqlglot.parse_one(query, dialect=dialect or None)
        if not isinstance(parsed, exp.Select):
            return None  # a UNION or something stranger: the one-line suggestion is clearer
        value = sqlglot.parse_one(expression, dialect=dialect or None)
        parsed = parsed.select(exp.alias_(value, name), copy=True)
        if grouped and parsed.args.get("group"):
            parsed = parsed.group_by(value.copy(), copy=False)
        body = parsed.sql(dialect=dialect or None, pretty=True)
    except Exception:  # noqa: BLE001 - advice only: fall back to the select-list line
        return None
    return f"CREATE OR REPLACE VIEW {_table(fqn, dialect)} AS\n{body};"


def column_renamed(ctx: MigrationContext) -> Migration:
    change, d = ctx.change, ctx.dialect
    old = change.before or change.column or ""
    new = change.after or ""
    o, n = _ident(old, d), _ident(new, d)
    if ctx.is_table:
        table = _table(change.asset, d)
        bc = ctx.base_column()
        type_ = _type(bc.type if bc is not None else None) or "<type>"
        steps = (
            f"Ship `{new}` beside `{old}` instead of renaming in place: add `{new}`, fill it from "
            f"`{old}` and have writers fill both until {ctx.until}; then drop `{old}`."
        )
        sql = (f"ALTER TABLE {table} ADD COLUMN {n} {type_};\nUPDATE {table} SET {n} = {o};\n"
               f"-- after {ctx.until}:\n-- ALTER TABLE {table} DROP COLUMN {o};")
        return Migration(change.rule, change.asset, old, steps, sql)
    steps = (
        f"Ship the new name beside the old one: select `{new}` and `{new} as {old}` until {ctx.until}, "
        f"then drop `{old}`."
    )
    # most warehouses cannot read an output alias in the same select: repeat the expression
    hc = ctx.head_column(new)
    expression = hc.expression if hc is not None and hc.expression else None
    if expression is not None:
        sql = (f"select\n    ...,\n    {expression} as {n},\n"
               f"    {expression} as {o}  -- old name, deprecated: remove after {ctx.until}")
    else:
        sql = (f"select *, {n} as {o}  -- old name, deprecated: remove after {ctx.until}\n"
               f"from (\n    <the model's query>\n)")
    if ctx.head is not None and ctx.head.kind == "view" and ctx.head.sql and expression is not None:
        view = _view_with_column(ctx.head.sql, change.asset, expression, old, d)
        if view is not None:
            sql = f"-- keep the old name {old} until {ctx.until}\n{view}"
    return Migration(change.rule, change.asset, old, steps, sql)


def column_retyped(ctx: MigrationContext) -> Migration:
    change, d = ctx.change, ctx.dialect
    name = change.column or ""
    col = _ident(name, d)
    v2 = _ident(f"{name}_v2", d)
    before, after = _type(change.before), _type(change.after)
    hc = ctx.head_column()
    if ctx.is_table:
        table = _table(change.asset, d)
        steps = (
            f"Keep `{name}` as {before or 'it was'} and add the new type as `{name}_v2`; backfill it, "
            f"move readers to `{name}_v2` by {ctx.until}, then retire `{name}`."
        )
        sql = None
        if after:
            sql = (f"ALTER TABLE {table} ADD COLUMN {v2} {after};\n"
                   f"UPDATE {table} SET {v2} = CAST({col} AS {after});")
        return Migration(change.rule, change.asset, name, steps, sql)
    expression = hc.expression if hc is not None and hc.expression else col
    bc = ctx.base_column()
    steps = (
        f"Keep `{name}` with its old type{f' ({before})' if before else ''} until {ctx.until} and "
        f"publish the new one as `{name}_v2`; readers switch, then `{name}` goes."
    )
    if bc is not None and bc.expression:
        old_part = f"{bc.expression} as {col}"  # the old logic still gives the old type
    elif before:
        old_part = f"cast({expression} as {before}) as {col}"
    else:
        old_part = f"{expression} as {col}"
    sql = f"select\n    ...,\n    {old_part},  -- old type, deprecated: remove after {ctx.until}\n    {expression} as {v2}"
    return Migration(change.rule, change.asset, name, steps, sql)


def asset_removed(ctx: MigrationContext) -> Migration:
    change, d = ctx.change, ctx.dialect
    b = ctx.base
    if b is not None and b.kind == "model":
        steps = (
            f"Keep the model `{change.asset}` until {ctx.until} and give it a `deprecation_date` so "
            "dbt warns everyone who refs it; delete it after that date."
        )
        sql = f"models:\n  - name: {b.name or change.asset}\n    deprecation_date: {ctx.until}"
        return Migration(change.rule, change.asset, None, steps, sql)
    name = _table(change.asset, d)
    if b is not None and b.kind == "view" and b.sql:
        steps = (
            f"Keep the view `{change.asset}` until {ctx.until}: leave its definition in place (below) "
            "and announce the date; drop it after that."
        )
        sql = (f"CREATE OR REPLACE VIEW {name} AS\n{b.sql.strip().rstrip(';')};\n"
               f"-- after {ctx.until}: DROP VIEW {name};")
        return Migration(change.rule, change.asset, None, steps, sql)
    cols = ", ".join(_ident(c.name, d) for c in b.columns) if b is not None and b.columns else "*"
    steps = (
        f"Keep `{change.asset}` readable until {ctx.until}: postpone the drop (mark it deprecated), or "
        "leave a view under its name that reads from its replacement; drop it after that date."
    )
    sql = (f"-- instead of dropping {name} now:\n"
           f"COMMENT ON TABLE {name} IS 'deprecated: will be dropped after {ctx.until}';\n"
           f"-- or, once the data lives elsewhere:\n"
           f"-- CREATE VIEW {name} AS SELECT {cols} FROM <replacement>;")
    if d == "bigquery":
        sql = sql.replace(
            f"COMMENT ON TABLE {name} IS 'deprecated: will be dropped after {ctx.until}';",
            f"ALTER TABLE {name} SET OPTIONS (description = 'deprecated: will be dropped after {ctx.until}');",
        )
    return Migration(change.rule, change.asset, None, steps, sql)


def asset_renamed(ctx: MigrationContext) -> Migration:
    change, d = ctx.change, ctx.dialect
    old, new = change.asset, change.after or ""
    if ctx.is_dbt and ctx.head is not None and ctx.head.fqn == old:
        # the same model under a new alias/schema: refs follow, readers of the old relation do not
        before = change.before or old
        steps = (
            f"Keep a view at the old relation `{before}` selecting from `{new}` until {ctx.until} "
            f"(e.g. a post-hook of `{old}`), and tell readers of `{before}` to move."
        )
        sql = (f"-- post_hook of {old}\nCREATE OR REPLACE VIEW {_table(before, d)} AS\n"
               f"SELECT * FROM {_table(new, d)};")
        return Migration(change.rule, old, None, steps, sql)
    if ctx.is_dbt:
        steps = (
            f"Keep a model named `{old}` that selects from `{new}` until {ctx.until}, with a "
            "`deprecation_date`, so refs to the old name keep working."
        )
        sql = (f"-- models/{old}.sql\nselect * from {{{{ ref('{new}') }}}}\n\n"
               f"# properties\nmodels:\n  - name: {old}\n    deprecation_date: {ctx.until}")
        return Migration(change.rule, old, None, steps, sql)
    steps = f"Leave a view under the old name `{old}` until {ctx.until}, then drop it."
    sql = f"CREATE VIEW {_table(old, d)} AS\nSELECT * FROM {_table(new, d)};"
    return Migration(change.rule, old, None, steps, sql)


def grain_changed(ctx: MigrationContext) -> Migration:
    change, d = ctx.change, ctx.dialect
    h = ctx.head
    if ctx.is_dbt and ctx.base is not None:
        plan = version_plan(ctx.base, ctx.until)
        steps = (
            f"Publish the new grain as version {plan.next} of `{plan.name}` and keep the old grain as "
            f"version {plan.current} until {ctx.until} (deprecation_date), so readers move on purpose."
            + plan.files
        )
        # a contracted model gets the same plan once, from suggest(); do not repeat the YAML here
        yaml = None if ctx.base.contract_enforced else plan.yaml
        return Migration(change.rule, change.asset, None, steps, yaml)
    steps = (
        f"Publish the new grain under a new name (`{change.asset}_v2`) and keep `{change.asset}` as it "
        f"was until {ctx.until}."
    )
    sql = None
    if h is not None and h.sql:
        sql = f"CREATE VIEW {_table(change.asset + '_v2', d)} AS\n{h.sql.strip().rstrip(';')};"
    return Migration(change.rule, change.asset, None, steps, sql)


def access_narrowed(ctx: MigrationContext) -> Migration:
    change = ctx.change
    name = ctx.asset.name if ctx.asset is not None and ctx.asset.name else change.asset
    steps = (
        f"Keep `{change.asset}` public until {ctx.until} with a `deprecation_date`, and narrow access "
        "in a new version, so outside refs get a warning before they fail."
    )
    sql = f"models:\n  - name: {name}\n    access: public\n    deprecation_date: {ctx.until}"
    return Migration(change.rule, change.asset, None, steps, sql)


def nullability_loosened(ctx: MigrationContext) -> Migration:
    change, d = ctx.change, ctx.dialect
    name = change.column or ""
    col = _ident(name, d)
    if ctx.is_table:
        steps = f"Keep `{name}` NOT NULL until {ctx.until} and agree with readers how nulls will be handled."
        return Migration(change.rule, change.asset, name, steps, None)
    steps = (
        f"Keep readers' guarantee: fill the new nulls of `{name}` (coalesce) until {ctx.until}, or "
        "publish the nullable column under a new name."
    )
    return Migration(change.rule, change.asset, name, steps, f"coalesce({col}, <default>) as {col}")


def nullability_tightened(ctx: MigrationContext) -> Migration:
    change, d = ctx.change, ctx.dialect
    name = change.column or ""
    col = _ident(name, d)
    table = _table(change.asset, d)
    steps = f"Backfill existing nulls in `{name}` first, then add NOT NULL; tell writers by {ctx.until}."
    sql = f"UPDATE {table} SET {col} = <value> WHERE {col} IS NULL;" if ctx.is_table else None
    return Migration(change.rule, change.asset, name, steps, sql)


def added_required(ctx: MigrationContext) -> Migration:
    change, d = ctx.change, ctx.dialect
    name = change.column or ""
    col = _ident(name, d)
    table = _table(change.asset, d)
    hc = ctx.head_column()
    type_ = _type(hc.type if hc is not None else None) or "<type>"
    steps = (
        f"Add `{name}` as nullable (or with a default) now and backfill it, so existing rows and "
        f"writers that do not send it keep working; make it NOT NULL after {ctx.until}, once every "
        "writer sends it."
    )
    sql = (f"ALTER TABLE {table} ADD COLUMN {col} {type_};\n"
           f"UPDATE {table} SET {col} = <value> WHERE {col} IS NULL;\n"
           f"-- after {ctx.until}, once writers send it:\nALTER TABLE {table} ALTER COLUMN {col} SET NOT NULL;")
    return Migration(change.rule, change.asset, name, steps, sql)


def constraint_removed(ctx: MigrationContext) -> Migration:
    change, d = ctx.change, ctx.dialect
    name = change.column
    before = change.before or ""
    if before and "(" not in before:  # accepted values (the diff shows them as a plain list)
        what = (f"may carry values its readers have never seen (now {change.after})" if change.after
                else "is no longer checked against its accepted values")
        steps = (
            f"`{name}` in `{change.asset}` {what}. Tell its readers before {ctx.until} so CASE "
            f"statements and filters can handle new values; until then keep the old list ({before})."
        )
        return Migration(change.rule, change.asset, name, steps, None)
    if ctx.is_dbt:
        test = "unique" if before.startswith("unique(") else None
        steps = (
            f"Keep `{before}` on `{change.asset}` until {ctx.until} (as a constraint or a dbt test) so "
            "readers that join or deduplicate on it keep their guarantee; announce the date."
        )
        yaml = None
        if test and name:
            yaml = (f"models:\n  - name: {ctx.asset.name if ctx.asset and ctx.asset.name else change.asset}\n"
                    f"    columns:\n      - name: {name}\n        data_tests: [{test}]")
        return Migration(change.rule, change.asset, name, steps, yaml)
    steps = (
        f"Keep `{before}` on `{change.asset}` until {ctx.until}: readers that join or deduplicate on it "
        "rely on it. Drop it in a later migration after that date."
    )
    sql = None
    kind, _, rest = before.partition("(")
    cols, _, tail = rest.partition(")")
    table = _table(change.asset, d)
    columns = ", ".join(_ident(c.strip(), d) for c in cols.split(",") if c.strip())
    if kind == "unique" and columns:
        sql = f"ALTER TABLE {table} ADD UNIQUE ({columns});"
    elif kind == "primary_key" and columns:
        sql = f"ALTER TABLE {table} ADD PRIMARY KEY ({columns});"
    elif kind == "foreign_key" and columns and tail.startswith("->"):
        sql = f"ALTER TABLE {table} ADD FOREIGN KEY ({columns}) REFERENCES {tail[2:]};"
    return Migration(change.rule, change.asset, name, steps, sql)


def unparsed(ctx: MigrationContext) -> Migration:
    change = ctx.change
    steps = (
        f"Tessera could not read {change.path or change.asset}, so it cannot tell who this change "
        "affects. Fix the statement, or list the file under `ignore:` in .tessera.yml if it is not "
        "schema."
    )
    return Migration(change.rule, change.asset, None, steps, None)


def materialization(ctx: MigrationContext) -> Migration:
    change = ctx.change
    steps = (
        f"Keep `{change.asset}` as a relation (materialized='{change.before or 'view'}') until "
        f"{ctx.until}; readers that query it directly need it to exist."
    )
    return Migration(change.rule, change.asset, None, steps,
                     f"{{{{ config(materialized='{change.before or 'view'}') }}}}")


def generic(ctx: MigrationContext) -> Migration:
    change = ctx.change
    what = ctx.summary or change.message
    steps = (
        f"{what} Agree a date with the teams that read `{change.asset}` (suggested: {ctx.until}) "
        "and keep the old behaviour until then."
    )
    return Migration(change.rule, change.asset, change.column, steps, None)


@dataclass(frozen=True)
class VersionPlan:
    """Version N+1 of a dbt model: the names, the files to keep, and the YAML to paste."""

    name: str
    current: str
    next: str
    files: str
    yaml: str


def version_plan(b: Asset, until: str, removed: Sequence[str] = ()) -> VersionPlan:
    """Version N+1 of a dbt model beside version N, which gets a ``deprecation_date``."""
    name = b.name or b.fqn.split(".v")[0]
    current = str(b.version or b.latest_version or "1")
    try:
        nxt = str(int(current) + 1)
    except ValueError:
        nxt = "2"
    excl = f"\n          - include: all\n            exclude: [{', '.join(removed)}]" if removed else ""
    columns = f"\n        columns:{excl}" if excl else ""
    files = ""
    if b.version is None and b.path and b.path.endswith(".sql"):
        stem = b.path[: -len(".sql")]
        files = (f" Keep the current SQL as `{stem}_v{current}.sql` and put the changed SQL in "
                 f"`{stem}_v{nxt}.sql`.")
    yaml = (
        f"models:\n  - name: {name}\n    latest_version: {nxt}\n    versions:\n"
        f"      - v: {nxt}{columns}\n      - v: {current}\n        deprecation_date: {until}"
    )
    return VersionPlan(name, current, nxt, files, yaml)


Builder = Callable[[MigrationContext], Migration | None]
"""A rule's migration decision: what to suggest for one of its breaking findings."""
