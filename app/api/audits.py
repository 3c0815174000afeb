"""WAP audit runs of an asset: report, history, trends and alerts (``/assets/{fqn}/audits...``).

A run comes as Tessera's own shape (run id, status, triggered_by, run_at, per-guarantee results)
or as dbt's ``run_results.json`` as is; dbt's tests are mapped to the asset by
:func:`app.audits.results_from_dbt_run_results`. Trends and alerts are :func:`app.audits.trends`.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from aiohttp import web

from app import audits
from app.api import auth
from app.api.assets import fqn_of
from app.api.common import (
    id_cursor,
    json_response,
    page,
    page_params,
    parse_large_json,
    principal,
    read_body,
    settings,
    store,
)
from app.api.errors import ApiError, not_found
from app.api.openapi import validate
from app.notify import events as notify
from app.store import proposals as log_sql
from app.store import registry as reg_sql

MAX_RUN_RESULTS = 50 * 1024 * 1024
"""dbt run_results.json of a big project runs to tens of MB."""


def _when(value: str | None, what: str) -> dt.datetime:
    if not value:
        return dt.datetime.now(dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "invalid_body", f"{what} {value!r} is not an ISO 8601 date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _run_from_body(body: dict[str, Any]) -> audits.AuditRun:
    results = tuple(
        audits.GuaranteeResult(
            guarantee=r["id"], passed=r["passed"], rows_checked=r.get("rows_checked"),
            rows_failed=r.get("rows_failed"), message=r.get("message") or "",
        )
        for r in body.get("results") or ()
    )
    status = body.get("status") or audits.run_status(results)
    problem = audits.status_disagreement(status, results)
    if problem is not None:
        raise ApiError(400, "invalid_body", problem)
    return audits.AuditRun(run_id=body["run_id"], status=status, run_at=_when(body.get("run_at"), "run_at"),
                           triggered_by=body.get("triggered_by"), results=results)


def _run_from_dbt(body: dict[str, Any], fqn: str, known: list[str]) -> audits.AuditRun:
    results = audits.results_from_dbt_run_results(body, fqn, other_assets=known)
    if not results:
        raise ApiError(400, "invalid_body", f"no test in this run_results.json tests {fqn} (test names must mention the model)")
    metadata = body.get("metadata") or {}
    run_id = body.get("run_id") or metadata.get("invocation_id") or f"dbt-{int(time.time())}"
    return audits.AuditRun(
        run_id=str(run_id)[:200],
        status=audits.run_status(results),
        run_at=_when(metadata.get("generated_at"), "metadata.generated_at"),
        triggered_by=body.get("triggered_by") or "dbt",
        results=results,
    )


def run_dict(pk: int, run: audits.AuditRun) -> dict[str, Any]:
    return {
        "id": pk,
        "run_id": run.run_id,
        "status": run.status,
        "run_at": run.run_at.isoformat().replace("+00:00", "Z"),
        "triggered_by": run.triggered_by,
        "results": [
            {"id": r.guarantee, "passed": r.passed, "rows_checked": r.rows_checked, "rows_failed": r.rows_failed,
             "message": r.message}
            for r in run.results
        ],
    }


def _reporting_refused(db: Any, fqn: str, who: auth.Principal) -> ApiError | None:
    """404 for an asset the registry does not know; 403 unless the key's team owns it (or is admin)."""
    claims = reg_sql.asset_claims(db, [fqn]).get(fqn, [])
    if not claims:
        return not_found(f"no asset {fqn!r} in the registry: audit runs are reported for synced assets"
                         " (GET /api/v1/assets?q= searches them)")
    if who.is_admin:
        return None
    defined = [c for c in claims if c.kind != "source"] or claims
    owners = sorted({c.owner_team for c in defined if c.owner_team})
    if who.team in owners:
        return None
    if not owners:
        return ApiError(403, "forbidden", f"{fqn} has no owning team in the registry: only an admin key may report its runs")
    return ApiError(403, "forbidden", f"{fqn} is owned by team {', '.join(owners)}: only that team (or an admin)"
                    f" reports its audit runs; your key belongs to team {who.team!r}")


async def report_run(request: web.Request) -> web.Response:
    """Record one run; the same ``run_id`` again is 200 when it is the same run and 409 when not."""
    who = principal(request)
    auth.require(who, "write")
    fqn = fqn_of(request)
    refused = await store(request).read(lambda db: _reporting_refused(db, fqn, who))
    if refused is not None:
        raise refused  # before reading a body of up to 50 MB
    body = await parse_large_json(await read_body(request, MAX_RUN_RESULTS))
    is_dbt = isinstance(body, dict) and "metadata" in body  # our own run shape has no "metadata"
    if is_dbt:
        validate(body, "DbtRunResults")
        known = await store(request).read(reg_sql.known_assets)
        run = _run_from_dbt(body, fqn, known)
        source = "dbt"
        timed = bool((body.get("metadata") or {}).get("generated_at"))
    else:
        validate(body, "AuditRunCreate")
        run = _run_from_body(body)
        source = "api"
        timed = bool(body.get("run_at"))

    def write(db: Any) -> tuple[int, audits.AuditRun, bool] | ApiError:
        refused = _reporting_refused(db, fqn, who)
        if refused is not None:
            return refused
        try:
            pk, new = reg_sql.record_audit_run(db, asset=fqn, run=run, source=source, reported_by=who.actor,
                                               compare_time=timed)
        except reg_sql.RunIdTaken as taken:
            return ApiError(409, "conflict", f"run {run.run_id!r} of {fqn} was already reported"
                            f" ({taken.stored.status}, {len(taken.stored.results)} results) and differs from this one:"
                            " a run is reported once; give a new run its own run_id")
        if not new:
            return pk, next(r for p, r in reg_sql.audit_runs(db, fqn, run_id=run.run_id) if p == pk), False
        log_sql.audit(db, actor=who.actor, action="audit_run_reported", team=who.team,
                      detail={"asset": fqn, "run_id": run.run_id, "status": run.status, "source": source})
        return pk, run, True

    outcome = await store(request).write(write)
    if isinstance(outcome, ApiError):
        raise outcome
    pk, stored, new = outcome
    if new:
        await notify.audit_run_reported(notify.Moment(store(request), settings(request), time.time()), asset=fqn,
                                        run_id=run.run_id)
    return json_response({"asset": fqn, **run_dict(pk, stored)}, status=201 if new else 200)


async def list_runs(request: web.Request) -> web.Response:
    auth.require(principal(request), "read")
    fqn = fqn_of(request)
    limit, cursor = page_params(request)
    before = id_cursor(cursor) or None
    runs = await store(request).read(lambda db: reg_sql.audit_runs(db, fqn, before_id=before, limit=limit + 1))
    last = runs[limit - 1][0] if len(runs) > limit else None
    return page(request, [run_dict(pk, run) for pk, run in runs], limit, last)


async def get_trends(request: web.Request) -> web.Response:
    auth.require(principal(request), "read")
    fqn = fqn_of(request)
    now = dt.datetime.now(dt.UTC)
    since = (now - dt.timedelta(days=30)).timestamp()
    runs = await store(request).read(lambda db: reg_sql.audit_runs(db, fqn, since=since))
    trends = audits.trends([run for _, run in runs], now)
    return json_response({"asset": fqn, "as_of": now.isoformat().replace("+00:00", "Z"), **trends.to_dict()})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/assets/{fqn}/audits", list_runs),
        web.post("/assets/{fqn}/audits", report_run),
        web.get("/assets/{fqn}/audits/trends", get_trends),
    ]
