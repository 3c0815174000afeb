"""The packages a dbt project depends on, as ``dbt deps`` reads them: pure parsing, no network.

dbt reads ``packages.yml`` (or ``dependencies.yml``) for what a project wants and
``package-lock.yml`` for the exact versions ``dbt deps`` resolved; the lock wins where it names a
package. Three kinds matter for rendering models:

- hub packages (``package: dbt-labs/dbt_utils``), a version or a range; the hub's index maps each
  version to a tarball of the package's GitHub repository;
- git packages (``git: https://github.com/org/repo.git``, ``revision``, ``subdirectory``);
- local packages (``local: ../shared``), already in the repository.

Whoever fetches them (the App, ``tessera check``) puts their macro files where a committed
``dbt_packages/`` would hold them (:func:`installed_paths`), so the engine reads fetched and
committed packages the same way.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rules.dbt_project import load_yaml

DEPENDENCY_FILES = ("packages.yml", "dependencies.yml")
"""Where a project names its packages (dbt reads the first it finds)."""
LOCK_FILE = "package-lock.yml"
MAX_PACKAGES = 50
"""Packages read per project at most (real projects have a handful)."""

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_GITHUB_GIT = re.compile(
    r"^(?:https://github\.com/|git@github\.com:|ssh://git@github\.com/)"
    r"(?P<owner>[A-Za-z0-9-]{1,39})/(?P<repo>[A-Za-z0-9_.-]{1,100}?)(?:\.git)?/?$"
)
_CODELOAD = re.compile(
    r"^https://codeload\.github\.com/(?P<owner>[A-Za-z0-9-]{1,39})/(?P<repo>[A-Za-z0-9_.-]{1,100})"
    r"/(?:tar\.gz|legacy\.tar\.gz)/(?:refs/tags/)?(?P<ref>[A-Za-z0-9_./-]{1,200})$"
)
_GITHUB_ARCHIVE = re.compile(
    r"^https://github\.com/(?P<owner>[A-Za-z0-9-]{1,39})/(?P<repo>[A-Za-z0-9_.-]{1,100})"
    r"/archive/(?:refs/tags/)?(?P<ref>[A-Za-z0-9_./-]{1,200}?)\.tar\.gz$"
)
_REF = re.compile(r"^[A-Za-z0-9_.-][A-Za-z0-9_./-]{0,199}$")


@dataclass(frozen=True)
class PackageSpec:
    """One package a project depends on.

    ``kind`` is ``hub``, ``git``, ``local`` or ``tarball``; ``source`` the hub name
    (``dbt-labs/dbt_utils``), the git URL, the local folder (relative to the repository root) or
    the tarball URL; ``version`` the exact version or git revision when known; ``ranges`` a hub
    version range still to resolve; ``locked`` whether ``package-lock.yml`` pinned it."""

    kind: str
    source: str
    version: str | None = None
    ranges: tuple[str, ...] = ()
    subdirectory: str = ""
    locked: bool = False

    @property
    def label(self) -> str:
        """How a note names the package: ``dbt-labs/dbt_utils 1.1.1``."""
        return f"{self.source} {self.version}" if self.version else self.source


@dataclass(frozen=True)
class Dependencies:
    """What one project's dependency files say, and what in them could not be read."""

    project: str
    packages: tuple[PackageSpec, ...]
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class GitHubArchive:
    """A package's code as one GitHub repository at one ref (the only place packages come from)."""

    owner: str
    repo: str
    ref: str


def _join(folder: str, name: str) -> str:
    return name if folder in ("", ".") else f"{folder.strip('/')}/{name}"


def dependency_paths(project: str) -> tuple[str, ...]:
    """The files of ``project`` that say which packages it uses."""
    return tuple(_join(project, name) for name in (*DEPENDENCY_FILES, LOCK_FILE))


