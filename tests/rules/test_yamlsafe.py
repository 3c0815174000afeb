"""YAML bombs are measured, not expanded, before any repository YAML is loaded; a document nested
too deeply to load is a problem on that file, never a failed analysis."""

from __future__ import annotations

import datetime
import time

import pytest

from rules.analyze import analyze
from rules.config import parse_config
from rules.dbt_project import load_project
from rules.sources import DictSource
from rules.yamlsafe import expands_too_far, yaml_expanded_size

BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for prev, name in zip(["", "a", "b", "c", "d", "e", "f", "g", "h"], "abcdefghi", strict=True)
) + "models: *i\n"


def test_a_billion_laughs_document_is_measured_past_the_limit_in_milliseconds() -> None:
    started = time.monotonic()
    assert yaml_expanded_size(BOMB, 10_000) == 10_001
    assert expands_too_far(BOMB)
    assert time.monotonic() - started < 1.0


def test_ordinary_anchors_and_documents_without_anchors_are_not_too_far() -> None:
    assert yaml_expanded_size("a: &x [1, 2]\nb: *x\nc: *x\n", 100) == 13
    assert not expands_too_far("a: &x [1, 2]\nb: *x\n")
    assert not expands_too_far("description: revenue & costs * 2\n")


def test_a_yaml_bomb_in_a_dbt_property_file_is_a_problem_on_that_file_and_other_models_still_load() -> None:
    files = {
        "dbt_project.yml": "name: tiny\n",
        "models/a.sql": "select 1 as id",
        "models/bomb.yml": BOMB,
    }
    started = time.monotonic()
    snapshot = load_project(DictSource(files), ".", dialect="postgres")
    assert time.monotonic() - started < 5.0
    assert "a" in snapshot.assets
    [problem] = snapshot.problems
    assert problem.path == "models/bomb.yml" and "billion laughs" in problem.message


def test_a_yaml_bomb_in_dbt_project_yml_is_a_problem_on_that_file() -> None:
    files = {"dbt_project.yml": "name: tiny\n" + BOMB.replace("models: *i", "vars: *i"), "models/a.sql": "select 1 as id"}
    snapshot = load_project(DictSource(files), ".", dialect="postgres")
    assert "a" in snapshot.assets
    assert [p.path for p in snapshot.problems] == ["dbt_project.yml"]


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


SHOP = {
    "dbt_project.yml": "name: shop\n",
    "models/fct_revenue.sql": "select 1 as order_id, 'a' as plan_code\n",
    "models/schema.yml": "models:\n  - name: fct_revenue\n    description: revenue\n",
}


@pytest.mark.parametrize("depth", [300, 990, 5000])
def test_a_deeply_nested_property_file_is_a_problem_naming_it_and_the_analysis_goes_on(depth: int) -> None:
    deep = f"models:\n  - name: fct_orders\n    meta:\n      x: {_nested(depth)}\n"
    head = {**SHOP, "models/fct_revenue.sql": "select 1 as order_id\n", "models/deep.yml": deep}
    analysis = analyze(
        DictSource(SHOP), DictSource(head), base_rev="base", head_rev="head", config=parse_config(None),
        changed_paths=["models/fct_revenue.sql", "models/deep.yml"], today=datetime.date(2026, 12, 5),
    )
    assert [e.path for e in analysis.errors] == ["models/deep.yml"]
    assert "nest" in analysis.errors[0].message  # ours, or libyaml's own limit past 1,000 levels
    assert ("COLUMN_REMOVED", "plan_code") in [(c.rule, c.column) for c in analysis.changes]


def test_a_deeply_nested_tessera_yml_falls_back_to_defaults_and_says_why() -> None:
    config = parse_config(f"teams: {_nested(990)}\n")
    assert config.teams == {}
    assert any(".tessera.yml is not valid YAML" in p and "nested" in p for p in config.problems)
