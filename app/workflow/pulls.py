"""Analysis of a pull request: the check run, the engine, the proposal, the comment.

One analysis, from the queue (one pull request at a time, in order):
create (or, after a crash, reuse) the check run "Tessera" ``in_progress`` on the head SHA; read
the base commit's tree and ``.tessera.yml`` from it (:mod:`app.workflow.checkout`); run the engine
in an analysis worker process (:mod:`app.workflow.analysis`); persist the analysis, update the
single impact comment and complete the check with the verdict (:mod:`app.workflow.publishing`). An analysis over a limit completes the check naming the limit and the
changed files; one that does so twice for the same delivery is quarantined.

A re-delivered webhook for a head and base already analysed does nothing. ``check_run``
rerequested / requested_action ``recheck`` and ``/tessera recheck`` analyse again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import gidgethub
from gidgethub.routing import Router
from gidgethub.sansio import Event

from app.errors import LeaseLost, PermanentError, TransientError
from app.github import InstallationClient
from app.metrics import REGISTRY
from app.notify import events as notify
from app.queue import JobContext
from app.store import deliveries as delivery_sql
from app.store import proposals as sql
from app.store.proposals import Proposal
from app.workflow import checkrun, contracts
from app.workflow.analysis import Quarantined, run_engine
from app.workflow.checkout import AnalysisError, PullRef, event_pull_ref, installation_client, pull_ref
from app.workflow.payload import PayloadReader, listed_numbers
from app.workflow.publishing import details_url, publish_outcome

log = logging.getLogger(__name__)

router = Router()

ANALYSES = REGISTRY.counter(
    "tessera_pr_analyses_total", "Pull-request analyses completed, by check conclusion (error: could not analyse)."
)
ANALYSIS_SECONDS = REGISTRY.histogram(
    "tessera_pr_analysis_seconds", "From check run created to check run completed, one analysis."
)

ANALYSE_ACTIONS = ("opened", "synchronize", "reopened", "ready_for_review", "edited")


# --- event handlers -------------------------------------------------------------------------------


@router.register("pull_request")
async def on_pull_request(event: Event, ctx: JobContext) -> None:
    """Analyse on open, push, reopen, ready for review and a changed base; note closes and merges."""
    action = event.data.get("action")
    ref = event_pull_ref(event)
    if action == "closed":
        await on_closed(event, ctx, ref)
        return
    if action not in ANALYSE_ACTIONS:
        return
    if action == "edited" and "base" not in (event.data.get("changes") or {}):
        return  # a new title or description changes nothing the analysis reads
    # Ready for review: the comment held back while it was a draft is due now.
    await analyse_pull(ctx, ref, force=action == "ready_for_review")


async def on_closed(event: Event, ctx: JobContext, ref: PullRef) -> None:
    merged = bool(event.data["pull_request"].get("merged"))
    status = "merged" if merged else "closed"
    fields = {**ref.proposal_fields(), "status": status}
    proposal = await ctx.store.write(
        lambda db: sql.upsert_proposal(db, repo_id=ref.repo_id, pr_number=ref.number, fields=fields)
    )
    merged_by = ((event.data["pull_request"].get("merged_by") or {}).get("login")) or None
    await ctx.store.write(
        lambda db: sql.audit(
            db,
            actor=merged_by,
            action=f"proposal_{status}",
            repo=ref.repo,
            pr_number=ref.number,
            detail={"head_sha": ref.head_sha, "conclusion": proposal.conclusion},
        )
    )
    if merged:

        await notify.contracts_published(ctx, proposal, await contracts.publish_merged(ctx, proposal, ref))
    await notify.proposal_closed(ctx, proposal, merged=merged)


@router.register("check_run", action="rerequested")
@router.register("check_run", action="requested_action")
async def on_check_run(event: Event, ctx: JobContext) -> None:
    """The Re-check button (and GitHub's "Re-run"): analyse the pull request again."""
    reader = PayloadReader(event.data, event.event)
    run = reader.mapping("check_run")
    if run.get("name") != checkrun.CHECK_NAME:
        return
    if event.data.get("action") == "requested_action":
        if (event.data.get("requested_action") or {}).get("identifier") != "recheck":
            return
    repository = reader.mapping("repository")
    installation_id = reader.installation_id()
    numbers = listed_numbers(reader, "check_run.pull_requests")
    if not numbers:
        # Fork pull requests are not listed on check runs: find the proposal by its check run.
        run_id = reader.integer("check_run.id")
        record = await ctx.store.read(lambda db: sql.get_check(db, run_id))
        if record is not None:
            proposal = await ctx.store.read(lambda db: sql.get_proposal_by_id(db, record.proposal_id))
            numbers = [proposal.pr_number] if proposal else []
    for number in numbers:
        await recheck(ctx, installation_id=installation_id, repository=repository, number=number)


@router.register("check_suite", action="rerequested")
async def on_check_suite(event: Event, ctx: JobContext) -> None:
    """"Re-run all checks" on a commit."""
    reader = PayloadReader(event.data, event.event)
    reader.mapping("check_suite")
    if not reader.items("check_suite.pull_requests"):
        return
    repository = reader.mapping("repository")
    installation_id = reader.installation_id()
    for number in listed_numbers(reader, "check_suite.pull_requests"):
        await recheck(ctx, installation_id=installation_id, repository=repository, number=number)


async def recheck(ctx: JobContext, *, installation_id: int, repository: Mapping[str, Any], number: int) -> None:
    """Analyse the pull request as it is now (its current head and base), whatever was analysed."""
    full_name = PayloadReader({"repository": repository}, "recheck").text("repository.full_name")
    gh = await installation_client(ctx, installation_id)
    owner, _, name = full_name.partition("/")
    pull = await gh.get_pull(owner, name, number)
    if pull.get("state") != "open":
        return
    await analyse_pull(ctx, pull_ref(pull, repository, installation_id), force=True, github=gh)


# --- the analysis ---------------------------------------------------------------------------------


async def analyse_pull(ctx: JobContext, ref: PullRef, *, force: bool, github: InstallationClient | None = None) -> Proposal:
    """Analyse one pull request and publish the outcome (check, comment). Idempotent.

    A late webhook changes nothing it should not: a head a newer event supersedes does not
    overwrite the stored pull request first, and a merged pull request is never opened again."""
    stored = await ctx.store.read(lambda db: sql.get_proposal(db, ref.repo_id, ref.number))
    if stored is not None and stored.status == "merged":
        log.info("%s#%s: merged already; a late event about %s changes nothing", ref.repo, ref.number, ref.head_sha[:12])
        return stored
    if stored is not None and await newer_head(ctx, ref) is not None:
        return await _superseded_before(ctx, ref, stored, github)
    fields = {**ref.proposal_fields(), "status": "open"}
    proposal: Proposal = await ctx.store.write(
        lambda db: sql.upsert_proposal(db, repo_id=ref.repo_id, pr_number=ref.number, fields=fields)
    )
    if (
        not force
        and proposal.analysed_head_sha == ref.head_sha
        and proposal.analysed_base_sha == ref.base_sha
        and proposal.conclusion is not None
    ):
        log.info("%s#%s: %s already analysed, nothing to do", ref.repo, ref.number, ref.head_sha[:12])
        return proposal
    if await newer_head(ctx, ref) is not None:  # the first event of this pull request, superseded
        return await _superseded_before(ctx, ref, proposal, github)
    gh = github or await installation_client(ctx, ref.installation_id)

    check_run_id = await _open_check_run(ctx, gh, ref, proposal)
    url = details_url(ctx, check_run_id)
    started = time.perf_counter()
    try:
        analysis, paths = await run_engine(ctx, gh, ref)
    except (TimeoutError, TransientError, OSError) as exc:
        if ctx.attempt >= ctx.settings.max_attempts:
            await _fail_check_quietly(ctx, gh, ref, proposal, check_run_id, f"GitHub kept failing: {exc}", url)
            ANALYSES.inc(conclusion="error")
        raise
    except Exception as exc:  # noqa: BLE001 - an engine bug must not leave the check spinning
        if isinstance(exc, AnalysisError):
            log.warning("%s#%s: %s", ref.repo, ref.number, exc)
        else:
            log.exception("%s#%s: analysis failed", ref.repo, ref.number)
        message = str(exc) if isinstance(exc, AnalysisError) else f"The analysis failed: {exc!r}"
        await _fail_check(ctx, gh, ref, proposal, check_run_id, message, url)
        ANALYSES.inc(conclusion="error")
        if isinstance(exc, Quarantined):
            raise  # the check says why; the delivery is set aside
        return proposal

    newer = await newer_head(ctx, ref)
    if newer is not None:
        # The analysis is of a head that is no longer the pull request's: showing it would report
        # an old commit as the pull request's result until the newer job overwrote it.
        await _supersede(ctx, gh, ref, check_run_id, newer)
        log.info("%s#%s: %s superseded by %s during its analysis", ref.repo, ref.number, ref.head_sha[:12], newer[:12])
        return proposal

    try:
        verdict = await publish_outcome(
            ctx,
            gh,
            proposal,
            analysis,
            check_run_id=check_run_id,
            changed=paths,
            annotate=True,
            new_analysis=True,
            quiet=ref.draft,
        )
    except (TimeoutError, TransientError, OSError, aiohttp.ClientError) as exc:
        if ctx.attempt >= ctx.settings.max_attempts:
            await _fail_check_quietly(ctx, gh, ref, proposal, check_run_id, f"GitHub kept failing: {exc}", url)
        raise  # retried: the comment is found again by its marker, the same check run completed
    except gidgethub.BadRequest as exc:
        message = f"Tessera analysed this pull request but GitHub refused the result ({exc.status_code}: {exc})."
        await _fail_check_quietly(ctx, gh, ref, proposal, check_run_id, message, url)
        ANALYSES.inc(conclusion="error")
        raise PermanentError(f"{ref.repo}#{ref.number}: {message}") from exc
    ANALYSES.inc(conclusion=verdict.conclusion)
    ANALYSIS_SECONDS.observe(time.perf_counter() - started)
    return proposal


async def _superseded_before(
    ctx: JobContext, ref: PullRef, proposal: Proposal, github: InstallationClient | None
) -> Proposal:
    """A push landed while this job waited: its own job analyses the new head. Only a check a
    crashed attempt left open on this head is closed, saying so."""
    newer = await newer_head(ctx, ref)
    if newer is None:
        return proposal
    gh = github or await installation_client(ctx, ref.installation_id)
    left_open = await _run_left_open(ctx, gh, ref, proposal)
    if left_open is not None:
        await _supersede(ctx, gh, ref, left_open, newer)
    log.info("%s#%s: %s superseded by %s before its analysis", ref.repo, ref.number, ref.head_sha[:12], newer[:12])
    return proposal


async def newer_head(ctx: JobContext, ref: PullRef) -> str | None:
    """The head a later ``pull_request`` delivery of this pull request brings, when it is not this
    job's head: that delivery's job will analyse it (jobs of one pull request run in order)."""
    newest = await ctx.store.read(lambda db: delivery_sql.newest_later_head(db, ctx.delivery_id, ANALYSE_ACTIONS))
    return newest if newest is not None and newest != ref.head_sha else None


async def _run_left_open(ctx: JobContext, gh: InstallationClient, ref: PullRef, proposal: Proposal) -> int | None:
    """The check run an interrupted attempt of this job left ``in_progress`` on this head: the
    stored one, else one GitHub has (an attempt killed or stopped between GitHub creating the run
    and the store recording it; a graceful stop does not count the attempt, so GitHub is asked
    whatever the attempt number: one request, for a job that skips its whole analysis)."""
    stored = await _stored_open_run(ctx, ref, proposal)
    return stored if stored is not None else await _find_open_check_run(gh, ref, proposal)


async def _stored_open_run(ctx: JobContext, ref: PullRef, proposal: Proposal) -> int | None:
    """The check run the store says an earlier attempt opened on this head and never completed."""
    if proposal.check_run_id is not None:
        record = await ctx.store.read(lambda db: sql.get_check(db, proposal.check_run_id))
        if record is not None and record.head_sha == ref.head_sha and record.conclusion is None:
            return record.check_run_id
    return None


async def _supersede(ctx: JobContext, gh: InstallationClient, ref: PullRef, check_run_id: int, newer: str) -> None:
    """Complete this head's check as superseded (never left ``in_progress``); the proposal keeps
    its current analysis, which the newer head's job replaces."""
    await ctx.fence()
    body = checkrun.superseded_output(newer)
    body["details_url"] = details_url(ctx, check_run_id)
    await gh.update_check_run(ref.owner, ref.name, check_run_id, **body)
    await ctx.fenced_write(
        lambda db: sql.update_check_verdict(
            db,
            check_run_id=check_run_id,
            conclusion=body["conclusion"],
            title=body["output"]["title"],
            summary=body["output"]["summary"],
            report=None,
        )
    )
    ANALYSES.inc(conclusion="superseded")


async def _open_check_run(ctx: JobContext, gh: InstallationClient, ref: PullRef, proposal: Proposal) -> int:
    """The in-progress check for this head, once the API budget allows an analysis."""
    check_run_id = await _in_progress_check_run(ctx, gh, ref, proposal)
    await _wait_for_budget(ctx, gh, ref, check_run_id)
    return check_run_id


async def _in_progress_check_run(ctx: JobContext, gh: InstallationClient, ref: PullRef, proposal: Proposal) -> int:
    """Reuse the check run a crashed attempt left (stored, or found on GitHub), else create it."""
    stored = await _stored_open_run(ctx, ref, proposal)
    if stored is not None:
        return stored
    check_run_id = await _find_open_check_run(gh, ref, proposal)
    if check_run_id is not None:
        await ctx.fenced_write(
            lambda db: sql.start_analysis(
                db, check_run_id=check_run_id, proposal_id=proposal.id, base_sha=ref.base_sha, head_sha=ref.head_sha
            )
        )
        return check_run_id
    await ctx.fence()  # a stalled replica must not open a second run beside the one taking over
    try:
        run = await gh.create_check_run(
            ref.owner,
            ref.name,
            name=checkrun.CHECK_NAME,
            head_sha=ref.head_sha,
            status="in_progress",
            external_id=str(proposal.id),
        )
    except gidgethub.BadRequest as exc:
        if exc.status_code == 404:
            raise PermanentError(
                f"{ref.repo}#{ref.number}: GitHub answers 404 for the repository's check runs: the repository "
                f"is gone, renamed, or not covered by the installation (GitHub said: {exc})"
            ) from exc
        if exc.status_code != 422:
            raise
        # GitHub has no such commit (force-pushed away before the job ran): there is nothing to
        # put a check on, and retrying cannot bring the commit back. The next push is analysed.
        raise PermanentError(
            f"{ref.repo}#{ref.number}: the head commit {ref.head_sha} no longer exists at GitHub "
            f"(force-pushed or deleted before the analysis ran), so no check can be put on it; "
            f"GitHub said: {exc}"
        ) from exc
    check_run_id = int(run["id"])
    await ctx.fenced_write(
        lambda db: sql.start_analysis(
            db, check_run_id=check_run_id, proposal_id=proposal.id, base_sha=ref.base_sha, head_sha=ref.head_sha
        )
    )
    return check_run_id


async def _wait_for_budget(ctx: JobContext, gh: InstallationClient, ref: PullRef, check_run_id: int) -> None:
    """Hold the analysis while the installation's API budget is under its reserve, saying so in
    the check; the queue runs it again at the reset. The last attempt analyses anyway: a late
    answer beats a failed check."""
    wait = gh.budget_wait()
    if wait is None or ctx.attempt >= ctx.settings.max_attempts:
        return
    when = time.strftime("%H:%M", time.gmtime(wait.until))
    await ctx.fence()
    await gh.update_check_run(
        ref.owner,
        ref.name,
        check_run_id,
        status="in_progress",
        output={
            "title": f"Waiting for GitHub's API budget until {when} UTC",
            "summary": (
                f"This installation has used most of its hourly GitHub API requests. Tessera is "
                f"waiting for GitHub's API budget until {when} UTC, then analyses this pull request; "
                "nothing needs doing."
            ),
        },
    )
    raise TransientError(f"{ref.repo}#{ref.number}: waiting for GitHub's API budget until {when} UTC", retry_after=wait.seconds)


async def _find_open_check_run(gh: InstallationClient, ref: PullRef, proposal: Proposal) -> int | None:
    """A still-open check run this App made for this proposal on this head, found on GitHub.

    An attempt interrupted while GitHub was creating the run (the answer lost, the worker killed)
    stored no id; without this look-up its retry would create a second run and leave the first
    ``in_progress`` forever. GitHub is asked, not the store, so it holds whichever replica ran
    the attempt."""
    try:
        runs = await gh.list_check_runs(
            ref.owner, ref.name, ref.head_sha, name=checkrun.CHECK_NAME, app_id=gh.github_app_id
        )
    except gidgethub.BadRequest as exc:
        if exc.status_code in (404, 422):  # no such repository or commit: creating the run says why
            return None
        raise
    for run in runs:  # newest first
        if (
            run.get("head_sha") == ref.head_sha
            and run.get("status") != "completed"
            and run.get("external_id") == str(proposal.id)
        ):
            return int(run["id"])
    return None


async def _fail_check_quietly(
    ctx: JobContext, gh: InstallationClient, ref: PullRef, proposal: Proposal, check_run_id: int, message: str, url: str
) -> None:
    """:func:`_fail_check` when GitHub is already misbehaving: its own failure is logged, and the
    job's error (the first cause) is what the operator sees."""
    try:
        await _fail_check(ctx, gh, ref, proposal, check_run_id, message, url)
    except LeaseLost:
        raise  # another replica holds the job now: this one records no outcome for it, not a retry
    except Exception:  # noqa: BLE001 - best effort; the original error is raised by the caller
        log.exception("%s#%s: could not complete the check with the failure", ref.repo, ref.number)


async def _fail_check(
    ctx: JobContext, gh: InstallationClient, ref: PullRef, proposal: Proposal, check_run_id: int, message: str, url: str
) -> None:
    await ctx.fence()
    body = checkrun.error_output(message)
    body["details_url"] = url
    await gh.update_check_run(ref.owner, ref.name, check_run_id, **body)
    await ctx.fenced_write(
        lambda db: sql.finish_analysis(
            db,
            check_run_id=check_run_id,
            proposal_id=proposal.id,
            analysis_json=None,
            analysis_status="error",
            conclusion=body["conclusion"],
            title=body["output"]["title"],
            summary=body["output"]["summary"],
            report=None,
            base_sha=ref.base_sha,
            head_sha=ref.head_sha,
        )
    )


# --- publishing (also used after a command) -------------------------------------------------------


