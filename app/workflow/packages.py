"""dbt packages at their locked version, fetched the way ``dbt deps`` gets them.

``dbt_packages/`` is never committed, yet real models call package macros everywhere. So before
an analysis the App reads each dbt project's ``packages.yml`` / ``dependencies.yml`` and
``package-lock.yml`` **from the base branch** (a pull request never decides where code comes
from: one that changes them is analysed with the base's packages, and the check says so), finds
each package's GitHub repository at its version, downloads it as one tarball and hands its macro
files to the engine where a committed ``dbt_packages/<name>/macros/`` would hold them.

Bounds: Tessera only ever asks two places. The hub's index (``<hub>/api/v1/<namespace>/<name>.json``,
names checked against a strict pattern) says which GitHub tarball a version is; any other tarball
host is refused. The code itself comes through GitHub's API (``/repos/{owner}/{repo}/tarball/{ref}``,
:meth:`app.github.InstallationClient.download_tarball`, or codeload directly for ``tessera check``):
at most :data:`MAX_PACKAGE_ARCHIVE_BYTES` downloaded, read by the same hostile-archive reader as
repositories (no links, no absolute or climbing paths, bounded members and bytes), keeping only
``dbt_project.yml`` and SQL. git packages on other hosts and ``tarball:`` packages elsewhere are
not fetched. Everything is cached by (package, version): in memory and on disk, so the second
pull request costs no request at all. Whatever fails (offline, 404, over size, time-out) leaves
that package to the engine's built-in renderings of common macros, with a note in the check;
the analysis itself never fails because of a package.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

import cachetools

from app.config import Settings
from app.workflow.archive import ArchiveRefused, unpack_matching
from rules.dbt_deps import (
    PackageSpec,
    dependency_paths,
    github_archive,
    hub_name,
    installed_paths,
    is_pinned,
    package_macros,
    pick_version,
    read_dependencies,
    wanted_archive_files,
)

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

MAX_PACKAGE_ARCHIVE_BYTES = 20 * 1024 * 1024
"""Compressed size of one package's tarball Tessera downloads at most (dbt_utils is ~0.2 MB)."""
MAX_PACKAGE_FILE_BYTES = 1024 * 1024
MAX_PACKAGE_KEPT_BYTES = 16 * 1024 * 1024
"""SQL and project files kept from one package at most."""
MAX_PACKAGE_UNPACKED_BYTES = 256 * 1024 * 1024
"""Bytes one package's archive may unpack to in all (docs and tests included): a gzip bomb stops here."""
HUB_TIMEOUT = 10.0
PACKAGES_SECONDS = 60.0
"""Time all of a pull request's package fetches may take together; past it, built-in renderings."""
MAX_HUB_ANSWER_BYTES = 4 * 1024 * 1024

TarballDownload = Callable[[str, str, str, BinaryIO, int], Awaitable[int]]
"""``(owner, repo, ref, sink, max_bytes)``: a GitHub repository's tarball at ``ref`` into ``sink``."""
ReadFile = Callable[[str], Awaitable[str | None]]
"""A file of the base commit by path (None when absent)."""

FALLBACK = "its macros are rendered with Tessera's built-in versions of the common dbt_utils and dbt macros"


class PackageUnavailable(Exception):
    """A package could not be fetched; the message says why, for the check."""


@dataclass(frozen=True)
class FetchedPackage:
    """A package's dbt project name and macro files (path under ``macros/`` → text)."""

    name: str
    version: str
    macros: Mapping[str, str]


@dataclass(frozen=True)
class Installed:
    """What the packages add to both sides of an analysis: files by repository path, and notes."""

    files: Mapping[str, bytes] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


