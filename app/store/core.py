"""The store: one SQLite file (WAL), one writer thread with group commit, readers off the event loop.

Why this shape: SQLite allows one writer at a time, and a commit (an fsync) costs far more than
the rows in it. So every write in the process goes through one thread that owns the only write
connection. It takes all the writes that queued up while it was busy, runs them in one
transaction (each inside its own savepoint, so one failing write does not undo the others),
commits once, and only then answers each caller: a caller's ``await`` returns when its change is
durable. Webhook deliveries arriving together become one multi-row ``INSERT``; their payloads are
compressed first on a thread of their own, which hands them to the writer. Reads run on a small
thread pool, each thread with its own connection (WAL lets them read while the writer writes).
Durability: ``synchronous=FULL`` by default (every commit fsynced); ``NORMAL`` is an option.

Writes from other modules, e.g. ``await store.write(lambda db: registry.create_team(db, slug, name, None))``:
the function runs in a transaction shared with the other writes of its batch, inside its own
savepoint; if it raises, only its own changes are rolled back and the exception reaches its
caller. Its return value comes back from the ``await``; return plain values, not cursors.

The event loop never waits on SQLite; callers ``await store.write(fn)`` / ``await store.read(fn)``
with a plain function ``fn(db: Database)`` (:mod:`app.store.db`: ``execute``, ``query``, ``atomic``;
not sqlite-utils' table API, which PostgreSQL has not). Keep write functions short and free of
I/O other than the database: they hold the single writer.

One process per database file: the queue's crash recovery assumes no other process runs jobs.
Operator tools (``tessera deliveries``) may open the same file from another process; SQLite's
locking (with a busy time-out) keeps that safe.

PostgreSQL (``Store("postgresql://…")``, from ``TESSERA_DATABASE_URL``): the same store functions
run on a pool of connections, see :mod:`app.store.postgres`; several replicas share the database,
and the queue's jobs carry a lease (:mod:`app.store.deliveries`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import queue
import socket
import sqlite3
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from psycopg import errors as pg_errors

from app.store import deliveries as delivery_sql
from app.store.db import POSTGRESQL, SQLITE, Database, SqliteDatabase, connect_sqlite, is_postgresql_url
from app.store.deliveries import Delivery, JobOutcome, NewDelivery
from app.store.migrations import MIGRATIONS, Migration, apply_migrations
from app.store.postgres import PostgresEngine

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BATCH = 512
"""Most writes committed together; bounds how long one commit holds the writer."""
BUSY_TIMEOUT_MS = 10_000
LEASE_SECONDS = 60.0
"""How long a claimed job stays a replica's without renewal; the queue renews it every third of that."""


@dataclass
class _Write:
    """A generic write: ``fn(db)`` inside a savepoint of the batch's transaction."""

    fn: Callable[[SqliteDatabase], Any]
    future: asyncio.Future[Any]
    savepoint: bool = True


@dataclass
class _Insert:
    """A delivery to insert; batched with its neighbours into one multi-row INSERT."""

    delivery: NewDelivery
    encoded: bytes
    future: asyncio.Future[Any]


class _Stop:
    pass


class StoreFull(sqlite3.OperationalError):
    """The disk (or the database's size limit) is full: the write was not kept. Callers answer
    "try again later" (503 with ``Retry-After``), never a bare 500."""


FULL_PROBE_BYTES = 64 * 1024
"""What a space probe writes (and rolls back): about one compressed webhook delivery."""


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk or the database is full (SQLITE_FULL, or ENOSPC)."""
    if isinstance(exc, StoreFull):
        return True
    if isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return True
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    if isinstance(exc, pg_errors.DiskFull):
        return True
    return isinstance(exc, sqlite3.OperationalError) and "database or disk is full" in str(exc)


class _ProbeDone(Exception):
    """Rolls back the space probe's savepoint once its write went through."""


def connect(path: str, *, synchronous: str = "FULL") -> SqliteDatabase:
    """A SQLite connection with the settings every Tessera connection needs (WAL, busy time-out)."""
    return connect_sqlite(path, synchronous=synchronous, busy_timeout_ms=BUSY_TIMEOUT_MS)


