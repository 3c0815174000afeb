"""Analysis of a pull request: the check run, the engine, the proposal, the comment.

One analysis, from the queue (one pull request at a time, in order):
create (or, after a crash, reuse) the check run "Tessera" ``in_progress`` on the head SHA; read
the base commit's tree (cached by SHA) and ``.tessera.yml`` from it — never from the head, so a
pull request cannot weaken the rules it is judged by; list the changed files; run the engine in an
analysis worker process (:mod:`app.engine`: its own time and memory limits; the blobs it reads
are fetched here, once, ever); persist the analysis; update the single impact comment; complete
the check with the verdict. An analysis over a limit completes the check naming the limit and the
changed files; one that does so twice for the same delivery is quarantined.

A re-delivered webhook for a head and base already analysed does nothing. ``check_run``
rerequested / requested_action ``recheck`` and ``/tessera recheck`` analyse again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any, BinaryIO

import aiohttp
import gidgethub
from gidgethub.routing import Router
from gidgethub.sansio import Event

from app import engine
from app.errors import PermanentError, QuarantinedError, TransientError
from app.metrics import REGISTRY
from app.notify import events as notify
from app.store import deliveries as delivery_sql
from app.store import observed as observed_sql
from app.store import proposals as sql
from app.store.proposals import Proposal
from app.workflow import acks as ack_rules
from app.workflow import checkrun, github_source, jobs, people
from app.workflow.bounded import OverBudget, run_bounded
from app.workflow.comment import comment_body, publish, wants_comment
from app.workflow.github_source import (
    PR_FILES_LIMIT,
    BlobFetcher,
    GitHubSource,
    apply_pull_files,
    changed_between,
    changed_paths,
    likely_reads,
    load_tree,
)
from app.workflow.packages import with_packages
from app.workflow.payload import PayloadReader, listed_numbers
from app.workflow.serialize import analysis_from_json, analysis_to_json
from rules.model import Analysis
from rules.model import AnalysisError as AnalysisProblem
from rules.yamlsafe import yaml_expanded_size

log = logging.getLogger(__name__)

router = Router()

ANALYSES = REGISTRY.counter(
    "tessera_pr_analyses_total", "Pull-request analyses completed, by check conclusion (error: could not analyse)."
)
ANALYSIS_SECONDS = REGISTRY.histogram(
    "tessera_pr_analysis_seconds", "From check run created to check run completed, one analysis."
)
BLOBS_FETCHED = REGISTRY.counter(
    "tessera_blobs_fetched_total", "Files fetched from GitHub for analyses (each blob once, then cached)."
)

CONFIG_PATH = ".tessera.yml"
MAX_CONFIG_CHARS = 512 * 1024
MAX_CONFIG_VALUES = 100_000
"""A real ``.tessera.yml`` holds hundreds of values; a million is an attack."""
CONFIG_SECONDS = 10.0
"""Reading ``.tessera.yml`` takes milliseconds; more than this is a YAML bomb."""
ANALYSE_ACTIONS = ("opened", "synchronize", "reopened", "ready_for_review", "edited")

QUARANTINE_AFTER_KILLS = 2
"""An analysis that ends its worker this many times for one delivery is set aside, not retried."""
WORKER_KILLS = REGISTRY.counter(
    "tessera_analysis_worker_kills_total", "Analyses that ended their worker process, by limit (time, memory, crash)."
)


@dataclass(frozen=True)
class PullRef:
    """What an analysis needs to know about a pull request (from a payload or the API)."""

    installation_id: int
    repo_id: int
    repo: str
    number: int
    title: str
    author: str
    base_ref: str
    base_sha: str
    head_sha: str
    head_repo: str | None
    draft: bool = False

    @property
    def owner(self) -> str:
        return self.repo.partition("/")[0]

    @property
    def name(self) -> str:
        return self.repo.partition("/")[2]

    def proposal_fields(self) -> dict[str, Any]:
        return {
            "installation_id": self.installation_id,
            "repo": self.repo,
            "title": self.title,
            "author": self.author,
            "base_ref": self.base_ref,
            "base_sha": self.base_sha,
            "head_sha": self.head_sha,
        }


def pull_ref(
    pull: Mapping[str, Any], repository: Mapping[str, Any], installation_id: int, *, source: str = "pull_request"
) -> PullRef:
    """The pull request's identity; a malformed one fails the job at once naming the field
    (``source`` says where it came from: a delivery's event, or GitHub's API)."""
    reader = PayloadReader({"pull_request": pull, "repository": repository}, source)
    head_repo = reader.text("pull_request.head.repo.full_name", default="") if reader.has("pull_request.head.repo") else ""
    author = reader.text("pull_request.user.login", default="") if reader.has("pull_request.user") else ""
    return PullRef(
        installation_id=installation_id,
        repo_id=reader.integer("repository.id"),
        repo=reader.text("repository.full_name"),
        number=reader.integer("pull_request.number"),
        title=str(pull.get("title") or ""),
        author=author,
        base_ref=reader.text("pull_request.base.ref"),
        base_sha=reader.text("pull_request.base.sha"),
        head_sha=reader.text("pull_request.head.sha"),
        head_repo=head_repo or None,
        draft=bool(pull.get("draft")),
    )


def event_pull_ref(event: Event) -> PullRef:
    """:func:`pull_ref` of a ``pull_request`` delivery, every field it needs checked."""
    reader = PayloadReader(event.data, event.event)
    pull = reader.mapping("pull_request")
    repository = reader.mapping("repository")
    return pull_ref(pull, repository, reader.installation_id(), source=event.event)


async def installation_client(ctx: Any, installation_id: int) -> Any:
    """The installation's API client; without a configured App the job fails with a clear reason
    (and can be replayed with ``tessera deliveries --replay`` once the App is set up)."""
    if ctx.github is None:
        raise PermanentError(
            "the GitHub App is not configured (TESSERA_GITHUB_APP_ID and its private key): cannot act on GitHub"
        )
    return await ctx.github.for_installation(installation_id)


def details_url(ctx: Any, check_run_id: int) -> str:
    """The check's page (signed link: the report of a private repository is not public)."""
    from app.workflow.pages import page_id

    return f"{ctx.settings.base_url}/checks/{page_id(check_run_id, ctx.settings.webhook_secret)}"


