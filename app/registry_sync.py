"""Keeping the registry in step with the repositories: snapshot → assets, columns, owners, edges.

Three ways in, one way down:

- ``push`` to a repository's default branch → the engine builds the snapshot of that commit over
  GitHub's trees and blobs (:class:`app.workflow.github_source.GitHubSource`: every blob fetched
  once, ever) and the repository's rows are replaced in one transaction.
- ``installation`` created and ``installation_repositories`` added → the same for every repository
  the App can now see, at its default branch.
- A dbt manifest (``POST /api/v1/sync/dbt``, ``tessera sync-dbt``) → the manifest's nodes, without
  reading SQL (a 5,000-model manifest syncs in seconds; its edges are model-level, from
  ``depends_on``, because a manifest carries no column lineage).

The rows themselves, owners and the reads of other repositories' assets are worked out by the
engine's pure :mod:`rules.registry_rows`; this module fetches, runs it in a worker and writes.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson
import sqlite_utils
from gidgethub.routing import Router
from gidgethub.sansio import Event

from app import engine
from app.config import Settings, require_database
from app.discovery.aggregate import Aggregator
from app.discovery.bi import lookml_files
from app.discovery.run import BI_DIALECT, add_bi
from app.engine import WorkerContext, collected_map
from app.errors import PermanentError
from app.github import InstallationClient
from app.queue import JobContext
from app.store import Store
from app.store import observed as observed_sql
from app.store import proposals as log_sql
from app.store import registry as reg_sql
from app.store.deliveries import NewDelivery
from app.workflow.bounded import OverBudget, run_bounded
from app.workflow.checkout import CONFIG_PATH, installation_client, raise_fetch_failure, read_config
from app.workflow.github_source import (
    BlobFetcher,
    GitHubSource,
    TreeEntry,
    find_codeowners,
    likely_reads,
    load_tree,
    tree_entries,
)
from app.workflow.payload import PayloadReader
from rules.build import ParseCache, build_snapshot, relation_resolver
from rules.dbt_manifest import load_manifest, looks_like_manifest
from rules.model import Config, DbtSettings, Snapshot
from rules.registry_rows import (
    AssetRow,
    Rows,
    dedupe,
    external_reads,
    query_registrations,
    snapshot_rows,
    with_registry_teams,
)
from rules.sources import DictSource

log = logging.getLogger(__name__)

router = Router()





@dataclass(frozen=True)
class SyncSummary:
    """What one sync wrote."""

    repo: str
    commit: str | None
    source: str
    assets: int
    edges: int
    exposures: int
    registrations: int = 0
    problems: tuple[str, ...] = ()
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "commit": self.commit,
            "source": self.source,
            "assets": self.assets,
            "edges": self.edges,
            "exposures": self.exposures,
            "registrations": self.registrations,
            "problems": list(self.problems[:100]),
            "seconds": round(self.seconds, 3),
        }


# --- who may write what -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Taken:
    """An asset name another team already owns, in the repository that defines it."""

    fqn: str
    repo: str
    owner_team: str


class OwnershipRefused(Exception):
    """A manifest sync the caller's team may not make; nothing was written.

    ``taken`` lists the other teams' assets the manifest would have taken over (empty when the
    repository itself belongs to other teams).
    """

    def __init__(self, message: str, taken: tuple[Taken, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.taken = taken


def check_ownership(db: sqlite_utils.Database, *, repo: str, team: str, assets: Iterable[AssetRow]) -> None:
    """Refuse a team's manifest that reaches beyond what the team owns (runs inside the write, so
    nothing can change between the check and the rows it guards).

    - A repository belongs to the teams owning at least one of its assets in the registry and the
      teams its ``.tessera.yml`` names (read when the App syncs it from GitHub); names compare
      case-insensitively. A repository no team owns yet may be claimed by the first team that
      syncs it.
    - An asset name another team owns is never taken over: not by declaring it in another
      repository, nor by giving it a new owner in the shared one. A dbt ``source`` only declares a
      table someone else builds, so it takes nothing over. A shared repository's manifest may
      leave another team's model out: the repository says it is gone, and it goes.
    """
    owners = reg_sql.repo_owner_teams(db, repo)
    if owners and team not in owners:
        listing = ", ".join(sorted(owners))
        raise OwnershipRefused(
            f"{repo} is owned by {listing} in the registry: only those teams (or an admin) may replace it with a manifest"
        )
    rows = [a for a in assets if a.kind != "source"]
    new_owner = {a.fqn: a.owner_team for a in rows}
    taken: list[Taken] = []
    for fqn, claims in sorted(reg_sql.asset_claims(db, new_owner).items()):
        for claim in claims:
            if claim.owner_team is None or claim.owner_team == team or claim.kind == "source":
                continue
            if claim.repo.lower() == repo.lower() and new_owner[fqn] == claim.owner_team:
                continue  # the other team's asset in a shared repository, left theirs
            taken.append(Taken(fqn, claim.repo, claim.owner_team))
    if taken:
        shown = "; ".join(f"{t.fqn} is owned by team {t.owner_team} ({t.repo})" for t in taken[:5])
        more = f" and {len(taken) - 5} more" if len(taken) > 5 else ""
        raise OwnershipRefused(
            f"this manifest would take over assets another team owns: {shown}{more}. Rename the models,"
            " or ask that team (or an admin) to move them",
            tuple(taken),
        )


# --- writing ----------------------------------------------------------------------------------------


async def registry_teams(store: Store) -> dict[str, tuple[str, str | None]]:
    teams = await store.read(lambda db: reg_sql.list_teams(db, limit=100_000))
    return {t.slug: (t.name, t.github_team) for t in teams}


async def write_rows(
    store: Store, *, repo: str, commit: str | None, source: str, rows: Rows, actor: str | None, started: float,
    team: str | None = None, declared_teams: tuple[str, ...] | None = None,
) -> SyncSummary:
    """Replace the repository's rows; with ``team``, only what :func:`check_ownership` lets that team
    write. ``declared_teams``: the teams the repository's ``.tessera.yml`` names (a sync from GitHub)."""

    def write(db: sqlite_utils.Database) -> None:
        if team is not None:
            check_ownership(db, repo=repo, team=team, assets=rows.assets)
        reg_sql.replace_repo(
            db, repo=repo, commit_sha=commit, source=source, assets=rows.assets, exposures=rows.exposures,
            edges=rows.edges, problems=rows.problems, teams=declared_teams,
        )
        if source != "dbt":
            reg_sql.replace_sql_registrations(db, repo, rows.registrations)
        log_sql.audit(db, actor=actor, action="registry_synced", repo=repo,
                      detail={"commit": commit, "source": source, "assets": len(rows.assets), "edges": len(rows.edges)})

    await store.write(write)
    summary = SyncSummary(
        repo=repo, commit=commit, source=source, assets=len(rows.assets), edges=len(rows.edges),
        exposures=len(rows.exposures), registrations=len(rows.registrations), problems=tuple(rows.problems),
        seconds=time.perf_counter() - started,
    )
    log.info("registry: %s@%s synced from %s: %d assets, %d edges in %.2fs", repo, (commit or "")[:12], source,
             summary.assets, summary.edges, summary.seconds)
    return summary


