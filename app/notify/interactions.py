"""``POST /slack/interactions``: the Acknowledge button of a team's Slack message.

The request is checked before anything else: Slack's signature (``X-Slack-Signature``, an HMAC
of ``v0:{timestamp}:{body}`` with ``TESSERA_SLACK_SIGNING_SECRET``), a timestamp within five
minutes, and a signature not seen before (a captured request replayed within the window is
refused too). Then the Slack user must be linked to a GitHub login (``/api/v1/slack/links``).

The ack itself runs as a job on the durable queue, in the pull request's own order (the same
ordering key as its webhooks), through the very code of ``/tessera ack``
(:func:`app.workflow.slash.carry_out`): the same membership check against the GitHub team, the
same refusal for the pull request's author, the same audit-log entry; then the comment, the check
and the Slack message are brought up to date. Slack gets its answer at once (it allows three
seconds); the outcome comes back to the clicking user through the interaction's ``response_url``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from urllib.parse import parse_qs

import cachetools
from aiohttp import web
from gidgethub.routing import Router
from gidgethub.sansio import Event
from yarl import URL

from app.appkeys import QUEUE_KEY, SETTINGS_KEY, STORE_KEY
from app.config import Settings
from app.notify import outbox, slack
from app.queue import JobContext
from app.store import NewDelivery
from app.store import notify as sql
from app.store import proposals as proposal_sql
from app.web.core import sign_in_enabled
from app.web.slack_link import link_token
from app.workflow.checkout import installation_client
from app.workflow.commands import Command
from app.workflow.payload import PayloadReader
from app.workflow.publishing import publish_outcome
from app.workflow.serialize import analysis_from_json
from app.workflow.slash import Conversation, carry_out

log = logging.getLogger(__name__)

router = Router()

EVENT = "tessera_slack_action"
"""The job kind of a Slack button press (stored like a webhook delivery)."""
MAX_BODY = 64 * 1024
SEEN_TTL = slack.SIGNATURE_WINDOW * 2

SEEN_KEY: web.AppKey[cachetools.TTLCache[str, bool]] = web.AppKey("slack_seen_signatures", cachetools.TTLCache)
"""Signatures this App answered within the window: one cache per App (per replica; a replay sent to
another replica within the window is answered, and an ack given twice is the same ack)."""


def _refuse(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"code": "unauthorized" if status == 401 else "bad_request", "message": message}},
                             status=status)


def _ephemeral(text: str) -> web.Response:
    return web.json_response({"response_type": "ephemeral", "replace_original": False, "text": slack.escape(text)})


async def slack_interactions(request: web.Request) -> web.StreamResponse:
    settings: Settings = request.app[SETTINGS_KEY]
    store = request.app[STORE_KEY]
    if not settings.slack_signing_secret:
        return _refuse(404, "Slack is not configured here (TESSERA_SLACK_SIGNING_SECRET is not set)")
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _refuse(413, "the request is too large for a Slack interaction")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        return _refuse(413, "the request is too large for a Slack interaction")
    clock = request.app[QUEUE_KEY].clock
    given = request.headers.get("X-Slack-Signature")
    problem = slack.verify(settings.slack_signing_secret, request.headers.get("X-Slack-Request-Timestamp"), given, raw,
                           clock.now())
    if problem is not None:
        log.warning("refused a Slack interaction: %s", problem)
        return _refuse(401, problem)
    seen = request.app[SEEN_KEY]
    if given in seen:
        return _refuse(401, "this request was already received (a replay?)")
    seen[str(given)] = True

    action = _action(raw)
    if action is None:
        return web.Response(status=200)  # another kind of interaction: nothing for Tessera to do
    slack_user, proposal_id, team, response_url = action
    login = await store.read(lambda db: sql.github_login_for(db, slack_user))
    if login is None:
        how = (f"Link it once, signing in with GitHub: {settings.base_url}/auth/slack/link?token="
               f"{link_token(request, slack_user)} (valid for an hour), then press again"
               if sign_in_enabled(settings) else "Ask an admin to link it")
        return _ephemeral(
            "Your Slack account is not linked to a GitHub login yet, so Tessera cannot tell whether you may speak"
            f" for {team}. {how}; or comment `/tessera ack {team}` on the pull request."
        )
    proposal = await store.read(lambda db: proposal_sql.get_proposal_by_id(db, proposal_id))
    if proposal is None:
        return _ephemeral("Tessera no longer knows this pull request.")
    payload = {"proposal_id": proposal_id, "team": team, "login": login, "slack_user": slack_user,
               "response_url": _trusted_response_url(settings, response_url)}
    delivery = NewDelivery(
        delivery_id=f"slack-{hashlib.sha256(raw).hexdigest()[:32]}",
        event=EVENT,
        action="ack",
        ordering_key=f"pr:{proposal.repo_id}#{proposal.pr_number}",
        installation_id=proposal.installation_id,
        repository=proposal.repo,
        payload=json.dumps(payload),
        received_at=clock.now(),
    )
    await store.insert_delivery(delivery)
    request.app[QUEUE_KEY].notify()
    return _ephemeral(f"Acknowledging for {team} as @{login}…")


def _action(raw: bytes) -> tuple[str, int, str, str | None] | None:
    """(Slack user id, proposal id, team, response_url) of an Acknowledge press, or None."""
    try:
        form = parse_qs(raw.decode("utf-8"), max_num_fields=10)
        payload = json.loads(form.get("payload", [""])[0])
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        return None
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    for action in payload.get("actions") or []:
        if not isinstance(action, dict) or action.get("action_id") != slack.ACK_ACTION:
            continue
        try:
            value = json.loads(str(action.get("value") or ""))
            proposal_id, team = int(value["proposal"]), str(value["team"])
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(user.get("id"), str) or not user["id"]:
            return None
        response_url = payload.get("response_url")
        return user["id"], proposal_id, team, response_url if isinstance(response_url, str) else None
    return None


def _trusted_response_url(settings: Settings, url: str | None) -> str | None:
    """Answer only to Slack itself: ``hooks.slack.com``, or the configured Web API's host."""
    if not url:
        return None
    parsed = URL(url)
    api = URL(settings.slack_api_url)
    if parsed.scheme == "https" and parsed.host == "hooks.slack.com":
        return url
    if parsed.host == api.host and parsed.port == api.port and parsed.scheme == api.scheme:
        return url
    return None