def read_dependencies(project: str, read: Callable[[str], str | None]) -> Dependencies:
    """The packages of the project in folder ``project``: the lock's where it has them, then those
    only ``packages.yml`` names (a range to resolve against the hub)."""
    problems: list[str] = []
    wanted: list[PackageSpec] = []
    for name in DEPENDENCY_FILES:
        path = _join(project, name)
        text = read(path)
        if text is None:
            continue
        wanted = _specs(text, path, problems, locked=False, project=project)
        break
    locked: list[PackageSpec] = []
    lock_path = _join(project, LOCK_FILE)
    lock_text = read(lock_path)
    if lock_text is not None:
        locked = _specs(lock_text, lock_path, problems, locked=True, project=project)
    by_source = {(p.kind, p.source.lower()): p for p in locked}
    packages = list(locked)
    for spec in wanted:
        if (spec.kind, spec.source.lower()) not in by_source:
            packages.append(spec)
    if len(packages) > MAX_PACKAGES:
        problems.append(f"{len(packages)} packages: only the first {MAX_PACKAGES} are read")
        packages = packages[:MAX_PACKAGES]
    return Dependencies(project, tuple(packages), tuple(problems))


def _specs(text: str, path: str, problems: list[str], *, locked: bool, project: str) -> list[PackageSpec]:
    data, problem = load_yaml(text, path)
    if problem is not None:
        problems.append(f"{path}: {problem.message}")
        return []
    entries = data.get("packages") if isinstance(data, Mapping) else None
    if entries is None:
        return []
    if not isinstance(entries, list):
        problems.append(f"{path}: `packages` must be a list")
        return []
    found: list[PackageSpec] = []
    for entry in entries:
        spec = _spec(entry, project, locked=locked)
        if spec is None:
            problems.append(f"{path}: an entry Tessera cannot read: {str(entry)[:80]}")
        else:
            found.append(spec)
    return found


def _spec(entry: Any, project: str, *, locked: bool) -> PackageSpec | None:
    if not isinstance(entry, Mapping):
        return None
    if isinstance(entry.get("package"), str):
        ranges = _ranges(entry.get("version"))
        exact = ranges[0].lstrip("=") if len(ranges) == 1 and _is_exact(ranges[0]) else None
        return PackageSpec("hub", entry["package"].strip(), exact, () if exact else ranges, locked=locked)
    if isinstance(entry.get("git"), str) or isinstance(entry.get("private"), str):
        url = entry["git"] if isinstance(entry.get("git"), str) else f"https://github.com/{entry['private']}.git"
        revision = entry.get("revision")
        return PackageSpec(
            "git",
            url.strip(),
            str(revision).strip() if revision is not None else None,
            subdirectory=str(entry.get("subdirectory") or "").strip("/"),
            locked=locked,
        )
    if isinstance(entry.get("local"), str):
        folder = posixpath.normpath(_join(project, entry["local"].strip()))
        return PackageSpec("local", folder, locked=locked)
    if isinstance(entry.get("tarball"), str):
        return PackageSpec("tarball", entry["tarball"].strip(), locked=locked)
    return None


def _ranges(value: Any) -> tuple[str, ...]:
    if isinstance(value, (int, float)):
        return (str(value),)
    if isinstance(value, str):
        return (value.strip(),) if value.strip() else ()
    if isinstance(value, list):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return ()


def _is_exact(spec: str) -> bool:
    return not spec.startswith((">", "<", "!")) and _version(spec.lstrip("=")) is not None


