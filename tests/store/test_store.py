"""The store: migrations recorded and applied at open, group-committed writes, reads off the loop.

Every test taking ``store`` or ``store_target`` runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import sqlite_utils

from app.store import MIGRATIONS, NewDelivery, Store, apply_migrations
from app.store import deliveries as delivery_sql
from app.store.db import Database


def _delivery(n: int, key: str = "pr:1#1", at: float = 100.0) -> NewDelivery:
    return NewDelivery(
        delivery_id=f"delivery-{n}",
        event="pull_request",
        action="opened",
        ordering_key=key,
        installation_id=1,
        repository="acme/warehouse",
        payload='{"action": "opened"}',
        received_at=at,
    )


async def test_opening_a_new_database_applies_every_migration_and_records_it(store_target: str) -> None:
    store = Store(store_target)
    await store.open()
    assert store.applied_migrations == [name for name, _ in MIGRATIONS]
    recorded = await store.read(lambda db: [r["name"] for r in db.query("SELECT name FROM _migrations ORDER BY name")])
    assert recorded == [name for name, _ in MIGRATIONS]
    await store.close()

    reopened = Store(store_target)
    await reopened.open()
    assert reopened.applied_migrations == []
    await reopened.close()


async def test_a_sqlite_file_is_opened_in_wal_mode(tmp_path: Path) -> None:
    async with Store(tmp_path / "t.db") as store:
        assert await store.read(lambda db: db.execute("PRAGMA journal_mode").fetchone()[0]) == "wal"


async def test_a_migration_appended_later_runs_once_on_an_existing_database(store_target: str) -> None:
    path = store_target
    async with Store(path):
        pass

    def add_scratch(db: Database) -> None:
        db.execute("CREATE TABLE test_scratch (slug TEXT PRIMARY KEY, name TEXT)")

    extended = [*MIGRATIONS, ("9999_test_scratch", add_scratch)]
    store = Store(path, migrations=extended)
    await store.open()
    assert store.applied_migrations == ["9999_test_scratch"]
    await store.write(lambda db: db.execute("INSERT INTO test_scratch (slug, name) VALUES (?, ?)", ("growth", "Growth")))
    assert await store.read(lambda db: list(db.query("SELECT * FROM test_scratch"))) == [{"slug": "growth", "name": "Growth"}]
    await store.close()
    again = Store(path, migrations=extended)
    await again.open()
    assert again.applied_migrations == []
    await again.close()


def test_a_failing_migration_leaves_nothing_half_applied(tmp_path: Path) -> None:
    db = sqlite_utils.Database(sqlite3.connect(tmp_path / "t.db"))

    def broken(db: sqlite_utils.Database) -> None:
        db["half"].create({"id": int}, pk="id")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        apply_migrations(db, [("0001_half", broken)])
    assert "half" not in db.table_names()
    assert db.execute("SELECT count(*) FROM _migrations").fetchone()[0] == 0


async def test_concurrent_writes_are_all_committed_and_one_failure_spares_the_others(store: Store) -> None:
    await store.write(lambda db: db.execute("CREATE TABLE test_notes (n INTEGER PRIMARY KEY)"))

    def insert(n: int):
        def fn(db: Database) -> int:
            if n == 7:
                db.execute("INSERT INTO test_notes (n) VALUES (1000)")
                raise ValueError("refused")
            db.execute("INSERT INTO test_notes (n) VALUES (?)", (n,))
            return n

        return fn

    results = await asyncio.gather(*(store.write(insert(n)) for n in range(20)), return_exceptions=True)
    assert isinstance(results[7], ValueError)
    assert [r for i, r in enumerate(results) if i != 7] == [n for n in range(20) if n != 7]
    stored = await store.read(lambda db: sorted(r["n"] for r in db.query("SELECT n FROM test_notes")))
    assert stored == [n for n in range(20) if n != 7]  # the failed write's own insert was rolled back


async def test_writes_and_reads_run_off_the_event_loop_thread(store: Store) -> None:
    loop_thread = threading.get_ident()
    writer = await store.write(lambda db: threading.get_ident())
    reader = await store.read(lambda db: threading.get_ident())
    assert loop_thread not in (writer, reader)


async def test_a_repeated_delivery_id_is_stored_once_even_within_one_batch(store: Store) -> None:
    first, repeat_same_batch = await asyncio.gather(
        store.insert_delivery(_delivery(1)), store.insert_delivery(_delivery(1))
    )
    later_repeat = await store.insert_delivery(_delivery(1))
    assert sorted([first, repeat_same_batch]) == [False, True]
    assert later_repeat is False
    assert (await store.count_deliveries())["queued"] == 1


async def test_a_batch_insert_numbers_its_rows_in_order_after_every_row_already_stored(store: Store) -> None:
    """``seq`` (the queue's arrival order) continues from the highest stored, row by row in the
    order given, across the statement's chunks, skipping nothing but duplicates."""
    await store.write(lambda db: delivery_sql.insert_many(db, [_delivery(n) for n in range(3)]))
    batch = [_delivery(n) for n in range(3, 900)] + [_delivery(1)]  # 900 rows: three chunks, one repeat
    inserted = await store.write(lambda db: delivery_sql.insert_many(db, batch))
    assert inserted == {f"delivery-{n}" for n in range(3, 900)}
    rows = await store.read(lambda db: db.execute("SELECT delivery_id, seq FROM deliveries ORDER BY seq").fetchall())
    assert [r[0] for r in rows] == [f"delivery-{n}" for n in range(900)]
    assert len({r[1] for r in rows}) == 900


async def test_claims_follow_arrival_order_and_hold_back_a_busy_key(store: Store) -> None:
    for n, key in enumerate(["pr:1#1", "pr:1#1", "pr:1#2"]):
        await store.insert_delivery(_delivery(n, key))
    first = await store.claim_job(now=200.0)
    second = await store.claim_job(now=200.0)
    assert (first.delivery_id, second.delivery_id) == ("delivery-0", "delivery-2")
    assert await store.claim_job(now=200.0) is None  # delivery-1 waits for delivery-0
    await store.finish_job(first.id, now=201.0)
    third = await store.claim_job(now=201.0)
    assert third.delivery_id == "delivery-1" and third.attempts == 1 and third.payload_text() == '{"action": "opened"}'


async def test_a_job_waiting_for_its_retry_blocks_later_jobs_of_its_key_until_due(store: Store) -> None:
    await store.insert_delivery(_delivery(0))
    await store.insert_delivery(_delivery(1))
    job = await store.claim_job(now=200.0)
    await store.retry_job(job.id, run_after=260.0, error="TransientError: 502")
    assert await store.claim_job(now=230.0) is None
    assert await store.next_due_at() == 100.0  # delivery-1 is due but held back by delivery-0
    retried = await store.claim_job(now=260.0)
    assert retried.delivery_id == "delivery-0" and retried.attempts == 2


async def test_recovery_requeues_running_jobs_and_fails_those_out_of_attempts(store: Store) -> None:
    await store.insert_delivery(_delivery(0, "pr:1#1"))
    await store.insert_delivery(_delivery(1, "pr:1#2"))
    a = await store.claim_job(now=200.0)
    b = await store.claim_job(now=200.0)
    await store.write(lambda db: db.execute("UPDATE deliveries SET attempts = 3 WHERE id = ?", [b.id]))
    assert await store.recover_interrupted(max_attempts=3, now=300.0) == (1, 1)
    a_after = await store.get_delivery(a.delivery_id)
    b_after = await store.get_delivery(b.delivery_id)
    assert (a_after.status, a_after.attempts) == ("queued", 1)
    assert b_after.status == "failed" and "interrupted" in (b_after.last_error or "")


async def test_replay_queues_a_failed_delivery_again_behind_the_queue(store: Store) -> None:
    await store.insert_delivery(_delivery(0, "pr:1#1"))
    await store.insert_delivery(_delivery(1, "pr:1#1"))
    job = await store.claim_job(now=200.0)
    await store.fail_job(job.id, "PermanentError: nope", now=201.0)
    assert await store.replay_delivery("delivery-0", now=300.0) is True
    assert await store.replay_delivery("no-such-delivery", now=300.0) is False
    order = [(await store.claim_job(now=300.0)).delivery_id]
    await store.finish_job((await store.get_delivery(order[0])).id, now=301.0)
    order.append((await store.claim_job(now=301.0)).delivery_id)
    assert order == ["delivery-1", "delivery-0"]
    replayed = await store.get_delivery("delivery-0")
    assert replayed.attempts == 1 and replayed.last_error is None


async def test_the_store_refuses_an_in_memory_database() -> None:
    with pytest.raises(ValueError, match="needs a file"):
        Store(":memory:")


async def test_payloads_are_stored_compressed_and_read_back_unchanged(store: Store) -> None:
    text = json.dumps({"body": "caf\u00e9 plan_code " * 2000})
    await store.insert_delivery(replace(_delivery(1), payload=text))
    raw = await store.read(lambda db: db.execute("SELECT payload FROM deliveries").fetchone()[0])
    assert isinstance(raw, bytes) and len(raw) < len(text) / 5
    assert (await store.get_delivery("delivery-1", with_payload=True)).payload == text
    assert (await store.claim_job(now=200.0)).payload_text() == text


async def test_pruning_forgets_old_done_deliveries_and_keeps_failed_and_recent_ones(store: Store) -> None:
    for n in range(3):
        await store.insert_delivery(_delivery(n, key=f"pr:1#{n}"))
    old_done, old_failed, recent_done = [await store.claim_job(now=200.0) for _ in range(3)]
    await store.finish_job(old_done.id, now=1_000.0)
    await store.fail_job(old_failed.id, "PermanentError: gone", now=1_000.0)
    await store.finish_job(recent_done.id, now=5_000.0)
    assert await store.prune_deliveries(finished_before=2_000.0) == 1
    assert await store.get_delivery(old_done.delivery_id) is None
    assert (await store.get_delivery(old_failed.delivery_id)).status == "failed"
    assert (await store.get_delivery(recent_done.delivery_id)).status == "done"
    assert await store.insert_delivery(_delivery(0, key="pr:1#0")) is True  # its id is forgotten too


ADDITIVE_FROM = "0061"
"""Migrations from here on ran on PostgreSQL stores that replicas of the previous version share."""


def test_migrations_since_postgresql_stores_exist_only_add_so_an_older_replica_keeps_working() -> None:
    """The rule of :mod:`app.store.migrations`: during a rolling upgrade a replica one version older
    runs against the new schema, so a migration never drops, renames or retypes what it uses."""
    later = [(name, inspect.getsource(fn)) for name, fn in MIGRATIONS if name >= ADDITIVE_FROM]
    assert later, "the rule covers at least the newest migration"
    for name, source in later:
        code = "\n".join(line for line in source.splitlines() if not line.strip().startswith(("#", '"""')))
        found = re.findall(r"\b(DROP\s+(?:TABLE|COLUMN)|RENAME|ALTER\s+COLUMN)\b", code, re.I)
        assert not found, f"{name} is not additive: {found}"