# --- event handlers -------------------------------------------------------------------------------


@router.register("pull_request")
async def on_pull_request(event: Event, ctx: Any) -> None:
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


async def on_closed(event: Event, ctx: Any, ref: PullRef) -> None:
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
        from app.workflow import contracts

        await notify.contracts_published(ctx, proposal, await contracts.publish_merged(ctx, proposal, ref))
    await notify.proposal_closed(ctx, proposal, merged=merged)


@router.register("check_run", action="rerequested")
@router.register("check_run", action="requested_action")
async def on_check_run(event: Event, ctx: Any) -> None:
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
async def on_check_suite(event: Event, ctx: Any) -> None:
    """"Re-run all checks" on a commit."""
    reader = PayloadReader(event.data, event.event)
    reader.mapping("check_suite")
    if not reader.items("check_suite.pull_requests"):
        return
    repository = reader.mapping("repository")
    installation_id = reader.installation_id()
    for number in listed_numbers(reader, "check_suite.pull_requests"):
        await recheck(ctx, installation_id=installation_id, repository=repository, number=number)


async def recheck(ctx: Any, *, installation_id: int, repository: Mapping[str, Any], number: int) -> None:
    """Analyse the pull request as it is now (its current head and base), whatever was analysed."""
    full_name = PayloadReader({"repository": repository}, "recheck").text("repository.full_name")
    gh = await installation_client(ctx, installation_id)
    owner, _, name = full_name.partition("/")
    pull = await gh.get_pull(owner, name, number)
    if pull.get("state") != "open":
        return
    await analyse_pull(ctx, pull_ref(pull, repository, installation_id), force=True, github=gh)


# --- the analysis ---------------------------------------------------------------------------------


async def analyse_pull(ctx: Any, ref: PullRef, *, force: bool, github: Any = None) -> Proposal:
    """Analyse one pull request and publish the outcome (check, comment). Idempotent."""
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


async def _open_check_run(ctx: Any, gh: Any, ref: PullRef, proposal: Proposal) -> int:
    """The in-progress check for this head, once the API budget allows an analysis."""
    check_run_id = await _in_progress_check_run(ctx, gh, ref, proposal)
    await _wait_for_budget(ctx, gh, ref, check_run_id)
    return check_run_id


