"""Dialect detection: each dbt project is read in its warehouse's SQL with no ``.tessera.yml``."""

from __future__ import annotations

import time

import pytest

from rules.analyze import likely_reads
from rules.build import build_snapshot
from rules.config import DIALECTS, parse_config
from rules.dialect import ADAPTER_DIALECTS, adapters_named, detect, detect_projects
from rules.model import Dialect, Project, Snapshot
from rules.sources import DictSource
from tests.dialect_repos import (
    bigquery_repo,
    databricks_repo,
    drop_plan_code,
    snowflake_repo,
    two_dialect_repo,
)
from tests.rules.test_analyze import run


def columns(snapshot: Snapshot, fqn: str) -> list[str]:
    asset = snapshot.assets[fqn]
    assert asset.columns_known, snapshot.problems
    return [c.name for c in asset.columns]


def with_dialect(files: dict[str, str], dialect: str) -> dict[str, str]:
    return {**files, ".tessera.yml": f"dbt:\n  dialect: {dialect}\n"}


@pytest.mark.parametrize(
    ("files", "fqn", "expected", "project", "source"),
    [
        (
            bigquery_repo(),
            "fct_orders",
            ["order_id", "note_code", "detail", "amount", "plan_code"],
            Project("analytics", Dialect("bigquery", "requirements.txt: dbt-bigquery")),
            "requirements.txt",
        ),
        (
            snowflake_repo(),
            "fct_events",
            ["customer_id", "amount", "plan_code", "first_value"],
            Project(".", Dialect("snowflake", "profiles.yml (target dev: snowflake)")),
            "profiles.yml",
        ),
        (
            databricks_repo(),
            "fct_items",
            ["order_id", "plan_code", "items"],
            Project("lakehouse", Dialect("databricks", ".github/workflows/ci.yml: dbt-databricks")),
            "workflow",
        ),
    ],
    ids=["bigquery-from-requirements", "snowflake-from-profiles", "databricks-from-workflow"],
)
def test_a_repository_without_configuration_is_read_in_its_detected_dialect(
    files: dict[str, str], fqn: str, expected: list[str], project: Project, source: str
) -> None:
    found = detect_projects(DictSource(files), parse_config(None))
    assert found == (project,)
    snapshot = build_snapshot(DictSource(files), parse_config(None))
    assert columns(snapshot, fqn) == expected
    assert snapshot.assets[fqn].dialect == project.dialect.name
    assert snapshot.problems == []
    # under postgres, the old default, the same model cannot be read at all
    under_postgres = build_snapshot(DictSource(with_dialect(files, "postgres")), parse_config("dbt: {dialect: postgres}"))
    assert not under_postgres.assets[fqn].columns_known
    assert any("cannot parse SQL" in p.message for p in under_postgres.problems)


def test_two_projects_in_one_repository_each_get_their_own_dialect() -> None:
    files = two_dialect_repo()
    found = detect_projects(DictSource(files), parse_config(None))
    assert found == (
        Project("finance", Dialect("snowflake", "finance/profiles.yml (target prod: snowflake)")),
        Project("marketing", Dialect("bigquery", "marketing/requirements.txt: dbt-bigquery")),
    )
    snapshot = build_snapshot(DictSource(files), parse_config(None))
    assert columns(snapshot, "fct_orders")[-1] == "plan_code"
    assert columns(snapshot, "fct_events")[0] == "customer_id"
    assert snapshot.problems == []


def test_removing_a_column_from_a_bigquery_model_is_found_and_the_json_says_why_bigquery() -> None:
    files = bigquery_repo()
    result = run(files, drop_plan_code(files))
    assert [(c.rule, c.asset, c.column) for c in result.changes if c.severity == "breaking"] == [
        ("COLUMN_REMOVED", "fct_orders", "plan_code")
    ]
    assert not any(c.rule == "UNPARSED" for c in result.changes)
    assert result.to_dict()["projects"] == [
        {"path": "analytics", "dialect": {"name": "bigquery", "source": "requirements.txt: dbt-bigquery"}}
    ]
    assert result.detected is not None
    assert result.detected.owner_sources == ("exposures", "groups", "meta.owner")


def test_each_project_of_a_two_dialect_repository_reports_its_own_break() -> None:
    files = two_dialect_repo()
    result = run(files, drop_plan_code(files))
    removed = {(c.asset, c.column) for c in result.changes if c.rule == "COLUMN_REMOVED"}
    assert removed == {("fct_orders", "plan_code"), ("fct_events", "plan_code")}
    assert [(p.path, p.dialect.name) for p in result.projects] == [("finance", "snowflake"), ("marketing", "bigquery")]


