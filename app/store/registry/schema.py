"""The registry's tables, created by these migrations (listed in :mod:`app.store.migrations`)."""

from __future__ import annotations

from app.store.db import Database


def m0030_registry(db: Database) -> None:
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


def m0045_column_names(db: Database) -> None:
    """The asset explorer finds assets by column name (any case): an index on it."""
    db.execute("CREATE INDEX columns_name ON columns (lower(name))")


def m0035_repo_teams(db: Database) -> None:
    """The teams a repository's ``.tessera.yml`` names, as its last sync from GitHub read them: with
    the owners of its assets, they own the repository (NULL: never synced from the repository)."""
    db.execute("ALTER TABLE repo_syncs ADD COLUMN teams TEXT")
