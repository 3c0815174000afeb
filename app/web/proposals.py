"""The proposal page: one pull request's impact, graph, responses, and the buttons to answer.

Two addresses show it. ``/checks/{id}`` is the check run's ``details_url``: its id is signed, so
the link itself is the permission and it reads without signing in (that check run's analysis).
``/proposals/{id}`` needs a signed-in person with access to the repository (the pull request's
latest analysis). On either, a signed-in person sees the ack / migrating / block forms only for the
teams they may answer for, and their answer goes through the slash commands' own code
(:func:`app.workflow.slash.answer_from_page`): the same rules, audit log, comment and check.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from aiohttp import web

from app.appkeys import QUEUE_KEY
from app.queue import JobContext
from app.store import proposals as sql
from app.store.proposals import CheckRecord, Proposal
from app.web.access import GITHUB_TROUBLE, installation, may_read
from app.web.core import (
    checked_form,
    need_sign_in,
    problem,
    redirect,
    render,
    session_of,
    settings_of,
    store_of,
)
from app.web.lineage import draw_paths
from app.workflow import acks as ack_rules
from app.workflow import slash
from app.workflow.checkrun import STATE_WORDS
from app.workflow.pages import page_id, parse_page_id, web_url
from app.workflow.serialize import analysis_from_json
from rules.model import Analysis, Change

log = logging.getLogger(__name__)

SEVERITY_ORDER = {"breaking": 0, "review": 1, "safe": 2, "info": 3}
CONCLUSION_WORDS = {"success": "Passing", "action_required": "Waiting", "failure": "Blocked", None: "In progress"}
NOTICES = {
    "ack": "Acknowledged. The pull request's comment and check are updated.",
    "migrating": "Recorded when you will have migrated. The check waits for an acknowledgement.",
    "block": "Blocked. The check now fails until your team unblocks it.",
}
HISTORY_ACTIONS = frozenset({"ack", "migrating", "block", "unblock", "unack", "override"})


@dataclass(frozen=True)
class Shown:
    """What one page shows: the proposal and the analysis of the check (or the latest one)."""

    proposal: Proposal
    analysis_json: str | None
    base: str | None
    head: str | None
    conclusion: str | None
    check_title: str | None
    summary: str


def job_context(request: web.Request) -> JobContext:
    """What the workflow's functions expect, for an answer given on a page rather than a delivery."""
    queue = request.app[QUEUE_KEY]
    return JobContext(store_of(request), settings_of(request), queue.github, "page", 1, queue.clock)


def _change_row(change: Change) -> dict[str, object]:
    shift = ""
    if change.before and change.after and "UNKNOWN" not in (change.before.upper(), change.after.upper()):
        shift = f"{change.before} → {change.after}"
    elif change.after and not change.before:
        shift = f"now {change.after}"
    return {**change.__dict__, "shift": shift}


