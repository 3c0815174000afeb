"""``tessera init``: a starter ``.tessera.yml`` from a repository that has none."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from app.cli import main as cli_main
from app.init import FolderSource, run, starter_config, survey
from rules.config import parse_config
from rules.dialect import detect_projects
from rules.model import Dialect, TeamSpec
from tests.dialect_repos import bigquery_repo, two_dialect_repo

CODEOWNERS = "* @acme/platform\nmarketing/ @acme/growth @alice\n"


def write_repo(root: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def init(root: Path, *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = argparse.Namespace(repo=str(root), force="--force" in extra)
    code = run(args, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_init_writes_a_starter_file_that_maps_every_owner_it_found(tmp_path: Path) -> None:
    root = write_repo(tmp_path, {**two_dialect_repo(), ".github/CODEOWNERS": CODEOWNERS})
    code, out, err = init(root)
    assert (code, err) == (0, "")
    config = parse_config((root / ".tessera.yml").read_text())
    assert config.problems == ()
    assert config.dbt.projects == ("finance", "marketing")
    assert config.dbt.dialect is None  # two dialects: each project keeps its own
    assert dict(config.teams) == {
        "finance-data": TeamSpec("finance-data", None, ("finance@shop.test",), ("Finance Data",)),
        "growth": TeamSpec("growth", "acme/growth", ("growth@shop.test",), ("Growth",)),
        "platform": TeamSpec("platform", "acme/platform"),
    }
    assert "finance/  Snowflake (finance/profiles.yml (target prod: snowflake))" in out
    assert "marketing/  BigQuery (marketing/requirements.txt: dbt-bigquery)" in out
    assert "person @alice (CODEOWNERS marketing/)" in out
    assert "fill in `github:` for finance-data" in out
    assert "#   @alice (CODEOWNERS marketing/)" in (root / ".tessera.yml").read_text()


def test_one_detected_dialect_is_written_down_and_then_comes_from_the_file(tmp_path: Path) -> None:
    root = write_repo(tmp_path, bigquery_repo())
    assert init(root)[0] == 0
    config = parse_config((root / ".tessera.yml").read_text())
    assert (config.problems, config.dbt.dialect) == ((), "bigquery")
    assert [p.dialect for p in detect_projects(FolderSource(root), config)] == [Dialect("bigquery", ".tessera.yml")]


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    root = write_repo(tmp_path, {**bigquery_repo(), ".tessera.yml": "compatibility: full\n"})
    code, out, err = init(root)
    assert code == 2 and out == ""
    assert "already exists" in err and "--force" in err
    assert (root / ".tessera.yml").read_text() == "compatibility: full\n"
    assert init(root, "--force")[0] == 0
    assert "dialect: bigquery" in (root / ".tessera.yml").read_text()


def test_a_repository_without_dbt_or_owners_gets_a_file_of_commented_examples(tmp_path: Path) -> None:
    root = write_repo(tmp_path, {"README.md": "# nothing here\n"})
    code, out, _ = init(root)
    assert code == 0
    assert "dbt projects: none found" in out
    config = parse_config((root / ".tessera.yml").read_text())
    assert (config.problems, dict(config.teams), config.dbt.projects) == ((), {}, ())


def test_owner_names_that_look_like_yaml_read_back_exactly(tmp_path: Path) -> None:
    exposure = (
        "version: 2\nexposures:\n  - name: board\n    type: dashboard\n"
        "    owner: {name: 'Ops: \"night\" # shift', email: ops@shop.test}\n"
        "    depends_on: [ref('m')]\n"
    )
    root = write_repo(tmp_path, {"dbt_project.yml": "name: p\n", "models/m.sql": "select 1 as one\n", "models/x.yml": exposure})
    found = survey(FolderSource(root))
    config = parse_config(starter_config(found))
    assert config.problems == ()
    assert dict(config.teams) == {
        "ops-night-shift": TeamSpec("ops-night-shift", None, ("ops@shop.test",), ('Ops: "night" # shift',))
    }


def test_the_console_command_is_registered(tmp_path: Path, capsys: object) -> None:
    root = write_repo(tmp_path, bigquery_repo())
    assert cli_main(["init", "--repo", str(root)]) == 0
    assert (root / ".tessera.yml").is_file()
    assert cli_main(["init", "--repo", str(root / "missing")]) == 2
