"""WAP audits: runs reported for an asset and the result of each guarantee in them."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from typing import Any

from app.audits import AuditRun, GuaranteeResult
from app.store.db import Database


class RunIdTaken(Exception):
    """A different run reported under a run id the asset already has: the first report stands."""

    def __init__(self, run_id: str, stored: AuditRun) -> None:
        super().__init__(f"run {run_id} was already reported")
        self.stored = stored


def record_audit_run(
    db: Database,
    *,
    asset: str,
    run: AuditRun,
    source: str,
    reported_by: str | None,
    compare_time: bool = True,
) -> tuple[int, bool]:
    """Store a run and its results; (row id, new). A run id is reported once: the same run again
    is answered with the stored one, a different one raises :class:`RunIdTaken` (a passed run
    re-posted over a failed one must not rewrite history). ``compare_time=False`` when the
    reporter gave no ``run_at`` (each report would stamp its own)."""
    existing = db.execute("SELECT id FROM audit_runs WHERE asset = ? AND run_id = ?", (asset, run.run_id)).fetchone()
    if existing:
        pk = int(existing[0])
        stored = next(r for p, r in audit_runs(db, asset, run_id=run.run_id) if p == pk)
        if _run_key(stored, compare_time) != _run_key(run, compare_time):
            raise RunIdTaken(run.run_id, stored)
        return pk, False
    cursor = db.execute(
        "INSERT INTO audit_runs (asset, run_id, status, triggered_by, run_at, source, reported_by, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (asset, run.run_id, run.status, run.triggered_by, run.run_at.timestamp(), source, reported_by, time.time()),
    )
    pk = int(cursor.fetchone()[0])
    db.executemany(
        "INSERT INTO guarantee_results (run_id, guarantee, passed, rows_checked, rows_failed, message)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [(pk, r.guarantee, int(r.passed), _count(r.rows_checked), _count(r.rows_failed), r.message) for r in run.results],
    )
    return pk, True


def _run_key(run: AuditRun, compare_time: bool) -> tuple[Any, ...]:
    """What makes two reports the same run, as the store keeps it (counts it cannot hold are None)."""
    results = tuple(
        sorted((r.guarantee, r.passed, _count(r.rows_checked), _count(r.rows_failed), r.message) for r in run.results)
    )
    when = round(run.run_at.timestamp(), 3) if compare_time else None
    return run.status, run.triggered_by, when, results


def audit_runs(
    db: Database,
    asset: str,
    *,
    since: float | None = None,
    before_id: int | None = None,
    limit: int | None = None,
    run_id: str | None = None,
) -> list[tuple[int, AuditRun]]:
    """An asset's runs, newest first, with their results."""
    where, args = ["asset = ?"], [asset]
    if run_id is not None:
        where.append("run_id = ?")
        args.append(run_id)
    if since is not None:
        where.append("run_at > ?")
        args.append(since)
    if before_id is not None:
        where.append("id < ?")
        args.append(before_id)
    sql_limit = f" LIMIT {int(limit)}" if limit else ""
    rows = db.execute(
        f"SELECT id, run_id, status, triggered_by, run_at FROM audit_runs WHERE {' AND '.join(where)}"
        f" ORDER BY run_at DESC, id DESC{sql_limit}",
        args,
    ).fetchall()
    results: dict[int, list[GuaranteeResult]] = {}
    ids = [r[0] for r in rows]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        for run_pk, guarantee, passed, checked, failed, message in db.execute(
            f"SELECT run_id, guarantee, passed, rows_checked, rows_failed, message FROM guarantee_results"
            f" WHERE run_id IN ({marks})",
            chunk,
        ):
            results.setdefault(run_pk, []).append(GuaranteeResult(guarantee, bool(passed), checked, failed, message))
    return [
        (
            pk,
            AuditRun(
                run_id=run_id,
                status=status,
                run_at=dt.datetime.fromtimestamp(run_at, dt.UTC),
                triggered_by=by,
                results=tuple(results.get(pk, ())),
            ),
        )
        for pk, run_id, status, by, run_at in rows
    ]


def failing_audits(db: Database, fqns: Iterable[str]) -> dict[str, dict[str, Any]]:
    """For each asset whose latest WAP run failed: a summary the PR comment can show.

    ``{fqn: {"run_id", "status", "run_at" (ISO), "failed": [guarantee, ...]}}``; assets whose latest
    run passed (or that have none) are left out.
    """
    out: dict[str, dict[str, Any]] = {}
    for fqn in sorted(set(fqns)):
        latest = audit_runs(db, fqn, limit=1)
        if not latest:
            continue
        _, run = latest[0]
        if not run.failed:
            continue
        out[fqn] = {
            "run_id": run.run_id,
            "status": run.status,
            "run_at": run.run_at.isoformat().replace("+00:00", "Z"),
            "failed": [r.guarantee for r in run.results if not r.passed],
        }
    return out


def _count(value: int | None) -> int | None:
    """A row count SQLite can hold (dbt reports whatever its adapter said)."""
    return value if isinstance(value, int) and 0 <= value < 2**63 else None


def audited_assets(db: Database) -> list[str]:
    """Every asset with at least one audit run (the home page's alerts look only at these)."""
    return [fqn for (fqn,) in db.execute("SELECT DISTINCT asset FROM audit_runs")]


def audit_runs_since(db: Database, since: float, *, assets: int = 200) -> dict[str, list[AuditRun]]:
    """Every asset's runs after ``since`` (newest first), in two queries: the audits page and the
    home page's alerts read all assets at once. At most ``assets`` assets, by name."""
    rows = db.execute(
        "SELECT id, asset, run_id, status, triggered_by, run_at FROM audit_runs WHERE run_at > ?"
        " AND asset IN (SELECT DISTINCT asset FROM audit_runs WHERE run_at > ? ORDER BY asset LIMIT ?)"
        " ORDER BY run_at DESC, id DESC",
        (since, since, assets),
    ).fetchall()
    results: dict[int, list[GuaranteeResult]] = {}
    for run_pk, guarantee, passed, checked, failed, message in db.execute(
        "SELECT g.run_id, g.guarantee, g.passed, g.rows_checked, g.rows_failed, g.message"
        " FROM guarantee_results g JOIN audit_runs a ON a.id = g.run_id WHERE a.run_at > ?",
        (since,),
    ):
        results.setdefault(run_pk, []).append(GuaranteeResult(guarantee, bool(passed), checked, failed, message))
    by_asset: dict[str, list[AuditRun]] = {}
    for pk, asset, run_id, status, by, run_at in rows:
        by_asset.setdefault(asset, []).append(AuditRun(
            run_id=run_id, status=status, run_at=dt.datetime.fromtimestamp(run_at, dt.UTC), triggered_by=by,
            results=tuple(results.get(pk, ())),
        ))
    return by_asset
