"""A :class:`rules.sources.FileSource` over GitHub's git trees and blobs, for one analysis.

The engine is synchronous and reads files lazily; GitHub is reached from the event loop. So the
analysis runs in a worker thread and each ``read`` it makes hops back onto the loop
(``run_coroutine_threadsafe``) to fetch the blob. Blobs are addressed by git SHA and never change,
so every fetched blob goes into the store's ``blob_cache``: a file is fetched from GitHub once,
ever, whatever pull request or commit it appears in. Files the cache already holds are loaded in
one query before the engine starts, and the newly fetched ones are stored in one transaction
after it.

The head side is the base tree with the pull request's changed files applied (their blob SHAs come
with the file list), which saves a tree request and analyses exactly what merging would produce; a
pull request with 3,000 or more files (where GitHub stops listing) uses the head commit's own tree.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import gidgethub

from app.errors import PermanentError
from app.github import InstallationClient
from app.store import Store
from app.store import proposals as sql
from app.workflow.archive import MAX_ARCHIVE_BYTES, ArchiveRefused, git_blob_sha, unpack
from rules.analyze import likely_reads as engine_reads
from rules.model import Config
from rules.sources import CODEOWNERS_PATHS

log = logging.getLogger(__name__)

MAX_BLOB_BYTES = 5 * 1024 * 1024
"""Files larger than this are not analysed (read as absent); SQL and YAML that big is generated."""
FETCH_TIMEOUT = 120.0
PREFETCH_CONCURRENCY = 8
"""Blob requests in flight at once when prefetching (GitHub asks integrators to stay modest)."""
COMPARE_FILES_LIMIT = 300
"""GitHub's comparison of two commits lists at most this many files; with more, the two trees
are compared instead (every changed path, whatever the count)."""
ARCHIVE_FROM = 10
"""Missing blobs from which one commit's files come as its tarball (one API call) instead of one
call per blob; below it, single blobs cost fewer bytes and about as few calls."""


@dataclass(frozen=True)
class TreeEntry:
    path: str
    sha: str
    size: int | None = None


class BlobFetcher:
    """Blob bytes by SHA: memory, then the store's cache, then GitHub (and into the cache)."""

    def __init__(self, *, store: Store, github: InstallationClient, owner: str, repo: str, loop: asyncio.AbstractEventLoop) -> None:
        self._store = store
        self._github = github
        self._owner = owner
        self._repo = repo
        self._loop = loop
        self._memo: dict[str, bytes] = {}
        self._pending: dict[str, bytes] = {}
        self.fetched_from_github = 0
        self.archives = 0
        """Tarballs downloaded (each one API call)."""
        self.failure: BaseException | None = None
        """The first fetch error seen from the engine's thread: re-raised after the analysis, so a
        GitHub hiccup retries the job instead of becoming a silent "could not parse"."""

    async def preload(self, shas: Iterable[str]) -> None:
        """Load every blob the cache already has, in one query."""
        wanted = sorted({s for s in shas if s not in self._memo})
        if wanted:
            found = await self._store.read(lambda db: sql.get_blobs(db, wanted))
            self._memo.update(found)

    async def fetch_all(self, commit: str, entries: Sequence[TreeEntry]) -> None:
        """Every listed blob of one commit, in as few calls as the cache allows.

        The rule: when :data:`ARCHIVE_FROM` or more of them are missing from the cache, the
        commit's tarball is fetched (one call whatever the repository's size) and the missing
        blobs are taken from it; fewer are fetched one by one (a warm cache and a small pull
        request: a few calls and a few kilobytes, not the whole repository). Whatever the archive
        did not yield (refused, too large, content that does not match its SHA) is fetched one
        by one after it."""
        missing = {e.sha for e in entries if e.sha not in self._memo}
        if len(missing) >= ARCHIVE_FROM:
            await self.fill_from_archive(commit, entries)
        await self.prefetch(e.sha for e in entries)

    async def fill_from_archive(self, commit: str, entries: Iterable[TreeEntry]) -> int:
        """Take the listed blobs the cache lacks from the commit's tarball; how many it gave.

        An archive GitHub refuses (404, 403) or that breaks a bound is logged and skipped (the
        blobs are then fetched one by one); a transient failure is raised, to retry the job."""
        wanted = {
            e.path: e.sha
            for e in entries
            if e.sha not in self._memo and (e.size is None or e.size <= MAX_BLOB_BYTES)
        }
        if not wanted:
            return 0
        with tempfile.TemporaryFile() as sink:
            try:
                await self._github.download_tarball(
                    self._owner, self._repo, commit, sink, max_bytes=MAX_ARCHIVE_BYTES
                )
            except (gidgethub.BadRequest, PermanentError) as exc:
                log.warning("%s/%s@%s: no tarball (%s); fetching files one by one", self._owner, self._repo, commit[:12], exc)
                return 0
            self.archives += 1
            sink.seek(0)
            try:
                unpacked = await asyncio.to_thread(unpack, sink, wanted, max_file_bytes=MAX_BLOB_BYTES)
            except ArchiveRefused as exc:
                log.warning("%s/%s@%s: tarball refused (%s); fetching files one by one", self._owner, self._repo, commit[:12], exc)
                return 0
        for name, why in unpacked.unsafe[:5]:
            log.warning("%s/%s@%s: tarball entry %r skipped: %s", self._owner, self._repo, commit[:12], name, why)
        for sha, data in unpacked.blobs.items():
            self._memo[sha] = data
            self._pending[sha] = data
        return len(unpacked.blobs)

    async def fetch(self, sha: str) -> bytes:
        """The blob; fetched from GitHub unless preloaded or seen before in this analysis."""
        if sha in self._memo:
            return self._memo[sha]
        data = await self._github.get_blob(self._owner, self._repo, sha)
        self.fetched_from_github += 1
        self._memo[sha] = data
        if len(data) <= MAX_BLOB_BYTES:  # a file too large to analyse is not worth keeping either
            self._pending[sha] = data
        return data

    async def flush(self) -> None:
        """Store what was fetched, in one transaction (one commit, not one per file)."""
        if self._pending:
            pending, self._pending = self._pending, {}
            await self._store.write(lambda db: sql.put_blobs(db, pending))

    async def prefetch(self, shas: Iterable[str], *, concurrency: int = PREFETCH_CONCURRENCY) -> None:
        """Fetch blobs the engine is about to read, a few at a time instead of one by one (each
        of the engine's reads is otherwise a full round trip to GitHub)."""
        wanted = sorted({s for s in shas if s not in self._memo})
        if not wanted:
            return
        gate = asyncio.Semaphore(concurrency)

        async def one(sha: str) -> None:
            async with gate:
                await self.fetch(sha)

        await asyncio.gather(*(one(sha) for sha in wanted))

    def hold(self, data: bytes) -> str:
        """Keep bytes that come from elsewhere than this repository (a dbt package's macro file)
        for this analysis, under their blob SHA; never written to the blob cache."""
        sha = git_blob_sha(data)
        self._memo[sha] = data
        return sha

    def held(self, shas: Iterable[str]) -> dict[str, bytes]:
        """The blobs among ``shas`` already here (preloaded or fetched), without asking anyone."""
        return {sha: self._memo[sha] for sha in shas if sha in self._memo}

    def fetch_from_thread(self, sha: str) -> bytes | None:
        """``fetch`` for code running off the loop; None (and :attr:`failure` set) when it failed."""
        if sha in self._memo:
            return self._memo[sha]
        future = asyncio.run_coroutine_threadsafe(self.fetch(sha), self._loop)
        try:
            return future.result(FETCH_TIMEOUT)
        except concurrent.futures.TimeoutError:
            future.cancel()
            self.failure = self.failure or TimeoutError(f"fetching blob {sha} took over {FETCH_TIMEOUT:.0f}s")
            return None
        except BaseException as exc:  # noqa: BLE001 - handed back to the job after the analysis
            self.failure = self.failure or exc
            return None


