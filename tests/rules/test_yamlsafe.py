"""YAML bombs are measured, not expanded, before any repository YAML is loaded."""

from __future__ import annotations

import time

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