async def _in_progress_check_run(ctx: Any, gh: Any, ref: PullRef, proposal: Proposal) -> int:
    """Reuse the check run a crashed attempt left (stored, or found on GitHub), else create it."""
    if proposal.check_run_id is not None:
        record = await ctx.store.read(lambda db: sql.get_check(db, proposal.check_run_id))
        if record is not None and record.head_sha == ref.head_sha and record.conclusion is None:
            return record.check_run_id
    check_run_id = await _find_open_check_run(gh, ref, proposal)
    if check_run_id is not None:
        await ctx.store.write(
            lambda db: sql.start_analysis(
                db, check_run_id=check_run_id, proposal_id=proposal.id, base_sha=ref.base_sha, head_sha=ref.head_sha
            )
        )
        return check_run_id
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
    await ctx.store.write(
        lambda db: sql.start_analysis(
            db, check_run_id=check_run_id, proposal_id=proposal.id, base_sha=ref.base_sha, head_sha=ref.head_sha
        )
    )
    return check_run_id


async def _wait_for_budget(ctx: Any, gh: Any, ref: PullRef, check_run_id: int) -> None:
    """Hold the analysis while the installation's API budget is under its reserve, saying so in
    the check; the queue runs it again at the reset. The last attempt analyses anyway: a late
    answer beats a failed check."""
    wait = gh.budget_wait()
    if wait is None or ctx.attempt >= ctx.settings.max_attempts:
        return
    when = time.strftime("%H:%M", time.gmtime(wait.until))
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


async def _find_open_check_run(gh: Any, ref: PullRef, proposal: Proposal) -> int | None:
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


@dataclass
class Checkout:
    """Both sides of a pull request as the engine reads them, and the rules they are judged by."""

    base: GitHubSource
    head: GitHubSource
    changed: set[str]
    config: Any
    fetcher: BlobFetcher
    notes: tuple[str, ...] = ()
    """What the check should say about how the change was read (dbt packages)."""


async def checkout(ctx: Any, gh: Any, ref: PullRef) -> Checkout:
    """The base tree (cached by SHA), the PR's files applied to it, ``.tessera.yml`` from the base."""

    loop = asyncio.get_running_loop()
    base_entries = await load_tree(ctx.store, gh, repo_id=ref.repo_id, owner=ref.owner, repo=ref.name, sha=ref.base_sha)
    files = await gh.list_pull_files(ref.owner, ref.name, ref.number)
    if len(files) >= PR_FILES_LIMIT:
        head_entries = await load_tree(
            ctx.store, gh, repo_id=ref.repo_id, owner=ref.owner, repo=ref.name, sha=ref.head_sha
        )
        changed = changed_between(base_entries, head_entries)
    else:
        head_entries = apply_pull_files(base_entries, files)
        changed = changed_paths(files)
    fetcher = BlobFetcher(store=ctx.store, github=gh, owner=ref.owner, repo=ref.name, loop=loop)
    await fetcher.preload({e.sha for e in base_entries.values()} | {e.sha for e in head_entries.values()})
    started = time.perf_counter()
    # .tessera.yml decides what the engine reads, but a cold base is worth its tarball before it
    # is read: what the default configuration reads, and the configuration itself, in one call.
    await fetcher.fetch_all(ref.base_sha, likely_reads(base_entries, None))
    config_text = None
    if CONFIG_PATH in base_entries:
        config_text = (await fetcher.fetch(base_entries[CONFIG_PATH].sha)).decode("utf-8", errors="replace")
    config = await read_config(config_text, seconds=min(CONFIG_SECONDS, ctx.settings.job_timeout / 4))
    base_reads, head_reads = likely_reads(base_entries, config), likely_reads(head_entries, config)
    await fetcher.fetch_all(ref.base_sha, base_reads)
    await fetcher.fetch_all(ref.head_sha, head_reads)

    async def download(owner: str, name: str, git_ref: str, sink: BinaryIO, max_bytes: int) -> int:
        return await gh.download_tarball(owner, name, git_ref, sink, max_bytes=max_bytes)

    base_entries, head_entries = dict(base_entries), dict(head_entries)
    notes = await with_packages(ctx.settings, download, fetcher, base_entries, head_entries, config, changed)
    log.info(
        "%s#%s: %d file(s) to read, %d tarball(s) and %d blob(s) fetched from GitHub in %.2fs",
        ref.repo,
        ref.number,
        len(base_reads) + len(head_reads),
        fetcher.archives,
        fetcher.fetched_from_github,
        time.perf_counter() - started,
    )
    return Checkout(
        base=GitHubSource(base_entries, fetcher),
        head=GitHubSource(head_entries, fetcher),
        changed=changed,
        config=config,
        fetcher=fetcher,
        notes=notes,
    )


