"""Outbound webhooks: subscriptions, signatures, retries, disabling, redelivery, and the SSRF guard."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from app.config import Settings
from app.notify.outbox import OutboundPolicyRetry, OutboundQueue
from app.notify.ssrf import OutboundPolicy
from app.store import notify as notify_sql
from app.store import proposals as proposal_sql
from tests.app import notify_support as support
from tests.app import registry_support
from tests.app.notify_support import drop_plan_code
from tests.app.registry_support import Api
from tests.app.workflow_support import PullRequestFlow
from tests.fakeslack import FakeSlack, FakeSubscriber
from tests.fixtures_app import FakeClock, wait_until

fake_slack, subscriber, notify_settings, slack_flow = (
    support.fake_slack, support.subscriber, support.notify_settings, support.slack_flow)
api, api_settings = registry_support.api, registry_support.api_settings
ADMIN = {"Authorization": "Bearer bootstrap-key-for-tests-0123456789"}
SECRET = "whsec_growth_receiver_secret_0123456789"


async def _api(flow_or_client: Any, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    client = getattr(flow_or_client, "client", flow_or_client)
    response = await client.request(method, f"/api/v1{path}", headers=ADMIN, **kwargs)
    text = await response.text()
    return response.status, json.loads(text) if text else None


async def _subscribe(flow: Any, url: str, events: list[str], **extra: Any) -> dict[str, Any]:
    status, body = await _api(flow, "POST", "/teams", json={"slug": "growth", "name": "Growth"})
    assert status in (201, 409), body
    status, body = await _api(flow, "POST", "/subscriptions", json={"team": "growth", "url": url, "events": events,
                                                                  **extra})
    assert status == 201, body
    return body


def _documented_recipe(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """README, "Verifying Tessera's webhooks", step by step, independent of Tessera's code."""
    timestamp = headers["X-Tessera-Timestamp"]
    if abs(time.time() - int(timestamp)) > 300:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Tessera-Signature-256"])


async def test_a_breaking_pr_reaches_a_subscriber_signed_so_the_documented_recipe_verifies_it(
    slack_flow: PullRequestFlow, subscriber: FakeSubscriber
) -> None:
    flow = slack_flow
    await _subscribe(flow, subscriber.url, ["proposal.opened", "proposal.ack_required", "proposal.acked"],
                     secret=SECRET)
    pull = await drop_plan_code(flow)
    await wait_until(lambda: len(subscriber.received) >= 2, timeout=10)
    await flow.comment(pull, "/tessera ack", user="gina")
    await wait_until(lambda: len(subscriber.received) >= 3, timeout=10)
    events = [r.headers["X-Tessera-Event"] for r in subscriber.received]
    assert sorted(events) == ["proposal.ack_required", "proposal.acked", "proposal.opened"]
    for received in subscriber.received:
        assert _documented_recipe(SECRET, received.headers, received.body)
        assert not _documented_recipe("another-secret-entirely-000000", received.headers, received.body)
        assert received.json["event"] == received.headers["X-Tessera-Event"]
        assert received.json["id"] == received.headers["X-Tessera-Delivery"]
    [asked] = [r.json for r in subscriber.received if r.json["event"] == "proposal.ack_required"]
    assert asked["data"]["team"] == "growth" and asked["data"]["proposal"]["pr_number"] == pull.number
    assert {c["column"] for c in asked["data"]["changes"]} == {"plan_code"}
    # A re-run of the same work (a recheck) stores no event twice.
    await flow.comment(pull, "/tessera recheck", user="gina")
    await support.outbox_of(flow).run_until_idle()
    assert len(subscriber.received) == 3


async def test_a_generated_secret_is_shown_once_and_never_listed(slack_flow: PullRequestFlow, subscriber: FakeSubscriber) -> None:
    made = await _subscribe(slack_flow, subscriber.url, ["audit.alert"])
    assert made["secret"].startswith("whsec_")
    status, listed = await _api(slack_flow, "GET", "/subscriptions")
    assert status == 200 and [s["id"] for s in listed["items"]] == [made["id"]]
    assert "secret" not in listed["items"][0]
    status, one = await _api(slack_flow, "GET", f"/subscriptions/{made['id']}")
    assert status == 200 and "secret" not in one


async def _queue_event(store: Any, subscription_id: int, key: str, now: float) -> None:
    item = notify_sql.NewOutbound(f"webhook:{subscription_id}:audit.alert:{key}", "webhook", "audit.alert",
                                  f"webhook:{subscription_id}:{key}", {"data": {"asset": "fct_revenue"}},
                                  subscription_id=subscription_id)
    await store.write(lambda db: notify_sql.enqueue(db, [item], now))


