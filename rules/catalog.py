"""The rule catalog: every change Tessera knows, what it means and how it behaves.

One table, in one place (like sqlglot's optimizer ``RULES``): the checks (:mod:`rules.checks`)
find changes and name them by id; each rule's row says how much it matters per compatibility mode,
how far its impact reaches (the column, the whole asset, direct readers, refused refs), in which
snapshot its readers are found, and which migration builder suggests the way out. The rows mirror
DESIGN.md's table exactly; a test keeps the two in step.

Adding a rule:

1. its id in :class:`RuleId` and its row in :data:`RULES`, both here (severities, description, advice,
   the migration builder: ``migration_builders.generic`` or a new one, and its reach);
2. one check function yielding its findings, decorated ``@emits(RuleId.NEW)``, in the
   :mod:`rules.checks` module of its subject and listed in ``rules.checks.CHECKS``;
3. one case file, ``tests/rules/cases/NEW.yml`` (two dialects, one case where it must not fire).

``tests/rules/test_catalog.py`` fails while any of the three is missing.

Modes: ``backward`` protects downstream readers, ``forward`` protects history and writers (old rows
must still fit), ``full`` is both, ``none`` reports but never blocks (every ``breaking`` becomes
``review``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from rules import migration_builders as mb
from rules.model import MODES, SEVERITIES


class RuleId(StrEnum):
    """Every change Tessera knows, in DESIGN.md's order."""

    ASSET_REMOVED = "ASSET_REMOVED"
    ASSET_RENAMED = "ASSET_RENAMED"
    ACCESS_NARROWED = "ACCESS_NARROWED"
    COLUMN_REMOVED = "COLUMN_REMOVED"
    COLUMN_RENAMED = "COLUMN_RENAMED"
    COLUMN_TYPE_CHANGED = "COLUMN_TYPE_CHANGED"
    COLUMN_TYPE_NARROWED = "COLUMN_TYPE_NARROWED"
    COLUMN_TYPE_WIDENED = "COLUMN_TYPE_WIDENED"
    COLUMN_NULLABILITY_LOOSENED = "COLUMN_NULLABILITY_LOOSENED"
    COLUMN_NULLABILITY_TIGHTENED = "COLUMN_NULLABILITY_TIGHTENED"
    COLUMN_ADDED = "COLUMN_ADDED"
    COLUMN_ADDED_REQUIRED = "COLUMN_ADDED_REQUIRED"
    COLUMN_REORDERED = "COLUMN_REORDERED"
    CONSTRAINT_REMOVED = "CONSTRAINT_REMOVED"
    CONTRACT_UNENFORCED = "CONTRACT_UNENFORCED"
    GRAIN_CHANGED = "GRAIN_CHANGED"
    FILTER_CHANGED = "FILTER_CHANGED"
    JOIN_CHANGED = "JOIN_CHANGED"
    COLUMN_LOGIC_CHANGED = "COLUMN_LOGIC_CHANGED"
    MATERIALIZATION_CHANGED = "MATERIALIZATION_CHANGED"
    VERSION_DEPRECATED = "VERSION_DEPRECATED"
    METADATA_CHANGED = "METADATA_CHANGED"
    UNPARSED = "UNPARSED"


class Reach(StrEnum):
    """How far a breaking finding travels downstream before it stops mattering."""

    COLUMN = "column"
    """Consumers that read the finding's column (directly or through lineage); every consumer
    downstream when the finding names no column."""
    ASSET = "asset"
    """Every consumer downstream, whatever columns it reads (one row now means something else)."""
    DIRECT_READERS = "direct_readers"
    """Only what reads the relation itself: a dbt ``ref`` to a model that became ephemeral inlines
    it, so models downstream (and what reads them) are not hit."""
    REFS = "refs"
    """Only models whose ``ref`` the change refuses (dbt access governs refs, nothing else)."""


class Graph(StrEnum):
    """The snapshot a finding's readers are looked up in."""

    HEAD = "head"
    BASE = "base"
    """For what the head no longer has (a removed asset or column): its readers are in the base."""


IGNORE = "ignore"
"""An override value that drops a rule's findings altogether."""