async def sync_manifest(
    store: Store, *, repo: str, commit: str | None, manifest: Mapping[str, Any], project_dir: str | None = None,
    actor: str | None = None, columns: bool = False, team: str | None = None,
) -> SyncSummary:
    """Replace ``repo``'s registry rows with what a dbt manifest says (read off the event loop).

    ``team`` is the team a non-admin key speaks for: the sync then raises :class:`OwnershipRefused`
    instead of writing anything the team does not own (None: an admin or the operator's CLI).

    ``columns`` runs the engine's inference over the models' compiled SQL for column-level edges:
    a second or so per hundred models, so CI jobs of big projects use it through ``tessera sync-dbt
    --columns``; without it, edges are model-level (``depends_on``), and every column of a model
    counts as read by its children.
    """
    started = time.perf_counter()
    teams = await registry_teams(store)

    def work() -> Rows:
        config = with_registry_teams(Config(), teams)
        if columns:
            snapshot = _inferred_manifest(manifest, project_dir, config)
        else:
            snapshot = load_manifest(manifest, project_dir=project_dir)
        return snapshot_rows(snapshot, config)


    try:
        # A manifest's raw code is rendered when it has no compiled code: a template that loops for
        # hours must not keep a thread (and the caller) forever.
        rows = await run_bounded(work, MANIFEST_SYNC_SECONDS)
    except OverBudget:
        raise PermanentError(
            f"the manifest for {repo} took longer than {MANIFEST_SYNC_SECONDS:g}s to read and was stopped (a model "
            "whose Jinja loops without end?); the registry keeps what it had"
        ) from None
    return await write_rows(store, repo=repo, commit=commit, source="dbt", rows=rows, actor=actor, started=started,
                            team=team)


