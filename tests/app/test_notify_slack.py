"""Slack: one message per team per pull request, updated in place; outages; the Acknowledge button."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from app.notify import slack
from app.notify.outbox import OutboundQueue
from app.store import notify as notify_sql
from app.store import proposals as proposal_sql
from tests.app import notify_support as support
from tests.app.notify_support import GROWTH_CHANNEL, ack_press, drop_plan_code, outbox_of, signed_interaction
from tests.app.workflow_support import PullRequestFlow
from tests.fakeslack import FakeSlack
from tests.fixtures_app import wait_until

ADMIN = {"Authorization": "Bearer bootstrap-key-for-tests-0123456789"}
fake_slack, subscriber, notify_settings, slack_flow = (
    support.fake_slack, support.subscriber, support.notify_settings, support.slack_flow)


def _buttons(message: Any) -> list[str]:
    return [e["text"]["text"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]


def _text(message: Any) -> str:
    return "\n".join(b["text"]["text"] for b in message.blocks if b["type"] == "section")


async def _proposal(flow: PullRequestFlow, pull: Any) -> Any:
    return await flow.store.read(lambda db: proposal_sql.get_proposal(db, flow.repo.id, pull.number))


async def test_the_3am_story_sends_one_message_to_growth_and_updates_it_when_growth_acks(
    slack_flow: PullRequestFlow, fake_slack: FakeSlack
) -> None:
    flow = slack_flow
    pull = await drop_plan_code(flow)
    [message] = await wait_until(lambda: fake_slack.in_channel(GROWTH_CHANNEL), timeout=10)
    text = _text(message)
    assert "Acknowledgement needed" in text and "plan_code" in text and "COLUMN_REMOVED" in text
    assert "revenue dashboard" in text.lower() or "exposure" in text
    assert f"acme/warehouse#{pull.number}" in text
    assert _buttons(message) == ["Acknowledge", "Open proposal", "Open pull request"]

    await flow.comment(pull, "/tessera ack", user="gina")
    await wait_until(lambda: message.edits >= 1, timeout=10)
    assert "Acknowledged* by gina" in _text(message)
    assert "Acknowledge" not in _buttons(message)
    assert flow.check(pull).conclusion == "success"
    # Exactly one message in Growth's channel, ever; nothing for Finance (the producer is not asked).
    assert len(fake_slack.in_channel(GROWTH_CHANNEL)) == 1
    assert [c.arguments["channel"] for c in fake_slack.posted()] == ["#data-growth"]
    assert all(c.arguments["ts"] == message.ts for c in fake_slack.calls if c.method == "chat.update")


async def test_a_merge_updates_the_message_in_place_and_a_recheck_sends_nothing_new(
    slack_flow: PullRequestFlow, fake_slack: FakeSlack
) -> None:
    flow = slack_flow
    pull = await drop_plan_code(flow)
    [message] = await wait_until(lambda: fake_slack.in_channel(GROWTH_CHANNEL), timeout=10)
    calls = len(fake_slack.calls)
    await flow.comment(pull, "/tessera recheck", user="gina")
    await outbox_of(flow).run_until_idle()
    assert len(fake_slack.calls) == calls  # same state: no call at all

    pull.merged, pull.state = True, "closed"
    await flow.deliver("pull_request", flow.pull_payload(pull, "closed"))
    await wait_until(lambda: "Merged" in _text(message), timeout=10)
    assert len(fake_slack.in_channel(GROWTH_CHANNEL)) == 1 and "Acknowledge" not in _buttons(message)


async def test_a_slack_outage_of_ten_minutes_loses_nothing_and_sends_nothing_twice(
    slack_flow: PullRequestFlow, fake_slack: FakeSlack, notify_settings: Any
) -> None:
    flow = slack_flow
    await outbox_of(flow).stop()  # the test drives Slack delivery itself, on a clock it controls
    clock = support.clock_at_now()
    fake_slack.clock = clock.now
    fake_slack.outage(status=503, until=clock.now() + 600)
    start = clock.now()
    pull = await drop_plan_code(flow)
    await flow.comment(pull, "/tessera ack", user="gina")  # Growth acks while Slack is down
    assert flow.check(pull).conclusion == "success"  # PR work never waited for Slack

    queue = OutboundQueue(flow.store, notify_settings, clock=clock)
    await queue.run_until_idle()
    failed = [c for c in fake_slack.calls if c.status == 503]
    assert len(failed) >= 3 and clock.now() - start >= 600
    [message] = fake_slack.in_channel(GROWTH_CHANNEL)
    assert "Acknowledged* by gina" in _text(message)  # the latest state, not a stale one
    assert len(fake_slack.posted()) == 1

    # A restart (a new queue over the same store) sends nothing again.
    calls = len(fake_slack.calls)
    again = OutboundQueue(flow.store, notify_settings, clock=clock)
    await again.start()
    await again.stop()
    assert await again.run_until_idle() == 0 and len(fake_slack.calls) == calls


async def test_a_rate_limited_call_waits_for_slacks_retry_after(
    slack_flow: PullRequestFlow, fake_slack: FakeSlack, notify_settings: Any
) -> None:
    flow = slack_flow
    await outbox_of(flow).stop()
    clock = support.clock_at_now()
    fake_slack.clock = clock.now
    fake_slack.outage(status=429, until=clock.now() + 30, retry_after=45)
    await drop_plan_code(flow)
    started = clock.now()
    queue = OutboundQueue(flow.store, notify_settings, clock=clock, rng=lambda: 0.0)
    await queue.run_until_idle()
    [limited] = [c for c in fake_slack.calls if c.status == 429]
    assert limited.answer == {"ok": False, "error": "ratelimited"}
    assert clock.sleeps and max(clock.sleeps) >= 45 and clock.now() - started >= 45
    assert len(fake_slack.posted()) == 1


async def test_an_unknown_channel_fails_the_message_for_good_and_says_why(
    slack_flow: PullRequestFlow, fake_slack: FakeSlack
) -> None:
    flow = slack_flow
    fake_slack.channels.pop("#data-growth")
    await drop_plan_code(flow)

    async def failed() -> Any:
        items = await flow.store.read(lambda db: notify_sql.list_outbound(db, kind="slack"))
        return [m for m in items if m.status == "failed"]

    [message] = await wait_until(failed, timeout=10)
    assert message.last_error == "Slack: channel_not_found" and message.attempts == 1


# --- interactivity --------------------------------------------------------------------------------


async def _press(flow: PullRequestFlow, payload: dict[str, Any], **signing: Any) -> tuple[int, Any]:
    body, headers = signed_interaction(payload, **signing)
    response = await flow.client.post("/slack/interactions", data=body, headers=headers)
    text = await response.text()
    return response.status, json.loads(text) if text else None


async def _acks(flow: PullRequestFlow, proposal_id: int) -> dict[str, Any]:
    return await flow.store.read(lambda db: proposal_sql.list_acks(db, proposal_id))


async def test_the_acknowledge_button_acks_for_a_linked_member_with_the_same_audit_trail(
    slack_flow: PullRequestFlow, fake_slack: FakeSlack
) -> None:
    flow = slack_flow
    pull = await drop_plan_code(flow)
    [message] = await wait_until(lambda: fake_slack.in_channel(GROWTH_CHANNEL), timeout=10)
    proposal = await _proposal(flow, pull)
    await flow.store.write(lambda db: notify_sql.link_slack_user(db, "U0GINA", "gina", "test", time.time()))

    status, answer = await _press(flow, ack_press("U0GINA", proposal.id, "growth", fake_slack.response_url("gina")))
    assert status == 200 and "Acknowledging for growth as @gina" in answer["text"]
    await wait_until(lambda: any(r["name"] == "gina" for r in fake_slack.responses), timeout=10)
    assert fake_slack.responses[-1]["text"] == "Acknowledged for growth as @gina."
    assert (await _acks(flow, proposal.id))["growth"].user == "gina"
    assert flow.check(pull).conclusion == "success"
    log = await flow.store.read(lambda db: proposal_sql.list_audit(db, action="ack"))
    assert [(e["actor"], e["team"], e["pr_number"]) for e in log] == [("gina", "growth", pull.number)]
    await wait_until(lambda: message.edits >= 1, timeout=10)
    assert "Acknowledged* by gina" in _text(message)


async def test_forged_replayed_unlinked_and_non_member_presses_are_refused(
    slack_flow: PullRequestFlow, fake_slack: FakeSlack
) -> None:
    flow = slack_flow
    pull = await drop_plan_code(flow)
    proposal = await _proposal(flow, pull)
    await flow.store.write(lambda db: notify_sql.link_slack_user(db, "U0MALLORY", "mallory", "test", time.time()))
    await flow.store.write(lambda db: notify_sql.link_slack_user(db, "U0GINA", "gina", "test", time.time()))

    status, answer = await _press(flow, ack_press("U0GINA", proposal.id, "growth", fake_slack.response_url()),
                                  secret="not-the-signing-secret")
    assert status == 401 and "signature" in answer["error"]["message"]
    status, answer = await _press(flow, ack_press("U0GINA", proposal.id, "growth", fake_slack.response_url()),
                                  timestamp=time.time() - 600)
    assert status == 401 and "five minutes" in answer["error"]["message"]
    body, headers = signed_interaction(ack_press("U0NOBODY", proposal.id, "growth", fake_slack.response_url()))
    first = await flow.client.post("/slack/interactions", data=body, headers=headers)
    assert first.status == 200 and "not linked" in (await first.json())["text"]
    replay = await flow.client.post("/slack/interactions", data=body, headers=headers)
    assert replay.status == 401

    status, _ = await _press(flow, ack_press("U0MALLORY", proposal.id, "growth", fake_slack.response_url("mallory")))
    assert status == 200
    await wait_until(lambda: any(r["name"] == "mallory" for r in fake_slack.responses), timeout=10)
    [reply] = [r for r in fake_slack.responses if r["name"] == "mallory"]
    assert "only active members of @acme/growth can speak for it" in reply["text"]
    assert reply["response_type"] == "ephemeral"
    assert await _acks(flow, proposal.id) == {}
    assert flow.check(pull).conclusion == "action_required"


async def test_a_migrating_deadline_two_days_away_is_reminded_once_a_day_in_the_thread(
    slack_flow: PullRequestFlow, fake_slack: FakeSlack
) -> None:
    flow = slack_flow
    pull = await drop_plan_code(flow)
    [message] = await wait_until(lambda: fake_slack.in_channel(GROWTH_CHANNEL), timeout=10)
    by = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2)).isoformat()
    await flow.comment(pull, f"/tessera migrating by {by}", user="gina")
    await wait_until(lambda: "Migrating" in _text(message), timeout=10)
    queue = outbox_of(flow)
    assert await queue.queue_reminders() == 1
    assert await queue.queue_reminders() == 0  # at most one a day
    [reminder] = await wait_until(lambda: fake_slack.thread(message.ts), timeout=10)
    assert f"migrated by {by} (in 2 days)" in reminder.text and reminder.channel == GROWTH_CHANNEL


# --- options: quiet hours and a daily digest -----------------------------------------------------


def test_quiet_hours_end_where_they_say_even_across_midnight() -> None:
    day = dt.datetime(2026, 12, 5, tzinfo=dt.UTC).timestamp()
    assert slack.quiet_until(day + 23 * 3600, "22:00-07:00") == day + 86400 + 7 * 3600
    assert slack.quiet_until(day + 3 * 3600, "22:00-07:00") == day + 7 * 3600
    assert slack.quiet_until(day + 12 * 3600, "22:00-07:00") is None
    assert slack.quiet_until(day + 12 * 3600, "12:00-13:30") == day + 13.5 * 3600
    assert slack.quiet_until(day, "nonsense") is None and slack.quiet_until(day, None) is None


def _window_around_now() -> str:
    now = dt.datetime.now(dt.UTC)
    start, end = now - dt.timedelta(hours=1), now + dt.timedelta(hours=1)
    return f"{start:%H:%M}-{end:%H:%M}"


async def _set_channel(flow: PullRequestFlow, **options: Any) -> None:
    response = await flow.client.post("/api/v1/slack/channels", headers=ADMIN,
                                      json={"team": "growth", "channel": "#data-growth", **options})
    assert response.status == 200, await response.text()


async def test_a_new_ask_waits_out_the_teams_quiet_hours(
    slack_flow: PullRequestFlow, fake_slack: FakeSlack, notify_settings: Any
) -> None:
    flow = slack_flow
    await _set_channel(flow, quiet_hours=_window_around_now())
    await drop_plan_code(flow)
    [waiting] = await flow.store.read(lambda db: notify_sql.list_outbound(db, kind="slack"))
    assert waiting.status == "queued" and waiting.run_after > time.time() + 50 * 60
    assert fake_slack.calls == []
    await outbox_of(flow).stop()
    clock = support.clock_at_now()
    await OutboundQueue(flow.store, notify_settings, clock=clock).run_until_idle()
    assert len(fake_slack.in_channel(GROWTH_CHANNEL)) == 1 and clock.now() >= waiting.run_after


async def test_a_digest_team_gets_one_daily_message_instead_of_one_per_pull_request(
    slack_flow: PullRequestFlow, fake_slack: FakeSlack
) -> None:
    flow = slack_flow
    await _set_channel(flow, digest_at="00:00")
    first = await drop_plan_code(flow)
    second = await drop_plan_code(flow)
    queue = outbox_of(flow)
    await queue.run_until_idle()
    assert fake_slack.calls == []
    assert await queue.queue_digests() == 1
    assert await queue.queue_digests() == 0  # one a day
    [digest] = await wait_until(lambda: fake_slack.in_channel(GROWTH_CHANNEL), timeout=10)
    assert "2 pull requests wait for growth" in _text(digest)
    assert f"#{first.number}>" in _text(digest) and f"#{second.number}>" in _text(digest)


async def test_an_incoming_webhook_channel_gets_the_ask_and_then_the_outcome_without_a_button(
    slack_flow: PullRequestFlow, fake_slack: FakeSlack
) -> None:
    """The simplest setup: no bot, so no button and no edits; each new state is a new message."""
    flow = slack_flow
    hook = f"{fake_slack.url}/services/T0ACME/B0GROWTH/secretpart"
    await _set_channel(flow, channel=hook)
    listed = await (await flow.client.get("/api/v1/slack/channels", headers=ADMIN)).json()
    assert listed["items"] == [{"team": "growth", "channel": "incoming webhook (127.0.0.1)"}]  # the URL is a secret
    flow.repo.commit({".tessera.yml": support.SLACK_CONFIG.replace(', slack: "#data-growth"', "")},
                     parent="main", branch="main")  # the channel comes from the API alone
    pull = await drop_plan_code(flow)
    [asked] = await wait_until(lambda: fake_slack.incoming, timeout=10)
    text = asked["blocks"][0]["text"]["text"]
    assert "Acknowledgement needed" in text and "/tessera ack growth" in text
    assert all(e["text"]["text"] != "Acknowledge" for b in asked["blocks"] if b["type"] == "actions"
               for e in b["elements"])
    await flow.comment(pull, "/tessera ack", user="gina")
    await wait_until(lambda: len(fake_slack.incoming) == 2, timeout=10)
    assert "Acknowledged* by gina" in fake_slack.incoming[1]["blocks"][0]["text"]["text"]
    assert fake_slack.calls == []  # no Web API call at all


async def test_an_incoming_webhook_elsewhere_than_slack_is_refused(slack_flow: PullRequestFlow) -> None:
    response = await slack_flow.client.post("/api/v1/slack/channels", headers=ADMIN, json={
        "team": "growth", "channel": "https://attacker.example/services/x"})
    assert response.status == 400 and "hooks.slack.com" in (await response.json())["error"]["message"]


async def test_odd_interaction_bodies_are_answered_never_a_crash(slack_flow: PullRequestFlow) -> None:
    flow = slack_flow
    for payload in ({"type": "view_submission"}, {"type": "block_actions", "actions": [{"action_id": "tessera_ack",
                                                                                       "value": "{not json"}]},
                    {"type": "block_actions", "user": {"id": "U0GINA"}, "actions": "nope"}):
        status, _ = await _press(flow, payload)
        assert status == 200
    body, headers = signed_interaction({"type": "block_actions"})
    response = await flow.client.post("/slack/interactions", data=b"payload=%FF%FE" + b"x" * 10, headers=headers)
    assert response.status == 401  # signed for another body
    big, headers = signed_interaction({"type": "block_actions", "pad": "x" * 70_000})
    response = await flow.client.post("/slack/interactions", data=big, headers=headers)
    assert response.status == 413
    jobs = await flow.store.list_deliveries()
    assert not any(d.event == "tessera_slack_action" for d in jobs)  # nothing was queued for them


async def test_without_a_signing_secret_interactions_are_not_served(make_client: Any, app_settings: Any) -> None:
    client = await make_client(app_settings, start_workers=False)
    body, headers = signed_interaction({"type": "block_actions"})
    response = await client.post("/slack/interactions", data=body, headers=headers)
    assert response.status == 404 and "TESSERA_SLACK_SIGNING_SECRET" in (await response.json())["error"]["message"]


async def test_a_crash_after_slack_answered_edits_the_message_instead_of_posting_it_again(
    slack_flow: PullRequestFlow, fake_slack: FakeSlack, notify_settings: Any
) -> None:
    """The process died after Slack posted the message (its ts stored) but before the message was
    marked done: at the next start it is sent again, and finds the ts, so it edits in place."""
    flow = slack_flow
    await drop_plan_code(flow)
    [message] = await wait_until(lambda: fake_slack.in_channel(GROWTH_CHANNEL), timeout=10)
    await outbox_of(flow).stop()
    [sent] = await flow.store.read(lambda db: notify_sql.list_outbound(db, kind="slack"))
    await flow.store.write(lambda db: db.execute("UPDATE outbound SET status = 'running' WHERE id = ?", (sent.id,)))
    restarted = OutboundQueue(flow.store, notify_settings)
    await restarted.start()  # recovers the message left running
    await restarted.stop()
    await restarted.run_until_idle()
    assert len(fake_slack.posted()) == 1 and len(fake_slack.in_channel(GROWTH_CHANNEL)) == 1
    assert [c.arguments["ts"] for c in fake_slack.calls if c.method == "chat.update"] == [message.ts]
