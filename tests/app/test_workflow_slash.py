"""Slash commands through real comment deliveries: who may say what, and what the check does then."""

from __future__ import annotations

from typing import Any

import pytest

from app.appkeys import GITHUB_KEY, SETTINGS_KEY
from app.errors import LeaseLost
from app.queue import JobContext, SystemClock
from app.store import proposals as sql
from app.workflow import slash
from tests.app import workflow_support
from tests.app.workflow_support import PullRequestFlow
from tests.fixtures_github import INSTALLATION_ID
from tests.rendered import render

pr_flow = workflow_support.pr_flow

FCT = "models/marts/fct_revenue.sql"


async def _breaking_pr(flow: PullRequestFlow) -> Any:
    flow.fake.add_team_member("acme", "growth", "gina")
    text = flow.repo.files_at("main")[FCT].decode()
    return await flow.open_pr({FCT: text.replace("    plan_code,\n", "")}, author="priya")


async def test_an_edited_comment_that_gains_an_ack_is_ignored(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _breaking_pr(flow)
    before = len(flow.fake.requests)
    comment = await flow.comment(pull, "/tessera ack", user="gina", action="edited")
    assert flow.api_calls(before) == []
    assert flow.reactions(comment) == []
    assert flow.check(pull).conclusion == "action_required"


async def test_a_bot_comment_is_ignored(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _breaking_pr(flow)
    before = len(flow.fake.requests)
    await flow.comment(pull, "/tessera ack", user="renovate[bot]", user_type="Bot")
    assert flow.api_calls(before) == []
    assert flow.check(pull).conclusion == "action_required"


async def test_an_ack_in_the_middle_of_a_sentence_is_ignored(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _breaking_pr(flow)
    before = len(flow.fake.requests)
    await flow.comment(pull, "Once the dashboard is fixed I will /tessera ack this.", user="gina")
    assert flow.api_calls(before) == []
    assert flow.check(pull).conclusion == "action_required"


async def test_block_fails_the_check_until_unblock(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _breaking_pr(flow)
    block = await flow.comment(pull, "/tessera block the weekly board report still uses plan_code", user="gina")
    assert flow.reactions(block) == ["+1"]
    check = flow.check(pull)
    assert check.conclusion == "failure" and "Blocked" in check.output["title"]
    [comment] = flow.impact_comments(pull)
    assert "blocked by @gina" in comment.body and "weekly board report" in comment.body

    # Only a member of the blocking team can lift its block.
    outsider = await flow.comment(pull, "/tessera unblock", user="sam")
    assert flow.reactions(outsider) == ["confused"]
    assert flow.check(pull).conclusion == "failure"

    unblock = await flow.comment(pull, "/tessera unblock", user="gina")
    assert flow.reactions(unblock) == ["+1"]
    assert flow.check(pull).conclusion == "action_required"


async def test_a_block_without_a_reason_is_refused(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _breaking_pr(flow)
    comment = await flow.comment(pull, "/tessera block", user="gina")
    assert flow.reactions(comment) == ["confused"]
    assert "reason" in flow.replies(pull)[-1].body
    assert flow.check(pull).conclusion == "action_required"


async def test_override_needs_an_admin_and_is_recorded(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _breaking_pr(flow)
    flow.repo.set_permission("wendy", "write")
    flow.repo.set_permission("ada", "admin")

    refused = await flow.comment(pull, "/tessera override the dashboard is being retired", user="wendy")
    assert flow.reactions(refused) == ["confused"]
    assert "admin" in flow.replies(pull)[-1].body
    assert flow.check(pull).conclusion == "action_required"

    accepted = await flow.comment(pull, "/tessera override the dashboard is being retired", user="ada")
    assert flow.reactions(accepted) == ["+1"]
    check = flow.check(pull)
    assert check.conclusion == "success" and "Overridden by @ada" in check.output["title"]
    [comment] = flow.impact_comments(pull)
    assert "Overridden by @ada" in comment.body and "being retired" in comment.body
    log = await flow.store.read(lambda db: sql.list_audit(db, repo="acme/warehouse"))
    assert any(e["action"] == "override" and e["actor"] == "ada" and "retired" in e["detail"]["reason"] for e in log)


async def test_migrating_records_the_deadline_and_keeps_waiting_for_an_ack(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _breaking_pr(flow)
    comment = await flow.comment(pull, "/tessera migrating by 2026-12-31", user="gina")
    assert flow.reactions(comment) == ["+1"]
    assert flow.check(pull).conclusion == "action_required"
    [impact] = flow.impact_comments(pull)
    assert "2026-12-31" in impact.body
    proposal = (await flow.store.read(lambda db: sql.list_proposals(db)))[0]
    acks = await flow.store.read(lambda db: sql.list_acks(db, proposal.id))
    assert str(acks["growth"].deadline) == "2026-12-31"


async def test_unack_withdraws_the_acknowledgement(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _breaking_pr(flow)
    await flow.comment(pull, "/tessera ack", user="gina")
    assert flow.check(pull).conclusion == "success"
    await flow.comment(pull, "/tessera unack", user="gina")
    assert flow.check(pull).conclusion == "action_required"


async def test_a_typo_is_answered_with_help(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _breaking_pr(flow)
    comment = await flow.comment(pull, "/tessera akc", user="gina")
    assert flow.reactions(comment) == ["confused"]
    reply = flow.replies(pull)[-1].body
    assert "/tessera ack" in reply and "/tessera migrating" in reply


async def test_status_replies_with_who_still_needs_to_answer(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _breaking_pr(flow)
    comment = await flow.comment(pull, "/tessera status", user="sam")
    assert flow.reactions(comment) == ["+1"]
    assert "@acme/growth" in flow.replies(pull)[-1].body


async def test_recheck_analyses_again_with_a_new_check_run(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _breaking_pr(flow)
    await flow.comment(pull, "/tessera recheck", user="sam")
    runs = flow.repo.check_runs(head_sha=pull.head_sha, name="Tessera")
    assert len(runs) == 2 and runs[-1].conclusion == "action_required"
    assert len(flow.impact_comments(pull)) == 1


async def test_a_redelivered_comment_is_answered_once(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _breaking_pr(flow)
    comment = await flow.comment(pull, "/tessera block not yet", user="gina")
    payload = {
        "action": "created",
        "issue": {"number": pull.number, "pull_request": {"url": "x"}, "user": flow.fake._user("priya")},
        "comment": flow.fake._comment_json(flow.fake.comments[comment.id]),
        "repository": flow.fake._repo_json(flow.repo),
        "installation": {"id": 1},
        "sender": flow.fake._user("gina"),
    }
    before = len(flow.fake.requests)
    await flow.deliver("issue_comment", payload)
    assert flow.api_calls(before) == []
    assert flow.reactions(comment) == ["+1"]


async def test_commands_on_a_closed_pull_request_are_refused(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _breaking_pr(flow)
    pull.state = "closed"
    await flow.deliver("pull_request", flow.pull_payload(pull, "closed"))
    comment = await flow.comment(pull, "/tessera ack", user="gina")
    assert flow.reactions(comment) == ["confused"]
    assert "closed" in flow.replies(pull)[-1].body
    assert flow.check(pull).conclusion == "action_required"


async def test_a_team_the_app_cannot_see_has_no_members(pr_flow: PullRequestFlow) -> None:
    from tests.fakegithub import ScriptedResponse

    flow = pr_flow
    pull = await _breaking_pr(flow)
    flow.fake.script(
        "GET", "/orgs/acme/teams/growth/memberships/*", ScriptedResponse(403, {"message": "Resource not accessible by integration"})
    )
    comment = await flow.comment(pull, "/tessera ack", user="olga")
    assert flow.reactions(comment) == ["confused"]
    assert flow.check(pull).conclusion == "action_required"


async def test_a_migration_deadline_in_the_past_is_refused(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _breaking_pr(flow)
    comment = await flow.comment(pull, "/tessera migrating by 2001-01-01", user="gina")
    assert flow.reactions(comment) == ["confused"]
    assert "in the past" in flow.replies(pull)[-1].body


async def test_someone_added_to_the_team_after_a_refusal_can_ack_at_once(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _breaking_pr(flow)
    first = await flow.comment(pull, "/tessera ack", user="nora")
    assert flow.reactions(first) == ["confused"]
    flow.fake.add_team_member("acme", "growth", "nora")
    second = await flow.comment(pull, "/tessera ack", user="nora")
    assert flow.reactions(second) == ["+1"]
    assert flow.check(pull).conclusion == "success"


# --- hostile comments ---------------------------------------------------------------------------


async def test_a_member_quoting_a_non_members_ack_across_a_line_separator_acks_nothing(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _breaking_pr(flow)
    # sam (not a member) wrote "we are fine\u2028/tessera ack"; gina quotes it to disagree.
    before = len(flow.fake.requests)
    await flow.comment(pull, "> we are fine\u2028/tessera ack\n\nNot so fast: the board report reads plan_code.", user="gina")
    assert flow.api_calls(before) == []
    assert flow.check(pull).conclusion == "action_required"
    proposal = (await flow.store.read(lambda db: sql.list_proposals(db)))[0]
    assert await flow.store.read(lambda db: sql.list_acks(db, proposal.id)) == {}


async def test_a_look_alike_prefix_is_answered_and_acknowledges_nothing(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _breaking_pr(flow)
    comment = await flow.comment(pull, "/teſſera ack", user="gina")
    assert flow.reactions(comment) == ["confused"]
    assert "plain ASCII" in flow.replies(pull)[-1].body
    assert flow.check(pull).conclusion == "action_required"


async def test_a_refusal_echoing_a_backtick_word_mentions_nobody_else(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _breaking_pr(flow)
    comment = await flow.comment(pull, "/tessera ack x`@acme/everyone`", user="gina")
    assert flow.reactions(comment) == ["confused"]
    reply = render(flow.replies(pull)[-1].body)
    assert "x`@acme/everyone`" in reply.code
    assert sorted(set(reply.mentions)) == ["@acme/growth", "@gina"]


async def test_a_block_reason_is_shown_inert_in_the_comment_the_check_and_the_status_reply(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _breaking_pr(flow)
    reason = "ask @acme/everyone, see [this](https://evil.example) <b>#12</b> `x` | y"
    await flow.comment(pull, f"/tessera block {reason}", user="gina")
    [impact] = flow.impact_comments(pull)
    status = await flow.comment(pull, "/tessera status", user="sam")
    assert flow.reactions(status) == ["+1"]
    for body in (impact.body, flow.check(pull).output["summary"], flow.replies(pull)[-1].body):
        seen = render(body)
        assert set(seen.mentions) <= {"@acme/growth", "@gina"}, body
        assert seen.unexpected_html == [], body
        assert all("evil.example" not in link for link in seen.links), body
        live = "".join(seen.text)
        assert "://evil" not in live and "#12" not in live, body
        assert "ask @\u2060acme/everyone, see [this](https:\u2060//evil.example) <b>#\u206012</b> `x` | y" in "".join(seen.text)


async def test_a_comment_of_thousands_of_commands_is_answered_for_the_first_twenty(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _breaking_pr(flow)
    comment = await flow.comment(pull, "/tessera status\n" * 3000, user="sam")
    assert flow.reactions(comment) == ["confused"]
    replies = flow.replies(pull)
    assert replies[-1].body.startswith("@sam only the first 20 commands") and "2980 more" in replies[-1].body
    assert len(replies[-1].body) <= 65536


async def test_a_replica_that_lost_the_job_answers_no_command(pr_flow: PullRequestFlow) -> None:
    """The answer (reaction and reply) is fenced by the job's lease: a replica whose job another
    replica took over while it stalled says nothing (the one that took over answers)."""
    flow = pr_flow
    pull = await _breaking_pr(flow)
    comment = flow.repo.add_comment(pull.number, "/tessera ack", user="gina")
    job_id = (await flow.store.get_delivery(flow.deliveries[-1])).id
    await flow.store.write(lambda db: db.execute(
        "UPDATE deliveries SET status = 'running', claimed_by = 'replica-b', attempts = 2 WHERE id = ?", (job_id,)))
    ctx = JobContext(store=flow.store, settings=flow.client.app[SETTINGS_KEY], github=None,
                     delivery_id=flow.deliveries[-1], attempt=1, clock=SystemClock(), job_id=job_id)
    gh = await flow.client.app[GITHUB_KEY].for_installation(INSTALLATION_ID)
    before = len(flow.fake.requests)
    with pytest.raises(LeaseLost):
        await slash._answer(ctx, gh, "acme", "warehouse", pull.number, comment.id, [slash.Outcome(True, "done")])
    assert flow.api_calls(before) == []
    assert flow.reactions(comment) == []
