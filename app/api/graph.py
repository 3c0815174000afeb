"""The dependency graph in memory, for impact queries that must answer in milliseconds.

Built from the store's edges, asset owners, exposures and registrations in one read (off the event
loop), and rebuilt only when the store's ``graph_version`` moves (every sync, every registration
change bumps it), so a 5,000-model graph is read once, not per request. The walk is the engine's
own (:class:`rules.lineage.LineageIndex`), the one the impact of a pull request follows: column by
column and transitively, a column used in a join, filter or grouping, or read through ``SELECT *``,
making every column of the reader affected.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from app.store import registry as reg_sql
from rules.lineage import ALL, LineageIndex
from rules.model import Edge, column_key


@dataclass
class GraphIndex:
    version: int
    lineage: LineageIndex = field(default_factory=lambda: LineageIndex(()))
    owners: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    exposures: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    registrations: dict[str, list[Registration]] = field(default_factory=dict)
    teams: dict[str, str | None] = field(default_factory=dict)
    cache: dict[tuple[str, str | None], dict[str, Any]] = field(default_factory=dict)

    def knows(self, fqn: str) -> bool:
        return (
            fqn in self.owners or self.lineage.has_readers(fqn) or fqn in self.exposures
            or fqn in self.registrations
        )


@dataclass(frozen=True)
class Registration:
    id: int | None
    team: str
    columns: tuple[str, ...]
    source: str
    note: str


def build_index(db: Any) -> GraphIndex:
    """Everything an impact query reads, from one consistent snapshot of the store."""
    index = GraphIndex(version=reg_sql.graph_version(db))
    index.lineage = LineageIndex(
        Edge(e.upstream, e.upstream_column, e.downstream, e.downstream_column, e.usage)
        for e in reg_sql.all_edges(db)
    )
    index.owners = reg_sql.asset_owners(db)
    for exposure in reg_sql.all_exposures(db):
        for fqn in exposure["depends_on"]:
            index.exposures.setdefault(fqn, []).append(exposure)
    for asset, reg_id, team, columns, source, note in reg_sql.registration_rows(db):
        index.registrations.setdefault(asset, []).append(Registration(reg_id, team, columns, source, note))
    index.teams = reg_sql.github_teams(db)
    return index


class Graph:
    """The process's current :class:`GraphIndex`, rebuilt when the store's graph version moves."""

    def __init__(self) -> None:
        self._index: GraphIndex | None = None
        self._lock = asyncio.Lock()
        self.builds = 0

    async def current(self, store: Any) -> GraphIndex:
        version = await store.read(reg_sql.graph_version)
        index = self._index
        if index is not None and index.version == version:
            return index
        async with self._lock:
            if self._index is None or self._index.version != version:
                self._index = await store.read(build_index)
                self.builds += 1
            return self._index


def impact(index: GraphIndex, fqn: str, column: str | None) -> dict[str, Any]:
    """Downstream assets (with the columns reached and the path), exposures, registrations and the
    teams they belong to, of ``fqn`` (or of one of its columns). Cached per graph version."""
    key = (fqn, column_key(column) if column else None)
    cached = index.cache.get(key)
    if cached is not None:
        return cached
    start = frozenset({column_key(column)}) if column else frozenset({ALL})
    reached = index.lineage.walk(fqn, start)
    producer = index.owners.get(fqn, (None, None))[0]
    assets: list[dict[str, Any]] = []
    teams: dict[str, dict[str, Any]] = {}

    def team_entry(slug: str | None, github: str | None, via: str) -> None:
        if not slug or slug == producer:
            return
        entry = teams.setdefault(slug, {"team": slug, "github_team": github or index.teams.get(slug), "via": []})
        if via not in entry["via"] and len(entry["via"]) < 50:
            entry["via"].append(via)

    exposures: list[dict[str, Any]] = []
    registrations: list[dict[str, Any]] = []
    for name, reach in reached.items():
        columns, path = reach.columns, reach.path
        if name != fqn:
            team, github = index.owners.get(name, (None, None))
            assets.append(
                {
                    "asset": name,
                    "team": team,
                    "columns": sorted(columns),
                    "depth": len(path) - 1,
                    "path": list(path),
                }
            )
            team_entry(team, github, name)
        for exposure in index.exposures.get(name, ()):
            read = exposure["columns"].get(name)
            if read and ALL not in columns and not ({column_key(c) for c in read} & columns):
                continue
            exposures.append(
                {"name": exposure["name"], "type": exposure["type"], "url": exposure["url"],
                 "team": exposure["owner_team"], "repo": exposure["repo"], "via": name}
            )
            team_entry(exposure["owner_team"], None, f"exposure {exposure['name']}")
        for reg in index.registrations.get(name, ()):
            if reg.columns and ALL not in columns and not ({column_key(c) for c in reg.columns} & columns):
                continue
            registrations.append(
                {"id": reg.id, "team": reg.team, "asset": name, "columns": list(reg.columns), "source": reg.source, "note": reg.note}
            )
            team_entry(reg.team, None, f"registration {reg.source}:{name}")
    assets.sort(key=lambda a: (a["depth"], a["asset"]))
    answer = {
        "asset": fqn,
        "column": column,
        "downstream": assets,
        "exposures": exposures,
        "registrations": registrations,
        "teams": sorted(teams.values(), key=lambda t: t["team"]),
    }
    if len(index.cache) > 10_000:
        index.cache.clear()
    index.cache[key] = answer
    return answer
