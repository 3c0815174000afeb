"""Slack: what a team's message says (Block Kit), the Web API calls, and request signatures.

One message per team per pull request: posted with ``chat.postMessage`` when the team is first
asked, then edited in place with ``chat.update`` (by the ``ts`` Slack gave it) as the team acks,
asks for time, blocks, or the pull request is overridden, merged or closed. Deadline reminders are
replies in the message's thread, at most one a day.

Everything Tessera writes into a message is escaped for Slack's mrkdwn (``&``, ``<``, ``>``), so a
PR title or an asset name can neither mention ``<!channel>`` nor forge a link.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from app.notify.ssrf import OutboundPolicy, guarded_post, retry_after_seconds

ACK_ACTION = "tessera_ack"
"""The ``action_id`` of the Acknowledge button (``POST /slack/interactions``)."""
MAX_SECTION = 2900
"""Slack refuses a section's text over 3,000 characters."""
MAX_LISTED = 10
SIGNATURE_WINDOW = 300
"""Slack's advice: refuse a request whose timestamp is more than five minutes off."""
PERMANENT_ERRORS = frozenset({
    "channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "not_authed", "account_inactive",
    "token_revoked", "no_permission", "missing_scope", "invalid_blocks", "msg_too_long", "cant_update_message",
    "invalid_arguments", "restricted_action",
})
"""``ok: false`` errors that retrying cannot fix."""


def escape(text: object) -> str:
    """Text safe inside Slack mrkdwn: no mention, no link, no markup smuggled in."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int = MAX_SECTION) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class TeamAsk:
    """What one team's message is about: the pull request, and what of theirs it touches."""

    proposal_id: int
    team: str
    repo: str
    pr_number: int
    title: str
    author: str
    pr_url: str
    page_url: str | None
    changes: tuple[str, ...]
    """One line per breaking change that reaches the team (``fct_revenue.plan_code: COLUMN_REMOVED``)."""
    readers: tuple[str, ...]
    """The team's assets that read what changed (``revenue dashboard (exposure) reads plan_code``)."""


@dataclass(frozen=True)
class TeamState:
    """Where the team's ask stands: ``asked``, ``acked``, ``migrating``, ``blocked``, ``invalidated``,
    ``overridden``, ``merged``, ``closed``."""

    state: str
    user: str | None = None
    detail: str = ""

    @property
    def open(self) -> bool:
        """The team still has something to do (the Acknowledge button is shown)."""
        return self.state in ("asked", "invalidated", "migrating")


STATE_LINES = {
    "asked": ":warning: *Acknowledgement needed*",
    "invalidated": ":warning: *Acknowledgement needed again*: a push changed what was acknowledged",
    "acked": ":white_check_mark: *Acknowledged*",
    "migrating": ":hourglass_flowing_sand: *Migrating*",
    "blocked": ":no_entry: *Blocked*",
    "overridden": ":fast_forward: *Overridden*",
    "merged": ":twisted_rightwards_arrows: *Merged*",
    "closed": ":heavy_multiplication_x: *Closed without merging*",
}


def is_webhook(channel: str) -> bool:
    """A channel given as an incoming-webhook URL (the simplest setup: no bot, no buttons, no edits)."""
    return channel.startswith(("https://", "http://"))


