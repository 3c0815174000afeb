"""The rule catalog: every change Tessera knows, with its default severity per compatibility mode.

One table, in one place (like sqlglot's optimizer ``RULES``): the diff finds changes and names them
by id; this module alone decides how much each one matters. The rows mirror DESIGN.md's table
exactly; a test keeps the two in step.

Modes: ``backward`` protects downstream readers, ``forward`` protects history and writers (old rows
must still fit), ``full`` is both, ``none`` reports but never blocks (every ``breaking`` becomes
``review``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from rules.model import MODES, SEVERITIES

Scope = Literal["asset", "column"]

IGNORE = "ignore"
"""An override value that drops a rule's findings altogether."""


@dataclass(frozen=True)
class Rule:
    """One kind of change and how much it matters in each mode."""

    id: str
    title: str
    scope: Scope
    """``column`` when a finding names a column (acks come only from teams reading that column)."""
    backward: str
    forward: str
    full: str
    description: str
    advice: str = ""
    """The migration path in one sentence (``migrations`` makes it concrete, with dates and SQL)."""

    def default(self, mode: str) -> str:
        """The default severity in ``mode`` before overrides (unknown modes read as backward)."""
        if mode == "forward":
            return self.forward
        if mode == "full":
            return self.full
        return self.backward


def _rule(id: str, title: str, scope: Scope, backward: str, forward: str, full: str, description: str) -> Rule:
    return Rule(id, title, scope, backward, forward, full, description, ADVICE.get(id, ""))


ADVICE: Mapping[str, str] = {
    "ASSET_REMOVED": "Keep it (or a view under its name) for a deprecation window, then drop it.",
    "ASSET_RENAMED": "Leave a view (or a dbt model) under the old name that reads the new one for a window.",
    "ACCESS_NARROWED": "Keep it public with a deprecation_date and narrow access in a new version.",
    "COLUMN_REMOVED": "Keep the column (or an alias) for a deprecation window, or ship a new version without it.",
    "COLUMN_RENAMED": "Ship the new name beside the old one (select new_name, new_name as old_name) for a window.",
    "COLUMN_TYPE_CHANGED": "Keep the old type and publish the new one as <col>_v2 until readers have moved.",
    "COLUMN_TYPE_NARROWED": "Keep the wide type and publish the narrow one as <col>_v2 until readers have moved.",
    "COLUMN_TYPE_WIDENED": "Tell writers the new type; old rows and writers must still fit.",
    "COLUMN_NULLABILITY_LOOSENED": "Fill the new nulls (coalesce) or publish the nullable column under a new name.",
    "COLUMN_NULLABILITY_TIGHTENED": "Backfill existing nulls first, then add NOT NULL.",
    "COLUMN_ADDED": "Nothing to do.",
    "COLUMN_ADDED_REQUIRED": "Add it nullable or with a default, backfill, then make it NOT NULL.",
    "COLUMN_REORDERED": "Keep the old order, or make positional readers name their columns.",
    "CONSTRAINT_REMOVED": "Keep the key or test for a deprecation window and announce the date.",
    "CONTRACT_UNENFORCED": "Keep the contract enforced, or tell readers what is no longer guaranteed.",
    "GRAIN_CHANGED": "Publish the new grain as a new model or version and keep the old grain for a window.",
    "FILTER_CHANGED": "Tell readers which rows now come out differently.",
    "JOIN_CHANGED": "Tell readers which rows or values now come out differently.",
    "COLUMN_LOGIC_CHANGED": "Tell readers how the column is now computed, or publish it under a new name.",
    "MATERIALIZATION_CHANGED": "Keep a relation readers can query (table or view) for a window.",
    "VERSION_DEPRECATED": "Readers of the old version move before its deprecation_date.",
    "METADATA_CHANGED": "Nothing to do.",
    "UNPARSED": "Fix the statement, or list the file under ignore: in .tessera.yml.",
}


B, R, S, INFO = "breaking", "review", "safe", "info"

