"""Data-driven rule cases: ``tests/rules/cases/<RULE>.yml`` holds base files, head files and the
findings the diff must (and must not) produce.

Each file is ``{rule: <RULE or null>, cases: [...]}``; a case has ``name``, ``dialect``, ``kind``
(``sql`` or ``dbt``), ``base``/``head`` (path → file text), optional ``config`` (a .tessera.yml
text), ``expect`` (a list of ``{rule, severity, asset, column}``, optionally ``path``, ``line`` and
``message_has``; keys left out match anything),
``expect_none`` (rules that must not fire) and ``only: true`` (no breaking, review or safe finding
beyond those expected, and none twice). Snapshots are built the way the analysis builds them
(``build.build_snapshot``); changed paths are the files whose text differs.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from rules.analyze import analyze
from rules.build import build_snapshot
from rules.catalog import RULES
from rules.config import parse_config
from rules.diff import diff_snapshots
from rules.migrations import suggest
from rules.model import Change, Config, Coverage, DbtSettings, Snapshot, SqlSettings
from rules.sources import DictSource

CASES_DIR = Path(__file__).parent / "cases"
QUIET = ("formatting", "comment", "case", "description")
"""Kinds of edit that must produce no breaking or review finding (issue 3 acceptance)."""
DBT_BREAKING_CONTRACT_CHANGES = (
    "contract_enforced_disabled",
    "columns_removed",
    "column_type_changes",
    "enforced_column_constraint_removed",
    "enforced_model_constraint_removed",
    "materialization_changed",
)
"""The categories dbt-core's ``ModelNode.same_contract`` reports as breaking contract changes."""


def _load() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(CASES_DIR.glob("*.yml")):
        data = yaml.safe_load(path.read_text())
        for case in data.get("cases", []):
            out.append((f"{path.stem}: {case['name']}", {**case, "_file_rule": data.get("rule")}))
    return out


ALL_CASES = _load()


def _config(case: Mapping[str, Any]) -> Config:
    config = parse_config(case.get("config"))
    assert not config.problems, config.problems
    dialect = case["dialect"]
    if case["kind"] == "sql" and not config.sql.dialect:
        config = dataclasses.replace(config, sql=SqlSettings(paths=config.sql.paths, dialect=dialect))
    if case["kind"] == "dbt" and not config.dbt.dialect:
        config = dataclasses.replace(
            config, dbt=DbtSettings(projects=config.dbt.projects, dialect=dialect, manifest=config.dbt.manifest)
        )
    return config


def _snapshot(
    files: Mapping[str, str], case: Mapping[str, Any], config: Config, *, scope: set[str] | None = None
) -> Snapshot:
    return build_snapshot(DictSource(files), config, scope=scope)


def _changed(case: Mapping[str, Any]) -> set[str]:
    base_files: dict[str, str] = case.get("base") or {}
    head_files: dict[str, str] = case.get("head") or {}
    return {p for p in set(base_files) | set(head_files) if base_files.get(p) != head_files.get(p)}


def _matches(change: Change, want: Mapping[str, Any]) -> bool:
    """``message_has`` is a piece of text the message must contain; other keys are Change fields."""
    return all(
        value in change.message if key == "message_has" else getattr(change, key) == value
        for key, value in want.items()
    )


def _show(changes: list[Change]) -> str:
    return "\n".join(f"  {c.rule} {c.severity} {c.asset} {c.column} {c.path}:{c.line}: {c.message}" for c in changes) or "  (none)"


@pytest.mark.parametrize("case", [c for _, c in ALL_CASES], ids=[i for i, _ in ALL_CASES])
def test_rule_case(case: dict[str, Any]) -> None:
    config = _config(case)
    base_files: dict[str, str] = case.get("base") or {}
    head_files: dict[str, str] = case.get("head") or {}
    changed = {p for p in set(base_files) | set(head_files) if base_files.get(p) != head_files.get(p)}
    base = _snapshot(base_files, case, config)
    head = _snapshot(head_files, case, config)
    changes = diff_snapshots(base, head, config, changed_paths=changed)
    expected = case.get("expect") or []
    for want in expected:
        assert any(_matches(c, want) for c in changes), f"expected {want}, found:\n{_show(changes)}"
    for rule in case.get("expect_none") or []:
        assert not [c for c in changes if c.rule == rule], f"{rule} must not fire, found:\n{_show(changes)}"
    if case.get("only"):
        extra = [
            c for c in changes
            if c.severity != "info" and not any(_matches(c, want) for want in expected)
        ]
        assert not extra, f"unexpected findings:\n{_show(extra)}"
        said = [(c.rule, c.asset, c.column) for c in changes if c.severity != "info"]
        assert len(said) == len(set(said)), f"one cause, one finding:\n{_show(changes)}"


def _negative(case: Mapping[str, Any], rule: str) -> bool:
    """A case in which ``rule`` must not fire."""
    if rule in (case.get("expect_none") or []):
        return True
    return bool(case.get("only")) and not any(w.get("rule") == rule for w in case.get("expect") or [])


@pytest.mark.parametrize("rule", [r.id for r in RULES])
def test_every_rule_has_positive_cases_in_two_dialects_and_a_case_where_it_must_not_fire(rule: str) -> None:
    positive = {
        c["dialect"] for _, c in ALL_CASES if any(w.get("rule") == rule for w in c.get("expect") or [])
    }
    assert len(positive) >= 2, f"{rule}: positive cases in dialects {sorted(positive)}"
    assert any(_negative(c, rule) for _, c in ALL_CASES if c["_file_rule"] == rule), (
        f"{rule}: no case in {rule}.yml where it must not fire"
    )


