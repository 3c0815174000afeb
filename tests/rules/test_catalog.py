"""The rule catalog: exactly DESIGN.md's rules, with the severities its table gives per mode."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rules.catalog import RULES, RULES_BY_ID, severity

# DESIGN.md's table, copied here so the suite checks it without ../shared.
DESIGN_TABLE = {
    "ASSET_REMOVED": ("breaking", "breaking", "breaking"),
    "ASSET_RENAMED": ("breaking", "breaking", "breaking"),
    "ACCESS_NARROWED": ("breaking", "safe", "breaking"),
    "COLUMN_REMOVED": ("breaking", "safe", "breaking"),
    "COLUMN_RENAMED": ("breaking", "breaking", "breaking"),
    "COLUMN_TYPE_CHANGED": ("breaking", "breaking", "breaking"),
    "COLUMN_TYPE_NARROWED": ("breaking", "breaking", "breaking"),
    "COLUMN_TYPE_WIDENED": ("safe", "breaking", "review"),
    "COLUMN_NULLABILITY_LOOSENED": ("breaking", "safe", "breaking"),
    "COLUMN_NULLABILITY_TIGHTENED": ("safe", "breaking", "breaking"),
    "COLUMN_ADDED": ("safe", "safe", "safe"),
    "COLUMN_ADDED_REQUIRED": ("safe", "breaking", "breaking"),
    "COLUMN_REORDERED": ("review", "review", "review"),
    "CONSTRAINT_REMOVED": ("breaking", "safe", "breaking"),
    "CONTRACT_UNENFORCED": ("review", "review", "review"),
    "GRAIN_CHANGED": ("breaking", "breaking", "breaking"),
    "FILTER_CHANGED": ("review", "review", "review"),
    "JOIN_CHANGED": ("review", "review", "review"),
    "COLUMN_LOGIC_CHANGED": ("review", "review", "review"),
    "MATERIALIZATION_CHANGED": ("review", "review", "review"),
    "VERSION_DEPRECATED": ("review", "review", "review"),
    "METADATA_CHANGED": ("info", "info", "info"),
    "UNPARSED": ("review", "review", "review"),
}

SHARED_DESIGN = Path(__file__).resolve().parents[3] / "shared" / "DESIGN.md"


def test_catalog_has_exactly_the_design_rules_in_design_order() -> None:
    assert [rule.id for rule in RULES] == list(DESIGN_TABLE)
    assert set(RULES_BY_ID) == set(DESIGN_TABLE)


@pytest.mark.parametrize("rule_id", list(DESIGN_TABLE))
def test_default_severity_per_mode_matches_the_design_table(rule_id: str) -> None:
    backward, forward, full = DESIGN_TABLE[rule_id]
    assert severity(rule_id, "backward") == backward
    assert severity(rule_id, "forward") == forward
    assert severity(rule_id, "full") == full


@pytest.mark.shared
def test_catalog_matches_the_table_in_the_shared_design_document() -> None:
    if not SHARED_DESIGN.exists():
        pytest.skip("../shared is absent")
    rows = re.findall(
        r"^\| ([A-Z_]+)(?: \([^|]*\))? \| (\w+) \| (\w+) \| (\w+) \|$", SHARED_DESIGN.read_text(), re.M
    )
    assert {r[0]: tuple(r[1:]) for r in rows} == DESIGN_TABLE


def test_mode_none_turns_every_breaking_rule_into_review() -> None:
    for rule in RULES:
        level = severity(rule.id, "none")
        assert level != "breaking"
        if rule.backward == "breaking":
            assert level == "review"


def test_override_changes_the_severity_and_ignore_drops_the_rule() -> None:
    assert severity("FILTER_CHANGED", "backward", overrides={"FILTER_CHANGED": "breaking"}) == "breaking"
    assert severity("COLUMN_TYPE_WIDENED", "forward", overrides={"COLUMN_TYPE_WIDENED": "ignore"}) is None
    assert severity("COLUMN_REMOVED", "backward", overrides={"FILTER_CHANGED": "ignore"}) == "breaking"


def test_mode_none_wins_over_an_override_to_breaking() -> None:
    assert severity("FILTER_CHANGED", "none", overrides={"FILTER_CHANGED": "breaking"}) == "review"


def test_unparsed_blocks_only_when_configured_to() -> None:
    assert severity("UNPARSED", "backward") == "review"
    assert severity("UNPARSED", "backward", on_unparsed="block") == "breaking"
    assert severity("UNPARSED", "none", on_unparsed="block") == "review"


def test_unknown_mode_reads_as_backward_and_bad_override_is_ignored() -> None:
    assert severity("COLUMN_REMOVED", "sideways") == "breaking"
    assert severity("COLUMN_REMOVED", "backward", overrides={"COLUMN_REMOVED": "loud"}) == "breaking"


def test_unknown_rule_is_an_error_not_a_silent_pass() -> None:
    with pytest.raises(KeyError):
        severity("NOT_A_RULE", "backward")


def test_every_rule_carries_a_migration_path_in_one_sentence() -> None:
    for rule in RULES:
        assert rule.advice.endswith("."), rule.id
        assert rule.description.endswith("."), rule.id


def test_markdown_table_lists_every_rule_with_its_severities() -> None:
    from rules.catalog import markdown_table

    rows = [line for line in markdown_table().splitlines() if line.startswith("| ") and "---" not in line][1:]
    parsed = {cells[0]: tuple(cells[1:4]) for cells in ([c.strip() for c in row.strip("|").split("|")] for row in rows)}
    assert parsed == DESIGN_TABLE
