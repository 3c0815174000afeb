"""Every check the diff runs, in the order it runs them: the rules' detection in one list.

A check is a small function ``(pair, ctx) -> Iterable[Finding]`` (see :mod:`rules.checks.context`)
in the module of its subject: whole assets (:mod:`~rules.checks.assets`), columns
(:mod:`~rules.checks.columns`), what a query means (:mod:`~rules.checks.semantics`) and what
readers of a versioned model get (:mod:`~rules.checks.versions`). Each
declares the rules it finds with ``@emits``. The order matters where one check leaves a note for a
later one (a type finding makes a changed cast no new column logic; a new unique key is the grain
change the query comparison would say again), and it decides which of two findings with the same
rule, asset and column comes first.
"""

from __future__ import annotations

from rules.checks import assets, columns, nested, semantics, versions
from rules.checks.context import Check

CHECKS: tuple[Check, ...] = (
    assets.removed,
    assets.renamed,
    assets.relation_moved,
    assets.access,
    assets.contract,
    assets.materialization,
    assets.version,
    versions.latest_moved,
    assets.unique_key,
    columns.renamed,
    columns.contract_gaps,
    columns.removed,
    columns.added,
    nested.fields,
    columns.recreated,
    columns.types,
    columns.nullability,
    columns.accepted_values,
    columns.column_metadata,
    columns.reordered,
    columns.undeclared,
    columns.constraints,
    semantics.query,
    assets.metadata,
    assets.unparsed,
)
