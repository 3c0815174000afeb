"""Checks on columns: renamed, removed (or no longer produced for a contract), added, dropped and
added again, types, nullability, accepted values, descriptions, order, and constraints.

Renames are known before removals (``Pair.renames``), so a rename reads as one COLUMN_RENAMED
rather than a removal and an addition. A removed column names the models and views still reading
it, instead of a finding on each of them; a column whose type was only lost through its input is
not reported again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from rules.catalog import RuleId
from rules.checks.context import (
    DiffContext,
    Finding,
    Pair,
    column_text,
    dropped_at,
    emits,
    names,
    plain_meta,
    same_query,
)
from rules.model import NOT_PRODUCED, PRODUCED_EXTRA, PRODUCED_TYPE, UNKNOWN, Asset, Column, column_key
from rules.types import compare_types, display_type


@emits(RuleId.COLUMN_RENAMED)
def renamed(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    both = pair.both
    if both is None:
        return
    b, h = both
    for old, new in pair.renames.items():
        bc, hc = pair.base_columns[old], pair.head_columns[new]
        yield Finding(
            RuleId.COLUMN_RENAMED, asset=pair.fqn, column=bc.name, path=h.path, line=hc.line or h.line,
            message=f"Column `{bc.name}` of `{pair.fqn}` is now called `{hc.name}`: readers of "
            f"`{bc.name}` break." + ctx.still_read(h, bc),
            before=bc.name, after=hc.name,
        )


@emits(RuleId.COLUMN_REMOVED)
def contract_gaps(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    """The query stopped producing a column the enforced contract still declares."""
    both = pair.both
    if both is None:
        return
    b, h = both
    for key, hc in pair.head_columns.items():
        bc = pair.base_columns.get(key)
        if bc is None or not hc.meta.get(NOT_PRODUCED) or bc.meta.get(NOT_PRODUCED):
            continue
        readers = ctx.reader_phrase(h, bc)
        message = (
            f"The SQL of `{pair.fqn}` no longer produces `{bc.name}`, which its enforced contract "
            "declares: `dbt build` fails on this contract."
        )
        if readers:
            message += f" Dropping `{bc.name}` from the contract too would break {readers}."
        path, line = ctx.removed_at(b, h, bc)
        yield Finding(
            RuleId.COLUMN_REMOVED, asset=pair.fqn, column=bc.name, path=path, line=line,
            message=message, before=column_text(bc), after=None,
        )


@emits(RuleId.COLUMN_REMOVED)
def removed(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    """A column head no longer has. Uncertain (review) when head's columns are unknown, for a
    snapshot (dbt keeps the column) and for a source (its YAML only documents the table)."""
    both = pair.both
    if both is None:
        return
    b, h = both
    fqn = pair.fqn
    for key in pair.removed_keys:
        if key in pair.renames:
            continue
        bc = pair.base_columns[key]
        uncertain = not h.columns_known
        still_read = ""
        if uncertain and h.path in ctx.problem_paths:
            continue  # the file could not be analysed: UNPARSED says so, once
        if uncertain and same_query(b, h):
            continue  # same query, columns just not worked out this time: nothing was removed
        if uncertain:
            message = (f"Column `{bc.name}` may have been removed from `{fqn}`: its columns could "
                       "not be worked out, so please check.")
        elif h.kind == "snapshot":
            uncertain = True  # dbt never drops a snapshot table's columns: nulls, not errors
            message = (f"Column `{bc.name}` is no longer selected by snapshot `{fqn}`: dbt keeps it in "
                       "the snapshot table, but new rows get null in it, so its readers see gaps."
                       + ctx.still_read(h, bc))
        elif h.kind == "source":
            uncertain = True  # the source's YAML documents a table this repository does not build
            message = (f"Column `{bc.name}` is no longer declared on source `{fqn}`: if the table "
                       "really lost it, models selecting it will fail" + _base_readers(ctx, b, bc))
        else:
            still_read = ctx.still_read(h, bc)
            gone_upstream = ctx.gone_upstream(b.fqn, bc.key) if same_query(b, h) else []
            message = (
                f"Column `{bc.name}` is gone from `{fqn}` because {names(gone_upstream)} "
                f"no longer {'has' if len(gone_upstream) == 1 else 'have'} it "
                f"(`{fqn}` itself did not change)."
                if gone_upstream else f"Column `{bc.name}` was removed from `{fqn}`."
            ) + still_read
        path, line = ctx.removed_at(b, h, bc)
        yield Finding(
            RuleId.COLUMN_REMOVED, asset=fqn, column=bc.name, path=path, line=line,
            message=message, before=column_text(bc), after=None,
            cap="review" if uncertain else None,
            # a reader that fails to build is never safe, whatever the mode protects
            floor="review" if still_read and not ctx.overridden(RuleId.COLUMN_REMOVED) else None,
        )


def _base_readers(ctx: DiffContext, b: Asset, bc: Column) -> str:
    """`` (`x` reads it until now).`` for a source column, from base lineage, or ``.``."""
    readers = sorted({
        e.downstream for e in ctx.base.edges
        if e.upstream == b.fqn and e.upstream_column is not None
        and column_key(e.upstream_column) == bc.key and e.downstream in ctx.head.assets
    })
    return f" ({names(readers)} read it until now)." if readers else "."


@emits(RuleId.COLUMN_ADDED, RuleId.COLUMN_ADDED_REQUIRED)
def added(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    """A new column: safe, unless a table cannot fill it or the contract declares what the SQL does
    not produce."""
    both = pair.both
    if both is None:
        return
    b, h = both
    if not b.columns_known:
        return
    fqn = pair.fqn
    new_keys = set(pair.renames.values())
    for key in pair.added_keys:
        if key in new_keys:
            continue
        hc = pair.head_columns[key]
        required = (
            h.kind == "table" and (h.materialized in (None, "table"))
            and hc.nullable is False and hc.default is None and not _self_filling(hc)
        )
        if required:
            yield Finding(
                RuleId.COLUMN_ADDED_REQUIRED, asset=fqn, column=hc.name, path=h.path,
                line=hc.line or h.line,
                message=f"Column `{hc.name}` was added to table `{fqn}` as NOT NULL without "
                "a default: adding it fails on a table that has rows, and writers that do not "
                "name it are refused.",
                before=None, after=column_text(hc),
                # the migration itself fails on a table with rows: worth a look in any mode
                floor=None if ctx.overridden(RuleId.COLUMN_ADDED_REQUIRED) else "review",
            )
        elif hc.meta.get(NOT_PRODUCED):
            yield Finding(
                RuleId.COLUMN_ADDED, asset=fqn, column=hc.name, path=h.path, line=h.line,
                message=f"Column `{hc.name}` was added to the enforced contract of `{fqn}`, "
                "but its SQL does not produce it: `dbt build` fails on this contract.",
                before=None, after=column_text(hc), floor="review",
            )
        else:
            yield Finding(
                RuleId.COLUMN_ADDED, asset=fqn, column=hc.name, path=h.path,
                line=hc.line or h.line,
                message=f"Column `{hc.name}` was added to `{fqn}`.",
                before=None, after=column_text(hc),
            )


@emits(RuleId.COLUMN_REMOVED)
def recreated(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    """A column this change drops and adds again (the "change its type" shortcut): the name
    survives, every existing row's value does not."""
    both = pair.both
    if both is None:
        return
    b, h = both
    for bc, hc in pair.kept_columns():
        where = dropped_at(h, hc.key)
        if where is None or where == dropped_at(b, bc.key):
            continue
        path, line = where
        if ctx.changed_paths is not None and path not in ctx.changed_paths:
            continue
        yield Finding(
            RuleId.COLUMN_REMOVED, asset=pair.fqn, column=hc.name, path=path, line=line,
            message=f"Column `{hc.name}` of `{pair.fqn}` is dropped and added again: every existing row "
            f"loses its value (null{'' if hc.default is None else ' or the default'} from now on), "
            "though the name survives." + ctx.still_read(h, bc),
            before=column_text(bc), after=column_text(hc),
        )


