"""``tessera db copy``: a registry, proposals and deliveries moved to the other engine and back give
the same answers; bad URLs and non-empty targets get a clear message.

Parametrized like every store test: the source is the SQLite or the PostgreSQL store, and the copy
goes to the other engine, then back to a fresh database of the source's engine."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from app import cli
from app.config import Settings
from app.store import NewDelivery, Store
from app.store import deliveries as delivery_sql
from app.store import proposals as proposal_sql
from app.store import registry as registry_sql
from app.store.copy import CopyError, copy_database, parse_url
from app.store.db import Database
from app.workflow.acks import AckRecord
from tests.pg import PostgresServer

BENCH = Path(__file__).resolve().parents[2] / "bench" / "registry.py"
BOOTSTRAP = "bootstrap-key-for-copy-tests-0123456789"
_NAMES = itertools.count()


def _bench_registry() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_registry", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_registry", module)
    spec.loader.exec_module(module)
    return module


def _url(target: str) -> str:
    return target if target.startswith("postgresql://") else f"sqlite:///{target}"


def _other_engine(store_backend: str, tmp_path: Path, postgres_server: PostgresServer, label: str) -> str:
    if store_backend == "sqlite":
        return postgres_server.create_database(f"copy_{label}_{next(_NAMES)}")
    return str(tmp_path / f"{label}.db")


def _same_engine(store_backend: str, tmp_path: Path, postgres_server: PostgresServer, label: str) -> str:
    if store_backend == "postgres":
        return postgres_server.create_database(f"copy_{label}_{next(_NAMES)}")
    return str(tmp_path / f"{label}.db")


async def _fill(make_client: Any, app_settings: Settings, store: Store) -> None:
    """A registry of 300 models synced through the API, 40 proposals with acks, 250 deliveries."""
    settings = app_settings.with_overrides(bootstrap_key=BOOTSTRAP)
    client = await make_client(settings, start_workers=False)
    headers = {"Authorization": f"Bearer {BOOTSTRAP}"}
    bench = _bench_registry()
    for team in bench.TEAMS:
        response = await client.post(
            "/api/v1/teams", json={"slug": team, "name": f"Team {team}", "github_team": f"acme/{team}"}, headers=headers
        )
        assert response.status == 201, await response.text()
    manifest = bench.generate_manifest(300)
    response = await client.post(
        "/api/v1/sync/dbt", json={"repo": "acme/warehouse", "commit": "f" * 40, "manifest": manifest}, headers=headers
    )
    assert response.status == 200, await response.text()

    def proposals(db: Database) -> None:
        for n in range(40):
            proposal = proposal_sql.upsert_proposal(
                db, repo_id=7, pr_number=n + 1,
                fields={"repo": "acme/warehouse", "title": f"Change {n} — café", "author": "octo", "head_sha": f"{n:040x}",
                        "installation_id": 3_000_000_000 + n, "analysis": '{"teams": ["team_01"]}'},
            )
            proposal_sql.put_ack(db, proposal.id, AckRecord(
                team=bench.TEAMS[n % 20], response="ack", user=f"user{n}", fingerprint="ab" * 8,
                created_at=1_750_000_000.5 + n,
            ))
    await store.write(proposals)
    for n in range(250):
        payload = json.dumps({"n": n, "text": "x" * (n % 50)})
        await store.insert_delivery(NewDelivery(
            f"delivery-{n}", "pull_request", "opened", f"pr:{n % 30}", 1, "acme/warehouse", payload, 1_750_000_000.25 + n
        ))
    for _ in range(20):
        job = await store.claim_job(1_750_001_000.0)
        assert job is not None
        await store.finish_job(job.id, 1_750_001_001.0)


def _answers(db: Database) -> dict[str, Any]:
    """What the App asks the store, as it would ask it after a move."""
    return {
        "assets": registry_sql.search_assets(db, limit=1000),
        "registrations": registry_sql.all_registrations(db),
        "teams": registry_sql.list_teams(db),
        "proposals": proposal_sql.list_proposals(db, limit=100),
        "acks": [proposal_sql.list_acks(db, p.id) for p in proposal_sql.list_proposals(db, limit=100)],
        "deliveries": delivery_sql.list_recent(db, limit=500),
        "counts": delivery_sql.count_by_status(db),
        "payload": delivery_sql.get(db, "delivery-42", with_payload=True),
    }


async def _answers_of(target: str) -> dict[str, Any]:
    async with Store(target) as store:
        return await store.read(_answers)


async def test_a_copy_to_the_other_engine_and_back_answers_every_query_the_same(
    store: Store, store_backend: str, store_target: str, make_client: Any, app_settings: Settings,
    tmp_path: Path, postgres_server: PostgresServer,
) -> None:
    await _fill(make_client, app_settings, store)
    before = await store.read(_answers)
    assert len(before["assets"]) >= 300 and len(before["deliveries"]) == 250
    await store.close()

    other = _other_engine(store_backend, tmp_path, postgres_server, "other")
    there = copy_database(_url(store_target), _url(other))
    assert there.ok, [t for t in there.tables if not t.ok]
    copied = {t.name: t.source_rows for t in there.tables}
    assert copied["deliveries"] == 250 and copied["acks"] == 40 and copied["assets"] >= 300
    assert await _answers_of(other) == before

    back = _same_engine(store_backend, tmp_path, postgres_server, "back")
    again = copy_database(_url(other), _url(back))
    assert again.ok
    assert [(t.name, t.source_checksum) for t in again.tables] == [(t.name, t.source_checksum) for t in there.tables]
    assert await _answers_of(back) == before

    # The copy keeps working as a store: new rows get fresh ids and queue behind the copied ones.
    async with Store(other) as moved:
        assert await moved.insert_delivery(NewDelivery("after-move", "push", None, "repo:1", 1, "a/b", "{}", 1.0))
        stored = await moved.get_delivery("after-move")
        assert stored is not None and stored.id > 250 and stored.seq > max(d.seq for d in before["deliveries"])
        team = await moved.write(lambda db: registry_sql.create_team(db, "newcomers", "Newcomers", None))
        assert team is not None


async def test_a_non_empty_target_is_refused_unless_forced(
    store: Store, store_backend: str, store_target: str, tmp_path: Path, postgres_server: PostgresServer,
) -> None:
    await store.insert_delivery(NewDelivery("d-1", "push", None, "repo:1", 1, "a/b", "{}", 1.0))
    await store.close()
    other = _other_engine(store_backend, tmp_path, postgres_server, "full")
    async with Store(other) as occupied:
        await occupied.insert_delivery(NewDelivery("older", "push", None, "repo:1", 1, "a/b", "{}", 1.0))
    with pytest.raises(CopyError, match=r"not empty: deliveries \(1\); pass --force"):
        copy_database(_url(store_target), _url(other))
    assert copy_database(_url(store_target), _url(other), force=True).ok
    async with Store(other) as replaced:
        assert await replaced.get_delivery("older") is None and await replaced.get_delivery("d-1") is not None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("tessera.db", "not a store URL; use sqlite:///FILE"),
        ("sqlite://tessera.db", "sqlite:///relative/file.db"),
        ("mysql://db/tessera", "not a store URL"),
        ("postgresql:///tessera", "needs a host"),
        ("postgresql://tessera:secret@db:5432", "needs a database name"),
    ],
)
def test_a_bad_url_is_named_with_the_forms_that_work_and_never_shows_a_password(url: str, message: str) -> None:
    with pytest.raises(CopyError, match=message) as caught:
        parse_url(url)
    assert "secret" not in str(caught.value)


def test_the_command_reports_each_table_verified_and_fails_clearly_on_a_missing_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], postgres_server: PostgresServer,
) -> None:
    source = tmp_path / "source.db"
    missing = cli.main(["db", "copy", "--from", f"sqlite:///{source}", "--to", f"sqlite:///{tmp_path / 'to.db'}"])
    assert missing == cli.EXIT_ERROR
    assert "no SQLite database at" in capsys.readouterr().err

    async def make() -> None:
        async with Store(source) as store:
            await store.insert_delivery(NewDelivery("d-1", "push", None, "repo:1", 1, "a/b", "{}", 1.0))

    _run(make)
    target = postgres_server.create_database(f"copy_cli_{next(_NAMES)}")
    assert cli.main(["db", "copy", "--from", f"sqlite:///{source}", "--to", target]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "deliveries: 1 row(s), checksum" in out and " ok" in out and "verified" in out
    unreachable = "postgresql://tessera:hunter2@127.0.0.1:1/nowhere"
    assert cli.main(["db", "copy", "--from", f"sqlite:///{source}", "--to", unreachable]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "cannot connect to postgresql://tessera:***@127.0.0.1:1/nowhere" in err and "hunter2" not in err


def _run(fn: Callable[[], Any]) -> None:
    started = time.monotonic()
    asyncio.run(fn())
    assert time.monotonic() - started < 60