class BlobReader(Protocol):
    """Where a :class:`GitHubSource` gets blob bytes: a :class:`BlobFetcher` on a thread of the
    server, or an analysis worker asking the server (``app.engine.WorkerContext``)."""

    def fetch_from_thread(self, sha: str) -> bytes | None: ...


class GitHubSource:
    """The repository at one commit, as the engine sees it."""

    def __init__(self, entries: Mapping[str, TreeEntry], fetcher: BlobReader, *, max_bytes: int | None = None) -> None:
        """``max_bytes``: the size limit the server decided (an analysis worker is told it with its
        job); None: :data:`MAX_BLOB_BYTES` as it is now."""
        self._entries = dict(entries)
        self._fetcher = fetcher
        self._max_bytes = max_bytes
        self.skipped: dict[str, str] = {}
        """Files the engine asked for but got as absent, and why (binary, too large): the
        analysis names them, since to the engine they look missing."""

    @property
    def entries(self) -> Mapping[str, TreeEntry]:
        return self._entries

    def paths(self) -> Iterable[str]:
        return sorted(self._entries)

    def blob_id(self, path: str) -> str | None:
        entry = self._entries.get(path)
        return entry.sha if entry else None

    def read(self, path: str) -> str | None:
        entry = self._entries.get(path)
        if entry is None:
            return None
        limit = self._max_bytes if self._max_bytes is not None else MAX_BLOB_BYTES
        if entry.size is not None and entry.size > limit:
            self.skipped[path] = _too_large(entry.size, limit)
            return None
        data = self._fetcher.fetch_from_thread(entry.sha)
        if data is None:
            return None
        if len(data) > limit:  # the pull request's file list gives no sizes
            self.skipped[path] = _too_large(len(data), limit)
            return None
        if b"\0" in data[:8000]:
            self.skipped[path] = "is a binary file, not text: not analysed"
            return None
        return data.decode("utf-8", errors="replace")


