"""``tessera serve`` with ``TESSERA_DATABASE_URL``: two processes on one PostgreSQL take deliveries
and run them; a database it cannot reach, or a URL that is not PostgreSQL's, is one clear line."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import aiohttp
import pytest

from app import cli
from app.webhooks import sign
from tests.app.test_cli import _spawn_serve
from tests.pg import PostgresServer

SECRET = "serve-on-postgres"


async def _listening(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
    assert line.startswith("Tessera listening on http://127.0.0.1:"), line
    assert "database: postgresql://tessera@127.0.0.1:" in line
    return line.split()[3]


async def test_two_serve_processes_on_one_postgresql_store_each_delivery_once_and_run_it(
    postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = postgres_server.create_database("serve_two")
    env = {"TESSERA_DATABASE_URL": url, "TESSERA_PORT": "0", "TESSERA_WEBHOOK_SECRET": SECRET}
    processes = [await _spawn_serve({**env, "TESSERA_DB": f"{tmp_path}/r{n}.db"}) for n in range(2)]
    try:
        urls = [await _listening(p) for p in processes]
        async with aiohttp.ClientSession() as session:
            for base in urls:
                async with session.get(f"{base}/readyz") as ready:
                    assert ready.status == 200
            for n in range(12):
                body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": n}).encode()
                headers = {"X-GitHub-Event": "ping", "X-GitHub-Delivery": f"ping-{n % 10}",
                           "X-Hub-Signature-256": sign(SECRET, body), "Content-Type": "application/json"}
                async with session.post(f"{urls[(n + n // 10) % 2]}/webhooks/github", data=body, headers=headers) as answer:
                    assert answer.status in (200, 202), await answer.text()
        for _ in range(100):
            rows = postgres_server.psql("SELECT status, count(*) FROM deliveries GROUP BY status", database="serve_two")
            if rows.strip() == "done|10":
                break
            await asyncio.sleep(0.1)
        assert rows.strip() == "done|10"  # ping-0 and ping-1 came twice, to the other replica: stored once
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [await asyncio.wait_for(p.wait(), 30) for p in processes]
    assert codes == [0, 0]
    # the operator's tools read the same database
    monkeypatch.setenv("TESSERA_DATABASE_URL", url)
    assert await asyncio.to_thread(cli.main, ["deliveries", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(d["delivery_id"] for d in listed) == [f"ping-{n}" for n in range(10)]
    assert {d["status"] for d in listed} == {"done"} and all(d["claimed_by"] for d in listed)
    assert {d["lease_until"] for d in listed} == {None}  # nothing is left claimed


async def test_serve_with_a_postgresql_it_cannot_reach_says_so_in_one_line_without_the_password() -> None:
    process = await _spawn_serve({"TESSERA_DATABASE_URL": "postgresql://tessera:hunter2@127.0.0.1:1/tessera",
                                  "TESSERA_PORT": "0"})
    _, err = await asyncio.wait_for(process.communicate(), 60)
    text = err.decode()
    assert process.returncode == 2
    assert "cannot open the database postgresql://tessera:***@127.0.0.1:1/tessera" in text
    assert "hunter2" not in text and "Traceback" not in text


async def test_a_database_url_that_is_not_postgresql_is_a_configuration_error() -> None:
    process = await _spawn_serve({"TESSERA_DATABASE_URL": "mysql://db/tessera", "TESSERA_PORT": "0"})
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert "TESSERA_DATABASE_URL must be a postgresql:// URL" in err.decode()
