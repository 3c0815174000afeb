"""The tessera console script: serve prints where it listens; deliveries lists and replays."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from gidgethub.routing import Router
from gidgethub.sansio import Event

from app.cli import main
from app.errors import PermanentError
from app.queue import JobContext
from app.store import NewDelivery, Store
from tests.fixtures_app import load_webhook, post_delivery, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


def _seed(db_path: Path, *statuses: str) -> None:
    """Store one delivery per status given (d0, d1...)."""

    async def seed() -> None:
        async with Store(db_path) as store:
            for n, status in enumerate(statuses):
                await store.insert_delivery(
                    NewDelivery(f"d{n}", "pull_request", "opened", f"pr:1#{n}", 1, "acme/wh", "{}", time.time())
                )
                if status == "queued":
                    continue
                job = await store.claim_job(time.time())
                if status == "failed":
                    await store.fail_job(job.id, "PermanentError: the repository is gone", time.time())
                elif status == "done":
                    await store.finish_job(job.id, time.time())

    asyncio.run(seed())


def test_deliveries_lists_newest_first_and_filters_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "t.db"
    _seed(db, "done", "failed", "queued")
    monkeypatch.setenv("TESSERA_DB", str(db))
    assert main(["deliveries"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["d2", "d1", "d0"]
    assert main(["deliveries", "--failed"]) == 0
    out = capsys.readouterr().out
    assert "d1" in out and "the repository is gone" in out and "d0" not in out


def test_replaying_an_unknown_delivery_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(tmp_path / "t.db", "failed")
    monkeypatch.setenv("TESSERA_DB", str(tmp_path / "t.db"))
    assert main(["deliveries", "--replay", "nope"]) == 2
    assert "no delivery 'nope'" in capsys.readouterr().err


def test_a_bad_setting_is_reported_with_exit_code_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TESSERA_PORT", "eighty")
    assert main(["deliveries"]) == 2
    assert "TESSERA_PORT must be a whole number" in capsys.readouterr().err


def test_an_unknown_subcommand_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2


async def test_a_failed_delivery_replayed_from_the_cli_is_run_again_by_the_server(
    make_client: Any, store: Store, app_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []
    router = Router()

    @router.register("pull_request")
    async def fails_first(event: Event, ctx: JobContext) -> None:
        runs.append(ctx.attempt)
        if len(runs) == 1:
            raise PermanentError("GitHub App lacks the checks permission")

    client = await make_client(router=router)
    await post_delivery(client, "pull_request", load_webhook("pull_request", "opened"), delivery_id="r1")
    await wait_until(lambda: _status(store, "r1", "failed"))
    monkeypatch.setenv("TESSERA_DB", app_settings.db_path)
    assert await asyncio.to_thread(main, ["deliveries", "--replay", "r1"]) == 0
    await wait_until(lambda: _status(store, "r1", "done"), timeout=5)  # the idle poll finds it
    assert runs == [1, 1]


async def _status(store: Store, delivery_id: str, status: str) -> bool:
    delivery = await store.get_delivery(delivery_id)
    return delivery is not None and delivery.status == status


async def _spawn_serve(
    env: dict[str, str], *args: str, cwd: Path = REPO_ROOT
) -> asyncio.subprocess.Process:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "serve", *args,
        cwd=cwd, env={**inherited, "PYTHONPATH": str(REPO_ROOT), **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def _stop_serve(process: asyncio.subprocess.Process) -> tuple[int, bytes]:
    """SIGTERM, then read what the server writes until it exits (a full stderr pipe would hold
    its shutdown up); killed and reaped if it does not stop, so neither the process nor its pipes
    outlive the test (a pipe left open is closed by a later test's garbage collection)."""
    process.send_signal(signal.SIGTERM)
    try:
        _, err = await asyncio.wait_for(process.communicate(), 15)
    except TimeoutError:
        process.kill()
        await process.communicate()
        raise
    return process.returncode if process.returncode is not None else -1, err


async def test_serve_reads_the_env_file_setup_wrote_and_the_real_environment_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "# GitHub App tessera-acme, written by tessera setup\n"
        "TESSERA_WEBHOOK_SECRET=from-the-file\n"
        "export TESSERA_PORT=0\n"
        f'TESSERA_DB="{tmp_path / "from-file.db"}"\n'
    )
    process = await _spawn_serve({"TESSERA_DB": str(tmp_path / "from-env.db")}, cwd=tmp_path)
    assert process.stdout is not None and process.stderr is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line.startswith("Tessera listening on http://127.0.0.1:"), line
        url = line.split()[3]
        assert not url.endswith(":8080")  # TESSERA_PORT=0 from the file
        async with aiohttp.ClientSession() as session, session.get(f"{url}/readyz") as ready:
            assert ready.status == 200  # the file's webhook secret is set
    finally:
        code, err = await _stop_serve(process)
    assert code == 0
    assert (tmp_path / "from-env.db").exists() and not (tmp_path / "from-file.db").exists()
    assert "TESSERA_WEBHOOK_SECRET is not set" not in err.decode()


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "does not exist"), ("TESSERA_PORT 8080\n", "expected KEY=value")],
    ids=["missing", "malformed"],
)
async def test_serve_with_a_missing_or_malformed_env_file_says_which_line_and_exits_2(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    env_file = tmp_path / "tessera.env"
    if content is not None:
        env_file.write_text(content)
    process = await _spawn_serve({}, "--env-file", str(env_file), cwd=tmp_path)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert expected in err.decode() and "Traceback" not in err.decode()


@pytest.mark.parametrize("kind", ["a-folder", "under-a-file"])
async def test_serve_with_a_database_it_cannot_open_says_so_in_one_line(tmp_path: Path, kind: str) -> None:
    if kind == "a-folder":
        (tmp_path / "t.db").mkdir()
        db = tmp_path / "t.db"
    else:
        (tmp_path / "plain").write_text("")
        db = tmp_path / "plain" / "t.db"
    process = await _spawn_serve({"TESSERA_DB": str(db), "TESSERA_PORT": "0"}, cwd=tmp_path)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    text = err.decode()
    assert "Traceback" not in text
    assert f"cannot open the database {db}" in text


async def test_serve_prints_where_it_listens_answers_health_and_stops_on_sigterm(tmp_path: Path) -> None:
    process = await _spawn_serve({"TESSERA_PORT": "0", "TESSERA_DB": str(tmp_path / "s.db")})
    assert process.stdout is not None and process.stderr is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line.startswith("Tessera listening on http://127.0.0.1:"), line
        url = line.split()[3]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/healthz") as health:
                assert health.status == 200
            async with session.get(f"{url}/readyz") as ready:
                assert ready.status == 503  # not ready: deliveries would be refused
            async with session.post(f"{url}/webhooks/github", data=b"{}") as hook:
                assert hook.status == 503  # no secret configured
    finally:
        code, err = await _stop_serve(process)
    assert code == 0
    assert "TESSERA_WEBHOOK_SECRET is not set" in err.decode()


async def test_serve_refuses_dev_mode_on_a_public_address() -> None:
    process = await _spawn_serve({"TESSERA_DEV_MODE": "1", "TESSERA_HOST": "0.0.0.0"})
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert "dev mode" in err.decode().lower() and "0.0.0.0" in err.decode()


def test_deliveries_json_gives_times_in_iso_8601_like_the_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "t.db"
    _seed(db, "failed")
    monkeypatch.setenv("TESSERA_DB", str(db))
    assert main(["deliveries", "--json"]) == 0
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["delivery_id"] == "d0" and row["status"] == "failed"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["received_at"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["finished_at"])


@pytest.mark.parametrize("command", [["deliveries"], ["keys", "list"]], ids=["deliveries", "keys-list"])
def test_a_database_setting_that_names_some_other_file_is_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    other = tmp_path / "settings.env"
    other.write_text("TESSERA_PORT=8080\n" * 100)
    monkeypatch.setenv("TESSERA_DB", str(other))
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"cannot use the database {other}: file is not a database" in err
    assert other.read_text() == "TESSERA_PORT=8080\n" * 100


def test_deliveries_without_a_database_says_so_instead_of_creating_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TESSERA_DB", str(tmp_path / "missing.db"))
    assert main(["deliveries"]) == 2
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists()
