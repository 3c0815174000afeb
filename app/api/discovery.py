"""Observed consumers and reader mappings (``/consumers/observed``, ``/discovery/mappings``).

Discovery finds readers nobody wrote down; these endpoints show them (with the queries of the last
``days``, default 30, and whether they went stale) and let a team claim an unmapped warehouse role,
user or BI folder in one step. A team maps readers to itself; an admin maps them to any team. The
open pull requests the reader reads are then analysed again (:mod:`app.discovery.remap`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from app.api import auth
from app.api.common import (
    id_cursor,
    json_body,
    json_response,
    page,
    page_params,
    principal,
    store,
    with_iso_times,
)
from app.api.errors import ApiError
from app.appkeys import QUEUE_KEY
from app.discovery import remap
from app.store import observed as observed_sql

DEFAULT_DAYS = 30
MAX_DAYS = 3660


def _days(request: web.Request) -> int:
    raw = request.query.get("days", str(DEFAULT_DAYS))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
        raise ApiError(400, "invalid_request", f"days must be a whole number from 1 to {MAX_DAYS}")
    return int(raw)


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


async def list_observed(request: web.Request) -> web.Response:
    auth.require(principal(request), "read")
    limit, cursor = page_params(request)
    after, days = id_cursor(cursor), _days(request)
    asset, team = request.query.get("asset"), request.query.get("team")
    unmapped = request.query.get("unmapped", "").lower() in ("1", "true", "yes")
    rows = await store(request).read(
        lambda db: observed_sql.list_observed(db, today=_today(), window_days=days, asset=asset, team=team,
                                              unmapped=unmapped, after_id=after, limit=limit + 1)
    )
    last = rows[limit - 1]["id"] if len(rows) > limit else None
    return page(request, rows, limit, last)


async def list_mappings(request: web.Request) -> web.Response:
    """The mappings, and the readers no mapping covers yet (grouped, busiest first)."""
    auth.require(principal(request), "read")
    days = _days(request)

    def read(db: Any) -> dict[str, Any]:
        return {
            "items": [with_iso_times(m, "created_at") for m in observed_sql.list_mappings(db)],
            "unmapped": observed_sql.unmapped_readers(db, today=_today(), window_days=days),
        }

    return json_response(await store(request).read(read))


async def create_mapping(request: web.Request) -> web.Response:
    """Map a reader to a team; the open pull requests it reads are analysed again (``rechecks``:
    how many were queued), so their check waits for that team."""
    who = principal(request)
    body = await json_body(request, "DiscoveryMapping")
    team = body["team"]
    auth.require_team(who, team, "write")
    outcome = await store(request).write(
        lambda db: remap.map_reader(db, kind=body["kind"], name=body["name"], team=team, actor=who.actor))
    if isinstance(outcome, str):
        raise ApiError(400, "invalid_request", outcome)
    mapping, touched = outcome
    queue = request.config_dict.get(QUEUE_KEY)
    queued = await remap.queue_rechecks(store(request), touched, wake=queue.notify if queue is not None else None)
    return json_response({**with_iso_times(mapping, "created_at"), "rechecks": queued}, status=201)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/consumers/observed", list_observed),
        web.get("/discovery/mappings", list_mappings),
        web.post("/discovery/mappings", create_mapping),
    ]
