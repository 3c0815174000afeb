"""Security at the edges: signatures, who may override, the App's own words, guessed page links,
keys of a team that is gone.

Signature header decision: Tessera accepts exactly what GitHub sends, ``sha256=`` and 64
lower-case hex digits, compared in constant time; surrounding whitespace is ignored (HTTP allows
optional whitespace around a header value), anything else is refused with 401 and nothing is
stored: upper-case hex, spaces inside, ``sha1=``, a second value. Accepting variants would gain
nothing (GitHub never sends them) and widen what a forger may try.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from app.webhooks import sign
from app.workflow.pages import page_id
from tests.app import registry_support as support
from tests.app.registry_support import Api
from tests.app.test_robustness_payloads import flow, settle
from tests.app.workflow_support import PullRequestFlow
from tests.fixtures_app import WEBHOOK_SECRET, load_webhook, post_delivery

__all__ = ["api", "api_settings", "flow"]

api, api_settings = support.api, support.api_settings
FCT = "models/marts/fct_revenue.sql"


async def open_breaking_pr(flow: PullRequestFlow) -> Any:
    text = flow.repo.files_at("main")[FCT].decode()
    flow.repo.commit({FCT: text.replace("    plan_code,\n", "")}, parent="main", branch="drop")
    pull = flow.repo.open_pull_request(head="drop", author="priya")
    delivery = await settle(flow, "pull_request", flow.pull_payload(pull, "opened"))
    assert delivery.status == "done", delivery.last_error
    return pull


def _variants(body: bytes) -> dict[str, str]:
    good = sign(WEBHOOK_SECRET, body)
    digest = good.removeprefix("sha256=")
    return {
        "other_secret": sign("someone-elses-secret", body),
        "uppercase_hex": "sha256=" + digest.upper(),
        "uppercase_prefix": "SHA256=" + digest,
        "space_inside": "sha256= " + digest,
        "truncated": good[:-2],
        "two_values": f"{good}, {good}",
        "sha1": "sha1=" + digest[:40],
    }


@pytest.mark.parametrize("variant", list(_variants(b"{}")))
async def test_a_signature_github_would_not_send_is_refused_and_nothing_is_stored(
    make_client: Any, store: Any, variant: str
) -> None:
    client = await make_client()
    payload = load_webhook("pull_request", "opened")
    body = json.dumps(payload).encode()
    delivery_id = str(uuid.uuid4())
    response = await post_delivery(client, "pull_request", body, delivery_id=delivery_id, signature=_variants(body)[variant])
    assert response.status == 401
    assert await store.get_delivery(delivery_id) is None


async def test_whitespace_around_the_signature_is_accepted(make_client: Any, store: Any) -> None:
    client = await make_client(start_workers=False)
    body = b'{"zen": "Design for failure."}'
    response = await post_delivery(client, "ping", body, delivery_id="ws-1", signature=f"  {sign(WEBHOOK_SECRET, body)}\t")
    assert response.status == 202
    assert (await store.get_delivery("ws-1")) is not None


@pytest.mark.parametrize("permission", ["write", "maintain", "triage", "read"])
async def test_override_from_anyone_without_admin_permission_is_refused(flow: PullRequestFlow, permission: str) -> None:
    pull = await open_breaking_pr(flow)
    flow.repo.set_permission("wendy", permission)
    flow.fake.add_team_member("acme", "growth", "wendy")
    comment = await flow.comment(pull, "/tessera override we own this pipeline", user="wendy")
    assert flow.reactions(comment) == ["confused"]
    assert flow.check(pull).conclusion == "action_required"
    assert "admin" in flow.replies(pull)[-1].body


async def test_commands_in_the_apps_own_comments_are_never_carried_out(flow: PullRequestFlow) -> None:
    pull = await open_breaking_pr(flow)
    flow.fake.add_team_member("acme", "growth", "tessera[bot]")
    flow.repo.set_permission("tessera[bot]", "admin")
    before = len(flow.fake.requests)
    for user_type, sender_type in (("Bot", "Bot"), ("Bot", "User"), ("User", "Bot")):
        comment = flow.repo.add_comment(
            pull.number, "Commands:\n/tessera ack\n/tessera override because\n", user="tessera[bot]", user_type=user_type
        )
        payload = flow.fake.event_issue_comment(flow.repo, comment)
        payload["sender"]["type"] = sender_type
        delivery = await settle(flow, "issue_comment", payload)
        assert delivery.status == "done", delivery.last_error
        assert flow.reactions(comment) == []
    assert flow.writes(before) == [], "the App answered itself"
    assert flow.check(pull).conclusion == "action_required"


async def test_a_guessed_or_borrowed_check_page_link_shows_nothing(flow: PullRequestFlow) -> None:
    pull = await open_breaking_pr(flow)
    check = flow.check(pull)
    path = urlsplit(check.details_url).path
    signature = path.rsplit(".", 1)[1]
    other_secret = page_id(check.id, "another-secret")
    guesses = [
        f"/checks/{check.id}",
        f"/checks/{check.id}.",
        f"/checks/{check.id}.{signature.upper()}",
        f"/checks/{check.id}.{signature[:-1]}",
        f"/checks/{check.id + 1}.{signature}",
        f"/checks/{other_secret}",
        f"/checks/{check.id}.{quote('é' * 20)}",
        f"/checks/{quote('١٠٠٥')}.{signature}",
        f"/checks/-{check.id}.{signature}",
    ]
    for guess in guesses:
        response = await flow.client.get(guess)
        assert response.status == 404, guess
        assert "plan_code" not in await response.text()
    assert (await flow.client.get(path)).status == 200


async def test_a_key_of_a_deleted_team_stays_refused_even_when_the_slug_is_reused(api: Api) -> None:
    await api.team("growth")
    key = await api.key("growth", ["write"])
    assert (await api.call("GET", "/teams", key=key))[0] == 200
    assert (await api.call("DELETE", "/teams/growth"))[0] == 204
    await api.team("growth")  # a new team under the old name
    for method, path in (("GET", "/teams"), ("GET", "/proposals"), ("POST", "/registrations")):
        status, body = await api.call(method, path, key=key, json={"asset": "fct_revenue"} if method == "POST" else None)
        assert status == 401, (method, path, body)


async def test_an_override_with_a_huge_reason_still_fits_the_comment_and_passes_the_check(flow: PullRequestFlow) -> None:
    pull = await open_breaking_pr(flow)
    flow.repo.set_permission("ada", "admin")
    reason = "the dashboard is retired " * 4000  # ~100 KB on one line
    comment = flow.repo.add_comment(pull.number, "/tessera override " + reason[:60_000], user="ada")
    payload = flow.fake.event_issue_comment(flow.repo, comment)
    payload["comment"]["body"] = "/tessera override " + reason
    delivery = await settle(flow, "issue_comment", payload)
    assert delivery.status == "done", delivery.last_error
    assert flow.reactions(comment) == ["+1"]
    check = flow.check(pull)
    assert check.conclusion == "success" and len(check.output["title"]) <= 1000
    [impact] = flow.impact_comments(pull)
    assert len(impact.body) <= 65_536 and "Overridden by @ada" in impact.body


async def test_a_block_with_a_huge_reason_still_fits_the_comment_and_fails_the_check(flow: PullRequestFlow) -> None:
    pull = await open_breaking_pr(flow)
    flow.fake.add_team_member("acme", "growth", "gina")
    reason = "we still read plan_code in the forecast " * 3000
    comment = flow.repo.add_comment(pull.number, "/tessera block " + reason[:60_000], user="gina")
    payload = flow.fake.event_issue_comment(flow.repo, comment)
    payload["comment"]["body"] = "/tessera block " + reason
    delivery = await settle(flow, "issue_comment", payload)
    assert delivery.status == "done", delivery.last_error
    assert flow.check(pull).conclusion == "failure"
    [impact] = flow.impact_comments(pull)
    assert len(impact.body) <= 65_536 and "forecast" in impact.body


async def test_a_command_naming_thousands_of_teams_is_answered_in_one_short_reply(flow: PullRequestFlow) -> None:
    pull = await open_breaking_pr(flow)
    flow.fake.add_team_member("acme", "growth", "gina")
    teams = " ".join(f"team-{i}" for i in range(5000))
    before = len(flow.fake.requests)
    comment = await flow.comment(pull, f"/tessera ack {teams}", user="gina")
    assert flow.reactions(comment) == ["confused"]
    [reply] = flow.replies(pull)
    assert len(reply.body) < 5000
    assert len(flow.api_calls(before)) < 20, "one API call per named team"
    assert flow.check(pull).conclusion == "action_required"


@pytest.mark.parametrize(
    "command",
    ["/tessera " + "x" * 70_000, "/tessera migrating by " + "9" * 70_000, "/tessera ack " + "y" * 70_000, "/tessera " + "status " * 12_000],
    ids=["giant_verb", "giant_date", "giant_team", "many_words"],
)
async def test_a_giant_command_is_answered_with_a_reply_github_accepts(flow: PullRequestFlow, command: str) -> None:
    pull = await open_breaking_pr(flow)
    flow.fake.add_team_member("acme", "growth", "gina")
    comment = flow.repo.add_comment(pull.number, command[:60_000], user="gina")
    payload = flow.fake.event_issue_comment(flow.repo, comment)
    payload["comment"]["body"] = command
    delivery = await settle(flow, "issue_comment", payload)
    assert delivery.status == "done", delivery.last_error
    assert flow.reactions(comment)
    assert all(len(reply.body) <= 10_000 for reply in flow.replies(pull))
