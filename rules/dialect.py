"""Which SQL dialect each dbt project is written in, found without being told.

A repository with no ``.tessera.yml`` still says what warehouse it runs on, in the files a dbt
user commits anyway. Per dbt project (one repository can hold several), first match wins:

1. ``dbt.dialect`` in ``.tessera.yml`` (for every project);
2. a committed ``profiles.yml`` (the project's profile, its target's ``type``; when that is a local
   adapter such as DuckDB beside a warehouse, the production output's), nearest first;
3. the dbt adapter package the repository installs (``dbt-bigquery``, ``dbt-snowflake``, ...)
   named in ``requirements*.txt``, ``pyproject.toml``, ``Pipfile``, ``setup.py``/``setup.cfg`` or a
   ``Dockerfile`` in the project's folder or one above it, then in CI files
   (``.github/workflows/*``): the nearest folder whose files name an adapter decides, and among its
   files (or among the CI files) the adapter most files name alone, then most files name at all,
   then most often, then the first by name: never the file that sorts first (see :func:`_weigh`);
4. a dbt manifest's ``metadata.adapter_type``;
5. ``postgres`` (``default``).

Only a bounded set of small files is read (:func:`detection_paths` lists them, so the App fetches
them ahead), and ``profiles.yml`` is never rendered: its Jinja (``env_var`` secrets) is blanked out
before the YAML is read.
"""

from __future__ import annotations

import posixpath
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import yaml

from rules.dbt_project import SKIPPED_FOLDERS, find_projects
from rules.model import Config, Dialect, Project
from rules.sources import FileSource, matches_any
from rules.yamlsafe import MAX_YAML_VALUES, expands_too_far

DEFAULT = Dialect("postgres", "default")
"""What a project is read in when nothing says otherwise."""

ADAPTER_DIALECTS: Mapping[str, str] = {
    "postgres": "postgres",
    "bigquery": "bigquery",
    "snowflake": "snowflake",
    "databricks": "databricks",
    "redshift": "redshift",
    "duckdb": "duckdb",
    "spark": "spark",
    "glue": "spark",
    "trino": "trino",
    "starburst": "trino",
    "presto": "presto",
    "athena": "athena",
    "clickhouse": "clickhouse",
    "sqlserver": "tsql",
    "synapse": "tsql",
    "fabric": "fabric",
    "mysql": "mysql",
    "mariadb": "mysql",
    "singlestore": "singlestore",
    "oracle": "oracle",
    "sqlite": "sqlite",
    "hive": "hive",
    "teradata": "teradata",
    "materialize": "materialize",
    "risingwave": "risingwave",
    "starrocks": "starrocks",
    "doris": "doris",
    "dremio": "dremio",
    "exasol": "exasol",
}
"""dbt adapter type (``profiles.yml`` ``type``, ``metadata.adapter_type``) → sqlglot dialect."""

DISPLAY_NAMES: Mapping[str, str] = {
    "bigquery": "BigQuery",
    "postgres": "PostgreSQL",
    "duckdb": "DuckDB",
    "tsql": "T-SQL",
    "mysql": "MySQL",
    "sqlite": "SQLite",
    "clickhouse": "ClickHouse",
    "singlestore": "SingleStore",
    "starrocks": "StarRocks",
    "risingwave": "RisingWave",
}
"""How people write a dialect's name, where it differs from capitalising it."""


def display_name(dialect: str) -> str:
    """``bigquery`` → ``BigQuery``, for sentences."""
    return DISPLAY_NAMES.get(dialect, dialect.capitalize())


PACKAGE_ADAPTERS: Mapping[str, str] = {
    **{name: name for name in ADAPTER_DIALECTS},
    "athena-community": "athena",
}
"""The part after ``dbt-`` of an adapter's Python package → its adapter type."""

LOCAL_ADAPTERS = frozenset({"duckdb", "postgres", "sqlite"})
"""Adapters often installed beside the real one for local runs and tests: a file naming one of
these and a warehouse adapter means the warehouse."""

PROFILE_FOLDERS = ("", ".dbt", "profiles", "ci", ".ci", "dbt")
"""Where, under the project's folder or one above it, a committed ``profiles.yml`` is looked for."""

PACKAGE_FILES = ("requirements*.txt", "requirements/*.txt", "pyproject.toml", "Pipfile", "setup.py", "setup.cfg",
                 "Dockerfile", "Dockerfile.*", "*.Dockerfile")
"""Files (relative to the project's folder or a folder above it) that name installed packages."""

CI_FILES = (".github/workflows/*.yml", ".github/workflows/*.yaml", ".gitlab-ci.yml", ".circleci/config.yml")
"""CI definitions at the repository's root that install dbt."""

