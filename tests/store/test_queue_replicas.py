"""The queue shared by several replicas: claims never hand one job (or two jobs of one pull
request) to two replicas, a live lease is never taken over, an expired one is, and a replica that
lost its lease cannot record an outcome over the replica now running the job.

Each test runs on SQLite and on PostgreSQL; "replicas" are separate :class:`Store` objects on one
database, each with its own name (and, on PostgreSQL, its own connection pool)."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict

from app.store import NewDelivery, Store
from app.store import deliveries as delivery_sql
from app.store import notify as notify_sql
from app.store.deliveries import JobOutcome
from app.store.migrations import MIGRATIONS


def _delivery(n: int, key: str) -> NewDelivery:
    return NewDelivery(f"d-{n}", "pull_request", "synchronize", key, 1, "acme/warehouse", f'{{"n": {n}}}', 100.0 + n)


async def test_replicas_claiming_at_once_run_each_job_once_and_each_pull_requests_jobs_in_order(
    store: Store, store_target: str
) -> None:
    keys = [f"pr:{k}" for k in range(6)]
    for n in range(90):
        await store.insert_delivery(_delivery(n, keys[n % len(keys)]))
    replicas = [store, Store(store_target, replica="replica-b"), Store(store_target, replica="replica-c")]
    for replica in replicas[1:]:
        await replica.open()
    running: dict[str, str] = {}
    overlaps: list[str] = []
    ran: dict[str, list[int]] = defaultdict(list)
    runs: list[str] = []
    rng = random.Random(5)

    async def worker(replica: Store) -> None:
        outcome: JobOutcome | None = None
        idle = 0
        while idle < 20:
            job, _ = await replica.settle_and_claim(outcome, 200.0)
            outcome = None
            if job is None:
                idle += 1
                await asyncio.sleep(0.005)
                continue
            idle = 0
            if job.ordering_key in running:
                overlaps.append(f"{job.delivery_id} while {running[job.ordering_key]}")
            running[job.ordering_key] = job.delivery_id
            runs.append(job.delivery_id)
            ran[job.ordering_key].append(job.seq)
            assert job.claimed_by == replica.replica
            await asyncio.sleep(rng.random() * 0.004)
            del running[job.ordering_key]
            outcome = JobOutcome(job.id, "done", 201.0)
        if outcome is not None:
            await replica.finish_job(outcome.id, 201.0)

    try:
        await asyncio.gather(*(worker(replica) for replica in replicas for _ in range(3)))
        assert overlaps == []
        assert sorted(runs) == sorted(f"d-{n}" for n in range(90))  # every job once
        assert all(seqs == sorted(seqs) for seqs in ran.values())  # each PR's jobs in arrival order
        assert (await store.count_deliveries())["done"] == 90
        by = await store.read(lambda db: {r[0] for r in db.execute("SELECT DISTINCT claimed_by FROM deliveries").fetchall()})
        assert len(by) >= 2  # the work was shared
    finally:
        for replica in replicas[1:]:
            await replica.close()


async def test_a_live_lease_is_kept_and_an_expired_one_is_taken_over(store: Store, store_target: str) -> None:
    await store.insert_delivery(_delivery(1, "pr:1"))
    await store.insert_delivery(_delivery(2, "pr:2"))
    other = Store(store_target, replica="other", lease_seconds=30.0)
    await other.open()
    try:
        alive = await other.claim_job(now=1000.0)  # lease until 1030
        assert alive is not None and alive.lease_until == 1030.0
        assert await other.renew_leases([alive.id], now=1020.0) == []  # lease until 1050
        dead = await store.write(
            lambda db: delivery_sql.claim_next(db, delivery_sql.Claim(1000.0, "died", 1010.0))
        )
        assert dead is not None

        assert await store.take_over_expired(max_attempts=5, now=1040.0) == (1, 0)
        taken = await store.get_delivery(dead.delivery_id)
        assert (taken.status, taken.claimed_by, taken.lease_until) == ("queued", None, None)
        assert "interrupted" in (taken.last_error or "")
        kept = await store.get_delivery(alive.delivery_id)
        assert (kept.status, kept.claimed_by, kept.lease_until) == ("running", "other", 1050.0)
        again = await store.claim_job(now=1041.0)
        assert again is not None and again.delivery_id == dead.delivery_id and again.attempts == 2
    finally:
        await other.close()


async def test_a_replica_that_lost_its_lease_cannot_settle_the_job_its_successor_runs(
    store: Store, store_target: str
) -> None:
    await store.insert_delivery(_delivery(1, "pr:1"))
    await store.insert_delivery(_delivery(2, "pr:1"))
    slow = Store(store_target, replica="slow", lease_seconds=10.0)
    await slow.open()
    try:
        job = await slow.claim_job(now=200.0)
        assert job is not None
        assert await store.take_over_expired(max_attempts=5, now=220.0) == (1, 0)
        successor = await store.claim_job(now=221.0)
        assert successor is not None and successor.id == job.id and successor.claimed_by == store.replica

        assert await slow.renew_leases([job.id], now=222.0) == [job.id]  # it learns it lost the job
        _, _ = await slow.settle_and_claim(JobOutcome(job.id, "done", 223.0), now=223.0)
        row = await store.get_delivery(job.delivery_id)
        assert (row.status, row.claimed_by) == ("running", store.replica)  # untouched
        # ... and the pull request's next job still waits for the successor
        assert await slow.claim_job(now=224.0) is None
        await store.finish_job(job.id, now=225.0)
        assert (await slow.claim_job(now=226.0)).delivery_id == "d-2"
    finally:
        await slow.close()


async def test_replicas_opening_a_new_database_together_apply_each_migration_once(store_target: str) -> None:
    stores = [Store(store_target, replica=f"r{n}") for n in range(3)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        # Each migration is applied by exactly one of them (which one may differ migration by
        # migration: each is its own transaction under the lock), and every one is recorded.
        applied = [name for s in stores for name in s.applied_migrations]
        assert len(applied) == len(set(applied))
        names = await stores[0].read(lambda db: [r[0] for r in db.execute("SELECT name FROM _migrations").fetchall()])
        assert sorted(names) == sorted(applied) == sorted(name for name, _ in MIGRATIONS)
    finally:
        for s in stores:
            await s.close()


async def test_an_outbound_message_is_sent_by_one_replica_and_recovered_only_when_its_sender_is_gone(
    store: Store, store_target: str
) -> None:
    """Slack posts and subscriber webhooks: a replica stopping puts back only its own messages; one
    starting beside others takes a message over only when its sender's lease ran out."""
    messages = [notify_sql.NewOutbound(f"m-{n}", "slack", "asked", f"team:{n}", {"text": n}) for n in range(2)]
    assert await store.write(lambda db: notify_sql.enqueue(db, messages, 100.0)) == 2
    first, _ = await store.write(lambda db: notify_sql.claim_next(db, 100.0, "a"))
    second, _ = await store.write(lambda db: notify_sql.claim_next(db, 100.0, "b"))
    assert first is not None and second is not None and first.id != second.id
    assert await store.write(lambda db: notify_sql.claim_next(db, 100.0, "c")) == (None, None)

    assert await store.write(lambda db: notify_sql.recover_running(db, 101.0, replica="a")) == 1
    assert (await store.read(lambda db: notify_sql.get_outbound(db, second.id))).status == "running"
    soon = 100.0 + notify_sql.OUTBOUND_LEASE_SECONDS - 1
    assert await store.write(lambda db: notify_sql.recover_running(db, soon, expired_only=True)) == 0
    late = 100.0 + notify_sql.OUTBOUND_LEASE_SECONDS + 1
    assert await store.write(lambda db: notify_sql.recover_running(db, late, expired_only=True)) == 1
    statuses = await store.read(lambda db: [notify_sql.get_outbound(db, m.id).status for m in (first, second)])
    assert statuses == ["queued", "queued"]


async def test_a_job_an_older_replica_claimed_without_a_lease_is_left_to_it_for_an_attempts_length(
    store: Store,
) -> None:
    """During an upgrade the previous version claims jobs without writing a lease."""
    await store.insert_delivery(_delivery(1, "pr:1"))
    await store.write(lambda db: db.execute(
        "UPDATE deliveries SET status = 'running', attempts = 1, started_at = 1000.0 WHERE delivery_id = 'd-1'"
    ))
    legacy = delivery_sql.LEGACY_LEASE_SECONDS
    assert await store.take_over_expired(max_attempts=5, now=1000.0 + legacy - 1) == (0, 0)
    assert await store.take_over_expired(max_attempts=5, now=1000.0 + legacy + 1) == (1, 0)
