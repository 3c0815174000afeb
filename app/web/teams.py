"""``/teams/{slug}``: what a team owns, what it reads (its registrations, with a form to add or
remove one), and the pull requests waiting on its answer.

Only active members of the team's GitHub team change its registrations (the rule of the PR
commands, asked of GitHub with the App's installation on that organisation); a registration
is stored and logged by the same function as the API's.
"""

from __future__ import annotations

import logging

import sqlite_utils
from aiohttp import web

from app.api.registrations import register, unregister
from app.github import InstallationClient
from app.store import proposals as sql
from app.store import registry as reg_sql
from app.store.registry import Team
from app.web.access import GITHUB_TROUBLE, installation
from app.web.core import checked_form, need_sign_in, problem, redirect, render, session_of, store_of
from app.workflow import acks as ack_rules
from app.workflow import slash
from app.workflow.checkrun import STATE_WORDS
from app.workflow.serialize import analysis_from_json

log = logging.getLogger(__name__)

MAX_LISTED = 200
NOTICES = {"added": "Registration saved.", "removed": "Registration removed."}


async def _org_client(request: web.Request, team: Team) -> InstallationClient | None:
    """The App's installation on the team's organisation, or None when there is none to ask."""
    if not team.github_team:
        return None
    org = team.github_team.lstrip("@").partition("/")[0]
    installation_id = await store_of(request).read(lambda db: sql.installation_for_owner(db, org))
    if installation_id is None:
        return None
    return await installation(request, installation_id)


async def is_member(request: web.Request, team: Team, login: str) -> bool:
    try:
        gh = await _org_client(request, team)
        return gh is not None and await slash.is_active_member(gh, team.github_team or "", login)
    except GITHUB_TROUBLE as exc:
        log.warning("team page: cannot ask GitHub about %s: %s", team.github_team, exc)
        return False


async def _members(request: web.Request, team: Team) -> list[str] | None:
    """The GitHub team's members, or None when GitHub cannot be asked."""
    try:
        gh = await _org_client(request, team)
        if gh is None:
            return None
        org, _, slug = (team.github_team or "").lstrip("@").partition("/")
        return await gh.team_members(org, slug)
    except GITHUB_TROUBLE as exc:
        log.warning("team page: cannot list the members of %s: %s", team.github_team, exc)
        return None


def _pending(db: sqlite_utils.Database, slug: str) -> list[dict[str, object]]:
    """Open pull requests that ask this team to respond and have no ack from it yet."""
    waiting = []
    for proposal in sql.list_proposals_page(db, status="open", team=slug, limit=MAX_LISTED):
        analysis = analysis_from_json(proposal.analysis or "{}")
        if not any(r.team == slug for r in analysis.required_acks):
            continue
        records = sql.list_acks(db, proposal.id)
        for status in ack_rules.verdict(analysis.required_acks, records).statuses:
            if status.team == slug and not status.satisfied:
                waiting.append({"proposal": proposal, "state": STATE_WORDS.get(status.state, status.state)})
    return waiting


async def team_page(request: web.Request, *, notice: str = "", kind: str = "", status: int = 200) -> web.Response:
    session = session_of(request)
    if session is None:
        return need_sign_in(request)
    slug = request.match_info["slug"]
    team = await store_of(request).read(lambda db: reg_sql.get_team(db, slug))
    if team is None:
        return problem(request, 404, "No such team", f"No team {slug!r} is set up in Tessera (an admin creates teams).")

    def read(db: sqlite_utils.Database) -> tuple[object, ...]:
        return (reg_sql.search_assets(db, owner=slug, limit=MAX_LISTED),
                reg_sql.list_registrations(db, team=slug, limit=MAX_LISTED), _pending(db, slug))

    owned, registrations, pending = await store_of(request).read(read)
    done = request.query.get("done", "")
    return render(request, "team.html", {
        "team": team, "owned": owned, "registrations": registrations, "pending": pending,
        "member": await is_member(request, team, session.login),
        "members": await _members(request, team),
        "notice": notice or NOTICES.get(done, ""), "kind": kind or ("ok" if done in NOTICES else ""),
    }, status=status, title=team.name)


async def change_registrations(request: web.Request) -> web.Response:
    checked = await checked_form(request)
    if isinstance(checked, web.Response):
        return checked
    session, form = checked
    slug = request.match_info["slug"]
    team = await store_of(request).read(lambda db: reg_sql.get_team(db, slug))
    if team is None:
        return problem(request, 404, "No such team", f"No team {slug!r} is set up in Tessera.")
    if not await is_member(request, team, session.login):
        who = f"@{team.github_team}" if team.github_team else "its GitHub team (none is mapped yet)"
        return await team_page(request, notice=f"Only active members of {who} can change what {team.name} reads.",
                               kind="bad", status=403)
    actor = f"user:{session.login}"
    if form.get("action") == "remove":
        reg_id = form.get("id", "")
        reg = await store_of(request).read(
            lambda db: reg_sql.get_registration(db, int(reg_id)) if reg_id.isascii() and reg_id.isdigit() and len(reg_id) < 18 else None)
        if reg is None or reg["team"] != slug:
            return await team_page(request, notice="That registration is not this team's.", kind="bad", status=404)
        if reg["source"] != "api":
            return await team_page(request, notice=f"This registration comes from {reg['source']}: change it there.",
                                   kind="bad", status=400)
        await store_of(request).write(lambda db: unregister(db, reg, actor))
        return redirect(f"/teams/{slug}?done=removed#reads-h", status=303)
    asset = form.get("asset", "").strip().lower()[:300]
    columns = [c.strip() for c in form.get("columns", "").split(",") if c.strip()][:200]
    if not asset:
        return await team_page(request, notice="Name the asset you read.", kind="bad", status=400)
    outcome = await store_of(request).write(lambda db: register(
        db, team=slug, asset=asset, columns=columns, version=None, note=form.get("note", "")[:500], actor=actor))
    if isinstance(outcome, str):
        return await team_page(request, notice=outcome, kind="bad", status=400)
    return redirect(f"/teams/{slug}?done=added#reads-h", status=303)


async def show(request: web.Request) -> web.Response:
    return await team_page(request)


def routes() -> list[web.RouteDef]:
    return [web.get("/teams/{slug}", show), web.post("/teams/{slug}/registrations", change_registrations)]