async def read_config(text: str | None, *, seconds: float) -> Any:
    """``.tessera.yml`` parsed off the event loop, within a time budget: a YAML bomb (aliases that
    expand to billions of values) must neither block the server nor hold a worker; it is named in
    the check and the defaults apply, as for any other unusable configuration."""
    from rules.config import parse_config
    from rules.model import Config

    if text is not None and len(text) > MAX_CONFIG_CHARS:
        return Config(
            problems=(
                f".tessera.yml is {len(text) / 1_048_576:.1f} MB, more than the {MAX_CONFIG_CHARS // 1024} KB "
                "Tessera reads for a configuration; using defaults",
            )
        )
    expanded = await asyncio.to_thread(yaml_expanded_size, text or "", MAX_CONFIG_VALUES)
    if expanded > MAX_CONFIG_VALUES:
        return Config(
            problems=(
                f".tessera.yml expands to over {MAX_CONFIG_VALUES:,} values through YAML aliases (a \"billion "
                "laughs\" document?); not read, using defaults",
            )
        )
    try:
        return await run_bounded(lambda: parse_config(text), seconds)
    except OverBudget:
        return Config(problems=(f".tessera.yml could not be read within {seconds:g}s; using defaults",))


def raise_fetch_failure(fetcher: BlobFetcher) -> None:
    """A file the engine could not read is a reason to retry the job, never a silent gap."""
    failure = fetcher.failure
    if failure is None:
        return
    if isinstance(failure, TransientError | asyncio.TimeoutError | OSError):
        raise failure
    if isinstance(failure, gidgethub.BadRequest):
        raise unreadable(failure) from failure
    raise TransientError(f"could not read a file from GitHub: {failure!r}")


def unreadable(exc: gidgethub.BadRequest) -> AnalysisError:
    """GitHub refused a file for good (404: the commit or blob is gone; 403: no access): retrying
    cannot help, so the check says so and a push or a re-check starts over."""
    return AnalysisError(
        f"A file of this pull request could not be read from GitHub ({exc.status_code}: {exc}). "
        "The branch may have been force-pushed or the file removed while Tessera read it."
    )


