"""Write-audit-publish (WAP) run reporting: trends and alerts over an asset's audit history.

Pure functions over plain values (the store hands in the rows, the caller hands in ``now``), so
the alert rules can be tested at their edges without a database or a clock.

The alert rules are :data:`ALERT_RULES`, the one list the README, the OpenAPI document and
:func:`trends` share (each alert an :class:`Alert` with one of their stable codes).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

RUN_STATUSES = ("passed", "failed", "error", "warned")

ALERT_RULES: tuple[tuple[str, str], ...] = (
    ("failure_rate_24h", "more than 50% of the runs in the last 24 hours failed, with at least 3 runs"),
    ("failure_rate_rising", "the 7-day failure rate is above 1.5 times the 30-day rate"),
    ("guarantee_flapping", "one guarantee failed 5 or more times in the last 7 days"),
    ("latest_run_failed", "the most recent run failed (or errored)"),
)
"""``(code, when it fires)`` for every alert of ``GET /api/v1/assets/{fqn}/audits/trends``."""


def alert_rules_table() -> str:
    """The alert rules as the README's Markdown table."""
    rows = [f"| `{code}` | {meaning} |" for code, meaning in ALERT_RULES]
    return "\n".join(["| alert | fires when |", "|---|---|", *rows])
FAILED_STATUSES = frozenset({"failed", "error"})


@dataclass(frozen=True)
class GuaranteeResult:
    guarantee: str
    passed: bool
    rows_checked: int | None = None
    rows_failed: int | None = None
    message: str = ""


@dataclass(frozen=True)
class AuditRun:
    run_id: str
    status: str
    run_at: datetime
    triggered_by: str | None = None
    results: tuple[GuaranteeResult, ...] = ()

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES


@dataclass(frozen=True)
class WindowRate:
    window: str
    runs: int
    failed: int

    @property
    def rate(self) -> float | None:
        return None if self.runs == 0 else self.failed / self.runs

    def to_dict(self) -> dict[str, Any]:
        return {"window": self.window, "runs": self.runs, "failed": self.failed, "failure_rate": self.rate}


@dataclass(frozen=True)
class Alert:
    code: str
    message: str


@dataclass(frozen=True)
class Trends:
    windows: tuple[WindowRate, ...]
    top_failing: tuple[tuple[str, int], ...]
    """Guarantees by failures in the last 30 days, most first."""
    per_guarantee: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    alerts: tuple[Alert, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "windows": [w.to_dict() for w in self.windows],
            "top_failing": [{"guarantee": g, "failures": n} for g, n in self.top_failing],
            "per_guarantee": {g: dict(v) for g, v in self.per_guarantee.items()},
            "alerts": [{"code": a.code, "message": a.message} for a in self.alerts],
        }


WINDOWS = (("24h", timedelta(hours=24)), ("7d", timedelta(days=7)), ("30d", timedelta(days=30)))


def _window(runs: Sequence[AuditRun], now: datetime, span: timedelta, name: str) -> WindowRate:
    inside = [r for r in runs if now - span < r.run_at <= now]
    return WindowRate(name, len(inside), sum(1 for r in inside if r.failed))


