"""The durable queue: retries with back-off, failure after the last attempt, ordering, crash recovery."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlite_utils
from gidgethub.routing import Router
from gidgethub.sansio import Event

from app.config import Settings
from app.errors import LeaseLost, PermanentError, TransientError
from app.queue import JobContext, JobQueue, RetryPolicy
from app.store import MIGRATIONS, NewDelivery, Store, history_cache
from app.store import deliveries as delivery_sql
from tests.fixtures_app import WEBHOOK_SECRET, FakeClock, load_webhook, post_delivery, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


def _delivery(delivery_id: str, event: str = "pull_request", key: str = "pr:1#2", at: float = 0.0) -> NewDelivery:
    return NewDelivery(
        delivery_id=delivery_id,
        event=event,
        action="opened",
        ordering_key=key,
        installation_id=1,
        repository="acme/warehouse",
        payload=json.dumps({"action": "opened", "marker": delivery_id}),
        received_at=at,
    )


async def _status(store: Store, delivery_id: str) -> str | None:
    delivery = await store.get_delivery(delivery_id)
    return delivery.status if delivery else None


def _queue(store: Store, settings: Settings, router: Router, clock: FakeClock, workers: int = 1) -> JobQueue:
    return JobQueue(store, router, settings, clock=clock, workers=workers, rng=lambda: 1.0)


# -- back-off policy --------------------------------------------------------------------------


def test_back_off_doubles_per_attempt_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base_delay=2.0, max_delay=10.0)
    assert [policy.delay(a, None, lambda: 1.0) for a in (1, 2, 3, 4, 5)] == [2.0, 4.0, 8.0, 10.0, 10.0]
    assert policy.delay(2, None, lambda: 0.0) == 2.0  # jitter never goes below half the back-off


def test_retry_after_wins_only_when_longer_than_the_back_off() -> None:
    policy = RetryPolicy(base_delay=2.0)
    assert policy.delay(1, 60.0, lambda: 1.0) == 60.0
    assert policy.delay(3, 1.0, lambda: 1.0) == 8.0


# -- workers ----------------------------------------------------------------------------------


async def test_a_job_failing_transiently_twice_then_succeeding_ends_done_after_backing_off(
    store: Store, app_settings: Settings, fake_clock: FakeClock
) -> None:
    attempts: list[tuple[int, float]] = []
    router = Router()

    @router.register("pull_request")
    async def flaky(event: Event, ctx: JobContext) -> None:
        attempts.append((ctx.attempt, ctx.clock.now()))
        if ctx.attempt <= 2:
            raise TransientError("GitHub answered 502")

    queue = _queue(store, app_settings, router, fake_clock)
    await store.insert_delivery(_delivery("d1", at=fake_clock.now()))
    await queue.start()
    await wait_until(lambda: _is(store, "d1", "done"))
    await queue.stop()
    assert [a for a, _ in attempts] == [1, 2, 3]
    gaps = [later - earlier for (_, earlier), (_, later) in zip(attempts, attempts[1:], strict=False)]
    assert gaps == [1.0, 2.0]  # base 1 s, doubled, jitter pinned to its top
    stored = await store.get_delivery("d1")
    assert (stored.attempts, stored.last_error) == (3, None)


async def _is(store: Store, delivery_id: str, status: str) -> bool:
    return await _status(store, delivery_id) == status


async def test_a_retry_after_longer_than_the_back_off_is_honoured(
    store: Store, app_settings: Settings, fake_clock: FakeClock
) -> None:
    seen: list[float] = []
    router = Router()

    @router.register("pull_request")
    async def rate_limited(event: Event, ctx: JobContext) -> None:
        seen.append(ctx.clock.now())
        if ctx.attempt == 1:
            raise TransientError("secondary rate limit", retry_after=120.0)

    queue = _queue(store, app_settings, router, fake_clock)
    await store.insert_delivery(_delivery("d1", at=fake_clock.now()))
    await queue.start()
    await wait_until(lambda: _is(store, "d1", "done"))
    await queue.stop()
    assert seen[1] - seen[0] == 120.0


@pytest.mark.parametrize(
    "error",
    [TransientError("GitHub answered 503"), TimeoutError(), aiohttp.ClientConnectionError("reset")],
    ids=["transient", "timeout", "client-error"],
)
async def test_a_job_still_failing_after_the_last_attempt_is_marked_failed_with_its_error(
    store: Store, app_settings: Settings, fake_clock: FakeClock, error: Exception
) -> None:
    router = Router()

    @router.register("pull_request")
    async def always(event: Event, ctx: JobContext) -> None:
        raise error

    queue = _queue(store, app_settings, router, fake_clock)
    await store.insert_delivery(_delivery("d1"))
    await queue.start()
    await wait_until(lambda: _is(store, "d1", "failed"))
    await queue.stop()
    failed = await store.get_delivery("d1", with_payload=True)
    assert failed.attempts == app_settings.max_attempts == 4
    assert type(error).__name__ in (failed.last_error or "") and "gave up after 4 attempts" in (failed.last_error or "")
    assert json.loads(failed.payload or "")["marker"] == "d1"  # kept for replay, never dropped


async def test_a_permanent_error_fails_the_job_at_once(
    store: Store, app_settings: Settings, fake_clock: FakeClock
) -> None:
    router = Router()

    @router.register("pull_request")
    async def gone(event: Event, ctx: JobContext) -> None:
        raise PermanentError("repository was deleted")

    queue = _queue(store, app_settings, router, fake_clock)
    await store.insert_delivery(_delivery("d1"))
    await queue.start()
    await wait_until(lambda: _is(store, "d1", "failed"))
    await queue.stop()
    failed = await store.get_delivery("d1")
    assert failed.attempts == 1 and failed.last_error == "PermanentError: repository was deleted"


async def test_an_unexpected_exception_is_retried_three_times_then_failed_with_its_traceback(
    store: Store, app_settings: Settings, fake_clock: FakeClock
) -> None:
    router = Router()

    @router.register("pull_request")
    async def buggy(event: Event, ctx: JobContext) -> None:
        raise KeyError("head")

    queue = _queue(store, app_settings.with_overrides(max_attempts=10), router, fake_clock)
    await store.insert_delivery(_delivery("d1"))
    await queue.start()
    await wait_until(lambda: _is(store, "d1", "failed"))
    await queue.stop()
    failed = await store.get_delivery("d1")
    assert failed.attempts == 3
    assert failed.last_error.startswith("KeyError: 'head'") and "in buggy" in failed.last_error


async def test_a_job_exceeding_its_time_limit_counts_as_a_transient_failure(
    store: Store, app_settings: Settings, fake_clock: FakeClock
) -> None:
    calls: list[int] = []
    router = Router()

    @router.register("pull_request")
    async def slow_first(event: Event, ctx: JobContext) -> None:
        calls.append(ctx.attempt)
        if ctx.attempt == 1:
            await asyncio.Event().wait()  # hangs until the job time-out cancels it

    queue = _queue(store, app_settings.with_overrides(job_timeout=0.05), router, fake_clock)
    await store.insert_delivery(_delivery("d1"))
    await queue.start()
    await wait_until(lambda: _is(store, "d1", "done"))
    await queue.stop()
    assert calls == [1, 2]


async def test_deliveries_for_one_pr_run_in_order_while_other_keys_run_in_parallel(
    make_client: Callable[..., Any], store: Store
) -> None:
    log: list[str] = []
    gate = asyncio.Event()
    router = Router()

    @router.register("pull_request")
    async def on_pr(event: Event, ctx: JobContext) -> None:
        log.append(f"start {event.data['action']}")
        if event.data["action"] == "opened":
            await gate.wait()
        log.append(f"end {event.data['action']}")

    @router.register("push")
    async def on_push(event: Event, ctx: JobContext) -> None:
        log.append("push")
        gate.set()  # the PR's first job can only finish once another key has run beside it

    client = await make_client(router=router)
    assert (await post_delivery(client, "pull_request", load_webhook("pull_request", "opened"))).status == 202
    await post_delivery(client, "pull_request", load_webhook("pull_request", "synchronize"))
    await post_delivery(client, "push", load_webhook("push", "push"))
    await wait_until(lambda: "end synchronize" in log)
    assert log.index("end opened") < log.index("start synchronize")
    assert log.index("push") < log.index("end opened")


async def test_stopping_puts_a_running_job_back_without_spending_an_attempt(
    store: Store, app_settings: Settings, fake_clock: FakeClock
) -> None:
    started = asyncio.Event()
    router = Router()

    @router.register("pull_request")
    async def hangs(event: Event, ctx: JobContext) -> None:
        started.set()
        await asyncio.Event().wait()

    queue = _queue(store, app_settings, router, fake_clock)
    await store.insert_delivery(_delivery("d1"))
    await queue.start()
    await asyncio.wait_for(started.wait(), 5)
    await queue.stop()
    job = await store.get_delivery("d1")
    assert (job.status, job.attempts) == ("queued", 0)


async def test_a_job_whose_replica_died_mid_run_is_run_again_once_its_lease_runs_out(
    store: Store, app_settings: Settings, fake_clock: FakeClock
) -> None:
    """SQLite (one process per file) runs it again at start; on PostgreSQL the job may be another
    live replica's, so it is taken over only when its lease has run out."""
    store.lease_seconds = 0.3
    await store.insert_delivery(_delivery("d1"))
    now = fake_clock.now()
    # claimed by a replica that then died: nobody renews its lease
    await store.write(lambda db: delivery_sql.claim_next(db, delivery_sql.Claim(now, "died", now + 0.3)))
    ran: list[int] = []
    router = Router()

    @router.register("pull_request")
    async def record(event: Event, ctx: JobContext) -> None:
        ran.append(ctx.attempt)

    queue = _queue(store, app_settings, router, fake_clock)
    await queue.start()
    fake_clock.advance(1.0)
    await wait_until(lambda: _is(store, "d1", "done"))
    await queue.stop()
    assert ran == [2]


