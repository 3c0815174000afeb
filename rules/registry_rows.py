"""A repository's snapshot as registry rows, and the reads it makes of other repositories' assets.

Pure (no store, no GitHub): :mod:`app.registry_sync` fetches a repository or takes a dbt manifest,
builds the snapshot, calls these and writes what they return. Owners are resolved the engine's way
(:mod:`rules.owners`) against the repository's ``.tessera.yml`` teams plus the registry's teams (a
team's name matches a dbt group owner's name). SQL in one repository that reads an asset it does
not define — a view over another repository's table, a query file, a dbt source — becomes a
registration (source ``sql:<repo>/<path>``) of the reading team, so a pull request in the
producing repository finds that consumer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import sqlglot
from sqlglot import exp

from rules.dbt_project import find_projects
from rules.model import Asset, Config, Exposure, Registration, Snapshot, TeamSpec, column_key
from rules.owners import (
    CodeOwnersRule,
    TeamRef,
    codeowners_for,
    match_team,
    owner_candidates,
    parse_codeowners,
    raw_owner,
    resolve_owner,
)
from rules.sources import FileSource

MAX_QUERY_FILES = 2000
MAX_QUERY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class AssetRow:
    """One asset as synced: what the registry stores of a :class:`rules.model.Asset`."""

    fqn: str
    kind: str
    path: str | None = None
    owner_team: str | None = None
    owner_raw: str | None = None
    github_team: str | None = None
    compatibility: str | None = None
    materialized: str | None = None
    description: str = ""
    columns_known: bool = True
    relation: str | None = None
    columns: tuple[tuple[str, str, bool | None, str], ...] = ()
    """(name, type, nullable, description), in output order."""


@dataclass(frozen=True)
class ExposureRow:
    name: str
    type: str | None = None
    url: str | None = None
    path: str | None = None
    owner_team: str | None = None
    owner_raw: str | None = None
    depends_on: tuple[str, ...] = ()
    columns: Mapping[str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class EdgeRow:
    upstream: str
    upstream_column: str | None
    downstream: str
    downstream_column: str | None
    usage: str


@dataclass
class Rows:
    """What one repository's sync writes to the registry, and the problems met on the way."""

    assets: list[AssetRow] = field(default_factory=list)
    exposures: list[ExposureRow] = field(default_factory=list)
    edges: list[EdgeRow] = field(default_factory=list)
    registrations: list[Registration] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def with_registry_teams(config: Config, teams: Mapping[str, tuple[str, str | None]]) -> Config:
    """The repository's teams plus the registry's (slug → (name, GitHub team)); the file wins."""
    merged = dict(config.teams)
    for slug, (name, github) in teams.items():
        if slug not in merged:
            merged[slug] = TeamSpec(slug=slug, github=github, names=(name,) if name else ())
    return replace(config, teams=merged)


def snapshot_rows(snapshot: Snapshot, config: Config, *, codeowners: str | None = None) -> Rows:
    """The registry rows of one repository's snapshot: owners resolved, edges column-level where known."""
    rules = parse_codeowners(codeowners)
    rows = Rows()
    resolved: dict[tuple[str, ...], TeamRef | None] = {}

    def owner_of(thing: Asset | Exposure) -> TeamRef | None:
        """``resolve_owner``, once per distinct list of candidates (thousands of models share a few)."""
        candidates = tuple(owner_candidates(thing, snapshot, rules))
        if candidates not in resolved:
            resolved[candidates] = next(
                (team for team in (match_team(raw, config) for raw in candidates) if team is not None), None
            )
        return resolved[candidates]

    for asset in snapshot.assets.values():
        if not asset.enabled:
            continue
        team = owner_of(asset)
        compat = asset.compatibility or config.compatibility
        rows.assets.append(
            AssetRow(
                fqn=asset.fqn,
                kind=asset.kind,
                path=asset.path,
                owner_team=team.slug if team else None,
                owner_raw=raw_owner(asset, snapshot, rules),
                github_team=team.github_team if team else None,
                compatibility=compat,
                materialized=asset.materialized,
                description=asset.description[:2000],
                columns_known=asset.columns_known,
                relation=asset.relation,
                columns=tuple((c.name, c.type, c.nullable, c.description[:1000]) for c in asset.columns),
            )
        )
    linked: set[tuple[str, str]] = set()
    for edge in snapshot.edges:
        rows.edges.append(EdgeRow(edge.upstream, edge.upstream_column, edge.downstream, edge.downstream_column, edge.usage))
        linked.add((edge.upstream, edge.downstream))
    for asset in snapshot.assets.values():
        for parent in asset.depends_on:
            if (parent, asset.fqn) not in linked:
                rows.edges.append(EdgeRow(parent, None, asset.fqn, None, "unknown"))
    for exposure in snapshot.exposures.values():
        team = owner_of(exposure)
        rows.exposures.append(
            ExposureRow(
                name=exposure.name,
                type=exposure.type,
                url=exposure.url,
                path=exposure.path,
                owner_team=team.slug if team else None,
                owner_raw=raw_owner(exposure, snapshot, rules),
                depends_on=tuple(exposure.depends_on),
                columns={k: tuple(v) for k, v in exposure.columns.items()},
            )
        )
    rows.problems.extend(f"{p.path}: {p.message}" for p in snapshot.problems[:200])
    return rows


