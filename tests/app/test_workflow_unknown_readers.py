"""Readers nobody knows, through signed deliveries and the fake GitHub.

``fct_revenue`` with its dashboard taken out is a mart nothing in the repository reads: dropping
``plan_code`` from it must never pass as a silent green. It is held for the fallback until someone
confirms nobody outside depends on it, unless fresh query logs show nobody reads the column.
"""

from __future__ import annotations

from typing import Any

from app.store import observed as observed_sql
from app.store import proposals as sql
from app.workflow.serialize import analysis_from_json
from tests.app import workflow_support
from tests.app.workflow_support import PullRequestFlow, repo_files

pr_flow = workflow_support.pr_flow

FCT = "models/marts/fct_revenue.sql"
MARTS = "models/marts/marts.yml"
DASHBOARD = """exposures:
  - name: revenue_dashboard
    type: dashboard
    owner: {name: Growth Analytics}
    depends_on: [ref('fct_revenue')]
"""


def _leaf_mart(config: str = "") -> dict[str, str]:
    """revenue_dbt without its dashboard: nothing in the repository reads fct_revenue."""
    files = repo_files("revenue_dbt")
    assert DASHBOARD in files[MARTS]
    files[MARTS] = files[MARTS].replace(DASHBOARD, "")
    files[".tessera.yml"] += config
    return files


async def _drop_plan_code(flow: PullRequestFlow, files: dict[str, str], *, author: str = "priya") -> Any:
    flow.use_repo(f"acme/unknown-{len(flow.deliveries)}", files)
    return await flow.open_pr({FCT: files[FCT].replace("    plan_code,\n", "")}, author=author)


async def _analysis(flow: PullRequestFlow, pull: Any) -> Any:
    proposals = await flow.store.read(lambda db: sql.list_proposals(db))
    [proposal] = [p for p in proposals if p.repo == flow.repo.full_name and p.pr_number == pull.number]
    return analysis_from_json(proposal.analysis)


async def test_a_column_dropped_from_a_mart_nobody_is_known_to_read_is_held_for_the_fallback_team(
    pr_flow: PullRequestFlow,
) -> None:
    flow = pr_flow
    flow.fake.add_team_member("acme", "platform", "gina")
    pull = await _drop_plan_code(flow, _leaf_mart("fallback: acme/platform\n"))
    check = flow.check(pull)
    assert check.conclusion == "action_required" and "@acme/platform" in check.output["title"]
    [comment] = flow.impact_comments(pull)
    headline = comment.body.splitlines()[1]
    assert "no other team reads" not in comment.body
    assert "readers of `fct_revenue` unknown: held for @acme/platform" in headline
    assert (
        "Tessera knows no reader of `fct_revenue` (no exposure, registration or observed query), and"
        " COLUMN_REMOVED changes `plan_code`: @acme/platform confirms nobody outside the repository depends on it."
    ) in comment.body
    assert "`tessera discover`" in comment.body and "`consumers:`" in comment.body
    assert "@acme/platform (holding for readers Tessera does not know)" in comment.body
    [need] = (await _analysis(flow, pull)).required_acks
    assert (need.team, need.fallback, need.held_for) == ("platform", True, ("unknown_readers",))

    author = await flow.comment(pull, "/tessera ack", user="priya")
    assert flow.reactions(author) == ["confused"]
    gina = await flow.comment(pull, "/tessera ack", user="gina")
    assert flow.reactions(gina) == ["+1"]
    assert flow.check(pull).conclusion == "success"

    # a push that leaves the finding as it was keeps the ack
    await flow.push(pull, {"README.md": "docs\n"})
    assert flow.check(pull).conclusion == "success"
    flow.fake.assert_no_violations()


async def test_on_unknown_readers_warn_passes_and_says_the_readers_are_unknown(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _drop_plan_code(flow, _leaf_mart("on_unknown_readers: warn\n"))
    assert flow.check(pull).conclusion == "success"
    [comment] = flow.impact_comments(pull)
    headline = comment.body.splitlines()[1]
    assert not headline.startswith("## 🟢") and "no other team reads" not in comment.body
    assert "readers of `fct_revenue` unknown: held for nobody (on_unknown_readers: warn)" in headline
    assert "nobody was asked to confirm" in comment.body


async def test_fresh_query_logs_that_saw_no_read_let_the_change_pass_and_say_so(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    await flow.store.write(
        lambda db: observed_sql.save_watermark(db, "exports/queries.jsonl", kind="jsonl", state={}, last_run={})
    )
    pull = await _drop_plan_code(flow, _leaf_mart())
    assert flow.check(pull).conclusion == "success"
    [comment] = flow.impact_comments(pull)
    assert comment.body.splitlines()[1].startswith("## 🟢")
    assert "Query logs show no reads of `fct_revenue.plan_code` in the last 30 days (jsonl query logs)" in comment.body
    assert (await _analysis(flow, pull)).required_acks == ()
