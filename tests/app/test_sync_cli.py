"""`tessera keys create` and `tessera sync-dbt`, and the query reading behind cross-repository registrations."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from app.api import auth
from app.cli import main
from app.store import Store
from app.store import registry as reg_sql

MANIFEST = Path(__file__).parent.parent / "data" / "registry" / "manifest.json"


def _read(db_path: Path, fn: Any) -> Any:
    async def go() -> Any:
        async with Store(db_path) as store:
            return await store.read(fn)

    return asyncio.run(go())


def _server_database(path: Path) -> Path:
    """A database as ``tessera serve`` leaves it: the operator commands refuse to make one."""
    _read(path, lambda d: None)
    return path


def test_keys_create_prints_a_working_key_once_and_stores_its_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = _server_database(tmp_path / "t.db")
    monkeypatch.setenv("TESSERA_DB", str(db))
    assert main(["keys", "create", "--team", "growth", "--scope", "write", "--create-team", "--github-team", "acme/growth"]) == 0
    out, err = capsys.readouterr()
    key = out.strip()
    assert auth.KEY_PATTERN.match(key)
    assert "shown once" in err
    stored = _read(db, lambda d: auth.check_key(d, key, 0))
    assert stored.team == "growth" and stored.scopes == ("write",)
    assert _read(db, lambda d: reg_sql.get_team(d, "growth")).github_team == "acme/growth"


def test_keys_create_for_an_unknown_team_fails_with_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TESSERA_DB", str(_server_database(tmp_path / "t.db")))
    assert main(["keys", "create", "--team", "ghost", "--scope", "read"]) == 2
    assert "--create-team" in capsys.readouterr().err


def test_keys_revoke_makes_the_key_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    db = _server_database(tmp_path / "t.db")
    monkeypatch.setenv("TESSERA_DB", str(db))
    main(["keys", "create", "--team", "growth", "--scope", "read", "--create-team"])
    key = capsys.readouterr().out.strip()
    assert main(["keys", "revoke", "1"]) == 0
    with pytest.raises(Exception, match="revoked"):
        _read(db, lambda d: auth.check_key(d, key, 0))
    assert main(["keys", "revoke", "1"]) == 2


def test_sync_dbt_loads_a_manifest_into_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = _server_database(tmp_path / "t.db")
    monkeypatch.setenv("TESSERA_DB", str(db))
    assert main(["sync-dbt", str(MANIFEST), "--repo", "acme/warehouse", "--commit", "abc1234"]) == 0
    assert "5 assets" in capsys.readouterr().out
    assert _read(db, lambda d: reg_sql.get_asset(d, "fct_revenue"))["commit"] == "abc1234"


def test_sync_dbt_with_a_broken_manifest_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TESSERA_DB", str(tmp_path / "t.db"))
    bad = tmp_path / "manifest.json"
    bad.write_text("{nope")
    assert main(["sync-dbt", str(bad), "--repo", "acme/warehouse"]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["sync-dbt", str(tmp_path / "missing.json"), "--repo", "acme/warehouse"]) == 2


@pytest.mark.parametrize(
    "command",
    [
        ["keys", "create", "--team", "growth", "--scope", "read", "--create-team"],
        ["keys", "list"],
        ["keys", "revoke", "1"],
        ["sync-dbt", str(MANIFEST), "--repo", "acme/warehouse"],
    ],
    ids=["keys-create", "keys-list", "keys-revoke", "sync-dbt"],
)
def test_operator_commands_in_a_folder_without_the_database_refuse_and_create_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TESSERA_DB", raising=False)
    assert main(command) == 2
    out, err = capsys.readouterr()
    assert out == ""  # above all no "shown once" key the server would never know
    assert "no database at" in err and "TESSERA_DB" in err
    assert list(tmp_path.iterdir()) == []


def test_keys_list_shows_every_key_with_its_state_but_never_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TESSERA_DB", str(_server_database(tmp_path / "t.db")))
    assert main(["keys", "list"]) == 0
    assert "no keys" in capsys.readouterr().out
    main(["keys", "create", "--team", "growth", "--scope", "read", "--create-team"])
    main(["keys", "create", "--team", "billing", "--scope", "write", "--create-team"])
    first = capsys.readouterr().out.splitlines()[0]
    main(["keys", "revoke", "1"])
    capsys.readouterr()

    assert main(["keys", "list"]) == 0
    table = capsys.readouterr().out
    assert first not in table
    rows = [line.split() for line in table.splitlines()[1:]]
    assert [(r[0], r[2], r[3], r[4]) for r in rows] == [("1", "growth", "read", "revoked"), ("2", "billing", "write", "active")]
    assert first.startswith(f"tsk_{rows[0][1]}_")  # the prefix a person recognises the key by

    assert main(["keys", "list", "--team", "billing", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(k["id"], k["team"], k["state"]) for k in listed] == [(2, "billing", "active")]
    assert "secret_hash" not in listed[0]


def test_sync_dbt_on_a_json_file_that_is_not_a_manifest_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TESSERA_DB", str(_server_database(tmp_path / "t.db")))
    other = tmp_path / "package.json"
    other.write_text('{"name": "site", "version": "1.0.0"}')
    assert main(["sync-dbt", str(other)]) == 2
    err = capsys.readouterr().err
    assert "is not a dbt manifest" in err and "--repo" not in err


def test_sync_dbt_with_columns_stores_column_level_edges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = _server_database(tmp_path / "t.db")
    monkeypatch.setenv("TESSERA_DB", str(db))
    argv = ["sync-dbt", str(MANIFEST), "--repo", "acme/warehouse", "--project-dir", "analytics", "--columns"]
    assert main(argv) == 0
    edges = _read(db, reg_sql.all_edges)
    assert ("stg_orders", "amount", "fct_revenue", "revenue") in {
        (e.upstream, e.upstream_column, e.downstream, e.downstream_column) for e in edges}
    assert _read(db, lambda d: reg_sql.get_asset(d, "fct_revenue"))["path"] == "analytics/models/marts/fct_revenue.sql"


def test_sync_dbt_without_a_repo_files_the_manifest_under_its_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = _server_database(tmp_path / "t.db")
    monkeypatch.setenv("TESSERA_DB", str(db))
    assert main(["sync-dbt", str(MANIFEST)]) == 0
    assert "synced dbt/analytics" in capsys.readouterr().out
    assert _read(db, lambda d: reg_sql.get_asset(d, "fct_revenue"))["repo"] == "dbt/analytics"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [(["--team", "Growth Team"], "is not a team slug"), (["--team", "growth", "--github-team", "growth"], "is not org/team-slug")],
    ids=["slug", "github-team"],
)
def test_keys_create_team_refuses_what_the_api_would_refuse_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], extra: list[str], expected: str
) -> None:
    db = _server_database(tmp_path / "t.db")
    monkeypatch.setenv("TESSERA_DB", str(db))
    assert main(["keys", "create", "--scope", "read", "--create-team", *extra]) == 2
    out, err = capsys.readouterr()
    assert out == "" and expected in err
    assert _read(db, lambda d: reg_sql.list_teams(d)) == []


def test_deliveries_limit_below_one_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TESSERA_DB", str(_server_database(tmp_path / "t.db")))
    with pytest.raises(SystemExit) as exited:
        main(["deliveries", "--limit", "-1"])
    assert exited.value.code == 2
    assert "--limit: must be at least 1" in capsys.readouterr().err
