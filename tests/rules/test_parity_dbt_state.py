"""Parity with dbt: every breaking contract change dbt reports, Tessera finds too.

``tests/data/dbt/parity`` holds a small dbt project before and after a change, the manifests
``dbt compile`` (dbt-core 1.10.23, dbt-duckdb 1.10.1) wrote for both, and dbt's own answer to
``dbt ls -s state:modified --state <base>`` (``dbt_answer.json``, the raw output in ``dbt_ls.txt``).
The engine must find each of dbt's breaking changes, from the manifests and from the project files
alone (no dbt needed), and more: the uncontracted downstream model that reads a dropped column.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rules.build import build_snapshot
from rules.config import parse_config
from rules.diff import diff_snapshots
from rules.model import Change, Snapshot
from rules.sources import DictSource
from tests.rules.dbt_data import DATA, project_files

PARITY = DATA / "parity"
ANSWER: dict[str, Any] = json.loads((PARITY / "dbt_answer.json").read_text())

RULES_FOR: dict[str, tuple[str, ...]] = {
    "columns_removed": ("COLUMN_REMOVED",),
    "column_type_changes": ("COLUMN_TYPE_CHANGED", "COLUMN_TYPE_NARROWED", "COLUMN_TYPE_WIDENED"),
    "enforced_column_constraint_removed": ("COLUMN_NULLABILITY_LOOSENED", "CONSTRAINT_REMOVED"),
    "enforced_model_constraint_removed": ("CONSTRAINT_REMOVED",),
    "materialization_changed": ("MATERIALIZATION_CHANGED",),
    "contract_enforced_disabled": ("CONTRACT_UNENFORCED",),
}
"""dbt's breaking-change kinds and the Tessera rules that report the same change."""

MUST_BLOCK = {"columns_removed", "column_type_changes", "enforced_column_constraint_removed"}
"""Kinds whose Tessera finding must itself be breaking (DESIGN.md: backward mode)."""

CONFIG = parse_config("dbt: {dialect: duckdb}\n")


def from_manifests() -> tuple[Snapshot, Snapshot]:
    config = parse_config("dbt: {dialect: duckdb, manifest: target/manifest.json}\n")
    snapshots = []
    for side in ("base", "head"):
        files = {"target/manifest.json": (PARITY / f"{side}_manifest.json").read_text()}
        snapshots.append(build_snapshot(DictSource(files), config))
    return snapshots[0], snapshots[1]


def from_project_files() -> tuple[Snapshot, Snapshot]:
    base = build_snapshot(DictSource(project_files("parity/base", prefix="")), CONFIG)
    head = build_snapshot(DictSource(project_files("parity/head", prefix="")), CONFIG)
    return base, head


def finds(changes: list[Change], expected: dict[str, Any]) -> list[Change]:
    rules = RULES_FOR[expected["kind"]]
    column = expected.get("column")
    return [
        c
        for c in changes
        if c.asset == expected["model"]
        and c.rule in rules
        and (column is None or (c.column or "").lower() == column)
    ]


@pytest.fixture(scope="module", params=["manifests", "project files"])
def changes(request: pytest.FixtureRequest) -> list[Change]:
    base, head = from_manifests() if request.param == "manifests" else from_project_files()
    return diff_snapshots(base, head, CONFIG)


@pytest.mark.parametrize("expected", ANSWER["breaking"], ids=lambda e: f"{e['model']}-{e['kind']}")
def test_every_breaking_contract_change_dbt_reports_is_found(
    changes: list[Change], expected: dict[str, Any]
) -> None:
    found = finds(changes, expected)
    assert found, f"dbt reported {expected}; Tessera found {[(c.rule, c.asset, c.column) for c in changes]}"
    if expected["kind"] in MUST_BLOCK:
        assert any(c.severity == "breaking" for c in found), found


def test_the_uncontracted_reader_of_the_dropped_column_is_seen_where_dbt_is_silent() -> None:
    base, head = from_project_files()
    readers = {
        (e.downstream, e.usage)
        for e in base.edges
        if e.upstream == "orders" and e.upstream_column == "status"
    }
    assert ("status_counts", "select") in readers and ("status_counts", "group") in readers
    assert "status_counts" not in {b["model"] for b in ANSWER["breaking"]}


def test_both_inputs_agree_on_the_contracted_columns() -> None:
    (mb, mh), (pb, ph) = from_manifests(), from_project_files()
    for fqn in ("orders", "customers", "daily_revenue", "plans"):
        for manifest_side, project_side in ((mb, pb), (mh, ph)):
            m, p = manifest_side.assets[fqn], project_side.assets[fqn]
            assert [(c.name, c.type, c.nullable) for c in m.columns] == [
                (c.name, c.type, c.nullable) for c in p.columns
            ]
            assert (m.contract_enforced, m.materialized) == (p.contract_enforced, p.materialized)


def test_the_checked_in_data_is_what_the_answer_describes() -> None:
    assert Path(PARITY / "dbt_ls.txt").read_text().count("Breaking change to contracted") == 2 * len(
        {b["model"] for b in ANSWER["breaking"]}
    )
