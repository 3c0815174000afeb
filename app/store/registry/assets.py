"""Assets, their columns, exposures and edges, as one repository's sync replaced them (one
transaction: a reader never sees half a sync), and ``graph_version``, which goes up on every change
to the graph so the API's in-memory reverse index (:mod:`app.api.graph`) knows to rebuild."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from app.store.db import Database
from app.store.registry.common import iso
from rules.registry_rows import AssetRow, EdgeRow, ExposureRow


def replace_repo(
    db: Database,
    *,
    repo: str,
    commit_sha: str | None,
    source: str,
    assets: Sequence[AssetRow],
    exposures: Sequence[ExposureRow],
    edges: Sequence[EdgeRow],
    problems: Sequence[str] = (),
    teams: Sequence[str] | None = None,
) -> None:
    """Make the registry hold exactly this for ``repo`` (one transaction: readers see all or nothing).

    ``teams``: the teams the repository's ``.tessera.yml`` names (None keeps what the last sync from
    the repository read: a manifest upload says nothing about them)."""
    now = time.time()
    conn = db
    conn.execute("DELETE FROM columns WHERE asset_id IN (SELECT id FROM assets WHERE repo = ?)", (repo,))
    conn.execute("DELETE FROM assets WHERE repo = ?", (repo,))
    conn.execute("DELETE FROM exposures WHERE repo = ?", (repo,))
    conn.execute("DELETE FROM edges WHERE repo = ?", (repo,))
    column_rows: list[tuple[Any, ...]] = []
    for asset in assets:
        cursor = conn.execute(
            "INSERT INTO assets (repo, fqn, kind, path, owner_team, owner_raw, github_team, compatibility,"
            " materialized, description, columns_known, relation, commit_sha, source, synced_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                repo,
                asset.fqn,
                asset.kind,
                asset.path,
                asset.owner_team,
                asset.owner_raw,
                asset.github_team,
                asset.compatibility,
                asset.materialized,
                asset.description,
                int(asset.columns_known),
                asset.relation,
                commit_sha,
                source,
                now,
            ),
        )
        asset_id = cursor.fetchone()[0]
        for position, (name, type_, nullable, description) in enumerate(asset.columns):
            column_rows.append(
                (asset_id, position, name, type_, None if nullable is None else int(nullable), description)
            )
    conn.executemany(
        "INSERT INTO columns (asset_id, position, name, type, nullable, description) VALUES (?, ?, ?, ?, ?, ?)",
        column_rows,
    )
    conn.executemany(
        "INSERT INTO exposures (repo, name, type, url, path, owner_team, owner_raw, depends_on, columns)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                repo,
                e.name,
                e.type,
                e.url,
                e.path,
                e.owner_team,
                e.owner_raw,
                json.dumps(list(e.depends_on)),
                json.dumps({k: list(v) for k, v in (e.columns or {}).items()}),
            )
            for e in exposures
        ],
    )
    conn.executemany(
        "INSERT INTO edges (repo, upstream, upstream_column, downstream, downstream_column, usage)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [(repo, e.upstream, e.upstream_column, e.downstream, e.downstream_column, e.usage) for e in edges],
    )
    conn.execute(
        "INSERT INTO repo_syncs (repo, commit_sha, source, assets, edges, problems, synced_at, teams)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repo) DO UPDATE SET commit_sha = excluded.commit_sha,"
        " source = excluded.source, assets = excluded.assets, edges = excluded.edges, problems = excluded.problems,"
        " synced_at = excluded.synced_at, teams = coalesce(excluded.teams, repo_syncs.teams)",
        (repo, commit_sha, source, len(assets), len(edges), json.dumps(list(problems)[:200]), now,
         None if teams is None else json.dumps(sorted(set(teams)))),
    )
    bump_graph_version(db)


def forget_repo(db: Database, repo: str) -> bool:
    """Drop a repository the App can no longer see: its assets, exposures, edges and SQL registrations."""
    known = db.execute("SELECT 1 FROM repo_syncs WHERE repo = ?", (repo,)).fetchone() is not None
    replace_repo(db, repo=repo, commit_sha=None, source="removed", assets=(), exposures=(), edges=())
    db.execute("DELETE FROM registrations WHERE source LIKE ?", (f"sql:{repo}/%",))
    db.execute("DELETE FROM repo_syncs WHERE repo = ?", (repo,))
    return known


def bump_graph_version(db: Database) -> None:
    db.execute("UPDATE registry_meta SET value = value + 1 WHERE key = 'graph_version'")


def graph_version(db: Database) -> int:
    row = db.execute("SELECT value FROM registry_meta WHERE key = 'graph_version'").fetchone()
    return int(row[0]) if row else 0


def last_sync(db: Database, repo: str) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT repo, commit_sha, source, assets, edges, problems, synced_at FROM repo_syncs WHERE repo = ?",
        (repo,),
    ).fetchone()
    if row is None:
        return None
    keys = ("repo", "commit", "source", "assets", "edges", "problems", "synced_at")
    out = dict(zip(keys, row, strict=True))
    out["problems"] = json.loads(out["problems"])
    out["synced_at"] = iso(out["synced_at"])
    return out


_ASSET_COLUMNS = (
    "id, repo, fqn, kind, path, owner_team, owner_raw, github_team, compatibility, materialized,"
    " description, columns_known, relation, commit_sha, source, synced_at"
)
_ASSET_KEYS = tuple(c.strip() for c in _ASSET_COLUMNS.split(","))


def _asset_dict(row: Sequence[Any]) -> dict[str, Any]:
    item = dict(zip(_ASSET_KEYS, row, strict=True))
    item["columns_known"] = bool(item["columns_known"])
    item["synced_at"] = iso(item["synced_at"])
    item["commit"] = item.pop("commit_sha")
    item["owner"] = {"team": item.pop("owner_team"), "github_team": item.pop("github_team"), "raw": item.pop("owner_raw")}
    return item


def search_assets(
    db: Database,
    *,
    q: str | None = None,
    owner: str | None = None,
    repo: str | None = None,
    after_id: int = 0,
    limit: int = 50,
    column: str | None = None,
) -> list[dict[str, Any]]:
    """Assets by name fragment, owning team, repository and column name, in id order (cursor: the last id)."""
    where = ["id > ?"]
    args: list[Any] = [after_id]
    if column:
        where.append("id IN (SELECT asset_id FROM columns WHERE lower(name) = ?)")
        args.append(column.lower())
    if q:
        where.append("lower(fqn) LIKE ? ESCAPE '\\'")
        args.append("%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    if owner:
        where.append("owner_team = ?")
        args.append(owner)
    if repo:
        where.append("repo = ?")
        args.append(repo)
    rows = db.execute(
        f"SELECT {_ASSET_COLUMNS} FROM assets WHERE {' AND '.join(where)} ORDER BY id LIMIT ?", (*args, limit)
    ).fetchall()
    return [_asset_dict(r) for r in rows]


def get_asset(db: Database, fqn: str, *, repo: str | None = None) -> dict[str, Any] | None:
    """One asset with its columns; when several repositories define the fqn, the one synced last
    (or the given ``repo``'s). A dbt ``source`` only declares a table someone else builds, so a
    repository's real definition wins over every other repository's source of the same name."""
    if repo:
        row = db.execute(f"SELECT {_ASSET_COLUMNS} FROM assets WHERE fqn = ? AND repo = ?", (fqn, repo)).fetchone()
    else:
        row = db.execute(
            f"SELECT {_ASSET_COLUMNS} FROM assets WHERE fqn = ?"
            " ORDER BY kind = 'source', synced_at DESC, id DESC LIMIT 1",
            (fqn,),
        ).fetchone()
    if row is None:
        return None
    item = _asset_dict(row)
    item["columns"] = [
        {"name": n, "type": t, "nullable": None if nl is None else bool(nl), "description": d}
        for n, t, nl, d in db.execute(
            "SELECT name, type, nullable, description FROM columns WHERE asset_id = ? ORDER BY position",
            (item["id"],),
        )
    ]
    return item


def asset_owners(db: Database) -> dict[str, tuple[str | None, str | None]]:
    """fqn → (owner team, its GitHub team) for every asset (the impact index's team names). As in
    :func:`get_asset`, a real definition wins over another repository's dbt ``source`` of the name
    (a reader's declaration never makes it the owner), then the one synced last."""
    return {
        fqn: (team, gh)
        for fqn, team, gh in db.execute(
            "SELECT fqn, owner_team, github_team FROM assets ORDER BY kind != 'source', synced_at, id"
        )
    }


def all_edges(db: Database) -> list[EdgeRow]:
    return [
        EdgeRow(*row)
        for row in db.execute("SELECT upstream, upstream_column, downstream, downstream_column, usage FROM edges")
    ]


def all_exposures(db: Database) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT repo, name, type, url, path, owner_team, owner_raw, depends_on, columns FROM exposures"
    ).fetchall()
    keys = ("repo", "name", "type", "url", "path", "owner_team", "owner_raw", "depends_on", "columns")
    out = []
    for row in rows:
        item = dict(zip(keys, row, strict=True))
        item["depends_on"] = json.loads(item["depends_on"])
        item["columns"] = json.loads(item["columns"])
        out.append(item)
    return out


def exposures_of(db: Database, fqn: str) -> list[dict[str, Any]]:
    return [e for e in all_exposures(db) if fqn in e["depends_on"]]


def direct_readers(db: Database, fqn: str) -> list[dict[str, Any]]:
    """Assets that read ``fqn`` directly, with their owners (an asset's "consumers")."""
    rows = db.execute(
        "SELECT DISTINCT e.downstream, a.owner_team, a.repo FROM edges e LEFT JOIN assets a ON a.fqn = e.downstream"
        " WHERE e.upstream = ? AND e.downstream != ? ORDER BY e.downstream",
        (fqn, fqn),
    ).fetchall()
    return [{"asset": d, "team": t, "repo": r} for d, t, r in rows]


def known_assets(db: Database) -> list[str]:
    return [row[0] for row in db.execute("SELECT DISTINCT fqn FROM assets")]


def repo_owner_teams(db: Database, repo: str) -> set[str]:
    """The teams owning ``repo``: those owning at least one of its assets, and those its
    ``.tessera.yml`` names (GitHub's names are case-insensitive, so ``ACME/Warehouse`` is the same
    repository as ``acme/warehouse``)."""
    owners = {
        row[0]
        for row in db.execute(
            "SELECT DISTINCT owner_team FROM assets WHERE lower(repo) = lower(?) AND owner_team IS NOT NULL", (repo,)
        )
    }
    for (declared,) in db.execute("SELECT teams FROM repo_syncs WHERE lower(repo) = lower(?) AND teams IS NOT NULL", (repo,)):
        owners.update(str(t) for t in json.loads(declared))
    return owners


def repo_spelling(db: Database, repo: str) -> str:
    """How the registry already spells ``repo`` (compared case-insensitively), else ``repo`` itself:
    one repository never ends up in the registry twice under two spellings."""
    row = db.execute(
        "SELECT repo FROM repo_syncs WHERE lower(repo) = lower(?)"
        " UNION ALL SELECT repo FROM assets WHERE lower(repo) = lower(?) LIMIT 1",
        (repo, repo),
    ).fetchone()
    return str(row[0]) if row else repo


@dataclass(frozen=True)
class AssetClaim:
    """One repository's definition of an asset name, and who owns it there."""

    fqn: str
    repo: str
    owner_team: str | None
    kind: str


def asset_claims(db: Database, fqns: Iterable[str]) -> dict[str, list[AssetClaim]]:
    """Every registered definition of each of ``fqns`` (several repositories may define one name)."""
    wanted = sorted(set(fqns))
    out: dict[str, list[AssetClaim]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        for fqn, repo, owner, kind in db.execute(
            f"SELECT fqn, repo, owner_team, kind FROM assets WHERE fqn IN ({marks}) ORDER BY id", chunk
        ):
            out.setdefault(fqn, []).append(AssetClaim(fqn, repo, owner, kind))
    return out
