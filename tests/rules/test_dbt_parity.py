"""Parity with dbt (issue 3): for contracted models, every breaking contract change dbt's
``dbt ls -s state:modified --state`` reports is found by Tessera too.

``tests/data/dbt_parity`` holds a small dbt project before and after one breaking change per model,
the manifests ``dbt parse`` wrote for both, and dbt's own verdicts (``regenerate.py`` reproduces
them with dbt-core 1.10 + dbt-duckdb). Tessera is checked both ways it reads dbt: the project files
straight from the repository, and dbt's manifests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rules.build import build_snapshot
from rules.dbt_manifest import load_manifest
from rules.diff import diff_snapshots
from rules.model import Change, Config, DbtSettings, Snapshot
from rules.sources import DictSource

DATA = Path(__file__).resolve().parents[1] / "data" / "dbt_parity"
VERDICTS = json.loads((DATA / "dbt_verdicts.json").read_text())
CONFIG = Config(dbt=DbtSettings(dialect="duckdb"))

# dbt's category -> the Tessera rules that say the same thing
FINDS = {
    "contract_enforced_disabled": {"CONTRACT_UNENFORCED"},
    "columns_removed": {"COLUMN_REMOVED"},
    "column_type_changes": {"COLUMN_TYPE_CHANGED", "COLUMN_TYPE_NARROWED", "COLUMN_TYPE_WIDENED"},
    "enforced_column_constraint_removed": {"CONSTRAINT_REMOVED", "COLUMN_NULLABILITY_LOOSENED"},
    "enforced_model_constraint_removed": {"CONSTRAINT_REMOVED"},
    "materialization_changed": {"MATERIALIZATION_CHANGED"},
}


def _project(side: str) -> Snapshot:
    root = DATA / side
    files = {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}
    return build_snapshot(DictSource(files), CONFIG)


def _manifest(side: str) -> Snapshot:
    return load_manifest(json.loads((DATA / f"{side}_manifest.json").read_text()))


def _changes(how: str) -> list[Change]:
    read = _project if how == "project" else _manifest
    return diff_snapshots(read("base"), read("head"), CONFIG)


def _expected() -> list[tuple[str, str, str | None]]:
    """(model, dbt category, column or None) for every breaking change dbt reported."""
    out: list[tuple[str, str, str | None]] = []
    for model, categories in sorted(VERDICTS["breaking"].items()):
        for category, detail in sorted(categories.items()):
            if category == "columns_removed":
                out += [(model, category, column) for column in detail]
            elif category == "column_type_changes" or category == "enforced_column_constraint_removed":
                out += [(model, category, item["column_name"]) for item in detail]
            else:
                out.append((model, category, None))
    return out


def test_dbt_reported_a_breaking_change_in_every_category() -> None:
    assert {category for _, category, _ in _expected()} == set(FINDS)


@pytest.mark.parametrize("how", ["project", "manifest"])
@pytest.mark.parametrize("model,category,column", _expected())
def test_every_breaking_contract_change_dbt_reports_is_found_by_tessera(
    how: str, model: str, category: str, column: str | None
) -> None:
    changes = [c for c in _changes(how) if c.asset == model and c.rule in FINDS[category]]
    if column is not None:
        changes = [c for c in changes if c.column == column]
    assert changes, f"dbt reported {category} on {model} ({column}); Tessera found nothing matching"


@pytest.mark.parametrize("how", ["project", "manifest"])
def test_what_dbt_calls_breaking_for_readers_tessera_blocks_too(how: str) -> None:
    """Removed columns and removed keys hurt readers: breaking in the default (backward) mode."""
    breaking = [c for c in _changes(how) if c.severity == "breaking"]
    for model, category, column in _expected():
        if category in ("columns_removed", "enforced_column_constraint_removed"):
            assert [c for c in breaking if (c.asset, c.column) == (model, column)], (model, category, column)
        elif category == "enforced_model_constraint_removed":
            assert [c for c in breaking if c.asset == model and c.rule == "CONSTRAINT_REMOVED"], model


@pytest.mark.parametrize("how", ["project", "manifest"])
def test_a_model_dbt_leaves_alone_gets_no_breaking_or_review_finding(how: str) -> None:
    untouched = {"description_only"} - set(VERDICTS["modified"])
    assert untouched, "the fixture lost its control model"
    noisy = [c for c in _changes(how) if c.asset in untouched and c.severity in ("breaking", "review")]
    assert not noisy
