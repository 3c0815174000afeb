"""The store on PostgreSQL: a psycopg 3 connection pool, store functions run on threads.

Why threads and psycopg's sync API rather than its async one: every store function is a plain
``fn(db)`` written once for both engines (SQLite has no async driver worth having), so each call
runs on a thread of a pool as large as the connection pool, with a connection of its own, inside
one transaction. PostgreSQL does the concurrency control SQLite's single writer does by hand, so
there is no group commit here: each ``await store.write(fn)`` is one transaction, committed (and so
durable, with the server's ``synchronous_commit``) before the ``await`` returns.

A write that loses a deadlock or a serialization check is run again (it is a plain function of
the database, and its transaction was rolled back), a few times, before the error reaches its caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors

from app.store.db import PostgresDatabase, configure_postgresql

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRIES = 5
"""Times a write that lost a deadlock or serialization check is run again."""
CONNECT_TIMEOUT = 30.0
MIGRATION_LOCK = 0x7E55E4A
"""The ``pg_advisory_lock`` key replicas starting together take to apply migrations one at a time."""


class PostgresEngine:
    """A connection pool and the threads that use it."""

    def __init__(self, url: str, *, size: int = 8) -> None:
        self.url = url
        self.size = size
        self._pool: psycopg_pool.ConnectionPool[Any] | None = None
        self._threads: ThreadPoolExecutor | None = None

    def open(self) -> None:
        """Open the pool. One direct connection first: a wrong URL, password or host fails here at
        once with the server's own words (the pool would retry quietly until its time-out)."""
        with psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT):
            pass
        self._pool = psycopg_pool.ConnectionPool(
            self.url, min_size=1, max_size=self.size, kwargs={"autocommit": True},
            configure=configure_postgresql, open=False, name="tessera-store",
        )
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        except psycopg_pool.PoolTimeout:
            self._pool.close()
            raise
        self._threads = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="tessera-store-pg")

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=True)
            self._threads = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def run_sync(self, fn: Callable[[PostgresDatabase], T], snapshot: bool = False) -> T:
        """``fn(db)`` in one transaction on a pooled connection (run again after a deadlock).
        ``snapshot``: the whole function sees one snapshot of committed data (REPEATABLE READ), as a
        SQLite reader does; otherwise each statement sees what is committed when it starts."""
        assert self._pool is not None, "the store is not open"
        for attempt in range(RETRIES + 1):
            with self._pool.connection() as conn:
                db = PostgresDatabase(conn)
                try:
                    with db.atomic():
                        if snapshot:
                            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                        return fn(db)
                except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure) as exc:
                    if attempt == RETRIES:
                        raise
                    log.info("store write lost a race (%s); running it again", type(exc).__name__)
                    time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    async def run(self, fn: Callable[[PostgresDatabase], T], *, snapshot: bool = False) -> T:
        if self._threads is None:
            raise RuntimeError("the store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._threads, self.run_sync, fn, snapshot)

    def with_migration_lock(self, fn: Callable[[PostgresDatabase], T]) -> T:
        """``fn(db)`` on a connection holding the migration lock (replicas starting together wait)."""
        assert self._pool is not None
        with self._pool.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                return fn(PostgresDatabase(conn))
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
