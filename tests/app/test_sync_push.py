"""Registry sync from GitHub: signed ``push`` and ``installation`` deliveries, the fake GitHub, the
real engine. A query in one repository that reads another's table becomes that team's registration,
and a pull request in the producing repository then needs the reading team's ack."""

from __future__ import annotations

from typing import Any

import pytest

from app.config import Settings
from app.store import registry as reg_sql
from tests.app import workflow_support
from tests.app.registry_support import ADMIN, BOOTSTRAP
from tests.app.workflow_support import PullRequestFlow, repo_files
from tests.fixtures_app import wait_until
from tests.fixtures_github import INSTALLATION_ID

pr_flow = workflow_support.pr_flow

PLATFORM_FILES = {
    ".tessera.yml": "teams:\n  platform: {github: acme/platform}\n  growth: {github: acme/growth}\n"
    "sql:\n  paths: [\"migrations/**/*.sql\"]\n  dialect: postgres\n",
    "CODEOWNERS": "* @acme/platform\n",
    "migrations/001_orders.sql": "CREATE TABLE analytics.orders (\n    id BIGINT PRIMARY KEY,\n"
    "    customer_id BIGINT NOT NULL,\n    amount NUMERIC(12, 2),\n    plan_code VARCHAR(20)\n);\n",
}
GROWTH_FILES = {
    ".tessera.yml": "teams:\n  growth: {github: acme/growth}\nsql:\n  dialect: postgres\n",
    "CODEOWNERS": "* @acme/growth\n",
    "queries/churn.sql": "-- weekly churn by plan\nselect o.plan_code, count(*) as orders\nfrom analytics.orders o\n"
    "where o.amount > 0\ngroup by 1\n",
    "views/ltv.sql": "create view growth.ltv as select customer_id, sum(amount) as ltv from analytics.orders group by 1;\n",
}


@pytest.fixture
def app_settings(app_settings: Settings) -> Settings:
    return app_settings.with_overrides(bootstrap_key=BOOTSTRAP)


async def _settled(flow: PullRequestFlow) -> None:
    """Wait until every queued job (the per-repository syncs an installation queues) has finished."""

    async def idle() -> bool:
        counts = await flow.store.count_deliveries()
        return counts["queued"] == 0 and counts["running"] == 0

    await wait_until(idle, timeout=30)
    assert (await flow.store.count_deliveries())["failed"] == 0


async def _install(flow: PullRequestFlow, event: str, payload: dict[str, Any]) -> None:
    await flow.deliver(event, payload)
    await _settled(flow)


