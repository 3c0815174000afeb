"""The PR workflow end to end: signed deliveries in, check runs and one comment out, real engine."""

from __future__ import annotations

from typing import Any

from tests.app import workflow_support
from tests.app.workflow_support import PullRequestFlow

pr_flow = workflow_support.pr_flow  # the fixture, shared by the workflow tests

FCT = "models/marts/fct_revenue.sql"


def without_plan_code(flow: PullRequestFlow) -> dict[str, str]:
    text = flow.repo.files_at("main")[FCT].decode()
    return {FCT: text.replace("    plan_code,\n", "")}


async def test_the_3am_story_removing_a_column_a_dashboard_reads_waits_for_that_teams_ack(
    pr_flow: PullRequestFlow,
) -> None:
    flow = pr_flow
    flow.fake.add_team_member("acme", "growth", "gina")
    pull = await flow.open_pr(without_plan_code(flow), author="priya")

    check = flow.check(pull)
    assert check.status == "completed" and check.conclusion == "action_required"
    assert check.details_url and f"/checks/{check.id}." in check.details_url
    assert "@acme/growth" in check.output["title"]
    assert any(a["path"] == FCT and a["annotation_level"] == "failure" for a in check.annotations)
    [comment] = flow.impact_comments(pull)
    assert "@acme/growth" in comment.body and "revenue_dashboard" in comment.body and "plan_code" in comment.body

    # Someone outside Growth cannot speak for it.
    stranger = await flow.comment(pull, "/tessera ack", user="sam")
    assert flow.reactions(stranger) == ["confused"]
    assert flow.check(pull).conclusion == "action_required"
    [refusal] = flow.replies(pull)
    assert "@sam" in refusal.body and "@acme/growth" in refusal.body and "\n" not in refusal.body.strip()

    # Nor can the author, even when a member.
    flow.fake.add_team_member("acme", "growth", "priya")
    own = await flow.comment(pull, "/tessera ack growth", user="priya")
    assert flow.reactions(own) == ["confused"]
    assert flow.check(pull).conclusion == "action_required"

    # A Growth member can.
    ack = await flow.comment(pull, "Checked the dashboard, we don't use it any more.\n/tessera ack", user="gina")
    assert flow.reactions(ack) == ["+1"]
    check = flow.check(pull)
    assert check.conclusion == "success"
    [comment] = flow.impact_comments(pull)
    assert "acknowledged by @gina" in comment.body
    assert len(flow.replies(pull)) == 2  # the two refusals; the ack itself needs no words
    assert len(flow.fake.requests_to("POST", "/repos/acme/warehouse/issues/*/comments")) == 3


async def test_adding_a_column_passes_with_no_comment(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    text = flow.repo.files_at("main")[FCT].decode()
    pull = await flow.open_pr({FCT: text.replace("    ordered_at\n", "    ordered_at,\n    1 as order_count\n")})
    assert flow.check(pull).conclusion == "success"
    assert flow.repo.bot_comments(pull.number) == []


async def test_a_redelivered_webhook_changes_nothing(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await flow.open_pr(without_plan_code(flow))
    before = len(flow.fake.requests)
    await flow.deliver("pull_request", flow.pull_payload(pull, "opened"))
    assert flow.writes(before) == []
    assert len(flow.repo.check_runs(head_sha=pull.head_sha)) == 1
    assert len(flow.impact_comments(pull)) == 1


async def test_without_a_configured_app_the_delivery_fails_with_a_clear_reason(
    fake_github: Any, make_client: Any, store: Any
) -> None:
    from tests.app.workflow_support import repo_files
    from tests.fixtures_app import post_delivery, wait_until

    fake = fake_github
    repo = fake.add_repo("acme/warehouse", installation_id=1, files=repo_files("revenue_dbt"))
    repo.commit({"README.md": "x\n"}, parent="main", branch="docs")
    pull = repo.open_pull_request(head="docs")
    client = await make_client()
    payload = {
        "action": "opened",
        "number": pull.number,
        "pull_request": fake._pull_json(repo, pull),
        "repository": fake._repo_json(repo),
        "installation": {"id": 1},
    }
    await post_delivery(client, "pull_request", payload, delivery_id="no-app")

    async def failed() -> Any:
        delivery = await store.get_delivery("no-app")
        return delivery if delivery and delivery.status == "failed" else None

    delivery = await wait_until(failed, timeout=10)
    assert "not configured" in delivery.last_error
    assert repo.check_runs() == []


async def test_the_comment_says_when_a_changed_asset_is_failing_its_audits(pr_flow: PullRequestFlow) -> None:
    import datetime as dt

    from app.audits import AuditRun, GuaranteeResult
    from app.store import registry

    flow = pr_flow
    run = AuditRun(
        run_id="wap-7",
        status="failed",
        run_at=dt.datetime(2026, 11, 25, 6, 0, tzinfo=dt.UTC),
        results=(GuaranteeResult("not_null_revenue", False, 100, 3),),
    )
    await flow.store.write(
        lambda db: registry.record_audit_run(db, asset="fct_revenue", run=run, source="api", reported_by="ci")
    )
    pull = await flow.open_pr(without_plan_code(flow))
    [comment] = flow.impact_comments(pull)
    assert "Failing data-quality audits" in comment.body and "`not_null_revenue`" in comment.body


async def test_a_registration_made_through_the_api_makes_its_team_an_approver(pr_flow: PullRequestFlow) -> None:
    from app.store import registry

    flow = pr_flow
    await flow.store.write(lambda db: registry.create_team(db, "marketing", "Marketing", "acme/marketing-analytics"))
    await flow.store.write(
        lambda db: registry.create_registration(
            db, team="marketing", asset="fct_revenue", columns=["customer_id"], version=None, note="CRM sync", created_by="m"
        )
    )
    text = flow.repo.files_at("main")[FCT].decode()
    pull = await flow.open_pr({FCT: text.replace("    customer_id,\n", "")})
    check = flow.check(pull)
    assert check.conclusion == "action_required" and "@acme/marketing-analytics" in check.output["title"]
    [comment] = flow.impact_comments(pull)
    assert "@acme/marketing-analytics" in comment.body

    # Its members speak for it through that GitHub team.
    flow.fake.add_team_member("acme", "marketing-analytics", "mo")
    flow.fake.add_team_member("acme", "growth", "gina")
    await flow.comment(pull, "/tessera ack marketing", user="mo")
    await flow.comment(pull, "/tessera ack", user="gina")
    assert flow.check(pull).conclusion == "success"


async def test_metrics_count_analyses_by_conclusion(pr_flow: PullRequestFlow) -> None:
    from app.workflow.pulls import ANALYSES

    flow = pr_flow
    before = ANALYSES.value(conclusion="action_required")
    await flow.open_pr(without_plan_code(flow))
    assert ANALYSES.value(conclusion="action_required") == before + 1
    text = await (await flow.client.get("/metrics")).text()
    assert 'tessera_pr_analyses_total{conclusion="action_required"}' in text
    assert "tessera_pr_analysis_seconds_bucket" in text and "tessera_blobs_fetched_total" in text
