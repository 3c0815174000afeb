"""The whole schema state of a repository at one commit: dbt projects, a dbt manifest, SQL files.

Output columns and column edges of models are inferred with ``rules.infer`` in DAG order, parents
first, so each query is read against its parents' real schemas; declared YAML types win over
inferred ones (an enforced contract's declared columns are the schema).

Speed (issue 3: a 20-model change in a 1,000-model project, cold < 5 s, warm < 1 s) comes from:

- **Scope.** With ``scope`` (the changed paths) only what the analysis needs is inferred: the changed
  models and everything downstream of them (shown with their inferred columns and edges), and the
  ancestors whose output schemas those read (inferred for their schemas only, in the schema-only
  mode of ``infer_query``: no lineage walk, no expression text; walking up stops at enforced
  contracts and at models whose YAML types every column their query produces). Every other model,
  ancestors included, is shown as a cheap asset built from its YAML, so an unchanged model looks
  the same on both sides of the diff whatever its role.
- **The cone, as far as anything reads it.** An analysis builds both sides together
  (:func:`build_pair`): of everything downstream of the change only the models whose output
  differs between the sides, their readers, and the models the impact walk reaches through a
  changed column are inferred (the walk asks for an asset's readers first). The rest keep their
  rendered asset and declared columns, the same on both sides; the answers are those of inferring
  the whole cone.
- **The parse cache** (:class:`ParseCache`). Rendered SQL is cached by (file content, project
  context), inference by (SQL, dialect, parents' schemas), whole snapshots by (every input file's
  content id, config, scope). The base build fills it; the head build then re-infers only the
  models whose SQL or parents' schemas really changed: downstream of a model whose output schema
  did not change, everything is a cache hit. A warm run of the same pair is two snapshot reads.
- **Waves.** Models of one DAG wave are independent, so each wave goes to ``map_jobs`` at once:
  the shell that owns the process may share it with worker processes (``app.engine`` does for
  ``tessera check``), and may pause the garbage collector around a build. This module stays pure:
  no processes, no disk, no collector switches.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from sqlglot import exp

from rules.dbt_macros import DYNAMIC_MARKER, STAR_FUNCTION, UNION_FUNCTION
from rules.dbt_manifest import load_manifest, manifest_project, needs_rendering
from rules.dbt_project import (
    SKIPPED_FOLDERS,
    DbtProject,
    ModelFile,
    Rendered,
    _column_line,
    is_macro_path,
    line_of,
    read_project,
    stable_hash,
)
from rules.dialect import DEFAULT, detect_projects, project_folders
from rules.infer import expand_star_macros, infer_query, output_names
from rules.model import (
    NOT_PRODUCED,
    PRODUCED_EXTRA,
    PRODUCED_TYPE,
    PROPERTIES_AT,
    UNKNOWN,
    Asset,
    Column,
    Config,
    Dialect,
    Edge,
    ParseProblem,
    Project,
    Snapshot,
)
from rules.sources import FileSource, matches_any
from rules.sql_schema import build_sql_snapshot

DEFAULT_DIALECT = "postgres"
"""The dialect used when ``.tessera.yml`` names none (and a manifest does not say its adapter)."""


def _engine_fingerprint() -> str:
    """A hash of the engine's own source: cached results from another version of the code (a
    different inference, a new rule) are never served from disk."""
    digest = hashlib.sha256(b"2")  # bump when cached values change shape
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        try:
            digest.update(path.read_bytes())
        except OSError:
            continue
    return digest.hexdigest()[:16]


CACHE_FORMAT = _engine_fingerprint()
"""Part of every cache key: the engine's code version."""


