"""Observed consumers and reader mappings (``/consumers/observed``, ``/discovery/mappings``).

Discovery finds readers nobody wrote down; these endpoints show them (with the queries of the last
``days``, default 30, and whether they went stale) and let a team claim an unmapped warehouse role,
user or BI folder in one step. A team maps readers to itself; an admin maps them to any team.
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
from app.store import observed as observed_sql
from app.store import proposals as log_sql
from app.store import registry as reg_sql

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
    who = principal(request)
    body = await json_body(request, "DiscoveryMapping")
    team = body["team"]
    auth.require_team(who, team, "write")

    def write(db: Any) -> dict[str, Any] | str:
        if reg_sql.get_team(db, team) is None:
            return f"no team {team!r}: an admin creates it with POST /api/v1/teams"
        mapping = observed_sql.set_mapping(db, kind=body["kind"], name=body["name"], team=team, created_by=who.actor)
        log_sql.audit(db, actor=who.actor, action="discovery_mapped", team=team,
                      detail={"kind": mapping["kind"], "name": mapping["name"]})
        return mapping

    outcome = await store(request).write(write)
    if isinstance(outcome, str):
        raise ApiError(400, "invalid_request", outcome)
    return json_response(with_iso_times(outcome, "created_at"), status=201)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/consumers/observed", list_observed),
        web.get("/discovery/mappings", list_mappings),
        web.post("/discovery/mappings", create_mapping),
    ]