@dataclass(frozen=True)
class Rule:
    """One kind of change: how much it matters in each mode, how far it reaches, what to do."""

    id: RuleId
    title: str
    backward: str
    forward: str
    full: str
    description: str
    advice: str
    """The migration path in one sentence (the builder makes it concrete, with dates and SQL)."""
    migrate: mb.Builder
    """The migration decision: the builder a breaking finding of this rule gets
    (``migration_builders.generic`` says the description and advice with a date)."""
    reach: Reach = Reach.COLUMN
    """Which consumers a finding reaches (``rules.impact`` reads it)."""
    judged_on: Graph = Graph.HEAD
    """The snapshot its readers are found in: the base for what the head no longer has."""
    travels_with_type: bool = False
    """A reader passes it on only when its own column's type changes with it (a cast stops it)."""
    inherited: bool = False
    """A model can get it from its inputs alone (``select *``, a column passed through): then the
    input's migration fixes both, and the model gets none of its own."""
    versionable: bool = False
    """A new version of a contracted dbt model can absorb it."""

    def default(self, mode: str) -> str:
        """The default severity in ``mode`` before overrides (unknown modes read as backward)."""
        if mode == "forward":
            return self.forward
        if mode == "full":
            return self.full
        return self.backward


B, R, S, INFO = "breaking", "review", "safe", "info"
ID = RuleId

RULES: tuple[Rule, ...] = (
    Rule(ID.ASSET_REMOVED, "Asset removed", B, B, B,
         "A model, table or view was dropped, disabled or renamed away: everyone reading it breaks.",
         "Keep it (or a view under its name) for a deprecation window, then drop it.",
         mb.asset_removed, reach=Reach.ASSET, judged_on=Graph.BASE),
    Rule(ID.ASSET_RENAMED, "Asset renamed", B, B, B,
         "The asset now lives under another name: readers of the old name break.",
         "Leave a view (or a dbt model) under the old name that reads the new one for a window.",
         mb.asset_renamed, reach=Reach.ASSET, judged_on=Graph.BASE),
    Rule(ID.ACCESS_NARROWED, "Access narrowed", B, S, B,
         "dbt access went from public to protected/private: refs from other projects or groups fail.",
         "Keep it public with a deprecation_date and narrow access in a new version.",
         mb.access_narrowed, reach=Reach.REFS),
    Rule(ID.COLUMN_REMOVED, "Column removed", B, S, B,
         "A column readers select is gone.",
         "Keep the column (or an alias) for a deprecation window, or ship a new version without it.",
         mb.column_removed, judged_on=Graph.BASE, inherited=True, versionable=True),
    Rule(ID.COLUMN_RENAMED, "Column renamed", B, B, B,
         "The same expression and type now go by a new name: readers of the old name break.",
         "Ship the new name beside the old one (select new_name, new_name as old_name) for a window.",
         mb.column_renamed, judged_on=Graph.BASE, versionable=True),
    Rule(ID.COLUMN_TYPE_CHANGED, "Column type changed", B, B, B,
         "The type changed incompatibly (int to varchar, date to int, date to timestamp).",
         "Keep the old type and publish the new one as <col>_v2 until readers have moved.",
         mb.column_retyped, travels_with_type=True, inherited=True, versionable=True),
    Rule(ID.COLUMN_TYPE_NARROWED, "Column type narrowed", B, B, B,
         "The type got narrower (bigint to int, varchar(20) to varchar(10), lower precision): values may not fit.",
         "Keep the wide type and publish the narrow one as <col>_v2 until readers have moved.",
         mb.column_retyped, travels_with_type=True, inherited=True, versionable=True),
    Rule(ID.COLUMN_TYPE_WIDENED, "Column type widened", S, B, R,
         "The type got wider (int to bigint, varchar(10) to varchar(20)): readers cope, old writers may not.",
         "Tell writers the new type; old rows and writers must still fit.",
         mb.column_retyped, travels_with_type=True, inherited=True, versionable=True),
    Rule(ID.COLUMN_NULLABILITY_LOOSENED, "NOT NULL dropped", B, S, B,
         "The column may now hold nulls readers never saw before.",
         "Fill the new nulls (coalesce) or publish the nullable column under a new name.",
         mb.nullability_loosened, versionable=True),
    Rule(ID.COLUMN_NULLABILITY_TIGHTENED, "NOT NULL added", S, B, B,
         "The column no longer accepts nulls: old rows or writers may not fit.",
         "Backfill existing nulls first, then add NOT NULL.",
         mb.nullability_tightened),
    Rule(ID.COLUMN_ADDED, "Column added", S, S, S,
         "A new column: nobody reads it yet.",
         "Nothing to do.",
         mb.generic),
    Rule(ID.COLUMN_ADDED_REQUIRED, "Required column added", S, B, B,
         "A NOT NULL column without a default on a table: existing rows and writers cannot fill it.",
         "Add it nullable or with a default, backfill, then make it NOT NULL.",
         mb.added_required),
    Rule(ID.COLUMN_REORDERED, "Columns reordered", R, R, R,
         "Column order changed: positional readers (INSERT ... SELECT, UNION, SELECT *) may mix values up.",
         "Keep the old order, or make positional readers name their columns.",
         mb.generic),
    Rule(ID.CONSTRAINT_REMOVED, "Constraint removed", B, S, B,
         "A primary, unique or foreign key, accepted values or an enforced constraint no longer holds.",
         "Keep the key or test for a deprecation window and announce the date.",
         mb.constraint_removed, versionable=True),
    Rule(ID.CONTRACT_UNENFORCED, "Contract unenforced", R, R, R,
         "dbt contract.enforced went from true to false: the declared schema is no longer guaranteed.",
         "Keep the contract enforced, or tell readers what is no longer guaranteed.",
         mb.generic),
    Rule(ID.GRAIN_CHANGED, "Grain changed", B, B, B,
         "GROUP BY keys, DISTINCT or the unique key changed: one row now means something else.",
         "Publish the new grain as a new model or version and keep the old grain for a window.",
         mb.grain_changed, reach=Reach.ASSET, versionable=True),
    Rule(ID.FILTER_CHANGED, "Filter changed", R, R, R,
         "WHERE, HAVING or QUALIFY was added, changed or removed: different rows come out.",
         "Tell readers which rows now come out differently.",
         mb.generic),
    Rule(ID.JOIN_CHANGED, "Join changed", R, R, R,
         "A join was added or removed, or its type or condition changed.",
         "Tell readers which rows or values now come out differently.",
         mb.generic),
    Rule(ID.COLUMN_LOGIC_CHANGED, "Column logic changed", R, R, R,
         "A column keeps its name but is computed differently.",
         "Tell readers how the column is now computed, or publish it under a new name.",
         mb.generic),
    Rule(ID.MATERIALIZATION_CHANGED, "Materialization changed", R, R, R,
         "The materialization changed; breaking when the relation disappears (e.g. to ephemeral).",
         "Keep a relation readers can query (table or view) for a window.",
         mb.materialization, reach=Reach.DIRECT_READERS),
    Rule(ID.VERSION_DEPRECATED, "Version deprecated", R, R, R,
         "latest_version or deprecation_date changed: readers of the old version have a deadline.",
         "Readers of the old version move before its deprecation_date.",
         mb.generic),
    Rule(ID.METADATA_CHANGED, "Metadata changed", INFO, INFO, INFO,
         "Description, tags, meta, comments or formatting changed: nothing readers see in the data.",
         "Nothing to do.",
         mb.generic),
    Rule(ID.UNPARSED, "Could not analyse", R, R, R,
         "A changed file Tessera could not analyse (see on_unparsed: regressions, warn or block).",
         "Fix the statement, or list the file under ignore: in .tessera.yml.",
         mb.unparsed),
)

