"""GitHub misbehaving in the middle of an analysis: retried where transient, a clear failure
otherwise, one impact comment in total, and the check never left in progress."""

from __future__ import annotations

import time
from typing import Any

from tests.app.test_robustness_payloads import flow, settle
from tests.app.workflow_support import PullRequestFlow
from tests.fakegithub import ScriptedResponse, lost_answer, secondary_rate_limit, server_error
from tests.fixtures_app import FakeClock

__all__ = ["flow"]

FCT = "models/marts/fct_revenue.sql"
CHECK_UPDATES = "/repos/acme/warehouse/check-runs/*"
COMMENTS = "/repos/acme/warehouse/issues/*/comments"


async def open_breaking_pr(flow: PullRequestFlow) -> tuple[Any, Any]:
    text = flow.repo.files_at("main")[FCT].decode()
    flow.repo.commit({FCT: text.replace("    plan_code,\n", "")}, parent="main", branch="drop-plan-code")
    pull = flow.repo.open_pull_request(head="drop-plan-code", author="priya")
    delivery = await settle(flow, "pull_request", flow.pull_payload(pull, "opened"))
    return pull, delivery


async def test_a_502_on_the_check_update_after_the_analysis_is_retried_with_one_comment(flow: PullRequestFlow) -> None:
    flow.fake.script("PATCH", CHECK_UPDATES, server_error(502))
    pull, delivery = await open_breaking_pr(flow)
    assert delivery.status == "done" and delivery.attempts == 2, delivery.last_error
    [run] = flow.repo.check_runs(head_sha=pull.head_sha, name="Tessera")
    assert run.status == "completed" and run.conclusion == "action_required"
    assert len(flow.impact_comments(pull)) == 1
    assert len(flow.fake.requests_to("POST", COMMENTS)) == 1


async def test_a_check_update_that_keeps_failing_fails_the_job_saying_so(flow: PullRequestFlow) -> None:
    flow.fake.script("PATCH", CHECK_UPDATES, *[server_error(502)] * 12)
    pull, delivery = await open_breaking_pr(flow)
    assert delivery.status == "failed"
    assert "502" in delivery.last_error and "gave up" in delivery.last_error
    assert len(flow.impact_comments(pull)) == 1


async def test_a_comment_refused_for_good_still_completes_the_check_with_the_reason(flow: PullRequestFlow) -> None:
    refused = ScriptedResponse(422, {"message": "Validation Failed", "errors": [{"code": "custom", "message": "locked"}]})
    flow.fake.script("POST", COMMENTS, *[refused] * 6)
    pull, delivery = await open_breaking_pr(flow)
    assert delivery.status in ("done", "failed")
    check = flow.check(pull)
    assert check.status == "completed" and check.conclusion == "action_required"
    assert "Validation Failed" in check.output["summary"] or "locked" in check.output["summary"]


async def test_a_404_on_a_blob_completes_the_check_saying_the_file_could_not_be_read(flow: PullRequestFlow) -> None:
    flow.fake.script("GET", "/repos/acme/warehouse/git/blobs/*", ScriptedResponse(404, {"message": "Not Found"}))
    pull, delivery = await open_breaking_pr(flow)
    assert delivery.status in ("done", "failed")
    check = flow.check(pull)
    assert check.status == "completed" and check.conclusion == "action_required"
    assert "could not be read" in check.output["summary"] and "404" in check.output["summary"]
    assert delivery.attempts == 1, "GitHub will not find the blob on a second try"


async def test_a_revoked_token_is_replaced_and_the_analysis_completes(flow: PullRequestFlow) -> None:
    flow.fake.script("GET", "/repos/acme/warehouse/compare/*", ScriptedResponse(401, {"message": "Bad credentials"}))
    pull, delivery = await open_breaking_pr(flow)
    assert delivery.status == "done" and delivery.attempts == 2, delivery.last_error
    assert len(flow.fake.requests_to("POST", "/app/installations/*/access_tokens")) == 2
    assert len(flow.repo.check_runs(head_sha=pull.head_sha, name="Tessera")) == 1
    assert flow.check(pull).conclusion == "action_required"


async def test_an_uninstalled_app_fails_the_job_at_once_saying_so(flow: PullRequestFlow) -> None:
    del flow.fake.installations[1]
    flow.fake.revoke_tokens()
    _, delivery = await open_breaking_pr(flow)
    assert delivery.status == "failed" and delivery.attempts == 1
    assert "installation" in delivery.last_error


async def test_a_secondary_rate_limit_on_the_comment_waits_and_posts_one_comment(flow: PullRequestFlow) -> None:
    flow.fake.script("POST", COMMENTS, secondary_rate_limit(retry_after=30))
    pull, delivery = await open_breaking_pr(flow)
    assert delivery.status == "done", delivery.last_error
    assert delivery.attempts == 2
    statuses = [r.status for r in flow.fake.requests_to("POST", COMMENTS)]
    assert statuses == [403, 201]
    assert len(flow.impact_comments(pull)) == 1
    [run] = flow.repo.check_runs(head_sha=pull.head_sha, name="Tessera")
    assert run.conclusion == "action_required"


