"""Responses recorded through :func:`app.workflow.decisions.respond` (what the registry API calls)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from app.queue import JobContext, SystemClock
from app.store import proposals as sql
from app.workflow.decisions import DecisionRefused, respond
from tests.app import workflow_support
from tests.app.workflow_support import PullRequestFlow

pr_flow = workflow_support.pr_flow

FCT = "models/marts/fct_revenue.sql"


async def _open(flow: PullRequestFlow, github_app: Any, app_settings: Any) -> tuple[Any, JobContext, int]:
    text = flow.repo.files_at("main")[FCT].decode()
    pull = await flow.open_pr({FCT: text.replace("    plan_code,\n", "")})
    ctx = JobContext(
        store=flow.store, settings=app_settings, github=github_app, delivery_id="api", attempt=1, clock=SystemClock()
    )
    return pull, ctx, flow.repo.id


async def test_an_ack_through_the_api_turns_the_check_green_and_updates_the_comment(
    pr_flow: PullRequestFlow, github_app: Any, app_settings: Any
) -> None:
    flow = pr_flow
    pull, ctx, repo_id = await _open(flow, github_app, app_settings)
    verdict = await respond(ctx, repo_id=repo_id, pr_number=pull.number, team="growth", response="ack", user="gina")
    assert verdict.conclusion == "success"
    assert flow.check(pull).conclusion == "success"
    [comment] = flow.impact_comments(pull)
    assert "acknowledged by @gina" in comment.body
    log = await flow.store.read(lambda db: sql.list_audit(db, repo="acme/warehouse"))
    assert log[0]["action"] == "ack" and log[0]["detail"]["source"] == "api"


async def test_the_api_follows_the_same_rules_as_the_commands(
    pr_flow: PullRequestFlow, github_app: Any, app_settings: Any
) -> None:
    flow = pr_flow
    pull, ctx, repo_id = await _open(flow, github_app, app_settings)
    with pytest.raises(DecisionRefused, match="not asked"):
        await respond(ctx, repo_id=repo_id, pr_number=pull.number, team="marketing", response="ack", user="m")
    with pytest.raises(DecisionRefused, match="reason"):
        await respond(ctx, repo_id=repo_id, pr_number=pull.number, team="growth", response="block", user="g")
    with pytest.raises(DecisionRefused, match="no block"):
        await respond(ctx, repo_id=repo_id, pr_number=pull.number, team="growth", response="unblock", user="g")
    verdict = await respond(
        ctx,
        repo_id=repo_id,
        pr_number=pull.number,
        team="growth",
        response="migrating",
        user="g",
        deadline=dt.date(2026, 12, 31),
    )
    assert verdict.conclusion == "action_required"
    verdict = await respond(
        ctx, repo_id=repo_id, pr_number=pull.number, team="growth", response="block", user="g", reason="not yet"
    )
    assert verdict.conclusion == "failure" and flow.check(pull).conclusion == "failure"