async def _get(flow: PullRequestFlow, path: str) -> Any:
    response = await flow.client.get(f"/api/v1{path}", headers=ADMIN)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_a_push_to_the_default_branch_syncs_assets_owners_and_column_edges(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    before = flow.repo.resolve("main")
    flow.repo.push("main", {"README.md": "warehouse\n"})
    await flow.deliver("push", flow.fake.event_push(flow.repo, "main", before))

    asset = await _get(flow, "/assets/fct_revenue")
    assert asset["owner"]["team"] == "finance" and asset["owner"]["github_team"] == "acme/finance-data"
    assert asset["commit"] == flow.repo.resolve("main")
    assert "plan_code" in [c["name"] for c in asset["columns"]]
    impact = await _get(flow, "/assets/stg_orders/impact?column=plan_code")
    assert [a["asset"] for a in impact["downstream"]] == ["fct_revenue"]
    assert impact["downstream"][0]["columns"] == ["plan_code"]  # column-level, from the engine's lineage
    assert [(e["name"], e["team"]) for e in impact["exposures"]] == [("revenue_dashboard", "growth")]


async def test_a_redelivered_push_does_not_sync_again(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    before = flow.repo.resolve("main")
    flow.repo.push("main", {"README.md": "x\n"})
    payload = flow.fake.event_push(flow.repo, "main", before)
    await flow.deliver("push", payload)
    requests = len(flow.fake.requests)
    await flow.deliver("push", payload)
    assert len(flow.fake.requests) == requests
    synced = await flow.store.read(lambda db: db.execute("SELECT count(*) FROM audit_log WHERE action = 'registry_synced'").fetchone()[0])
    assert synced == 1


async def test_a_push_to_another_branch_changes_nothing(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    before = flow.repo.resolve("main")
    flow.repo.commit({"README.md": "wip\n"}, branch="feature")
    await flow.deliver("push", flow.fake.event_push(flow.repo, "feature", before))
    assert await flow.store.read(lambda db: reg_sql.search_assets(db)) == []


async def test_an_installation_syncs_every_repository_and_finds_cross_repository_readers(
    pr_flow: PullRequestFlow,
) -> None:
    flow = pr_flow
    flow.fake.add_repo("acme/platform-sql", installation_id=INSTALLATION_ID, files=PLATFORM_FILES)
    flow.fake.add_repo("acme/growth-queries", installation_id=INSTALLATION_ID, files=GROWTH_FILES)
    await _install(flow, "installation", flow.fake.event_installation(INSTALLATION_ID))

    orders = await _get(flow, "/assets/analytics.orders")
    assert orders["repo"] == "acme/platform-sql" and orders["owner"]["team"] == "platform"
    regs = {(r["team"], r["source"]): r["columns"] for r in orders["consumers"]["registrations"]}
    assert regs == {
        ("growth", "sql:acme/growth-queries/queries/churn.sql"): ["amount", "plan_code"],
        ("growth", "sql:acme/growth-queries/views/ltv.sql"): ["amount", "customer_id"],
    }
    assert (await _get(flow, "/assets/fct_revenue"))["repo"] == "acme/warehouse"
    impact = await _get(flow, "/assets/analytics.orders/impact?column=plan_code")
    assert [t["team"] for t in impact["teams"]] == ["growth"]
    assert [r["source"] for r in impact["registrations"]] == ["sql:acme/growth-queries/queries/churn.sql"]


async def test_a_pr_dropping_a_column_another_repositorys_query_reads_needs_that_teams_ack(
    pr_flow: PullRequestFlow,
) -> None:
    flow = pr_flow
    flow.fake.add_repo("acme/growth-queries", installation_id=INSTALLATION_ID, files=GROWTH_FILES)
    await _install(flow, "installation", flow.fake.event_installation(INSTALLATION_ID))
    flow.use_repo("acme/platform-sql", PLATFORM_FILES)
    dropped = PLATFORM_FILES["migrations/001_orders.sql"].replace(",\n    plan_code VARCHAR(20)", "")
    pull = await flow.open_pr({"migrations/001_orders.sql": dropped})
    check = flow.check(pull)
    assert check.conclusion == "action_required"
    assert "@acme/growth" in check.output["title"]
    [comment] = flow.impact_comments(pull)
    assert "queries/churn.sql" in comment.body


async def test_repositories_added_to_an_installation_are_synced(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    repo = flow.fake.add_repo("acme/platform-sql", installation_id=INSTALLATION_ID, files=PLATFORM_FILES)
    payload = {
        "action": "added",
        "installation": flow.fake._installation_json(flow.fake.installations[INSTALLATION_ID]),
        "repository_selection": "selected",
        "repositories_added": [{"id": repo.id, "node_id": "", "name": repo.name, "full_name": repo.full_name,
                                "private": True}],
        "repositories_removed": [],
        "sender": flow.fake._user("octocat"),
    }
    await _install(flow, "installation_repositories", payload)
    assert (await _get(flow, "/assets/analytics.orders"))["owner"]["team"] == "platform"
    assert (await _get(flow, "/assets?repo=acme/warehouse"))["items"] == []


async def test_each_repository_of_an_installation_is_its_own_job_and_a_rerun_queues_none_twice(
    pr_flow: PullRequestFlow,
) -> None:
    flow = pr_flow
    flow.fake.add_repo("acme/platform-sql", installation_id=INSTALLATION_ID, files=PLATFORM_FILES)
    payload = flow.fake.event_installation(INSTALLATION_ID)
    await _install(flow, "installation", payload)
    jobs = [d for d in await flow.store.list_deliveries(limit=50) if d.event == "tessera_sync_repo"]
    assert sorted(d.repository for d in jobs) == ["acme/platform-sql", "acme/warehouse"]
    await flow.store.replay_delivery(flow.deliveries[-1], 0.0)
    await _settled(flow)
    again = [d for d in await flow.store.list_deliveries(limit=50) if d.event == "tessera_sync_repo"]
    assert len(again) == 2


def test_fixture_repository_is_the_workflows_own() -> None:
    assert "models/marts/fct_revenue.sql" in repo_files("revenue_dbt")


async def test_repositories_removed_from_the_installation_leave_the_registry(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    repo = flow.fake.add_repo("acme/platform-sql", installation_id=INSTALLATION_ID, files=PLATFORM_FILES)
    flow.fake.add_repo("acme/growth-queries", installation_id=INSTALLATION_ID, files=GROWTH_FILES)
    await _install(flow, "installation", flow.fake.event_installation(INSTALLATION_ID))
    growth = flow.fake.repo("acme/growth-queries")
    payload = {
        "action": "removed",
        "installation": flow.fake._installation_json(flow.fake.installations[INSTALLATION_ID]),
        "repository_selection": "selected",
        "repositories_added": [],
        "repositories_removed": [{"id": growth.id, "node_id": "", "name": growth.name, "full_name": growth.full_name,
                                  "private": True}],
        "sender": flow.fake._user("octocat"),
    }
    await _install(flow, "installation_repositories", payload)
    orders = await _get(flow, "/assets/analytics.orders")
    assert orders["repo"] == repo.full_name and orders["consumers"]["registrations"] == []
    assert (await _get(flow, "/assets?repo=acme/growth-queries"))["items"] == []


async def test_a_repository_whose_tessera_yml_names_a_team_is_that_teams_to_sync_a_manifest_for(
    pr_flow: PullRequestFlow,
) -> None:
    flow = pr_flow
    flow.fake.add_repo("acme/growth-dbt", installation_id=INSTALLATION_ID,
                       files={".tessera.yml": "teams:\n  growth: {github: acme/growth}\n", "README.md": "soon\n"})
    await _install(flow, "installation", flow.fake.event_installation(INSTALLATION_ID))
    keys = {}
    for slug in ("growth", "ops"):
        await flow.client.post("/api/v1/teams", json={"slug": slug, "name": slug.title()}, headers=ADMIN)
        made = await flow.client.post(f"/api/v1/teams/{slug}/keys", json={"scopes": ["write"]}, headers=ADMIN)
        keys[slug] = {"Authorization": f"Bearer {(await made.json())['key']}"}
    body = {"repo": "acme/Growth-DBT", "commit": "a" * 40, "manifest": {"nodes": {}}}
    refused = await flow.client.post("/api/v1/sync/dbt", json=body, headers=keys["ops"])
    assert refused.status == 403 and "owned by growth" in (await refused.json())["error"]["message"]
    accepted = await flow.client.post("/api/v1/sync/dbt", json=body, headers=keys["growth"])
    assert accepted.status == 200 and (await accepted.json())["repo"] == "acme/growth-dbt"
    # The manifest says nothing about the repository's teams: the file's stay its owners.
    again = await flow.client.post("/api/v1/sync/dbt", json=body, headers=keys["ops"])
    assert again.status == 403


async def test_a_readers_dbt_source_of_another_teams_table_leaves_the_table_its_owners(pr_flow: PullRequestFlow) -> None:
    flow = pr_flow
    flow.fake.add_repo("acme/platform-sql", installation_id=INSTALLATION_ID, files=PLATFORM_FILES)
    await _install(flow, "installation", flow.fake.event_installation(INSTALLATION_ID))
    await flow.client.post("/api/v1/teams", json={"slug": "growth", "name": "Growth"}, headers=ADMIN)
    made = await flow.client.post("/api/v1/teams/growth/keys", json={"scopes": ["write"]}, headers=ADMIN)
    growth = {"Authorization": f"Bearer {(await made.json())['key']}"}
    source = {"resource_type": "source", "unique_id": "source.growth.analytics.orders", "name": "orders",
              "source_name": "analytics", "package_name": "growth", "meta": {"owner": "growth"}, "columns": {}}
    manifest = {"metadata": {"project_name": "growth"}, "nodes": {}, "sources": {source["unique_id"]: source}}
    synced = await flow.client.post("/api/v1/sync/dbt", headers=growth,
                                    json={"repo": "acme/growth-dbt", "commit": "b" * 40, "manifest": manifest})
    assert synced.status == 200 and (await synced.json())["assets"] == 1
    orders = await _get(flow, "/assets/analytics.orders")
    assert (orders["repo"], orders["owner"]["team"]) == ("acme/platform-sql", "platform")
    owners = await flow.store.read(reg_sql.asset_owners)
    assert owners["analytics.orders"][0] == "platform"


async def test_a_lookml_project_in_an_installed_repository_becomes_observed_bi_consumers(
    pr_flow: PullRequestFlow,
) -> None:
    flow = pr_flow
    before = flow.repo.resolve("main")
    flow.repo.push("main", {
        "looker/finance.model.lkml": "explore: revenue {}\n",
        "looker/revenue.view.lkml": "view: revenue {\n  sql_table_name: analytics.fct_revenue ;;\n"
        "  dimension: plan_code { sql: ${TABLE}.plan_code ;; }\n}\n",
    })
    await flow.deliver("push", flow.fake.event_push(flow.repo, "main", before))
    observed = await _get(flow, "/consumers/observed")
    assert [(r["asset"], r["reader"], r["columns"], r["folder"]) for r in observed["items"]] == [
        ("fct_revenue", {"kind": "bi", "name": "looker explore finance.revenue"}, ["plan_code"], "acme/warehouse")]


async def test_installing_on_a_larger_repository_reads_it_from_one_tarball_not_a_call_per_file(
    pr_flow: PullRequestFlow,
) -> None:
    flow = pr_flow
    files = {**GROWTH_FILES, **{f"queries/q{n}.sql": f"select plan_code, {n} as n from analytics.orders\n" for n in range(12)}}
    flow.fake.add_repo("acme/growth-queries", installation_id=INSTALLATION_ID, files=files)
    await _install(flow, "installation", flow.fake.event_installation(INSTALLATION_ID))

    assert len(flow.fake.requests_to("GET", "/repos/acme/growth-queries/tarball/*")) == 1
    assert flow.fake.requests_to("GET", "/repos/acme/growth-queries/git/blobs/*") == []
    assert (await _get(flow, "/assets/growth.ltv"))["repo"] == "acme/growth-queries"
