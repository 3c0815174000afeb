"""Owners who are people, and consumers nobody owns, through signed deliveries and the fake GitHub.

The dashboard reading ``plan_code`` is owned by an e-mail, a CODEOWNERS ``@user``, or nobody; the
pull request drops ``plan_code``. Who is asked, who may answer, and what the check says.
"""

from __future__ import annotations

import datetime
from typing import Any

from app.store import proposals as sql
from app.workflow.serialize import analysis_from_json
from rules.analyze import analyze
from rules.config import parse_config
from rules.report import to_markdown
from rules.sources import DictSource
from tests.app import workflow_support
from tests.app.workflow_support import PullRequestFlow, repo_files

pr_flow = workflow_support.pr_flow

FCT = "models/marts/fct_revenue.sql"
MARTS = "models/marts/marts.yml"
GROWTH_OWNER = "    owner: {name: Growth Analytics}\n"


def _files(owner: str, config: str = "", **extra: str) -> dict[str, str]:
    """revenue_dbt with the dashboard's owner replaced (``""``: no owner at all)."""
    files = repo_files("revenue_dbt")
    assert GROWTH_OWNER in files[MARTS]
    files[MARTS] = files[MARTS].replace(GROWTH_OWNER, owner)
    files[".tessera.yml"] += config
    return {**files, **extra}


async def _drop_plan_code(
    flow: PullRequestFlow, files: dict[str, str], *, author: str = "priya", committer: tuple[str, str] | None = None
) -> Any:
    repo = flow.use_repo(f"acme/people-{len(flow.deliveries)}", files)
    if committer is not None:
        repo.commit({"docs/notes.md": "notes\n"}, branch="main", author=committer)
    text = files[FCT]
    return await flow.open_pr({FCT: text.replace("    plan_code,\n", "")}, author=author)


async def _required(flow: PullRequestFlow, pull: Any) -> tuple[Any, ...]:
    proposals = await flow.store.read(lambda db: sql.list_proposals(db))
    [proposal] = [p for p in proposals if p.repo == flow.repo.full_name and p.pr_number == pull.number]
    return analysis_from_json(proposal.analysis).required_acks