MAX_FILE_CHARS = 512 * 1024
"""Larger files are not read for detection (a lock file, a generated workflow)."""

MAX_FILES = 64
"""Files one project's detection may read at most."""

_PACKAGE = re.compile(
    r"(?<![\w.-])dbt[-_]("
    + "|".join(n.replace("-", "[-_]") for n in sorted(PACKAGE_ADAPTERS, key=len, reverse=True))
    + r")(?![\w-])",
    re.IGNORECASE,
)
_COMMENT = re.compile(r"^\s*#.*$", re.MULTILINE)
_JINJA_EXPRESSION = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_JINJA_TAG = re.compile(r"\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_ADAPTER_TYPE = re.compile(r'"adapter_type"\s*:\s*"([A-Za-z0-9_-]+)"')
_UNRENDERED = "tessera-unrendered"
"""What a Jinja expression in ``profiles.yml`` reads as: a value Tessera does not know."""

Reader = Callable[[str], "str | None"]
"""Reads one file of the commit (``FileSource.read``, possibly memoised)."""


def project_folders(paths: Iterable[str], config: Config) -> list[str]:
    """The dbt projects of a commit as the build reads them: ``dbt.projects`` or every folder
    holding a ``dbt_project.yml``, less the ignored ones."""
    projects = list(config.dbt.projects) or find_projects(paths)
    return [p for p in projects if not matches_any(_join(p, "dbt_project.yml"), config.ignore)]


def detect_projects(source: FileSource, config: Config, projects: Sequence[str] | None = None) -> tuple[Project, ...]:
    """Each dbt project of ``source`` with the dialect it is read in (see the module docstring)."""
    tree = _Tree(source.paths())
    folders = project_folders(tree.paths, config) if projects is None else list(projects)
    texts: dict[str, str | None] = {}

    def read(path: str) -> str | None:
        if path not in texts:
            texts[path] = source.read(path)
        return texts[path]

    return tuple(Project(folder, detect(source, folder, config, tree=tree, read=read)) for folder in folders)


def detect(
    source: FileSource,
    project_dir: str,
    config: Config,
    *,
    tree: _Tree | None = None,
    read: Reader | None = None,
) -> Dialect:
    """The dialect of the dbt project in ``project_dir``, and why."""
    if config.dbt.dialect:
        return Dialect(config.dbt.dialect, ".tessera.yml")
    tree = tree if tree is not None else _Tree(source.paths())
    reader = read if read is not None else source.read
    candidates = _candidates(tree, project_dir, config)
    profile = _profile_name(reader, project_dir) if candidates.profiles else None
    return (
        _from_profiles(candidates.profiles, reader, profile)
        or _from_packages(candidates.packages, reader)
        or _from_manifest(candidates.manifests, reader)
        or DEFAULT
    )


def detection_paths(paths: Iterable[str], config: Config) -> list[str]:
    """Every file detection may read at this commit (for sources that fetch ahead)."""
    if config.dbt.dialect:
        return []
    tree = _Tree(paths)
    wanted: dict[str, None] = {}
    for folder in project_folders(tree.paths, config):
        found = _candidates(tree, folder, config)
        for path in (*found.profiles, *(p for group in found.packages for p in group), *found.manifests[:1]):
            wanted[path] = None
    return list(wanted)


class _Tree:
    """A commit's paths by folder, built once for every project's look-up."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths = list(paths)
        self.known = set(self.paths)
        self.by_folder: dict[str, list[str]] = {}
        skipped: dict[str, bool] = {}
        for path in self.paths:
            folder = path.rpartition("/")[0]
            skip = skipped.get(folder)
            if skip is None:
                skip = skipped[folder] = bool(folder) and not SKIPPED.isdisjoint(folder.split("/"))
            if not skip:
                self.by_folder.setdefault(folder, []).append(path)


SKIPPED = frozenset(SKIPPED_FOLDERS)


@dataclass(frozen=True)
class _Candidates:
    """The files one project's detection looks at, in the order it looks."""

    profiles: list[str]
    packages: list[list[str]]
    """Files naming installed packages, one group per folder (nearest first), CI files last."""
    manifests: list[str]


def _candidates(tree: _Tree, project_dir: str, config: Config) -> _Candidates:
    profiles: list[str] = []
    patterns: list[list[str]] = []
    for folder in _folders_up(project_dir):
        for sub in PROFILE_FOLDERS:
            path = _join(folder, _join(sub, "profiles.yml"))
            if path in tree.known and path.rpartition("/")[0] in tree.by_folder:
                profiles.append(path)
        patterns.append([_join(folder, pattern) for pattern in PACKAGE_FILES])
    patterns.append(list(CI_FILES))
    groups: list[list[str]] = []
    seen: set[str] = set()
    for group_patterns in patterns:
        group = []
        for pattern in group_patterns:
            for path in sorted(_within(tree, pattern)):
                if path not in seen and len(seen) < MAX_FILES:
                    seen.add(path)
                    group.append(path)
        groups.append(group)
    manifests = []
    if config.dbt.manifest and _manifest_folder(config.dbt.manifest) in (project_dir.strip("/") or ".", "."):
        manifests.append(config.dbt.manifest)
    own = _join(project_dir, "target/manifest.json")
    if own in tree.known and own not in manifests:
        manifests.append(own)
    return _Candidates(profiles[: MAX_FILES // 4], [g for g in groups if g], manifests)


def _within(tree: _Tree, pattern: str) -> list[str]:
    """The files of one folder matching a pattern that has no ``/`` in its last part."""
    folder, _, name = pattern.rpartition("/")
    return [p for p in tree.by_folder.get(folder, ()) if fnmatchcase(p.rpartition("/")[2], name)]


def _folders_up(project_dir: str) -> list[str]:
    """The project's folder, then each folder above it up to the root (``""``)."""
    folder = "" if project_dir in ("", ".") else project_dir.strip("/")
    out = [folder]
    while folder:
        folder = posixpath.dirname(folder)
        out.append(folder)
    return out


def _join(folder: str, path: str) -> str:
    return path if folder in ("", ".") else f"{folder.strip('/')}/{path}"


def _manifest_folder(path: str) -> str:
    folder = posixpath.dirname(path)
    if posixpath.basename(folder) == "target":
        folder = posixpath.dirname(folder)
    return folder or "."


# --- profiles.yml ------------------------------------------------------------------------------


def _profile_name(read: Reader, project_dir: str) -> str | None:
    """The ``profile:`` a project's ``dbt_project.yml`` names, when it says plainly."""
    data = _lenient_yaml(read(_join(project_dir, "dbt_project.yml")))
    name = data.get("profile") if isinstance(data, Mapping) else None
    return name if isinstance(name, str) and _UNRENDERED not in name else None


def _lenient_yaml(text: str | None) -> Any:
    """YAML with its Jinja blanked out, never rendered; None when it cannot be read."""
    if not text or len(text) > MAX_FILE_CHARS:
        return None
    text = _JINJA_TAG.sub("", text)
    text = _JINJA_EXPRESSION.sub(_UNRENDERED, text)
    if expands_too_far(text, MAX_YAML_VALUES):
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def _from_profiles(paths: Sequence[str], read: Reader, profile: str | None) -> Dialect | None:
    for path in paths:
        data = _lenient_yaml(read(path))
        if not isinstance(data, Mapping):
            continue
        profiles = {
            str(name): body
            for name, body in data.items()
            if name != "config" and isinstance(body, Mapping) and isinstance(body.get("outputs"), Mapping)
        }
        if profile is not None and profile in profiles:
            chosen = profiles[profile]
        elif len(profiles) == 1:
            chosen = next(iter(profiles.values()))
        else:
            kinds = {_adapter_of(out) for body in profiles.values() for out in body["outputs"].values()}
            if len(kinds) != 1 or None in kinds:
                continue
            adapter = kinds.pop()
            assert adapter is not None
            return Dialect(ADAPTER_DIALECTS[adapter], f"{path} (every profile: {adapter})")
        found = _target_adapter(chosen)
        if found is not None:
            target, adapter = found
            return Dialect(ADAPTER_DIALECTS[adapter], f"{path} (target {target}: {adapter})")
    return None


def _target_adapter(profile: Mapping[str, Any]) -> tuple[str, str] | None:
    """(target name, adapter type) of a profile: its ``target``, else ``dev``, else the only or
    first output whose type is known; the warehouse's when that one is a local adapter."""
    outputs = {str(k): v for k, v in profile["outputs"].items() if isinstance(v, Mapping)}
    target = profile.get("target")
    order = [str(target)] if isinstance(target, str) and _UNRENDERED not in target else []
    order += ["dev", *outputs]
    for name in order:
        adapter = _adapter_of(outputs.get(name))
        if adapter is not None:
            if adapter in LOCAL_ADAPTERS:
                return _warehouse_target(outputs) or (name, adapter)
            return name, adapter
    return None


PRODUCTION_TARGETS = ("prod", "production", "prd")
"""Output names that say "this is the warehouse the project ships to"."""


def _warehouse_target(outputs: Mapping[str, Any]) -> tuple[str, str] | None:
    """When the default target is a local adapter (a developer's DuckDB beside the warehouse),
    the warehouse's: the production output's, else the adapter most outputs use. The SQL is
    written for where it runs in production; the local target is a copy that dispatch adapts."""
    warehouse = {name: a for name, out in outputs.items() if (a := _adapter_of(out)) and a not in LOCAL_ADAPTERS}
    for name in PRODUCTION_TARGETS:
        if name in warehouse:
            return name, warehouse[name]
    if not warehouse:
        return None
    counts = Counter(warehouse.values())
    adapter = max(counts, key=lambda a: counts[a])
    return next(name for name, a in warehouse.items() if a == adapter), adapter


def _adapter_of(output: Any) -> str | None:
    kind = output.get("type") if isinstance(output, Mapping) else None
    if not isinstance(kind, str):
        return None
    kind = kind.strip().lower()
    return kind if kind in ADAPTER_DIALECTS else None


# --- packages ----------------------------------------------------------------------------------


def adapters_named(text: str) -> list[str]:
    """The dbt adapters a requirements file, Dockerfile, workflow ... installs, in order of first
    mention; commented-out lines do not count."""
    return list(adapter_mentions(text))


def adapter_mentions(text: str) -> Counter[str]:
    """How often ``text`` names each dbt adapter package (in order of first mention)."""
    return Counter(
        PACKAGE_ADAPTERS[match.group(1).lower().replace("_", "-")] for match in _PACKAGE.finditer(_COMMENT.sub("", text))
    )


def _from_packages(groups: Sequence[Sequence[str]], read: Reader) -> Dialect | None:
    """The first group (nearest folder first, CI files last) whose files name an adapter decides."""
    for paths in groups:
        named: list[tuple[str, Counter[str]]] = []
        for path in paths:
            text = read(path)
            if not text or len(text) > MAX_FILE_CHARS or "dbt" not in text.lower():
                continue
            mentions = adapter_mentions(text)
            if mentions:
                named.append((path, mentions))
        if named:
            return _weigh(named)
    return None


def _weigh(named: Sequence[tuple[str, Counter[str]]]) -> Dialect:
    """The adapter several files of one folder (or the CI files) agree on, whatever their order.

    A file naming one warehouse adapter (a deployment, a requirements file) says more than a test
    matrix naming several, so the adapter most files name alone wins, then the one most files name
    at all, then the one they name most often (a matrix's default is spelled out again where it
    is installed); a tie goes to the first by name, and the source says so (``dbt.dialect`` settles
    it). A warehouse adapter wins over a local one (DuckDB, Postgres, SQLite) named beside it, in
    the same file or another; local adapters count only when no file names a warehouse.
    """
    warehouse = [(path, Counter({a: n for a, n in found.items() if a not in LOCAL_ADAPTERS})) for path, found in named]
    counted = [(path, found) for path, found in warehouse if found] or list(named)
    alone = Counter(next(iter(found)) for _, found in counted if len(found) == 1)
    anywhere = Counter(a for _, found in counted for a in found)
    mentions: Counter[str] = sum((found for _, found in counted), Counter())

    def weight(adapter: str) -> tuple[int, int, int]:
        return (alone[adapter], anywhere[adapter], mentions[adapter])

    ranked = sorted(anywhere, key=lambda a: (*(-w for w in weight(a)), a))
    chosen = ranked[0]
    tied = [a for a in ranked[1:] if weight(a) == weight(chosen)]
    path = next((p for p, found in counted if list(found) == [chosen]), None) or next(
        p for p, found in counted if chosen in found
    )
    if len(named) == 1:
        also = [a for a in named[0][1] if a != chosen]
        detail = [f"also names {_packages(also)}"] if also else []
    else:
        detail = [f"named in {anywhere[chosen]} of {len(named)} files" + (f", {alone[chosen]} alone" if alone[chosen] else "")]
    if tied:
        detail.append(f"tied with {_packages(tied)}: first by name")
    why = f"{path}: dbt-{chosen}" + (f" ({'; '.join(detail)})" if detail else "")
    return Dialect(ADAPTER_DIALECTS[chosen], why)


def _packages(adapters: Iterable[str]) -> str:
    """``dbt-a, dbt-b``: adapters as the packages people install."""
    return ", ".join("dbt-" + a for a in adapters)


# --- manifest ----------------------------------------------------------------------------------


def _from_manifest(paths: Sequence[str], read: Reader) -> Dialect | None:
    for path in paths:
        text = read(path)
        match = _ADAPTER_TYPE.search(text[:65536]) if text else None
        adapter = match.group(1).lower() if match else None
        if adapter in ADAPTER_DIALECTS:
            return Dialect(ADAPTER_DIALECTS[adapter], f"{path}: metadata.adapter_type {adapter}")
    return None