def _too_large(size: int, limit: int) -> str:
    return (
        f"is too large to analyse ({size / 1_048_576:.1f} MB, over the "
        f"{limit / 1_048_576:g} MB Tessera reads): not analysed"
    )


def tree_entries(tree: Mapping[str, Any]) -> dict[str, TreeEntry]:
    """Blobs of a recursive tree answer (sub-modules and folders left out)."""
    found: dict[str, TreeEntry] = {}
    for item in tree.get("tree") or []:
        if item.get("type") == "blob":
            found[item["path"]] = TreeEntry(item["path"], item["sha"], item.get("size"))
    return found


def apply_pull_files(base: Mapping[str, TreeEntry], files: Sequence[Mapping[str, Any]]) -> dict[str, TreeEntry]:
    """The base tree with a pull request's file list applied: what merging it would produce."""
    head = dict(base)
    for item in files:
        status = item.get("status")
        name = item["filename"]
        if status == "removed":
            head.pop(name, None)
            continue
        if status == "renamed" and item.get("previous_filename"):
            head.pop(item["previous_filename"], None)
        if item.get("sha"):
            head[name] = TreeEntry(name, item["sha"], None)
    return head


def changed_between(base: Mapping[str, TreeEntry], head: Mapping[str, TreeEntry]) -> set[str]:
    """Every path whose blob differs between two trees: the changed paths of a pull request too
    big for GitHub to list (its file list stops at 3,000, the rest would go unnoticed)."""
    return {p for p in base.keys() | head.keys() if (base.get(p) or _NO_ENTRY).sha != (head.get(p) or _NO_ENTRY).sha}


_NO_ENTRY = TreeEntry("", "")


def changed_paths(files: Sequence[Mapping[str, Any]]) -> set[str]:
    """Every path the pull request touches, old names of renames included."""
    paths: set[str] = set()
    for item in files:
        paths.add(item["filename"])
        if item.get("previous_filename"):
            paths.add(item["previous_filename"])
    return paths


async def load_tree(store: Store, github: InstallationClient, *, repo_id: int, owner: str, repo: str, sha: str) -> dict[str, TreeEntry]:
    """A commit's blobs (path → SHA), from the cache when this commit was seen before."""
    cached = await store.read(lambda db: sql.get_tree(db, repo_id, sha))
    if cached is not None:
        return {e["path"]: TreeEntry(e["path"], e["sha"], e.get("size")) for e in cached}
    tree = await github.get_tree(owner, repo, sha, recursive=True)
    entries = tree_entries(tree)
    if not tree.get("truncated"):
        rows = [{"path": e.path, "sha": e.sha, "size": e.size} for e in entries.values()]
        await store.write(lambda db: sql.put_tree(db, repo_id, sha, rows))
    return entries


def find_codeowners(entries: Mapping[str, TreeEntry]) -> str | None:
    """The CODEOWNERS file GitHub would use (first of its three locations), or None."""
    return next((p for p in CODEOWNERS_PATHS if p in entries), None)


def likely_reads(entries: Mapping[str, TreeEntry], config: Config | None, *, config_path: str = ".tessera.yml") -> list[TreeEntry]:
    """The files the engine will read at this commit (:func:`rules.analyze.likely_reads`; the
    default configuration when ``config`` is None, as before ``.tessera.yml`` is read), minus
    blobs too big to fetch. A miss here costs only time (the engine still reads lazily); a file
    listed but not read costs one extra request, once ever (blobs are cached)."""
    small = [path for path, entry in entries.items() if entry.size is None or entry.size <= MAX_BLOB_BYTES]
    return [entries[path] for path in engine_reads(small, config or Config(), config_path=config_path)]
