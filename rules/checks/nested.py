"""Fields of struct and object columns, checked one by one (see :mod:`rules.nested`).

A struct that loses a field is not "a column whose type changed" to the reader of another field:
the lost field is a ``COLUMN_REMOVED`` of its own (``billing.tier``), a new one a
``COLUMN_ADDED``, and the column-level type and logic findings are not said again. A change to a
field's type is left to the column's type finding.
"""

from __future__ import annotations

from collections.abc import Iterator

from rules.catalog import RuleId
from rules.checks.context import DiffContext, Finding, Pair, emits
from rules.nested import nested_fields


@emits(RuleId.COLUMN_REMOVED, RuleId.COLUMN_ADDED)
def fields(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    both = pair.both
    if both is None:
        return
    b, h = both
    dialect = ctx.dialect(h, b)
    for bc, hc in pair.kept_columns():
        if bc.type == hc.type:
            continue
        before, after = nested_fields(bc.type, dialect), nested_fields(hc.type, dialect)
        if not before or not after:
            continue
        removed = _tops(p for p in before if p not in after)
        added = _tops(p for p in after if p not in before)
        leaves_retyped = [
            p for p in before
            if p in after and before[p] != after[p] and not nested_fields(before[p], dialect)
        ]
        if leaves_retyped or not (removed or added):
            continue  # a field's type changed, or only their order: the column's type finding says it
        pair.nested.add(hc.key)
        line = hc.line or h.line
        for path in removed:
            yield Finding(
                RuleId.COLUMN_REMOVED, asset=pair.fqn, column=f"{hc.name}.{path}", path=h.path, line=line,
                message=(
                    f"Field `{path}` of `{hc.name}` in `{pair.fqn}` was removed: readers that select "
                    f"`{hc.name}.{path}` break (other fields of `{hc.name}` are unchanged)."
                ),
                before=before[path], after=None,
            )
        for path in added:
            yield Finding(
                RuleId.COLUMN_ADDED, asset=pair.fqn, column=f"{hc.name}.{path}", path=h.path, line=line,
                message=f"Field `{path}` was added to `{hc.name}` in `{pair.fqn}`.",
                before=None, after=after[path],
            )


def _tops(paths: Iterator[str] | list[str]) -> list[str]:
    """Paths without those under another of them (a removed struct, not each of its fields)."""
    chosen = sorted(set(paths))
    return [p for p in chosen if not any(p.startswith(q + ".") for q in chosen if q != p)]