def test_the_base_sides_dialect_reads_both_sides_of_a_change() -> None:
    base = bigquery_repo()
    head = {**drop_plan_code(base), "requirements.txt": "dbt-snowflake\n"}
    result = run(base, head)
    assert result.projects[0].dialect == Dialect("bigquery", "requirements.txt: dbt-bigquery")
    assert [(c.rule, c.column) for c in result.changes if c.severity == "breaking"] == [("COLUMN_REMOVED", "plan_code")]


def test_a_project_the_change_adds_is_detected_on_the_head_side() -> None:
    head = bigquery_repo()
    result = run({"README.md": "# shop\n"}, head)
    assert result.projects == (Project("analytics", Dialect("bigquery", "requirements.txt: dbt-bigquery")),)


def test_tessera_yml_names_the_dialect_for_every_project() -> None:
    files = with_dialect(two_dialect_repo(), "snowflake")
    found = detect_projects(DictSource(files), parse_config(files[".tessera.yml"]))
    assert [p.dialect for p in found] == [Dialect("snowflake", ".tessera.yml")] * 2
    result = run(files, drop_plan_code(files))
    assert result.detected is None


def test_nothing_to_go_on_is_postgres_by_default() -> None:
    files = {"dbt_project.yml": "name: p\n", "models/m.sql": "select 1 as one\n"}
    assert detect(DictSource(files), ".", parse_config(None)) == Dialect("postgres", "default")


def test_a_profile_is_chosen_by_the_projects_profile_name_and_its_target() -> None:
    files = {
        "dbt_project.yml": "name: p\nprofile: shop\n",
        "profiles.yml": (
            "config: {send_anonymous_usage_stats: false}\n"
            "other:\n  target: dev\n  outputs:\n    dev: {type: postgres}\n"
            "shop:\n  target: prod\n  outputs:\n    dev: {type: duckdb}\n    prod: {type: redshift}\n"
        ),
    }
    assert detect(DictSource(files), ".", parse_config(None)) == Dialect("redshift", "profiles.yml (target prod: redshift)")


def test_a_profiles_yml_that_is_not_yaml_is_passed_over() -> None:
    files = {
        "dbt_project.yml": "name: p\n",
        "profiles.yml": "shop: [unclosed\n",
        "requirements.txt": "dbt-trino\n",
    }
    assert detect(DictSource(files), ".", parse_config(None)) == Dialect("trino", "requirements.txt: dbt-trino")


def test_a_profile_whose_type_is_an_env_var_says_nothing() -> None:
    files = {
        "dbt_project.yml": "name: p\n",
        "profiles.yml": "p:\n  target: dev\n  outputs:\n    dev:\n      type: \"{{ env_var('ADAPTER') }}\"\n",
    }
    assert detect(DictSource(files), ".", parse_config(None)).source == "default"


def test_packages_are_found_in_every_file_kind_that_installs_them() -> None:
    cases = {
        "pyproject.toml": '[project]\ndependencies = ["dbt-core>=1.8", "dbt-snowflake>=1.8"]\n',
        "Pipfile": '[packages]\ndbt-redshift = "*"\n',
        "setup.py": "setup(install_requires=['dbt_duckdb==1.8'])\n",
        "setup.cfg": "[options]\ninstall_requires =\n    dbt-athena-community\n",
        "Dockerfile": "FROM python:3.11\nRUN pip install dbt-clickhouse==1.8\n",
        "requirements/dev.txt": "dbt-spark[PyHive]\n",
    }
    expected = {
        "pyproject.toml": "snowflake",
        "Pipfile": "redshift",
        "setup.py": "duckdb",
        "setup.cfg": "athena",
        "Dockerfile": "clickhouse",
        "requirements/dev.txt": "spark",
    }
    for path, text in cases.items():
        files = {"dbt_project.yml": "name: p\n", path: text}
        found = detect(DictSource(files), ".", parse_config(None))
        assert found.name == expected[path], path
        assert found.source.startswith(f"{path}: dbt-"), found.source


def test_a_warehouse_adapter_wins_over_a_local_one_named_beside_it() -> None:
    files = {"dbt_project.yml": "name: p\n", "requirements.txt": "dbt-duckdb\ndbt-databricks\n"}
    found = detect(DictSource(files), ".", parse_config(None))
    assert found == Dialect("databricks", "requirements.txt: dbt-databricks (also names dbt-duckdb)")


def test_commented_out_and_look_alike_packages_do_not_count() -> None:
    assert adapters_named("# dbt-snowflake\nmydbt-bigquery\ndbt-spark-utils\ndbt-core\n") == []
    assert adapters_named("dbt-metricflow[dbt-snowflake]\ndbt_athena_community\n") == ["snowflake", "athena"]


