"""Discovery on a schedule inside ``tessera serve``: every ``TESSERA_DISCOVERY_INTERVAL`` seconds,
each of ``TESSERA_DISCOVERY_SOURCES`` (``[KIND=]SOURCE``) is read as ``tessera discover`` would.

One round reads the sources one after another off the event loop (the parsing runs in a thread);
a source that fails (unreachable database, missing export) is logged and its error kept with its
watermark, and the round goes on: discovery never stops the App.

Several replicas on one PostgreSQL database run one round per interval between them, not one
each: a round is run under the ``discovery`` lease (:mod:`app.store.schedules`), renewed while it
runs and then held until the next round is due. The other replicas wait for it; one that dies
mid-round leaves the lease to run out (``Store.lease_seconds``), and another runs the round.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Sequence

from aiohttp import web

from app.appkeys import SETTINGS_KEY, STORE_KEY
from app.discovery.run import KINDS, DiscoveryError, discover, source_key
from app.store import Store, schedules
from app.store import observed as observed_sql

log = logging.getLogger(__name__)

LEASE = "discovery"
"""The schedule's name in ``schedule_leases``."""
RETRY_SLACK = 0.05
"""Seconds past another replica's lease before trying again: its renewal or finish lands first."""

_TASK: web.AppKey[asyncio.Task[None]] = web.AppKey("discovery_task", asyncio.Task)


def parse_entry(entry: str) -> tuple[str | None, str]:
    """``KIND=SOURCE`` or ``SOURCE`` (the kind found from it)."""
    kind, sep, source = entry.partition("=")
    if sep and kind in KINDS:
        return kind, source
    return None, entry


async def run_round(store: Store, entries: Sequence[str], *, now: dt.datetime) -> dict[str, str | None]:
    """Read every source once; what went wrong with each (None: nothing)."""
    outcome: dict[str, str | None] = {}
    for entry in entries:
        kind, source = parse_entry(entry)
        try:
            result = await discover(store, source, kind, now=now)
        except DiscoveryError as error:
            log.warning("discovery: %s", error)
            outcome[source_key(source)] = str(error)
            failed_kind = kind or "unknown"
            await store.write(lambda db, e=str(error), k=failed_kind, s=source: observed_sql.save_watermark(
                db, source_key(s), kind=k, state=observed_sql.watermark(db, source_key(s)), last_run={"error": e}))
            continue
        log.info("discovery: %s %s: %d rows, %d consumers, %d not parsed, %d malformed", result.kind,
                 result.source, result.counts.rows, len(result.reads), result.counts.unparsed, result.counts.malformed)
        outcome[result.source] = None
    return outcome


async def scheduled_round(store: Store, entries: Sequence[str], *, interval: float) -> float:
    """Run a round if this replica takes the ``discovery`` lease; the seconds until it should try
    again (the interval after its own round; when the lease is another's, until it runs out)."""
    now = time.time()
    if not await store.write(lambda db: schedules.take(db, LEASE, store.replica, now, now + store.lease_seconds)):
        lease = await store.read(lambda db: schedules.get(db, LEASE))
        due = lease.lease_until if lease is not None else now
        return min(interval, max(due - time.time(), 0.0) + RETRY_SLACK)
    renewing = asyncio.create_task(_renew(store))
    stopped = True
    """Stopped before its end (the replica shuts down): another replica should run it now. A
    round that ended, even on a bug, holds the lease until the next round is due: a bug that
    fails every round must not run it on some replica every minute."""
    try:
        await run_round(store, entries, now=dt.datetime.now(dt.UTC))
        stopped = False
    except asyncio.CancelledError:
        raise
    except Exception:
        stopped = False
        raise
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
        with contextlib.suppress(Exception):  # a store that is closing: the lease runs out by itself
            if stopped:
                await store.write(lambda db: schedules.release(db, LEASE, store.replica))
            else:
                done = time.time()
                await store.write(lambda db: schedules.finish(db, LEASE, store.replica, done, done + interval))
    return interval


async def _renew(store: Store) -> None:
    """Keep the lease while the round runs, every third of its length, like a job's."""
    while True:
        await asyncio.sleep(max(store.lease_seconds / 3, 0.05))
        try:
            held = await store.write(
                lambda db: schedules.renew(db, LEASE, store.replica, time.time() + store.lease_seconds)
            )
        except Exception:  # noqa: BLE001 - try again at the next third
            log.exception("discovery: renewing the schedule's lease failed")
            continue
        if not held:
            log.warning("discovery: the round outlived its lease; another replica may run the next one")
            return


async def _loop(app: web.Application) -> None:
    settings = app[SETTINGS_KEY]
    while True:
        try:
            wait = await scheduled_round(app[STORE_KEY], settings.discovery_sources, interval=settings.discovery_interval)
        except Exception:  # noqa: BLE001 - a bug in one round must not end the schedule
            log.exception("discovery round failed")
            wait = settings.discovery_interval
        await asyncio.sleep(wait)


def setup_discovery(app: web.Application) -> None:
    """Start the schedule with the App when sources are configured (listed in ``route_setups``)."""
    if not app[SETTINGS_KEY].discovery_sources:
        return

    async def start(app: web.Application) -> None:
        app[_TASK] = asyncio.create_task(_loop(app))

    async def stop(app: web.Application) -> None:
        task = app[_TASK]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.on_startup.append(start)
    app.on_cleanup.insert(0, stop)