def trends(runs: Iterable[AuditRun], now: datetime, *, top: int = 5) -> Trends:
    """Failure rates per window, the guarantees that fail most, and the alerts that fire."""
    history = sorted(runs, key=lambda r: r.run_at)
    windows = tuple(_window(history, now, span, name) for name, span in WINDOWS)
    by_name = {w.window: w for w in windows}

    month = [r for r in history if now - timedelta(days=30) < r.run_at <= now]
    week = [r for r in history if now - timedelta(days=7) < r.run_at <= now]
    per_guarantee: dict[str, dict[str, int]] = {}
    failures_30d: Counter[str] = Counter()
    for run in month:
        for res in run.results:
            stats = per_guarantee.setdefault(res.guarantee, {"runs": 0, "failed": 0})
            stats["runs"] += 1
            if not res.passed:
                stats["failed"] += 1
                failures_30d[res.guarantee] += 1
    failures_7d: Counter[str] = Counter(
        res.guarantee for run in week for res in run.results if not res.passed
    )

    alerts: list[Alert] = []
    day = by_name["24h"]
    if day.runs >= 3 and day.rate is not None and day.rate > 0.5:
        alerts.append(
            Alert("failure_rate_24h", f"{day.failed} of {day.runs} runs failed in the last 24 hours")
        )
    week_rate, month_rate = by_name["7d"].rate, by_name["30d"].rate
    if week_rate is not None and month_rate is not None and week_rate > 1.5 * month_rate:
        alerts.append(
            Alert(
                "failure_rate_rising",
                f"7-day failure rate {week_rate:.0%} is above 1.5x the 30-day rate {month_rate:.0%}",
            )
        )
    for guarantee, count in sorted(failures_7d.items()):
        if count >= 5:
            alerts.append(
                Alert("guarantee_flapping", f"guarantee {guarantee} failed {count} times in 7 days")
            )
    if history and history[-1].failed and history[-1].run_at <= now:
        latest = history[-1]
        alerts.append(Alert("latest_run_failed", f"the latest run {latest.run_id} {latest.status}"))

    return Trends(
        windows=windows,
        top_failing=tuple(failures_30d.most_common(top)),
        per_guarantee=per_guarantee,
        alerts=tuple(alerts),
    )


# --- dbt run_results.json ---------------------------------------------------------------------

_DBT_STATUS = {"pass": True, "success": True, "fail": False, "error": False, "warn": True}


def results_from_dbt_run_results(
    body: Mapping[str, Any],
    asset: str,
    *,
    tests_by_asset: Mapping[str, Iterable[str]] | None = None,
    other_assets: Iterable[str] = (),
) -> tuple[GuaranteeResult, ...]:
    """The guarantee results for ``asset`` out of a dbt ``run_results.json``.

    A test belongs to the asset when the registry knows it does (``tests_by_asset``, from a synced
    manifest); otherwise when its name mentions the model as a whole word (dbt's generic tests are
    named ``<test>_<model>_<column>``), unless a longer name of another known asset matches too
    (``fct_revenue_daily`` wins over ``fct_revenue``). Model runs (``model.*``) are skipped.
    """
    known = set(tests_by_asset.get(asset, ())) if tests_by_asset else set()
    model = asset.split(".")[0]
    word = re.compile(rf"(^|_){re.escape(model)}(_|$)")
    longer = [
        re.compile(rf"(^|_){re.escape(o.split('.')[0])}(_|$)")
        for o in other_assets
        if len(o.split(".")[0]) > len(model) and model in o.split(".")[0]
    ]
    out: list[GuaranteeResult] = []
    for result in body.get("results") or ():
        uid = str(result.get("unique_id") or "")
        if not uid.startswith("test."):
            continue
        name = uid.split(".")[2] if uid.count(".") >= 2 else uid
        if known:
            if uid not in known:
                continue
        elif not word.search(name) or any(p.search(name) for p in longer):
            continue
        status = str(result.get("status") or "").lower()
        failures = result.get("failures")
        out.append(
            GuaranteeResult(
                guarantee=name,
                passed=_DBT_STATUS.get(status, False),
                rows_failed=failures if isinstance(failures, int) else None,
                message=str(result.get("message") or "")[:1000],
            )
        )
    return tuple(out)


def run_status(results: Sequence[GuaranteeResult]) -> str:
    return "failed" if any(not r.passed for r in results) else "passed"


def status_disagreement(status: str, results: Sequence[GuaranteeResult]) -> str | None:
    """Why a reported ``status`` contradicts its own results, or None when it does not.

    A run with a failed guarantee did not pass (``passed``/``warned`` are refused); a run whose every
    guarantee passed did not fail (``failed`` is refused). ``error`` fits any results: a run that
    broke part-way may have passed what it got to. A run without results cannot disagree.
    """
    if not results:
        return None
    failed = [r.guarantee for r in results if not r.passed]
    if failed and status not in FAILED_STATUSES:
        shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        return f"status {status!r} contradicts the results: {shown} failed (say 'failed', or 'error')"
    if not failed and status == "failed":
        return "status 'failed' contradicts the results: every guarantee passed (say 'passed', or 'error')"
    return None
