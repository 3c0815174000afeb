"""Registrations: a team declaring what it reads (``/registrations``, ``/registrations/{id}``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.api import auth
from app.api.common import id_cursor, int_param, json_body, json_response, page, page_params, principal, store
from app.api.errors import ApiError, not_found
from app.store import proposals as log_sql
from app.store import registry as reg_sql
from rules.model import column_key


async def list_registrations(request: web.Request) -> web.Response:
    auth.require(principal(request), "read")
    limit, cursor = page_params(request)
    after = id_cursor(cursor)
    team, asset = request.query.get("team"), request.query.get("asset")
    rows = await store(request).read(
        lambda db: reg_sql.list_registrations(db, team=team, asset=asset.lower() if asset else None,
                                              after_id=after, limit=limit + 1)
    )
    last = rows[limit - 1]["id"] if len(rows) > limit else None
    return page(request, rows, limit, last)


def register(
    db: Any, *, team: str, asset: str, columns: list[str], version: str | None, note: str, actor: str
) -> tuple[dict[str, Any], bool] | str:
    """Store (or update) a team's registration and log it: the registration and whether it is new,
    or why it was refused (an unknown team, a column the asset does not have). The API and the
    team page both register through here."""
    if reg_sql.get_team(db, team) is None:
        return f"no team {team!r}: an admin creates it with POST /api/v1/teams"
    known = reg_sql.get_asset(db, asset)
    if known is not None and columns and known["columns_known"] and known["columns"]:
        names = {column_key(c["name"]) for c in known["columns"]}
        missing = [c for c in columns if column_key(c) not in names]
        if missing:
            listing = ", ".join(c["name"] for c in known["columns"][:50])
            return f"{asset} has no column {', '.join(missing)} (its columns: {listing})"
    reg, created = reg_sql.create_registration(
        db, team=team, asset=asset, columns=columns, version=version, note=note, created_by=actor,
    )
    log_sql.audit(db, actor=actor, action="registration_created" if created else "registration_updated",
                  team=team, detail={"asset": asset, "columns": columns, "id": reg["id"]})
    reg["asset_known"] = known is not None
    return reg, created


def unregister(db: Any, reg: dict[str, Any], actor: str) -> None:
    reg_sql.delete_registration(db, reg["id"])
    log_sql.audit(db, actor=actor, action="registration_deleted", team=reg["team"],
                  detail={"asset": reg["asset"], "id": reg["id"]})


async def create_registration(request: web.Request) -> web.Response:
    """Register (or update) what a team reads; a team registers only itself unless the key is admin."""
    who = principal(request)
    body = await json_body(request, "RegistrationCreate")
    team, asset = body["team"], body["asset"].strip().lower()
    auth.require_team(who, team, "write")
    columns = list(body.get("columns") or [])

    def write(db: Any) -> tuple[dict[str, Any], bool] | str:
        return register(db, team=team, asset=asset, columns=columns, version=body.get("version"),
                        note=body.get("note") or "", actor=who.actor)

    outcome = await store(request).write(write)
    if isinstance(outcome, str):
        raise ApiError(400, "invalid_request", outcome)
    reg, created = outcome
    return json_response(reg, status=201 if created else 200)


async def get_registration(request: web.Request) -> web.Response:
    auth.require(principal(request), "read")
    reg_id = int_param(request.match_info["id"], "registration")
    reg = await store(request).read(lambda db: reg_sql.get_registration(db, reg_id))
    if reg is None:
        raise not_found(f"no registration {reg_id}")
    return json_response(reg)


async def delete_registration(request: web.Request) -> web.Response:
    who = principal(request)
    reg_id = int_param(request.match_info["id"], "registration")
    reg = await store(request).read(lambda db: reg_sql.get_registration(db, reg_id))
    if reg is None:
        raise not_found(f"no registration {reg_id}")
    auth.require_team(who, reg["team"], "write")
    if reg["source"] != "api" and not who.is_admin:
        raise ApiError(403, "forbidden", f"registration {reg_id} comes from {reg['source']}: change it there")

    await store(request).write(lambda db: unregister(db, reg, who.actor))
    return web.Response(status=204)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/registrations", list_registrations),
        web.post("/registrations", create_registration),
        web.get("/registrations/{id}", get_registration),
        web.delete("/registrations/{id}", delete_registration),
    ]
