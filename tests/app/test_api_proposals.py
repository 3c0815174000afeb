"""Proposals through the API, and team responses with the same rules as the PR commands: the check
and the impact comment follow an API ack just as they follow `/tessera ack`."""

from __future__ import annotations

from typing import Any

import pytest

from app.config import Settings
from tests.app import workflow_support
from tests.app.registry_support import ADMIN, BOOTSTRAP, bearer
from tests.app.workflow_support import PullRequestFlow
from tests.fixtures_app import wait_until

pr_flow = workflow_support.pr_flow

FCT = "models/marts/fct_revenue.sql"


@pytest.fixture
def app_settings(app_settings: Settings) -> Settings:
    return app_settings.with_overrides(bootstrap_key=BOOTSTRAP)


async def call(flow: PullRequestFlow, method: str, path: str, headers: dict[str, str] = ADMIN, **kw: Any) -> tuple[int, Any]:
    response = await flow.client.request(method, f"/api/v1{path}", headers=headers, **kw)
    text = await response.text()
    return response.status, (await response.json()) if text else None


async def _team_key(flow: PullRequestFlow, slug: str, github: str, scopes: list[str]) -> dict[str, str]:
    await call(flow, "POST", "/teams", json={"slug": slug, "name": slug.title(), "github_team": github})
    _, made = await call(flow, "POST", f"/teams/{slug}/keys", json={"scopes": scopes})
    return bearer(made["key"])


async def _breaking_pr(flow: PullRequestFlow) -> Any:
    text = flow.repo.files_at("main")[FCT].decode()
    return await flow.open_pr({FCT: text.replace("    plan_code,\n", "")}, author="priya")


async def _proposal_id(flow: PullRequestFlow) -> int:
    _, listed = await call(flow, "GET", "/proposals?status=open")
    return int(listed["items"][0]["id"])


async def test_a_proposal_lists_its_changes_required_teams_and_verdict(pr_flow: PullRequestFlow) -> None:
    await _breaking_pr(pr_flow)
    _, listed = await call(pr_flow, "GET", "/proposals?team=growth")
    assert [(p["repo"], p["required_teams"]) for p in listed["items"]] == [("acme/warehouse", ["growth"])]
    assert (await call(pr_flow, "GET", "/proposals?team=finance"))[1]["items"] == []
    status, proposal = await call(pr_flow, "GET", f"/proposals/{listed['items'][0]['id']}")
    assert status == 200
    assert ("COLUMN_REMOVED", "plan_code") in [(c["rule"], c["column"]) for c in proposal["changes"]]
    assert [r["team"] for r in proposal["required_acks"]] == ["growth"]
    assert proposal["verdict"]["conclusion"] == "action_required"
    assert any(i["consumer"] == "revenue_dashboard" for i in proposal["impacts"])