async def run_engine(ctx: Any, gh: Any, ref: PullRef) -> tuple[Analysis, set[str]]:
    """Fetch what the engine needs and run it in an analysis worker process (``app.engine``):
    the event loop never runs engine code, and a change that goes over the time or memory limit
    (or crashes its worker) ends as a clear :class:`AnalysisError`, or, the second time the same
    delivery does it, as :class:`Quarantined`."""
    try:
        source = await checkout(ctx, gh, ref)
    except gidgethub.BadRequest as exc:
        if exc.status_code in (401, 403, 429):
            raise  # the client made these transient where they are
        raise unreadable(exc) from exc
    registrations = await _registrations(ctx)
    today = dt.datetime.fromtimestamp(ctx.clock.now(), dt.UTC).date()
    job = jobs.ChangeJob(
        base=source.base.entries,
        head=source.head.entries,
        base_rev=ref.base_sha,
        head_rev=ref.head_sha,
        config=source.config,
        changed=frozenset(source.changed),
        registrations=tuple(registrations),
        today=today,
        max_blob_bytes=github_source.MAX_BLOB_BYTES,
    )
    wanted = {e.sha for e in source.base.entries.values()} | {e.sha for e in source.head.entries.values()}
    try:
        result = await engine.pool_for(ctx.settings).run(
            jobs.analyse_change,
            job,
            seconds=engine.analysis_budget(ctx.settings),
            blobs=source.fetcher.held(wanted),
            reader=source.fetcher.fetch_from_thread,
            cache_dir=engine.cache_dir(ctx.settings),
        )
    except engine.WorkerKilled as killed:
        raise_fetch_failure(source.fetcher)  # a GitHub that stopped answering is retried instead
        raise await _killed(ctx, ref, killed, source.changed) from None
    except engine.EngineFailed as exc:
        raise AnalysisError(f"The analysis failed: {exc}") from None
    finally:
        await source.fetcher.flush()
    raise_fetch_failure(source.fetcher)
    analysis = result.analysis
    unread = [AnalysisProblem(path, reason) for path, reason in sorted(result.skipped.items()) if path in source.changed]
    if unread:
        analysis = replace(analysis, errors=(*analysis.errors, *unread))
    if source.notes:
        analysis = replace(analysis, notes=(*analysis.notes, *source.notes))
    BLOBS_FETCHED.inc(source.fetcher.fetched_from_github)
    analysis = await _with_registry_teams(ctx, analysis)
    analysis = await people.settle(gh, ref.owner, ref.name, analysis, source.config, author=ref.author)
    log.info(
        "%s#%s analysed: %s, %d change(s), %d blob(s) fetched",
        ref.repo,
        ref.number,
        analysis.status,
        len(analysis.changes),
        source.fetcher.fetched_from_github,
    )
    return analysis, source.changed


async def _killed(ctx: Any, ref: PullRef, killed: engine.WorkerKilled, changed: Collection[str]) -> AnalysisError:
    """The check's text for an analysis that ended its worker; the kill is counted against the
    delivery, and the second one quarantines it (never retried again until an operator replays it)."""
    shown = sorted(p for p in changed if p.lower().endswith((".sql", ".yml", ".yaml", ".py", ".json")))
    files = f"{', '.join(shown[:20]) or 'no schema files'}{' …' if len(shown) > 20 else ''}"
    hint = {
        "time": "A template that loops without end or a file too large to parse is the usual cause.",
        "memory": "A template or YAML file that expands to something huge is the usual cause.",
        "crash": "",
    }[killed.limit]
    message = f"This change could not be analysed: {killed}; {files}. {hint}".rstrip()
    log.warning("%s#%s: analysis worker ended: %s", ref.repo, ref.number, killed)
    kills = await ctx.store.write(lambda db: delivery_sql.count_kill(db, ctx.delivery_id))
    WORKER_KILLS.inc(limit=killed.limit)
    if kills >= QUARANTINE_AFTER_KILLS:
        return Quarantined(
            f"{message} The analysis ended its worker {kills} times for this delivery: quarantined, "
            "not retried (an operator can replay it with `tessera deliveries --replay`)."
        )
    return AnalysisError(message)


class AnalysisError(PermanentError):
    """The engine could not finish on this pull request's content; the check says why."""


class Quarantined(AnalysisError, QuarantinedError):
    """An analysis that ended its worker twice for the same delivery: the check says why and the
    delivery is set aside (status ``quarantined``) rather than failed or retried."""


async def _registrations(ctx: Any) -> tuple[Any, ...]:
    """Registrations made through the API (another module's table), when it exists."""
    try:
        from app.store import registrations as reg_sql
    except ImportError:
        return ()
    loader = getattr(reg_sql, "all_registrations", None)
    if loader is None:
        return ()
    today = dt.datetime.fromtimestamp(ctx.clock.now(), dt.UTC).date()
    seen = await ctx.store.read(lambda db: observed_sql.observed_registrations(db, today=today))
    return (*await ctx.store.read(loader), *seen)


async def _with_registry_teams(ctx: Any, analysis: Analysis) -> Analysis:
    """Teams the repository's ``.tessera.yml`` does not map (e.g. a team that registered through the
    API) get the GitHub team the registry knows for them, so they are mentioned and can answer."""
    if all(r.github_team for r in analysis.required_acks):
        return analysis
    try:
        from app.store.registry import github_teams
    except ImportError:
        return analysis
    known = await ctx.store.read(github_teams)
    required = tuple(
        replace(r, github_team=known.get(r.team))
        if not r.github_team and r.kind == "team" and not r.maintainers and known.get(r.team)
        else r
        for r in analysis.required_acks
    )
    return replace(analysis, required_acks=required)