# -- the process killed with SIGKILL while a job runs -------------------------------------------


def _crash_test_tables(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE effects (delivery_id TEXT PRIMARY KEY, head_sha TEXT)")
    db.execute("CREATE TABLE runs (delivery_id TEXT, attempt INTEGER)")


def crash_runner_main(argv: list[str]) -> None:
    """Run in a subprocess: the real app with a handler that hangs on its first attempt."""
    db_path, marker = argv

    async def main() -> None:
        from aiohttp import web

        from app.server import create_app

        router = Router()

        @router.register("pull_request")
        async def publish(event: Event, ctx: JobContext) -> None:
            sha = event.data["pull_request"]["head"]["sha"]
            await ctx.store.write(lambda db: db.execute("INSERT INTO runs VALUES (?, ?)", [ctx.delivery_id, ctx.attempt]))
            # The side effect, idempotent: a second run finds it done.
            await ctx.store.write(
                lambda db: db.execute(
                    "INSERT INTO effects VALUES (?, ?) ON CONFLICT(delivery_id) DO NOTHING", [ctx.delivery_id, sha]
                )
            )
            if ctx.attempt == 1:
                Path(marker).write_text("effect written, not yet marked done")
                await asyncio.Event().wait()

        settings = Settings(webhook_secret=WEBHOOK_SECRET, db_path=db_path, port=0, workers=2)
        store = Store(db_path, migrations=[*MIGRATIONS, ("9000_crash_test", _crash_test_tables)])
        runner = web.AppRunner(create_app(settings, store=store, router=router))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        print(f"listening on http://127.0.0.1:{port}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


async def _start_runner(db_path: Path, marker: Path) -> tuple[asyncio.subprocess.Process, str]:
    code = "import sys; from tests.app.test_queue import crash_runner_main; crash_runner_main(sys.argv[1:])"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, str(db_path), str(marker),
        cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
    assert line.startswith("listening on "), line
    return process, line.split()[-1]


async def test_a_job_killed_mid_run_is_finished_once_after_restart(tmp_path: Path) -> None:
    db_path, marker = tmp_path / "crash.db", tmp_path / "started"
    process, url = await _start_runner(db_path, marker)
    try:
        payload = load_webhook("pull_request", "synchronize")
        body = json.dumps(payload).encode()
        from app.webhooks import sign

        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{url}/webhooks/github",
                data=body,
                headers={
                    "X-GitHub-Event": "pull_request",
                    "X-GitHub-Delivery": "crash-1",
                    "X-Hub-Signature-256": sign(WEBHOOK_SECRET, body),
                },
            ) as response:
                assert response.status == 202
        await wait_until(marker.exists, timeout=15)
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()

    def query(sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(db_path) as conn:
            return conn.execute(sql).fetchall()

    assert query("SELECT status, attempts FROM deliveries") == [("running", 1)]

    process, _ = await _start_runner(db_path, marker)
    try:
        await wait_until(lambda: query("SELECT status FROM deliveries") == [("done",)], timeout=15)
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    assert query("SELECT delivery_id, head_sha FROM effects") == [("crash-1", payload["pull_request"]["head"]["sha"])]
    assert query("SELECT attempt FROM runs ORDER BY attempt") == [(1,), (2,)]
    assert query("SELECT attempts FROM deliveries") == [(2,)]


async def test_idle_workers_do_not_spin_while_a_due_job_waits_behind_a_running_one(
    store: Store, app_settings: Settings, fake_clock: FakeClock
) -> None:
    release = asyncio.Event()
    router = Router()

    @router.register("pull_request")
    async def first_waits(event: Event, ctx: JobContext) -> None:
        if event.data["marker"] == "d1":
            await release.wait()

    claims = 0
    original = store.settle_and_claim

    async def counting(outcome: Any, now: float) -> Any:
        nonlocal claims
        claims += 1
        return await original(outcome, now)

    store.settle_and_claim = counting  # type: ignore[method-assign]
    queue = _queue(store, app_settings, router, fake_clock, workers=3)
    await store.insert_delivery(_delivery("d1"))
    await store.insert_delivery(_delivery("d2"))  # same PR: due now, but must wait for d1
    await queue.start()
    await wait_until(lambda: _is(store, "d1", "running"))
    before = claims
    await asyncio.sleep(0.2)
    assert claims - before <= 3  # idle workers wait for a notification instead of re-claiming
    release.set()
    await wait_until(lambda: _is(store, "d2", "done"))
    await queue.stop()


async def test_a_job_claimed_while_stopping_goes_back_to_the_queue(
    store: Store, app_settings: Settings, fake_clock: FakeClock
) -> None:
    queue = _queue(store, app_settings, Router(), fake_clock)
    await queue.start()
    await wait_until(lambda: queue.idle_workers == 1)
    await store.insert_delivery(_delivery("d1"))  # stored, but the idle worker is not told yet
    claim_sent = asyncio.Event()
    original = store.settle_and_claim

    async def observed_claim(outcome: Any, now: float) -> Any:
        claim = asyncio.ensure_future(original(outcome, now))
        await asyncio.sleep(0)  # the claim is now queued for the writer
        claim_sent.set()
        return await claim

    store.settle_and_claim = observed_claim  # type: ignore[method-assign]
    blocker = asyncio.ensure_future(store.write(lambda db: time.sleep(0.2)))  # holds the writer
    await asyncio.sleep(0)
    queue.notify()
    await asyncio.wait_for(claim_sent.wait(), 5)
    await queue.stop()  # cancels the worker while its claim waits behind the blocker
    await blocker
    job = await store.get_delivery("d1")
    assert (job.status, job.attempts) == ("queued", 0)


async def test_starting_the_queue_prunes_deliveries_done_longer_ago_than_kept(
    store: Store, app_settings: Settings, fake_clock: FakeClock
) -> None:
    await store.insert_delivery(_delivery("old"))
    job = await store.claim_job(fake_clock.now())
    await store.finish_job(job.id, fake_clock.now() - 31 * 86400)
    await store.insert_delivery(_delivery("recent", key="pr:1#3"))
    job = await store.claim_job(fake_clock.now())
    await store.finish_job(job.id, fake_clock.now() - 29 * 86400)
    queue = _queue(store, app_settings, Router(), fake_clock)
    await queue.start()
    await wait_until(lambda: _gone(store, "old"))
    await queue.stop()
    kept = await store.get_delivery("recent")
    assert kept is not None and kept.status == "done"


async def test_starting_the_queue_drops_the_oldest_stored_history_answers_beyond_their_bound(
    store: Store, app_settings: Settings, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history_cache, "MAX_ROWS", 2)
    for n in range(4):
        await store.write(lambda db, n=n: history_cache.put_recent_authors(
            db, 1, f"{n:040d}", {"models/m.sql": (f"@user{n}",)}, now=1000.0 + n))
    queue = _queue(store, app_settings, Router(), fake_clock)
    await queue.start()
    await wait_until(lambda: _history_answers(store, 2))
    await queue.stop()
    kept = await store.read(lambda db: [history_cache.recent_authors(db, 1, f"{n:040d}", ["models/m.sql"]) for n in range(4)])
    assert kept == [{}, {}, {"models/m.sql": ("@user2",)}, {"models/m.sql": ("@user3",)}]


async def _history_answers(store: Store, expected: int) -> bool:
    return await store.read(history_cache.count) == expected


async def _gone(store: Store, delivery_id: str) -> bool:
    return await store.get_delivery(delivery_id) is None


async def test_a_job_that_ended_just_as_the_queue_stops_is_recorded_and_not_run_again(
    store: Store, app_settings: Settings, fake_clock: FakeClock
) -> None:
    ended = asyncio.Event()
    blockers: list[asyncio.Future[Any]] = []
    router = Router()

    @router.register("pull_request")
    async def quick(event: Event, ctx: JobContext) -> None:
        # Hold the writer so that recording this outcome is still on its way when stop() comes.
        blockers.append(asyncio.ensure_future(ctx.store.write(lambda db: time.sleep(0.2))))
        await asyncio.sleep(0)
        ended.set()

    await store.insert_delivery(_delivery("d1"))
    queue = _queue(store, app_settings, router, fake_clock)
    await queue.start()
    await asyncio.wait_for(ended.wait(), 5)
    await asyncio.sleep(0)
    await queue.stop()
    await asyncio.gather(*blockers)
    job = await store.get_delivery("d1")
    assert (job.status, job.attempts) == ("done", 1)


async def test_a_fenced_write_commits_only_while_this_replica_holds_the_job(
    store: Store, app_settings: Settings, fake_clock: FakeClock
) -> None:
    await store.insert_delivery(_delivery("d1"))
    job = await store.claim_job(fake_clock.now())
    ctx = JobContext(store=store, settings=app_settings, github=None, delivery_id="d1", attempt=job.attempts,
                     clock=fake_clock, job_id=job.id)
    await ctx.fenced_write(lambda db: db.execute(
        "INSERT INTO history_cache (repo_id, path, base_sha, authors, fetched_at) VALUES (1, 'held', 'x', '[]', 0)"))
    # another replica takes the job over (its lease ran out while this one stalled)
    await store.write(lambda db: db.execute("UPDATE deliveries SET claimed_by = 'replica-b' WHERE id = ?", (job.id,)))
    with pytest.raises(LeaseLost):
        await ctx.fenced_write(lambda db: db.execute(
            "INSERT INTO history_cache (repo_id, path, base_sha, authors, fetched_at) VALUES (1, 'lost', 'x', '[]', 0)"))
    paths = await store.read(lambda db: [row[0] for row in db.execute("SELECT path FROM history_cache").fetchall()])
    assert paths == ["held"]
