"""``/admin``: teams and their GitHub teams, API keys (a new key is shown once; revoke), the audit
log, and webhook deliveries (a failed one can be delivered again).

Tessera's admins are the owners of an organisation the App is installed on (GitHub's ``admin``
organisation role, asked with the App's installation token), the organisation-wide counterpart of
the admin permission ``/tessera override`` asks for. Keys are made as the API makes them.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping

import sqlite_utils
from aiohttp import web

from app.api import auth
from app.api.errors import ApiError
from app.appkeys import QUEUE_KEY
from app.store import deliveries as delivery_sql
from app.store import proposals as sql
from app.store import registry as reg_sql
from app.web.access import GITHUB_TROUBLE, installation
from app.web.core import checked_form, need_sign_in, problem, redirect, render, session_of, store_of
from app.web.session import Session

log = logging.getLogger(__name__)

SCOPES = ("read", "write", "admin")


async def is_admin(request: web.Request, login: str) -> bool:
    owners = await store_of(request).read(sql.installed_owners)
    if request.app[QUEUE_KEY].github is None:
        return False
    for owner, installation_id in owners:
        try:
            gh = await installation(request, installation_id)
            if await gh.org_role(owner, login) == "admin":
                return True
        except GITHUB_TROUBLE as exc:
            log.warning("admin check: cannot ask GitHub about %s: %s", owner, exc)
    return False


def _when(epoch: float | None) -> str:
    return "" if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M")


async def _page(request: web.Request, *, notice: str = "", kind: str = "", new_key: str = "", status: int = 200) -> web.Response:
    def read(db: sqlite_utils.Database) -> tuple[object, ...]:
        teams = reg_sql.list_teams(db, limit=500)
        keys = [(team, reg_sql.list_keys(db, team.slug)) for team in teams]
        return (keys, sql.list_audit(db, limit=50), delivery_sql.list_page(db, status="failed", limit=50),
                delivery_sql.list_page(db, limit=20))

    keys, audit, failed, recent = await store_of(request).read(read)
    done = request.query.get("done", "")
    notices = {"revoked": "Key revoked.", "redelivered": "Delivery queued again."}
    return render(request, "admin.html", {
        "teams": keys, "audit": audit, "failed": failed, "recent": recent, "when": _when, "now": time.time(),
        "scopes": SCOPES, "new_key": new_key,
        "notice": notice or notices.get(done, ""), "kind": kind or ("ok" if done in notices else ""),
    }, status=status, title="Admin")


async def _admin_only(request: web.Request) -> web.Response | None:
    session = session_of(request)
    if session is None:
        return need_sign_in(request)
    if not await is_admin(request, session.login):
        return problem(request, 403, "Admins only",
                       "Only owners of an organisation the App is installed on can open the admin page.")
    return None


async def _admin_form(request: web.Request) -> tuple[Session, Mapping[str, str]] | web.Response:
    """A form posted by a signed-in admin with a matching CSRF token, or the page refusing it."""
    checked = await checked_form(request)
    if isinstance(checked, web.Response):
        return checked
    return await _admin_only(request) or checked


async def admin_page(request: web.Request) -> web.Response:
    return await _admin_only(request) or await _page(request)


async def create_key(request: web.Request) -> web.Response:
    checked = await _admin_form(request)
    if isinstance(checked, web.Response):
        return checked
    session, form = checked
    team, scope = form.get("team", ""), form.get("scope", "read")
    if scope not in SCOPES:
        return await _page(request, notice="Choose read, write or admin.", kind="bad", status=400)
    expires = form.get("expires") or None
    try:
        expires_at = auth.expiry(f"{expires}T23:59:59Z" if expires and len(expires) == 10 else expires)
    except ApiError as exc:
        return await _page(request, notice=exc.message, kind="bad", status=400)
    made = auth.new_key()
    actor = f"user:{session.login}"

    def write(db: sqlite_utils.Database) -> reg_sql.ApiKey | None:
        if reg_sql.get_team(db, team) is None:
            return None
        key = reg_sql.insert_key(db, prefix=made.prefix, secret_hash=made.secret_hash, team=team, scopes=(scope,),
                                 expires_at=expires_at, created_by=actor)
        sql.audit(db, actor=actor, action="key_created", team=team,
                  detail={"key_id": key.id, "prefix": key.prefix, "scopes": [scope]})
        return key

    key = await store_of(request).write(write)
    if key is None:
        return await _page(request, notice=f"No team {team!r}.", kind="bad", status=400)
    return await _page(request, new_key=made.key, notice=f"Key {key.prefix} created for {team}.", kind="ok")


async def revoke_key(request: web.Request) -> web.Response:
    checked = await _admin_form(request)
    if isinstance(checked, web.Response):
        return checked
    session, _ = checked
    text = request.match_info["id"]
    key = None
    if text.isascii() and text.isdigit() and len(text) < 18:
        key = await store_of(request).read(lambda db: reg_sql.get_key(db, int(text)))
    if key is None:
        return await _page(request, notice="No such key.", kind="bad", status=404)

    def write(db: sqlite_utils.Database) -> None:
        if reg_sql.revoke_key(db, key.id):
            sql.audit(db, actor=f"user:{session.login}", action="key_revoked", team=key.team,
                      detail={"key_id": key.id, "prefix": key.prefix})

    await store_of(request).write(write)
    return redirect("/admin?done=revoked#keys-h", status=303)


async def redeliver(request: web.Request) -> web.Response:
    checked = await _admin_form(request)
    if isinstance(checked, web.Response):
        return checked
    session, _ = checked
    delivery_id = request.match_info["id"]
    existing = await store_of(request).get_delivery(delivery_id)
    if existing is None:
        return await _page(request, notice="No such delivery.", kind="bad", status=404)
    if existing.status == "running":
        return await _page(request, notice="That delivery is running now; try once it ends.", kind="bad", status=409)
    await store_of(request).replay_delivery(delivery_id, time.time())
    await store_of(request).write(lambda db: sql.audit(
        db, actor=f"user:{session.login}", action="delivery_replayed", repo=existing.repository,
        detail={"delivery_id": delivery_id, "was": existing.status}))
    request.app[QUEUE_KEY].notify()
    return redirect("/admin?done=redelivered#deliveries-h", status=303)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/admin", admin_page),
        web.post("/admin/keys", create_key),
        web.post("/admin/keys/{id}/revoke", revoke_key),
        web.post("/admin/deliveries/{id}/redeliver", redeliver),
    ]