async def test_retries_honour_retry_after_then_deliver_once(
    slack_flow: PullRequestFlow, subscriber: FakeSubscriber, notify_settings: Settings
) -> None:
    made = await _subscribe(slack_flow, subscriber.url, ["audit.alert"], secret=SECRET)
    await support.outbox_of(slack_flow).stop()  # this test's queue sends, on its fake clock: not the App's
    clock = FakeClock(start=time.time())
    subscriber.answer((429, {"Retry-After": "120"}), 503, 204)
    await _queue_event(slack_flow.store, made["id"], "r1", clock.now())
    queue = OutboundQueue(slack_flow.store, notify_settings, clock=clock, rng=lambda: 0.0)
    assert await queue.run_until_idle() == 3
    assert clock.sleeps[0] >= 120  # what the receiver asked for, not the 1 s back-off
    assert len(subscriber.received) == 3
    assert len({r.headers["X-Tessera-Delivery"] for r in subscriber.received}) == 1
    status, log = await _api(slack_flow, "GET", f"/subscriptions/{made['id']}/deliveries")
    [delivery] = log["items"]
    assert status == 200 and delivery["status"] == "done" and delivery["attempts"] == 3


async def test_repeated_failure_disables_the_subscription_tells_the_team_and_redelivery_works_after(
    slack_flow: PullRequestFlow, subscriber: FakeSubscriber, fake_slack: FakeSlack, notify_settings: Settings
) -> None:
    flow = slack_flow
    made = await _subscribe(flow, subscriber.url, ["audit.alert"], secret=SECRET)
    status, _ = await _api(flow, "POST", "/slack/channels", json={"team": "growth", "channel": "#data-growth"})
    assert status == 200
    await support.outbox_of(flow).stop()
    clock = FakeClock(start=time.time())
    subscriber.answer(500, 500)
    for key in ("a", "b", "c"):
        await _queue_event(flow.store, made["id"], key, clock.now())
    queue = OutboundQueue(flow.store, notify_settings, clock=clock,
                          policy=OutboundPolicyRetry(max_attempts=1, disable_after=2))
    await queue.run_until_idle()

    status, sub = await _api(flow, "GET", f"/subscriptions/{made['id']}")
    assert sub["active"] is False and "2 failed deliveries in a row" in sub["disabled_reason"]
    assert len(subscriber.received) == 2  # the third was not sent to a disabled receiver
    log = await flow.store.read(lambda db: proposal_sql.list_audit(db, action="subscription_disabled"))
    assert [e["team"] for e in log] == ["growth"]
    [notice] = fake_slack.in_channel("C0GROWTH")
    assert "disabled growth's webhook subscription" in notice.text

    status, deliveries = await _api(flow, "GET", f"/subscriptions/{made['id']}/deliveries")
    first = deliveries["items"][-1]
    assert first["status"] == "failed" and first["last_status"] == 500
    status, body = await _api(flow, "POST", f"/subscriptions/{made['id']}/deliveries/{first['id']}/redeliver")
    assert status == 409 and "disabled" in body["error"]["message"]
    status, _ = await _api(flow, "PATCH", f"/subscriptions/{made['id']}", json={"active": True})
    assert status == 200
    status, body = await _api(flow, "POST", f"/subscriptions/{made['id']}/deliveries/{first['id']}/redeliver")
    assert status == 202 and body["status"] == "queued"
    await queue.run_until_idle()
    assert len(subscriber.received) == 3 and subscriber.received[-1].headers["X-Tessera-Delivery"] == \
        subscriber.received[0].headers["X-Tessera-Delivery"]
    status, one = await _api(flow, "GET", f"/subscriptions/{made['id']}/deliveries")
    assert [d["status"] for d in one["items"]][-1] == "done"


# --- the SSRF guard -------------------------------------------------------------------------------


async def test_a_subscription_to_loopback_or_the_metadata_service_is_refused(api: Api) -> None:
    await api.team("growth")
    for url in ("http://127.0.0.1:8080/hook", "http://169.254.169.254/latest/meta-data/", "http://[::1]/x",
                "http://10.0.0.7/hook", "ftp://example.com/x", "http://user:pw@example.com/"):
        status, body = await api.call("POST", "/subscriptions", json={"team": "growth", "url": url,
                                                                     "events": ["audit.alert"]})
        assert status == 400, (url, body)
        assert body["error"]["code"] == "invalid_body"
    status, body = await api.call("POST", "/subscriptions", json={
        "team": "growth", "url": "http://169.254.169.254/latest/meta-data/", "events": ["audit.alert"]})
    assert "link-local" in body["error"]["message"]


