"""Checks on dbt model versions as readers see them.

``ref('m')`` without ``v=`` means ``m``'s latest version. When ``latest_version`` moves, every
unpinned reader silently starts reading another version: a column the old latest had and the new
one lacks is gone *for them* (a reader that selects it fails to build), while readers pinned with
``ref('m', v=1)`` are untouched. The finding is reported on the new latest version, whose readers
in head are exactly the ones that moved (and those already pinned to it, which never had it).
"""

from __future__ import annotations

from collections.abc import Iterator

from rules.catalog import RuleId
from rules.checks.context import DiffContext, Finding, Pair, emits, names


@emits(RuleId.COLUMN_REMOVED)
def latest_moved(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    """Columns unpinned readers lose when ``latest_version`` moves to this version."""
    both = pair.both
    if both is None:
        return
    b, h = both
    old, new = str(b.latest_version or ""), str(h.latest_version or "")
    if not old or old == new or str(h.version or "") != new:
        return
    model = h.name or pair.fqn.rsplit(".v", 1)[0]
    before = ctx.base.assets.get(f"{model}.v{old}")
    if before is None:
        return
    moved = sorted(
        a.fqn for a in ctx.head.assets.values()
        if pair.fqn in a.depends_on
        and a.fqn not in ctx.ignored_fqns
        and (was := ctx.base.assets.get(a.fqn)) is not None
        and before.fqn in was.depends_on
    )
    moved += sorted(
        e.name for e in ctx.head.exposures.values()
        if pair.fqn in e.depends_on
        and (was_exposure := ctx.base.exposures.get(e.name)) is not None
        and before.fqn in was_exposure.depends_on
    )
    if not moved:
        return
    kept = {c.key for c in h.columns}
    path, line = ctx.properties_at(h)
    for column in before.columns:
        if column.key in kept:
            continue
        yield Finding(
            RuleId.COLUMN_REMOVED, asset=pair.fqn, column=column.name, path=path, line=line,
            message=(
                f"`ref('{model}')` now means version {new} instead of {old}, which has no `{column.name}`: "
                f"{names(moved)} {'reads' if len(moved) == 1 else 'read'} `{model}` without pinning a "
                f"version and {'loses' if len(moved) == 1 else 'lose'} it (pin `ref('{model}', v={old})` "
                "to keep reading it)."
            ),
            before=f"{before.fqn}.{column.name}", after=None,
        )