class PackageCache:
    """Fetched packages by (kind, source, version): in memory, then one JSON file each on disk.

    Only what cannot change under its name is cached (a hub version, a git commit): a branch name
    is fetched again each time."""

    def __init__(self, folder: str | None, *, size: int = 64) -> None:
        self._folder = folder
        self._memory: cachetools.LRUCache[tuple[str, str, str], FetchedPackage] = cachetools.LRUCache(size)

    def _file(self, key: tuple[str, str, str]) -> str | None:
        if self._folder is None:
            return None
        digest = hashlib.sha256("\0".join(key).encode()).hexdigest()
        return os.path.join(self._folder, f"{digest}.json")

    def get(self, key: tuple[str, str, str]) -> FetchedPackage | None:
        found = self._memory.get(key)
        if found is not None:
            return found
        path = self._file(key)
        if path is None or not os.path.exists(path):
            return None
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
            found = FetchedPackage(str(data["name"]), str(data["version"]), dict(data["macros"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("package cache entry %s unreadable (%s); fetching again", path, exc)
            return None
        self._memory[key] = found
        return found

    def put(self, key: tuple[str, str, str], package: FetchedPackage) -> None:
        self._memory[key] = package
        path = self._file(key)
        if path is None:
            return
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=os.path.dirname(path), delete=False) as handle:
                json.dump({"name": package.name, "version": package.version, "macros": dict(package.macros)}, handle)
            os.replace(handle.name, path)
        except OSError as exc:  # a full disk costs a download next time, nothing more
            log.warning("package cache: could not write %s (%s)", path, exc)


_caches: dict[str | None, PackageCache] = {}


def shared_cache(folder: str | None) -> PackageCache:
    """One cache per folder for the process (every pull request of every installation)."""
    return _caches.get(folder) or _caches.setdefault(folder, PackageCache(folder))


class PackageFetcher:
    """Resolves a package to its GitHub tarball and fetches its macros, through the cache."""

    def __init__(
        self, *, hub_url: str, session: aiohttp.ClientSession, download: TarballDownload, cache: PackageCache
    ) -> None:
        self._hub_url = hub_url.rstrip("/")
        self._session = session
        self._download = download
        self._cache = cache

    async def fetch(self, spec: PackageSpec) -> FetchedPackage:
        """The package's macros at its version; :class:`PackageUnavailable` says why not."""
        if spec.kind == "hub":
            known = self._cache.get(("hub", spec.source.lower(), spec.version)) if spec.version else None
            if known is not None:  # a locked version seen before: neither the hub nor GitHub is asked
                return known
            version, url = await self._hub_version(spec)
            key = ("hub", spec.source.lower(), version)
            archive = github_archive(url, None)
            if archive is None:
                raise PackageUnavailable(f"the hub points at {url!r}, not a GitHub tarball: not fetched")
            subdirectory = ""
        elif spec.kind in ("git", "tarball"):
            archive = github_archive(spec.source, spec.version)
            if archive is None:
                raise PackageUnavailable("not a GitHub repository: Tessera fetches packages from GitHub only")
            version = archive.ref
            key = (spec.kind, spec.source.lower(), f"{version}/{spec.subdirectory}")
            subdirectory = spec.subdirectory
        else:
            raise PackageUnavailable(f"a {spec.kind} package is not fetched")
        pinned = spec.kind == "hub" or is_pinned(spec)
        cached = self._cache.get(key) if pinned else None
        if cached is not None:
            return cached
        files = await self._archive_files(archive.owner, archive.repo, archive.ref, subdirectory)
        name, macros = package_macros(files, subdirectory)
        if name is None:
            raise PackageUnavailable("the download holds no dbt_project.yml with a name")
        fetched = FetchedPackage(name, version, {p: d.decode("utf-8", errors="replace") for p, d in macros.items()})
        if pinned:
            self._cache.put(key, fetched)
        return fetched

    async def _hub_version(self, spec: PackageSpec) -> tuple[str, str]:
        """(version, tarball URL) of a hub package, from the hub's index."""
        import aiohttp  # lazy: only a fetch loads the HTTP client (`tessera check` offline does not)
        import yarl  # lazy: only a fetch loads the HTTP client (`tessera check` offline does not)

        names = hub_name(spec.source)
        if names is None:
            raise PackageUnavailable("not a hub package name (namespace/name)")
        url = yarl.URL(f"{self._hub_url}/api/v1/{names[0]}/{names[1]}.json", encoded=False)
        try:
            async with self._session.get(
                url, timeout=aiohttp.ClientTimeout(total=HUB_TIMEOUT), allow_redirects=False
            ) as response:
                if response.status == 404:
                    raise PackageUnavailable("the dbt hub does not know it (404)")
                if response.status != 200:
                    raise PackageUnavailable(f"the dbt hub answered {response.status}")
                body = await response.content.read(MAX_HUB_ANSWER_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PackageUnavailable(f"the dbt hub could not be reached ({type(exc).__name__})") from exc
        if len(body) > MAX_HUB_ANSWER_BYTES:
            raise PackageUnavailable("the dbt hub's answer is too large")
        try:
            index = json.loads(body)
            versions = index["versions"]
            assert isinstance(versions, dict)
        except (ValueError, KeyError, TypeError, AssertionError) as exc:
            raise PackageUnavailable("the dbt hub's answer is not its package index") from exc
        version = spec.version if spec.version is not None else pick_version(versions, spec.ranges)
        entry = versions.get(version) if version is not None else None
        if version is None or not isinstance(entry, dict):
            wanted = spec.version or ", ".join(spec.ranges) or "any version"
            raise PackageUnavailable(f"the dbt hub has no version matching {wanted}")
        tarball = (entry.get("downloads") or {}).get("tarball") if isinstance(entry.get("downloads"), dict) else None
        if not isinstance(tarball, str):
            raise PackageUnavailable(f"the dbt hub lists no tarball for {version}")
        return version, tarball

    async def _archive_files(self, owner: str, repo: str, ref: str, subdirectory: str) -> dict[str, bytes]:
        with tempfile.TemporaryFile() as sink:
            try:
                await self._download(owner, repo, ref, sink, MAX_PACKAGE_ARCHIVE_BYTES)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - 404, over size, offline: all become a note
                raise PackageUnavailable(f"{owner}/{repo}@{ref} could not be downloaded ({_reason(exc)})") from exc
            sink.seek(0)
            try:
                return await asyncio.to_thread(
                    unpack_matching,
                    sink,
                    lambda path: wanted_archive_files(path, subdirectory),
                    max_file_bytes=MAX_PACKAGE_FILE_BYTES,
                    max_total_bytes=MAX_PACKAGE_KEPT_BYTES,
                    max_unpacked_bytes=MAX_PACKAGE_UNPACKED_BYTES,
                )
            except ArchiveRefused as exc:
                raise PackageUnavailable(f"{owner}/{repo}@{ref} was refused: {exc}") from exc


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "…"


async def install_packages(
    projects: Iterable[str],
    paths: Iterable[str],
    read: ReadFile,
    fetcher: PackageFetcher | None,
    *,
    changed: Iterable[str] = (),
    seconds: float = PACKAGES_SECONDS,
) -> Installed:
    """The macro files of every package the base's projects use, at the paths a committed
    ``dbt_packages/`` would have, and notes for the check. ``fetcher`` None: offline (local
    packages are still read from the repository). A project with a committed ``dbt_packages/``
    is left as it is (that is what ``dbt deps`` produced)."""
    all_paths = set(paths)
    changed = set(changed)
    files: dict[str, bytes] = {}
    notes: list[str] = []
    jobs: list[tuple[str, PackageSpec]] = []
    for project in projects:
        prefix = "" if project in ("", ".") else project.strip("/") + "/"
        if any(p.startswith(f"{prefix}dbt_packages/") for p in all_paths):
            continue
        texts = {path: await read(path) for path in dependency_paths(project) if path in all_paths}
        dependencies = read_dependencies(project, texts.get)
        notes.extend(f"dbt packages: {problem}" for problem in dependencies.problems)
        touched = sorted(path for path in texts if path in changed)
        if touched:
            notes.append(
                f"This pull request changes {', '.join(touched)}: Tessera read both sides with the base "
                "branch's packages (it never fetches code a pull request names before it merges)."
            )
        for spec in dependencies.packages:
            if spec.kind == "local":
                files.update(await _local_package(project, spec, all_paths, read, notes))
            else:
                jobs.append((project, spec))
    if not jobs:
        return Installed(files, tuple(notes))
    if fetcher is None:
        labels = ", ".join(sorted({spec.label for _, spec in jobs}))
        notes.append(f"dbt packages not fetched (offline): {labels}; {FALLBACK}.")
        return Installed(files, tuple(notes))
    unique = list(dict.fromkeys(spec for _, spec in jobs))
    results = await _fetch_all(fetcher, unique, seconds)
    fetched: list[str] = []
    for project, spec in jobs:
        result = results[spec]
        if isinstance(result, PackageUnavailable):
            notes.append(f"dbt package {spec.label} was not fetched: {result}; {FALLBACK}.")
            continue
        for rel, path in installed_paths(project, result.name, result.macros).items():
            files[path] = result.macros[rel].encode("utf-8")
        fetched.append(f"{result.name} {result.version}")
    if fetched:
        notes.append(f"dbt packages read at their locked versions: {', '.join(sorted(set(fetched)))}.")
    return Installed(files, tuple(notes))


async def _fetch_all(
    fetcher: PackageFetcher, specs: list[PackageSpec], seconds: float
) -> dict[PackageSpec, FetchedPackage | PackageUnavailable]:
    async def one(spec: PackageSpec) -> FetchedPackage | PackageUnavailable:
        try:
            return await fetcher.fetch(spec)
        except PackageUnavailable as exc:
            log.info("dbt package %s not fetched: %s", spec.label, exc)
            return exc

    tasks = {spec: asyncio.ensure_future(one(spec)) for spec in specs}
    done, pending = await asyncio.wait(tasks.values(), timeout=seconds)
    for task in pending:
        task.cancel()
    return {
        spec: task.result() if task in done else PackageUnavailable(f"fetching took over {seconds:g}s")
        for spec, task in tasks.items()
    }


async def _local_package(
    project: str, spec: PackageSpec, paths: set[str], read: ReadFile, notes: list[str]
) -> dict[str, bytes]:
    """A ``local:`` package is in the repository already: its macros, where dbt installs them."""
    folder = spec.source.strip("/")
    if folder.startswith("..") or folder.startswith("/"):
        notes.append(f"dbt package {spec.source}: outside the repository, not read.")
        return {}
    prefix = "" if folder in ("", ".") else folder + "/"
    wanted = [p for p in paths if p.startswith(prefix) and wanted_archive_files(p[len(prefix):])]
    raw = {p[len(prefix):]: ((await read(p)) or "").encode("utf-8") for p in wanted if not _in_installed(p[len(prefix):])}
    name, macros = package_macros(raw)
    if name is None:
        notes.append(f"dbt package {spec.source}: no dbt_project.yml with a name there; not read.")
        return {}
    return {path: macros[rel] for rel, path in installed_paths(project, name, macros).items()}


def _in_installed(rel: str) -> bool:
    return bool(re.match(r"(dbt_packages|dbt_modules|target)/", rel))


def codeload(session: aiohttp.ClientSession, base_url: str) -> TarballDownload:
    """Downloads of public repositories straight from codeload (``tessera check``: no token)."""
    import aiohttp  # lazy: only a fetch loads the HTTP client (`tessera check` offline does not)
    import yarl  # lazy: only a fetch loads the HTTP client (`tessera check` offline does not)

    async def download(owner: str, repo: str, ref: str, sink: BinaryIO, max_bytes: int) -> int:
        url = yarl.URL(base_url.rstrip("/")) / owner / repo / "tar.gz" / ref
        timeout = aiohttp.ClientTimeout(total=PACKAGES_SECONDS, sock_read=HUB_TIMEOUT)
        async with session.get(url, allow_redirects=False, timeout=timeout) as response:
            if response.status != 200:
                raise PackageUnavailable(f"codeload answered {response.status}")
            size = 0
            async for chunk in response.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise PackageUnavailable(f"the archive is over {max_bytes / 1_048_576:g} MB")
                sink.write(chunk)
            return size

    return download


def packages_for_check(
    projects: Iterable[str],
    paths: Iterable[str],
    read: Callable[[str], str | None],
    *,
    settings: Settings,
    cache_folder: str | None,
    changed: Iterable[str] = (),
) -> Installed:
    """:func:`install_packages` for ``tessera check`` (synchronous; public packages from
    codeload; offline with ``settings.packages_offline``)."""

    async def read_async(path: str) -> str | None:
        return read(path)

    async def run() -> Installed:
        if settings.packages_offline:  # no HTTP client (and its TLS set-up) is loaded at all
            return await install_packages(projects, paths, read_async, None, changed=changed)
        import aiohttp  # lazy: only a fetch loads the HTTP client (`tessera check` offline does not)

        async with aiohttp.ClientSession(headers={"user-agent": "tessera"}) as session:
            fetcher = PackageFetcher(
                hub_url=settings.dbt_hub_url,
                session=session,
                download=codeload(session, settings.codeload_url),
                cache=shared_cache(cache_folder),
            )
            return await install_packages(projects, paths, read_async, fetcher, changed=changed)

    return asyncio.run(run())
