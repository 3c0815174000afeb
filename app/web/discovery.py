"""``/discovery``: the readers query logs and BI tools showed that no team claims yet, grouped
(queries, assets read, last seen), each with a form that maps it to a team in one step; the
mappings made so far; and, for organisation owners, what each source's last run read or could not
read (its examples quote query text).

A mapping is made by the same function as the API's (:func:`app.discovery.remap.map_reader`:
stored and logged together), by an organisation owner for any team or by an active member of the
chosen team's GitHub team for that team; the open pull requests the reader reads are then
analysed again, so their check waits for the team.
"""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from app.appkeys import QUEUE_KEY
from app.discovery import remap
from app.store import observed as observed_sql
from app.store import registry as reg_sql
from app.store.db import Database
from app.web.admin import is_admin
from app.web.core import checked_form, need_sign_in, redirect, render, session_of, store_of
from app.web.teams import is_member

WINDOW_DAYS = 30
KIND_WORDS = {"role": "warehouse role", "user": "warehouse user", "folder": "BI folder"}


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


async def discovery_page(request: web.Request, *, notice: str = "", kind: str = "", status: int = 200) -> web.Response:
    session = session_of(request)
    if session is None:
        return need_sign_in(request)

    def read(db: Database) -> tuple[object, ...]:
        return (observed_sql.unmapped_readers(db, today=_today(), window_days=WINDOW_DAYS),
                observed_sql.list_mappings(db), reg_sql.list_teams(db, limit=500), observed_sql.last_runs(db))

    unmapped, mappings, teams, runs = await store_of(request).read(read)
    if not await is_admin(request, session.login):
        runs = None  # sources are the operator's: file paths, and examples of query text
    done = request.query.get("done", "")
    if done == "mapped" and not notice:
        rechecks = request.query.get("rechecks", "0")
        count = int(rechecks) if rechecks.isdigit() and len(rechecks) < 6 else 0
        notice, kind = f"Mapped. {_pull_requests(count)} analysed again.", "ok"
    return render(request, "discovery.html", {
        "unmapped": unmapped, "mappings": mappings, "teams": teams, "runs": runs, "days": WINDOW_DAYS,
        "kinds": KIND_WORDS, "notice": notice, "kind": kind,
        "when": _when,
    }, status=status, title="Discovery")


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M")


def _pull_requests(count: int) -> str:
    if count == 0:
        return "No open pull request reads through it, so none is"
    return "1 open pull request it reads is" if count == 1 else f"{count} open pull requests it reads are"


async def map_reader(request: web.Request) -> web.Response:
    checked = await checked_form(request)
    if isinstance(checked, web.Response):
        return checked
    session, form = checked
    reader_kind, name, slug = form.get("kind", ""), form.get("name", "")[:301], form.get("team", "")
    team = await store_of(request).read(lambda db: reg_sql.get_team(db, slug))
    if team is None:
        return await discovery_page(request, notice=f"No team {slug[:100]!r}: choose one of the list.", kind="bad",
                                    status=400)
    if not await is_admin(request, session.login) and not await is_member(request, team, session.login):
        who = f"@{team.github_team}" if team.github_team else "its GitHub team (none is mapped yet)"
        return await discovery_page(
            request, status=403, kind="bad",
            notice=f"Only active members of {who} (or an organisation owner) can map readers to {team.name}.")
    actor = f"user:{session.login}"
    outcome = await store_of(request).write(
        lambda db: remap.map_reader(db, kind=reader_kind, name=name, team=slug, actor=actor))
    if isinstance(outcome, str):
        return await discovery_page(request, notice=outcome, kind="bad", status=400)
    _, touched = outcome
    queued = await remap.queue_rechecks(store_of(request), touched, wake=request.app[QUEUE_KEY].notify)
    return redirect(f"/discovery?done=mapped&rechecks={queued}#unmapped-h", status=303)


async def show(request: web.Request) -> web.Response:
    return await discovery_page(request)


def routes() -> list[web.RouteDef]:
    return [web.get("/discovery", show), web.post("/discovery/mappings", map_reader)]
