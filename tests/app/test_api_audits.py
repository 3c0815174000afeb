"""WAP audit runs through the API: reporting (Tessera's shape or dbt's run_results.json), history,
trends and alerts, and the summary the PR comment uses."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from app.config import Settings
from app.store import registry as reg_sql
from tests.app import registry_support as support
from tests.app.registry_support import Api

api_settings = support.api_settings


@pytest.fixture
async def api(make_client: Any, api_settings: Settings, store: Any) -> Api:
    """The app with the warehouse synced: runs are reported for assets the registry knows."""
    registry = Api(client=await make_client(api_settings, start_workers=False), store=store)
    await registry.warehouse()
    return registry


def _ago(**delta: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(**delta)).isoformat().replace("+00:00", "Z")


def _run(run_id: str, passed: bool, **when: float) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "triggered_by": "airflow",
        "run_at": _ago(**(when or {"minutes": 5})),
        "results": [
            {"id": "revenue_not_negative", "passed": passed, "rows_checked": 1000, "rows_failed": 0 if passed else 7,
             "message": "" if passed else "7 rows below zero"},
            {"id": "order_id_unique", "passed": True, "rows_checked": 1000, "rows_failed": 0},
        ],
    }


async def test_a_reported_run_is_stored_with_its_results_and_listed_newest_first(api: Api) -> None:
    key = await api.key("finance", ["write"])
    status, stored = await api.call("POST", "/assets/fct_revenue/audits", key=key, json=_run("r1", True, hours=2))
    assert status == 201
    assert stored["status"] == "passed" and len(stored["results"]) == 2
    status, _ = await api.call("POST", "/assets/fct_revenue/audits", key=key, json=_run("r2", False, hours=1))
    assert status == 201
    _, history = await api.call("GET", "/assets/fct_revenue/audits")
    assert [r["run_id"] for r in history["items"]] == ["r2", "r1"]
    assert history["items"][0]["status"] == "failed"
    assert history["items"][0]["results"][0] == {
        "id": "revenue_not_negative", "passed": False, "rows_checked": 1000, "rows_failed": 7,
        "message": "7 rows below zero"}


async def test_reporting_the_same_run_again_is_200_with_the_stored_run(api: Api) -> None:
    run = _run("r1", False)
    assert (await api.call("POST", "/assets/fct_revenue/audits", json=run))[0] == 201
    status, again = await api.call("POST", "/assets/fct_revenue/audits", json=run)
    assert status == 200 and again["status"] == "failed" and again["run_id"] == "r1"
    _, history = await api.call("GET", "/assets/fct_revenue/audits")
    assert len(history["items"]) == 1


async def test_a_read_key_cannot_report_a_run(api: Api) -> None:
    key = await api.key("finance", ["read"])
    assert (await api.call("POST", "/assets/fct_revenue/audits", key=key, json=_run("r1", True)))[0] == 403


async def test_trends_fire_the_24h_alert_at_three_runs_over_half_failed(api: Api) -> None:
    for n, passed in enumerate([False, False, True]):
        await api.call("POST", "/assets/fct_revenue/audits", json=_run(f"r{n}", passed, hours=3 - n))
    status, trends = await api.call("GET", "/assets/fct_revenue/audits/trends")
    assert status == 200
    day = next(w for w in trends["windows"] if w["window"] == "24h")
    assert (day["runs"], day["failed"]) == (3, 2)
    assert "failure_rate_24h" in [a["code"] for a in trends["alerts"]]
    assert trends["top_failing"][0] == {"guarantee": "revenue_not_negative", "failures": 2}


async def test_trends_with_two_failed_runs_of_two_do_not_fire_the_24h_alert(api: Api) -> None:
    for n in range(2):
        await api.call("POST", "/assets/fct_revenue/audits", json=_run(f"r{n}", False, hours=2 - n))
    _, trends = await api.call("GET", "/assets/fct_revenue/audits/trends")
    codes = [a["code"] for a in trends["alerts"]]
    assert "failure_rate_24h" not in codes and "latest_run_failed" in codes


async def test_a_dbt_run_results_body_is_mapped_to_the_asset_it_tests(api: Api) -> None:
    body = {
        "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
                     "generated_at": _ago(minutes=1), "invocation_id": "inv-42"},
        "results": [
            {"unique_id": "test.analytics.not_null_fct_revenue_order_id.1a2b", "status": "pass", "failures": 0},
            {"unique_id": "test.analytics.accepted_values_fct_revenue_plan_code.3c4d", "status": "fail", "failures": 3,
             "message": "Got 3 results, configured to fail if != 0"},
            {"unique_id": "test.analytics.unique_stg_orders_order_id.5e6f", "status": "fail", "failures": 1},
            {"unique_id": "model.analytics.fct_revenue", "status": "success"},
        ],
        "elapsed_time": 1.5,
        "args": {},
    }
    status, stored = await api.call("POST", "/assets/fct_revenue/audits", json=body)
    assert status == 201, stored
    assert stored["run_id"] == "inv-42" and stored["status"] == "failed"
    assert {r["id"]: r["passed"] for r in stored["results"]} == {
        "not_null_fct_revenue_order_id": True, "accepted_values_fct_revenue_plan_code": False}


async def test_a_dbt_run_results_without_a_test_of_the_asset_is_400(api: Api) -> None:
    body = {"metadata": {"generated_at": _ago(minutes=1)},
            "results": [{"unique_id": "test.a.unique_other_id.1", "status": "pass"}]}
    status, error = await api.call("POST", "/assets/fct_revenue/audits", json=body)
    assert status == 400 and "fct_revenue" in error["error"]["message"]


async def test_bad_run_bodies_are_400_naming_the_field(api: Api) -> None:
    status, error = await api.call("POST", "/assets/fct_revenue/audits", json={"run_id": "x", "results": [{"id": "g", "passed": "yes"}]})
    assert status == 400 and "body.results[0].passed" in error["error"]["message"]
    status, error = await api.call("POST", "/assets/fct_revenue/audits", json={"run_id": "x", "colour": "red"})
    assert status == 400 and "colour" in error["error"]["message"]
    status, error = await api.call("POST", "/assets/fct_revenue/audits", json={"run_id": "x", "run_at": "yesterday"})
    assert status == 400 and "run_at" in error["error"]["message"]


async def test_failing_audits_summarises_assets_whose_latest_run_failed(api: Api) -> None:
    await api.call("POST", "/assets/fct_revenue/audits", json=_run("ok", True, hours=2))
    await api.call("POST", "/assets/fct_revenue/audits", json=_run("bad", False, hours=1))
    await api.call("POST", "/assets/stg_orders/audits", json=_run("bad", False, hours=2))
    await api.call("POST", "/assets/stg_orders/audits", json=_run("fixed", True, hours=1))
    summary = await api.store.read(lambda db: reg_sql.failing_audits(db, ["fct_revenue", "stg_orders", "unknown"]))
    assert list(summary) == ["fct_revenue"]
    assert summary["fct_revenue"]["run_id"] == "bad"
    assert summary["fct_revenue"]["failed"] == ["revenue_not_negative"]


async def test_exactly_half_failed_in_24h_does_not_fire_the_alert(api: Api) -> None:
    for n, passed in enumerate([False, True, False, True]):
        await api.call("POST", "/assets/fct_revenue/audits", json=_run(f"r{n}", passed, hours=4 - n))
    _, trends = await api.call("GET", "/assets/fct_revenue/audits/trends")
    assert "failure_rate_24h" not in [a["code"] for a in trends["alerts"]]


async def test_a_guarantee_failing_five_times_in_a_week_is_flagged_and_four_is_not(api: Api) -> None:
    for n in range(4):
        await api.call("POST", "/assets/fct_revenue/audits", json=_run(f"r{n}", False, days=6 - n))
    _, trends = await api.call("GET", "/assets/fct_revenue/audits/trends")
    assert "guarantee_flapping" not in [a["code"] for a in trends["alerts"]]
    await api.call("POST", "/assets/fct_revenue/audits", json=_run("r4", False, days=1))
    _, trends = await api.call("GET", "/assets/fct_revenue/audits/trends")
    flapping = [a for a in trends["alerts"] if a["code"] == "guarantee_flapping"]
    assert len(flapping) == 1 and "revenue_not_negative" in flapping[0]["message"]


async def test_another_teams_write_key_cannot_report_a_failed_run_on_an_asset_it_does_not_own(api: Api) -> None:
    growth = await api.key("growth", ["write"])
    status, error = await api.call("POST", "/assets/fct_revenue/audits", key=growth, json=_run("sabotage", False))
    assert status == 403
    assert "owned by team finance" in error["error"]["message"] and "'growth'" in error["error"]["message"]
    _, history = await api.call("GET", "/assets/fct_revenue/audits")
    assert history["items"] == []
    status, _ = await api.call("POST", "/assets/growth_kpis/audits", key=growth, json=_run("own", False))
    assert status == 201


async def test_a_failed_run_cannot_be_reposted_as_passed_under_the_same_run_id(api: Api) -> None:
    finance = await api.key("finance", ["write"])
    failed = _run("nightly-7", False)
    assert (await api.call("POST", "/assets/fct_revenue/audits", key=finance, json=failed))[0] == 201
    whitewashed = {**failed, "status": "passed", "results": [{**r, "passed": True, "rows_failed": 0} for r in failed["results"]]}
    status, error = await api.call("POST", "/assets/fct_revenue/audits", key=finance, json=whitewashed)
    assert status == 409 and "nightly-7" in error["error"]["message"] and "already reported" in error["error"]["message"]
    _, history = await api.call("GET", "/assets/fct_revenue/audits")
    assert [(r["run_id"], r["status"]) for r in history["items"]] == [("nightly-7", "failed")]
    assert history["items"][0]["results"][0]["passed"] is False


async def test_a_run_reported_twice_without_run_at_is_the_same_run(api: Api) -> None:
    run = {"run_id": "ci-1", "results": [{"id": "order_id_unique", "passed": True}]}
    assert (await api.call("POST", "/assets/fct_revenue/audits", json=run))[0] == 201
    assert (await api.call("POST", "/assets/fct_revenue/audits", json=run))[0] == 200


async def test_a_status_that_contradicts_the_results_is_400(api: Api) -> None:
    lying = {**_run("r1", False), "status": "passed"}
    status, error = await api.call("POST", "/assets/fct_revenue/audits", json=lying)
    assert status == 400 and "revenue_not_negative failed" in error["error"]["message"]
    status, error = await api.call("POST", "/assets/fct_revenue/audits", json={**_run("r2", True), "status": "failed"})
    assert status == 400 and "every guarantee passed" in error["error"]["message"]
    assert (await api.call("POST", "/assets/fct_revenue/audits", json={**_run("r3", False), "status": "error"}))[0] == 201
    _, history = await api.call("GET", "/assets/fct_revenue/audits")
    assert [r["run_id"] for r in history["items"]] == ["r3"]


async def test_a_run_for_an_asset_the_registry_does_not_know_is_404(api: Api) -> None:
    status, error = await api.call("POST", "/assets/no_such_model/audits", json=_run("r1", True))
    assert status == 404 and "no_such_model" in error["error"]["message"]
    assert await api.store.read(lambda db: reg_sql.audit_runs(db, "no_such_model")) == []