def message(ask: TeamAsk, state: TeamState, *, interactive: bool = True) -> dict[str, Any]:
    """``text`` (notifications, screen readers) and ``blocks`` of the team's message. Without
    ``interactive`` (an incoming webhook: no Slack app to receive a press) there is no Acknowledge."""
    status = STATE_LINES.get(state.state, escape(state.state))
    if state.user:
        status += f" by {escape(state.user)}"
    if state.detail:
        status += f": {escape(state.detail)}"
    pr = f"<{ask.pr_url}|{escape(ask.repo)}#{ask.pr_number}>"
    title = escape(ask.title or "(no title)")
    lines = [f"{status}", f"{pr} *{title}* by {escape(ask.author or 'someone')}"]
    if ask.changes:
        shown = [f"• {escape(c)}" for c in ask.changes[:MAX_LISTED]]
        if len(ask.changes) > MAX_LISTED:
            shown.append(f"• …and {len(ask.changes) - MAX_LISTED} more")
        lines += ["*What changed*", *shown]
    if ask.readers:
        shown = [f"• {escape(r)}" for r in ask.readers[:MAX_LISTED]]
        if len(ask.readers) > MAX_LISTED:
            shown.append(f"• …and {len(ask.readers) - MAX_LISTED} more")
        lines += [f"*What of {escape(ask.team)}'s reads it*", *shown]
    if state.open:
        where = "Acknowledge here, or comment" if interactive else "Comment"
        lines.append(f"{where} `/tessera ack {escape(ask.team)}` on the pull request.")
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": _clip("\n".join(lines))}}]
    buttons: list[dict[str, Any]] = []
    if state.open and interactive:
        buttons.append({
            "type": "button", "action_id": ACK_ACTION, "style": "primary",
            "text": {"type": "plain_text", "text": "Acknowledge"},
            "value": json.dumps({"proposal": ask.proposal_id, "team": ask.team}),
        })
    if ask.page_url:
        buttons.append({"type": "button", "action_id": "tessera_open_proposal", "url": ask.page_url,
                        "text": {"type": "plain_text", "text": "Open proposal"}})
    buttons.append({"type": "button", "action_id": "tessera_open_pr", "url": ask.pr_url,
                    "text": {"type": "plain_text", "text": "Open pull request"}})
    blocks.append({"type": "actions", "elements": buttons})
    plain = STATE_LINES.get(state.state, state.state).replace("*", "")
    text = f"{plain}: {ask.repo}#{ask.pr_number} {ask.title or ''}".strip()
    return {"text": escape(_clip(text, 300)), "blocks": blocks}


def reminder(ask: TeamAsk, deadline: str, days: int) -> dict[str, Any]:
    """A thread reply: the team said it would have migrated by ``deadline``."""
    when = "today" if days <= 0 else "tomorrow" if days == 1 else f"in {days} days"
    text = (
        f":alarm_clock: Reminder: {escape(ask.team)} said it would have migrated by {escape(deadline)} ({when})"
        f" for <{ask.pr_url}|{escape(ask.repo)}#{ask.pr_number}>. When done, acknowledge so the change can merge."
    )
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": _clip(text)}}]}


def notice(text: str) -> dict[str, Any]:
    """A plain message (audit alerts, a disabled subscription): ``text`` is escaped here."""
    safe = escape(text)
    return {"text": _clip(safe, 3000), "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": _clip(safe)}}]}


def content_hash(payload: Mapping[str, Any]) -> str:
    """A short hash of what a message says: the same content is never sent twice."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


# --- the Web API ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlackAnswer:
    """How a Web API call went: ``ok``, Slack's ``error`` code, the message ``ts``, and when to retry."""

    ok: bool
    status: int
    error: str | None = None
    ts: str | None = None
    channel: str | None = None
    retry_after: float | None = None

    @property
    def transient(self) -> bool:
        """Worth trying again later (rate limits, outages), as opposed to a configuration problem."""
        if self.ok:
            return False
        if self.status == 429 or self.status >= 500 or self.error == "ratelimited":
            return True
        return self.error not in PERMANENT_ERRORS and self.status not in (400, 401, 403, 404)


class SlackClient:
    """``chat.postMessage`` / ``chat.update`` with the bot token, through the SSRF guard."""

    def __init__(self, api_url: str, token: str, session: aiohttp.ClientSession, policy: OutboundPolicy) -> None:
        self.api_url = api_url.rstrip("/")
        self._token = token
        self._session = session
        self._policy = policy

    async def call(self, method: str, arguments: Mapping[str, Any]) -> SlackAnswer:
        return await self.post_json(f"{self.api_url}/{method}", arguments, token=self._token)

    async def post_json(self, url: str, arguments: Mapping[str, Any], *, token: str | None = None) -> SlackAnswer:
        """POST JSON (a Web API method, or a ``response_url``) and read Slack's answer."""
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        status, answer_headers, raw = await guarded_post(
            self._session, self._policy, url, data=json.dumps(dict(arguments)).encode(), headers=headers
        )
        retry_after = retry_after_seconds(answer_headers)
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            body = {"ok": raw.strip() == b"ok" and status == 200}  # response_url answers a bare "ok"
        if not isinstance(body, dict):
            body = {}
        if status != 200:
            return SlackAnswer(False, status, str(body.get("error") or f"http_{status}"), retry_after=retry_after)
        return SlackAnswer(
            bool(body.get("ok")), status, body.get("error"), ts=body.get("ts"), channel=body.get("channel"),
            retry_after=retry_after,
        )