def test_the_nearest_folder_speaks_first() -> None:
    files = {
        "requirements.txt": "dbt-postgres\n",
        "warehouse/dbt_project.yml": "name: w\n",
        "warehouse/requirements.txt": "dbt-snowflake\n",
    }
    found = detect(DictSource(files), "warehouse", parse_config(None))
    assert found == Dialect("snowflake", "warehouse/requirements.txt: dbt-snowflake")


def test_a_sibling_projects_profiles_do_not_apply() -> None:
    files = {
        "a/dbt_project.yml": "name: a\n",
        "b/dbt_project.yml": "name: b\n",
        "b/profiles.yml": "b:\n  target: dev\n  outputs:\n    dev: {type: bigquery}\n",
    }
    assert detect(DictSource(files), "a", parse_config(None)).source == "default"


def test_a_manifests_adapter_type_is_the_last_word() -> None:
    manifest = '{"metadata": {"dbt_schema_version": "v12", "adapter_type": "snowflake"}, "nodes": {}}'
    files = {"dbt_project.yml": "name: p\n", "target/manifest.json": manifest}
    assert detect(DictSource(files), ".", parse_config(None)) == Dialect(
        "snowflake", "target/manifest.json: metadata.adapter_type snowflake"
    )


def test_installed_packages_are_not_mistaken_for_the_repository() -> None:
    files = {
        "dbt_project.yml": "name: p\n",
        "dbt_packages/x/requirements.txt": "dbt-bigquery\n",
        "dbt_packages/x/dbt_project.yml": "name: x\n",
    }
    assert detect_projects(DictSource(files), parse_config(None)) == (Project(".", Dialect("postgres", "default")),)


def test_the_files_detection_reads_are_fetched_ahead() -> None:
    files = {**databricks_repo(), **snowflake_repo(), "docs/requirements.txt": "dbt-bigquery\n"}
    wanted = likely_reads(sorted(files), parse_config(None))
    assert {".github/workflows/ci.yml", "profiles.yml"} <= set(wanted)
    assert "docs/requirements.txt" not in wanted


def test_every_detected_dialect_is_one_tessera_yml_accepts() -> None:
    assert set(ADAPTER_DIALECTS.values()) <= set(DIALECTS)


def test_a_tessera_yml_without_a_dialect_still_detects_it_and_gets_no_setup_hint() -> None:
    files = {**bigquery_repo(), ".tessera.yml": "compatibility: full\n"}
    result = run(files, drop_plan_code(files))
    assert result.projects == (Project("analytics", Dialect("bigquery", "requirements.txt: dbt-bigquery")),)
    assert result.detected is None


def test_a_docs_only_change_reads_no_project() -> None:
    files = bigquery_repo()
    result = run(files, {**files, "README.md": "# shop, documented\n"})
    assert (result.status, result.projects) == ("clear", ())


def test_a_profiles_yml_bomb_is_passed_over_without_expanding_it() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    files = {"dbt_project.yml": "name: p\n", "profiles.yml": bomb, "requirements.txt": "dbt-redshift\n"}
    started = time.perf_counter()
    assert detect(DictSource(files), ".", parse_config(None)) == Dialect("redshift", "requirements.txt: dbt-redshift")
    assert time.perf_counter() - started < 2


def test_profiles_that_are_not_the_expected_shape_say_nothing() -> None:
    for text in ("- a list\n", "p: just text\n", "p:\n  outputs: [dev]\n", "p:\n  outputs:\n    dev: {type: [x]}\n"):
        files = {"dbt_project.yml": "name: p\n", "profiles.yml": text}
        assert detect(DictSource(files), ".", parse_config(None)) == Dialect("postgres", "default"), text


def test_a_local_default_target_beside_warehouse_outputs_reads_the_production_warehouse() -> None:
    files = {
        "dbt_project.yml": "name: p\nprofile: lake\n",
        "profiles.yml": (
            "lake:\n  target: dev_local\n  outputs:\n"
            "    qa: {type: trino}\n    production: {type: trino}\n"
            "    dev_local: {type: duckdb, path: local.duckdb}\n"
            "    starrocks_qa: {type: starrocks}\n"
        ),
        "pyproject.toml": '[project]\ndependencies = ["dbt-duckdb", "dbt-starrocks", "dbt-trino"]\n',
    }
    assert detect(DictSource(files), ".", parse_config(None)) == Dialect("trino", "profiles.yml (target production: trino)")