async def test_an_ack_through_the_api_turns_the_check_green_and_updates_the_comment(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    growth = await _team_key(flow, "growth", "acme/growth", ["write"])
    pull = await _breaking_pr(flow)
    assert flow.check(pull).conclusion == "action_required"
    proposal_id = await _proposal_id(flow)

    status, answer = await call(flow, "POST", f"/proposals/{proposal_id}/acks", headers=growth,
                                json={"team": "growth", "response": "ack"})
    assert status == 201, answer
    assert answer["verdict"]["conclusion"] == "success"
    assert answer["ack"]["team"] == "growth" and answer["ack"]["user"] is None
    await wait_until(lambda: flow.check(pull).conclusion == "success", timeout=10)
    [comment] = flow.impact_comments(pull)
    await wait_until(lambda: "✅ acknowledged" in flow.impact_comments(pull)[0].body, timeout=10)
    assert len(flow.impact_comments(pull)) == 1
    _, log = await call(flow, "GET", "/audit-log?action=ack")
    assert log["items"][0]["team"] == "growth" and log["items"][0]["detail"]["via"] == "api"
    assert log["items"][0]["actor"].startswith("key:") and "(growth)" in log["items"][0]["actor"]


async def test_another_teams_key_cannot_ack_for_growth(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    finance = await _team_key(flow, "finance", "acme/finance-data", ["write"])
    await _breaking_pr(flow)
    proposal_id = await _proposal_id(flow)
    status, body = await call(flow, "POST", f"/proposals/{proposal_id}/acks", headers=finance,
                              json={"team": "growth", "response": "ack"})
    assert status == 403 and "cannot act for team 'growth'" in body["error"]["message"]


async def test_a_team_not_asked_to_respond_cannot_ack(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    await _team_key(flow, "finance", "acme/finance-data", ["write"])
    await _breaking_pr(flow)
    proposal_id = await _proposal_id(flow)
    status, body = await call(flow, "POST", f"/proposals/{proposal_id}/acks", json={"team": "finance", "response": "ack"})
    assert status == 409 and "asked: growth" in body["error"]["message"]


async def test_an_api_ack_cannot_be_put_in_a_persons_name(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    growth = await _team_key(flow, "growth", "acme/growth", ["write"])
    pull = await _breaking_pr(flow)
    proposal_id = await _proposal_id(flow)
    status, body = await call(flow, "POST", f"/proposals/{proposal_id}/acks", headers=growth,
                              json={"team": "growth", "response": "ack", "user": "gina"})
    assert status == 400 and "recorded as your key's team" in body["error"]["message"]
    _, proposal = await call(flow, "GET", f"/proposals/{proposal_id}")
    assert proposal["acks"] == [] and proposal["verdict"]["conclusion"] == "action_required"
    assert flow.check(pull).conclusion == "action_required"


async def test_a_block_needs_a_reason_and_fails_the_check(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _breaking_pr(flow)
    proposal_id = await _proposal_id(flow)
    status, body = await call(flow, "POST", f"/proposals/{proposal_id}/acks", json={"team": "growth", "response": "block"})
    assert status == 400 and "reason" in body["error"]["message"]
    status, answer = await call(flow, "POST", f"/proposals/{proposal_id}/acks",
                                json={"team": "growth", "response": "block", "reason": "the board deck reads it"})
    assert status == 201 and answer["verdict"]["conclusion"] == "failure"
    await wait_until(lambda: flow.check(pull).conclusion == "failure", timeout=10)


async def test_migrating_records_the_deadline_and_keeps_the_check_waiting(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    await _breaking_pr(flow)
    proposal_id = await _proposal_id(flow)
    status, answer = await call(flow, "POST", f"/proposals/{proposal_id}/acks",
                                json={"team": "growth", "response": "migrating", "deadline": "2026-12-31"})
    assert status == 201
    assert answer["ack"]["deadline"] == "2026-12-31"
    assert answer["verdict"]["conclusion"] == "action_required"


async def test_an_unknown_proposal_is_404(pr_flow: PullRequestFlow) -> None:
    assert (await call(pr_flow, "GET", "/proposals/999"))[0] == 404
    assert (await call(pr_flow, "GET", "/proposals/abc"))[0] == 404
    status, _ = await call(pr_flow, "POST", "/proposals/999/acks", json={"team": "growth", "response": "ack"})
    assert status == 404


async def test_deliveries_are_listed_for_admins_and_can_be_replayed(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    await _breaking_pr(flow)
    read = await _team_key(flow, "growth", "acme/growth", ["read"])
    assert (await call(flow, "GET", "/deliveries", headers=read))[0] == 403
    _, listed = await call(flow, "GET", "/deliveries")
    delivery = listed["items"][0]
    assert delivery["event"] == "pull_request" and delivery["status"] == "done"
    status, replayed = await call(flow, "POST", f"/deliveries/{delivery['delivery_id']}/replay")
    assert status == 202 and replayed["was"] == "done"

    async def done_again() -> bool:
        found = await flow.store.get_delivery(delivery["delivery_id"])
        return found.status == "done" and found.attempts >= 1

    await wait_until(done_again, timeout=10)
    assert (await call(flow, "POST", "/deliveries/nope/replay"))[0] == 404