# --- request signatures ---------------------------------------------------------------------------


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's ``X-Slack-Signature``: ``v0=`` + HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str | None, given: str | None, body: bytes, now: float) -> str | None:
    """Why the request is not Slack's (or is a replay), or None when it is genuine and fresh."""
    if not timestamp or not given:
        return "the request is not signed (X-Slack-Signature, X-Slack-Request-Timestamp)"
    try:
        sent = int(timestamp)
    except ValueError:
        return "X-Slack-Request-Timestamp is not a number"
    if abs(now - sent) > SIGNATURE_WINDOW:
        return "the request's timestamp is more than five minutes off (a replay?)"
    if not hmac.compare_digest(signature(secret, timestamp, body), given):
        return "the signature does not match"
    return None


def pr_web_url(github_api_url: str, repo: str, number: int) -> str:
    """The pull request's page: github.com for the public API, ``<host>`` for Enterprise Server."""
    base = github_api_url.rstrip("/")
    if base == "https://api.github.com":
        web = "https://github.com"
    elif base.endswith("/api/v3"):
        web = base[: -len("/api/v3")]
    else:
        web = base
    return f"{web}/{repo}/pull/{number}"


def quiet_until(now: float, quiet_hours: str | None) -> float | None:
    """When ``now`` falls in the quiet window ``HH:MM-HH:MM`` (UTC; it may span midnight), the end of
    the window; else None."""
    window = parse_window(quiet_hours)
    if window is None:
        return None
    start, end = window
    day = dt.datetime.fromtimestamp(now, dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    minute = (now - day.timestamp()) / 60
    if start <= end:
        inside = start <= minute < end
        ends = day.timestamp() + end * 60
    else:
        inside = minute >= start or minute < end
        ends = day.timestamp() + end * 60 + (86400 if minute >= start else 0)
    return ends if inside else None


def parse_window(text: str | None) -> tuple[int, int] | None:
    """``"22:00-07:00"`` as minutes of the day, or None."""
    if not text or "-" not in text:
        return None
    start, _, end = text.partition("-")
    first, last = minute_of(start), minute_of(end)
    return None if first is None or last is None or first == last else (first, last)


def minute_of(text: str) -> int | None:
    """``"09:30"`` as 570; None when not a time of day."""
    hours, _, minutes = text.strip().partition(":")
    if not (hours.isdigit() and minutes.isdigit()):
        return None
    value = int(hours) * 60 + int(minutes)
    return value if int(hours) < 24 and int(minutes) < 60 else None


def digest(team: str, asks: Sequence[Mapping[str, Any]], pr_url: Callable[[str, int], str]) -> dict[str, Any]:
    """The team's daily digest: every pull request still waiting for it."""
    lines = [f":inbox_tray: *{len(asks)} pull request{'s' if len(asks) != 1 else ''} wait for {escape(team)}*"]
    for ask in asks[:MAX_LISTED * 3]:
        state = "migrating" if ask["state"] == "migrating" else "acknowledgement needed"
        lines.append(f"• <{pr_url(ask['repo'], ask['pr_number'])}|{escape(ask['repo'])}#{ask['pr_number']}>"
                     f" {escape(ask.get('title') or '')} ({state})")
    if len(asks) > MAX_LISTED * 3:
        lines.append(f"• …and {len(asks) - MAX_LISTED * 3} more")
    text = "\n".join(lines)
    return {"text": _clip(f"{len(asks)} pull requests wait for {escape(team)}", 300),
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": _clip(text)}}]}


def channel_of(value: object) -> str | None:
    """A channel as ``.tessera.yml`` or the API gives it (``#data-growth`` or an id ``C0123``)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > 80 or any(c.isspace() or c in "<>&|/:" for c in text):
        return None
    return text


def changes_for(lines: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(lines))