RULES_BY_ID: Mapping[str, Rule] = {rule.id.value: rule for rule in RULES}

_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def severity_rank(severity: str) -> int:
    """Sort key: breaking first, info last."""
    return _RANK.get(severity, len(_RANK))


def severity(
    rule_id: str,
    mode: str,
    *,
    overrides: Mapping[str, str] = {},  # noqa: B006 (read-only default)
    on_unparsed: str = "warn",
) -> str | None:
    """The severity of ``rule_id`` under ``mode`` and the repository's overrides.

    None means the finding is ignored (``rules: {RULE: ignore}``). Mode ``none`` is applied last so
    that it can never block, whatever the overrides say. Unknown modes read as ``backward``; an
    unknown override value is ignored (config parsing reports it).
    """
    rule = RULES_BY_ID[rule_id]
    level = rule.default(mode if mode in MODES else "backward")
    if rule_id == RuleId.UNPARSED and on_unparsed == "block":
        level = "breaking"
    override = overrides.get(rule_id)
    if isinstance(override, str):
        value = override.strip().lower()
        if value == IGNORE:
            return None
        if value in SEVERITIES:
            level = value
    if mode == "none" and level == "breaking":
        level = "review"
    return level


def markdown_table() -> str:
    """The catalog as the Markdown table DESIGN.md and the README show (generated, so it never
    falls behind the code)."""
    lines = ["| rule | backward | forward | full | what it means |", "|---|---|---|---|---|"]
    for rule in RULES:
        lines.append(f"| {rule.id} | {rule.backward} | {rule.forward} | {rule.full} | {rule.description} |")
    return "\n".join(lines) + "\n"