def test_a_local_default_target_with_no_production_output_reads_the_adapter_most_outputs_use() -> None:
    files = {
        "dbt_project.yml": "name: p\n",
        "profiles.yml": (
            "p:\n  target: dev\n  outputs:\n    dev: {type: duckdb}\n"
            "    ci: {type: bigquery}\n    staging: {type: bigquery}\n    mirror: {type: snowflake}\n"
        ),
    }
    assert detect(DictSource(files), ".", parse_config(None)) == Dialect("bigquery", "profiles.yml (target ci: bigquery)")


def test_a_profile_with_only_local_outputs_keeps_its_own_target() -> None:
    files = {"dbt_project.yml": "name: p\n", "profiles.yml": "p:\n  target: dev\n  outputs:\n    dev: {type: duckdb}\n"}
    assert detect(DictSource(files), ".", parse_config(None)) == Dialect("duckdb", "profiles.yml (target dev: duckdb)")


def _workflow(*packages: str) -> str:
    """A GitHub workflow installing ``packages``."""
    return "on: [pull_request]\njobs:\n  dbt:\n    steps:\n      - run: pip install dbt-core " + " ".join(packages) + "\n"


def _renamed(files: dict[str, str], names: dict[str, str]) -> dict[str, str]:
    return {names.get(path, path): text for path, text in files.items()}


def test_the_adapter_a_workflow_installs_alone_wins_over_a_test_matrix_whatever_the_files_are_called() -> None:
    files = {
        "dbt_project.yml": "name: p\n",
        ".github/workflows/a.yml": _workflow("dbt-fabric", "dbt-bigquery", "dbt-snowflake", "dbt-duckdb"),
        ".github/workflows/b.yml": _workflow("dbt-snowflake"),
        ".github/workflows/c.yml": _workflow("dbt-redshift", "dbt-snowflake"),
    }
    layouts = [
        {},
        {".github/workflows/a.yml": ".github/workflows/z.yml"},
        {".github/workflows/b.yml": ".github/workflows/0-deploy.yml", ".github/workflows/c.yml": ".github/workflows/1.yaml"},
    ]
    found = {detect(DictSource(_renamed(files, names)), ".", parse_config(None)).name for names in layouts}
    assert found == {"snowflake"}
    source = detect(DictSource(files), ".", parse_config(None)).source
    assert source == ".github/workflows/b.yml: dbt-snowflake (named in 3 of 3 files, 1 alone)"


def test_a_tie_between_workflows_goes_to_the_first_adapter_by_name_and_says_so() -> None:
    one = {"dbt_project.yml": "name: p\n", ".github/workflows/a.yml": _workflow("dbt-redshift"),
           ".github/workflows/b.yml": _workflow("dbt-bigquery")}
    other = _renamed(one, {".github/workflows/a.yml": ".github/workflows/b.yml",
                           ".github/workflows/b.yml": ".github/workflows/a.yml"})
    found = {detect(DictSource(files), ".", parse_config(None)) for files in (one, other)}
    assert {d.name for d in found} == {"bigquery"}
    assert all(d.source.endswith("(named in 1 of 2 files, 1 alone; tied with dbt-redshift: first by name)")
               for d in found)


def test_workflows_naming_the_same_adapters_are_settled_by_how_often_they_install_each() -> None:
    files = {
        "dbt_project.yml": "name: p\n",
        ".github/workflows/ci.yml": _workflow("dbt-fabric", "dbt-snowflake") + "      - run: pip install dbt-snowflake\n",
        ".github/workflows/nightly.yml": _workflow("dbt-fabric", "dbt-snowflake"),
    }
    found = detect(DictSource(files), ".", parse_config(None))
    assert found == Dialect("snowflake", ".github/workflows/ci.yml: dbt-snowflake (named in 2 of 2 files)")


def test_a_warehouse_named_in_one_requirements_file_wins_over_a_local_adapter_in_another() -> None:
    files = {
        "dbt_project.yml": "name: p\n",
        "requirements-dev.txt": "dbt-duckdb\n",
        "requirements.txt": "dbt-databricks\n",
    }
    found = detect(DictSource(files), ".", parse_config(None))
    assert found == Dialect("databricks", "requirements.txt: dbt-databricks (named in 1 of 2 files, 1 alone)")


def test_the_projects_own_requirements_still_speak_before_the_ci_files() -> None:
    files = {
        "dbt_project.yml": "name: p\n",
        "requirements.txt": "dbt-trino\n",
        ".github/workflows/a.yml": _workflow("dbt-snowflake"),
        ".github/workflows/b.yml": _workflow("dbt-snowflake"),
    }
    assert detect(DictSource(files), ".", parse_config(None)) == Dialect("trino", "requirements.txt: dbt-trino")
