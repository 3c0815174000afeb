"""Observed consumers in the PR workflow: the comment names the reader and the check waits for its team."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.config import Settings
from app.discovery import remap
from app.store import observed as observed_sql
from app.store import proposals as proposal_sql
from app.store import registry
from app.store.observed import ObservedRead
from tests.app import workflow_support
from tests.app.registry_support import BOOTSTRAP, Api
from tests.app.workflow_support import PullRequestFlow, repo_files
from tests.fakegithub import FakeGitHub
from tests.fixtures_app import wait_until
from tests.fixtures_github import INSTALLATION_ID

pr_flow = workflow_support.pr_flow

FCT = "models/marts/fct_revenue.sql"


def seen(days_ago: int, reader: str, queries: int) -> ObservedRead:
    day = (dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)).date().isoformat()
    return ObservedRead("analytics.fct_revenue", "role", reader, ("customer_id",), queries=queries,
                        last_seen=f"{day}T08:00:00+00:00", daily={day: queries})


async def test_a_column_an_observed_role_reads_waits_for_the_team_its_role_is_mapped_to(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    await flow.store.write(lambda db: registry.create_team(db, "marketing", "Marketing", "acme/marketing"))
    await flow.store.write(lambda db: observed_sql.set_mapping(db, kind="role", name="LOOKER_FINANCE", team="marketing",
                                                               created_by="test"))
    await flow.store.write(lambda db: observed_sql.record(
        db, [seen(1, "LOOKER_FINANCE", 14), seen(60, "OLD_REPORTS", 5)], source_kind="snowflake"))
    text = flow.repo.files_at("main")[FCT].decode()
    pull = await flow.open_pr({FCT: text.replace("    customer_id,\n", "")})

    check = flow.check(pull)
    assert check.conclusion == "action_required" and "@acme/marketing" in check.output["title"]
    [comment] = flow.impact_comments(pull)
    assert "read by 14 queries from role LOOKER_FINANCE in the last 30 days (marketing)" in comment.body
    assert "role OLD_REPORTS (not seen since" in comment.body  # listed, not required
    assert "OLD_REPORTS reads" not in comment.body  # a stale reader is not reported as unowned

    flow.fake.add_team_member("acme", "marketing", "mo")
    flow.fake.add_team_member("acme", "growth", "gina")
    await flow.comment(pull, "/tessera ack marketing", user="mo")
    await flow.comment(pull, "/tessera ack", user="gina")
    assert flow.check(pull).conclusion == "success"


async def test_mapping_an_unmapped_role_through_the_api_makes_the_open_check_wait_for_that_team(
    fake_github: FakeGitHub, github_app: Any, make_client: Any, store: Any, app_settings: Settings
) -> None:
    repo = fake_github.add_repo("acme/warehouse", installation_id=INSTALLATION_ID, files=repo_files("revenue_dbt"))
    client = await make_client(app_settings.with_overrides(bootstrap_key=BOOTSTRAP), github=github_app)
    flow = PullRequestFlow(fake=fake_github, client=client, store=store, repo=repo)
    api = Api(client=client, store=store)
    await api.team("marketing", "acme/marketing")
    await store.write(lambda db: observed_sql.record(db, [seen(1, "LOOKER_FINANCE", 14)], source_kind="snowflake"))
    text = repo.files_at("main")[FCT].decode()
    pull = await flow.open_pr({FCT: text.replace("    customer_id,\n", "")})
    fake_github.add_team_member("acme", "growth", "gina")
    await flow.comment(pull, "/tessera ack", user="gina")
    assert flow.check(pull).conclusion == "success"  # nobody owns the role yet: shown, not waited for
    [comment] = flow.impact_comments(pull)
    assert "no team is mapped to role LOOKER_FINANCE" in comment.body

    status, body = await api.call("POST", "/discovery/mappings",
                                  json={"kind": "role", "name": "LOOKER_FINANCE", "team": "marketing"})
    assert status == 201 and body["rechecks"] == 1

    check = await wait_until(
        lambda: "@acme/marketing" in flow.check(pull).output.get("title", "") and flow.check(pull), timeout=30)
    assert check.conclusion == "action_required"
    assert "@acme/marketing" in check.output["title"]
    [comment] = flow.impact_comments(pull)
    assert "read by 14 queries from role LOOKER_FINANCE in the last 30 days (marketing)" in comment.body
    assert "no team is mapped to role LOOKER_FINANCE" not in comment.body
    log = await store.read(lambda db: proposal_sql.list_audit(db, team="marketing"))
    assert (log[0]["action"], log[0]["detail"], log[0]["actor"]) == (
        "discovery_mapped", {"kind": "role", "name": "looker_finance"}, "bootstrap")

    fake_github.add_team_member("acme", "marketing", "mo")
    await flow.comment(pull, "/tessera ack marketing", user="mo")
    assert flow.check(pull).conclusion == "success"


async def test_mapping_a_reader_no_open_pull_request_reads_queues_nothing(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    await flow.store.write(lambda db: registry.create_team(db, "marketing", "Marketing", "acme/marketing"))
    text = flow.repo.files_at("main")[FCT].decode()
    await flow.open_pr({FCT: text.replace("    customer_id,\n", "")})
    outcome = await flow.store.write(lambda db: remap.map_reader(db, kind="role", name="NOBODY", team="marketing",
                                                                 actor="test"))
    assert not isinstance(outcome, str) and outcome[1] == []
    assert await flow.store.write(lambda db: remap.map_reader(db, kind="role", name="X", team="nope", actor="t")) == (
        "no team 'nope': an admin creates it with POST /api/v1/teams")


async def test_mapping_a_bi_folder_rechecks_the_pull_requests_its_explores_read(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    await flow.store.write(lambda db: registry.create_team(db, "marketing", "Marketing", "acme/marketing"))
    day = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date().isoformat()
    explore = ObservedRead("analytics.fct_revenue", "bi", "looker explore finance.revenue", ("customer_id",),
                           last_seen=f"{day}T08:00:00+00:00", folder="finance_looker")
    await flow.store.write(lambda db: observed_sql.record(db, [explore], source_kind="lookml"))
    text = flow.repo.files_at("main")[FCT].decode()
    pull = await flow.open_pr({FCT: text.replace("    customer_id,\n", "")})
    assert "no team is mapped to its folder finance_looker" in flow.impact_comments(pull)[0].body

    outcome = await flow.store.write(lambda db: remap.map_reader(
        db, kind="folder", name="finance_looker", team="marketing", actor="user:mo"))
    assert not isinstance(outcome, str)
    mapping, touched = outcome
    assert mapping["name"] == "finance_looker" and [p.pr_number for p in touched] == [pull.number]
    assert await remap.queue_rechecks(flow.store, touched) == 1
    check = await wait_until(
        lambda: "@acme/marketing" in flow.check(pull).output.get("title", "") and flow.check(pull), timeout=30)
    assert check.conclusion == "action_required"
    assert "no team is mapped to its folder" not in flow.impact_comments(pull)[0].body