MANIFEST_SYNC_SECONDS = 600.0
"""Reading a manifest: seconds for thousands of models (bench: 5,000 in ~5 s; with column lineage ~40 s)."""


def _inferred_manifest(manifest: Mapping[str, Any], project_dir: str | None, config: Config) -> Snapshot:
    """The manifest as the engine builds it from a repository: models' columns and column edges
    inferred from their compiled SQL, parents first (its own parse cache: no lock shared with PRs)."""


    folder = (project_dir or "").strip("/")
    path = f"{folder}/target/manifest.json" if folder else "target/manifest.json"
    source = DictSource({path: orjson.dumps(manifest).decode()})
    return build_snapshot(source, replace(config, dbt=DbtSettings(manifest=path)), cache=ParseCache())


async def sync_repository(
    ctx: JobContext,
    gh: InstallationClient,
    *,
    repo_id: int,
    repo: str,
    commit: str | None,
    entries: Mapping[str, Any],
    source: str,
    ref: str | None = None,
) -> SyncSummary:
    """Build the repository's snapshot at one commit through the engine and write it (``ref``
    names the commit for a tarball when ``commit`` is not known, e.g. the default branch)."""
    started = time.perf_counter()
    owner, _, name = repo.partition("/")
    fetcher = BlobFetcher(store=ctx.store, github=gh, owner=owner, repo=name, loop=asyncio.get_running_loop())
    await fetcher.preload(e.sha for e in entries.values())
    if commit or ref:  # a cold repository: its files in one tarball rather than a call per file
        await fetcher.fetch_all(commit or ref or "", likely_reads(entries, None))
    config_text = None
    if CONFIG_PATH in entries:
        config_text = (await fetcher.fetch(entries[CONFIG_PATH].sha)).decode("utf-8", errors="replace")
    codeowners_path = find_codeowners(entries)
    codeowners = None
    if codeowners_path:
        codeowners = (await fetcher.fetch(entries[codeowners_path].sha)).decode("utf-8", errors="replace")
    teams = await registry_teams(ctx.store)
    own_config = await read_config(config_text, seconds=ctx.settings.job_timeout / 4)
    config = with_registry_teams(own_config, teams)

    lookml_paths = tuple(sorted(p for p in entries if p.endswith(".lkml")))
    _, known_relations = await ctx.store.read(observed_sql.known_schemas) if lookml_paths else ({}, {})
    budget = engine.analysis_budget(ctx.settings)
    try:
        # In an analysis worker like a PR analysis: a model whose Jinja loops for hours or
        # expands to gigabytes ends its worker, never the server.
        rows, found = await engine.pool_for(ctx.settings).run(
            repository_rows,
            dict(entries),
            config,
            codeowners,
            repo,
            lookml_paths,
            dict(known_relations),
            seconds=budget,
            blobs=fetcher.held(e.sha for e in entries.values()),
            reader=fetcher.fetch_from_thread,
            cache_dir=engine.cache_dir(ctx.settings),
        )
    except (engine.WorkerKilled, engine.EngineFailed) as exc:
        raise_fetch_failure(fetcher)
        raise PermanentError(
            f"registry sync of {repo} at {commit or 'its default branch'} could not be done: {exc} (a template "
            "that loops without end or expands to something huge?); the registry keeps what it had"
        ) from None
    finally:
        await fetcher.flush()
    raise_fetch_failure(fetcher)
    if found:
        await ctx.store.write(lambda db: observed_sql.record(db, found, source_kind="lookml"))
    return await write_rows(ctx.store, repo=repo, commit=commit, source=source, rows=rows, actor=None, started=started,
                            declared_teams=tuple(sorted(own_config.teams)))


