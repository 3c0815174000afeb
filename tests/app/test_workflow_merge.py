"""Merging publishes contract versions (major on breaking), closes the proposal, logs it all."""

from __future__ import annotations

from app.store import contracts as contract_sql
from app.store import proposals as sql
from tests.app import workflow_support
from tests.app.workflow_support import PullRequestFlow

pr_flow = workflow_support.pr_flow

FCT = "models/marts/fct_revenue.sql"


async def _merge(flow: PullRequestFlow, pull: object) -> None:
    pull.merged = True  # type: ignore[attr-defined]
    pull.state = "closed"  # type: ignore[attr-defined]
    payload = flow.pull_payload(pull, "closed")  # type: ignore[arg-type]
    payload["pull_request"]["merged_by"] = flow.fake._user("maya")
    await flow.deliver("pull_request", payload)


async def test_merging_publishes_a_minor_then_a_major_version_and_closes_the_proposal(
    pr_flow: PullRequestFlow,
) -> None:
    flow = pr_flow
    text = flow.repo.files_at("main")[FCT].decode()
    added = await flow.open_pr({FCT: text.replace("    ordered_at\n", "    ordered_at,\n    1 as order_count\n")})
    await _merge(flow, added)
    [first] = await flow.store.read(lambda db: contract_sql.list_contracts(db, "fct_revenue"))
    assert first.version == "1.0.0" and not first.breaking
    assert "order_count" in [c["name"] for c in first.schema["columns"]]

    flow.fake.add_team_member("acme", "growth", "gina")
    removed = await flow.open_pr({FCT: text.replace("    plan_code,\n", "")})
    await flow.comment(removed, "/tessera ack", user="gina")
    await _merge(flow, removed)
    latest = (await flow.store.read(lambda db: contract_sql.list_contracts(db, "fct_revenue")))[0]
    assert latest.version == "2.0.0" and latest.breaking
    assert "plan_code" not in [c["name"] for c in latest.schema["columns"]]
    assert latest.pr_number == removed.number

    proposals = await flow.store.read(lambda db: sql.list_proposals(db))
    assert {p.pr_number: p.status for p in proposals} == {added.number: "merged", removed.number: "merged"}
    log = await flow.store.read(lambda db: sql.list_audit(db, repo="acme/warehouse"))
    actions = [(e["action"], e["detail"].get("version")) for e in log]
    assert ("contract_published", "2.0.0") in actions and ("proposal_merged", None) in actions

    # A re-delivered "closed" publishes nothing new.
    await _merge(flow, removed)
    assert len(await flow.store.read(lambda db: contract_sql.list_contracts(db, "fct_revenue"))) == 2


async def test_closing_without_merging_publishes_nothing(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    text = flow.repo.files_at("main")[FCT].decode()
    pull = await flow.open_pr({FCT: text.replace("    plan_code,\n", "")})
    pull.state = "closed"
    await flow.deliver("pull_request", flow.pull_payload(pull, "closed"))
    assert await flow.store.read(lambda db: contract_sql.list_contracts(db, "fct_revenue")) == []
    [proposal] = await flow.store.read(lambda db: sql.list_proposals(db))
    assert proposal.status == "closed"


async def test_merging_a_pull_request_tessera_never_saw_publishes_its_contracts(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    text = flow.repo.files_at("main")[FCT].decode()
    flow.repo.commit({FCT: text.replace("    plan_code,\n", "")}, parent="main", branch="unseen")
    pull = flow.repo.open_pull_request(head="unseen", author="priya")
    await _merge(flow, pull)
    [contract] = await flow.store.read(lambda db: contract_sql.list_contracts(db, "fct_revenue"))
    assert contract.version == "1.0.0" and contract.pr_number == pull.number
    [proposal] = await flow.store.read(lambda db: sql.list_proposals(db))
    assert proposal.status == "merged" and proposal.repo == "acme/warehouse"
