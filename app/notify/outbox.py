"""The outbound queue's workers: send stored Slack calls and subscriber deliveries, retry, give up.

Why a queue of its own rather than a job kind in :mod:`app.queue`: its failures are other people's
outages. A Slack outage means hours of retries with long back-offs; in the webhook job queue those
would hold workers (and, through ordering keys, pull requests) that must keep running. Here they
only wait in the ``outbound`` table, sent by their own workers.

Retries: a transient failure (connection error, time-out, 429, 5xx, Slack's ``ratelimited``) is
tried again after ``base·2^(attempt-1)`` seconds (jittered, capped at 10 minutes), or after the
``Retry-After`` the server asked for when longer; after ``max_attempts`` it fails. A permanent one
(the SSRF guard refused, a 4xx, ``channel_not_found``) fails at once. A failed message stays in the
log; a subscriber's can be redelivered through the API.

Subscribers: ``disable_after`` failed deliveries in a row disable the subscription; its owner team
is told in the audit log and, when the team has a Slack channel, there.

Sending twice: the queue marks a message running before it is sent and done after, so a crash in
between sends it again at the next start (at least once). Webhook receivers deduplicate on
``X-Tessera-Delivery``; a team's Slack message is posted only while no ``ts`` is stored for it, and
updated in place after that.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import random
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import sqlite_utils

from app.config import Settings
from app.metrics import REGISTRY
from app.notify import slack
from app.notify.slack import SlackAnswer, SlackClient
from app.notify.ssrf import (
    OutboundPolicy,
    OutboundRefused,
    guarded_post,
    guarded_session,
    retry_after_seconds,
)
from app.notify.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from app.queue import Clock, SystemClock
from app.store import Store
from app.store import notify as sql
from app.store import proposals as log_sql
from app.store.notify import Outbound

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 1.0
REMINDER_EVERY_SECONDS = 3600.0

SENT = REGISTRY.counter("tessera_outbound_total", "Outbound messages that ended, by kind and outcome.")
RETRIED = REGISTRY.counter("tessera_outbound_retries_total", "Outbound attempts that failed and were scheduled again.")
SEND_LATENCY = REGISTRY.histogram("tessera_outbound_latency_seconds", "From stored to sent, by kind.")

_queues: weakref.WeakSet[OutboundQueue] = weakref.WeakSet()


def ring() -> None:
    """Wake the outbound workers of this process: something was stored for them."""
    for queue in list(_queues):
        queue.notify()


@dataclass(frozen=True)
class OutboundPolicyRetry:
    """How often, and how long apart, a message is tried."""

    max_attempts: int = 12
    """With the 10-minute cap: about an hour and a half of outage before a message fails."""
    base_delay: float = 2.0
    max_delay: float = 600.0
    disable_after: int = 5
    """Failed deliveries in a row that disable a subscription."""

    def delay(self, attempt: int, retry_after: float | None, rng: Callable[[], float] = random.random) -> float:
        backoff = min(self.max_delay, self.base_delay * 2 ** max(attempt - 1, 0))
        jittered = backoff * (0.5 + 0.5 * rng())
        if retry_after is not None and retry_after > jittered:
            return min(float(retry_after), 24 * 3600.0)
        return jittered


Settlement = Callable[[sqlite_utils.Database], None]


def _settle_and_claim(
    db: sqlite_utils.Database, settle: Settlement | None, now: float, replica: str
) -> tuple[Outbound | None, float | None]:
    if settle is not None:
        settle(db)
    return sql.claim_next(db, now, replica)


@dataclass(frozen=True)
class Attempt:
    """How one send went: ``done``, ``retry`` or ``failed``."""

    result: str
    http_status: int | None = None
    error: str | None = None
    retry_after: float | None = None


class OutboundQueue:
    """Workers sending the ``outbound`` table's messages."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        clock: Clock | None = None,
        workers: int = 4,
        policy: OutboundPolicyRetry | None = None,
        session: aiohttp.ClientSession | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.workers = workers
        self.policy = policy or OutboundPolicyRetry()
        self.guard = OutboundPolicy.from_cidrs(settings.outbound_allow)
        self._session = session
        self._owns_session = session is None
        self._rng = rng
        self._tasks: list[asyncio.Task[None]] = []
        self._unsettled: list[Settlement] = []
        self._wake = asyncio.Event()
        _queues.add(self)

    @property
    def running(self) -> bool:
        return bool(self._tasks) and all(not t.done() for t in self._tasks)

    def _client_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = guarded_session(self.guard)
            self._owns_session = True
        return self._session

    async def start(self) -> None:
        if self._tasks:
            return
        # other replicas' messages (PostgreSQL) are theirs until their lease runs out
        expired_only = self.store.shared
        await self.store.write(lambda db: sql.recover_running(db, self.clock.now(), expired_only=expired_only))
        self._tasks = [asyncio.create_task(self._worker(), name=f"tessera-outbound-{i}") for i in range(self.workers)]
        self._tasks.append(asyncio.create_task(self._remind_periodically(), name="tessera-reminders"))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None
        unsettled, self._unsettled = self._unsettled, []
        with contextlib.suppress(Exception):
            if self.store.is_open:
                for settle in unsettled:  # sent, but not yet recorded: record it, never send it again
                    await self.store.write(settle)
                replica = self.store.replica
                await self.store.write(lambda db: sql.recover_running(db, self.clock.now(), replica=replica))

    def notify(self) -> None:
        self._wake.set()

    # -- the loop --------------------------------------------------------------------------------

    async def _worker(self) -> None:
        """Claim, send, and record the outcome together with the next claim (one write, one commit
        per message instead of two)."""
        settle: Settlement | None = None
        while True:
            try:
                message, _ = await self.store.write(
                    lambda db, settle=settle: _settle_and_claim(db, settle, self.clock.now(), self.store.replica)
                )
            except asyncio.CancelledError:
                if settle is not None:
                    self._unsettled.append(settle)
                raise
            except Exception:  # the store failed (closed, disk full): keep the worker, try again
                log.exception("outbound worker: store error; the last outcome is written with the next claim")
                await self._idle()
                continue
            settle = None
            if message is None:
                await self._idle()
                continue
            settle = await self._attempt(message)

    async def _idle(self) -> None:
        self._wake.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), IDLE_POLL_SECONDS)

    async def step(self) -> bool | None:
        """Claim and send one due message: True when one was sent (or settled), False when none was
        due; ``None`` never. Tests and the benchmark drive the queue with this."""
        message, _ = await self.store.write(lambda db: sql.claim_next(db, self.clock.now(), self.store.replica))
        if message is None:
            return False
        await self._send(message)
        return True

    async def _send(self, message: Outbound) -> None:
        settle = await self._attempt(message)
        await self.store.write(settle)

    async def run_until_idle(self, *, max_steps: int = 100_000) -> int:
        """Send everything stored, waiting (on the clock) for retries that are not due yet; return
        the number of attempts made. For tests and the benchmark: with a fake clock, an hour of
        back-off passes instantly."""
        attempts = 0
        for _ in range(max_steps):
            message, due = await self.store.write(lambda db: sql.claim_next(db, self.clock.now(), self.store.replica))
            if message is not None:
                await self._send(message)
                attempts += 1
                continue
            if due is None:
                return attempts
            await self.clock.sleep(max(0.0, due - self.clock.now()))
        raise RuntimeError("the outbound queue did not drain")

    async def _attempt(self, message: Outbound) -> Settlement:
        try:
            if message.kind == "webhook":
                attempt = await self._deliver(message)
            else:
                attempt = await self._slack(message)
        except asyncio.CancelledError:
            raise
        except OutboundRefused as exc:
            attempt = Attempt("failed", error=f"refused: {exc}")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            attempt = Attempt("retry", error=f"{type(exc).__name__}: {exc}"[:500])
        except Exception as exc:  # noqa: BLE001 - a bug must not lose the message: it fails, kept in the log
            log.exception("outbound %s: unexpected error", message.id)
            attempt = Attempt("failed", error=f"{type(exc).__name__}: {exc}"[:500])
        return self._settlement(message, attempt)

    def _settlement(self, message: Outbound, attempt: Attempt) -> Settlement:
        """The write that records how the attempt went (run by the writer with the next claim)."""
        now = self.clock.now()
        result = attempt.result
        if result == "retry" and message.attempts >= self.policy.max_attempts:
            result = "failed"
        if result == "retry":
            delay = self.policy.delay(message.attempts, attempt.retry_after, self._rng)
            RETRIED.inc(kind=message.kind)
            log.warning("outbound %s (%s) attempt %d failed, again in %.0fs: %s", message.id, message.event,
                        message.attempts, delay, attempt.error)
            return lambda db: sql.settle(db, message.id, "queued", now, http_status=attempt.http_status,
                                         error=attempt.error, run_after=now + delay)
        SENT.inc(kind=message.kind, outcome=result)
        SEND_LATENCY.observe(max(0.0, now - message.created_at), kind=message.kind)
        def write(db: sqlite_utils.Database) -> None:
            sql.settle(db, message.id, result, now, http_status=attempt.http_status, error=attempt.error)
            if message.subscription_id is not None:
                failures = sql.record_result(db, message.subscription_id, ok=result == "done")
                if result == "failed" and failures >= self.policy.disable_after:
                    _disable(db, message.subscription_id, failures, attempt.error, now)

        return write

    # -- subscribers -----------------------------------------------------------------------------

    async def _deliver(self, message: Outbound) -> Attempt:
        subscription = await self.store.read(lambda db: sql.get_subscription(db, message.subscription_id or 0))
        if subscription is None:
            return Attempt("failed", error="the subscription was deleted")
        if not subscription.active:
            return Attempt("failed", error="the subscription is disabled")
        body = json.dumps({
            "id": message.idem_key, "event": message.event, "created_at": message.created_at,
            "data": message.body.get("data", {}),
        }, separators=(",", ":"), default=str).encode()
        timestamp = str(int(self.clock.now()))
        headers = {
            "Content-Type": "application/json",
            "X-Tessera-Event": message.event,
            "X-Tessera-Delivery": message.idem_key,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(subscription.secret, timestamp, body),
        }
        status, answer_headers, _ = await guarded_post(self._client_session(), self.guard, subscription.url,
                                                       data=body, headers=headers)
        if 200 <= status < 300:
            return Attempt("done", status)
        error = f"HTTP {status}"
        if 300 <= status < 400:
            return Attempt("failed", status, f"{error}: redirects are not followed; subscribe the final URL")
        if status in (408, 425, 429) or status >= 500:
            return Attempt("retry", status, error, retry_after_seconds(answer_headers))
        return Attempt("failed", status, error)

    # -- Slack -----------------------------------------------------------------------------------

    async def _slack(self, message: Outbound) -> Attempt:
        body = dict(message.body)
        op = body.pop("op", "post")
        channel = str(body.get("channel", ""))
        if op != "respond" and slack.is_webhook(channel):
            return await self._incoming_webhook(message, op, body)
        if not self.settings.slack_bot_token:
            return Attempt("failed", error="TESSERA_SLACK_BOT_TOKEN is not set")
        client = SlackClient(self.settings.slack_api_url, self.settings.slack_bot_token, self._client_session(),
                             self.guard)
        if op == "respond":
            url = str(body.pop("url", ""))
            return _attempt(await client.post_json(url, body))
        if op == "post":
            return _attempt(await client.call("chat.postMessage", body))
        # A team's message about a pull request: post it once, then edit it in place.
        proposal_id, team = int(body.pop("proposal_id")), str(body.pop("team"))
        if op == "reminder":
            current = await self.store.read(lambda db: sql.get_slack_message(db, proposal_id, team))
            if current is not None and current.ts:
                body["thread_ts"] = current.ts
                body["channel"] = current.channel
            return _attempt(await client.call("chat.postMessage", body))
        current = await self.store.read(lambda db: sql.get_slack_message(db, proposal_id, team))
        if current is not None and current.ts:
            answer = await client.call("chat.update", {**body, "channel": current.channel, "ts": current.ts})
            if answer.ok or answer.error not in ("message_not_found", "channel_not_found"):
                return _attempt(answer)
        answer = await client.call("chat.postMessage", body)
        if answer.ok and answer.ts:
            channel = answer.channel or str(body["channel"])
            await self.store.write(lambda db: sql.set_slack_ts(db, proposal_id, team, channel, str(answer.ts)))
        return _attempt(answer)

    async def _incoming_webhook(self, message: Outbound, op: str, body: dict[str, object]) -> Attempt:
        """A channel given as an incoming-webhook URL: it cannot edit, so each new state of a team's
        message is a new (short) message; it answers a bare ``ok``."""
        url = str(body.pop("channel"))
        client = SlackClient(self.settings.slack_api_url, "", self._client_session(), self.guard)
        attempt = _attempt(await client.post_json(url, {"text": body.get("text", ""), "blocks": body.get("blocks", [])}))
        if attempt.result == "done" and op == "team_message":
            proposal_id, team = int(str(body["proposal_id"])), str(body["team"])
            await self.store.write(lambda db: sql.set_slack_ts(db, proposal_id, team, url, "incoming-webhook"))
        return attempt

    # -- deadline reminders ----------------------------------------------------------------------

    async def _remind_periodically(self) -> None:
        while True:
            try:
                await self.queue_reminders()
                await self.queue_digests()
                if self.store.shared:  # messages of a replica that died mid-send, once their lease ran out
                    await self.store.write(lambda db: sql.recover_running(db, self.clock.now(), expired_only=True))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("deadline reminders failed; trying again later")
            await asyncio.sleep(REMINDER_EVERY_SECONDS)

    async def queue_reminders(self) -> int:
        """A thread reply for each ``migrating by DATE`` two days (or less) away, at most one a day
        per team and pull request (the day is in the idempotency key), after the team's quiet hours."""
        if not self.settings.slack_bot_token:
            return 0
        now = self.clock.now()
        today = time.strftime("%Y-%m-%d", time.gmtime(now))

        def write(db: sqlite_utils.Database) -> int:
            items = []
            for row in sql.open_migrating_acks(db):
                message = sql.get_slack_message(db, row["proposal_id"], row["team"])
                if message is None or message.ts is None:
                    continue
                days = _days_between(today, str(row["deadline"]))
                if days is None or not 0 <= days <= 2:
                    continue
                ask = slack.TeamAsk(
                    proposal_id=row["proposal_id"], team=row["team"], repo=row["repo"], pr_number=row["pr_number"],
                    title=row["title"] or "", author="", page_url=None, changes=(), readers=(),
                    pr_url=slack.pr_web_url(self.settings.github_api_url, row["repo"], row["pr_number"]),
                )
                key = f"slack:{row['proposal_id']}:{row['team']}"
                body = {"op": "reminder", "proposal_id": row["proposal_id"], "team": row["team"],
                        "channel": message.channel, **slack.reminder(ask, str(row["deadline"]), days)}
                prefs = sql.team_prefs(db, row["team"])
                later = slack.quiet_until(now, prefs.quiet_hours if prefs else None)
                items.append(sql.NewOutbound(f"{key}:reminder:{today}", "slack", "slack.reminder", key, body,
                                             run_after=later))
            return sql.enqueue(db, items, now) if items else 0

        added = await self.store.write(write)
        if added:
            self.notify()
        return int(added)


    async def queue_digests(self) -> int:
        """Each digest team's daily message, once its ``digest_at`` (UTC) has passed today: the pull
        requests still waiting for it. One a day (the date is in the idempotency key); none when
        nothing waits."""
        if not self.settings.slack_bot_token:
            return 0
        now = self.clock.now()
        today = time.strftime("%Y-%m-%d", time.gmtime(now))
        minute = int(now % 86400 // 60)

        def write(db: sqlite_utils.Database) -> int:
            items = []
            for prefs in sql.digest_teams(db):
                due = slack.minute_of(prefs.digest_at or "")
                if due is None or minute < due:
                    continue
                asks = sql.open_asks(db, prefs.team)
                if not asks:
                    continue
                content = slack.digest(prefs.team, asks, lambda repo, number: slack.pr_web_url(
                    self.settings.github_api_url, repo, number))
                key = f"slack:digest:{prefs.team}:{today}"
                items.append(sql.NewOutbound(key, "slack", "slack.digest", key,
                                             {"op": "post", "channel": prefs.channel, **content}))
            return sql.enqueue(db, items, now) if items else 0

        added = await self.store.write(write)
        if added:
            self.notify()
        return int(added)


def _attempt(answer: SlackAnswer) -> Attempt:
    if answer.ok:
        return Attempt("done", answer.status)
    error = answer.error or f"HTTP {answer.status}"
    if answer.transient:
        return Attempt("retry", answer.status, f"Slack: {error}", answer.retry_after)
    return Attempt("failed", answer.status, f"Slack: {error}")


def _days_between(today: str, deadline: str) -> int | None:
    try:
        return (dt.date.fromisoformat(deadline[:10]) - dt.date.fromisoformat(today)).days
    except ValueError:
        return None


def _disable(db: sqlite_utils.Database, subscription_id: int, failures: int, error: str | None, now: float) -> None:
    """Disable a failing subscription; tell its team (audit log, and its Slack channel if any)."""
    subscription = sql.get_subscription(db, subscription_id)
    if subscription is None or not subscription.active:
        return
    reason = f"disabled after {failures} failed deliveries in a row (last: {error or 'unknown'})"
    sql.disable_subscription(db, subscription_id, reason, now)
    sql.fail_pending(db, subscription_id, "the subscription was disabled", now)
    log_sql.audit(db, actor="tessera", action="subscription_disabled", team=subscription.team,
                  detail={"subscription_id": subscription_id, "url": subscription.url, "reason": reason})
    channel = sql.team_channels(db).get(subscription.team)
    if channel:
        text = (f"Tessera disabled {subscription.team}'s webhook subscription {subscription_id} ({subscription.url}): "
                f"{reason}. Fix the receiver, then PATCH /api/v1/subscriptions/{subscription_id} "
                '{"active": true} and redeliver what failed.')
        body = {"op": "post", "channel": channel, **slack.notice(text)}
        key = f"slack:notice:subscription:{subscription_id}:{int(now)}"
        sql.enqueue(db, [sql.NewOutbound(key, "slack", "slack.notice", key, body)], now)
