"""Operator resources: the audit log, webhook deliveries and their replay, dbt manifest uploads."""

from __future__ import annotations

import time

from aiohttp import web

from app.api import auth
from app.api.common import (
    id_cursor,
    json_response,
    page,
    page_params,
    parse_large_json,
    principal,
    read_body,
    store,
    with_iso_times,
)
from app.api.errors import ApiError, not_found
from app.api.openapi import validate
from app.appkeys import QUEUE_KEY
from app.errors import PermanentError
from app.registry_sync import OwnershipRefused, sync_manifest
from app.store import deliveries as delivery_sql
from app.store import proposals as log_sql
from app.store import registry as reg_sql
from app.store.deliveries import STATUSES

MAX_MANIFEST = 256 * 1024 * 1024
"""A 5,000-model manifest is ~100 MB; anything past this is refused before it is read whole."""


async def audit_log(request: web.Request) -> web.Response:
    auth.require(principal(request), "admin")
    limit, cursor = page_params(request)
    before = id_cursor(cursor) or None
    filters = {k: request.query[k] for k in ("repo", "team", "actor", "action") if k in request.query}
    rows = await store(request).read(lambda db: log_sql.list_audit(db, before=before, limit=limit + 1, **filters))
    last = rows[limit - 1]["id"] if len(rows) > limit else None
    return page(request, [with_iso_times(row, "at") for row in rows], limit, last)


async def deliveries(request: web.Request) -> web.Response:
    auth.require(principal(request), "admin")
    limit, cursor = page_params(request)
    before = id_cursor(cursor) or None
    status = request.query.get("status")
    if status and status not in STATUSES:
        raise ApiError(400, "invalid_request", f"status is one of {', '.join(STATUSES)}")
    rows = await store(request).read(lambda db: delivery_sql.list_page(db, status=status, before=before, limit=limit + 1))
    last = rows[limit - 1]["id"] if len(rows) > limit else None
    return page(request, [with_iso_times(row, "received_at", "finished_at") for row in rows], limit, last)


async def replay(request: web.Request) -> web.Response:
    who = principal(request)
    auth.require(who, "admin")
    delivery_id = request.match_info["id"]
    existing = await store(request).get_delivery(delivery_id)
    if existing is None:
        raise not_found(f"no delivery {delivery_id!r}: GET /api/v1/deliveries lists them")
    if existing.status == "running":
        raise ApiError(409, "conflict", f"delivery {delivery_id} is running now; replay it once it ends")
    await store(request).replay_delivery(delivery_id, time.time())
    await store(request).write(
        lambda db: log_sql.audit(db, actor=who.actor, action="delivery_replayed",
                                 repo=existing.repository, detail={"delivery_id": delivery_id, "was": existing.status})
    )
    queue = request.config_dict.get(QUEUE_KEY)
    if queue is not None:
        queue.notify()
    return json_response({"delivery_id": delivery_id, "status": "queued", "was": existing.status}, status=202)


async def sync_dbt(request: web.Request) -> web.Response:
    """A dbt manifest for a repository and commit, synced into the registry (assets, columns, edges)."""
    who = principal(request)
    auth.require(who, "write")
    body = await parse_large_json(await read_body(request, MAX_MANIFEST))
    validate(body, "DbtSync")
    repo = await store(request).read(lambda db: reg_sql.repo_spelling(db, body["repo"]))
    team = None if who.is_admin else who.team
    if team is not None:
        owners = await store(request).read(lambda db: reg_sql.repo_owner_teams(db, repo))
        if owners and team not in owners:  # refused before the manifest is read (checked again as it is written)
            listing = ", ".join(sorted(owners))
            raise ApiError(403, "forbidden", f"{repo} is owned by {listing} in the registry: only those teams"
                           " (or an admin) may replace it with a manifest")
    try:
        summary = await sync_manifest(
            store(request), repo=repo, commit=body["commit"].lower(), manifest=body["manifest"],
            project_dir=body.get("project_dir"), actor=who.actor, columns=body.get("lineage") == "columns", team=team,
        )
    except OwnershipRefused as exc:
        raise ApiError(409 if exc.taken else 403, "conflict" if exc.taken else "forbidden", exc.message) from None
    except PermanentError as exc:
        raise ApiError(422, "unprocessable_manifest", str(exc)) from exc
    return json_response(summary.to_dict())


def routes() -> list[web.RouteDef]:
    return [
        web.get("/audit-log", audit_log),
        web.get("/deliveries", deliveries),
        web.post("/deliveries/{id}/replay", replay),
        web.post("/sync/dbt", sync_dbt),
    ]
