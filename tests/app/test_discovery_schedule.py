"""Discovery on a schedule in the App: configured sources are read again and again; a broken one
is recorded and never stops the others or the App."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from app.config import Settings
from app.store import observed as observed_sql
from tests.fixtures_app import wait_until


def test_sources_and_interval_come_from_the_environment() -> None:
    settings = Settings.from_env({"TESSERA_DISCOVERY_SOURCES": "snowflake=exports/ postgresql://r@db/a",
                                  "TESSERA_DISCOVERY_INTERVAL": "900"})
    assert settings.discovery_sources == ("snowflake=exports/", "postgresql://r@db/a")
    assert settings.discovery_interval == 900.0


async def test_the_app_reads_its_sources_on_a_schedule_and_records_a_broken_one(
    tmp_path: Path, make_client: Any, app_settings: Settings, store: Any
) -> None:
    log = tmp_path / "queries.jsonl"
    log.write_text(json.dumps({"query": "select amount from shop.orders", "role": "LOOKER_FINANCE",
                               "time": "2026-11-30T10:00:00Z"}) + "\n")
    missing = tmp_path / "gone.csv"
    settings = app_settings.with_overrides(
        discovery_sources=(f"snowflake={missing}", f"jsonl={log}"), discovery_interval=0.05)
    await make_client(settings, start_workers=False)
    today = dt.date(2026, 12, 1)

    rows = await wait_until(lambda: store.read(lambda db: observed_sql.list_observed(db, today=today)))
    assert [(r["asset"], r["reader"]["name"], r["columns"]) for r in rows] == [
        ("shop.orders", "LOOKER_FINANCE", ["amount"])]
    runs = await store.read(observed_sql.last_runs)
    assert any("no such file or folder" in (r.get("error") or "") for r in runs)

    with log.open("a") as handle:  # the next round reads only the new line
        handle.write(json.dumps({"query": "select plan_code from shop.orders", "role": "LOOKER_FINANCE",
                                 "time": "2026-11-30T11:00:00Z"}) + "\n")

    async def both() -> object:
        found = await store.read(lambda db: observed_sql.list_observed(db, today=today))
        return found if found and found[0]["columns"] == ["amount", "plan_code"] else None

    [row] = await wait_until(both)
    assert row["queries"] == 2
