"""Discovery on a schedule inside ``tessera serve``: every ``TESSERA_DISCOVERY_INTERVAL`` seconds,
each of ``TESSERA_DISCOVERY_SOURCES`` (``[KIND=]SOURCE``) is read as ``tessera discover`` would.

One round reads the sources one after another off the event loop (the parsing runs in a thread);
a source that fails (unreachable database, missing export) is logged and its error kept with its
watermark, and the round goes on: discovery never stops the App.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Sequence

from aiohttp import web

from app.appkeys import SETTINGS_KEY, STORE_KEY
from app.discovery.run import KINDS, DiscoveryError, discover, source_key
from app.store import Store
from app.store import observed as observed_sql

log = logging.getLogger(__name__)

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


async def _loop(app: web.Application) -> None:
    settings = app[SETTINGS_KEY]
    while True:
        try:
            await run_round(app[STORE_KEY], settings.discovery_sources, now=dt.datetime.now(dt.UTC))
        except Exception:  # noqa: BLE001 - a bug in one round must not end the schedule
            log.exception("discovery round failed")
        await asyncio.sleep(settings.discovery_interval)


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