def external_reads(snapshot: Snapshot, config: Config, repo: str, *, codeowners: str | None = None) -> tuple[list[Registration], list[str]]:
    """Registrations implied by this repository's SQL reading assets it does not define itself.

    An upstream counts as another repository's when the snapshot has no asset of that name or only
    a dbt ``source`` (a declaration of someone else's table). The reading team is the owner of the
    reading asset.
    """
    rules = parse_codeowners(codeowners)
    defined = {fqn for fqn, a in snapshot.assets.items() if a.kind != "source"}
    reads: dict[tuple[str, str, str], set[str] | None] = {}
    problems: list[str] = []
    owners: dict[str, str | None] = {}
    for edge in snapshot.edges:
        if edge.upstream in defined or edge.downstream not in snapshot.assets:
            continue
        reader = snapshot.assets[edge.downstream]
        if edge.downstream not in owners:
            team = resolve_owner(reader, snapshot, config, codeowners=rules)
            owners[edge.downstream] = team.slug if team else None
        slug = owners[edge.downstream]
        if slug is None:
            problem = f"{reader.path or reader.fqn}: reads {edge.upstream} but has no owning team"
            if problem not in problems:
                problems.append(problem)
            continue
        key = (slug, edge.upstream, reader.path or reader.fqn)
        current = reads.get(key, set())
        if current is None or edge.upstream_column is None:
            reads[key] = None
        else:
            current.add(edge.upstream_column)
            reads[key] = current
    _add_ref_reads(snapshot, config, rules, defined, reads)
    found = [
        Registration(team=slug, asset=upstream, columns=tuple(sorted(cols or ())),
                     note=f"read by {path}", source=f"sql:{repo}/{path}")
        for (slug, upstream, path), cols in sorted(reads.items())
    ]
    return found, problems


def _add_ref_reads(
    snapshot: Snapshot, config: Config, rules: tuple[CodeOwnersRule, ...], defined: set[str],
    reads: dict[tuple[str, str, str], set[str] | None],
) -> None:
    """Assets that depend on another repository's asset with no column edge to say what they read:
    a read of every column, by the reading asset's team."""
    seen = {(upstream, path) for _, upstream, path in reads}
    for asset in snapshot.assets.values():
        for parent in asset.depends_on:
            if parent in defined or (parent, asset.path or asset.fqn) in seen:
                continue
            if parent not in snapshot.assets:
                continue  # a model's ref to nothing: the engine reports it, not a cross-repository read
            team = resolve_owner(asset, snapshot, config, codeowners=rules)
            if team is not None:
                reads[(team.slug, parent, asset.path or asset.fqn)] = None


def query_reads(text: str, dialect: str) -> dict[str, set[str] | None]:
    """Tables (``schema.name``) a plain SELECT file reads and the columns it uses (None: all/unknown)."""
    try:
        statements = sqlglot.parse(text, read=dialect)
    except Exception:  # noqa: BLE001 - an unreadable query file is skipped, never fatal
        return {}
    out: dict[str, set[str] | None] = {}
    for statement in statements:
        if isinstance(statement, exp.Query):
            _statement_reads(statement, out)
    return out