@router.register(EVENT)
async def on_slack_action(event: Event, ctx: JobContext) -> None:
    """Carry out the button press as the linked GitHub user's ``/tessera ack <team>``."""
    reader = PayloadReader(event.data, event.event)
    proposal_id = reader.integer("proposal_id")
    team, login = reader.text("team"), reader.text("login")
    response_url = event.data.get("response_url")
    proposal = await ctx.store.read(lambda db: proposal_sql.get_proposal_by_id(db, proposal_id))
    if proposal is None or not proposal.analysis:
        await _reply(ctx, response_url, "Tessera no longer knows this pull request.", event.delivery_id)
        return
    if proposal.status != "open":
        await _reply(ctx, response_url, f"This pull request is {proposal.status}: there is nothing left to decide.",
                     event.delivery_id)
        return
    gh = await installation_client(ctx, proposal.installation_id)
    records = await ctx.store.read(lambda db: proposal_sql.list_acks(db, proposal.id))
    talk = Conversation(ctx=ctx, github=gh, proposal=proposal, analysis=analysis_from_json(proposal.analysis),
                        user=login, comment_id=None, records=records)
    outcome = await carry_out(talk, Command(verb="ack", words=(team,), text=team))
    if outcome.changed and proposal.check_run_id is not None:
        fresh = await ctx.store.read(lambda db: proposal_sql.get_proposal_by_id(db, proposal.id))
        await publish_outcome(ctx, gh, fresh or proposal, talk.analysis, check_run_id=proposal.check_run_id)
    text = f"Acknowledged for {team} as @{login}." if outcome.accepted else (outcome.reply or "Refused.")
    await _reply(ctx, response_url, text, event.delivery_id)


async def _reply(ctx: JobContext, response_url: object, text: str, key: str) -> None:
    """An ephemeral answer to the user who pressed the button, through the outbound queue."""
    if not isinstance(response_url, str) or not response_url:
        return
    body = {"op": "respond", "url": response_url, "response_type": "ephemeral", "replace_original": False,
            "text": slack.escape(text)}
    idem = f"slack:respond:{key}"
    now = ctx.clock.now()
    if await ctx.store.write(lambda db: sql.enqueue(db, [sql.NewOutbound(idem, "slack", "slack.respond", idem, body)], now)):
        outbox.ring()


def setup_slack(app: web.Application) -> None:
    """Listed in :func:`app.server.route_setups`."""
    app[SEEN_KEY] = cachetools.TTLCache(maxsize=100_000, ttl=SEEN_TTL)
    app.router.add_post("/slack/interactions", slack_interactions)
