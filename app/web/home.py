"""The home page: what waits on my teams, my pull requests waiting on others, audit alerts, and
the friction budget of each repository (share of analysed pull requests of the last 30 days that
passed untouched, against the 90 % goal, week by week)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web

from app.store import proposals as sql
from app.store.proposals import Proposal
from app.web.access import GITHUB_TROUBLE, installation, may_read
from app.web.audits import summary
from app.web.core import render, session_of, store_of
from app.web.proposals import job_context
from app.workflow import slash

log = logging.getLogger(__name__)

GOAL = 0.9
WINDOW_DAYS = 30
WEEKS = 6
DAY = 86400.0
MAX_OPEN = 200
"""Open pull requests looked at for one person's home page (newest first)."""


@dataclass(frozen=True)
class Budget:
    repo: str
    analysed: int
    untouched: int
    weekly: tuple[float | None, ...]
    """Share untouched per week, oldest first (None: nothing analysed that week)."""

    @property
    def share(self) -> float:
        return self.untouched / self.analysed if self.analysed else 1.0

    @property
    def met(self) -> bool:
        return self.share >= GOAL


def friction_budgets(rows: Iterable[tuple[str, float, bool]], now: float) -> list[Budget]:
    """Per repository: the 30-day share, and the weekly shares of the last six weeks."""
    window: dict[str, list[bool]] = defaultdict(list)
    weeks: dict[str, list[list[bool]]] = defaultdict(lambda: [[] for _ in range(WEEKS)])
    for repo, at, untouched in rows:
        age = now - at
        if age <= WINDOW_DAYS * DAY:
            window[repo].append(untouched)
        week = int(age // (7 * DAY))
        if 0 <= week < WEEKS:
            weeks[repo][WEEKS - 1 - week].append(untouched)
    return [
        Budget(repo, len(window[repo]), sum(window[repo]),
               tuple(sum(w) / len(w) if w else None for w in weeks[repo]))
        for repo in sorted(set(window) | set(weeks))
    ]


SPARK_INSET = 3
"""Pixels between a sparkline's end points and the picture's edges (a dot's radius, and a little)."""


def sparkline_points(weekly: tuple[float | None, ...], width: int = 120, height: int = 28) -> list[tuple[int, int]]:
    """Where each week with pull requests sits in the SVG (0 at the bottom, 100 % at the top), kept
    off the left and right edges so the dots marking the first and last week show whole."""
    step = (width - 2 * SPARK_INSET) / max(len(weekly) - 1, 1)
    return [(round(SPARK_INSET + i * step), round((1 - v) * (height - 4) + 2))
            for i, v in enumerate(weekly) if v is not None]


def sparkline(weekly: tuple[float | None, ...], width: int = 120, height: int = 28) -> str:
    """An SVG polyline path through the weeks' points (each is also marked with a dot, so a single
    week, as in a repository's first week, shows)."""
    return " ".join(f"{x},{y}" for x, y in sparkline_points(weekly, width, height))


async def _waiting_on_me(request: web.Request, login: str, open_ones: list[Proposal]) -> list[dict[str, object]]:
    ctx = job_context(request)
    waiting = []
    for proposal in open_ones:
        if proposal.conclusion not in ("action_required", "failure") or not proposal.installation_id:
            continue
        if ctx.github is None:
            break
        try:
            gh = await installation(request, proposal.installation_id)
            mine = await slash.answerable(ctx, gh, proposal, login)
        except GITHUB_TROUBLE as exc:
            log.warning("home: cannot ask GitHub who may answer on %s: %s", proposal.repo, exc)
            continue
        records = await store_of(request).read(lambda db, p=proposal: sql.list_acks(db, p.id))
        pending = [team for team in mine if team not in records or records[team].response not in ("ack",)]
        if pending:
            waiting.append({"proposal": proposal, "teams": pending})
    return waiting


async def home(request: web.Request) -> web.Response:
    session = session_of(request)
    if session is None:
        return render(request, "home.html", {"signed_in": False}, title="Home")
    store = store_of(request)
    now = time.time()
    open_ones = await store.read(lambda db: sql.list_proposals(db, status="open", limit=MAX_OPEN))
    open_ones.sort(key=lambda p: p.id, reverse=True)
    waiting = await _waiting_on_me(request, session.login, open_ones)
    mine = [p for p in open_ones if (p.author or "").lower() == session.login.lower() and p.conclusion != "success"]
    rows = await store.read(lambda db: sql.analysed_since(db, now - WEEKS * 7 * DAY))
    budgets = []
    for budget in friction_budgets(rows, now):
        installation_id = next((p.installation_id for p in open_ones if p.repo == budget.repo), None)
        if installation_id is None or await may_read(request, installation_id, budget.repo, session.login):
            budgets.append(budget)
    moment = dt.datetime.fromtimestamp(now, dt.UTC)
    alerts = (await summary(request, moment)).alerts
    return render(
        request, "home.html",
        {"signed_in": True, "waiting": waiting, "mine": mine, "budgets": budgets, "goal": GOAL,
         "alerts": alerts, "sparkline": sparkline,
         "sparkline_points": sparkline_points},
        title="Home",
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/", home)]
