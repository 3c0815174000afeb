"""The durable job queue: stored webhook deliveries are the jobs, run by N asyncio workers.

Ordering: every delivery has an ordering key (:func:`app.webhooks.ordering_key`: the pull request,
the repository or the installation). Jobs with the same key run one at a time in arrival order
(a job waiting for a retry holds back the later jobs of its key); different keys run in parallel.

Failures:
- :class:`~app.errors.TransientError`, :class:`asyncio.TimeoutError` (including an attempt running
  past ``settings.job_timeout``) and :class:`aiohttp.ClientError` are retried up to
  ``settings.max_attempts`` attempts, with exponential back-off and jitter; a ``retry_after`` on the
  error (GitHub's ``retry-after`` / ``x-ratelimit-reset``) wins when it is longer.
- :class:`~app.errors.PermanentError` fails the job at once: retrying cannot help.
- :class:`~app.errors.QuarantinedError` (an analysis that ended its worker process twice) sets the
  job aside as ``quarantined``: never retried, listed by ``tessera deliveries``, replayable.
- Any other exception is a bug or a surprise. It is retried too (a surprise may be a race), but
  only up to ``RetryPolicy.unexpected_attempts`` (3) attempts, then the job fails with the
  exception's type, message and the tail of its traceback.
A failed job keeps its payload and error; ``tessera deliveries --replay ID`` queues it again.

Delivery semantics: at least once. A job is marked ``running`` (and its attempt counted) before
its handlers run and ``done`` after they return (in the same write that claims the worker's next job,
right away). While it runs, its replica renews the job's lease every third of
``Store.lease_seconds``. If the process dies in between, the job is queued again: on SQLite (one
process per file) at the next start; on PostgreSQL by any replica, once its lease has run out
(:meth:`JobQueue._keep_leases`). So its handlers may run a second time; handlers
must therefore be idempotent (check state before acting, upsert rather than insert, find the
comment by its marker rather than always creating one). With idempotent handlers every side
effect happens exactly once. A replica that stalled past its lease (its job taken over) is
fenced: handlers call :meth:`JobContext.fence` before each side effect, which raises
:class:`~app.errors.LeaseLost` once another claim holds the job; the job ends there with no
outcome recorded. A job whose attempts were all used up by crashes is failed instead
of being retried forever.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import aiohttp
import orjson
from gidgethub.routing import Router
from gidgethub.sansio import Event

from app.config import Settings
from app.errors import LeaseLost, PermanentError, QuarantinedError, TransientError
from app.github import GitHubApp
from app.metrics import REGISTRY
from app.store import Delivery, JobOutcome, Store, history_cache
from app.store import deliveries as delivery_sql
from app.store.db import Database

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (TransientError, asyncio.TimeoutError, aiohttp.ClientError)
PRUNE_EVERY_SECONDS = 6 * 3600
IDLE_POLL_SECONDS = 1.0
"""How often an idle worker looks at the store anyway (deliveries replayed from another process)."""

JOBS_FINISHED = REGISTRY.counter("tessera_jobs_total", "Jobs that ended, by event and outcome (done, failed).")
JOBS_RETRIED = REGISTRY.counter("tessera_job_retries_total", "Job attempts that failed and were scheduled again.")
JOBS_FAILED = REGISTRY.counter("tessera_jobs_failed_total", "Jobs marked failed after their last attempt.")
JOBS_QUARANTINED = REGISTRY.counter(
    "tessera_jobs_quarantined_total", "Jobs set aside because their analysis ended its worker process twice."
)
JOB_DURATION = REGISTRY.histogram("tessera_job_duration_seconds", "Time one job attempt ran, by event.")
JOB_LATENCY = REGISTRY.histogram(
    "tessera_job_latency_seconds", "From delivery received to job done or failed, by event."
)
JOBS_RUNNING = REGISTRY.gauge("tessera_jobs_running", "Jobs running now.")


class Clock(Protocol):
    """Wall time and waiting, injectable so tests can run back-off schedules instantly."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class JobContext:
    """What a handler gets beside the event: ``await router.dispatch(event, ctx)``. Handlers take
    ``(event: Event, ctx: JobContext)`` and reach GitHub through
    ``await ctx.github.for_installation(id)`` (an :class:`app.github.InstallationClient`)."""

    store: Store
    settings: Settings
    github: GitHubApp | None
    """The GitHub App client (:class:`app.github.GitHubApp`); None when not configured or in tests."""
    delivery_id: str
    attempt: int
    clock: Clock
    job_id: int | None = None
    """The job's row, which fences its side effects (None: work a page or the API started)."""

    async def fence(self) -> None:
        """Raise :class:`~app.errors.LeaseLost` when this replica no longer runs this attempt of
        the job (its lease ran out while it stalled, and another replica took the job over).
        Called before each side effect, so a stalled replica's late writes never happen twice."""
        if self.job_id is None:
            return
        job_id, replica, attempt = self.job_id, self.store.replica, self.attempt
        if not await self.store.read(lambda db: delivery_sql.holds(db, job_id, replica, attempt)):
            raise self._lost()

    async def fenced_write(self, fn: Callable[[Database], T]) -> T:
        """``store.write(fn)`` in the same transaction as the lease check of :meth:`fence`: a
        takeover cannot land between the check and the writes, and a replica that lost the job
        writes nothing (:class:`~app.errors.LeaseLost`, the transaction rolled back)."""
        if self.job_id is None:
            return await self.store.write(fn)
        job_id, replica, attempt = self.job_id, self.store.replica, self.attempt

        def fenced(db: Database) -> T:
            if not delivery_sql.holds(db, job_id, replica, attempt, lock=True):
                raise self._lost()
            return fn(db)

        return await self.store.write(fenced)

    def _lost(self) -> LeaseLost:
        return LeaseLost(
            f"delivery {self.delivery_id}: attempt {self.attempt} lost its lease to another replica; stopped before writing"
        )


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, and how long to wait between them."""

    max_attempts: int = 5
    unexpected_attempts: int = 3
    base_delay: float = 2.0
    max_delay: float = 600.0

    def delay(self, attempt: int, retry_after: float | None, rng: Callable[[], float] = random.random) -> float:
        """Back-off before the next attempt: base·2^(attempt-1), capped, with jitter in [50%, 100%];
        ``retry_after`` (what GitHub asked for) wins when longer."""
        backoff = min(self.max_delay, self.base_delay * 2 ** max(attempt - 1, 0))
        jittered = backoff * (0.5 + 0.5 * rng())
        if retry_after is not None and retry_after > jittered:
            return float(retry_after)
        return jittered

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            max_attempts=settings.max_attempts,
            unexpected_attempts=min(3, settings.max_attempts),
            base_delay=settings.retry_base_delay,
        )


class JobQueue:
    """Runs stored deliveries through the router with ``workers`` concurrent workers."""

    def __init__(
        self,
        store: Store,
        router: Router,
        settings: Settings,
        *,
        github: GitHubApp | None = None,
        clock: Clock | None = None,
        workers: int | None = None,
        policy: RetryPolicy | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.router = router
        self.settings = settings
        self.github = github
        self.clock: Clock = clock or SystemClock()
        self.workers = workers if workers is not None else settings.workers
        self.policy = policy or RetryPolicy.from_settings(settings)
        self._rng = rng
        self._tasks: list[asyncio.Task[None]] = []
        self._idle_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._missed_notify = False
        self._running_jobs: dict[int, Delivery] = {}
        self._pruner: asyncio.Task[None] | None = None
        self._leases: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """True while every worker is alive (``/readyz``)."""
        return bool(self._tasks) and all(not t.done() for t in self._tasks)

    @property
    def idle_workers(self) -> int:
        """Workers waiting for work now."""
        return sum(1 for waiter in self._idle_waiters if not waiter.done())

    async def start(self) -> None:
        """Re-queue jobs a crash left running, then start the workers."""
        if self._tasks:
            return
        requeued, failed = await self.store.recover_interrupted(self.policy.max_attempts, self.clock.now())
        if requeued or failed:
            log.warning("recovered jobs interrupted by a stop: %d queued again, %d out of attempts", requeued, failed)
        self._idle_waiters.clear()
        self._tasks = [asyncio.create_task(self._worker(i), name=f"tessera-worker-{i}") for i in range(self.workers)]
        self._pruner = asyncio.create_task(self._prune_periodically(), name="tessera-prune")
        self._leases = asyncio.create_task(self._keep_leases(), name="tessera-leases")
        self.notify()

    async def stop(self) -> None:
        """Stop the workers; jobs they were running go back to the queue without using an attempt."""
        tasks, self._tasks = self._tasks, []
        for periodic in (self._pruner, self._leases):
            if periodic is not None:
                tasks.append(periodic)
        self._pruner = self._leases = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        interrupted = list(self._running_jobs)
        self._running_jobs.clear()
        if interrupted and self.store.is_open:
            await self.store.requeue_jobs(interrupted, self.clock.now())
        JOBS_RUNNING.set(0)

    def notify(self) -> None:
        """Wake one idle worker: a delivery was stored or a key became free.

        One, not all: each wake-up costs a claim on the single writer, and at hundreds of
        deliveries a second waking every worker for every delivery would triple the writes. A busy
        worker claims again as soon as it finishes, so it needs no wake-up; a notification that
        finds no idle worker is remembered, so a worker about to go idle looks again first."""
        while self._idle_waiters:
            waiter = self._idle_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._missed_notify = True

    # -- workers -----------------------------------------------------------------------------

    async def _worker(self, number: int) -> None:
        outcome: JobOutcome | None = None  # the last job's end, recorded with the next claim
        while True:
            try:
                job, due_at = await self._claim(outcome)
            except asyncio.CancelledError:
                raise
            except Exception:  # the store failed (closed, disk full): keep the worker alive, try again
                log.exception("worker %d: store error; the last outcome is written with the next claim", number)
                await self._idle(None)
                continue
            if outcome is not None:
                self._running_jobs.pop(outcome.id, None)
                outcome = None
            if job is None:
                await self._idle(due_at)
                continue
            # No notify() after a job: this worker claims again at once, and the oldest job that
            # its finished job was holding back is the one it will get.
            outcome = await self._run(job)

    async def _prune_periodically(self) -> None:
        """Keep the tables that only grow bounded: forget done deliveries older than ``keep_days``,
        and the oldest stored history answers beyond their bound."""
        while True:
            try:
                cutoff = self.clock.now() - self.settings.keep_days * 86400
                pruned = await self.store.prune_deliveries(cutoff)
                if pruned:
                    log.info("pruned %d deliveries done more than %g days ago", pruned, self.settings.keep_days)
                dropped = await self.store.write(history_cache.trim)
                if dropped:
                    log.info("dropped the %d oldest stored history answers", dropped)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pruning old deliveries failed; trying again later")
            await asyncio.sleep(PRUNE_EVERY_SECONDS)

    async def _keep_leases(self) -> None:
        """Every third of a lease: renew the leases of the jobs running here, and queue again the
        jobs of replicas whose leases ran out (a replica that died mid-job), waking a worker for them."""
        interval = max(self.store.lease_seconds / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                now = self.clock.now()
                lost = await self.store.renew_leases(list(self._running_jobs), now)
                for id in lost:
                    job = self._running_jobs.get(id)
                    if job is not None:
                        log.warning("delivery %s: lease lost (another replica took the job over)", job.delivery_id)
                requeued, failed = await self.store.take_over_expired(self.policy.max_attempts, now)
                if requeued or failed:
                    log.warning("jobs of a stopped replica: %d queued again, %d out of attempts", requeued, failed)
                    self.notify()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("renewing job leases failed; trying again")

    async def _claim(self, outcome: JobOutcome | None) -> tuple[Delivery | None, float | None]:
        """Record ``outcome`` and claim the next job in one write. If stop() cancels us meanwhile,
        the write still lands, so keep the books straight for stop(): the settled job is no longer
        ours, and a newly claimed one must be put back rather than left ``running``."""
        claim = asyncio.ensure_future(self.store.settle_and_claim(outcome, self.clock.now()))
        try:
            return await asyncio.shield(claim)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                job, _ = await claim
                if outcome is not None:
                    self._running_jobs.pop(outcome.id, None)
                if job is not None:
                    self._running_jobs[job.id] = job
            raise

    async def _idle(self, due_at: float | None) -> None:
        """Wait for a notification, or until the next retry is due, or the idle poll."""
        if self._missed_notify:
            self._missed_notify = False
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle_waiters.append(waiter)
        waits: list[asyncio.Future[Any]] = [waiter]
        if due_at is not None:
            waits.append(asyncio.ensure_future(self.clock.sleep(max(0.0, due_at - self.clock.now()))))
        try:
            await asyncio.wait(waits, timeout=IDLE_POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in waits:
                future.cancel()

    async def _run(self, job: Delivery) -> JobOutcome:
        """Run one attempt; the outcome is returned for the worker to record with its next claim."""
        self._running_jobs[job.id] = job
        JOBS_RUNNING.inc()
        started = time.monotonic()
        try:
            result, error, retry_after = await self._attempt(job)
        finally:
            JOBS_RUNNING.dec()
        JOB_DURATION.observe(time.monotonic() - started, event=job.event)
        now = self.clock.now()
        if result == "done":
            outcome = JobOutcome(job.id, "done", now)
        elif result == "retry":
            delay = self.policy.delay(job.attempts, retry_after, self._rng)
            JOBS_RETRIED.inc(event=job.event)
            log.warning("delivery %s attempt %d failed, retrying in %.1fs: %s", job.delivery_id, job.attempts, delay, error)
            return JobOutcome(job.id, "queued", now, error=error, run_after=now + delay)
        elif result == "lost":
            log.warning("delivery %s: %s", job.delivery_id, error)
            outcome = JobOutcome(job.id, "lost", now)
        elif result == "quarantined":
            JOBS_QUARANTINED.inc(event=job.event)
            log.error("delivery %s quarantined: %s", job.delivery_id, error)
            outcome = JobOutcome(job.id, "quarantined", now, error=error)
        else:
            JOBS_FAILED.inc(event=job.event)
            log.error("delivery %s failed after %d attempt(s): %s", job.delivery_id, job.attempts, error)
            outcome = JobOutcome(job.id, "failed", now, error=error)
        JOBS_FINISHED.inc(event=job.event, outcome=result)
        JOB_LATENCY.observe(max(0.0, now - job.received_at), event=job.event)
        return outcome

    async def _attempt(self, job: Delivery) -> tuple[str, str, float | None]:
        """Run the handlers once: ("done" | "retry" | "failed" | "quarantined" | "lost", error text, retry_after)."""
        try:
            data = orjson.loads(job.payload_text() or "")
        except ValueError as exc:
            return "failed", f"PermanentError: stored payload is not JSON: {exc}", None
        event = Event(data, event=job.event, delivery_id=job.delivery_id)
        ctx = JobContext(
            store=self.store,
            settings=self.settings,
            github=self.github,
            delivery_id=job.delivery_id,
            attempt=job.attempts,
            clock=self.clock,
            job_id=job.id,
        )
        try:
            async with asyncio.timeout(self.settings.job_timeout):
                await self.router.dispatch(event, ctx)
        except asyncio.CancelledError:
            raise
        except LeaseLost as exc:
            return "lost", _describe(exc), None
        except QuarantinedError as exc:
            return "quarantined", _describe(exc), None
        except PermanentError as exc:
            return "failed", _describe(exc), None
        except TRANSIENT_ERRORS as exc:
            if job.attempts < self.policy.max_attempts:
                return "retry", _describe(exc), getattr(exc, "retry_after", None)
            return "failed", f"{_describe(exc)} (gave up after {job.attempts} attempts)", None
        except Exception as exc:
            log.exception("delivery %s: unexpected error in a handler", job.delivery_id)
            text = _describe(exc, with_traceback=True)
            if job.attempts < min(self.policy.unexpected_attempts, self.policy.max_attempts):
                return "retry", text, None
            return "failed", f"{text} (gave up after {job.attempts} attempts)", None
        return "done", "", None


def _describe(exc: BaseException, *, with_traceback: bool = False) -> str:
    if isinstance(exc, asyncio.TimeoutError) and not str(exc):
        text = "TimeoutError: the job (or a call it made) timed out"
    else:
        text = f"{type(exc).__name__}: {exc}"
    if with_traceback:
        frames = traceback.format_tb(exc.__traceback__)[-3:]
        text += "\n" + "".join(frames).rstrip()
    return text[:4000]
