"""What the App runs in its analysis workers (``app.engine``): plain data in, plain data out.

Each job is a module-level function taking the worker's :class:`~app.engine.WorkerContext` first;
files are read through a :class:`~app.workflow.github_source.GitHubSource` whose blobs come with
the job or are asked from the server, which fetches them (store, then GitHub).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass

from app.engine import WorkerContext, collected_map, raise_if_out_of_memory
from app.workflow import github_source
from app.workflow.github_source import GitHubSource, TreeEntry
from app.workflow.history import KnownHistory, PendingHistory
from rules.analyze import analyze
from rules.build import build_snapshot
from rules.model import Analysis, Config, Coverage, Registration, Snapshot


@dataclass(frozen=True)
class ChangeJob:
    """A pull request's change as a worker analyses it (plain data: it goes through a pipe)."""

    base: Mapping[str, TreeEntry]
    head: Mapping[str, TreeEntry]
    base_rev: str
    head_rev: str
    config: Config
    changed: frozenset[str]
    registrations: tuple[Registration, ...]
    today: datetime.date
    max_blob_bytes: int = github_source.MAX_BLOB_BYTES
    """Files larger than this are named as too large, not read (the server's limit, sent along)."""
    history: KnownHistory | None = None
    """Who last changed the readers that need it, once the App has asked GitHub (second pass)."""
    coverage: tuple[Coverage, ...] = ()
    """The query logs discovery reads (``rules.observed.fresh_coverage`` keeps the fresh ones)."""


@dataclass(frozen=True)
class ChangeResult:
    """The analysis, and the files it had to read as absent and why (binary, too large)."""

    analysis: Analysis
    skipped: Mapping[str, str]
    needs_history: tuple[str, ...] = ()
    """Readers whose last author would be asked (a breaking change reaches them and no one
    declares their owner): the App looks them up and runs the job again with ``history``; until
    then ``analysis`` names stand-ins and is not to be shown."""


def analyse_change(worker: WorkerContext, job: ChangeJob) -> ChangeResult:
    """(In a worker.) :func:`rules.analyze.analyze` over both sides of a pull request; without
    ``job.history``, a first pass that says which readers' history is needed
    (:mod:`app.workflow.history`)."""
    base = GitHubSource(job.base, worker, max_bytes=job.max_blob_bytes)
    head = GitHubSource(job.head, worker, max_bytes=job.max_blob_bytes)

    def run(history: KnownHistory | PendingHistory | None) -> Analysis:
        return analyze(
            base,
            head,
            base_rev=job.base_rev,
            head_rev=job.head_rev,
            config=job.config,
            changed_paths=job.changed,
            registrations=job.registrations,
            cache=worker.cache,
            today=job.today,
            map_jobs=collected_map,
            history=history,
            coverage=job.coverage,
        )

    pending = PendingHistory() if job.history is None else None
    analysis = run(job.history if job.history is not None else pending)
    raise_if_out_of_memory(e.message for e in analysis.errors)
    if pending is not None and pending.named_in(analysis):
        needed = pending.needed(analysis)
        if needed:
            return ChangeResult(analysis, {**base.skipped, **head.skipped}, needs_history=needed)
        analysis = run(None)  # the stand-ins only named readers of review changes: nobody is asked
    return ChangeResult(analysis, {**base.skipped, **head.skipped})


def build_side(worker: WorkerContext, entries: Mapping[str, TreeEntry], config: Config, scope: frozenset[str]) -> Snapshot:
    """(In a worker.) One commit's snapshot, scoped to the changed paths (contract publishing)."""
    return build_snapshot(
        GitHubSource(entries, worker), config, scope=set(scope), cache=worker.cache, map_jobs=collected_map
    )