async def test_an_exposure_owned_by_an_email_asks_the_person_whose_commits_carry_it(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    owner = "    owner: {email: Dana.Lee@acme.test}\n"
    pull = await _drop_plan_code(flow, _files(owner), committer=("dana.lee@acme.test", "dana"))
    check = flow.check(pull)
    assert check.conclusion == "action_required" and "@dana" in check.output["title"]
    [comment] = flow.impact_comments(pull)
    assert "acknowledgement from @dana" in comment.body.splitlines()[1]
    [need] = await _required(flow, pull)
    assert (need.kind, need.user, need.login, need.fallback) == ("user", "dana.lee@acme.test", "dana", False)
    lookups = flow.fake.requests_to("GET", f"/repos/{flow.repo.full_name}/commits")
    assert lookups and lookups[-1].query["author"] == "dana.lee@acme.test"

    someone = await flow.comment(pull, "/tessera ack", user="gina")
    assert flow.reactions(someone) == ["confused"]
    assert "not among those asked to respond here" in flow.replies(pull)[-1].body
    named = await flow.comment(pull, "/tessera ack @dana", user="gina")
    assert flow.reactions(named) == ["confused"]
    assert "only @dana can answer for themself" in flow.replies(pull)[-1].body
    assert flow.check(pull).conclusion == "action_required"

    dana = await flow.comment(pull, "/tessera ack", user="dana")
    assert flow.reactions(dana) == ["+1"]
    assert flow.check(pull).conclusion == "success"
    [comment] = flow.impact_comments(pull)
    assert "acknowledged by @dana" in comment.body
    flow.fake.assert_no_violations()


async def test_a_found_login_is_remembered_and_a_person_can_take_their_ack_back(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    owner = "    owner: {email: dana@acme.test}\n"
    pull = await _drop_plan_code(flow, _files(owner), committer=("dana@acme.test", "dana"))
    lookups = len(flow.fake.requests_to("GET", f"/repos/{flow.repo.full_name}/commits"))
    await flow.comment(pull, "/tessera recheck", user="sam")
    assert len(flow.fake.requests_to("GET", f"/repos/{flow.repo.full_name}/commits")) == lookups == 1

    await flow.comment(pull, "/tessera ack", user="dana")
    assert flow.check(pull).conclusion == "success"
    other = await flow.comment(pull, "/tessera unack @dana", user="gina")
    assert flow.reactions(other) == ["confused"]
    unack = await flow.comment(pull, "/tessera unack", user="dana")
    assert flow.reactions(unack) == ["+1"]
    assert flow.check(pull).conclusion == "action_required"


async def test_an_email_no_commit_carries_is_held_for_the_maintainers(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _drop_plan_code(flow, _files("    owner: {email: ghost@acme.test}\n"))
    flow.repo.set_permission("mo", "maintain")
    flow.repo.set_permission("wendy", "write")
    check = flow.check(pull)
    assert check.conclusion == "action_required" and "maintainers" in check.output["title"]
    [comment] = flow.impact_comments(pull)
    headline = comment.body.splitlines()[1]
    assert "1 consumer has no owner: held for the repository's maintainers" in headline
    assert "ghost@\u2060acme.test has no GitHub user" in comment.body  # shown, not linked as an e-mail

    writer = await flow.comment(pull, "/tessera ack", user="wendy")
    assert flow.reactions(writer) == ["confused"]
    maintainer = await flow.comment(pull, "/tessera ack", user="mo")
    assert flow.reactions(maintainer) == ["+1"]
    assert flow.check(pull).conclusion == "success"
    flow.fake.assert_no_violations()


async def test_a_codeowners_user_owning_the_dashboard_is_asked(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _drop_plan_code(flow, _files("", CODEOWNERS=f"{MARTS} @gina\n"))
    [need] = await _required(flow, pull)
    assert (need.kind, need.login) == ("user", "gina")
    assert "@gina" in flow.check(pull).output["title"]
    # a login needs no lookup
    assert flow.fake.requests_to("GET", f"/repos/{flow.repo.full_name}/commits") == []

    author = await flow.comment(pull, "/tessera ack", user="priya")
    assert flow.reactions(author) == ["confused"]
    gina = await flow.comment(pull, "/tessera ack @gina", user="gina")
    assert flow.reactions(gina) == ["+1"]
    assert flow.check(pull).conclusion == "success"


async def test_an_unowned_dashboard_is_held_for_the_fallback_team(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    flow.fake.add_team_member("acme", "growth", "gina")
    pull = await _drop_plan_code(flow, _files("", "fallback: growth\n"))
    check = flow.check(pull)
    assert check.conclusion == "action_required" and "@acme/growth" in check.output["title"]
    [comment] = flow.impact_comments(pull)
    assert "1 consumer has no owner: held for @acme/growth" in comment.body.splitlines()[1]
    assert "@acme/growth (holding for consumers with no owner)" in comment.body

    gina = await flow.comment(pull, "/tessera ack", user="gina")
    assert flow.reactions(gina) == ["+1"]
    assert flow.check(pull).conclusion == "success"


async def test_an_unowned_dashboard_without_a_fallback_is_held_for_maintainers_not_the_author(
    pr_flow: PullRequestFlow,
) -> None:
    flow = pr_flow
    pull = await _drop_plan_code(flow, _files(""), author="ada")
    flow.repo.set_permission("ada", "admin")
    flow.repo.set_permission("mo", "maintain")
    assert flow.check(pull).conclusion == "action_required"
    [need] = await _required(flow, pull)
    assert need.maintainers

    author = await flow.comment(pull, "/tessera ack", user="ada")
    assert flow.reactions(author) == ["confused"]
    mo = await flow.comment(pull, "/tessera ack", user="mo")
    assert flow.reactions(mo) == ["+1"]
    assert flow.check(pull).conclusion == "success"


async def test_on_unowned_warn_passes_with_the_note(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _drop_plan_code(flow, _files("", "on_unowned: warn\n"))
    assert flow.check(pull).conclusion == "success"
    [comment] = flow.impact_comments(pull)
    headline = comment.body.splitlines()[1]
    assert not headline.startswith("## 🟢") and "1 consumer has no owner: held for nobody" in headline
    assert "nobody was asked to acknowledge" in comment.body


async def test_a_new_push_with_the_same_breaking_change_keeps_a_persons_ack(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    pull = await _drop_plan_code(flow, _files("", CODEOWNERS=f"{MARTS} @gina\n"))
    await flow.comment(pull, "/tessera ack", user="gina")
    await flow.push(pull, {"README.md": "docs\n", FCT: flow.repo.files_at(pull.head_sha)[FCT].decode() + "\n"})
    assert flow.check(pull).conclusion == "success"
    text = flow.repo.files_at(pull.head_sha)[FCT].decode()
    await flow.push(pull, {FCT: text.replace("    amount as revenue,\n", "")})
    assert flow.check(pull).conclusion == "action_required"
    [comment] = flow.impact_comments(pull)
    assert "the earlier ack by @gina was for different changes" in comment.body


def test_without_github_the_email_it_would_ask_is_shown() -> None:
    base = _files("    owner: {email: dana@acme.test}\n")
    head = {**base, FCT: base[FCT].replace("    plan_code,\n", "")}
    analysis = analyze(
        DictSource(base), DictSource(head), base_rev="b", head_rev="h",
        config=parse_config(base[".tessera.yml"]), changed_paths=[FCT], today=datetime.date(2026, 1, 1),
    )
    assert analysis.to_dict()["required_acks"] == [
        {"kind": "user", "user": "dana@acme.test", "reasons": list(analysis.required_acks[0].reasons)}
    ]
    assert "acknowledgement from `dana@acme.test`" in to_markdown(analysis).splitlines()[1]