def _version(text: str) -> tuple[int, int, int] | None:
    """``1.2.3`` (or ``1.2``, ``v1.2.3``) as a sortable triple; None for a pre-release or junk."""
    match = re.fullmatch(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", text.strip())
    if match is None:
        return None
    return int(match[1]), int(match[2] or 0), int(match[3] or 0)


def pick_version(available: Iterable[str], ranges: Iterable[str]) -> str | None:
    """The highest released version satisfying every range (``>=1.0.0``, ``<2.0.0``, ``1.1.1``),
    as ``dbt deps`` picks it; pre-releases only when named exactly. None when none fits."""
    constraints: list[tuple[str, tuple[int, int, int]]] = []
    for spec in ranges:
        match = re.fullmatch(r"\s*(>=|<=|==|=|>|<)?\s*(\S+)\s*", spec)
        version = _version(match[2]) if match else None
        if match is None or version is None:
            return None
        constraints.append((match[1] or "==", version))
    ops: dict[str, Callable[[tuple[int, int, int], tuple[int, int, int]], bool]] = {
        ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
        "<": lambda a, b: a < b, "==": lambda a, b: a == b, "=": lambda a, b: a == b,
    }
    best: tuple[tuple[int, int, int], str] | None = None
    for name in available:
        version = _version(name)
        if version is None or not all(ops[op](version, bound) for op, bound in constraints):
            continue
        if best is None or version > best[0]:
            best = (version, name)
    return best[1] if best else None


def hub_name(source: str) -> tuple[str, str] | None:
    """``dbt-labs/dbt_utils`` as (namespace, name); None when it is not a hub name."""
    parts = source.split("/")
    if len(parts) != 2 or not all(_NAME.match(p) for p in parts):
        return None
    return parts[0], parts[1]


def github_archive(url: str, ref: str | None) -> GitHubArchive | None:
    """Where a package's code is on GitHub, from a git URL and revision or a hub tarball URL
    (``codeload.github.com/<owner>/<repo>/tar.gz/<ref>``); None for anything else (other hosts are
    never fetched)."""
    for pattern in (_CODELOAD, _GITHUB_ARCHIVE):
        match = pattern.match(url)
        if match:
            return _archive(match["owner"], match["repo"], match["ref"])
    match = _GITHUB_GIT.match(url)
    return None if match is None else _archive(match["owner"], match["repo"], (ref or "HEAD").strip())


def _archive(owner: str, repo: str, ref: str) -> GitHubArchive | None:
    """The three parts of a GitHub archive, each a plain name (no ``..``: nothing climbs out of the
    ``/repos/{owner}/{repo}/tarball/{ref}`` path it is put in)."""
    if repo in (".", "..") or not _REF.match(ref) or ".." in ref or "//" in ref:
        return None
    return GitHubArchive(owner, repo, ref)


def is_pinned(spec: PackageSpec) -> bool:
    """Whether the package's code cannot change under the same name (a hub version, a commit)."""
    if spec.kind == "hub":
        return spec.version is not None
    return spec.kind == "git" and bool(spec.version and re.fullmatch(r"[0-9a-f]{40}", spec.version))


def package_macros(files: Mapping[str, bytes], subdirectory: str = "") -> tuple[str | None, dict[str, bytes]]:
    """A package's dbt project name and its macro files (path under ``macros/`` → bytes), out of
    the files of its repository (paths relative to the repository root). The name comes from the
    package's own ``dbt_project.yml``; None when it has none (then it is no dbt package)."""
    root = subdirectory.strip("/")
    prefix = f"{root}/" if root else ""
    project_text = files.get(f"{prefix}dbt_project.yml")
    if project_text is None:
        return None, {}
    data, problem = load_yaml(project_text.decode("utf-8", errors="replace"), "dbt_project.yml")
    settings = data if problem is None and isinstance(data, Mapping) else {}
    name = settings.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        return None, {}
    raw_paths = settings.get("macro-paths") or ["macros"]
    macro_paths = [str(p).strip("/") for p in (raw_paths if isinstance(raw_paths, list) else [raw_paths])]
    macros: dict[str, bytes] = {}
    for path, data_bytes in files.items():
        if not path.startswith(prefix) or not path.endswith(".sql"):
            continue
        rel = path[len(prefix):]
        for folder in macro_paths:
            if folder and rel.startswith(folder + "/"):
                macros[rel[len(folder) + 1:]] = data_bytes
                break
    return name, macros


def installed_paths(project: str, package: str, macros: Iterable[str]) -> dict[str, str]:
    """Where ``dbt deps`` would have put a package's macro files in ``project`` (macro path →
    repository path), so the engine reads them as a committed ``dbt_packages/``."""
    return {rel: _join(project, f"dbt_packages/{package}/macros/{rel}") for rel in macros}


def wanted_archive_files(path: str, subdirectory: str = "") -> bool:
    """Whether a file of a package's repository is worth keeping: its project file and SQL."""
    root = subdirectory.strip("/")
    rel = path[len(root) + 1:] if root and path.startswith(root + "/") else (None if root else path)
    return rel is not None and (rel == "dbt_project.yml" or rel.endswith(".sql"))