async def _context(request: web.Request, shown: Shown, notice: str = "", notice_kind: str = "") -> dict[str, object]:
    settings = settings_of(request)
    proposal = shown.proposal
    context: dict[str, object] = {
        "proposal": proposal,
        "pr_url": f"{web_url(settings.github_api_url)}/{proposal.repo}/pull/{proposal.pr_number}",
        "base": shown.base, "head": shown.head,
        "conclusion": shown.conclusion or "",
        "conclusion_words": CONCLUSION_WORDS.get(shown.conclusion, shown.conclusion or ""),
        "check_title": shown.check_title, "summary": shown.summary,
        "notice": notice, "notice_kind": notice_kind,
        "override": None, "statuses": [], "changes": [], "impacts": [], "migrations": [], "errors": [],
        "has_analysis": False, "graph": None, "answerable": [], "history": [],
    }
    history = await store_of(request).read(lambda db: sql.list_audit(db, repo=proposal.repo, limit=500))
    context["history"] = [
        {"at": dt.datetime.fromtimestamp(h["at"], dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "actor": h["actor"],
         "action": h["action"], "team": h["team"],
         "detail": h["detail"].get("reason") or h["detail"].get("deadline") or "",}
        for h in history if h["pr_number"] == proposal.pr_number and h["action"] in HISTORY_ACTIONS
    ]
    if not shown.analysis_json:
        return context
    analysis: Analysis = analysis_from_json(shown.analysis_json)
    records = await store_of(request).read(lambda db: sql.list_acks(db, proposal.id))
    verdict = ack_rules.verdict(analysis.required_acks, records)
    context.update(
        has_analysis=True,
        override=verdict.override,
        statuses=[
            {
                "who": s.who or (f"@{s.github_team}" if s.github_team else s.team),
                "state": s.state,
                "words": STATE_WORDS.get(s.state, s.state)
                + (f" by @{s.user}" if s.user and s.state in ("acked", "migrating", "blocked") else "")
                + (f" (by {s.deadline})" if s.deadline else "")
                + (f": {s.reason}" if s.reason and s.state == "blocked" else ""),
                "reasons": s.reasons,
            }
            for s in verdict.statuses
        ],
        changes=[_change_row(c) for c in sorted(
            analysis.changes, key=lambda c: (SEVERITY_ORDER.get(c.severity, 9), c.asset, c.column or ""))],
        impacts=analysis.impacts,
        migrations=analysis.migrations,
        errors=analysis.errors,
        graph=draw_paths([i.path for i in analysis.impacts if i.path]) if analysis.impacts else None,
    )
    session = session_of(request)
    if session is not None and request.app[QUEUE_KEY].github is not None and proposal.installation_id:
        try:
            gh = await installation(request, proposal.installation_id)
            context["answerable"] = await slash.answerable(job_context(request), gh, proposal, session.login)
        except GITHUB_TROUBLE as exc:
            log.warning("proposal page: cannot ask GitHub who may answer: %s", exc)
            if not notice:
                context["notice"], context["notice_kind"] = (
                    "GitHub could not be asked who may respond here; try again in a minute.", "bad")
    return context


def _latest(proposal: Proposal, check: CheckRecord | None) -> Shown:
    if check is not None:
        return Shown(proposal, check.analysis, check.base_sha, check.head_sha, check.conclusion, check.title,
                     check.summary or "")
    return Shown(proposal, proposal.analysis, proposal.analysed_base_sha, proposal.analysed_head_sha,
                 proposal.conclusion, None, "")


async def check_page(request: web.Request) -> web.Response:
    """``/checks/{id}``: the signed link is the permission; it shows that check run's analysis."""
    check_run_id = parse_page_id(request.match_info["id"], settings_of(request).webhook_secret)
    record = None if check_run_id is None else await store_of(request).read(lambda db: sql.get_check(db, check_run_id))
    if record is None:
        return problem(request, 404, "No such check", "This link names no check run Tessera knows (or its signature is wrong).")
    proposal = await store_of(request).read(lambda db: sql.get_proposal_by_id(db, record.proposal_id))
    if proposal is None:
        return problem(request, 404, "No such check", "The pull request of this check is no longer stored.")
    context = await _context(request, _latest(proposal, record))
    return render(request, "proposal.html", context, title=f"{proposal.repo}#{proposal.pr_number}")


async def _readable_proposal(request: web.Request) -> Proposal | web.Response:
    """The proposal the URL names, if the signed-in person may read its repository."""
    text = request.match_info["id"]
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        return problem(request, 404, "No such proposal", "Proposal ids are numbers.")
    proposal = await store_of(request).read(lambda db: sql.get_proposal_by_id(db, int(text)))
    session = session_of(request)
    if session is None:
        return need_sign_in(request)
    if proposal is None or not await may_read(request, proposal.installation_id, proposal.repo, session.login):
        # the same answer for "none" and "not yours": a private repository's pull requests are not listed
        return problem(request, 404, "No such proposal", "No proposal with this id in a repository you can read.")
    return proposal


async def proposal_page(request: web.Request) -> web.Response:
    found = await _readable_proposal(request)
    if isinstance(found, web.Response):
        return found
    check = None
    if found.check_run_id is not None:
        check = await store_of(request).read(lambda db: sql.get_check(db, found.check_run_id))
    done = request.query.get("done", "")
    context = await _context(request, _latest(found, check), NOTICES.get(done, ""), "ok" if done in NOTICES else "")
    return render(request, "proposal.html", context, title=f"{found.repo}#{found.pr_number}")


async def respond(request: web.Request) -> web.Response:
    """A form's answer: the same command a member would type, carried out by the same code."""
    checked = await checked_form(request)
    if isinstance(checked, web.Response):
        return checked
    session, form = checked
    found = await _readable_proposal(request)
    if isinstance(found, web.Response):
        return found
    verb, team = form.get("verb", ""), " ".join(form.get("team", "").split())
    if verb not in NOTICES or not team:
        return problem(request, 400, "Not understood", "Choose a team and one of acknowledge, migrating or block.")
    extra = ""
    if verb == "migrating":
        extra = f"by {form.get('deadline', '').strip()}"
    elif verb == "block":
        extra = form.get("reason", "")
        if not extra.strip():
            return await _again(request, found, "A block needs a reason.")
    if request.app[QUEUE_KEY].github is None or not found.installation_id:
        return problem(request, 503, "GitHub is not connected", "The GitHub App is not configured, so nobody can answer here.")
    try:
        gh = await installation(request, found.installation_id)
        outcome = await slash.answer_from_page(job_context(request), gh, found, session.login, f"/tessera {verb} {team} {extra}")
    except GITHUB_TROUBLE as exc:
        log.warning("proposal page: answering on %s#%s failed: %s", found.repo, found.pr_number, exc)
        return await _again(request, found, "GitHub could not be reached to record your answer; nothing changed"
                            " unless the table above says so. Try again in a minute.", status=502)
    if not outcome.accepted:
        return await _again(request, found, outcome.reply or "Refused.", status=403)
    return redirect(f"/proposals/{found.id}?done={verb}#teams", status=303)


async def _again(request: web.Request, proposal: Proposal, notice: str, *, status: int = 400) -> web.Response:
    check = None
    if proposal.check_run_id is not None:
        check = await store_of(request).read(lambda db: sql.get_check(db, proposal.check_run_id))
    context = await _context(request, _latest(proposal, check), notice, "bad")
    return render(request, "proposal.html", context, status=status, title=f"{proposal.repo}#{proposal.pr_number}")


def proposal_link(proposal_id: int) -> str:
    return f"/proposals/{proposal_id}"


def check_link(check_run_id: int, secret: str | None) -> str:
    return f"/checks/{page_id(check_run_id, secret)}"


def routes() -> list[web.RouteDef]:
    return [
        web.get("/checks/{id}", check_page),
        web.get("/proposals/{id}", proposal_page),
        web.post("/proposals/{id}/respond", respond),
    ]