class ParseCache:
    """Rendered SQL, inferred queries and whole snapshots keyed by content hash, in memory.

    The engine does no I/O: a shell that wants results to outlive the process (``tessera check``,
    the App's analysis workers) subclasses this and keeps them somewhere (``app.engine`` writes
    packs to disk): :meth:`_missing` is asked on a memory miss, and :meth:`flush` is called at the
    end of each build so that what was put since can be written in one go.
    """

    def __init__(self, *, max_entries: int = 100_000) -> None:
        """``max_entries`` bounds memory (least recently used entries go first: a long-lived
        process keeps one cache for its lifetime)."""
        self._memory: dict[str, Any] = {}
        self._max_entries = max_entries
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Any | None:
        value = self._memory.pop(key, None)
        if value is None:
            value = self._missing(key)
        if value is not None:
            self._remember(key, value)
            self.hits += 1
            return value
        self.misses += 1
        return None

    def put(self, key: str, value: Any) -> None:
        self._memory.pop(key, None)
        self._remember(key, value)

    def flush(self) -> None:
        """Called at the end of each build: nothing to do for a cache that lives in memory."""

    def _missing(self, key: str) -> Any | None:
        """A value this process does not hold (None: none anywhere)."""
        return None

    def _remember(self, key: str, value: Any) -> None:
        self._memory[key] = value  # dicts keep insertion order: the first key is the oldest
        while len(self._memory) > self._max_entries:
            del self._memory[next(iter(self._memory))]

    def __contains__(self, key: str) -> bool:
        return key in self._memory

    def __getitem__(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        self.put(key, value)

    def __len__(self) -> int:
        return len(self._memory)


InferenceJob = tuple[str, str, Mapping[str, Mapping[str, str]], str, "RelationResolver", bool]
"""What one inference needs: SQL, dialect, parent schemas, fqn, resolver (all picklable), and
whether its lineage is wanted (False for an ancestor read only for its output schema)."""

JobMap = Callable[[Callable[[InferenceJob], Any], list[InferenceJob]], list[Any]]
"""How a wave of independent inferences is run: ``map_jobs(infer_one, jobs)`` returns their
results in order. The engine runs them one after the other; the shell that owns the process may
share them with worker processes (``function`` is a module-level function, so it pickles)."""


def serial_map(function: Callable[[InferenceJob], Any], jobs: list[InferenceJob]) -> list[Any]:
    """Every job here, in order."""
    return [function(job) for job in jobs]


Resolver = Callable[[exp.Table], "str | None"]


class RelationResolver:
    """Maps a table reference in rendered or compiled SQL to the fqn of the asset it names.

    Keys are the lower-case, unquoted ``db.schema.name`` / ``schema.name`` / ``name`` of each asset's
    relation (dbt ``relation_name``, or the rendered name of ``rules.dbt_project``) and its fqn. A
    short key that would name two assets is left out, so an ambiguous reference stays unresolved
    rather than wrong. Plain data, so it can be sent to a worker process."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        self.keys = dict(keys)
        self._by_fqn: dict[str, list[str]] | None = None

    def __call__(self, table: exp.Table) -> str | None:
        parts = [part.name.lower() for part in table.parts if part.name]
        for size in range(len(parts), 0, -1):
            found = self.keys.get(".".join(parts[-size:]))
            if found is not None:
                return found
        return None

    def restricted(self, fqns: Iterable[str]) -> RelationResolver:
        """Only the keys naming these assets (a model's declared parents): small to ship."""
        if self._by_fqn is None:
            self._by_fqn = {}
            for key, fqn in self.keys.items():
                self._by_fqn.setdefault(fqn, []).append(key)
        return RelationResolver({k: f for f in fqns for k in self._by_fqn.get(f, ())})

    def __getstate__(self) -> dict[str, Any]:
        return {"keys": self.keys}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.keys = state["keys"]
        self._by_fqn = None


def relation_resolver(assets: Iterable[Asset]) -> RelationResolver:
    """The :class:`RelationResolver` for these assets."""
    full: dict[str, str] = {}
    short: dict[str, set[str]] = {}
    for asset in assets:
        full.setdefault(asset.fqn, asset.fqn)
        if not asset.relation:
            continue
        parts = _relation_parts(asset.relation)
        if not parts:
            continue
        full.setdefault(".".join(parts), asset.fqn)
        for size in range(1, len(parts)):
            short.setdefault(".".join(parts[-size:]), set()).add(asset.fqn)
    keys = dict(full)
    for key, fqns in short.items():
        if key not in keys and len(fqns) == 1:
            keys[key] = next(iter(fqns))
    return RelationResolver(keys)


def _relation_parts(relation: str) -> list[str]:
    parts: list[str] = []
    for raw in relation.split("."):
        part = raw.strip().strip('"`[]').lower()
        if part:
            parts.append(part)
    return parts


@dataclass
class _Node:
    """A model (from a project or a manifest) waiting for its output columns."""

    fqn: str
    parents: tuple[str, ...]
    asset: Asset | None = None
    project: DbtProject | None = None


def build_snapshot(
    source: FileSource,
    config: Config,
    *,
    scope: set[str] | None = None,
    cache: ParseCache | None = None,
    map_jobs: JobMap = serial_map,
    projects: Sequence[Project] | None = None,
) -> Snapshot:
    """Every asset, exposure, group and column edge at this commit (see the module docstring).

    ``map_jobs`` runs each wave of inferences (see :data:`JobMap`).
    ``projects``: the dbt projects' dialects (``rules.dialect``); None detects them here. A
    change is analysed with the base side's for both sides."""
    cache = cache if cache is not None else ParseCache()
    paths = [p for p in source.paths() if not _skipped(p)]
    if projects is None:
        projects = detect_projects(source, config, project_folders(paths, config))
    dialects = {p.path: p.dialect for p in projects}
    key = _snapshot_key(source, paths, config, scope, dialects)
    if key is not None:
        cached = cache.get(key)
        if isinstance(cached, tuple) and cached and cached[0] == _SNAPSHOT_TAG:
            return decode_snapshot(cached)
    snapshot = _build_side(source, paths, config, scope, cache, map_jobs, dialects, lazy=False)[0]
    if key is not None:
        cache.put(key, encode_snapshot(snapshot))
    cache.flush()
    return snapshot


def build_pair(
    base: FileSource,
    head: FileSource,
    config: Config,
    *,
    scope: set[str],
    cache: ParseCache | None = None,
    map_jobs: JobMap = serial_map,
    projects: Sequence[Project] | None = None,
) -> SnapshotPair:
    """Both sides of a change, each as :func:`build_snapshot` with ``scope`` builds it as far as
    anything reads it: the change's cone is inferred only where the sides differ and where the
    impact walk asks (see :class:`SnapshotPair`)."""
    cache = cache if cache is not None else ParseCache()
    sides = []
    for source in (base, head):
        paths = [p for p in source.paths() if not _skipped(p)]
        found = projects if projects is not None else detect_projects(source, config, project_folders(paths, config))
        dialects = {p.path: p.dialect for p in found}
        sides.append((source, paths, dialects, _snapshot_key(source, paths, config, scope, dialects)))
    keys = [side[3] for side in sides]
    key = None if None in keys else stable_hash("snapshot pair", keys)
    if key is not None:
        cached = cache.get(key)
        if isinstance(cached, tuple) and len(cached) == 2:
            return SnapshotPair(decode_snapshot(cached[0]), decode_snapshot(cached[1]))
    # the projects of both sides, read first to know what the change leaves as it was (a project
    # a dbt manifest describes is read from the manifest, each side on its own, as before)
    read = [
        {
            folder: read_project(source, folder, dialect=_project_dialect(folder, dialects, config), cache=cache)
            for folder in project_folders(paths, config)
        } if not config.dbt.manifest else {}
        for source, paths, dialects, _key in sides
    ]
    same = _same_models(read[0], read[1], scope, cache)
    extras = {
        f for folder, project in read[0].items() if folder in read[1]
        for f in _differing_extras(project, read[1][folder])
    }
    names = [
        None if config.dbt.manifest else {f for p in projects.values() for f in (*p.models, *p.sources, *p.seeds)}
        for projects in read
    ]
    shared = {
        folder for folder, project in read[0].items()
        if folder in read[1] and _asset_context(project) == _asset_context(read[1][folder])
    }
    built: list[tuple[Snapshot, _Inference | None]] = []
    for (source, paths, dialects, _key), projects, other in zip(sides, read, names[::-1], strict=True):
        built.append(
            _build_side(
                source, paths, config, scope, cache, map_jobs, dialects, lazy=True, read=projects, same=same,
                elsewhere=other, twin=built[0][1] if built else None, shared=shared, extras=extras,
            )
        )
    pair = SnapshotPair(built[0][0], built[1][0], (built[0][1], built[1][1]), cache, key)
    cache.flush()
    return pair


class SnapshotPair:
    """The base and head snapshots of one change, built together so that of the change's cone
    (every model downstream of a changed one) only what can matter is inferred.

    Inferred at once: the changed models, every model of the cone whose asset differs between
    the sides, and the readers of each such asset (the diff asks about them); the models of the
    cone those read only for their schemas, like ancestors. The rest of the cone is placed as its
    rendered asset with declared columns, which is the same on both sides. The impact walk then asks for the readers of each
    asset it reaches (:meth:`grow`), and they are inferred on both sides before it gets them.
    Every model is inferred from the same inputs as when the whole cone is, so the findings and
    impacts are the same; only the models nobody reads the change through are never inferred.
    A model inferred late is the same on both sides (nothing it reads differs), so the diff, run
    before, stays right."""

    def __init__(
        self,
        base: Snapshot,
        head: Snapshot,
        sides: tuple[_Inference | None, _Inference | None] = (None, None),
        cache: ParseCache | None = None,
        key: str | None = None,
    ) -> None:
        self.base, self.head = base, head
        self.generation = 0
        """How often the snapshots grew (a lineage index built before is stale)."""
        self._sides = tuple(s for s in sides if s is not None)
        self._cache, self._key = cache, key
        self._cone: set[str] = set()
        self._asked: set[str] = set()
        self._readers: dict[str, set[str]] = {}
        if not self._sides:
            return
        for side in self._sides:
            for fqn in side.analysed:
                for parent in side.reads(fqn):
                    self._readers.setdefault(parent, set()).add(fqn)
        base_side, head_side = self._sides
        wanted = (base_side.seeds | head_side.seeds) | (base_side.analysed ^ head_side.analysed)
        for fqn in self._differing(set(base.assets) | set(head.assets)):
            wanted.add(fqn)
            wanted |= self._readers.get(fqn, set())
        self._grow(wanted)

    def _differing(self, fqns: Iterable[str]) -> set[str]:
        """The assets whose readers may see a difference: everything but what only people read
        (descriptions, where things are written, the properties' checksum). A model whose only
        change is a test's severity or a column's description changes nothing its readers are
        inferred from, and nothing the diff says about them; what the impact walk reaches it
        still grows (:meth:`grow`)."""
        base, head = self.base.assets, self.head.assets
        return {f for f in fqns if base.get(f) != head.get(f) and _interface(base.get(f)) != _interface(head.get(f))}

    def _grow(self, wanted: set[str]) -> None:
        pending = wanted - self._cone
        grew = False
        while pending:
            new = {f for f in pending if any(f in s.analysed for s in self._sides)}
            if not new:
                break
            grew = True
            self._cone |= new
            for side in self._sides:
                side.run(new & side.analysed)
            pending = set()
            for fqn in self._differing(new):
                pending |= self._readers.get(fqn, set())
            pending -= self._cone
        if grew:
            for side in self._sides:
                side.finish()
            self.generation += 1

    def grow(self, fqn: str) -> int:
        """Infer, on both sides, the models of the cone that read ``fqn`` (before its readers are
        looked up); the generation after it."""
        if self._sides and fqn not in self._asked:
            self._asked.add(fqn)
            readers = self._readers.get(fqn)
            if readers:
                self._grow(readers)
        return self.generation

    def save(self) -> None:
        """Keep both snapshots as they now are for a warm run of the same change (which reads
        them whole and infers nothing)."""
        if self._sides and self._cache is not None and self._key is not None:
            self._cache.put(self._key, (encode_snapshot(self.base), encode_snapshot(self.head)))
            self._cache.flush()


def _interface(asset: Asset | None) -> Asset | None:
    """``asset`` without what only people read: its description and its columns', the lines
    things are written on, and the checksum of its SQL and properties (the SQL itself stays)."""
    if asset is None:
        return None
    meta = asset.meta
    if PROPERTIES_AT in meta:
        meta = {k: v for k, v in meta.items() if k != PROPERTIES_AT}
    columns = tuple(replace(c, description="", line=None) for c in asset.columns)
    return replace(asset, description="", line=None, checksum=None, meta=meta, columns=columns)


_SNAPSHOT_TAG = "tessera-snapshot"
_ASSET_FIELDS = tuple(f.name for f in fields(Asset))
_COLUMN_FIELDS = tuple(f.name for f in fields(Column))
_COLUMNS_AT = _ASSET_FIELDS.index("columns")


def encode_snapshot(snapshot: Snapshot) -> tuple[Any, ...]:
    """A snapshot as plain tuples: pickling ~20k frozen dataclasses costs ~0.8 s to load, plain
    tuples ~0.05 s, which is most of a warm run's budget."""
    assets = []
    for asset in snapshot.assets.values():
        row = [getattr(asset, name) for name in _ASSET_FIELDS]
        row[_COLUMNS_AT] = tuple(tuple(getattr(c, n) for n in _COLUMN_FIELDS) for c in asset.columns)
        assets.append(tuple(row))
    edges = tuple(
        (e.upstream, e.upstream_column, e.downstream, e.downstream_column, e.usage) for e in snapshot.edges
    )
    return (
        _SNAPSHOT_TAG,
        tuple(assets),
        tuple(snapshot.exposures.values()),
        tuple(snapshot.groups.values()),
        edges,
        tuple(snapshot.problems),
    )


def decode_snapshot(data: tuple[Any, ...]) -> Snapshot:
    """The snapshot :func:`encode_snapshot` stored (a new object each time: callers may change it)."""
    _tag, assets, exposures, groups, edges, problems = data
    snapshot = Snapshot()
    new = object.__new__
    for row in assets:
        columns = []
        for values in row[_COLUMNS_AT]:
            column = new(Column)
            column.__dict__.update(zip(_COLUMN_FIELDS, values, strict=True))
            columns.append(column)
        asset = new(Asset)
        asset.__dict__.update(zip(_ASSET_FIELDS, row, strict=True))
        asset.__dict__["columns"] = tuple(columns)
        snapshot.assets[asset.fqn] = asset
    snapshot.exposures = {e.name: e for e in exposures}
    snapshot.groups = {g.name: g for g in groups}
    snapshot.edges = [Edge(*e) for e in edges]
    snapshot.problems = list(problems)
    return snapshot


def _snapshot_key(
    source: FileSource, paths: list[str], config: Config, scope: set[str] | None, dialects: Mapping[str, Dialect]
) -> str | None:
    """The whole build's inputs by content (every file's blob id, the config, the scope), so a
    warm run of an unchanged commit is one cache read; None when a file has no content id."""
    ids = []
    for path in paths:
        blob = source.blob_id(path)
        if blob is None:
            return None
        ids.append((path, blob))
    return stable_hash(
        "snapshot", CACHE_FORMAT, ids, repr(config), sorted(scope) if scope is not None else None,
        sorted((path, d.name, d.source == DEFAULT.source) for path, d in dialects.items()),
    )


def _project_dialect(folder: str, dialects: Mapping[str, Dialect], config: Config) -> str:
    detected = dialects.get(folder)
    return detected.name if detected is not None else config.dbt.dialect or DEFAULT_DIALECT


def _asset_context(project: DbtProject) -> tuple[object, ...]:
    """What a model's asset depends on besides its own file, its properties and its rendering
    (see ``DbtProject.asset``)."""
    return (project.name, project.dialect, project.folder_configs, project.groups)


def _same_models(
    base: Mapping[str, DbtProject], head: Mapping[str, DbtProject], scope: set[str], cache: ParseCache
) -> set[tuple[str, str]]:
    """Models the change leaves as they were, though a file they are made from changed:

    - of a changed properties file, those whose own entry is the same on both sides (a file
      describing forty models where one column's description was mended changes one model);
    - of a project whose settings or macros changed, those whose rendering and asset are the
      same on both sides (a macro edit changes the models that call it, not every model).

    Never one whose unpinned ``ref`` moves to another version, one that reads a seed or source
    that differs (its types come from there), or one whose rendering fails (its problem is said
    on each side). Each changed model is inferred on both sides with its ancestors for their
    schemas; what reads a model left as it was still sees any change of its parents (the cone
    grows where assets differ)."""
    same: set[tuple[str, str]] = set()
    for folder, project in base.items():
        other = head.get(folder)
        if other is None:
            continue
        wide = any(_project_wide(p, project) or _project_wide(p, other) for p in scope)
        extras = _differing_extras(project, other)
        for fqn, model in project.models.items():
            twin = other.models.get(fqn)
            if (
                twin is None or model.path in scope or twin.path != model.path
                or project.latest.get(model.name) != other.latest.get(model.name)
                or any(p in extras for p in (*model.refs, *twin.refs))
            ):
                continue
            if not wide:
                if model.properties_path in scope and twin.properties == model.properties:
                    same.add((folder, fqn))
            elif twin == model:
                rendered, rendered_there = _render(project, fqn, cache), _render(other, fqn, cache)
                if (
                    rendered == rendered_there and not rendered.problems
                    and not any(p in extras for p in rendered.depends_on)
                    and project.asset(fqn, rendered) == other.asset(fqn, rendered_there)
                ):
                    same.add((folder, fqn))
    return same


def _differing_extras(base: DbtProject, head: DbtProject) -> set[str]:
    """The seeds and sources that differ between the sides (their column types too, which a
    ``column_types`` setting in ``dbt_project.yml`` or a properties file can change)."""
    differ: set[str] = set()
    for ours, theirs in ((base.seeds, head.seeds), (base.sources, head.sources)):
        differ |= {f for f in set(ours) | set(theirs) if ours.get(f) != theirs.get(f)}
    return differ


def _build_side(
    source: FileSource,
    paths: list[str],
    config: Config,
    scope: set[str] | None,
    cache: ParseCache,
    map_jobs: JobMap = serial_map,
    dialects: Mapping[str, Dialect] | None = None,
    *,
    lazy: bool,
    read: Mapping[str, DbtProject] | None = None,
    same: set[tuple[str, str]] = frozenset(),  # type: ignore[assignment]
    elsewhere: set[str] | None = None,
    twin: _Inference | None = None,
    shared: set[str] = frozenset(),  # type: ignore[assignment]
    extras: set[str] = frozenset(),  # type: ignore[assignment]
) -> tuple[Snapshot, _Inference | None]:
    """The snapshot; with ``lazy``, the change's cone only placed (see :meth:`_Inference.placeholders`),
    and the inference that fills it in when :class:`SnapshotPair` asks. ``read``: the projects,
    read already; ``same``: models left as they were though a file they are made from changed;
    ``elsewhere``: what the other side's projects define (None: not known); ``twin``: the other
    side, whose model assets of the projects ``shared`` names serve this one (see
    :attr:`_Inference.made`); ``extras``: seeds and sources that differ between the sides (their
    readers are in the change's cone, whatever file made them differ)."""
    snapshot = Snapshot()
    dialects = dialects or {}

    manifest_dir: str | None = None
    manifest_assets: list[Asset] = []
    raw_project: DbtProject | None = None
    nodes: dict[str, _Node] = {}
    changed: set[str] = set()
    projects = project_folders(paths, config)

    manifest_snapshot = _manifest(source, config, projects, snapshot, dialects)
    if manifest_snapshot is not None:
        manifest_dir, manifest_snap, raw_project = manifest_snapshot
        _merge(snapshot, manifest_snap)
        manifest_assets = list(manifest_snap.assets.values())
        manifest_changed = scope is not None and config.dbt.manifest in scope
        for asset in manifest_snap.assets.values():
            if asset.kind in ("model", "snapshot") and asset.sql and asset.enabled:
                nodes[asset.fqn] = _Node(asset.fqn, asset.depends_on, asset=asset)
            if scope is None or (asset.path in scope):
                changed.add(asset.fqn)
        if manifest_changed and not changed:
            changed.update(manifest_snap.assets)

    for project_dir in projects:
        if manifest_dir is not None and _same_folder(project_dir, manifest_dir):
            continue
        project = read[project_dir] if read is not None and project_dir in read else read_project(
            source, project_dir, dialect=_project_dialect(project_dir, dialects, config), cache=cache
        )
        snapshot.problems.extend(project.problems)
        whole = scope is None or any(_project_wide(p, project) for p in scope)
        for fqn, model in project.models.items():
            nodes[fqn] = _Node(fqn, model.refs, project=project)
            if (project_dir, fqn) in same:
                continue
            if whole or model.path in scope or model.properties_path in scope:  # type: ignore[operator]
                changed.add(fqn)
        for extra in (project.sources, project.seeds):
            for fqn, asset in extra.items():
                snapshot.assets.setdefault(fqn, asset)
                if scope is not None and (asset.path in scope or fqn in extras):
                    changed.add(fqn)
        snapshot.exposures.update(project.exposures)
        snapshot.groups.update(project.groups)

    inference = _Inference(
        snapshot, nodes, changed, scope is None, cache, manifest_assets, map_jobs, raw_project, elsewhere,
        twin.made if twin is not None else {}, shared,
    )
    if lazy:
        inference.placeholders()
    else:
        inference.run(inference.analysed)

    sql_files = _sql_files(paths, config, [manifest_dir, *projects] if manifest_dir else projects)
    if sql_files:
        sql_snapshot = _sql_snapshot(source, sql_files, config.sql.dialect or DEFAULT_DIALECT, cache)
        _merge(snapshot, sql_snapshot)
        inference.edges_after, inference.problems_after = list(sql_snapshot.edges), list(sql_snapshot.problems)

    if config.ignore:
        snapshot.assets = {
            fqn: a
            for fqn, a in snapshot.assets.items()
            if not (a.path and matches_any(a.path, config.ignore))
        }
        snapshot.exposures = {
            n: e for n, e in snapshot.exposures.items() if not (e.path and matches_any(e.path, config.ignore))
        }
        ignore = config.ignore  # the problems: inference.finish() filters them, in their final order
        inference.keep_problem = lambda problem: not matches_any(problem.path, ignore)
        inference.ignored = {f for f in inference.analysed if f not in snapshot.assets}
    inference.finish()
    return snapshot, inference if lazy else None


def _skipped(path: str) -> bool:
    return any(part in SKIPPED_FOLDERS for part in path.split("/")[:-1]) and not path.endswith(
        "manifest.json"
    )


def _project_file(project_dir: str) -> str:
    return "dbt_project.yml" if project_dir in ("", ".") else f"{project_dir}/dbt_project.yml"


def _same_folder(a: str, b: str) -> bool:
    return a.strip("/") in (b.strip("/"),) or (a in ("", ".") and b in ("", "."))


def _project_wide(path: str, project: DbtProject) -> bool:
    """A changed file that can change every model of the project (its settings or a macro)."""
    if path == _project_file(project.folder):
        return True
    return is_macro_path(path, project)


def _merge(into: Snapshot, other: Snapshot) -> None:
    for fqn, asset in other.assets.items():
        into.assets.setdefault(fqn, asset)
    into.exposures.update(other.exposures)
    into.groups.update(other.groups)
    into.edges.extend(other.edges)
    into.problems.extend(other.problems)


def _manifest(
    source: FileSource, config: Config, projects: list[str], snapshot: Snapshot, dialects: Mapping[str, Dialect]
) -> tuple[str, Snapshot, DbtProject] | None:
    """The configured manifest when present: (its project folder, its snapshot, its models as a
    project for rendering raw code)."""
    path = config.dbt.manifest
    if not path:
        return None
    text = source.read(path)
    if text is None:
        return None

    try:
        data = json.loads(text)
    except ValueError as error:
        snapshot.problems.append(ParseProblem(path, f"the dbt manifest is not valid JSON: {error}"))
        return None
    folder = (
        posixpath.dirname(posixpath.dirname(path))
        if posixpath.basename(posixpath.dirname(path)) == "target"
        else None
    )
    if folder is None:
        folder = projects[0] if len(projects) == 1 else ""
    # the project's detected dialect; else the manifest's own adapter_type decides
    detected = next(
        (d.name for p, d in dialects.items() if _same_folder(p, folder or ".") and d.source != DEFAULT.source), None
    )
    dialect = detected or config.dbt.dialect
    manifest = load_manifest(data, project_dir=folder or None, dialect=dialect)
    return (
        folder or ".",
        manifest,
        manifest_project(data, project_dir=folder or None, dialect=dialect),
    )


# --- inference in DAG order ------------------------------------------------------------------


_Made = tuple[str, "ModelFile", "Rendered | None", Asset]
"""An asset made from a model: its project's folder, the model, its rendering, the asset."""


class _Inference:
    """One side's models inferred in DAG order: all of the change's cone at once, or (for
    :class:`SnapshotPair`) a part of it first and more when asked.

    Whatever is asked for, and in whatever batches, each model is inferred from the same inputs
    as when the whole cone is inferred at once (its parents as a whole-cone run would have them
    at that point of its DAG order), and the snapshot's assets, edges and problems keep the order
    a whole-cone run gives them."""

    def __init__(
        self,
        snapshot: Snapshot,
        nodes: Mapping[str, _Node],
        changed: set[str],
        everything: bool,
        cache: ParseCache,
        manifest_assets: Sequence[Asset] = (),
        map_jobs: JobMap = serial_map,
        raw_project: DbtProject | None = None,
        elsewhere: set[str] | None = None,
        twins: Mapping[tuple[str, bool], _Made] | None = None,
        shared: set[str] = frozenset(),  # type: ignore[assignment]
    ) -> None:
        """``elsewhere``: what the other side of the change defines, when known: a parent missing
        on both sides (a package's model, a ref to nothing) changes nothing between them.
        ``twins``: the other side's :attr:`made` (as it grows), of which the assets of projects
        ``shared`` names (their settings are the same on both sides) serve this side."""
        self.snapshot, self.nodes, self.cache, self.map_jobs = snapshot, nodes, cache, map_jobs
        self.twins, self.shared = twins or {}, shared
        self.made: dict[tuple[str, bool], _Made] = {}
        """The assets made from each model (key: fqn, and whether it is the cheap one, without
        SQL): the head side of a change takes the base side's for a model whose file,
        properties and rendering are the same (most of them), rather than making it again."""
        self.manifest_assets, self.raw_project = manifest_assets, raw_project
        self.children: dict[str, list[str]] = {}
        for node in nodes.values():
            for parent in node.parents:
                self.children.setdefault(parent, []).append(node.fqn)
        known = set(nodes) | set(snapshot.assets)
        seeds = set(changed)
        if not everything:
            # a model whose parent vanished (deleted in this PR) must be analysed on both sides
            seeds |= {
                n.fqn for n in nodes.values()
                if any(p not in known and (elsewhere is None or p in elsewhere) for p in n.parents)
            }
        self.seeds = {s for s in seeds if s in nodes}

        def schema_declared(node: _Node) -> bool:
            return _contract_schema_known(node) or _declared_schema_known(node, cache)

        self.needed, self.analysed = _needed(nodes, self.children, seeds, everything, schema_declared)
        self.waves = _waves(nodes, self.needed)
        self.rank = {fqn: i for i, fqn in enumerate(f for wave in self.waves for f in wave)}
        self.schemas: dict[str, dict[str, str]] = {}
        """Output schemas of ancestors inferred only to read their children (not shown)."""

        # cheap assets first: a needed model may read a contracted parent that is not inferred
        for fqn, node in nodes.items():
            if fqn in self.analysed:
                continue
            if node.project is not None:
                model = node.project.models[fqn]
                rendered = _render(node.project, fqn, cache) if "config(" in model.raw_sql else None
                snapshot.assets[fqn] = self._asset(node.project, fqn, rendered, cheap=True)
            elif node.asset is not None:
                snapshot.assets.setdefault(fqn, node.asset)
        self.before: dict[str, Asset | None] = {fqn: snapshot.assets.get(fqn) for fqn in self.needed}
        """What each needed model was in the snapshot before any inference (what a model inferred
        before it in DAG order sees of it)."""
        self.edges_before = list(snapshot.edges)
        self.problems_before = list(snapshot.problems)
        self.edges_after: list[Edge] = []
        self.problems_after: list[ParseProblem] = []
        self.keep_problem: Callable[[ParseProblem], bool] = lambda _problem: True

        self.resolvers: dict[int, RelationResolver] = {}
        self.schema_ids: dict[str, str] = {}
        """A parent's output schema's hash, computed once: a wide parent read by many children was
        hashed again for each of them."""
        self.first_lines: dict[str, int] = {}
        self.dynamic: set[str] = set()
        """Models whose SQL asks the warehouse for columns (see ``Rendered.dynamic``)."""
        self.unrendered: set[str] = set()
        """Models whose Jinja could not be rendered: their YAML alone does not say what they build."""
        self.unset_vars: dict[str, tuple[str, ...]] = {}
        """Vars a model reads that nothing sets: named when its SQL then cannot be read."""
        self.ready: dict[str, tuple[Asset, RelationResolver]] = {}
        self.render_problems: dict[str, list[ParseProblem]] = {}
        self.infer_problems: dict[str, list[ParseProblem]] = {}
        self.inferred_edges: dict[str, tuple[Edge, ...]] = {}
        self.shown: set[str] = set()
        """Models of the cone inferred with their lineage (or that need no inference)."""
        self.read: set[str] = set()
        """Needed models whose output schema is known (inferred, or needing no inference)."""
        self.ignored: set[str] = set()
        """Models ``ignore:`` took out of the snapshot: inferring them later does not put them back."""

    # -- what a model reads

    def prepared(self, fqn: str) -> tuple[Asset, RelationResolver]:
        found = self.ready.get(fqn)
        if found is None:
            found = self.ready[fqn] = self._prepare(fqn)
        return found

    def _prepare(self, fqn: str) -> tuple[Asset, RelationResolver]:
        node, cache, resolvers = self.nodes[fqn], self.cache, self.resolvers
        if node.project is not None:
            rendered = _render(node.project, fqn, cache)
            self.render_problems[fqn] = list(rendered.problems)
            self.first_lines[fqn] = rendered.first_line
            if rendered.unset_vars:
                self.unset_vars[fqn] = rendered.unset_vars
            if rendered.dynamic:
                self.dynamic.add(fqn)
            if rendered.problems:
                self.unrendered.add(fqn)
            key = id(node.project)
            if key not in resolvers:
                resolvers[key] = relation_resolver(
                    [
                        *(_relation_asset(node.project, f) for f in node.project.models),
                        # rendered SQL names a source `source_name.table` (its fqn), not its relation
                        *(replace(a, relation=None) for a in node.project.sources.values()),
                        *node.project.seeds.values(),
                    ]
                )
            return self._asset(node.project, fqn, rendered, cheap=False), resolvers[key]
        assert node.asset is not None
        if 0 not in resolvers:
            resolver = relation_resolver(self.manifest_assets)
            if self.raw_project is not None:  # raw code rendered here names relations by fqn
                for model_fqn in self.raw_project.models:
                    resolver.keys.setdefault(self.raw_project._relation_name(model_fqn).lower(), model_fqn)
            resolvers[0] = resolver
        asset = node.asset
        if self.raw_project is not None and fqn in self.raw_project.models and needs_rendering(asset.sql):
            rendered = _render(self.raw_project, fqn, cache)
            self.render_problems[fqn] = list(rendered.problems)
            asset = replace(asset, sql=rendered.sql)
        return asset, resolvers[0]

    def _asset(self, project: DbtProject, fqn: str, rendered: Rendered | None, *, cheap: bool) -> Asset:
        """The model's asset (``cheap``: without its SQL), the other side's when that was made
        from the same file, properties and rendering (the same object: the render cache gives
        both sides one)."""
        model = project.models[fqn]
        twin = self.twins.get((fqn, cheap))
        if (
            twin is not None and twin[2] is rendered and twin[0] == project.folder and twin[0] in self.shared
            and twin[1] == model and line_of(twin[1].properties) == line_of(model.properties)
        ):  # (properties compare without their lines; the asset says where they are)
            asset = twin[3]
        else:
            asset = project.asset(fqn, rendered)
            if cheap:
                asset = replace(asset, sql=None)
        self.made[(fqn, cheap)] = (project.folder, model, rendered, asset)
        return asset

    def reads(self, fqn: str) -> tuple[str, ...]:
        """The models ``fqn`` reads: its refs and (once rendered) its asset's ``depends_on``."""
        node = self.nodes[fqn]
        if fqn not in self.ready:
            return node.parents
        return tuple(dict.fromkeys((*node.parents, *self.ready[fqn][0].depends_on)))

    def _parent_schema(self, fqn: str, asset: Asset) -> dict[str, dict[str, str]]:
        """``asset``'s parents' schemas as inferring the whole cone in DAG order gives them: a
        parent later in that order is read as it was before any inference."""
        own = self.rank[fqn]
        schema: dict[str, dict[str, str]] = {}
        for parent in asset.depends_on:
            later = parent in self.rank and self.rank[parent] >= own
            if parent in self.schemas and not later:
                schema[parent] = self.schemas[parent]
                continue
            upstream = self.before.get(parent) if later else self.snapshot.assets.get(parent)
            if upstream is not None and upstream.columns and upstream.columns_known:
                schema[parent] = {c.name: c.type for c in upstream.columns}
        return schema

    # -- inferring

    def placeholders(self) -> None:
        """Every model of the cone takes its place in the snapshot (the place inferring the whole
        cone gives it) with what needs no inference: its rendered asset and declared columns; a
        model without SQL is final already."""
        for wave in self.waves:
            later: list[tuple[str, Asset]] = []
            for fqn in wave:
                if fqn not in self.analysed:
                    continue
                asset, _resolver = self.prepared(fqn)
                if not asset.enabled or not asset.sql:
                    self.snapshot.assets[fqn] = (
                        replace(asset, columns_known=False) if fqn in self.unrendered else asset
                    )
                    self.shown.add(fqn)
                    self.read.add(fqn)
                else:
                    later.append((fqn, asset))
            for fqn, asset in later:
                self.snapshot.assets[fqn] = asset

    def run(self, wanted: Iterable[str]) -> None:
        """Infer ``wanted`` (models of the cone, shown with lineage) and, for their schemas only, the
        needed models they read, in DAG order; what ran already is not run again. A model of the
        cone read by ``wanted`` but not wanted itself is the same on both sides (nothing it reads
        differs): its schema is all they need of it."""
        shown = {f for f in wanted if f in self.analysed}
        todo: set[str] = set()
        stack = [f for f in wanted if f in self.needed]
        while stack:
            fqn = stack.pop()
            if fqn in todo or (fqn in self.shown if fqn in shown else fqn in self.read):
                continue
            todo.add(fqn)
            stack.extend(p for p in self.reads(fqn) if p in self.needed)
        if not todo:
            return
        snapshot, cache = self.snapshot, self.cache
        for wave in self.waves:
            jobs: list[tuple[str, Asset, str, InferenceJob]] = []
            for fqn in wave:
                if fqn not in todo:
                    continue
                self.read.add(fqn)
                if fqn in shown:
                    self.shown.add(fqn)
                asset, resolver = self.prepared(fqn)
                if not asset.enabled or not asset.sql:
                    if fqn in self.analysed and fqn not in self.ignored:
                        snapshot.assets[fqn] = replace(asset, columns_known=False) if fqn in self.unrendered else asset
                    continue
                schema = self._parent_schema(fqn, asset)
                if STAR_FUNCTION in asset.sql or UNION_FUNCTION in asset.sql:  # parents' columns, now known
                    asset = replace(asset, sql=_expanded(asset, schema, resolver, cache, self.schema_ids))
                key = _inference_key(asset, schema, self.schema_ids)
                lineage = fqn in shown
                job = (
                    asset.sql,
                    asset.dialect or DEFAULT_DIALECT,
                    schema,
                    fqn,
                    resolver.restricted(asset.depends_on),
                    lineage,
                )
                jobs.append((fqn, asset, key if lineage else key + _SCHEMA_ONLY, job))
            if jobs:
                self._infer(jobs)

    def _infer(self, jobs: list[tuple[str, Asset, str, InferenceJob]]) -> None:
        snapshot, cache, nodes = self.snapshot, self.cache, self.nodes
        infos: dict[str, Any] = {}
        misses = []
        for fqn, _asset, key, job in jobs:
            info = cache.get(key)
            if info is None and key.endswith(_SCHEMA_ONLY):
                # a full inference of the same content (the model is analysed on the other
                # side, or was in an earlier run) serves an ancestor as well
                info = cache.get(key[: -len(_SCHEMA_ONLY)])
            if info is None:
                misses.append((fqn, key, job))
            else:
                infos[fqn] = info
        for (fqn, key, _job), info in zip(
            misses, self.map_jobs(infer_one, [m[2] for m in misses]), strict=True
        ):
            cache.put(key, info)
            infos[fqn] = info
        for fqn, asset, key, _job in jobs:
            info = infos[fqn]
            inferred, inferred_known = info.columns, info.columns_known
            if fqn in self.dynamic:  # what the query shows is known; what the warehouse adds is not
                kept = [c for c in inferred if c.name.lower() != DYNAMIC_MARKER]
                inferred = tuple(replace(c, position=i) for i, c in enumerate(kept, start=1))
                inferred_known = False
            columns, known = merge_columns(asset.columns, inferred, inferred_known, asset.contract_enforced)
            if key.endswith(_SCHEMA_ONLY):
                node = nodes[fqn]
                if fqn in self.analysed and node.project is not None and node.project.models[fqn].unreadable:
                    known = False  # as when it is shown (below): what its readers read of it
                if known and columns:
                    self.schemas[fqn] = {c.name: c.type for c in columns}
                continue
            node = nodes[fqn]
            if node.project is not None:  # inferred columns: where the model's SQL produces them
                raw_sql = node.project.models[fqn].raw_sql
                columns = tuple(c if c.line else _with_line(c, _column_line(raw_sql, c.name)) for c in columns)
            if node.project is not None and node.project.models[fqn].unreadable:
                known = False  # the SQL could not be read: its YAML alone does not say what it builds
            extra = _undeclared(asset, info.columns, info.columns_known)
            if extra:  # the contract misses columns the query produces: dbt build fails
                asset = replace(asset, meta={**asset.meta, PRODUCED_EXTRA: extra})
            if fqn not in self.ignored:
                snapshot.assets[fqn] = replace(asset, columns=columns, columns_known=known)
            self.inferred_edges[fqn] = info.edges
            where = asset.path or asset.fqn
            self.infer_problems[fqn] = [
                ParseProblem(
                    where,
                    f"{fqn}: {problem}" + _unset_vars_hint(self.unset_vars.get(fqn, ())),
                    _problem_line(problem, self.first_lines.get(fqn, 0)),
                )
                for problem in info.problems
            ]

    def finish(self) -> None:
        """The snapshot's edges and problems in the order inferring the whole cone at once gives."""
        edges = list(self.edges_before)
        problems = list(self.problems_before)
        for wave in self.waves:
            for fqn in wave:
                problems.extend(self.render_problems.get(fqn, ()))
            for fqn in wave:
                if fqn in self.inferred_edges:
                    edges.extend(self.inferred_edges[fqn])
                    problems.extend(self.infer_problems[fqn])
        edges.extend(self.edges_after)
        problems.extend(self.problems_after)
        self.snapshot.edges = edges
        self.snapshot.problems = [p for p in problems if self.keep_problem(p)]


def _with_line(column: Column, line: int | None) -> Column:
    """``replace(column, line=line)`` without re-running the dataclass ``__init__`` (a wide model's
    every column goes through here: ``replace`` cost a tenth of a build)."""
    if line == column.line:
        return column
    copied = object.__new__(Column)
    copied.__dict__.update(column.__dict__, line=line)
    return copied


def _unset_vars_hint(names: tuple[str, ...]) -> str:
    """Why rendered SQL may be unreadable: vars dbt would be given with ``--vars``."""
    if not names:
        return ""
    listed = ", ".join(f"`{n}`" for n in names)
    return (f" (the model reads var {listed}, which dbt_project.yml does not set and which has no "
            "default: it rendered as nothing; set it under vars: to analyse this model)")


_SQL_LINE = re.compile(r"\bLine (\d+), Col")


def _problem_line(problem: str, first_line: int) -> int | None:
    """The file line of a sqlglot error (``Line 3, Col: 4``) when the rendered SQL kept the
    file's lines (see ``Rendered.first_line``); else None."""
    match = _SQL_LINE.search(problem)
    if match is None or first_line <= 0:
        return None
    return first_line + int(match.group(1)) - 1


_SCHEMA_ONLY = ":schema"
"""Suffix of the cache key of a schema-only inference (no edges, no expressions)."""


def infer_one(job: InferenceJob) -> Any:
    """One inference (module-level, so a worker process can be handed it by name)."""
    sql, dialect, schema, fqn, resolve, lineage = job
    return infer_query(sql, dialect=dialect, schema=schema, fqn=fqn, resolve=resolve, lineage=lineage)


def _waves(nodes: Mapping[str, _Node], needed: set[str]) -> list[list[str]]:
    """The needed models in waves: each wave's models only read models of earlier waves, so a
    wave can be inferred in parallel. Members of a cycle form a last wave of their own."""
    order = _topological(nodes, needed)
    level: dict[str, int] = {}
    waves: list[list[str]] = []
    for fqn in order:
        parents = [level[p] for p in set(nodes[fqn].parents) if p in level and p != fqn]
        depth = 1 + max(parents) if parents else 0
        level[fqn] = depth
        while len(waves) <= depth:
            waves.append([])
        waves[depth].append(fqn)
    return waves


def _needed(
    nodes: Mapping[str, _Node],
    children: Mapping[str, list[str]],
    seeds: set[str],
    everything: bool,
    schema_declared: Callable[[_Node], bool] | None = None,
) -> tuple[set[str], set[str]]:
    """(models to infer, models whose inference the snapshot shows).

    The second set is the change and everything downstream of it; the first adds the ancestors
    whose output schemas those read. Ancestors are inferred only for their schemas and shown as
    cheap assets, like every other unchanged model: whether a model is an ancestor depends on the
    side (a model that starts reading a parent makes it one in head only), and both sides of the
    diff must show an unchanged model the same way. Walking up stops at an ancestor whose cheap
    asset already is its output schema (``schema_declared``): neither it nor its parents are read."""
    schema_declared = schema_declared or _contract_schema_known
    if everything:
        return set(nodes), set(nodes)
    downstream: set[str] = set()
    stack = list(seeds)
    while stack:
        fqn = stack.pop()
        if fqn in downstream:
            continue
        downstream.add(fqn)
        stack.extend(children.get(fqn, ()))
    analysed = {f for f in downstream if f in nodes}
    needed = set(analysed)
    stack = [p for f in analysed for p in nodes[f].parents]
    while stack:
        fqn = stack.pop()
        node = nodes.get(fqn)
        if node is None or fqn in needed:
            continue
        if schema_declared(node):
            continue  # its declared columns are its schema: no need to read it or its parents
        needed.add(fqn)
        stack.extend(node.parents)
    return needed, analysed


def _contract_schema_known(node: _Node) -> bool:
    if node.asset is not None:
        return node.asset.contract_enforced and bool(node.asset.columns)
    assert node.project is not None
    model = node.project.models[node.fqn]
    config = node.project.model_config(node.fqn, None)
    contract = config.get("contract")
    enforced = bool(contract.get("enforced")) if isinstance(contract, Mapping) else False
    return enforced and "config(" not in model.raw_sql and bool(model.properties.get("columns"))


def _declared_schema_known(node: _Node, cache: ParseCache) -> bool:
    """Whether the model's YAML gives its output schema exactly as inferring it would.

    Declared types win over inferred ones, so when every column declares a ``data_type`` only the
    set and order of the names could still differ: they are checked against the names the query
    itself produces (a parse, no schemas; never when a star or an unnamed expression would need
    the parents). Then the cheap asset's columns are the schema its children read."""
    if node.asset is not None:
        asset: Asset | None = node.asset
        sql = node.asset.sql
        if sql and needs_rendering(sql):
            return False  # raw code: its text is Jinja, not the query
    else:
        assert node.project is not None
        model = node.project.models[node.fqn]
        declared = _as_mappings(model.properties.get("columns"))
        if not declared or not all(c.get("data_type") for c in declared):
            return False  # the common case: decided without rendering anything
        rendered = _render(node.project, node.fqn, cache)
        if rendered.problems or not rendered.sql:
            return False
        asset, sql = node.project.asset(node.fqn, rendered), rendered.sql
    if asset is None or not sql or not asset.enabled or not asset.columns or not asset.columns_known:
        return False
    if asset.kind != "model":
        return False  # a dbt snapshot's schema adds dbt's own columns to its query's
    if not all(c.declared_type for c in asset.columns):
        return False

    return output_names(sql, asset.dialect or DEFAULT_DIALECT) == tuple(c.name for c in asset.columns)


def _as_mappings(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _topological(nodes: Mapping[str, _Node], needed: set[str]) -> list[str]:
    """Parents before children (Kahn's algorithm); a cycle's members come last, in name order.

    Children are listed in name order: the order is the order of the snapshot's edges, and so of
    every walk over them (readers named in a required ack, paths in the comment); a set's order
    would change from process to process with the string hash."""
    indegree = {f: sum(1 for p in set(nodes[f].parents) if p in needed and p != f) for f in needed}
    children: dict[str, list[str]] = {}
    for f in sorted(needed):
        for p in set(nodes[f].parents):
            if p in needed and p != f:
                children.setdefault(p, []).append(f)
    ready = sorted(f for f, d in indegree.items() if d == 0)
    order: list[str] = []
    while ready:
        fqn = ready.pop()
        order.append(fqn)
        for child in children.get(fqn, ()):
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    if len(order) < len(needed):
        order.extend(sorted(needed - set(order)))
    return order


def _relation_asset(project: DbtProject, fqn: str) -> Asset:
    """A stand-in carrying just the rendered relation name (for the resolver)."""
    return Asset(fqn=fqn, kind="model", relation=project._relation_name(fqn))


def _render(project: DbtProject, fqn: str, cache: ParseCache) -> Rendered:
    model = project.models[fqn]
    key = stable_hash(
        "render", CACHE_FORMAT, model.blob_id or model.raw_sql, fqn, project.render_context_hash
    )
    rendered = cache.get(key)
    if not isinstance(rendered, Rendered):
        rendered = project.render(fqn)
        cache.put(key, rendered)
    return rendered


def _parent_schema(
    asset: Asset, snapshot: Snapshot, inferred: Mapping[str, dict[str, str]]
) -> dict[str, dict[str, str]]:
    schema: dict[str, dict[str, str]] = {}
    for parent in asset.depends_on:
        if parent in inferred:
            schema[parent] = inferred[parent]
            continue
        upstream = snapshot.assets.get(parent)
        if upstream is not None and upstream.columns and upstream.columns_known:
            schema[parent] = {c.name: c.type for c in upstream.columns}
    return schema


def _inference_key(asset: Asset, schema: Mapping[str, Mapping[str, str]], schema_ids: dict[str, str]) -> str:
    """The inference's inputs by content; ``schema_ids`` keeps each parent schema's hash (a
    parent's schema is final once a child reads it: children come in later waves)."""
    parents = []
    for parent, columns in sorted(schema.items()):
        digest = schema_ids.get(parent)
        if digest is None:
            digest = schema_ids[parent] = stable_hash(sorted(columns.items()))
        parents.append((parent, digest))
    return stable_hash(
        "infer",
        CACHE_FORMAT,
        asset.sql or "",
        asset.dialect or DEFAULT_DIALECT,
        asset.fqn,
        parents,
        list(asset.depends_on),
    )


def _expanded(
    asset: Asset,
    schema: Mapping[str, Mapping[str, str]],
    resolver: RelationResolver,
    cache: ParseCache,
    schema_ids: dict[str, str],
) -> str:
    """The model's SQL with its star macros expanded against its parents' columns, kept in the
    cache by the same inputs as an inference: the head side of a change expands the same SQL over
    the same parents again (a parse and a print of the model each time)."""
    assert asset.sql is not None
    key = _inference_key(asset, schema, schema_ids) + _STARS_EXPANDED
    found = cache.get(key)
    if isinstance(found, str):
        return found
    sql = expand_star_macros(
        asset.sql, dialect=asset.dialect or DEFAULT_DIALECT, schema=schema, resolve=resolver.restricted(asset.depends_on)
    )
    cache.put(key, sql)
    return sql


_STARS_EXPANDED = ":stars"
"""Suffix of the cache key of a model's SQL with its star macros expanded."""


def _undeclared(asset: Asset, inferred: tuple[Column, ...], inferred_known: bool) -> list[str]:
    """Names of the columns an enforced contract's query produces but its YAML does not declare."""
    if not asset.contract_enforced or not asset.columns or not inferred_known:
        return []
    declared = {c.key for c in asset.columns}
    return [c.name for c in inferred if c.key not in declared]


def merge_columns(
    declared: tuple[Column, ...], inferred: tuple[Column, ...], inferred_known: bool, enforced: bool
) -> tuple[tuple[Column, ...], bool]:
    """One column list from YAML and from the query.

    - an enforced contract: the declared columns are the schema (dbt fails the build otherwise);
      the query contributes each column's expression (and type when none is declared);
    - otherwise the query's columns, in its order, with declared types, descriptions, tests and
      meta laid over them; declared columns the query does not show are kept only when the query's
      columns are not fully known.
    """
    by_key = {c.key: c for c in inferred}
    if enforced and declared:
        merged = []
        for position, column in enumerate(declared):
            found = by_key.get(column.key)
            meta = column.meta
            if found is None and inferred_known and inferred:
                # the query does not produce a declared column: dbt fails the contract (diff says so)
                meta = {**column.meta, NOT_PRODUCED: True}
            elif found is not None and column.declared_type and found.type not in (UNKNOWN, column.type):
                meta = {**column.meta, PRODUCED_TYPE: found.type}  # the diff checks it fits the contract
            merged.append(
                replace(
                    column,
                    position=position + 1,
                    expression=found.expression if found is not None else column.expression,
                    type=column.type if column.declared_type or found is None else found.type,
                    meta=meta,
                )
            )
        return tuple(merged), True
    declared_by_key = {c.key: c for c in declared}
    merged = []
    for column in inferred:
        spec = declared_by_key.get(column.key)
        if spec is None:
            merged.append(column)
            continue
        merged.append(
            replace(
                column,
                type=spec.type if spec.declared_type else column.type,
                declared_type=spec.declared_type,
                nullable=spec.nullable if spec.nullable is not None else column.nullable,
                description=spec.description,
                constraints=spec.constraints,
                tags=spec.tags,
                meta=spec.meta,
                line=spec.line if spec.line is not None else column.line,
            )
        )
    if not inferred_known:
        seen = {c.key for c in merged}
        for column in declared:
            if column.key not in seen:
                merged.append(replace(column, position=len(merged) + 1))
    if not merged:
        return declared, False
    return tuple(merged), inferred_known


# --- SQL files ------------------------------------------------------------------------------------


def _sql_files(paths: list[str], config: Config, dbt_folders: list[str]) -> list[str]:
    """``sql.paths`` globs, or every ``.sql`` file outside dbt projects, minus ``ignore``."""
    folders = [f.strip("/") for f in dbt_folders if f is not None]
    out = []
    for path in paths:
        if not path.endswith(".sql"):
            continue
        if config.sql.paths:
            if not matches_any(path, config.sql.paths):
                continue
        elif any(f in ("", ".") or path.startswith(f"{f}/") for f in folders):
            continue
        if config.ignore and matches_any(path, config.ignore):
            continue
        out.append(path)
    return sorted(out)


def _sql_snapshot(source: FileSource, paths: list[str], dialect: str, cache: ParseCache) -> Snapshot:
    """``rules.sql_schema`` over the SQL files in path order, cached by their contents."""
    ids = [(p, source.blob_id(p)) for p in paths]
    key = stable_hash("sql", CACHE_FORMAT, dialect, ids) if all(b for _, b in ids) else None
    if key is not None:
        cached = cache.get(key)
        if isinstance(cached, Snapshot):
            return cached
    files = [(p, source.read(p) or "") for p in paths]
    snapshot = build_sql_snapshot(files, dialect=dialect)
    if key is not None:
        cache.put(key, snapshot)
    return snapshot


__all__ = [
    "DEFAULT_DIALECT",
    "ParseCache",
    "RelationResolver",
    "SnapshotPair",
    "build_pair",
    "build_snapshot",
    "decode_snapshot",
    "encode_snapshot",
    "merge_columns",
    "relation_resolver",
]
