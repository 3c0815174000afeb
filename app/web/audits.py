"""``/audits``: audit runs per asset and per guarantee over the last 30 days, failure rates drawn as
inline SVG, and the alerts that fire (the rules are :func:`app.audits.trends`'s, as in the API)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlite_utils
from aiohttp import web

from app import audits
from app.store import registry as reg_sql
from app.web.core import need_sign_in, render, session_of, store_of

MAX_ASSETS = 200
PER_PAGE = 25


def recent_runs(db: sqlite_utils.Database, now: dt.datetime, only: str = "") -> dict[str, list[audits.AuditRun]]:
    """Each audited asset's runs of the last 30 days (or one asset's)."""
    since = (now - dt.timedelta(days=30)).timestamp()
    if only:
        return {only: [run for _, run in reg_sql.audit_runs(db, only, since=since)]}
    return dict(sorted(reg_sql.audit_runs_since(db, since, assets=MAX_ASSETS).items()))


@dataclass
class AuditSummary:
    key: tuple[object, ...] = ()
    runs: dict[str, list[audits.AuditRun]] = field(default_factory=dict)
    alerts: list[tuple[str, audits.Alert]] = field(default_factory=list)
    trends: dict[str, audits.Trends] = field(default_factory=dict)


CACHE_KEY: web.AppKey[AuditSummary] = web.AppKey("web_audits", AuditSummary)
CACHE_SECONDS = 60


async def summary(request: web.Request, now: dt.datetime) -> AuditSummary:
    """Every audited asset's recent runs, trends and alerts, read again only when a run was reported
    (or a minute passed: the windows move with the clock)."""
    cached = request.app[CACHE_KEY]
    marker = await store_of(request).read(
        lambda db: tuple(db.execute("SELECT max(id), count(*) FROM audit_runs").fetchone()))
    key = (*marker, int(now.timestamp() // CACHE_SECONDS))
    if cached.key != key:
        runs = await store_of(request).read(lambda db: recent_runs(db, now))
        trends = {fqn: audits.trends(history, now) for fqn, history in runs.items()}
        cached.key, cached.runs, cached.trends = key, runs, trends
        cached.alerts = [(fqn, alert) for fqn, t in trends.items() for alert in t.alerts]
    return cached


async def audits_page(request: web.Request) -> web.Response:
    if session_of(request) is None:
        return need_sign_in(request)
    now = dt.datetime.now(dt.UTC)
    only = request.query.get("asset", "").strip().lower()[:300]
    if only:
        runs = await store_of(request).read(lambda db: recent_runs(db, now, only))
        every = {fqn: audits.trends(history, now) for fqn, history in runs.items()}
    else:
        cached = await summary(request, now)
        runs, every = cached.runs, cached.trends
    rows = []
    for fqn, history in runs.items():
        trend = every[fqn]
        rows.append({
            "fqn": fqn, "runs": len(history), "windows": trend.windows, "alerts": trend.alerts,
            "guarantees": sorted(trend.per_guarantee.items(), key=lambda kv: (-kv[1]["failed"], kv[0])),
        })
    rows.sort(key=lambda r: (-len(r["alerts"]), r["fqn"]))
    number = request.query.get("page", "1")
    page = int(number) if number.isascii() and number.isdigit() and 0 < len(number) < 6 and int(number) > 0 else 1
    shown = rows[(page - 1) * PER_PAGE : page * PER_PAGE]
    return render(request, "audits.html", {
        "rows": shown, "only": only, "page": page, "more": len(rows) > page * PER_PAGE, "total": len(rows),
    }, title="Audits")


def routes() -> list[web.RouteDef]:
    return [web.get("/audits", audits_page)]