async def test_without_the_allow_list_deliveries_to_local_receivers_are_refused_at_connect(
    store: Any, app_settings: Settings, subscriber: FakeSubscriber
) -> None:
    """A name is checked where it resolves: ``localhost`` reaches 127.0.0.1 and is refused there."""
    clock = FakeClock(start=time.time())
    now = clock.now()
    urls = [subscriber.url, subscriber.url.replace("127.0.0.1", "localhost"), "http://169.254.169.254/latest/"]
    ids = []
    for url in urls:
        made = await store.write(lambda db, url=url: notify_sql.create_subscription(
            db, team="growth", url=url, events=["audit.alert"], secret=SECRET, description="", created_by="t", now=now))
        ids.append(made.id)
        await _queue_event(store, made.id, "x", now)
    queue = OutboundQueue(store, app_settings, clock=clock)  # no outbound_allow
    try:
        await queue.run_until_idle()
    finally:
        await queue.stop()
    assert subscriber.received == []
    for subscription_id in ids:
        [delivery] = await store.read(lambda db, s=subscription_id: notify_sql.list_outbound(db, subscription_id=s))
        assert delivery.status == "failed" and delivery.attempts == 1, delivery
        assert delivery.last_error.startswith("refused") and ("loopback" in delivery.last_error
                                                              or "link-local" in delivery.last_error)


async def test_a_redirect_is_never_followed(store: Any, notify_settings: Settings, subscriber: FakeSubscriber) -> None:
    clock = FakeClock(start=time.time())
    made = await store.write(lambda db: notify_sql.create_subscription(
        db, team="growth", url=subscriber.url, events=["audit.alert"], secret=SECRET, description="", created_by="t",
        now=clock.now()))
    subscriber.answer((302, {"Location": subscriber.url.replace("/hook", "/internal")}))
    await _queue_event(store, made.id, "r", clock.now())
    queue = OutboundQueue(store, notify_settings, clock=clock)
    try:
        await queue.run_until_idle()
    finally:
        await queue.stop()
    [delivery] = await store.read(lambda db: notify_sql.list_outbound(db, subscription_id=made.id))
    assert delivery.status == "failed" and "redirects are not followed" in (delivery.last_error or "")
    assert subscriber.hits.get("/internal") is None


def test_the_policy_refuses_every_non_global_address_unless_allowed() -> None:
    policy = OutboundPolicy()
    for address in ("127.0.0.1", "169.254.169.254", "10.1.2.3", "192.168.0.1", "172.16.0.1", "100.64.0.1",
                    "0.0.0.0", "::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "224.0.0.1"):
        assert policy.refusal(address) is not None, address
    assert policy.refusal("93.184.216.34") is None
    allowed = OutboundPolicy.from_cidrs(["10.1.0.0/16"])
    assert allowed.refusal("10.1.2.3") is None and allowed.refusal("10.2.0.1") is not None


async def test_an_audit_alert_is_sent_when_it_fires_and_again_when_it_clears(
    slack_flow: PullRequestFlow, subscriber: FakeSubscriber
) -> None:
    registry = Api(client=slack_flow.client, store=slack_flow.store)
    await registry.warehouse()
    await _subscribe(slack_flow, subscriber.url, ["audit.alert"], secret=SECRET)
    failing = {"run_id": "r1", "status": "failed", "results": [{"id": "not_null_plan_code", "passed": False}]}
    status, body = await registry.call("POST", "/assets/fct_revenue/audits", json=failing)
    assert status == 201, body
    [fired] = await wait_until(lambda: subscriber.received, timeout=10)
    assert fired.json["event"] == "audit.alert"
    data = fired.json["data"]
    assert data["asset"] == "fct_revenue" and data["team"] == "finance" and data["run_id"] == "r1"
    assert {(a["code"], a["state"]) for a in data["alerts"]} >= {("latest_run_failed", "firing")}
    passing = {"run_id": "r2", "status": "passed", "results": [{"id": "not_null_plan_code", "passed": True}]}
    status, _ = await registry.call("POST", "/assets/fct_revenue/audits", json=passing)
    await wait_until(lambda: len(subscriber.received) >= 2, timeout=10)
    cleared = subscriber.received[1].json["data"]["alerts"]
    assert ("latest_run_failed", "cleared") in {(a["code"], a["state"]) for a in cleared}
    assert _documented_recipe(SECRET, subscriber.received[1].headers, subscriber.received[1].body)
