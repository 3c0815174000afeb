"""Acks across pushes, rules from the base branch, forks, and the Re-check button."""

from __future__ import annotations

from typing import Any

from app.store import proposals as proposal_sql
from tests.app import workflow_support
from tests.app.workflow_support import PullRequestFlow
from tests.fakegithub import FakePull, ScriptedResponse
from tests.fixtures_app import post_delivery

pr_flow = workflow_support.pr_flow

FCT = "models/marts/fct_revenue.sql"
MARTS_YML = "models/marts/marts.yml"


def _fct(flow: PullRequestFlow) -> str:
    return flow.repo.files_at("main")[FCT].decode()


async def _acked_pr(flow: PullRequestFlow) -> Any:
    flow.fake.add_team_member("acme", "growth", "gina")
    pull = await flow.open_pr({FCT: _fct(flow).replace("    plan_code,\n", "")}, author="priya")
    await flow.comment(pull, "/tessera ack", user="gina")
    assert flow.check(pull).conclusion == "success"
    return pull


async def test_a_push_that_keeps_the_teams_breaking_changes_keeps_its_ack(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _acked_pr(flow)
    yml = flow.repo.files_at(pull.head_sha)[MARTS_YML].decode().replace("Revenue per order.", "Revenue.")
    await flow.push(pull, {MARTS_YML: yml})
    check = flow.check(pull)
    assert check.head_sha == pull.head_sha and check.conclusion == "success"
    [comment] = flow.impact_comments(pull)
    assert "acknowledged by @gina" in comment.body


async def test_a_push_that_changes_the_breaking_changes_invalidates_the_ack(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _acked_pr(flow)
    text = flow.repo.files_at(pull.head_sha)[FCT].decode().replace("    customer_id,\n", "")
    await flow.push(pull, {FCT: text})
    assert flow.check(pull).conclusion == "action_required"
    [comment] = flow.impact_comments(pull)
    assert "was for different changes" in comment.body
    await flow.comment(pull, "/tessera ack", user="gina")
    assert flow.check(pull).conclusion == "success"


async def test_a_pr_that_weakens_the_rules_is_judged_by_the_base_branchs_rules(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    config = flow.repo.files_at("main")[".tessera.yml"].decode()
    weakened = config.replace("compatibility: backward", "compatibility: none") + "rules: {COLUMN_REMOVED: ignore}\n"
    pull = await flow.open_pr({".tessera.yml": weakened, FCT: _fct(flow).replace("    plan_code,\n", "")})
    assert flow.check(pull).conclusion == "action_required"
    [comment] = flow.impact_comments(pull)
    assert "@acme/growth" in comment.body


async def test_a_pull_request_from_a_fork_is_analysed_from_the_base_repository(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await flow.open_pr({FCT: _fct(flow).replace("    plan_code,\n", "")}, head_repo="outsider/warehouse")
    assert pull.head_repo == "outsider/warehouse"
    assert flow.check(pull).conclusion == "action_required"
    assert flow.fake.requests_to("GET", "/repos/outsider/*") == []


def _check_run_payload(flow: PullRequestFlow, pull: Any, action: str, *, listed: bool = True) -> dict[str, Any]:
    run = flow.check(pull)
    payload = {
        "action": action,
        "check_run": {
            "id": run.id,
            "name": run.name,
            "head_sha": run.head_sha,
            "status": run.status,
            "conclusion": run.conclusion,
            "pull_requests": [{"number": pull.number, "head": {"sha": pull.head_sha}}] if listed else [],
        },
        "repository": flow.fake._repo_json(flow.repo),
        "installation": {"id": 1},
        "sender": flow.fake._user("sam"),
    }
    if action == "requested_action":
        payload["requested_action"] = {"identifier": "recheck"}
    return payload


async def test_the_recheck_button_analyses_again(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await flow.open_pr({FCT: _fct(flow).replace("    plan_code,\n", "")})
    await flow.deliver("check_run", _check_run_payload(flow, pull, "requested_action"))
    runs = flow.repo.check_runs(head_sha=pull.head_sha, name="Tessera")
    assert len(runs) == 2 and runs[-1].conclusion == "action_required"
    assert runs[-1].actions[0]["identifier"] == "recheck"


async def test_a_rerequested_check_of_a_fork_finds_its_pull_request(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await flow.open_pr({FCT: _fct(flow).replace("    plan_code,\n", "")}, head_repo="outsider/warehouse")
    await flow.deliver("check_run", _check_run_payload(flow, pull, "rerequested", listed=False))
    assert len(flow.repo.check_runs(head_sha=pull.head_sha, name="Tessera")) == 2


async def test_a_transient_github_failure_retries_with_the_same_check_run(pr_flow: PullRequestFlow) -> None:
    from tests.fakegithub import server_error

    flow = pr_flow
    flow.fake.script("GET", "/repos/acme/warehouse/compare/*", server_error(502))
    pull = await flow.open_pr({FCT: _fct(flow).replace("    plan_code,\n", "")})
    statuses = [r.status for r in flow.fake.requests_to("GET", "/repos/acme/warehouse/compare/*")]
    assert statuses == [502, 200]
    runs = flow.repo.check_runs(head_sha=pull.head_sha, name="Tessera")
    assert len(runs) == 1 and runs[0].conclusion == "action_required"


async def test_editing_the_title_does_nothing_but_changing_the_base_analyses_again(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await flow.open_pr({FCT: _fct(flow).replace("    plan_code,\n", "")})
    before = len(flow.fake.requests)
    await flow.deliver("pull_request", flow.pull_payload(pull, "edited", changes={"title": {"from": "old"}}))
    assert flow.api_calls(before) == []

    release = flow.repo.commit({"README.md": "release branch\n"}, parent="main", branch="release")
    pull.base_ref, pull.base_sha = "release", release
    await flow.deliver("pull_request", flow.pull_payload(pull, "edited", changes={"base": {"ref": {"from": "main"}}}))
    runs = flow.repo.check_runs(head_sha=pull.head_sha, name="Tessera")
    assert len(runs) == 2 and runs[-1].conclusion == "action_required"


async def test_a_pending_team_member_cannot_ack(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    flow.fake.add_team_member("acme", "growth", "newbie", state="pending")
    pull = await flow.open_pr({FCT: _fct(flow).replace("    plan_code,\n", "")})
    comment = await flow.comment(pull, "/tessera ack", user="newbie")
    assert flow.reactions(comment) == ["confused"]
    assert flow.check(pull).conclusion == "action_required"


async def test_a_pull_request_too_big_to_list_is_read_from_its_head_tree(
    pr_flow: PullRequestFlow, monkeypatch: Any
) -> None:
    from app.workflow import checkout

    flow = pr_flow
    monkeypatch.setattr(checkout, "COMPARE_FILES_LIMIT", 1)  # GitHub stops listing at 300 files
    pull = await flow.open_pr({FCT: _fct(flow).replace("    plan_code,\n", "")})
    trees = [r.path for r in flow.fake.requests_to("GET", "/repos/acme/warehouse/git/trees/*")]
    assert len(trees) == 2 and trees[-1].endswith(pull.head_sha)
    assert flow.check(pull).conclusion == "action_required"


async def test_a_comparison_that_leaves_out_its_file_list_is_read_from_the_trees(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    # GitHub leaves the file list out of a comparison too large to diff: the change is not empty
    flow.fake.script("GET", "/repos/acme/warehouse/compare/*", ScriptedResponse(200, {
        "status": "ahead", "ahead_by": 1, "behind_by": 0, "total_commits": 1, "commits": []}))
    pull = await flow.open_pr({FCT: _fct(flow).replace("    plan_code,\n", "")})
    trees = [r.path for r in flow.fake.requests_to("GET", "/repos/acme/warehouse/git/trees/*")]
    assert len(trees) == 2 and trees[-1].endswith(pull.head_sha)
    assert flow.check(pull).conclusion == "action_required"


async def test_a_draft_gets_its_check_but_mentions_nobody_until_ready_for_review(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await flow.open_pr({FCT: _fct(flow).replace("    plan_code,\n", "")}, draft=True)
    assert flow.check(pull).conclusion == "action_required"
    assert flow.repo.bot_comments(pull.number) == []

    pull.draft = False
    await flow.deliver("pull_request", flow.pull_payload(pull, "ready_for_review"))
    [comment] = flow.impact_comments(pull)
    assert "@acme/growth" in comment.body
    assert flow.check(pull).conclusion == "action_required"


async def test_an_old_delivery_replayed_after_a_newer_head_was_analysed_does_not_publish_the_old_head(
    pr_flow: PullRequestFlow,
) -> None:
    flow = pr_flow
    pull = await flow.open_pr({FCT: _fct(flow).replace("    plan_code,\n", "")}, author="priya")
    opened, old_head = flow.deliveries[-1], pull.head_sha
    assert flow.check(pull).conclusion == "action_required"
    await flow.push(pull, {FCT: _fct(flow)})  # the breaking change is undone
    assert flow.check(pull).conclusion == "success"
    [comment] = flow.impact_comments(pull)
    shown = comment.body

    assert await flow.store.replay_delivery(opened, now=0.0)  # an operator replays the first delivery
    await flow.wait_done(opened)
    assert flow.check(pull).head_sha == pull.head_sha != old_head
    assert flow.check(pull).conclusion == "success"
    [comment] = flow.impact_comments(pull)
    assert comment.body == shown  # still the newer head's analysis
    old_run = flow.repo.check_run("Tessera", head_sha=old_head)
    assert old_run.conclusion in ("cancelled", "neutral", "action_required")
    assert old_run.conclusion != "success"


async def test_a_push_delivered_after_a_newer_push_was_analysed_does_not_publish_its_older_head(
    pr_flow: PullRequestFlow,
) -> None:
    flow = pr_flow
    pull, older, newer, older_head = await _pushes_out_of_order(flow)

    await flow.deliver("pull_request", newer)  # GitHub's webhooks arrive out of order
    [comment] = flow.impact_comments(pull)
    shown = comment.body
    await flow.deliver("pull_request", older)
    [comment] = flow.impact_comments(pull)
    assert comment.body == shown  # the newer head's analysis stays
    assert flow.check(pull).head_sha == pull.head_sha and flow.check(pull).conclusion == "success"
    old_run = flow.repo.check_run("Tessera", head_sha=older_head)
    assert old_run is None or old_run.conclusion == "cancelled"  # superseded, never judged


async def test_a_pull_request_whose_commits_change_nothing_changes_nothing_after_main_moved_on(
    pr_flow: PullRequestFlow,
) -> None:
    flow = pr_flow
    fct = _fct(flow)
    flow.repo.commit({FCT: fct.replace("    plan_code,\n", "")}, branch="main", message="older main")
    flow.repo.commit({}, parent="main", branch="empty-change", message="an empty commit")
    flow.repo.commit({FCT: fct}, branch="main", message="main moves on")  # plan_code comes back on main
    pull = flow.repo.open_pull_request(head="empty-change", author="priya")
    await flow.deliver("pull_request", flow.pull_payload(pull, "opened"))
    # GitHub lists no files: nothing changed, main's newer commit is not read as the pull request undoing it
    assert flow.check(pull).conclusion == "success"
    assert not [c for c in flow.impact_comments(pull) if "plan_code" in c.body]


async def test_a_recheck_followed_by_an_older_pushs_late_webhook_still_analyses_the_current_head(
    pr_flow: PullRequestFlow,
) -> None:
    flow = pr_flow
    pull, late, newer, _older_head = await _pushes_out_of_order(flow)
    await flow.deliver("pull_request", newer)
    completed = len([b for r in flow.repo.check_runs(head_sha=pull.head_sha) for b in r.bodies if b.get("status") == "completed"])

    comment = flow.repo.add_comment(pull.number, "/tessera recheck", user="priya")
    recheck = flow.pull_payload(pull, "created", comment=flow.fake._comment_json(comment),
                                issue={"number": pull.number, "pull_request": {"url": "x"}, "state": "open",
                                       "title": pull.title, "user": flow.fake._user(pull.author), "body": ""})
    del recheck["number"], recheck["pull_request"]
    recheck["sender"] = flow.fake._user("priya")
    first = await post_delivery(flow.client, "issue_comment", recheck, delivery_id="recheck")
    second = await post_delivery(flow.client, "pull_request", late, delivery_id="late")
    assert first.status in (200, 202) and second.status in (200, 202)
    await flow.wait_done("recheck")
    await flow.wait_done("late")
    runs = flow.repo.check_runs(head_sha=pull.head_sha)
    # the recheck analysed the head GitHub has now; the late, older push was superseded
    assert len([b for r in runs for b in r.bodies if b.get("status") == "completed"]) > completed
    assert flow.check(pull).conclusion == "success"


async def test_an_older_pushs_late_webhook_leaves_the_stored_pull_request_as_it_is_even_after_the_merge(
    pr_flow: PullRequestFlow,
) -> None:
    flow = pr_flow
    pull, late, newer, older_head = await _pushes_out_of_order(flow)
    await flow.deliver("pull_request", newer)

    await flow.deliver("pull_request", late)  # superseded: the stored head stays the newer one
    proposal = await flow.store.read(lambda db: proposal_sql.get_proposal(db, flow.repo.id, pull.number))
    assert proposal.head_sha == pull.head_sha != older_head and proposal.status == "open"

    pull.merged, pull.state = True, "closed"
    await flow.deliver("pull_request", flow.pull_payload(pull, "closed"))
    await flow.deliver("pull_request", late)  # again, after the merge: a merged pull request stays merged
    proposal = await flow.store.read(lambda db: proposal_sql.get_proposal(db, flow.repo.id, pull.number))
    assert (proposal.status, proposal.head_sha) == ("merged", pull.head_sha)


async def _pushes_out_of_order(flow: PullRequestFlow) -> tuple[FakePull, dict[str, Any], dict[str, Any], str]:
    """priya's pull request dropping ``plan_code``, then two pushes: an older one (still breaking)
    whose ``synchronize`` webhook GitHub will deliver late, and a newer one undoing the change.
    Returns the pull request, the older and the newer payloads (``updated_at`` 10:00 and 10:05),
    and the older head."""
    dropped = _fct(flow).replace("    plan_code,\n", "")
    pull = await flow.open_pr({FCT: dropped}, author="priya")
    flow.repo.push(pull.head_ref, {FCT: dropped + "\n"})
    older, older_head = flow.pull_payload(pull, "synchronize"), pull.head_sha
    flow.repo.push(pull.head_ref, {FCT: _fct(flow)})
    newer = flow.pull_payload(pull, "synchronize")
    older["pull_request"]["updated_at"], newer["pull_request"]["updated_at"] = "2026-12-01T10:00:00Z", "2026-12-01T10:05:00Z"
    assert older["pull_request"]["head"]["sha"] == older_head != pull.head_sha == newer["pull_request"]["head"]["sha"]
    return pull, older, newer, older_head
