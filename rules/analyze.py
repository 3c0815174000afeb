"""One analysis of a change: the same answer for a pull request and for ``tessera check``.

Both revisions are built (scoped to the changed paths, so a 20-model change in a 1,000-model
project stays fast), diffed, followed to their consumers, and given migration suggestions. The
status is ``needs_ack`` exactly when some team must acknowledge. Problems with the configuration
or with changed files become ``errors`` the reader sees; they never stop the analysis.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection, Iterable, Mapping, Sequence

from rules import build, diff, impact, migrations, observed, owners
from rules.build import JobMap, ParseCache
from rules.dbt_project import SKIPPED_FOLDERS, find_projects
from rules.dialect import detect_projects, detection_paths, project_folders
from rules.model import (
    UNKNOWN_READERS,
    Analysis,
    AnalysisError,
    Change,
    Config,
    Coverage,
    Detected,
    Impact,
    Project,
    Registration,
    Snapshot,
)
from rules.sources import CODEOWNERS_PATHS, FileSource, matches_any

CONFIG_PATH = ".tessera.yml"
"""The configuration file; a pull request is judged by the base revision's copy."""


SCHEMA_SUFFIXES = (".sql", ".yml", ".yaml", ".json", ".csv", ".py", ".jinja", ".j2")
"""What SQL, dbt projects (models, properties, seeds, Python models, macros) and manifests are
made of. A change touching none of these cannot change a schema."""


def may_change_schemas(path: str, config: Config) -> bool:
    """Whether a changed file can change any asset's schema (the fast path for the other 90%)."""
    if path.lower().endswith(SCHEMA_SUFFIXES):
        return True
    return matches_any(path, config.sql.paths) or path == (config.dbt.manifest or "")


def read_codeowners(source: FileSource) -> str | None:
    """The CODEOWNERS file GitHub would use at this revision, if any."""
    for path in CODEOWNERS_PATHS:
        text = source.read(path)
        if text is not None:
            return text
    return None


def _problem_errors(snapshot: Snapshot, changed_paths: Collection[str] | None) -> list[AnalysisError]:
    changed = None if changed_paths is None else set(changed_paths)
    errors: list[AnalysisError] = []
    seen: set[tuple[str, str]] = set()
    for problem in snapshot.problems:
        if changed is not None and problem.path not in changed:
            continue
        message = f"line {problem.line}: {problem.message}" if problem.line else problem.message
        if (problem.path, message) not in seen:
            seen.add((problem.path, message))
            errors.append(AnalysisError(problem.path, message))
    return errors


def _unowned_consumers(
    impacts: Sequence[Impact],
    changes: Sequence[Change],
    base: Snapshot,
    head: Snapshot,
    codeowners: str | None,
    config: Config,
    observed_notes: Mapping[str, str | None] | None = None,
) -> list[AnalysisError]:
    """Consumers a breaking change reaches that have no owner at all: held for the fallback (or,
    with ``on_unowned: warn``, nobody could be asked).

    Said out loud so an admin gives the consumer an owner (or maps an observed reader:
    ``observed_notes`` says how, or nothing for a stale one).
    """
    breaking = {(c.rule, c.asset) for c in changes if c.severity == "breaking"}
    rules = owners.parse_codeowners(codeowners)
    errors: list[AnalysisError] = []
    seen: set[str] = set()
    notes = observed_notes or {}
    for row in impacts:
        if row.team is not None or row.consumer in seen or row.consumer_type == UNKNOWN_READERS:
            continue
        if not any((rule, row.asset) in breaking for rule in row.rules):
            continue
        seen.add(row.consumer)
        if row.consumer_type == "query" and row.consumer in notes:
            note = notes[row.consumer]
            if note:
                errors.append(AnalysisError(
                    CONFIG_PATH, f"{row.consumer} reads {row.asset}, which has a breaking change, {note}"))
            continue
        snapshot = head if row.consumer in head.exposures or row.consumer in head.assets else base
        thing = snapshot.exposures.get(row.consumer) or snapshot.assets.get(row.consumer)
        owner = owners.raw_owner(thing, snapshot, rules) if thing is not None else None
        who = f"its owner {owner!r} names no team or person" if owner else "it has no owner"
        outcome = (
            "nobody was asked to acknowledge for it (on_unowned: warn)"
            if config.on_unowned == "warn"
            else "it is held for the fallback (fallback: in .tessera.yml, else CODEOWNERS, else the maintainers)"
        )
        errors.append(
            AnalysisError(
                (thing.path if thing is not None else None) or CONFIG_PATH,
                f"{row.consumer_type} {row.consumer} reads {row.asset}, which has a breaking change, but {who}:"
                f" {outcome}",
            )
        )
    return errors


READ_SUFFIXES = (".sql", ".yml", ".yaml")
"""What the engine reads inside a dbt project (models, macros, snapshots, properties)."""


def likely_reads(paths: Iterable[str], config: Config, *, config_path: str = CONFIG_PATH) -> list[str]:
    """The files the engine will read at a commit, by the same rules it finds them: dbt
    projects' SQL and YAML, ``sql.paths`` (or every ``.sql`` outside dbt projects), a configured
    manifest, CODEOWNERS. Sources fetch these ahead in one go (a batch of blobs from GitHub, one
    ``git cat-file`` for ``tessera check``) instead of one round trip per file."""
    paths = list(paths)
    skipped = {*SKIPPED_FOLDERS, ".git"}
    detection = set(detection_paths(paths, config))
    projects = [p.strip("/") for p in (config.dbt.projects or find_projects(paths))]
    wanted: list[str] = []
    for path in paths:
        if any(part in skipped for part in path.split("/")[:-1]):
            continue
        if config.ignore and matches_any(path, config.ignore):
            continue
        in_project = any(p in ("", ".") or path.startswith(p + "/") for p in projects)
        if path in (config_path, *CODEOWNERS_PATHS) or path == config.dbt.manifest or path in detection:
            wanted.append(path)
        elif in_project and path.endswith(READ_SUFFIXES):
            wanted.append(path)
        elif path.endswith(".sql") and (matches_any(path, config.sql.paths) if config.sql.paths else not in_project):
            wanted.append(path)
    return wanted


