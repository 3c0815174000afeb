"""Assets, impact, contracts and registrations through the API, over a synced dbt manifest."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from app.discovery.run import discover
from app.store import contracts as contract_sql
from app.store import observed as observed_sql
from app.store.observed import ObservedRead
from tests.app import registry_support as support
from tests.app.registry_support import Api

api, api_settings = support.api, support.api_settings

MANIFEST = Path(__file__).parent.parent / "data" / "registry" / "manifest.json"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
async def synced(api: Api) -> Api:
    """Finance and Growth, and the analytics manifest synced for acme/warehouse."""
    await api.team("finance", "acme/finance-data", name="Finance Data")
    await api.team("growth", "acme/growth", name="Growth Analytics")
    body = {"repo": "acme/warehouse", "commit": COMMIT, "manifest": json.loads(MANIFEST.read_text()),
            "project_dir": "analytics"}
    status, summary = await api.call("POST", "/sync/dbt", json=body)
    assert status == 200, summary
    assert summary["assets"] == 5 and summary["exposures"] == 1
    return api


async def test_a_synced_manifest_gives_assets_their_owning_team_through_the_group_owner(synced: Api) -> None:
    status, asset = await synced.call("GET", "/assets/fct_revenue")
    assert status == 200
    assert asset["owner"]["team"] == "finance" and asset["owner"]["github_team"] == "acme/finance-data"
    assert [c["name"] for c in asset["columns"]] == ["order_id", "revenue", "plan_code"]
    assert asset["repo"] == "acme/warehouse" and asset["commit"] == COMMIT


async def test_one_asset_lists_its_consumers_readers_exposures_and_registrations(synced: Api) -> None:
    await synced.call("POST", "/registrations", json={"team": "growth", "asset": "fct_revenue", "columns": ["plan_code"]})
    _, asset = await synced.call("GET", "/assets/fct_revenue")
    consumers = asset["consumers"]
    assert {(c["asset"], c["team"]) for c in consumers["assets"]} == {("growth_kpis", "growth"), ("finance_daily", "finance")}
    assert [(e["name"], e["team"]) for e in consumers["exposures"]] == [("revenue_dashboard", "growth")]
    assert [(r["team"], r["columns"]) for r in consumers["registrations"]] == [("growth", ["plan_code"])]


async def test_one_asset_lists_the_readers_discovery_observed_with_team_count_and_staleness(
    synced: Api, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    recent = (now - dt.timedelta(days=2)).isoformat()
    log = tmp_path / "queries.jsonl"
    log.write_text("\n".join(json.dumps(row) for row in [
        {"query": "select plan_code, sum(revenue) from warehouse.analytics.fct_revenue group by 1",
         "role": "LOOKER_FINANCE", "time": recent},
        {"query": "select revenue from analytics.fct_revenue", "role": "LOOKER_FINANCE", "time": recent},
        {"query": "select order_id from analytics.stg_orders", "role": "ETL", "time": recent},
    ]) + "\n")
    await discover(synced.store, str(log), "jsonl", now=now)
    old_day = (now - dt.timedelta(days=90)).date().isoformat()
    old = ObservedRead("fct_revenue", "user", "ann@acme.com", ("revenue",), queries=4,
                       last_seen=f"{old_day}T09:00:00+00:00", daily={old_day: 4})
    await synced.store.write(lambda db: observed_sql.record(db, [old], source_kind="bigquery"))
    status, _ = await synced.call("POST", "/discovery/mappings",
                                  json={"kind": "role", "name": "looker_finance", "team": "growth"})
    assert status == 201

    status, asset = await synced.call("GET", "/assets/fct_revenue")
    assert status == 200
    readers = {(r["reader"]["kind"], r["reader"]["name"]): r for r in asset["consumers"]["observed"]}
    assert set(readers) == {("role", "LOOKER_FINANCE"), ("user", "ann@acme.com")}
    looker = readers["role", "LOOKER_FINANCE"]
    assert (looker["origin"], looker["source"], looker["team"], looker["columns"], looker["queries"], looker["stale"]) == (
        "observed", "jsonl", "growth", ["plan_code", "revenue"], 2, False)
    assert looker["last_seen"].startswith(recent[:10])
    ann = readers["user", "ann@acme.com"]
    assert (ann["team"], ann["queries"], ann["stale"], ann["last_seen"][:10]) == (None, 0, True, old_day)


async def test_search_filters_by_name_owner_and_repo(synced: Api) -> None:
    _, found = await synced.call("GET", "/assets?q=revenue")
    assert [a["fqn"] for a in found["items"]] == ["fct_revenue"]
    _, found = await synced.call("GET", "/assets?owner=growth")
    assert [a["fqn"] for a in found["items"]] == ["growth_kpis"]
    _, found = await synced.call("GET", "/assets?repo=acme/other")
    assert found["items"] == []


async def test_search_pages_with_a_cursor_and_a_link_header(synced: Api) -> None:
    response = await synced.client.get("/api/v1/assets?limit=2", headers=support.ADMIN)
    first = await response.json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    assert 'rel="next"' in response.headers["Link"]
    seen = [a["fqn"] for a in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        _, more = await synced.call("GET", f"/assets?limit=2&cursor={cursor}")
        seen += [a["fqn"] for a in more["items"]]
        cursor = more["next_cursor"]
    assert sorted(seen) == ["fct_revenue", "finance_daily", "growth_kpis", "raw.orders", "stg_orders"]
    status, body = await synced.call("GET", "/assets?cursor=@@@")
    assert status == 400 and "cursor" in body["error"]["message"]


async def test_an_unknown_asset_is_404_with_a_hint(synced: Api) -> None:
    status, body = await synced.call("GET", "/assets/nope")
    assert status == 404 and "GET /api/v1/assets?q=" in body["error"]["message"]


async def test_impact_is_transitive_and_names_the_teams_downstream(synced: Api) -> None:
    status, impact = await synced.call("GET", "/assets/stg_orders/impact?column=plan_code")
    assert status == 200
    assert [(a["asset"], a["depth"]) for a in impact["downstream"]] == [
        ("fct_revenue", 1), ("finance_daily", 2), ("growth_kpis", 2)]
    assert [e["name"] for e in impact["exposures"]] == ["revenue_dashboard"]
    # The producing team (finance) is not asked about its own models.
    assert [t["team"] for t in impact["teams"]] == ["growth"]
    assert impact["teams"][0]["github_team"] == "acme/growth"


async def test_impact_follows_registrations_only_for_the_columns_they_read(synced: Api) -> None:
    await synced.team("ops")
    await synced.call("POST", "/registrations", json={"team": "ops", "asset": "finance_daily", "columns": ["day"]})
    _, by_day = await synced.call("GET", "/assets/finance_daily/impact?column=day")
    assert [r["team"] for r in by_day["registrations"]] == ["ops"]
    _, by_revenue = await synced.call("GET", "/assets/finance_daily/impact?column=revenue")
    assert by_revenue["registrations"] == [] and by_revenue["teams"] == []


async def test_impact_sees_a_new_sync_without_a_restart(synced: Api) -> None:
    _, before = await synced.call("GET", "/assets/fct_revenue/impact")
    assert {a["asset"] for a in before["downstream"]} == {"growth_kpis", "finance_daily"}
    manifest = json.loads(MANIFEST.read_text())
    del manifest["nodes"]["model.analytics.growth_kpis"]
    await synced.call("POST", "/sync/dbt", json={"repo": "acme/warehouse", "commit": "b" * 40, "manifest": manifest})
    _, after = await synced.call("GET", "/assets/fct_revenue/impact")
    assert {a["asset"] for a in after["downstream"]} == {"finance_daily"}


async def test_impact_of_an_asset_the_registry_does_not_know_is_404(synced: Api) -> None:
    status, body = await synced.call("GET", "/assets/ghost/impact")
    assert status == 404 and "sync" in body["error"]["message"]


async def test_contract_versions_and_the_engines_diff_between_two(synced: Api) -> None:
    v1 = {"fqn": "fct_revenue", "kind": "model", "columns": [
        {"name": "order_id", "type": "INT", "nullable": False, "description": ""},
        {"name": "plan_code", "type": "TEXT", "nullable": None, "description": ""}]}
    v2 = {"fqn": "fct_revenue", "kind": "model", "columns": [
        {"name": "order_id", "type": "INT", "nullable": False, "description": ""}]}

    def publish(db: Any) -> None:
        contract_sql.publish(db, repo_id=1, repo="acme/warehouse", asset="fct_revenue", bump="minor", schema=v1,
                             changes=[], pr_number=1, head_sha="a")
        contract_sql.publish(db, repo_id=1, repo="acme/warehouse", asset="fct_revenue", bump="major", schema=v2,
                             changes=[], pr_number=2, head_sha="b")

    await synced.store.write(publish)
    _, listed = await synced.call("GET", "/assets/fct_revenue/contracts")
    assert [c["version"] for c in listed["items"]] == ["2.0.0", "1.0.0"]
    status, diffed = await synced.call("GET", "/assets/fct_revenue/contracts/2.0.0?diff_from=1.0.0")
    assert status == 200
    assert [(c["rule"], c["column"], c["severity"]) for c in diffed["diff"]] == [("COLUMN_REMOVED", "plan_code", "breaking")]
    status, body = await synced.call("GET", "/assets/fct_revenue/contracts/2.0.0?diff_from=9.9.9")
    assert status == 400 and "1.0.0" in body["error"]["message"]
    assert (await synced.call("GET", "/assets/fct_revenue/contracts/7.0.0"))[0] == 404


async def test_a_registration_for_a_column_the_asset_lacks_is_refused_with_its_columns(synced: Api) -> None:
    status, body = await synced.call("POST", "/registrations", json={"team": "growth", "asset": "fct_revenue", "columns": ["plan"]})
    assert status == 400
    assert "plan_code" in body["error"]["message"]


async def test_registering_twice_updates_the_same_registration(synced: Api) -> None:
    status, first = await synced.call("POST", "/registrations", json={"team": "growth", "asset": "fct_revenue"})
    assert status == 201 and first["asset_known"]
    status, second = await synced.call("POST", "/registrations", json={"team": "growth", "asset": "fct_revenue", "columns": ["revenue"]})
    assert status == 200 and second["id"] == first["id"] and second["columns"] == ["revenue"]
    _, listed = await synced.call("GET", "/registrations?team=growth")
    assert [r["id"] for r in listed["items"]] == [first["id"]]
    assert (await synced.call("GET", f"/registrations/{first['id']}"))[1]["columns"] == ["revenue"]
    assert (await synced.call("DELETE", f"/registrations/{first['id']}"))[0] == 204
    assert (await synced.call("GET", f"/registrations/{first['id']}"))[0] == 404


async def test_registrations_made_through_the_api_reach_the_pr_workflows_loader(synced: Api) -> None:
    from app.store.registrations import all_registrations

    await synced.call("POST", "/registrations", json={"team": "growth", "asset": "fct_revenue", "columns": ["plan_code"]})
    found = await synced.store.read(all_registrations)
    assert [(r.team, r.asset, r.columns, r.source) for r in found] == [("growth", "fct_revenue", ("plan_code",), "api")]


async def test_a_team_key_cannot_delete_another_teams_registration(synced: Api) -> None:
    _, reg = await synced.call("POST", "/registrations", json={"team": "growth", "asset": "fct_revenue"})
    finance = await synced.key("finance", ["write"])
    status, _ = await synced.call("DELETE", f"/registrations/{reg['id']}", key=finance)
    assert status == 403


async def test_teams_can_be_renamed_and_a_duplicate_slug_is_409(synced: Api) -> None:
    status, body = await synced.call("POST", "/teams", json={"slug": "growth", "name": "Again"})
    assert status == 409
    status, team = await synced.call("PATCH", "/teams/growth", json={"github_team": "@acme/growth-team"})
    assert status == 200 and team["github_team"] == "acme/growth-team"
    assert (await synced.call("GET", "/teams/growth"))[1]["github_team"] == "acme/growth-team"
    assert (await synced.call("PATCH", "/teams/nobody", json={"name": "x"}))[0] == 404


async def test_a_team_key_cannot_replace_a_repository_other_teams_own(synced: Api) -> None:
    await synced.team("ops")
    ops = await synced.key("ops", ["write"])
    body = {"repo": "acme/warehouse", "commit": "c" * 40, "manifest": {"nodes": {}}}
    status, error = await synced.call("POST", "/sync/dbt", key=ops, json=body)
    assert status == 403 and "finance" in error["error"]["message"]
    assert (await synced.call("GET", "/assets/fct_revenue"))[0] == 200
    finance = await synced.key("finance", ["write"])
    status, summary = await synced.call("POST", "/sync/dbt", key=finance, json={**body, "repo": "acme/new-repo"})
    assert status == 200 and summary["assets"] == 0


async def test_the_audit_log_is_for_admins_and_filters_by_action_and_team(synced: Api) -> None:
    await synced.call("POST", "/registrations", json={"team": "growth", "asset": "fct_revenue"})
    growth = await synced.key("growth", ["write"])
    assert (await synced.call("GET", "/audit-log", key=growth))[0] == 403
    _, created = await synced.call("GET", "/audit-log?action=registration_created")
    assert [(e["team"], e["detail"]["asset"]) for e in created["items"]] == [("growth", "fct_revenue")]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created["items"][0]["at"])  # ISO 8601, like every time
    _, teams = await synced.call("GET", "/audit-log?action=team_created&limit=1")
    assert len(teams["items"]) == 1 and teams["next_cursor"]
    _, rest = await synced.call("GET", f"/audit-log?action=team_created&cursor={teams['next_cursor']}")
    assert {e["team"] for e in teams["items"] + rest["items"]} == {"finance", "growth"}


async def test_a_manifest_synced_with_column_lineage_narrows_impact_to_the_columns_read(api: Api) -> None:
    await api.team("finance", "acme/finance-data", name="Finance Data")
    await api.team("growth", "acme/growth", name="Growth Analytics")
    body = {"repo": "acme/warehouse", "commit": COMMIT, "manifest": json.loads(MANIFEST.read_text()),
            "project_dir": "analytics", "lineage": "columns"}
    status, summary = await api.call("POST", "/sync/dbt", json=body)
    assert status == 200, summary
    _, by_plan = await api.call("GET", "/assets/stg_orders/impact?column=plan_code")
    assert [(a["asset"], a["columns"]) for a in by_plan["downstream"]] == [
        ("fct_revenue", ["plan_code"]), ("growth_kpis", ["*"])]  # grouped by plan_code: every column
    _, by_id = await api.call("GET", "/assets/stg_orders/impact?column=order_id")
    assert [a["asset"] for a in by_id["downstream"]] == ["fct_revenue"]
    # The dashboard names no columns, so it counts as reading every column of fct_revenue.
    assert [(t["team"], t["via"]) for t in by_id["teams"]] == [("growth", ["exposure revenue_dashboard"])]
    assert [c["type"] for c in (await api.call("GET", "/assets/fct_revenue"))[1]["columns"]] == ["INT", "DECIMAL(18, 3)", "TEXT"]


def _owned_by_growth(manifest: dict[str, Any], *models: str) -> dict[str, Any]:
    """The manifest with ``models`` given to growth (``meta.tessera.owner`` wins over the group)."""
    for node in manifest["nodes"].values():
        if node.get("name") in models:
            node["meta"] = {"tessera": {"owner": "growth"}}
            node.setdefault("config", {})["meta"] = {"tessera": {"owner": "growth"}}
    return manifest


async def test_a_manifest_for_a_new_repository_cannot_take_over_another_teams_model(synced: Api) -> None:
    growth = await synced.key("growth", ["write"])
    manifest = _owned_by_growth(json.loads(MANIFEST.read_text()), "fct_revenue")
    body = {"repo": "acme/growth-sandbox", "commit": "d" * 40, "manifest": manifest, "project_dir": "analytics"}
    status, error = await synced.call("POST", "/sync/dbt", key=growth, json=body)
    assert status == 409, error
    assert "fct_revenue is owned by team finance (acme/warehouse)" in error["error"]["message"]
    _, asset = await synced.call("GET", "/assets/fct_revenue")
    assert (asset["repo"], asset["owner"]["team"]) == ("acme/warehouse", "finance")
    assert (await synced.call("GET", "/assets?repo=acme/growth-sandbox"))[1]["items"] == []


async def test_a_shared_repository_cannot_hand_another_teams_model_to_the_syncing_team(synced: Api) -> None:
    growth = await synced.key("growth", ["write"])
    body = {"repo": "acme/warehouse", "commit": "e" * 40, "project_dir": "analytics",
            "manifest": _owned_by_growth(json.loads(MANIFEST.read_text()), "fct_revenue")}
    status, error = await synced.call("POST", "/sync/dbt", key=growth, json=body)
    assert status == 409 and "fct_revenue is owned by team finance" in error["error"]["message"]
    assert (await synced.call("GET", "/assets/fct_revenue"))[1]["owner"]["team"] == "finance"
    # The same repository as it is (finance's models left finance's) is growth's to sync too.
    status, summary = await synced.call("POST", "/sync/dbt", key=growth, json={**body, "manifest": json.loads(MANIFEST.read_text())})
    assert status == 200 and summary["assets"] == 5


async def test_a_repository_is_the_same_whatever_the_case_of_its_name(synced: Api) -> None:
    await synced.team("ops")
    ops = await synced.key("ops", ["write"])
    body = {"repo": "ACME/Warehouse", "commit": "c" * 40, "manifest": {"nodes": {}}}
    status, error = await synced.call("POST", "/sync/dbt", key=ops, json=body)
    assert status == 403 and "finance" in error["error"]["message"]
    finance = await synced.key("finance", ["write"])
    manifest = json.loads(MANIFEST.read_text())
    status, summary = await synced.call("POST", "/sync/dbt", key=finance, json={**body, "manifest": manifest})
    assert status == 200 and summary["repo"] == "acme/warehouse"
    _, found = await synced.call("GET", "/assets?q=fct_revenue")
    assert [a["repo"] for a in found["items"]] == ["acme/warehouse"]


async def test_an_admin_key_may_move_a_model_between_teams(synced: Api) -> None:
    body = {"repo": "acme/warehouse", "commit": "f" * 40, "project_dir": "analytics",
            "manifest": _owned_by_growth(json.loads(MANIFEST.read_text()), "fct_revenue")}
    assert (await synced.call("POST", "/sync/dbt", json=body))[0] == 200
    assert (await synced.call("GET", "/assets/fct_revenue"))[1]["owner"]["team"] == "growth"


async def test_a_write_key_cannot_revoke_its_teams_admin_key(synced: Api) -> None:
    _, admin_key = await synced.call("POST", "/teams/finance/keys", json={"scopes": ["admin"]})
    _, read_key = await synced.call("POST", "/teams/finance/keys", json={"scopes": ["read"]})
    writer = await synced.key("finance", ["write"])
    status, error = await synced.call("DELETE", f"/keys/{admin_key['id']}", key=writer)
    assert status == 403 and "wider" in error["error"]["message"]
    assert (await synced.call("GET", "/teams", key=admin_key["key"]))[0] == 200
    assert (await synced.call("DELETE", f"/keys/{read_key['id']}", key=writer))[0] == 204
    assert (await synced.call("GET", "/teams", key=read_key["key"]))[0] == 401
