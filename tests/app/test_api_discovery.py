"""The discovery API: observed consumers, the unmapped readers, and mapping one in one step."""

from __future__ import annotations

import datetime as dt

from app.store import observed as observed_sql
from app.store.observed import ObservedRead
from tests.app.registry_support import Api, api, api_settings  # noqa: F401 - fixtures

TODAY = dt.datetime.now(dt.UTC).date()
RECENT = (TODAY - dt.timedelta(days=2)).isoformat()
OLD = (TODAY - dt.timedelta(days=90)).isoformat()


async def seed(api: Api) -> None:  # noqa: F811
    reads = [
        ObservedRead("fct_revenue", "role", "LOOKER_FINANCE", ("plan_code", "revenue"), queries=14,
                     last_seen=f"{RECENT}T10:00:00+00:00", daily={RECENT: 14}),
        ObservedRead("fct_revenue", "role", "ETL_ADHOC", ("revenue",), queries=3,
                     last_seen=f"{OLD}T10:00:00+00:00", daily={OLD: 3}),
        ObservedRead("dim_customers", "bi", "looker explore finance.revenue", ("segment",),
                     last_seen=f"{RECENT}T10:00:00+00:00", folder="finance_looker"),
    ]
    await api.store.write(lambda db: observed_sql.record(db, reads, source_kind="snowflake"))


async def test_observed_consumers_are_listed_with_queries_in_the_window_and_staleness(api: Api) -> None:  # noqa: F811
    await seed(api)
    status, body = await api.call("GET", "/consumers/observed?asset=fct_revenue")
    assert status == 200
    rows = {r["reader"]["name"]: (r["queries"], r["stale"], r["team"], r["columns"]) for r in body["items"]}
    assert rows == {
        "LOOKER_FINANCE": (14, False, None, ["plan_code", "revenue"]),
        "ETL_ADHOC": (0, True, None, ["revenue"]),
    }
    status, body = await api.call("GET", "/consumers/observed?days=0")
    assert status == 400 and "days" in body["error"]["message"]


async def test_an_unmapped_reader_is_grouped_then_mapped_by_its_team_in_one_step(api: Api) -> None:  # noqa: F811
    await seed(api)
    await api.team("finance", "acme/finance")
    status, body = await api.call("GET", "/discovery/mappings")
    assert status == 200 and body["items"] == []
    assert [(u["kind"], u["name"], u["queries"]) for u in body["unmapped"]] == [
        ("role", "LOOKER_FINANCE", 14), ("folder", "finance_looker", 0), ("role", "ETL_ADHOC", 0)]

    key = await api.key("finance", ("write",))
    status, body = await api.call("POST", "/discovery/mappings", key=key,
                                  json={"kind": "role", "name": "LOOKER_FINANCE", "team": "finance"})
    assert status == 201 and (body["kind"], body["name"], body["team"]) == ("role", "looker_finance", "finance")
    status, body = await api.call("GET", "/consumers/observed?team=finance")
    assert [r["reader"]["name"] for r in body["items"]] == ["LOOKER_FINANCE"]
    status, body = await api.call("GET", "/discovery/mappings")
    assert ("role", "LOOKER_FINANCE") not in {(u["kind"], u["name"]) for u in body["unmapped"]}


async def test_a_team_cannot_map_a_reader_to_another_team_or_to_no_team(api: Api) -> None:  # noqa: F811
    await api.team("finance")
    await api.team("growth")
    key = await api.key("growth", ("write",))
    status, _ = await api.call("POST", "/discovery/mappings", key=key,
                               json={"kind": "role", "name": "LOOKER_FINANCE", "team": "finance"})
    assert status == 403
    status, body = await api.call("POST", "/discovery/mappings", json={"kind": "role", "name": "X", "team": "nobody"})
    assert status == 400 and "no team 'nobody'" in body["error"]["message"]
    status, body = await api.call("POST", "/discovery/mappings", json={"kind": "group", "name": "X", "team": "growth"})
    assert status == 400
