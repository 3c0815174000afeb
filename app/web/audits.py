"""``/audits``: audit runs per asset and per guarantee over the last 30 days, failure rates drawn as
inline SVG, and the alerts that fire (the rules are :func:`app.audits.trends`'s, as in the API)."""

from __future__ import annotations

import datetime as dt

import sqlite_utils
from aiohttp import web

from app import audits
from app.store import registry as reg_sql
from app.web.core import need_sign_in, render, session_of, store_of

MAX_ASSETS = 200


def recent_runs(db: sqlite_utils.Database, now: dt.datetime, only: str = "") -> dict[str, list[audits.AuditRun]]:
    """Each audited asset's runs of the last 30 days (or one asset's)."""
    since = (now - dt.timedelta(days=30)).timestamp()
    names = [only] if only else reg_sql.audited_assets(db)[:MAX_ASSETS]
    return {fqn: [run for _, run in reg_sql.audit_runs(db, fqn, since=since)] for fqn in sorted(names)}


def active_alerts(runs: dict[str, list[audits.AuditRun]], now: dt.datetime) -> list[tuple[str, audits.Alert]]:
    return [(fqn, alert) for fqn, history in runs.items() for alert in audits.trends(history, now).alerts]


async def audits_page(request: web.Request) -> web.Response:
    if session_of(request) is None:
        return need_sign_in(request)
    now = dt.datetime.now(dt.UTC)
    only = request.query.get("asset", "").strip().lower()[:300]
    runs = await store_of(request).read(lambda db: recent_runs(db, now, only))
    rows = []
    for fqn, history in runs.items():
        trend = audits.trends(history, now)
        rows.append({
            "fqn": fqn, "runs": len(history), "windows": trend.windows, "alerts": trend.alerts,
            "guarantees": sorted(trend.per_guarantee.items(), key=lambda kv: (-kv[1]["failed"], kv[0])),
        })
    rows.sort(key=lambda r: (-len(r["alerts"]), r["fqn"]))
    return render(request, "audits.html", {"rows": rows, "only": only}, title="Audits")


def routes() -> list[web.RouteDef]:
    return [web.get("/audits", audits_page)]