@emits(RuleId.COLUMN_TYPE_CHANGED, RuleId.COLUMN_TYPE_NARROWED, RuleId.COLUMN_TYPE_WIDENED)
def types(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    """Type changes of kept columns, and an enforced contract the SQL's types no longer meet."""
    both = pair.both
    if both is None:
        return
    b, h = both
    dialect = ctx.dialect(h, b)
    for bc, hc in pair.kept_columns():
        line = hc.line or h.line
        yield from _contract_type(pair, h, bc, hc, dialect, line)
        if bc.type != hc.type and hc.key not in pair.nested:
            yield from _type_change(pair, ctx, b, h, bc, hc, dialect, line)


def _contract_type(
    pair: Pair, h: Asset, bc: Column, hc: Column, dialect: str | None, line: int | None
) -> Iterator[Finding]:
    """The query now produces a type the enforced contract does not declare: dbt fails the build.

    Only an incompatible type (``compare_types`` says ``changed``) is said, and only when new:
    inference is close but not exact, and a widening may be what the warehouse casts anyway."""
    produced = hc.meta.get(PRODUCED_TYPE)
    if not isinstance(produced, str) or not h.contract_enforced:
        return
    if compare_types(hc.type, produced, dialect) != "changed":
        return
    was = bc.meta.get(PRODUCED_TYPE)
    if isinstance(was, str) and compare_types(bc.type, was, dialect) == "changed":
        return  # already so before this change
    yield Finding(
        RuleId.COLUMN_TYPE_CHANGED, asset=pair.fqn, column=hc.name, path=h.path, line=line,
        message=f"The SQL of `{pair.fqn}` now produces `{hc.name}` as {display_type(produced, dialect)}, "
        f"but its enforced contract declares {display_type(hc.type, dialect)}: `dbt build` fails "
        "on this contract.",
        before=display_type(hc.type, dialect), after=display_type(produced, dialect), cap="review",
    )


_TYPE_RULES = {
    "widened": RuleId.COLUMN_TYPE_WIDENED,
    "narrowed": RuleId.COLUMN_TYPE_NARROWED,
    "changed": RuleId.COLUMN_TYPE_CHANGED,
    "unknown": RuleId.COLUMN_TYPE_CHANGED,
}


def _type_change(
    pair: Pair, ctx: DiffContext, b: Asset, h: Asset, bc: Column, hc: Column, dialect: str | None,
    line: int | None,
) -> Iterator[Finding]:
    verdict = compare_types(bc.type, hc.type, dialect)
    rule = _TYPE_RULES.get(verdict)
    if rule is None:
        return
    fqn = pair.fqn
    # a type declared on one side only (YAML data_type added or dropped) is compared with an
    # inferred one: inference is close but not exact, so that is worth a look, never a block
    guessed = bc.declared_type != hc.declared_type
    uncertain = verdict == "unknown"
    shown_b, shown_h = display_type(bc.type, dialect), display_type(hc.type, dialect)
    missing = ctx.missing_inputs(h.fqn, hc.key) if hc.type == UNKNOWN else []
    if uncertain and missing and all(ctx.removed_in_base(m) for m in missing):
        return  # the input's COLUMN_REMOVED names this model as a reader that will fail
    if uncertain and missing:
        message = (
            f"`{hc.name}` in `{fqn}` reads {', '.join(f'`{m}`' for m in missing)}, which no "
            f"longer exists: `{fqn}` will fail to build unless it changes too."
        )
    elif uncertain and hc.type == UNKNOWN and ctx.lost_upstream(h.fqn, hc.key):
        return  # an input lost its type first and has its own finding: one cause, one finding
    elif uncertain and same_query(b, h) and not (bc.declared_type or hc.declared_type):
        return  # same query: the type was only inferred on one side; an input's change says why
    elif uncertain:
        message = (
            f"The type of `{hc.name}` in `{fqn}` can no longer be worked out (was {shown_b})."
            if hc.type == UNKNOWN else
            f"The type of `{hc.name}` in `{fqn}` is now known as {shown_h} (was not inferred): "
            "please check it did not change."
        )
    elif guessed:
        message = (
            f"`{hc.name}` in `{fqn}` is {'declared' if hc.declared_type else 'inferred'} as "
            f"{shown_h} now, and was {'declared' if bc.declared_type else 'inferred'} as "
            f"{shown_b}: one side is a guess, so check the declaration matches the data."
        )
    else:
        message = f"Type of `{hc.name}` in `{fqn}` {verdict}: {shown_b} → {shown_h}."
    pair.retyped.add(hc.key)
    yield Finding(
        rule, asset=fqn, column=hc.name, path=h.path, line=line, message=message,
        before=shown_b, after=shown_h,
        cap="review" if uncertain or guessed else None, floor="review" if uncertain else None,
    )


@emits(RuleId.COLUMN_NULLABILITY_LOOSENED, RuleId.COLUMN_NULLABILITY_TIGHTENED)
def nullability(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    both = pair.both
    if both is None:
        return
    b, h = both
    fqn = pair.fqn
    for bc, hc in pair.kept_columns():
        line = hc.line or h.line
        if bc.nullable is False and hc.nullable is not False:
            yield Finding(
                RuleId.COLUMN_NULLABILITY_LOOSENED, asset=fqn, column=hc.name, path=h.path, line=line,
                message=f"`{hc.name}` in `{fqn}` is no longer NOT NULL: readers may now see nulls.",
                before="not null", after="nullable",
            )
        elif bc.nullable is not False and hc.nullable is False:
            yield Finding(
                RuleId.COLUMN_NULLABILITY_TIGHTENED, asset=fqn, column=hc.name, path=h.path, line=line,
                message=f"`{hc.name}` in `{fqn}` is now NOT NULL: existing nulls and writers sending "
                "them will fail.",
                before="nullable", after="not null",
            )


@emits(RuleId.CONSTRAINT_REMOVED)
def accepted_values(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    """Accepted values no longer checked, or new ones accepted (a widening: review)."""
    both = pair.both
    if both is None:
        return
    b, h = both
    fqn = pair.fqn
    for bc, hc in pair.kept_columns():
        before_values, after_values = _accepted_values(bc), _accepted_values(hc)
        if before_values is None or (after_values is not None and after_values <= before_values):
            continue
        extra = sorted(after_values - before_values) if after_values is not None else []
        yield Finding(
            RuleId.CONSTRAINT_REMOVED, asset=fqn, column=hc.name, path=h.path, line=hc.line or h.line,
            message=(
                f"`{hc.name}` in `{fqn}` accepts new values: {', '.join(extra)}. Readers that "
                "map or filter its values (CASE, dashboards' filters) may want to handle them."
                if after_values is not None else
                f"The accepted values of `{hc.name}` in `{fqn}` are no longer checked."
            ),
            before=",".join(sorted(before_values)),
            after=None if after_values is None else ",".join(sorted(after_values)),
            # more accepted values is a widening: worth a look, not an ack (unless configured)
            cap="review" if after_values is not None and not ctx.overridden(RuleId.CONSTRAINT_REMOVED) else None,
        )


@emits(RuleId.METADATA_CHANGED)
def column_metadata(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    """Description, tags or meta of a kept column."""
    both = pair.both
    if both is None:
        return
    b, h = both
    for bc, hc in pair.kept_columns():
        changed_meta = [
            name for name, old, new in (
                ("description", bc.description, hc.description),
                ("tags", tuple(sorted(bc.tags)), tuple(sorted(hc.tags))),
                ("meta", plain_meta(bc.meta), plain_meta(hc.meta)),
            ) if old != new
        ]
        if changed_meta:
            yield Finding(
                RuleId.METADATA_CHANGED, asset=pair.fqn, column=hc.name, path=h.path,
                line=hc.line or h.line,
                message=f"The {' and '.join(changed_meta)} of `{hc.name}` in `{pair.fqn}` changed.",
                before=bc.description or None if "description" in changed_meta else None,
                after=hc.description or None if "description" in changed_meta else None,
            )


@emits(RuleId.COLUMN_REORDERED)
def reordered(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    both = pair.both
    if both is None:
        return
    b, h = both
    if not (b.columns_known and h.columns_known):
        return
    renames = pair.renames
    order_before = [renames.get(c.key, c.key) for c in sorted(b.columns, key=lambda c: c.position)]
    order_after = [c.key for c in sorted(h.columns, key=lambda c: c.position)]
    common = set(order_before) & set(order_after)
    seq_before = [k for k in order_before if k in common]
    seq_after = [k for k in order_after if k in common]
    if seq_before == seq_after:
        return
    display = {c.key: c.name for c in h.columns}
    yield Finding(
        RuleId.COLUMN_REORDERED, asset=pair.fqn, path=h.path, line=h.line,
        message=f"The columns of `{pair.fqn}` are in a new order: positional readers (INSERT … SELECT, "
        "UNION, SELECT *) may mix values up.",
        before=", ".join(display.get(k, k) for k in seq_before),
        after=", ".join(display.get(k, k) for k in seq_after),
    )


@emits(RuleId.COLUMN_ADDED)
def undeclared(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    """The SQL of an enforced contract now produces columns its YAML does not declare: dbt
    refuses the build ("contract mismatch") until the contract lists them."""
    both = pair.both
    if both is None:
        return
    b, h = both
    before = {column_key(n) for n in (b.meta or {}).get(PRODUCED_EXTRA) or ()}
    for name in (h.meta or {}).get(PRODUCED_EXTRA) or ():
        if column_key(name) in before:
            continue
        yield Finding(
            RuleId.COLUMN_ADDED, asset=pair.fqn, column=name, path=h.path, line=h.line,
            message=f"The SQL of `{pair.fqn}` produces `{name}`, which its enforced contract does not "
            "declare: `dbt build` fails with a contract mismatch until the YAML lists it (or the "
            "SQL drops it).",
            before=None, after=name, floor="review",
        )


@emits(RuleId.CONSTRAINT_REMOVED)
def constraints(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    """Keys, checks and foreign keys, on a column or the table, that no longer hold (a renamed
    column keeps its constraints; a removed one is COLUMN_REMOVED's)."""
    both = pair.both
    if both is None:
        return
    b, h = both
    renames, gone = pair.renames, pair.gone
    before = _constraints(b)
    after = set(_constraints(h))
    for con, column in before.items():
        if any(c in gone for c in con.columns):
            continue  # the column itself is gone: COLUMN_REMOVED says it
        moved = _Constraint(con.kind, tuple(renames.get(c, c) for c in con.columns), con.detail)
        if moved in after:
            continue
        hc = h.column(renames.get(column_key(column), column_key(column))) if column else None
        yield Finding(
            RuleId.CONSTRAINT_REMOVED, asset=pair.fqn,
            column=(hc.name if hc is not None else column),
            path=h.path, line=(hc.line if hc is not None and hc.line else h.line),
            message=f"Constraint {con.text()} on `{pair.fqn}` was removed: readers relying on it "
            "(joins on a key, uniqueness) may get duplicates or orphans.",
            before=con.text(), after=None,
        )


@dataclass(frozen=True)
class _Constraint:
    """A constraint in one comparable form, whether declared on the column or the table."""

    kind: str
    columns: tuple[str, ...]
    detail: str = ""

    def text(self) -> str:
        cols = ",".join(self.columns)
        return f"{self.kind}({cols}){self.detail}" if cols else f"{self.kind}{self.detail}"


_TABLE_CONSTRAINT = re.compile(r"^\s*([a-z_]+)\s*\(([^)]*)\)\s*(.*)$", re.S)


def _constraints(asset: Asset) -> dict[_Constraint, str | None]:
    """Every key/check/accepted-values constraint of ``asset`` → the column it is about (if one)."""
    out: dict[_Constraint, str | None] = {}
    for col in asset.columns:
        for raw in col.constraints:
            kind, _, detail = raw.partition(":")
            kind = kind.strip().lower()
            if kind in ("not_null", "null", ""):
                continue  # nullability has its own rules
            if kind == "accepted_values":
                continue  # compared as a set, see accepted_values
            norm_detail = ("->" + _squash(detail)) if kind == "foreign_key" and detail else (
                (":" + _squash(detail)) if detail else "")
            out[_Constraint(kind, (col.key,), norm_detail)] = col.name
    for raw in asset.constraints:
        match = _TABLE_CONSTRAINT.match(raw.strip().lower())
        if match is None:
            out[_Constraint(_squash(raw), ())] = None
            continue
        kind, cols_text, rest = match.groups()
        if kind == "check":
            out[_Constraint("check", (), ":" + _squash(cols_text + rest))] = None
            continue
        cols = tuple(column_key(c) for c in cols_text.split(",") if c.strip())
        detail = _squash(rest)
        if detail.startswith("references"):
            detail = "->" + detail[len("references"):]
        out[_Constraint(kind, cols, detail)] = cols[0] if len(cols) == 1 else None
    return out


def _squash(text: str) -> str:
    return "".join(text.lower().split())


def _accepted_values(col: Column) -> frozenset[str] | None:
    for raw in col.constraints:
        kind, _, detail = raw.partition(":")
        if kind.strip().lower() == "accepted_values":
            return frozenset(v.strip() for v in detail.split(",") if v.strip())
    return None


def _self_filling(col: Column) -> bool:
    """Identity/serial/auto-increment columns fill themselves, so NOT NULL without default is fine."""
    text = f"{col.type} {' '.join(col.constraints)}".lower()
    return any(word in text for word in ("serial", "identity", "autoincrement", "auto_increment", "generated"))