def repository_rows(
    worker: WorkerContext,
    entries: Mapping[str, TreeEntry],
    config: Config,
    codeowners: str | None,
    repo: str,
    lookml_paths: tuple[str, ...] = (),
    known_relations: Mapping[str, str] | None = None,
) -> tuple[Rows, list[Any]]:
    """(In an analysis worker.) A repository's snapshot at one commit, as registry rows, and the
    reads of the LookML explores it holds (a LookML project installed with the App: consumers)."""
    files = GitHubSource(entries, worker)
    snapshot = build_snapshot(files, config, cache=worker.cache, map_jobs=collected_map)
    looker = Aggregator(dialect=BI_DIALECT)
    if lookml_paths:
        looker.relations = {**(known_relations or {}), **relation_resolver(snapshot.assets.values()).keys}
        texts = ((p, files.read(p) or "") for p in lookml_paths)
        add_bi(looker, lookml_files(texts, project=repo, dialect=BI_DIALECT), dt.datetime.now(dt.UTC))
    rows = snapshot_rows(snapshot, config, codeowners=codeowners)
    from_sql, problems = external_reads(snapshot, config, repo, codeowners=codeowners)
    from_queries, more = query_registrations(files, snapshot, config, repo, codeowners=codeowners)
    rows.registrations = dedupe([*from_sql, *from_queries])
    rows.problems.extend([*problems, *more])
    return rows, (looker.reads() if len(looker) else [])


# --- the webhook handlers ----------------------------------------------------------------------------


@router.register("push")
async def on_push(event: Event, ctx: JobContext) -> None:
    """A push to the default branch re-syncs the repository at the pushed commit (once per commit)."""
    data = event.data
    reader = PayloadReader(data, event.event)
    repository = reader.mapping("repository")
    default = repository.get("default_branch") or repository.get("master_branch")
    if data.get("deleted") or data.get("ref") != f"refs/heads/{default}":
        return
    after = str(data.get("after") or "")
    if not after or set(after) == {"0"}:
        return
    repo = reader.text("repository.full_name")
    repo_id = reader.integer("repository.id")
    installation_id = reader.installation_id()
    last = await ctx.store.read(lambda db: reg_sql.last_sync(db, repo))
    if last is not None and last["commit"] == after and last["source"] == "push":
        return  # a re-delivered push: this commit is already in the registry
    gh = await installation_client(ctx, installation_id)
    owner, _, name = repo.partition("/")
    entries = await load_tree(ctx.store, gh, repo_id=repo_id, owner=owner, repo=name, sha=after)
    await sync_repository(ctx, gh, repo_id=repo_id, repo=repo, commit=after, entries=entries, source="push")


@router.register("installation", action="created")
@router.register("installation", action="new_permissions_accepted")
async def on_installation(event: Event, ctx: JobContext) -> None:
    """A new installation: sync every repository it covers, at its default branch."""
    await _sync_listed(ctx, event, "repositories")


@router.register("installation_repositories", action="added")
async def on_repositories_added(event: Event, ctx: JobContext) -> None:
    await _sync_listed(ctx, event, "repositories_added")


@router.register("installation", action="deleted")
async def on_installation_deleted(event: Event, ctx: JobContext) -> None:
    """The App was uninstalled: what it synced from those repositories is no longer true."""
    await _forget(ctx, [repo for _, repo in _listed_repositories(event, "repositories")])


@router.register("installation_repositories", action="removed")
async def on_repositories_removed(event: Event, ctx: JobContext) -> None:
    await _forget(ctx, [repo for _, repo in _listed_repositories(event, "repositories_removed")])


def _listed_repositories(event: Event, path: str) -> list[tuple[int, str]]:
    """(id, full name) of the repositories an installation event lists; a malformed entry fails
    the job at once, naming it (a KeyError would be retried as if it were a bug)."""
    reader = PayloadReader(event.data, event.event)
    reader.installation_id()
    listed: list[tuple[int, str]] = []
    for index, entry in enumerate(reader.items(path)):
        one = PayloadReader({f"{path}[{index}]": entry}, event.event)
        key = f"{path}[{index}]"
        listed.append((one.integer(f"{key}.id"), one.text(f"{key}.full_name")))
    return listed


async def _forget(ctx: JobContext, repos: list[str]) -> None:
    def write(db: sqlite_utils.Database) -> None:
        for repo in repos:
            if reg_sql.forget_repo(db, repo):
                log_sql.audit(db, actor=None, action="registry_forgotten", repo=repo)

    await ctx.store.write(write)


SYNC_REPO_EVENT = "tessera_sync_repo"
"""One queued job per repository of an installation: each has its own time-out and retries, and is
ordered with that repository's pushes (same ordering key)."""


