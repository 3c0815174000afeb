"""A pull request on a dbt repository with no ``.tessera.yml``: read in its own dialect, and told so."""

from __future__ import annotations

from tests.app import workflow_support
from tests.app.workflow_support import PullRequestFlow
from tests.dialect_repos import BIGQUERY_MODEL, bigquery_repo

pr_flow = workflow_support.pr_flow

MODEL = "analytics/models/fct_orders.sql"


async def test_a_pr_on_an_unconfigured_bigquery_repository_is_read_as_bigquery_and_the_summary_says_how(
    pr_flow: PullRequestFlow,
) -> None:
    flow = pr_flow
    flow.use_repo("acme/analytics", {**bigquery_repo(), "CODEOWNERS": "* @acme/platform\n"})
    pull = await flow.open_pr({MODEL: BIGQUERY_MODEL.replace("  o.plan_code,\n", "")})
    check = flow.check(pull)
    summary = check.output["summary"]
    assert (
        "No `.tessera.yml`: read `analytics/` as BigQuery (`requirements.txt: dbt-bigquery`); owners from"
        " exposures, groups, meta.owner and CODEOWNERS. Run `tessera init` to refine."
    ) in summary.splitlines()
    assert "1 breaking" in summary
    assert not any("cannot parse" in a["message"] for a in check.annotations)
    [comment] = flow.impact_comments(pull)
    assert "plan_code" in comment.body
    assert "read `analytics/` as BigQuery (`requirements.txt: dbt-bigquery`)" in comment.body.splitlines()[-1]


async def test_a_configured_repository_gets_no_setup_hint(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    flow.use_repo("acme/configured", {**bigquery_repo(), ".tessera.yml": "dbt: {dialect: bigquery}\n"})
    pull = await flow.open_pr({MODEL: BIGQUERY_MODEL.replace("  o.plan_code,\n", "")})
    summary = flow.check(pull).output["summary"]
    assert "tessera init" not in summary
    [comment] = flow.impact_comments(pull)
    assert "read `analytics/` as BigQuery (`.tessera.yml`)" in comment.body
