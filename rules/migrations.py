"""Migration suggestions: for each breaking change, a concrete way to ship it without breaking anyone.

Tessera's point is to say *what to do*, not only that something is wrong. Each suggestion names a
date (today + the deprecation window) and, where it can be generated, the SQL (or dbt YAML) to
paste. The builder for each rule is on its row in :mod:`rules.catalog` (the builders themselves
are :mod:`rules.migration_builders`); this module decides which findings get one: breaking ones
(and a NOT NULL column added without default, whose migration fails), not one a model only
inherited from its inputs, plus one new-version plan per contracted dbt model.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from rules import catalog
from rules.catalog import RuleId
from rules.migration_builders import MigrationContext, generic, version_plan
from rules.model import Asset, Change, Migration, Snapshot


def suggest(
    changes: Sequence[Change],
    base: Snapshot,
    head: Snapshot,
    *,
    today: datetime.date,
    window_days: int = 30,
) -> list[Migration]:
    """One suggestion per breaking change (plus one new-version plan per contracted dbt model)."""
    until = (today + datetime.timedelta(days=window_days)).isoformat()
    out: list[Migration] = []
    versioned: set[str] = set()
    for change in changes:
        if change.severity != "breaking" and not (
            change.rule == RuleId.COLUMN_ADDED_REQUIRED and change.severity == "review"
        ):
            continue  # (a NOT NULL column without default is review, but its migration fails: help)
        rule = catalog.RULES_BY_ID.get(change.rule)
        summary = f"{rule.description} {rule.advice}" if rule is not None else ""
        ctx = MigrationContext(change, base.assets.get(change.asset), _head_asset(change, head), until, summary)
        if rule is not None and rule.inherited and _inherited(ctx):
            continue  # the asset's own definition did not change: the input's suggestion fixes both
        builder = rule.migrate if rule is not None else generic
        try:
            migration = builder(ctx)
        except Exception:  # noqa: BLE001 - one odd asset must not cost every other suggestion
            migration = generic(ctx)
        if migration is not None and migration not in out:
            out.append(migration)
        b = ctx.base
        if (
            b is not None and b.kind == "model" and b.contract_enforced
            and rule is not None and rule.versionable and change.asset not in versioned
        ):
            versioned.add(change.asset)
            out.append(_new_version(ctx, [c for c in changes if c.asset == change.asset
                                         and c.severity == "breaking"]))
    return out


def _inherited(ctx: MigrationContext) -> bool:
    """Whether the change reached the asset through its inputs: the same definition (checksum of
    its SQL and properties) on both sides, so there is nothing to change in it."""
    b, h = ctx.base, ctx.head
    if b is None or h is None or b.kind not in ("model", "view") or h.kind != b.kind:
        return False
    return b.checksum is not None and b.checksum == h.checksum


def _head_asset(change: Change, head: Snapshot) -> Asset | None:
    if change.rule == RuleId.ASSET_RENAMED and change.after and change.asset not in head.assets:
        return head.assets.get(change.after)
    return head.assets.get(change.asset)


def _new_version(ctx: MigrationContext, changes: Sequence[Change]) -> Migration:
    """For a contracted dbt model: ship the change as version N+1, deprecate version N."""
    b = ctx.base
    assert b is not None
    removed = sorted({c.column for c in changes if c.rule == RuleId.COLUMN_REMOVED and c.column})
    plan = version_plan(b, ctx.until, removed)
    steps = (
        f"`{b.fqn}` has an enforced contract: ship this change as version {plan.next} of `{plan.name}` "
        f"and keep version {plan.current} with `deprecation_date: {ctx.until}`, so readers move when "
        "they are ready." + plan.files
    )
    return Migration(changes[0].rule if changes else ctx.change.rule, b.fqn, None, steps, plan.yaml)
