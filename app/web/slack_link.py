"""``/auth/slack/link``: a Slack user links their Slack account to their GitHub login, once.

The Acknowledge button in Slack answers an unlinked user with a link carrying their Slack user id,
signed by the App and valid for an hour. Opening it asks for GitHub sign-in; the signed-in person
confirms with a form (CSRF-checked), and from then on their presses in Slack speak as that GitHub
login, under the same rules as ``/tessera ack``. Nobody can link a Slack id they were not handed
by Slack, nor link someone else's GitHub login.
"""

from __future__ import annotations

import time

import sqlite_utils
from aiohttp import web

from app.store import notify as sql
from app.store import proposals as proposal_sql
from app.web.core import checked_form, need_sign_in, problem, render, session_of, signer_of, store_of

PURPOSE = "slack-link"
VALID_SECONDS = 3600


def link_token(request: web.Request, slack_user: str, *, now: float | None = None) -> str:
    """A signed, expiring token naming the Slack user who asked to be linked."""
    return signer_of(request).sign(PURPOSE, {"u": slack_user, "exp": int((now or time.time()) + VALID_SECONDS)})


def _slack_user(request: web.Request, token: str | None) -> str | None:
    payload = signer_of(request).unsign(PURPOSE, token)
    user = payload.get("u") if payload else None
    return user if isinstance(user, str) and user else None


def _expired(request: web.Request) -> web.Response:
    return problem(request, 400, "This link has expired",
                   "Press the button in Slack again: Tessera answers with a new link, valid for an hour.")


async def show(request: web.Request) -> web.Response:
    token = request.query.get("token")
    slack_user = _slack_user(request, token)
    if slack_user is None:
        return _expired(request)
    session = session_of(request)
    if session is None:
        return need_sign_in(request)
    return render(request, "slack_link.html", {"slack_user": slack_user, "token": token, "login": session.login},
                  title="Link your Slack account")


async def confirm(request: web.Request) -> web.Response:
    checked = await checked_form(request)
    if isinstance(checked, web.Response):
        return checked
    session, fields = checked
    slack_user = _slack_user(request, fields.get("token"))
    if slack_user is None:
        return _expired(request)
    login = session.login

    def save(db: sqlite_utils.Database) -> None:
        sql.link_slack_user(db, slack_user, login, login, time.time())
        proposal_sql.audit(db, actor=login, action="slack_linked", detail={"slack_user": slack_user})

    await store_of(request).write(save)
    return render(request, "problem.html", {
        "heading": "Slack account linked",
        "message": f"Your Slack presses now speak as @{login}. Go back to Slack and press the button again.",
    }, title="Slack account linked")


def routes() -> list[web.RouteDef]:
    return [web.get("/auth/slack/link", show), web.post("/auth/slack/link", confirm)]
