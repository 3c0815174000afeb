"""Discovery on a schedule in the App: configured sources are read again and again; a broken one
is recorded and never stops the others or the App."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from app.discovery.schedule import LEASE, scheduled_round
from app.server import create_app
from app.store import Store, schedules
from app.store import observed as observed_sql
from tests.fixtures_app import wait_until

TODAY = dt.date(2026, 12, 1)


def _query_log(path: Path, lines: int) -> Path:
    path.write_text("".join(
        json.dumps({"query": "select amount from shop.orders", "role": "LOOKER_FINANCE",
                    "time": f"2026-11-30T10:{minute:02d}:00Z"}) + "\n"
        for minute in range(lines)
    ))
    return path


def test_sources_and_interval_come_from_the_environment() -> None:
    settings = Settings.from_env({"TESSERA_DISCOVERY_SOURCES": "snowflake=exports/ postgresql://r@db/a",
                                  "TESSERA_DISCOVERY_INTERVAL": "900"})
    assert settings.discovery_sources == ("snowflake=exports/", "postgresql://r@db/a")
    assert settings.discovery_interval == 900.0


async def test_the_app_reads_its_sources_on_a_schedule_and_records_a_broken_one(
    tmp_path: Path, make_client: Any, app_settings: Settings, store: Any
) -> None:
    log = tmp_path / "queries.jsonl"
    log.write_text(json.dumps({"query": "select amount from shop.orders", "role": "LOOKER_FINANCE",
                               "time": "2026-11-30T10:00:00Z"}) + "\n")
    missing = tmp_path / "gone.csv"
    settings = app_settings.with_overrides(
        discovery_sources=(f"snowflake={missing}", f"jsonl={log}"), discovery_interval=0.05)
    await make_client(settings, start_workers=False)
    today = dt.date(2026, 12, 1)

    rows = await wait_until(lambda: store.read(lambda db: observed_sql.list_observed(db, today=today)))
    assert [(r["asset"], r["reader"]["name"], r["columns"]) for r in rows] == [
        ("shop.orders", "LOOKER_FINANCE", ["amount"])]
    runs = await store.read(observed_sql.last_runs)
    assert any("no such file or folder" in (r.get("error") or "") for r in runs)

    with log.open("a") as handle:  # the next round reads only the new line
        handle.write(json.dumps({"query": "select plan_code from shop.orders", "role": "LOOKER_FINANCE",
                                 "time": "2026-11-30T11:00:00Z"}) + "\n")

    async def both() -> object:
        found = await store.read(lambda db: observed_sql.list_observed(db, today=today))
        return found if found and found[0]["columns"] == ["amount", "plan_code"] else None

    [row] = await wait_until(both)
    assert row["queries"] == 2


@pytest.mark.parametrize("store_backend", ["postgres"], indirect=True)
async def test_two_replicas_on_one_postgresql_run_each_scheduled_round_once(
    tmp_path: Path, aiohttp_client: Any, app_settings: Settings, store: Store, store_target: str
) -> None:
    log = _query_log(tmp_path / "queries.jsonl", 3)
    interval = 0.5
    settings = app_settings.with_overrides(discovery_sources=(f"jsonl={log}",), discovery_interval=interval)
    other = Store(store_target, replica="replica-b")
    await other.open()
    try:
        started = time.monotonic()
        await aiohttp_client(create_app(settings, store=store, start_workers=False))
        await aiohttp_client(create_app(settings, store=other, start_workers=False))
        await asyncio.sleep(2.2)
        elapsed = time.monotonic() - started
        lease = await store.read(lambda db: schedules.get(db, LEASE))
    finally:
        await other.close()
    assert lease is not None and lease.holder in (store.replica, "replica-b")
    # One round per interval between the two replicas (each alone would run one per interval).
    assert 2 <= lease.rounds <= elapsed / interval + 1
    [row] = await store.read(lambda db: observed_sql.list_observed(db, today=TODAY))
    assert row["queries"] == 3  # every query counted once: no round read the log beside another


@pytest.mark.parametrize("store_backend", ["sqlite", "postgres"], indirect=True)
async def test_a_round_left_by_a_replica_that_died_is_run_by_another_once_its_lease_runs_out(
    tmp_path: Path, store: Store, store_target: str
) -> None:
    log = _query_log(tmp_path / "queries.jsonl", 2)
    entries = (f"jsonl={log}",)
    # A replica took the round's lease and died: it never renews nor finishes it.
    now = time.time()
    assert await store.write(lambda db: schedules.take(db, LEASE, "died", now, now + 0.4))

    wait = await scheduled_round(store, entries, interval=60.0)
    assert 0 < wait <= 0.5  # it tries again once the lease has run out, not a whole interval later
    assert await store.read(lambda db: observed_sql.list_observed(db, today=TODAY)) == []

    await asyncio.sleep(wait)
    assert await scheduled_round(store, entries, interval=60.0) == 60.0
    [row] = await store.read(lambda db: observed_sql.list_observed(db, today=TODAY))
    assert row["queries"] == 2
    lease = await store.read(lambda db: schedules.get(db, LEASE))
    assert lease is not None and lease.holder == store.replica and lease.rounds == 2
    assert lease.lease_until >= time.time() + 59  # held until the next round is due

    other = Store(store_target, replica="replica-b")
    await other.open()
    try:
        await scheduled_round(other, entries, interval=60.0)  # another replica asking now runs nothing
    finally:
        await other.close()
    assert (await store.read(lambda db: schedules.get(db, LEASE))).rounds == 2


@pytest.mark.parametrize("store_backend", ["sqlite", "postgres"], indirect=True)
async def test_a_renewal_that_arrives_after_the_round_finished_keeps_the_wait_for_the_next_round(
    store: Store,
) -> None:
    now = time.time()
    assert await store.write(lambda db: schedules.take(db, LEASE, "a", now, now + 60))
    assert await store.write(lambda db: schedules.renew(db, LEASE, "a", now + 90))  # the round runs
    await store.write(lambda db: schedules.finish(db, LEASE, "a", now + 1, now + 3600))
    assert not await store.write(lambda db: schedules.renew(db, LEASE, "a", now + 120))  # late
    assert (await store.read(lambda db: schedules.get(db, LEASE))).lease_until == now + 3600
    # the next round, once due, is renewed again
    assert await store.write(lambda db: schedules.take(db, LEASE, "b", now + 3601, now + 3661))
    assert await store.write(lambda db: schedules.renew(db, LEASE, "b", now + 3700))


@pytest.mark.parametrize("store_backend", ["sqlite", "postgres"], indirect=True)
async def test_a_round_that_fails_on_a_bug_holds_the_lease_until_the_next_round_and_a_stopped_one_frees_it(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in the round")

    monkeypatch.setattr("app.discovery.schedule.run_round", broken)
    entries = (f"jsonl={_query_log(tmp_path / 'queries.jsonl', 1)}",)
    with pytest.raises(RuntimeError):
        await scheduled_round(store, entries, interval=600.0)
    lease = await store.read(lambda db: schedules.get(db, LEASE))
    assert lease is not None and lease.holder == store.replica
    assert lease.lease_until >= time.time() + 590  # no replica runs the failing round again before then

    async def stalled(*args: object, **kwargs: object) -> None:
        await asyncio.sleep(60)

    monkeypatch.setattr("app.discovery.schedule.run_round", stalled)
    await store.write(lambda db: schedules.release(db, LEASE, store.replica))
    running = asyncio.create_task(scheduled_round(store, entries, interval=600.0))
    await wait_until(lambda: _held(store))
    running.cancel()  # the replica shuts down mid-round
    with pytest.raises(asyncio.CancelledError):
        await running
    assert (await store.read(lambda db: schedules.get(db, LEASE))).lease_until == 0  # free for another now


async def _held(store: Store) -> bool:
    lease = await store.read(lambda db: schedules.get(db, LEASE))
    return lease is not None and lease.lease_until > time.time()
