"""The rule catalog: exactly DESIGN.md's rules, with the severities its table gives per mode."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rules import diff
from rules.build import build_snapshot
from rules.catalog import RULES, RULES_BY_ID, RuleId, severity
from rules.checks import CHECKS
from rules.checks.context import Check, DiffContext, Finding, Pair, rules_of
from rules.sources import DictSource
from tests.rules.test_cases import ALL_CASES, CASES_DIR, _changed, _config

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


def test_every_rule_has_a_check_a_case_file_and_a_migration_decision() -> None:
    """The recipe in ``rules.catalog``'s docstring: one row, one check, one case file."""
    assert [rule.id for rule in RULES] == list(RuleId)
    checked = {rule for check in CHECKS for rule in rules_of(check)}
    cases = {path.stem for path in CASES_DIR.glob("*.yml")}
    for rule in RULES:
        assert rule.id in checked, f"{rule.id}: no check in rules.checks.CHECKS declares it (@emits)"
        assert rule.id.value in cases, f"{rule.id}: no tests/rules/cases/{rule.id}.yml"
        assert callable(rule.migrate), f"{rule.id}: no migration builder on its row"


def test_every_check_finds_only_the_rules_it_declares(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every rule case through the checks and hold each finding to its check's ``@emits``."""
    strays: list[str] = []

    def held(check: Check) -> Check:
        def run(pair: Pair, ctx: DiffContext) -> list[Finding]:
            found = list(check(pair, ctx))
            strays.extend(f"{check.__module__}.{check.__name__}: {f.rule}" for f in found
                          if f.rule not in rules_of(check))
            return found
        return run

    monkeypatch.setattr(diff, "CHECKS", tuple(held(check) for check in CHECKS))
    fired: set[str] = set()
    for _, case in ALL_CASES:
        config = _config(case)
        base = build_snapshot(DictSource(case.get("base") or {}), config)
        head = build_snapshot(DictSource(case.get("head") or {}), config)
        fired.update(c.rule for c in diff.diff_snapshots(base, head, config, changed_paths=_changed(case)))
    assert strays == []
    assert fired == {rule.id.value for rule in RULES}, "every rule fires in its own case file"


def test_a_rules_reach_and_graph_are_read_from_its_row() -> None:
    """What impact used to keep in sets of its own: asset-wide rules, direct readers, the base graph."""
    reach = {rule.id: rule.reach.value for rule in RULES if rule.reach.value != "column"}
    assert reach == {
        "ASSET_REMOVED": "asset", "ASSET_RENAMED": "asset", "GRAIN_CHANGED": "asset",
        "ACCESS_NARROWED": "refs", "MATERIALIZATION_CHANGED": "direct_readers",
    }
    base_graph = {rule.id for rule in RULES if rule.judged_on.value == "base"}
    assert base_graph == {"ASSET_REMOVED", "ASSET_RENAMED", "COLUMN_REMOVED", "COLUMN_RENAMED"}
