"""Running the engine on a pull request, in an analysis worker process (:mod:`app.engine`).

The blobs it reads are fetched here, once, ever; the worker has its own time and memory limits. A
change that goes over them (or crashes its worker) ends as a clear :class:`AnalysisError`, and the
second time the same delivery does it as :class:`Quarantined` (set aside, not retried). When a
breaking change reaches readers whose owner only history can tell, the engine runs twice, with
the readers' latest commits fetched in between (:mod:`app.workflow.history`). The analysis then
gets the registry's registrations and GitHub teams, and the people who answer.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection
from dataclasses import replace
from typing import Any

import gidgethub

from app import engine
from app.errors import QuarantinedError
from app.github import InstallationClient
from app.metrics import REGISTRY
from app.queue import JobContext
from app.store import deliveries as delivery_sql
from app.store import observed as observed_sql
from app.store.registry import all_registrations, github_teams
from app.workflow import github_source, history, jobs, people
from app.workflow.checkout import AnalysisError, Checkout, PullRef, checkout, raise_fetch_failure, unreadable
from rules.model import Analysis
from rules.model import AnalysisError as AnalysisProblem

log = logging.getLogger(__name__)


BLOBS_FETCHED = REGISTRY.counter(
    "tessera_blobs_fetched_total", "Files fetched from GitHub for analyses (each blob once, then cached)."
)


HISTORY_REQUESTS = REGISTRY.counter(
    "tessera_history_requests_total",
    "GitHub API requests made to find who last changed readers nobody declares an owner for.",
)


QUARANTINE_AFTER_KILLS = 2
"""An analysis that ends its worker this many times for one delivery is set aside, not retried."""


WORKER_KILLS = REGISTRY.counter(
    "tessera_analysis_worker_kills_total", "Analyses that ended their worker process, by limit (time, memory, crash)."
)


async def run_engine(ctx: JobContext, gh: InstallationClient, ref: PullRef) -> tuple[Analysis, set[str]]:
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
        coverage=tuple(await ctx.store.read(observed_sql.coverage)),
    )
    result = await _analyse(ctx, ref, source, job)
    notes: tuple[AnalysisProblem, ...] = ()
    if result.needs_history:
        found = await history.look_up(ctx.store, gh, ref, result.needs_history)
        HISTORY_REQUESTS.inc(found.requests)
        notes = found.notes
        result = await _analyse(ctx, ref, source, replace(job, history=found.history))
    analysis = result.analysis
    unread = [AnalysisProblem(path, reason) for path, reason in sorted(result.skipped.items()) if path in source.changed]
    if unread or notes:
        analysis = replace(analysis, errors=(*analysis.errors, *unread, *notes))
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


async def _analyse(ctx: JobContext, ref: PullRef, source: Checkout, job: jobs.ChangeJob) -> jobs.ChangeResult:
    """One engine run in an analysis worker, its blobs sent along or fetched on demand."""
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
    return result


async def _killed(ctx: JobContext, ref: PullRef, killed: engine.WorkerKilled, changed: Collection[str]) -> AnalysisError:
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


class Quarantined(AnalysisError, QuarantinedError):
    """An analysis that ended its worker twice for the same delivery: the check says why and the
    delivery is set aside (status ``quarantined``) rather than failed or retried."""


async def _registrations(ctx: JobContext) -> tuple[Any, ...]:
    """Registrations made through the API and through sync, and readers seen in query logs."""
    today = dt.datetime.fromtimestamp(ctx.clock.now(), dt.UTC).date()
    seen = await ctx.store.read(lambda db: observed_sql.observed_registrations(db, today=today))
    return (*await ctx.store.read(all_registrations), *seen)


async def _with_registry_teams(ctx: JobContext, analysis: Analysis) -> Analysis:
    """Teams the repository's ``.tessera.yml`` does not map (e.g. a team that registered through the
    API) get the GitHub team the registry knows for them, so they are mentioned and can answer."""
    if all(r.github_team for r in analysis.required_acks):
        return analysis
    known = await ctx.store.read(github_teams)
    required = tuple(
        replace(r, github_team=known.get(r.team))
        if not r.github_team and r.kind == "team" and not r.maintainers and known.get(r.team)
        else r
        for r in analysis.required_acks
    )
    return replace(analysis, required_acks=required)