async def _failing_audits(ctx: Any, fqns: set[str]) -> dict[str, Any]:
    """The registry's failing WAP audits for the changed assets, when the registry is there."""
    if not fqns:
        return {}
    try:
        from app.store.registry import failing_audits
    except ImportError:
        return {}
    try:
        return await ctx.store.read(lambda db: failing_audits(db, fqns))
    except Exception:  # noqa: BLE001 - a registry problem must not cost the PR its check
        log.exception("could not read failing audits for %s", sorted(fqns))
        return {}


async def _fail_check_quietly(
    ctx: Any, gh: Any, ref: PullRef, proposal: Proposal, check_run_id: int, message: str, url: str
) -> None:
    """:func:`_fail_check` when GitHub is already misbehaving: its own failure is logged, and the
    job's error (the first cause) is what the operator sees."""
    try:
        await _fail_check(ctx, gh, ref, proposal, check_run_id, message, url)
    except Exception:  # noqa: BLE001 - best effort; the original error is raised by the caller
        log.exception("%s#%s: could not complete the check with the failure", ref.repo, ref.number)


async def _fail_check(
    ctx: Any, gh: Any, ref: PullRef, proposal: Proposal, check_run_id: int, message: str, url: str
) -> None:
    body = checkrun.error_output(message)
    body["details_url"] = url
    await gh.update_check_run(ref.owner, ref.name, check_run_id, **body)
    await ctx.store.write(
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


async def publish_outcome(
    ctx: Any,
    gh: Any,
    proposal: Proposal,
    analysis: Analysis,
    *,
    check_run_id: int,
    changed: Collection[str] = (),
    annotate: bool = False,
    new_analysis: bool = False,
    quiet: bool = False,
) -> ack_rules.Verdict:
    """Work out the verdict from the stored responses, then update comment, check and store.

    ``quiet`` (a draft pull request): the check is complete as usual, but no comment is started,
    so teams are not mentioned about work its author has not asked anyone to look at yet."""
    owner, name = proposal.owner_and_name
    records = await ctx.store.read(lambda db: sql.list_acks(db, proposal.id))
    verdict = ack_rules.verdict(analysis.required_acks, records)
    url = details_url(ctx, check_run_id)
    audits = await _failing_audits(ctx, {c.asset for c in analysis.changes})
    report = comment_body(analysis, records, details_url=url, override=verdict.override, audits=audits)

    comment_id = proposal.comment_id
    if comment_id is not None or (wants_comment(analysis, records) and not quiet):
        comment_id = await publish(gh, owner, name, proposal.pr_number, report, comment_id=comment_id)

    output = checkrun.build_output(analysis, verdict, changed_paths=changed if annotate else (), details_url=url)
    bodies = checkrun.completion_requests(output, details_url=url)
    for body in bodies:
        await gh.update_check_run(owner, name, check_run_id, **body)

    analysis_json = analysis_to_json(analysis)

    def save(db: Any) -> None:
        if new_analysis:
            sql.finish_analysis(
                db,
                check_run_id=check_run_id,
                proposal_id=proposal.id,
                analysis_json=analysis_json,
                analysis_status=analysis.status,
                conclusion=verdict.conclusion,
                title=output.title,
                summary=output.summary,
                report=report,
                base_sha=analysis.base,
                head_sha=analysis.head,
            )
        else:
            sql.update_check_verdict(
                db,
                check_run_id=check_run_id,
                conclusion=verdict.conclusion,
                title=output.title,
                summary=output.summary,
                report=report,
            )
            sql.update_proposal(db, proposal.id, conclusion=verdict.conclusion)
        if comment_id != proposal.comment_id:
            sql.update_proposal(db, proposal.id, comment_id=comment_id)

    await ctx.store.write(save)
    await notify.proposal_published(ctx, gh, proposal, analysis, verdict, page_url=url, quiet=quiet, read_config=read_config)
    return verdict


async def current_analysis(ctx: Any, proposal: Proposal) -> Analysis | None:
    if not proposal.analysis:
        return None
    return analysis_from_json(proposal.analysis)
