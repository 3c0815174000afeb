"""A pull request as the engine reads it: which pull request, both sides' files, and its rules.

The base commit's tree (cached by SHA) with the pull request's files applied gives the head;
``.tessera.yml`` is read from the base only — never from the head, so a pull request cannot weaken
the rules it is judged by — off the event loop and within a budget (a YAML bomb is named, and the
defaults apply). Below the pull-request workflow, the slash commands, publishing a merged contract
and registry sync, which all read a repository this way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import aiohttp
import gidgethub
from gidgethub.sansio import Event

from app.config import Settings
from app.errors import PermanentError, TransientError
from app.github import InstallationClient
from app.queue import JobContext
from app.workflow.bounded import OverBudget, run_bounded
from app.workflow.github_source import (
    COMPARE_FILES_LIMIT,
    BlobFetcher,
    GitHubSource,
    TreeEntry,
    apply_pull_files,
    changed_between,
    changed_paths,
    likely_reads,
    load_tree,
)
from app.workflow.packages import (
    PackageFetcher,
    TarballDownload,
    install_packages,
    shared_cache,
)
from app.workflow.payload import PayloadReader
from rules.analyze import CONFIG_PATH
from rules.config import parse_config
from rules.dbt_deps import dependency_paths
from rules.dialect import project_folders
from rules.model import Config
from rules.yamlsafe import yaml_expanded_size

log = logging.getLogger(__name__)




MAX_CONFIG_CHARS = 512 * 1024


MAX_CONFIG_VALUES = 100_000
"""A real ``.tessera.yml`` holds hundreds of values; a million is an attack."""


CONFIG_SECONDS = 10.0
"""Reading ``.tessera.yml`` takes milliseconds; more than this is a YAML bomb."""


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


async def installation_client(ctx: JobContext, installation_id: int) -> InstallationClient:
    """The installation's API client; without a configured App the job fails with a clear reason
    (and can be replayed with ``tessera deliveries --replay`` once the App is set up)."""
    if ctx.github is None:
        raise PermanentError(
            "the GitHub App is not configured (TESSERA_GITHUB_APP_ID and its private key): cannot act on GitHub"
        )
    return await ctx.github.for_installation(installation_id)


@dataclass
class Checkout:
    """Both sides of a pull request as the engine reads them, and the rules they are judged by."""

    base: GitHubSource
    head: GitHubSource
    changed: set[str]
    config: Config
    fetcher: BlobFetcher
    notes: tuple[str, ...] = ()
    """What the check should say about how the change was read (dbt packages)."""


async def checkout(ctx: JobContext, gh: InstallationClient, ref: PullRef) -> Checkout:
    """The base tree (cached by SHA), the PR's files applied to it, ``.tessera.yml`` from the base."""

    loop = asyncio.get_running_loop()
    base_entries = await load_tree(ctx.store, gh, repo_id=ref.repo_id, owner=ref.owner, repo=ref.name, sha=ref.base_sha)
    # The files between this job's own base and head, not the pull request's file list: that
    # list is of the pull request's newest head, and a job about an older head (a push landed
    # while it waited) would apply the newest files to its own, older, commit.
    comparison = await gh.compare(ref.owner, ref.name, ref.base_sha, ref.head_sha)
    listed = comparison.get("files")
    # GitHub lists at most 300 files, and may leave the list out of a comparison too large to
    # diff: then the change is read from the two trees, never as empty. An empty list is an empty
    # change (commits that change nothing, or a change and its revert).
    unlisted = not isinstance(listed, list) and ref.base_sha != ref.head_sha and comparison.get("status") != "identical"
    files = listed if isinstance(listed, list) else []
    if len(files) >= COMPARE_FILES_LIMIT or unlisted:
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


async def read_config(text: str | None, *, seconds: float) -> Config:
    """``.tessera.yml`` parsed off the event loop, within a time budget: a YAML bomb (aliases that
    expand to billions of values) must neither block the server nor hold a worker; it is named in
    the check and the defaults apply, as for any other unusable configuration."""
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


class AnalysisError(PermanentError):
    """The engine could not finish on this pull request's content; the check says why."""


async def with_packages(
    settings: Settings,
    download: TarballDownload,
    blobs: BlobFetcher,
    base: dict[str, TreeEntry],
    head: dict[str, TreeEntry],
    config: Config,
    changed: Iterable[str],
) -> tuple[str, ...]:
    """Add the base's packages to both sides of a pull request (as tree entries whose blobs
    ``blobs`` holds); the notes for the check. Only projects that name packages cost anything."""
    projects = project_folders(base.keys(), config)
    if not any(path in base for project in projects for path in dependency_paths(project)):
        return ()

    async def read(path: str) -> str | None:
        entry = base.get(path)
        return None if entry is None else (await blobs.fetch(entry.sha)).decode("utf-8", errors="replace")

    cache = shared_cache(f"{settings.db_path}.packages")
    async with aiohttp.ClientSession(headers={"user-agent": "tessera"}) as session:
        fetcher = None if settings.packages_offline else PackageFetcher(
            hub_url=settings.dbt_hub_url, session=session, download=download, cache=cache
        )
        installed = await install_packages(projects, base.keys(), read, fetcher, changed=changed)
    for path, data in installed.files.items():
        entry = TreeEntry(path, blobs.hold(data), len(data))
        base.setdefault(path, entry)
        head.setdefault(path, entry)
    return installed.notes