RULES: tuple[Rule, ...] = (
    _rule("ASSET_REMOVED", "Asset removed", "asset", B, B, B,
          "A model, table or view was dropped, disabled or renamed away: everyone reading it breaks."),
    _rule("ASSET_RENAMED", "Asset renamed", "asset", B, B, B,
          "The asset now lives under another name: readers of the old name break."),
    _rule("ACCESS_NARROWED", "Access narrowed", "asset", B, S, B,
          "dbt access went from public to protected/private: refs from other projects or groups fail."),
    _rule("COLUMN_REMOVED", "Column removed", "column", B, S, B,
          "A column readers select is gone."),
    _rule("COLUMN_RENAMED", "Column renamed", "column", B, B, B,
          "The same expression and type now go by a new name: readers of the old name break."),
    _rule("COLUMN_TYPE_CHANGED", "Column type changed", "column", B, B, B,
          "The type changed incompatibly (int to varchar, date to int)."),
    _rule("COLUMN_TYPE_NARROWED", "Column type narrowed", "column", B, B, B,
          "The type got narrower (bigint to int, varchar(20) to varchar(10), lower precision): values may not fit."),
    _rule("COLUMN_TYPE_WIDENED", "Column type widened", "column", S, B, R,
          "The type got wider (int to bigint, varchar(10) to varchar(20)): readers cope, old writers may not."),
    _rule("COLUMN_NULLABILITY_LOOSENED", "NOT NULL dropped", "column", B, S, B,
          "The column may now hold nulls readers never saw before."),
    _rule("COLUMN_NULLABILITY_TIGHTENED", "NOT NULL added", "column", S, B, B,
          "The column no longer accepts nulls: old rows or writers may not fit."),
    _rule("COLUMN_ADDED", "Column added", "column", S, S, S,
          "A new column: nobody reads it yet."),
    _rule("COLUMN_ADDED_REQUIRED", "Required column added", "column", S, B, B,
          "A NOT NULL column without a default on a table: existing rows and writers cannot fill it."),
    _rule("COLUMN_REORDERED", "Columns reordered", "asset", R, R, R,
          "Column order changed: positional readers (INSERT ... SELECT, UNION, SELECT *) may mix values up."),
    _rule("CONSTRAINT_REMOVED", "Constraint removed", "column", B, S, B,
          "A primary, unique or foreign key, accepted values or an enforced constraint no longer holds."),
    _rule("CONTRACT_UNENFORCED", "Contract unenforced", "asset", R, R, R,
          "dbt contract.enforced went from true to false: the declared schema is no longer guaranteed."),
    _rule("GRAIN_CHANGED", "Grain changed", "asset", B, B, B,
          "GROUP BY keys, DISTINCT or the unique key changed: one row now means something else."),
    _rule("FILTER_CHANGED", "Filter changed", "asset", R, R, R,
          "WHERE, HAVING or QUALIFY was added, changed or removed: different rows come out."),
    _rule("JOIN_CHANGED", "Join changed", "asset", R, R, R,
          "A join was added or removed, or its type or condition changed."),
    _rule("COLUMN_LOGIC_CHANGED", "Column logic changed", "column", R, R, R,
          "A column keeps its name but is computed differently."),
    _rule("MATERIALIZATION_CHANGED", "Materialization changed", "asset", R, R, R,
          "The materialization changed; breaking when the relation disappears (e.g. to ephemeral)."),
    _rule("VERSION_DEPRECATED", "Version deprecated", "asset", R, R, R,
          "latest_version or deprecation_date changed: readers of the old version have a deadline."),
    _rule("METADATA_CHANGED", "Metadata changed", "asset", INFO, INFO, INFO,
          "Description, tags, meta, comments or formatting changed: nothing readers see in the data."),
    _rule("UNPARSED", "Could not analyse", "asset", R, R, R,
          "A changed file Tessera could not analyse (see on_unparsed: warn or block)."),
)

RULES_BY_ID: Mapping[str, Rule] = {rule.id: rule for rule in RULES}

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
    if rule_id == "UNPARSED" and on_unparsed == "block":
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