async def _sync_listed(ctx: JobContext, event: Event, path: str) -> None:
    """Queue one sync job per repository (a re-run of this job queues nothing twice)."""


    installation_id = PayloadReader(event.data, event.event).installation_id()
    for repo_id, full_name in _listed_repositories(event, path):
        payload = {
            "installation": {"id": installation_id},
            "repository": {"id": repo_id, "full_name": full_name},
        }
        await ctx.store.insert_delivery(
            NewDelivery(
                delivery_id=f"sync-{ctx.delivery_id}-{repo_id}",
                event=SYNC_REPO_EVENT,
                action=None,
                ordering_key=f"repo:{repo_id}",
                installation_id=installation_id,
                repository=full_name,
                payload=json.dumps(payload),
                received_at=ctx.clock.now(),
            )
        )


@router.register(SYNC_REPO_EVENT)
async def on_sync_repo(event: Event, ctx: JobContext) -> None:
    """Sync one repository at the tip of its default branch."""
    installation_id = int(event.data["installation"]["id"])
    listed = event.data["repository"]
    repo = str(listed["full_name"])
    gh = await installation_client(ctx, installation_id)
    owner, _, name = repo.partition("/")
    details = await gh.get_repo(owner, name)
    branch = str(details.get("default_branch") or "main")
    tree = await gh.get_tree(owner, name, branch, recursive=True)
    if tree.get("truncated"):
        log.warning("registry: %s has more files than GitHub lists in one tree; syncing what was listed", repo)
    await sync_repository(ctx, gh, repo_id=int(listed["id"]), repo=repo, commit=None, entries=tree_entries(tree),
                          source="installation", ref=branch)


# --- tessera sync-dbt ---------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", help="path to dbt's target/manifest.json")
    parser.add_argument("--repo", default=None,
                        help="owner/name of the repository the manifest describes (default: dbt/<project name>)")
    parser.add_argument("--commit", default=None, help="the commit it was built from")
    parser.add_argument("--project-dir", default=None, help="the dbt project's folder in the repository")
    parser.add_argument("--columns", action="store_true",
                        help="infer column-level lineage from the compiled SQL (slower: ~1 s per 100 models)")


def default_repo(manifest: object) -> str | None:
    """``dbt/<project name>``: where a manifest's rows go when no repository is named."""
    project = ((manifest.get("metadata") or {}) if isinstance(manifest, dict) else {}).get("project_name")
    return f"dbt/{str(project).lower()}" if project else None


def run(args: argparse.Namespace, settings: Settings) -> int:
    """``tessera sync-dbt``: the same sync as ``POST /api/v1/sync/dbt``, straight into the store."""


    try:
        with open(args.manifest, "rb") as handle:
            manifest = orjson.loads(handle.read())
    except OSError as exc:
        print(f"tessera: cannot read {args.manifest}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except orjson.JSONDecodeError as exc:
        print(f"tessera: {args.manifest} is not valid JSON: {exc}", file=sys.stderr)
        return 2
    if not looks_like_manifest(manifest):
        print(f"tessera: {args.manifest} is not a dbt manifest (expected dbt's target/manifest.json: a JSON"
              " object with \"nodes\" and \"metadata\")", file=sys.stderr)
        return 2
    require_database(settings)
    repo = args.repo or default_repo(manifest)
    if repo is None or "/" not in repo:
        print("tessera: --repo is owner/name (the manifest names no project to default to)", file=sys.stderr)
        return 2

    async def go() -> SyncSummary:
        async with Store(settings.db_path) as store:
            return await sync_manifest(store, repo=repo, commit=args.commit, manifest=manifest,
                                       project_dir=args.project_dir, actor="cli", columns=args.columns)


    try:
        summary = asyncio.run(go())
    except PermanentError as exc:
        print(f"tessera: {exc}", file=sys.stderr)
        return 2
    print(
        f"synced {summary.repo}{'@' + summary.commit[:12] if summary.commit else ''}: {summary.assets} assets,"
        f" {summary.edges} edges, {summary.exposures} exposures in {summary.seconds:.2f}s"
        + (f" ({len(summary.problems)} problems)" if summary.problems else "")
    )
    for problem in summary.problems[:20]:
        print(f"  {problem}")
    return 0