async def test_a_secondary_rate_limit_on_a_command_reply_answers_once(flow: PullRequestFlow) -> None:
    pull, _ = await open_breaking_pr(flow)
    flow.fake.script("POST", COMMENTS, secondary_rate_limit(retry_after=5))
    comment = flow.repo.add_comment(pull.number, "/tessera ack", user="stranger")
    delivery = await settle(flow, "issue_comment", flow.fake.event_issue_comment(flow.repo, comment))
    assert delivery.status == "done", delivery.last_error
    assert len(flow.replies(pull)) == 1
    assert flow.reactions(comment) == ["confused"]


async def test_a_502_on_the_check_update_after_an_ack_is_retried_and_answered_once(flow: PullRequestFlow) -> None:
    pull, _ = await open_breaking_pr(flow)
    flow.fake.add_team_member("acme", "growth", "gina")
    flow.fake.script("PATCH", CHECK_UPDATES, server_error(502))
    comment = flow.repo.add_comment(pull.number, "/tessera ack", user="gina")
    delivery = await settle(flow, "issue_comment", flow.fake.event_issue_comment(flow.repo, comment))
    assert delivery.status == "done" and delivery.attempts == 2, delivery.last_error
    assert flow.reactions(comment) == ["+1"]
    assert flow.check(pull).conclusion == "success"
    assert len(flow.impact_comments(pull)) == 1 and flow.replies(pull) == []


async def test_a_check_run_created_but_its_answer_lost_is_found_and_reused_on_the_retry(flow: PullRequestFlow) -> None:
    flow.fake.script("POST", "/repos/acme/warehouse/check-runs", lost_answer(502))
    pull, delivery = await open_breaking_pr(flow)
    assert delivery.status == "done" and delivery.attempts == 2, delivery.last_error
    assert len(flow.fake.requests_to("POST", "/repos/acme/warehouse/check-runs")) == 1
    [run] = flow.repo.check_runs(head_sha=pull.head_sha, name="Tessera")
    assert run.status == "completed" and run.conclusion == "action_required"
    assert len(flow.impact_comments(pull)) == 1


async def test_an_impact_comment_posted_but_its_answer_lost_is_found_by_its_marker_not_posted_again(
    flow: PullRequestFlow,
) -> None:
    flow.fake.script("POST", COMMENTS, lost_answer(502))
    pull, delivery = await open_breaking_pr(flow)
    assert delivery.status == "done" and delivery.attempts == 2, delivery.last_error
    assert len(flow.fake.requests_to("POST", COMMENTS)) == 1
    [comment] = flow.impact_comments(pull)
    assert "plan_code" in comment.body
    assert flow.check(pull).conclusion == "action_required"


async def test_the_impact_comment_is_found_on_a_later_page_of_a_long_conversation(flow: PullRequestFlow) -> None:
    """A busy pull request: Tessera's comment sits behind 130 others (two pages of 100), and people
    quoting its marker are not mistaken for it."""
    text = flow.repo.files_at("main")[FCT].decode()
    flow.repo.commit({FCT: text.replace("    plan_code,\n", "")}, parent="main", branch="busy")
    pull = flow.repo.open_pull_request(head="busy", author="priya")
    for n in range(130):
        quoted = "> <!-- tessera:impact -->\n" if n % 10 == 0 else ""
        flow.repo.add_comment(pull.number, f"{quoted}review note {n}", user=f"reviewer{n % 7}")
    flow.fake.script("POST", COMMENTS, lost_answer(502))
    delivery = await settle(flow, "pull_request", flow.pull_payload(pull, "opened"))

    assert delivery.status == "done" and delivery.attempts == 2, delivery.last_error
    assert len(flow.fake.requests_to("POST", COMMENTS)) == 1
    pages = [r.query.get("page", "1") for r in flow.fake.requests_to("GET", COMMENTS)]
    assert "2" in pages  # the retry read past the first page to find it
    [comment] = flow.impact_comments(pull)
    assert len(flow.repo.comments(pull.number)) == 131
    assert all("plan_code" not in c.body for c in flow.repo.comments(pull.number) if c.user != flow.fake.bot_login)


async def test_a_low_api_budget_holds_the_analysis_until_the_reset_and_the_check_says_so(
    flow: PullRequestFlow, fake_clock: FakeClock
) -> None:
    fake_clock.advance(time.time() + 5 - fake_clock.now())  # past the intake's (wall-clock) due times
    flow.fake.clock = fake_clock.now  # GitHub's window and the queue's back-off on one clock
    flow.fake.spend_rate_budget(4_900)  # 100 of 5,000 left: under the 5 % reserve
    reset = flow.fake.rate_window_start + 3600
    pull, delivery = await open_breaking_pr(flow)

    assert delivery.status == "done" and delivery.attempts == 2, delivery.last_error
    [run] = flow.repo.check_runs(head_sha=pull.head_sha, name="Tessera")
    until = time.strftime("%H:%M", time.gmtime(reset))
    assert run.bodies[1]["output"]["title"] == f"Waiting for GitHub's API budget until {until} UTC"
    assert run.status == "completed" and run.conclusion == "action_required"
    assert fake_clock.now() >= reset  # the retry ran after the window reset
    first_pr_files = next(i for i, r in enumerate(flow.fake.requests) if "/compare/" in r.path)
    waiting_update = next(i for i, r in enumerate(flow.fake.requests) if r.method == "PATCH")
    assert waiting_update < first_pr_files  # nothing was read for the analysis before the reset