def _statement_reads(statement: exp.Query, out: dict[str, set[str] | None]) -> None:
    """Add one query's tables and columns to ``out`` (None: every column may be read)."""
    tables = _query_tables(statement)
    for _alias, fqn in tables:
        out.setdefault(fqn, set())
    aliases = dict(tables)
    if not aliases:
        return
    if _selects_star(statement):
        for fqn in aliases.values():
            out[fqn] = None
        return
    single = next(iter(set(aliases.values()))) if len(set(aliases.values())) == 1 else None
    for column in statement.find_all(exp.Column):
        qualifier = column.table.lower()
        fqn = aliases.get(qualifier) if qualifier else single
        if fqn is None:
            if not qualifier:  # unqualified over several tables: any of them may be read
                for name in aliases.values():
                    out[name] = None
            continue
        cols = out.get(fqn)
        if cols is not None:
            cols.add(column.name)


def _query_tables(statement: exp.Query) -> list[tuple[str, str]]:
    """(alias or name, qualified table) of every schema-qualified table the query reads (not its CTEs)."""
    ctes = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
    tables: list[tuple[str, str]] = []
    for table in statement.find_all(exp.Table):
        if not table.db or table.name.lower() in ctes:
            continue
        parts = [p for p in (table.catalog, table.db, table.name) if p]
        tables.append(((table.alias_or_name or table.name).lower(), ".".join(parts).lower()))
    return tables


def _selects_star(statement: exp.Expression) -> bool:
    """``SELECT *`` or ``t.*`` in a projection (``count(*)`` reads no column)."""
    for select in statement.find_all(exp.Select):
        for projection in select.expressions:
            if isinstance(projection, exp.Star) or (isinstance(projection, exp.Column) and projection.is_star):
                return True
    return False


def query_registrations(
    source: FileSource, snapshot: Snapshot, config: Config, repo: str, *, codeowners: str | None = None
) -> tuple[list[Registration], list[str]]:
    """Registrations from plain query files (``.sql`` that define no asset, outside dbt projects)."""
    paths = [p for p in source.paths() if p.endswith(".sql")]
    projects = [p for p in find_projects(list(source.paths())) if p not in ("", ".")]
    defining = {a.path for a in snapshot.assets.values() if a.path}
    rules = parse_codeowners(codeowners)
    dialect = config.sql.dialect or "postgres"
    defined = {fqn for fqn, a in snapshot.assets.items() if a.kind != "source"}
    found: list[Registration] = []
    problems: list[str] = []
    for path in paths[:MAX_QUERY_FILES]:
        if path in defining or any(path.startswith(p.rstrip("/") + "/") for p in projects):
            continue
        text = source.read(path)
        if not text or len(text) > MAX_QUERY_BYTES:
            continue
        reads = {fqn: cols for fqn, cols in query_reads(text, dialect).items() if fqn not in defined}
        if not reads:
            continue
        team = _file_team(path, config, rules)
        if team is None:
            problems.append(f"{path}: reads {', '.join(sorted(reads))} but no team owns the file (CODEOWNERS)")
            continue
        for fqn, cols in sorted(reads.items()):
            found.append(Registration(team=team, asset=fqn, columns=tuple(sorted({column_key(c) for c in cols or ()})),
                                      note=f"query {path}", source=f"sql:{repo}/{path}"))
    return found, problems


def _file_team(path: str, config: Config, rules: tuple[CodeOwnersRule, ...]) -> str | None:
    """The team owning a query file: its CODEOWNERS entry, or the only team there is."""
    for raw in codeowners_for(path, rules):
        team = match_team(raw, config)
        if team is not None:
            return team.slug
    if len(config.teams) == 1:
        return next(iter(config.teams))
    return None


def dedupe(found: Iterable[Registration]) -> list[Registration]:
    """One registration per (team, asset, source); columns merged, or all columns when either says so."""
    merged: dict[tuple[str, str, str], Registration] = {}
    for reg in found:
        key = (reg.team, reg.asset, reg.source)
        seen = merged.get(key)
        if seen is None:
            merged[key] = reg
        elif seen.columns and reg.columns:
            merged[key] = replace(seen, columns=tuple(sorted(set(seen.columns) | set(reg.columns))))
        else:
            merged[key] = replace(seen, columns=())
    return list(merged.values())
