"""Pushes that land while an earlier analysis of the same pull request waits or runs: each job
analyses its own head, and only the newest head's analysis becomes the pull request's result."""

from __future__ import annotations

import uuid

from app.store import proposals as sql
from tests.app import workflow_support
from tests.app.workflow_support import MARKER, PullRequestFlow
from tests.fakegithub import slow
from tests.fixtures_app import post_delivery, wait_until

pr_flow = workflow_support.pr_flow

FCT = "models/marts/fct_revenue.sql"


def _fct(flow: PullRequestFlow) -> str:
    return flow.repo.files_at("main")[FCT].decode()


async def _finished(flow: PullRequestFlow, delivery_id: str) -> bool:
    delivery = await flow.store.get_delivery(delivery_id)
    return delivery is not None and delivery.status in ("done", "failed")


async def test_a_push_during_an_analysis_reports_only_the_newest_head_and_closes_the_older_check(
    pr_flow: PullRequestFlow,
) -> None:
    flow = pr_flow
    fct = _fct(flow)
    flow.repo.commit({FCT: fct.replace("    plan_code,\n", "")}, parent="main", branch="quick")
    pull = flow.repo.open_pull_request(head="quick", author="priya")
    older = pull.head_sha
    # The first analysis is still reading the base when the second push lands.
    flow.fake.script("GET", "/repos/acme/warehouse/git/trees/*", slow(2.0))
    first = str(uuid.uuid4())
    response = await post_delivery(flow.client, "pull_request", flow.pull_payload(pull, "opened"), delivery_id=first)
    assert response.status in (200, 202)
    await wait_until(lambda: flow.repo.check_run("Tessera", head_sha=older) is not None, timeout=10)

    flow.repo.push("quick", {FCT: fct.replace("    customer_id,\n", "")})
    newer = pull.head_sha
    assert newer != older
    await flow.deliver("pull_request", flow.pull_payload(pull, "synchronize"))
    await wait_until(lambda: _finished(flow, first), timeout=30)
    assert (await flow.store.get_delivery(first)).status == "done"

    old_check = flow.repo.check_run("Tessera", head_sha=older)
    assert old_check.status == "completed" and old_check.conclusion == "cancelled"
    assert old_check.output["title"] == f"Superseded by a newer push ({newer[:12]})"
    assert newer[:12] in old_check.output["summary"]

    check = flow.check(pull)
    assert check.status == "completed" and check.conclusion == "action_required"
    [comment] = flow.impact_comments(pull)
    assert MARKER in comment.body
    assert "customer_id" in comment.body and "plan_code" not in comment.body

    proposal = await flow.store.read(lambda db: sql.get_proposal(db, flow.repo.id, pull.number))
    assert proposal.analysed_head_sha == newer and proposal.conclusion == "action_required"
    record = await flow.store.read(lambda db: sql.get_check(db, old_check.id))
    assert record.conclusion == "cancelled" and record.head_sha == older


async def test_a_job_whose_head_was_replaced_before_it_ran_creates_no_check_for_it(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    fct = _fct(flow)
    flow.repo.commit({FCT: fct.replace("    plan_code,\n", "")}, parent="main", branch="queued")
    pull = flow.repo.open_pull_request(head="queued", author="priya")
    older = pull.head_sha
    opened = flow.pull_payload(pull, "opened")
    # The first job holds the pull request's queue while two more pushes arrive.
    flow.fake.script("GET", "/repos/acme/warehouse/git/trees/*", slow(2.0))
    first = str(uuid.uuid4())
    await post_delivery(flow.client, "pull_request", opened, delivery_id=first)
    await wait_until(lambda: flow.repo.check_run("Tessera", head_sha=older) is not None, timeout=10)
    flow.repo.push("queued", {FCT: fct.replace("    ordered_at\n", "").replace("plan_code,", "plan_code")})
    middle = pull.head_sha
    second = str(uuid.uuid4())
    await post_delivery(flow.client, "pull_request", flow.pull_payload(pull, "synchronize"), delivery_id=second)
    flow.repo.push("queued", {FCT: fct.replace("    customer_id,\n", "")})
    await flow.deliver("pull_request", flow.pull_payload(pull, "synchronize"))
    for delivery_id in (first, second):
        await wait_until(lambda d=delivery_id: _finished(flow, d), timeout=30)

    assert flow.repo.check_runs(head_sha=middle, name="Tessera") == []
    assert flow.repo.check_run("Tessera", head_sha=older).conclusion == "cancelled"
    check = flow.check(pull)
    assert check.conclusion == "action_required"
    [comment] = flow.impact_comments(pull)
    assert "customer_id" in comment.body and "plan_code" not in comment.body


async def test_an_analysis_reads_its_own_head_even_when_the_pull_request_moved_on_meanwhile(
    pr_flow: PullRequestFlow,
) -> None:
    flow = pr_flow
    fct = _fct(flow)
    flow.repo.commit({FCT: fct.replace("    plan_code,\n", "")}, parent="main", branch="moved")
    pull = flow.repo.open_pull_request(head="moved", author="priya")
    older = pull.head_sha
    flow.fake.script("GET", "/repos/acme/warehouse/git/trees/*", slow(2.0))
    first = str(uuid.uuid4())
    await post_delivery(flow.client, "pull_request", flow.pull_payload(pull, "opened"), delivery_id=first)
    await wait_until(lambda: flow.repo.check_run("Tessera", head_sha=older) is not None, timeout=10)
    # The push lands, but its webhook has not arrived when the first analysis reads the change.
    flow.repo.push("moved", {FCT: fct.replace("    customer_id,\n", "")})
    await wait_until(lambda: _finished(flow, first), timeout=30)

    old_check = flow.repo.check_run("Tessera", head_sha=older)
    assert old_check.conclusion == "action_required"
    [comment] = flow.impact_comments(pull)
    assert "plan_code" in comment.body and "customer_id" not in comment.body

    await flow.deliver("pull_request", flow.pull_payload(pull, "synchronize"))
    assert flow.check(pull).conclusion == "action_required"
    [comment] = flow.impact_comments(pull)
    assert "customer_id" in comment.body and "plan_code" not in comment.body