def default_replica_name() -> str:
    """Who claims jobs in this process: host and pid (what an operator recognises in ``claimed_by``),
    plus a few random characters so a restarted process with a reused pid is someone else."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Store:
    """The process's gateway to the database. Open once, share everywhere, close at shutdown.

    ``target`` is a SQLite file's path, or a ``postgresql://`` URL."""

    def __init__(
        self,
        target: str | Path,
        *,
        readers: int = 2,
        synchronous: str = "FULL",
        migrations: list[tuple[str, Migration]] | None = None,
        replica: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        pool_size: int = 8,
    ) -> None:
        path = str(target)
        self.replica = replica or default_replica_name()
        """This process's name in ``deliveries.claimed_by``."""
        self.lease_seconds = lease_seconds
        self._pg: PostgresEngine | None = None
        self.dialect = SQLITE
        if is_postgresql_url(path):
            self.dialect = POSTGRESQL
            self._pg = PostgresEngine(path, size=pool_size)
        elif path == ":memory:" or path.startswith("file::memory:"):
            raise ValueError("the store needs a file: readers and the writer use separate connections")
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        self.path = path
        self._synchronous = synchronous.upper()
        self._readers = readers
        self._migrations = MIGRATIONS if migrations is None else migrations
        self._queue: queue.SimpleQueue[_Write | _Insert | _Stop] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._compress_queue: queue.SimpleQueue[_Insert | _Stop] = queue.SimpleQueue()
        self._compressor: threading.Thread | None = None
        self._local = threading.local()
        self._reader_conns: list[SqliteDatabase] = []
        self._reader_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open = False
        self._full = False
        self.applied_migrations: list[str] = []
        self._pg_inserts: list[tuple[NewDelivery, asyncio.Future[bool]]] = []
        self._pg_inserting = False

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        if self._pg is not None:
            return self._open
        return self._open and self._thread is not None and self._thread.is_alive()

    @property
    def shared(self) -> bool:
        """Whether other replicas may use this database (PostgreSQL) or this process has it alone."""
        return self._pg is not None

    async def open(self) -> None:
        """Start the writer (which applies pending migrations) and the reader pool; on PostgreSQL,
        open the pool and apply pending migrations under the migration lock."""
        if self._open:
            return
        if self._pg is not None:
            engine = self._pg
            await asyncio.to_thread(engine.open)
            try:
                self.applied_migrations = await asyncio.to_thread(
                    engine.with_migration_lock, lambda db: apply_migrations(db, self._migrations)
                )
            except BaseException:
                await asyncio.to_thread(engine.close)
                raise
            self._open = True
            return
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[list[str]] = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._writer_main, args=(ready,), name="tessera-store-writer", daemon=True
        )
        self._thread.start()
        self.applied_migrations = await ready
        self._pool = ThreadPoolExecutor(max_workers=self._readers, thread_name_prefix="tessera-store-read")
        self._compressor = threading.Thread(target=self._compressor_main, name="tessera-store-compress", daemon=True)
        self._compressor.start()
        self._open = True

    async def close(self) -> None:
        """Finish queued writes, then stop the writer and close every connection."""
        if not self._open:
            return
        self._open = False
        if self._pg is not None:
            await asyncio.to_thread(self._pg.close)
            return
        # The compressor passes the stop on to the writer after the inserts it still holds.
        self._compress_queue.put(_Stop())
        for thread in (self._compressor, self._thread):
            if thread is not None:
                await asyncio.to_thread(thread.join)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        with self._reader_lock:
            for db in self._reader_conns:
                db.close()
            self._reader_conns.clear()

    @property
    def is_full(self) -> bool:
        """The last write failed for want of space, and none has succeeded since."""
        return self._full

    async def check_space(self) -> bool:
        """Whether a delivery-sized write fits now (written, then rolled back); clears
        :attr:`is_full` when it does, so readiness comes back without waiting for real traffic."""

        if self._pg is not None:  # PostgreSQL manages its own space: a trivial write says it takes writes
            try:
                await self.write(lambda db: db.execute("SELECT 1").fetchone())
            except StoreFull:
                return False
            return True

        def probe(db: Database) -> None:
            with db.atomic():
                db.execute("CREATE TABLE tessera_space_probe (content BLOB)")
                db.execute("INSERT INTO tessera_space_probe (content) VALUES (zeroblob(?))", (FULL_PROBE_BYTES,))
                raise _ProbeDone  # rolls the table back: nothing of the probe is kept

        try:
            await self.write(probe)
        except _ProbeDone:
            self._full = False
            return True
        except StoreFull:
            return False
        return True

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- generic API -----------------------------------------------------------------------

    async def write(self, fn: Callable[[Database], T]) -> T:
        """Run ``fn(db)`` on the writer connection in a transaction; return once it is committed."""
        if self._pg is not None:
            return await self._run_postgresql(fn)
        future = self._submit_check()
        self._queue.put(_Write(fn, future))
        return await future

    async def _write_statement(self, fn: Callable[[Database], T]) -> T:
        """Like :meth:`write` without the savepoint, for the queue's own writes whose only change is
        one statement (atomic by itself): fewer round trips through SQLite on the hot path."""
        if self._pg is not None:
            return await self._run_postgresql(fn)
        future = self._submit_check()
        self._queue.put(_Write(fn, future, savepoint=False))
        return await future

    async def read(self, fn: Callable[[Database], T]) -> T:
        """Run ``fn(db)`` on a reader connection (a consistent snapshot of committed data)."""
        if self._pg is not None:
            return await self._run_postgresql(fn, snapshot=True)
        if not self._open or self._pool is None:
            raise RuntimeError("the store is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._read_in_thread, fn)

    # -- deliveries and jobs (the queue's table) ---------------------------------------------

    async def insert_delivery(self, delivery: NewDelivery) -> bool:
        """Persist a webhook delivery as a queued job; False when its delivery id was seen before."""
        if self._pg is not None:
            future: asyncio.Future[bool] = self._submit_check()
            self._pg_inserts.append((delivery, future))
            if not self._pg_inserting:
                self._pg_inserting = True
                asyncio.create_task(self._insert_postgresql())
            return await future
        future = self._submit_check()
        # Compressed on its own thread, which hands the row to the writer: zlib releases the GIL, so
        # it runs beside the event loop; in the single writer each zlib call could wait a whole GIL
        # switch interval to resume, and on the loop it would cost ~150 µs per 25 KB delivery.
        self._compress_queue.put(_Insert(delivery, b"", future))
        return bool(await future)

    def _claim(self, now: float) -> delivery_sql.Claim:
        return delivery_sql.Claim(now, self.replica, now + self.lease_seconds)

    async def claim_job(self, now: float) -> Delivery | None:
        """Mark the next runnable job running (one per ordering key, in arrival order) and return it."""
        claim = self._claim(now)
        return await self._write_statement(lambda db: delivery_sql.claim_next(db, claim))

    async def claim_job_or_next_due(self, now: float) -> tuple[Delivery | None, float | None]:
        """Like :meth:`claim_job`; when nothing is runnable, also say when the next retry is due
        (one trip to the writer instead of two for an idle worker)."""
        claim = self._claim(now)
        return await self._write_statement(lambda db: delivery_sql.claim_next_or_due(db, claim))

    async def settle_and_claim(
        self, outcome: JobOutcome | None, now: float
    ) -> tuple[Delivery | None, float | None]:
        """Record how the worker's last job ended (if any) and claim its next, in one write."""
        claim = self._claim(now)
        return await self._write_statement(lambda db: delivery_sql.settle_and_claim(db, outcome, claim))

    async def finish_job(self, id: int, now: float) -> None:
        await self._write_statement(lambda db: delivery_sql.mark_done(db, id, now, self.replica))

    async def retry_job(self, id: int, run_after: float, error: str) -> None:
        await self._write_statement(lambda db: delivery_sql.mark_retry(db, id, run_after, error, self.replica))

    async def fail_job(self, id: int, error: str, now: float) -> None:
        await self._write_statement(lambda db: delivery_sql.mark_failed(db, id, error, now, self.replica))

    async def requeue_jobs(self, ids: Sequence[int], now: float) -> None:
        """Put jobs interrupted by a graceful shutdown back in the queue, not counting the attempt."""
        await self.write(lambda db: delivery_sql.requeue(db, ids, now, self.replica))

    async def renew_leases(self, ids: Sequence[int], now: float) -> list[int]:
        """Extend this replica's lease on jobs it is running; return the ids it no longer holds
        (another replica took them over after the lease ran out)."""
        until = now + self.lease_seconds
        return await self._write_statement(lambda db: delivery_sql.renew_leases(db, ids, self.replica, until))

    async def take_over_expired(self, max_attempts: int, now: float) -> tuple[int, int]:
        """Jobs whose lease ran out before ``now`` (their replica died or hung): queue them again, or
        fail those out of attempts; run every so often by each replica's queue."""
        return await self.write(lambda db: delivery_sql.recover_running(db, max_attempts, now, every=False))

    async def recover_interrupted(self, max_attempts: int, now: float) -> tuple[int, int]:
        """Jobs whose replica stopped while they ran: queue them again, or fail those out of
        attempts. On PostgreSQL only jobs whose lease ran out (their replica is gone; others are
        running elsewhere); on SQLite, one process per file, every job left running at start."""
        every = not self.shared
        return await self.write(lambda db: delivery_sql.recover_running(db, max_attempts, now, every=every))

    async def next_due_at(self) -> float | None:
        return await self.read(delivery_sql.next_due_at)

    async def get_delivery(self, delivery_id: str, *, with_payload: bool = False) -> Delivery | None:
        return await self.read(lambda db: delivery_sql.get(db, delivery_id, with_payload=with_payload))

    async def list_deliveries(self, *, status: str | None = None, limit: int = 50) -> list[Delivery]:
        return await self.read(lambda db: delivery_sql.list_recent(db, status=status, limit=limit))

    async def replay_delivery(self, delivery_id: str, now: float) -> bool:
        """Queue a delivery again (fresh attempts, behind what is queued now); False if unknown."""
        return await self.write(lambda db: delivery_sql.replay(db, delivery_id, now))

    async def prune_deliveries(self, finished_before: float) -> int:
        """Forget deliveries done before then (their ids no longer deduplicate); return how many."""
        return await self.write(lambda db: delivery_sql.prune(db, finished_before))

    async def count_deliveries(self) -> dict[str, int]:
        """Deliveries per status (every status present, zero when none)."""
        return await self.read(delivery_sql.count_by_status)

    # -- PostgreSQL ----------------------------------------------------------------------------

    async def _run_postgresql(self, fn: Callable[[Database], T], *, snapshot: bool = False) -> T:
        assert self._pg is not None
        if not self._open:
            raise RuntimeError("the store is not open")
        try:
            result = await self._pg.run(fn, snapshot=snapshot)
        except pg_errors.DiskFull as exc:
            self._full = True
            raise StoreFull(f"the database cannot grow: {exc}") from exc
        self._full = False
        return result

    async def _insert_postgresql(self) -> None:
        """Store the deliveries waiting, together: one multi-row INSERT and one commit for those that
        arrived while the last batch was being written (no wait added when one arrives alone). What
        SQLite's writer does with its queue, for the same reason: a commit costs more than its rows."""
        try:
            while self._pg_inserts:
                batch, self._pg_inserts = self._pg_inserts[:MAX_BATCH], self._pg_inserts[MAX_BATCH:]
                deliveries = [delivery for delivery, _ in batch]
                try:
                    encoded = await asyncio.to_thread(_encode_all, deliveries)
                    inserted = await self._run_postgresql(
                        lambda db, rows=deliveries, payloads=encoded: delivery_sql.insert_many(db, rows, payloads)
                    )
                except Exception as exc:  # nothing of the batch is stored: every caller hears why
                    _resolve_all([(future, False, exc) for _, future in batch])
                    continue
                outcomes: list[tuple[asyncio.Future[Any], bool, Any]] = []
                for delivery, future in batch:
                    outcomes.append((future, True, delivery.delivery_id in inserted))
                    inserted.discard(delivery.delivery_id)  # a repeat in the same batch is a duplicate
                _resolve_all(outcomes)
        finally:
            self._pg_inserting = False

    # -- the writer thread -----------------------------------------------------------------

    def _submit_check(self) -> asyncio.Future[Any]:
        if not self._open:
            raise RuntimeError("the store is not open")
        return asyncio.get_running_loop().create_future()

    def _compressor_main(self) -> None:
        while True:
            item = self._compress_queue.get()
            if isinstance(item, _Stop):
                self._queue.put(item)
                return
            try:
                item.encoded = delivery_sql.encode_payload(item.delivery.payload)
            except Exception as exc:  # cannot happen for str payloads; never leave a caller waiting
                _answer([(item.future, False, exc)])
                continue
            self._queue.put(item)

    def _writer_main(self, ready: asyncio.Future[list[str]]) -> None:
        assert self._loop is not None
        loop = self._loop
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            db = connect(self.path, synchronous=self._synchronous)
            applied = apply_migrations(db, self._migrations)
        except BaseException as exc:  # report to open() instead of dying silently
            loop.call_soon_threadsafe(_set_exception, ready, exc)
            return
        loop.call_soon_threadsafe(_set_result, ready, applied)
        try:
            stopping = False
            while not stopping:
                batch: list[_Write | _Insert] = []
                item = self._queue.get()
                while True:
                    if isinstance(item, _Stop):
                        stopping = True
                    else:
                        batch.append(item)
                    if len(batch) >= MAX_BATCH:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                if batch:
                    self._run_batch(db, batch)
        finally:
            db.close()

    def _run_batch(self, db: SqliteDatabase, batch: list[_Write | _Insert]) -> None:
        outcomes: list[tuple[asyncio.Future[Any], bool, Any]] = []
        try:
            with db.atomic():
                for op in batch:
                    if isinstance(op, _Write):
                        try:
                            if op.savepoint:
                                with db.atomic():
                                    outcomes.append((op.future, True, op.fn(db)))
                            else:
                                outcomes.append((op.future, True, op.fn(db)))
                        except Exception as exc:
                            if not db.conn.in_transaction:
                                # SQLite rolled the whole batch back (a full disk does this): what
                                # ran before is gone too, and nothing more may run outside it.
                                raise
                            outcomes.append((op.future, False, exc))
                inserts = [op for op in batch if isinstance(op, _Insert)]
                if inserts:
                    inserted = delivery_sql.insert_many(
                        db, [op.delivery for op in inserts], [op.encoded for op in inserts]
                    )
                    for op in inserts:
                        is_new = op.delivery.delivery_id in inserted
                        inserted.discard(op.delivery.delivery_id)  # a repeat in the same batch is a duplicate
                        outcomes.append((op.future, True, is_new))
        except Exception as exc:  # the commit (or the batch insert) failed: nothing is durable
            if is_disk_full(exc):
                log.error("store write batch of %d failed: %s", len(batch), exc)
            else:
                log.exception("store write batch of %d failed", len(batch))
            outcomes = [(op.future, False, exc) for op in batch]
        full = False
        for index, (future, ok, value) in enumerate(outcomes):
            if not ok and is_disk_full(value):
                full = True
                if not isinstance(value, StoreFull):
                    outcomes[index] = (future, False, StoreFull(f"the database cannot grow: {value}"))
        if full:
            self._full = True
        elif any(ok for _, ok, _ in outcomes):
            self._full = False
        _answer(outcomes)

    # -- reader threads ----------------------------------------------------------------------

    def _read_in_thread(self, fn: Callable[[SqliteDatabase], T]) -> T:
        db: SqliteDatabase | None = getattr(self._local, "db", None)
        if db is None:
            db = connect(self.path, synchronous=self._synchronous)
            self._local.db = db
            with self._reader_lock:
                self._reader_conns.append(db)
        try:
            return fn(db)
        finally:
            if db.conn.in_transaction:  # a reader must never hold a snapshot open between calls
                db.conn.rollback()


def _encode_all(deliveries: Sequence[NewDelivery]) -> list[bytes]:
    return [delivery_sql.encode_payload(d.payload) for d in deliveries]


def _set_result(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _answer(outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    """From a store thread: resolve each caller's future on its own event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
    for loop, answers in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve_all, answers)
        except RuntimeError:  # that loop is closed: nobody is waiting any more
            pass


def _resolve_all(outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in outcomes:
        if future.done():  # the caller gave up (cancelled); the write still happened
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