@pytest.mark.parametrize("kind", QUIET)
def test_quiet_edits_have_cases_that_expect_no_breaking_or_review_finding(kind: str) -> None:
    quiet = [c for _, c in ALL_CASES if c.get("quiet") == kind]
    assert quiet, f"no case for a {kind}-only edit"
    for case in quiet:
        assert case.get("only") and not [w for w in case.get("expect") or [] if w.get("severity") != "info"]


@pytest.mark.parametrize("category", DBT_BREAKING_CONTRACT_CHANGES)
def test_every_breaking_contract_change_dbt_reports_has_a_case_tessera_must_find(category: str) -> None:
    cases = [c for _, c in ALL_CASES if c.get("parity") == category]
    assert cases, f"no parity case for dbt's {category}"
    assert all(c.get("expect") for c in cases)


@pytest.mark.parametrize(
    "case", [c for _, c in ALL_CASES if c.get("expect")], ids=[i for i, c in ALL_CASES if c.get("expect")]
)
def test_every_breaking_finding_gets_a_migration_with_a_date(case: dict[str, Any]) -> None:
    config = _config(case)
    base = _snapshot(case.get("base") or {}, case, config)
    head = _snapshot(case.get("head") or {}, case, config)
    changes = diff_snapshots(base, head, config)
    suggestions = suggest(changes, base, head, today=datetime.date(2026, 1, 1))
    for change in changes:
        if change.severity != "breaking" or change.rule == "UNPARSED":
            continue
        if base.assets[change.asset].checksum == head.assets[change.asset].checksum if (
            change.asset in base.assets and change.asset in head.assets
        ) else False:
            continue  # reached it through its inputs (select *): the input's migration fixes both
        mine = [m for m in suggestions if m.rule == change.rule and m.asset == change.asset]
        assert mine, f"no migration for {change.rule} on {change.asset}"
        assert any("2026-01-31" in m.steps for m in mine), [m.steps for m in mine]


@pytest.mark.parametrize("case", [c for _, c in ALL_CASES], ids=[i for i, _ in ALL_CASES])
def test_a_build_scoped_to_the_changed_files_finds_the_same_as_a_full_one(case: dict[str, Any]) -> None:
    """The analysis builds only what the change needs; that must never change the findings."""
    config = _config(case)
    changed = _changed(case)

    def findings(scope: set[str] | None) -> list[tuple[str, str, str, str]]:
        base = _snapshot(case.get("base") or {}, case, config, scope=scope)
        head = _snapshot(case.get("head") or {}, case, config, scope=scope)
        changes = diff_snapshots(base, head, config, changed_paths=changed)
        return sorted((c.rule, c.severity, c.asset, c.column or "") for c in changes)

    assert findings(changed) == findings(None)


CASE_KEYS = {"name", "dialect", "kind", "base", "head", "config", "expect", "expect_none", "only", "quiet",
             "parity", "asks", "impacts", "coverage", "unread", "_file_rule"}
IMPACT_KEYS = {"consumer", "team", "columns"}
EXPECT_KEYS = {"rule", "severity", "asset", "column", "path", "line", "before", "after", "message_has"}


@pytest.mark.parametrize("case", [c for _, c in ALL_CASES], ids=[i for i, _ in ALL_CASES])
def test_case_files_use_only_known_keys_and_rules(case: dict[str, Any]) -> None:
    """A typo in a case (``expcet:``) would silently test nothing; refuse it instead."""
    assert set(case) <= CASE_KEYS, set(case) - CASE_KEYS
    assert case["kind"] in ("sql", "dbt") and case["dialect"]
    for want in case.get("expect") or []:
        assert set(want) <= EXPECT_KEYS and want.get("rule") in {r.id for r in RULES}, want
    for rule in case.get("expect_none") or []:
        assert rule in {r.id for r in RULES}, rule
    for want in case.get("impacts") or []:
        assert set(want) <= IMPACT_KEYS, want


ASKING_CASES = [(i, c) for i, c in ALL_CASES if "asks" in c or "impacts" in c]


@pytest.mark.parametrize("case", [c for _, c in ASKING_CASES], ids=[i for i, _ in ASKING_CASES])
def test_a_case_asks_exactly_the_teams_it_names(case: dict[str, Any]) -> None:
    """``asks``: the teams whose acknowledgement the whole analysis requires (exactly);
    ``impacts``: consumers that must be named, with their team and the columns they read."""
    base_files: dict[str, str] = case.get("base") or {}
    head_files: dict[str, str] = case.get("head") or {}
    analysis = analyze(
        DictSource(base_files),
        DictSource(head_files),
        base_rev="base",
        head_rev="head",
        config=_config(case),
        changed_paths=sorted(_changed(case)),
        today=datetime.date(2026, 1, 1),
        coverage=[Coverage(**c) for c in case.get("coverage") or []],
    )
    shown = "\n".join(f"  {i.consumer} ({i.team}) reads {list(i.columns)} of {i.asset}" for i in analysis.impacts)
    if "asks" in case:
        assert sorted(r.team for r in analysis.required_acks) == sorted(case["asks"]), f"impacts:\n{shown}"
    for want in case.get("impacts") or []:
        assert any(
            i.consumer == want["consumer"]
            and want.get("team", i.team) == i.team
            and set(want.get("columns", i.columns)) == set(i.columns)
            for i in analysis.impacts
        ), f"expected {want}, impacts:\n{shown}"
    if "unread" in case:
        assert [u.sentence for u in analysis.unread] == case["unread"]