def analyze(
    base: FileSource,
    head: FileSource,
    *,
    base_rev: str,
    head_rev: str,
    config: Config,
    changed_paths: Collection[str] | None = None,
    registrations: Sequence[Registration] = (),
    codeowners: str | None = None,
    cache: ParseCache | None = None,
    today: datetime.date,
    window_days: int = 30,
    map_jobs: JobMap | None = None,
    history: owners.FileHistory | None = None,
    coverage: Sequence[Coverage] = (),
) -> Analysis:
    """Analyse the change from ``base`` to ``head``.

    ``changed_paths`` (from the PR's file list or ``git diff``) scopes the work; None analyses
    everything. ``codeowners`` defaults to the base revision's CODEOWNERS, as GitHub does.
    ``map_jobs`` runs each wave of inferences (``rules.build.JobMap``; default: one by one, here).
    ``history`` (who last changed each file) names owners for reading models that declare none.
    ``coverage``: the query logs discovery reads; fresh ones can show nobody reads a relation.
    """
    config_errors = [AnalysisError(CONFIG_PATH, problem) for problem in config.problems]
    if changed_paths is not None and not any(may_change_schemas(p, config) for p in changed_paths):
        # docs, application code, CI files: nothing a schema is made of, so nothing to read
        return Analysis(base=base_rev, head=head_rev, status="clear", errors=tuple(config_errors))
    scope = None if changed_paths is None else set(changed_paths)
    if cache is None:  # one cache for both sides all the same: head re-infers only what changed
        cache = build.ParseCache()
    projects = dbt_projects(base, head, config)
    run_jobs = map_jobs or build.serial_map
    pair: build.SnapshotPair | None = None
    if scope is None:
        base_snapshot = build.build_snapshot(base, config, cache=cache, projects=projects, map_jobs=run_jobs)
        head_snapshot = build.build_snapshot(head, config, cache=cache, projects=projects, map_jobs=run_jobs)
    else:
        pair = build.build_pair(base, head, config, scope=scope, cache=cache, projects=projects, map_jobs=run_jobs)
        base_snapshot, head_snapshot = pair.base, pair.head
    changes = diff.diff_snapshots(
        base_snapshot, head_snapshot, config, changed_paths=changed_paths, cache=cache
    )
    if codeowners is None:
        codeowners = read_codeowners(base)
    registrations = observed.prepare(
        registrations,
        config,
        today=today,
        relations=build.relation_resolver([*base_snapshot.assets.values(), *head_snapshot.assets.values()]).keys,
    )
    found = impact.walk_impact(
        changes, base_snapshot, head_snapshot, config, registrations=registrations, codeowners=codeowners,
        history=history, coverage=observed.fresh_coverage(coverage, config, today=today),
        grow=pair.grow if pair is not None else None,
    )
    if pair is not None:
        pair.save()
    impacts, required = list(found.impacts), list(found.required)
    errors = list(config_errors)
    try:
        suggestions = migrations.suggest(
            changes, base_snapshot, head_snapshot, today=today, window_days=window_days
        )
    except Exception as error:  # noqa: BLE001 - advice must never cost the analysis
        suggestions = []
        errors.append(AnalysisError("", f"migration suggestions failed: {error}"))
    errors += _problem_errors(head_snapshot, changed_paths)
    errors += _unowned_consumers(
        impacts, changes, base_snapshot, head_snapshot, codeowners, config, observed.unowned_notes(registrations)
    )
    return Analysis(
        base=base_rev,
        head=head_rev,
        status="needs_ack" if required else "clear",
        changes=tuple(changes),
        impacts=tuple(impacts),
        required_acks=tuple(required),
        unread=found.unread,
        migrations=tuple(suggestions),
        errors=tuple(errors),
        projects=projects,
        detected=None if base.blob_id(CONFIG_PATH) is not None else _detected(head_snapshot, codeowners),
    )


def dbt_projects(base: FileSource, head: FileSource, config: Config) -> tuple[Project, ...]:
    """The dbt projects of both sides, each read in one dialect on both sides: the one detected
    on the base side, like the configuration (the PR branch is not trusted to say how it is read,
    and a dialect that changed would show every model as changed); a project the change adds is
    detected on the head side."""
    in_base = project_folders(base.paths(), config)
    added = [p for p in project_folders(head.paths(), config) if p not in in_base]
    found = detect_projects(base, config, in_base) + detect_projects(head, config, added)
    return tuple(sorted(found, key=lambda p: p.path))


def _detected(snapshot: Snapshot, codeowners: str | None) -> Detected:
    """Where owners came from, for a repository without ``.tessera.yml``."""
    sources: list[str] = []
    if any(e.owner for e in snapshot.exposures.values()):
        sources.append("exposures")
    if any(g.owner for g in snapshot.groups.values()):
        sources.append("groups")
    if any(_meta_owner(a.meta) for a in snapshot.assets.values()):
        sources.append("meta.owner")
    if codeowners:
        sources.append("CODEOWNERS")
    return Detected(owner_sources=tuple(sources))


def _meta_owner(meta: Mapping[str, object]) -> bool:
    tessera = meta.get("tessera")
    return bool(meta.get("owner")) or (isinstance(tessera, Mapping) and bool(tessera.get("owner")))
