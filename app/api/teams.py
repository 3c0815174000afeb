"""Teams and their API keys (``/teams``, ``/teams/{slug}``, ``/teams/{slug}/keys``, ``/keys/{id}``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.api import auth
from app.api.common import id_cursor, int_param, json_body, json_response, page, page_params, principal, store
from app.api.errors import ApiError, not_found
from app.store import proposals as log_sql
from app.store import registry as reg_sql


def _github_team(value: str | None) -> str | None:
    return value.lstrip("@").lower() if value else None


async def list_teams(request: web.Request) -> web.Response:
    auth.require(principal(request), "read")
    limit, cursor = page_params(request)
    teams = await store(request).read(lambda db: reg_sql.list_teams(db, after=cursor, limit=limit + 1))
    last = teams[limit - 1].slug if len(teams) > limit else None
    return page(request, [t.to_dict() for t in teams], limit, last)


async def create_team(request: web.Request) -> web.Response:
    who = principal(request)
    auth.require(who, "admin")
    body = await json_body(request, "TeamCreate")
    slug, name, github = body["slug"], body["name"], _github_team(body.get("github_team"))

    def write(db: Any) -> reg_sql.Team | None:
        team = reg_sql.create_team(db, slug, name, github)
        if team is not None:
            log_sql.audit(db, actor=who.actor, action="team_created", team=slug, detail={"github_team": github})
        return team

    team = await store(request).write(write)
    if team is None:
        raise ApiError(409, "conflict", f"team {slug!r} already exists: PATCH /api/v1/teams/{slug} to change it")
    return json_response(team.to_dict(), status=201)


async def get_team(request: web.Request) -> web.Response:
    auth.require(principal(request), "read")
    slug = request.match_info["slug"]
    team = await store(request).read(lambda db: reg_sql.get_team(db, slug))
    if team is None:
        raise not_found(f"no team {slug!r}: GET /api/v1/teams lists them")
    return json_response(team.to_dict())


async def update_team(request: web.Request) -> web.Response:
    who = principal(request)
    auth.require(who, "admin")
    slug = request.match_info["slug"]
    body = await json_body(request, "TeamUpdate")
    if "github_team" in body:
        body["github_team"] = _github_team(body["github_team"])

    def write(db: Any) -> reg_sql.Team | None:
        team = reg_sql.update_team(db, slug, body)
        if team is not None:
            log_sql.audit(db, actor=who.actor, action="team_updated", team=slug, detail=body)
        return team

    team = await store(request).write(write)
    if team is None:
        raise not_found(f"no team {slug!r}")
    return json_response(team.to_dict())


async def delete_team(request: web.Request) -> web.Response:
    who = principal(request)
    auth.require(who, "admin")
    slug = request.match_info["slug"]

    def write(db: Any) -> bool:
        deleted = reg_sql.delete_team(db, slug)
        if deleted:
            log_sql.audit(db, actor=who.actor, action="team_deleted", team=slug)
        return deleted

    if not await store(request).write(write):
        raise not_found(f"no team {slug!r}")
    return web.Response(status=204)


async def list_keys(request: web.Request) -> web.Response:
    slug = request.match_info["slug"]
    who = principal(request)
    auth.require_team(who, slug, "write")
    limit, cursor = page_params(request)
    after = id_cursor(cursor)
    keys = await store(request).read(lambda db: reg_sql.list_keys(db, slug))
    keys = [k for k in keys if k.id > after][: limit + 1]
    last = keys[limit - 1].id if len(keys) > limit else None
    return page(request, [k.to_dict() for k in keys], limit, last)


async def create_key(request: web.Request) -> web.Response:
    """A new key for the team; the answer is the only place its secret ever appears."""
    who = principal(request)
    auth.require(who, "admin")
    slug = request.match_info["slug"]
    body = await json_body(request, "KeyCreate")
    expires_at = auth.expiry(body.get("expires_at"))
    scopes = auth.normalise_scopes(body["scopes"])
    made = auth.new_key()

    def write(db: Any) -> reg_sql.ApiKey | None:
        if reg_sql.get_team(db, slug) is None:
            return None
        key = reg_sql.insert_key(
            db,
            prefix=made.prefix,
            secret_hash=made.secret_hash,
            team=slug,
            scopes=scopes,
            expires_at=expires_at,
            created_by=who.actor,
        )
        log_sql.audit(db, actor=who.actor, action="key_created", team=slug,
                      detail={"key_id": key.id, "prefix": key.prefix, "scopes": list(scopes)})
        return key

    key = await store(request).write(write)
    if key is None:
        raise not_found(f"no team {slug!r}: create it first with POST /api/v1/teams")
    shown = key.to_dict()
    return json_response(
        {"id": key.id, "key": made.key, "prefix": key.prefix, "team": slug, "scopes": shown["scopes"],
         "expires_at": shown["expires_at"]},
        status=201,
    )


async def revoke_key(request: web.Request) -> web.Response:
    who = principal(request)
    key_id = int_param(request.match_info["id"], "key")
    key = await store(request).read(lambda db: reg_sql.get_key(db, key_id))
    if key is None:
        raise not_found(f"no key {key_id}")
    auth.require_team(who, key.team, "write")
    if not who.is_admin and auth.widest(key.scopes) > auth.widest(who.scopes):
        raise ApiError(403, "forbidden", f"key {key.prefix} has the {', '.join(key.scopes)} scope, wider than your key's:"
                       " an admin revokes it")

    def write(db: Any) -> bool:
        revoked = reg_sql.revoke_key(db, key_id)
        if revoked:
            log_sql.audit(db, actor=who.actor, action="key_revoked", team=key.team,
                          detail={"key_id": key_id, "prefix": key.prefix})
        return revoked

    await store(request).write(write)
    return web.Response(status=204)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/teams", list_teams),
        web.post("/teams", create_team),
        web.get("/teams/{slug}", get_team),
        web.patch("/teams/{slug}", update_team),
        web.delete("/teams/{slug}", delete_team),
        web.get("/teams/{slug}/keys", list_keys),
        web.post("/teams/{slug}/keys", create_key),
        web.delete("/keys/{id}", revoke_key),
    ]
