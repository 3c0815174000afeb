"""The registry's tables: teams, API keys, assets, columns, exposures, edges, registrations, WAP audits.

The registry is what the REST API serves and what a ``push`` (or a dbt manifest upload) refreshes:
one repository's assets, columns, exposures and edges are replaced together, in one transaction,
so a reader never sees half a sync. Edges are named by asset fqn, so an edge may point into
another repository's asset. ``graph_version`` goes up on every change to the graph: the API's
in-memory reverse index (see :mod:`app.api.graph`) rebuilds when it moves.

Every function takes a ``sqlite_utils.Database`` and runs through ``Store.read`` / ``Store.write``.
Contract versions live in :mod:`app.store.contracts`; proposals, acks and the audit log in
:mod:`app.store.proposals`.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from app.audits import AuditRun, GuaranteeResult
from rules.model import Registration
from rules.registry_rows import AssetRow, EdgeRow, ExposureRow

SCOPES = ("read", "write", "admin")


def m0030_registry(db: sqlite_utils.Database) -> None:
    """The registry (issue 5) and its sync from repositories (issue 4)."""
    db.execute(
        """
        CREATE TABLE teams (
            id INTEGER PRIMARY KEY,
            slug TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            github_team TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE api_keys (
            id INTEGER PRIMARY KEY,
            prefix TEXT NOT NULL UNIQUE,
            secret_hash TEXT NOT NULL,
            team TEXT NOT NULL,
            scopes TEXT NOT NULL,
            expires_at REAL,
            revoked_at REAL,
            created_at REAL NOT NULL,
            created_by TEXT,
            last_used_at REAL
        )
        """
    )
    db.execute("CREATE INDEX api_keys_team ON api_keys (team)")
    db.execute(
        """
        CREATE TABLE assets (
            id INTEGER PRIMARY KEY,
            repo TEXT NOT NULL,
            fqn TEXT NOT NULL,
            kind TEXT NOT NULL,
            path TEXT,
            owner_team TEXT,
            owner_raw TEXT,
            github_team TEXT,
            compatibility TEXT,
            materialized TEXT,
            description TEXT NOT NULL DEFAULT '',
            columns_known INTEGER NOT NULL DEFAULT 1,
            relation TEXT,
            commit_sha TEXT,
            source TEXT NOT NULL,
            synced_at REAL NOT NULL,
            UNIQUE (repo, fqn)
        )
        """
    )
    db.execute("CREATE INDEX assets_fqn ON assets (fqn)")
    db.execute("CREATE INDEX assets_owner ON assets (owner_team)")
    db.execute(
        """
        CREATE TABLE columns (
            asset_id INTEGER NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            type TEXT NOT NULL,
            nullable INTEGER,
            description TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (asset_id, position)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE exposures (
            id INTEGER PRIMARY KEY,
            repo TEXT NOT NULL,
            name TEXT NOT NULL,
            type TEXT,
            url TEXT,
            path TEXT,
            owner_team TEXT,
            owner_raw TEXT,
            depends_on TEXT NOT NULL DEFAULT '[]',
            columns TEXT NOT NULL DEFAULT '{}',
            UNIQUE (repo, name)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE edges (
            repo TEXT NOT NULL,
            upstream TEXT NOT NULL,
            upstream_column TEXT,
            downstream TEXT NOT NULL,
            downstream_column TEXT,
            usage TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX edges_repo ON edges (repo)")
    db.execute("CREATE INDEX edges_upstream ON edges (upstream)")
    db.execute(
        """
        CREATE TABLE registrations (
            id INTEGER PRIMARY KEY,
            team TEXT NOT NULL,
            asset TEXT NOT NULL,
            columns TEXT NOT NULL DEFAULT '[]',
            version TEXT,
            note TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL DEFAULT 'api',
            created_by TEXT,
            created_at REAL NOT NULL,
            UNIQUE (team, asset, source)
        )
        """
    )
    db.execute("CREATE INDEX registrations_asset ON registrations (asset)")
    db.execute(
        """
        CREATE TABLE repo_syncs (
            repo TEXT PRIMARY KEY,
            commit_sha TEXT,
            source TEXT NOT NULL,
            assets INTEGER NOT NULL,
            edges INTEGER NOT NULL,
            problems TEXT NOT NULL DEFAULT '[]',
            synced_at REAL NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE audit_runs (
            id INTEGER PRIMARY KEY,
            asset TEXT NOT NULL,
            run_id TEXT NOT NULL,
            status TEXT NOT NULL,
            triggered_by TEXT,
            run_at REAL NOT NULL,
            source TEXT NOT NULL DEFAULT 'api',
            reported_by TEXT,
            received_at REAL NOT NULL,
            UNIQUE (asset, run_id)
        )
        """
    )
    db.execute("CREATE INDEX audit_runs_asset ON audit_runs (asset, run_at)")
    db.execute(
        """
        CREATE TABLE guarantee_results (
            run_id INTEGER NOT NULL REFERENCES audit_runs(id) ON DELETE CASCADE,
            guarantee TEXT NOT NULL,
            passed INTEGER NOT NULL,
            rows_checked INTEGER,
            rows_failed INTEGER,
            message TEXT NOT NULL DEFAULT ''
        )
        """
    )
    db.execute("CREATE INDEX guarantee_results_run ON guarantee_results (run_id)")
    db.execute("CREATE TABLE registry_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    db.execute("INSERT INTO registry_meta (key, value) VALUES ('graph_version', 0)")


def m0045_column_names(db: sqlite_utils.Database) -> None:
    """The asset explorer finds assets by column name (any case): an index on it."""
    db.execute("CREATE INDEX columns_name ON columns (lower(name))")


def m0035_repo_teams(db: sqlite_utils.Database) -> None:
    """The teams a repository's ``.tessera.yml`` names, as its last sync from GitHub read them: with
    the owners of its assets, they own the repository (NULL: never synced from the repository)."""
    db.execute("ALTER TABLE repo_syncs ADD COLUMN teams TEXT")


# --- teams ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Team:
    slug: str
    name: str
    github_team: str | None
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"slug": self.slug, "name": self.name, "github_team": self.github_team, "created_at": _iso(self.created_at)}


def get_team(db: sqlite_utils.Database, slug: str) -> Team | None:
    row = db.execute("SELECT slug, name, github_team, created_at FROM teams WHERE slug = ?", (slug,)).fetchone()
    return None if row is None else Team(*row)


def list_teams(db: sqlite_utils.Database, *, after: str | None = None, limit: int = 100) -> list[Team]:
    rows = db.execute(
        "SELECT slug, name, github_team, created_at FROM teams WHERE slug > ? ORDER BY slug LIMIT ?",
        (after or "", limit),
    ).fetchall()
    return [Team(*r) for r in rows]


def create_team(db: sqlite_utils.Database, slug: str, name: str, github_team: str | None) -> Team | None:
    """The new team, or None when the slug is taken."""
    now = time.time()
    cursor = db.execute(
        "INSERT OR IGNORE INTO teams (slug, name, github_team, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        (slug, name, github_team, now, now),
    )
    if not cursor.rowcount:
        return None
    bump_graph_version(db)
    return get_team(db, slug)


def update_team(db: sqlite_utils.Database, slug: str, fields: Mapping[str, Any]) -> Team | None:
    if get_team(db, slug) is None:
        return None
    allowed = {k: v for k, v in fields.items() if k in ("name", "github_team")}
    if allowed:
        sets = ", ".join(f"{k} = ?" for k in allowed)
        db.execute(f"UPDATE teams SET {sets}, updated_at = ? WHERE slug = ?", (*allowed.values(), time.time(), slug))
        bump_graph_version(db)
    return get_team(db, slug)


def delete_team(db: sqlite_utils.Database, slug: str) -> bool:
    """Delete a team; its keys are revoked and its API registrations removed with it."""
    cursor = db.execute("DELETE FROM teams WHERE slug = ?", (slug,))
    if not cursor.rowcount:
        return False
    db.execute("UPDATE api_keys SET revoked_at = ? WHERE team = ? AND revoked_at IS NULL", (time.time(), slug))
    db.execute("DELETE FROM registrations WHERE team = ? AND source = 'api'", (slug,))
    bump_graph_version(db)
    return True


def github_teams(db: sqlite_utils.Database) -> dict[str, str | None]:
    return dict(db.execute("SELECT slug, github_team FROM teams").fetchall())


# --- API keys ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiKey:
    id: int
    prefix: str
    secret_hash: str
    team: str
    scopes: tuple[str, ...]
    expires_at: float | None
    revoked_at: float | None
    created_at: float
    created_by: str | None
    last_used_at: float | None

    def to_dict(self) -> dict[str, Any]:
        """What the API shows of a key: never the hash."""
        return {
            "id": self.id,
            "prefix": self.prefix,
            "team": self.team,
            "scopes": list(self.scopes),
            "expires_at": _iso(self.expires_at),
            "revoked_at": _iso(self.revoked_at),
            "created_at": _iso(self.created_at),
            "created_by": self.created_by,
            "last_used_at": _iso(self.last_used_at),
        }


_KEY_COLUMNS = "id, prefix, secret_hash, team, scopes, expires_at, revoked_at, created_at, created_by, last_used_at"


def _key(row: Sequence[Any] | None) -> ApiKey | None:
    if row is None:
        return None
    values = list(row)
    values[4] = tuple(json.loads(values[4]))
    return ApiKey(*values)


def insert_key(
    db: sqlite_utils.Database,
    *,
    prefix: str,
    secret_hash: str,
    team: str,
    scopes: Sequence[str],
    expires_at: float | None,
    created_by: str | None,
) -> ApiKey:
    cursor = db.execute(
        "INSERT INTO api_keys (prefix, secret_hash, team, scopes, expires_at, created_at, created_by)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (prefix, secret_hash, team, json.dumps(sorted(set(scopes))), expires_at, time.time(), created_by),
    )
    found = get_key(db, int(cursor.lastrowid or 0))
    assert found is not None
    return found


def get_key(db: sqlite_utils.Database, key_id: int) -> ApiKey | None:
    return _key(db.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)).fetchone())


def key_by_prefix(db: sqlite_utils.Database, prefix: str) -> ApiKey | None:
    return _key(db.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE prefix = ?", (prefix,)).fetchone())


def list_keys(db: sqlite_utils.Database, team: str) -> list[ApiKey]:
    rows = db.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE team = ? ORDER BY id", (team,)).fetchall()
    return [k for k in (_key(r) for r in rows) if k is not None]


def list_all_keys(db: sqlite_utils.Database) -> list[ApiKey]:
    """Every team's keys, revoked ones too, oldest first (``tessera keys list``)."""
    rows = db.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY id").fetchall()
    return [k for k in (_key(r) for r in rows) if k is not None]


def revoke_key(db: sqlite_utils.Database, key_id: int) -> bool:
    cursor = db.execute(
        "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (time.time(), key_id)
    )
    return bool(cursor.rowcount)


def touch_key(db: sqlite_utils.Database, key_id: int) -> None:
    db.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (time.time(), key_id))


# --- assets, columns, exposures, edges --------------------------------------------------------------


def replace_repo(
    db: sqlite_utils.Database,
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
    conn = db.conn
    conn.execute("DELETE FROM columns WHERE asset_id IN (SELECT id FROM assets WHERE repo = ?)", (repo,))
    conn.execute("DELETE FROM assets WHERE repo = ?", (repo,))
    conn.execute("DELETE FROM exposures WHERE repo = ?", (repo,))
    conn.execute("DELETE FROM edges WHERE repo = ?", (repo,))
    column_rows: list[tuple[Any, ...]] = []
    for asset in assets:
        cursor = conn.execute(
            "INSERT INTO assets (repo, fqn, kind, path, owner_team, owner_raw, github_team, compatibility,"
            " materialized, description, columns_known, relation, commit_sha, source, synced_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        asset_id = cursor.lastrowid
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


def forget_repo(db: sqlite_utils.Database, repo: str) -> bool:
    """Drop a repository the App can no longer see: its assets, exposures, edges and SQL registrations."""
    known = db.execute("SELECT 1 FROM repo_syncs WHERE repo = ?", (repo,)).fetchone() is not None
    replace_repo(db, repo=repo, commit_sha=None, source="removed", assets=(), exposures=(), edges=())
    db.execute("DELETE FROM registrations WHERE source LIKE ?", (f"sql:{repo}/%",))
    db.execute("DELETE FROM repo_syncs WHERE repo = ?", (repo,))
    return known


def bump_graph_version(db: sqlite_utils.Database) -> None:
    db.execute("UPDATE registry_meta SET value = value + 1 WHERE key = 'graph_version'")


def graph_version(db: sqlite_utils.Database) -> int:
    row = db.execute("SELECT value FROM registry_meta WHERE key = 'graph_version'").fetchone()
    return int(row[0]) if row else 0


def last_sync(db: sqlite_utils.Database, repo: str) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT repo, commit_sha, source, assets, edges, problems, synced_at FROM repo_syncs WHERE repo = ?",
        (repo,),
    ).fetchone()
    if row is None:
        return None
    keys = ("repo", "commit", "source", "assets", "edges", "problems", "synced_at")
    out = dict(zip(keys, row, strict=True))
    out["problems"] = json.loads(out["problems"])
    out["synced_at"] = _iso(out["synced_at"])
    return out


_ASSET_COLUMNS = (
    "id, repo, fqn, kind, path, owner_team, owner_raw, github_team, compatibility, materialized,"
    " description, columns_known, relation, commit_sha, source, synced_at"
)
_ASSET_KEYS = tuple(c.strip() for c in _ASSET_COLUMNS.split(","))


def _asset_dict(row: Sequence[Any]) -> dict[str, Any]:
    item = dict(zip(_ASSET_KEYS, row, strict=True))
    item["columns_known"] = bool(item["columns_known"])
    item["synced_at"] = _iso(item["synced_at"])
    item["commit"] = item.pop("commit_sha")
    item["owner"] = {"team": item.pop("owner_team"), "github_team": item.pop("github_team"), "raw": item.pop("owner_raw")}
    return item


def search_assets(
    db: sqlite_utils.Database,
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
        where.append("fqn LIKE ? ESCAPE '\\'")
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


def get_asset(db: sqlite_utils.Database, fqn: str, *, repo: str | None = None) -> dict[str, Any] | None:
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


def asset_owners(db: sqlite_utils.Database) -> dict[str, tuple[str | None, str | None]]:
    """fqn → (owner team, its GitHub team) for every asset (the impact index's team names). As in
    :func:`get_asset`, a real definition wins over another repository's dbt ``source`` of the name
    (a reader's declaration never makes it the owner), then the one synced last."""
    return {
        fqn: (team, gh)
        for fqn, team, gh in db.execute(
            "SELECT fqn, owner_team, github_team FROM assets ORDER BY kind != 'source', synced_at, id"
        )
    }


def all_edges(db: sqlite_utils.Database) -> list[EdgeRow]:
    return [
        EdgeRow(*row)
        for row in db.execute("SELECT upstream, upstream_column, downstream, downstream_column, usage FROM edges")
    ]


def all_exposures(db: sqlite_utils.Database) -> list[dict[str, Any]]:
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


def exposures_of(db: sqlite_utils.Database, fqn: str) -> list[dict[str, Any]]:
    return [e for e in all_exposures(db) if fqn in e["depends_on"]]


def direct_readers(db: sqlite_utils.Database, fqn: str) -> list[dict[str, Any]]:
    """Assets that read ``fqn`` directly, with their owners (an asset's "consumers")."""
    rows = db.execute(
        "SELECT DISTINCT e.downstream, a.owner_team, a.repo FROM edges e LEFT JOIN assets a ON a.fqn = e.downstream"
        " WHERE e.upstream = ? AND e.downstream != ? ORDER BY e.downstream",
        (fqn, fqn),
    ).fetchall()
    return [{"asset": d, "team": t, "repo": r} for d, t, r in rows]


# --- registrations ----------------------------------------------------------------------------------

_REG_COLUMNS = "id, team, asset, columns, version, note, source, created_by, created_at"


def _registration(row: Sequence[Any]) -> dict[str, Any]:
    keys = [c.strip() for c in _REG_COLUMNS.split(",")]
    item = dict(zip(keys, row, strict=True))
    item["columns"] = json.loads(item["columns"])
    item["created_at"] = _iso(item["created_at"])
    return item


def create_registration(
    db: sqlite_utils.Database,
    *,
    team: str,
    asset: str,
    columns: Sequence[str],
    version: str | None,
    note: str,
    source: str = "api",
    created_by: str | None,
) -> tuple[dict[str, Any], bool]:
    """The registration and whether it is new (the same team, asset and source updates in place)."""
    existing = db.execute(
        "SELECT id FROM registrations WHERE team = ? AND asset = ? AND source = ?", (team, asset, source)
    ).fetchone()
    if existing:
        db.execute(
            "UPDATE registrations SET columns = ?, version = ?, note = ?, created_by = ? WHERE id = ?",
            (json.dumps(list(columns)), version, note, created_by, existing[0]),
        )
        reg_id, created = int(existing[0]), False
    else:
        cursor = db.execute(
            "INSERT INTO registrations (team, asset, columns, version, note, source, created_by, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (team, asset, json.dumps(list(columns)), version, note, source, created_by, time.time()),
        )
        reg_id, created = int(cursor.lastrowid or 0), True
    bump_graph_version(db)
    found = get_registration(db, reg_id)
    assert found is not None
    return found, created


def get_registration(db: sqlite_utils.Database, reg_id: int) -> dict[str, Any] | None:
    row = db.execute(f"SELECT {_REG_COLUMNS} FROM registrations WHERE id = ?", (reg_id,)).fetchone()
    return None if row is None else _registration(row)


def list_registrations(
    db: sqlite_utils.Database,
    *,
    team: str | None = None,
    asset: str | None = None,
    after_id: int = 0,
    limit: int = 50,
) -> list[dict[str, Any]]:
    where, args = ["id > ?"], [after_id]
    if team:
        where.append("team = ?")
        args.append(team)
    if asset:
        where.append("asset = ?")
        args.append(asset)
    rows = db.execute(
        f"SELECT {_REG_COLUMNS} FROM registrations WHERE {' AND '.join(where)} ORDER BY id LIMIT ?", (*args, limit)
    ).fetchall()
    return [_registration(r) for r in rows]


def delete_registration(db: sqlite_utils.Database, reg_id: int) -> bool:
    deleted = bool(db.execute("DELETE FROM registrations WHERE id = ?", (reg_id,)).rowcount)
    if deleted:
        bump_graph_version(db)
    return deleted


def replace_sql_registrations(db: sqlite_utils.Database, repo: str, found: Iterable[Registration]) -> None:
    """The registrations SQL in ``repo`` implies (source ``sql:<repo>/<path>``), replacing the last sync's."""
    db.execute("DELETE FROM registrations WHERE source LIKE ?", (f"sql:{repo}/%",))
    now = time.time()
    db.conn.executemany(
        "INSERT OR REPLACE INTO registrations (team, asset, columns, version, note, source, created_by, created_at)"
        " VALUES (?, ?, ?, NULL, ?, ?, 'sync', ?)",
        [(r.team, r.asset, json.dumps(list(r.columns)), r.note, r.source, now) for r in found],
    )
    bump_graph_version(db)


def all_registrations(db: sqlite_utils.Database) -> list[Registration]:
    """Every registration as the engine reads them (the PR workflow passes these to ``analyze``)."""
    return [
        Registration(team=team, asset=asset, columns=tuple(json.loads(cols)), note=note, source=source)
        for team, asset, cols, note, source in db.execute(
            "SELECT team, asset, columns, note, source FROM registrations ORDER BY id"
        )
    ]


def registrations_for(db: sqlite_utils.Database, fqns: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    wanted = sorted(set(fqns))
    out: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        for row in db.execute(f"SELECT {_REG_COLUMNS} FROM registrations WHERE asset IN ({marks})", chunk):
            reg = _registration(row)
            out.setdefault(reg["asset"], []).append(reg)
    return out


# --- WAP audits -------------------------------------------------------------------------------------


class RunIdTaken(Exception):
    """A different run reported under a run id the asset already has: the first report stands."""

    def __init__(self, run_id: str, stored: AuditRun) -> None:
        super().__init__(f"run {run_id} was already reported")
        self.stored = stored


def record_audit_run(
    db: sqlite_utils.Database,
    *,
    asset: str,
    run: AuditRun,
    source: str,
    reported_by: str | None,
    compare_time: bool = True,
) -> tuple[int, bool]:
    """Store a run and its results; (row id, new). A run id is reported once: the same run again
    is answered with the stored one, a different one raises :class:`RunIdTaken` (a passed run
    re-posted over a failed one must not rewrite history). ``compare_time=False`` when the
    reporter gave no ``run_at`` (each report would stamp its own)."""
    existing = db.execute("SELECT id FROM audit_runs WHERE asset = ? AND run_id = ?", (asset, run.run_id)).fetchone()
    if existing:
        pk = int(existing[0])
        stored = next(r for p, r in audit_runs(db, asset, run_id=run.run_id) if p == pk)
        if _run_key(stored, compare_time) != _run_key(run, compare_time):
            raise RunIdTaken(run.run_id, stored)
        return pk, False
    cursor = db.execute(
        "INSERT INTO audit_runs (asset, run_id, status, triggered_by, run_at, source, reported_by, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (asset, run.run_id, run.status, run.triggered_by, run.run_at.timestamp(), source, reported_by, time.time()),
    )
    pk = int(cursor.lastrowid or 0)
    db.conn.executemany(
        "INSERT INTO guarantee_results (run_id, guarantee, passed, rows_checked, rows_failed, message)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [(pk, r.guarantee, int(r.passed), _count(r.rows_checked), _count(r.rows_failed), r.message) for r in run.results],
    )
    return pk, True


def _run_key(run: AuditRun, compare_time: bool) -> tuple[Any, ...]:
    """What makes two reports the same run, as the store keeps it (counts it cannot hold are None)."""
    results = tuple(
        sorted((r.guarantee, r.passed, _count(r.rows_checked), _count(r.rows_failed), r.message) for r in run.results)
    )
    when = round(run.run_at.timestamp(), 3) if compare_time else None
    return run.status, run.triggered_by, when, results


def audit_runs(
    db: sqlite_utils.Database,
    asset: str,
    *,
    since: float | None = None,
    before_id: int | None = None,
    limit: int | None = None,
    run_id: str | None = None,
) -> list[tuple[int, AuditRun]]:
    """An asset's runs, newest first, with their results."""
    where, args = ["asset = ?"], [asset]
    if run_id is not None:
        where.append("run_id = ?")
        args.append(run_id)
    if since is not None:
        where.append("run_at > ?")
        args.append(since)
    if before_id is not None:
        where.append("id < ?")
        args.append(before_id)
    sql_limit = f" LIMIT {int(limit)}" if limit else ""
    rows = db.execute(
        f"SELECT id, run_id, status, triggered_by, run_at FROM audit_runs WHERE {' AND '.join(where)}"
        f" ORDER BY run_at DESC, id DESC{sql_limit}",
        args,
    ).fetchall()
    results: dict[int, list[GuaranteeResult]] = {}
    ids = [r[0] for r in rows]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        for run_pk, guarantee, passed, checked, failed, message in db.execute(
            f"SELECT run_id, guarantee, passed, rows_checked, rows_failed, message FROM guarantee_results"
            f" WHERE run_id IN ({marks})",
            chunk,
        ):
            results.setdefault(run_pk, []).append(GuaranteeResult(guarantee, bool(passed), checked, failed, message))
    return [
        (
            pk,
            AuditRun(
                run_id=run_id,
                status=status,
                run_at=dt.datetime.fromtimestamp(run_at, dt.UTC),
                triggered_by=by,
                results=tuple(results.get(pk, ())),
            ),
        )
        for pk, run_id, status, by, run_at in rows
    ]


def failing_audits(db: sqlite_utils.Database, fqns: Iterable[str]) -> dict[str, dict[str, Any]]:
    """For each asset whose latest WAP run failed: a summary the PR comment can show.

    ``{fqn: {"run_id", "status", "run_at" (ISO), "failed": [guarantee, ...]}}``; assets whose latest
    run passed (or that have none) are left out.
    """
    out: dict[str, dict[str, Any]] = {}
    for fqn in sorted(set(fqns)):
        latest = audit_runs(db, fqn, limit=1)
        if not latest:
            continue
        _, run = latest[0]
        if not run.failed:
            continue
        out[fqn] = {
            "run_id": run.run_id,
            "status": run.status,
            "run_at": run.run_at.isoformat().replace("+00:00", "Z"),
            "failed": [r.guarantee for r in run.results if not r.passed],
        }
    return out


def _count(value: int | None) -> int | None:
    """A row count SQLite can hold (dbt reports whatever its adapter said)."""
    return value if isinstance(value, int) and 0 <= value < 2**63 else None


def known_assets(db: sqlite_utils.Database) -> list[str]:
    return [row[0] for row in db.execute("SELECT DISTINCT fqn FROM assets")]


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def repo_owner_teams(db: sqlite_utils.Database, repo: str) -> set[str]:
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


def repo_spelling(db: sqlite_utils.Database, repo: str) -> str:
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


def asset_claims(db: sqlite_utils.Database, fqns: Iterable[str]) -> dict[str, list[AssetClaim]]:
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


def registration_rows(db: sqlite_utils.Database) -> list[tuple[str, int, str, tuple[str, ...], str, str]]:
    """Every registration as (asset, id, team, columns, source, note), for the impact index."""
    return [
        (row[2], row[0], row[1], tuple(json.loads(row[3])), row[4], row[5])
        for row in db.execute("SELECT id, team, asset, columns, source, note FROM registrations")
    ]


def audited_assets(db: sqlite_utils.Database) -> list[str]:
    """Every asset with at least one audit run (the home page's alerts look only at these)."""
    return [fqn for (fqn,) in db.execute("SELECT DISTINCT asset FROM audit_runs")]


def audit_runs_since(db: sqlite_utils.Database, since: float, *, assets: int = 200) -> dict[str, list[AuditRun]]:
    """Every asset's runs after ``since`` (newest first), in two queries: the audits page and the
    home page's alerts read all assets at once. At most ``assets`` assets, by name."""
    rows = db.execute(
        "SELECT id, asset, run_id, status, triggered_by, run_at FROM audit_runs WHERE run_at > ?"
        " AND asset IN (SELECT DISTINCT asset FROM audit_runs WHERE run_at > ? ORDER BY asset LIMIT ?)"
        " ORDER BY run_at DESC, id DESC",
        (since, since, assets),
    ).fetchall()
    results: dict[int, list[GuaranteeResult]] = {}
    for run_pk, guarantee, passed, checked, failed, message in db.execute(
        "SELECT g.run_id, g.guarantee, g.passed, g.rows_checked, g.rows_failed, g.message"
        " FROM guarantee_results g JOIN audit_runs a ON a.id = g.run_id WHERE a.run_at > ?",
        (since,),
    ):
        results.setdefault(run_pk, []).append(GuaranteeResult(guarantee, bool(passed), checked, failed, message))
    by_asset: dict[str, list[AuditRun]] = {}
    for pk, asset, run_id, status, by, run_at in rows:
        by_asset.setdefault(asset, []).append(AuditRun(
            run_id=run_id, status=status, run_at=dt.datetime.fromtimestamp(run_at, dt.UTC), triggered_by=by,
            results=tuple(results.get(pk, ())),
        ))
    return by_asset
