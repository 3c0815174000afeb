"""Contract versions: the published schema of an asset after each merged change.

One row per (repository, asset, version). Versions are semver: a merge with a breaking change to
the asset bumps the major, other schema changes the minor, metadata-only changes the patch; the
first contract of an asset is 1.0.0. The schema is JSON (columns with types, nullability,
descriptions; null when the merge removed the asset). Run through ``Store.read`` / ``Store.write``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.store.db import Database


def m0020_contracts(db: Database) -> None:
    """Contract versions published when a pull request merges (issue 4)."""
    db.execute(
        """
        CREATE TABLE contracts (
            id INTEGER PRIMARY KEY,
            repo_id INTEGER NOT NULL,
            repo TEXT NOT NULL,
            asset TEXT NOT NULL,
            version TEXT NOT NULL,
            major INTEGER NOT NULL,
            minor INTEGER NOT NULL,
            patch INTEGER NOT NULL,
            schema TEXT,
            changes TEXT NOT NULL DEFAULT '[]',
            breaking INTEGER NOT NULL DEFAULT 0,
            pr_number INTEGER,
            head_sha TEXT,
            published_at REAL NOT NULL,
            UNIQUE (repo_id, asset, version)
        )
        """
    )
    db.execute("CREATE INDEX contracts_asset ON contracts (asset, major DESC, minor DESC, patch DESC)")


@dataclass(frozen=True)
class Contract:
    repo: str
    asset: str
    version: str
    schema: Mapping[str, Any] | None
    changes: tuple[Mapping[str, Any], ...]
    breaking: bool
    pr_number: int | None
    head_sha: str | None
    published_at: float


def latest_version(db: Database, repo_id: int, asset: str) -> tuple[int, int, int] | None:
    row = db.execute(
        "SELECT major, minor, patch FROM contracts WHERE repo_id = ? AND asset = ?"
        " ORDER BY major DESC, minor DESC, patch DESC LIMIT 1",
        (repo_id, asset),
    ).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def publish(
    db: Database,
    *,
    repo_id: int,
    repo: str,
    asset: str,
    bump: str,
    schema: Mapping[str, Any] | None,
    changes: list[Mapping[str, Any]],
    pr_number: int | None,
    head_sha: str | None,
) -> str | None:
    """Record the next version of ``asset`` (``bump``: major | minor | patch); returns the version.

    A second publish for the same pull request and head (a re-delivered ``closed``) returns None
    and records nothing.
    """
    if db.execute(
        "SELECT 1 FROM contracts WHERE repo_id = ? AND asset = ? AND pr_number IS NOT DISTINCT FROM ? AND head_sha IS NOT DISTINCT FROM ?",
        (repo_id, asset, pr_number, head_sha),
    ).fetchone():
        return None
    previous = latest_version(db, repo_id, asset)
    if previous is None:
        major, minor, patch = 1, 0, 0
    elif bump == "major":
        major, minor, patch = previous[0] + 1, 0, 0
    elif bump == "minor":
        major, minor, patch = previous[0], previous[1] + 1, 0
    else:
        major, minor, patch = previous[0], previous[1], previous[2] + 1
    version = f"{major}.{minor}.{patch}"
    db.execute(
        "INSERT INTO contracts (repo_id, repo, asset, version, major, minor, patch, schema, changes, breaking,"
        " pr_number, head_sha, published_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            repo_id,
            repo,
            asset,
            version,
            major,
            minor,
            patch,
            json.dumps(schema) if schema is not None else None,
            json.dumps(changes, default=str),
            int(bump == "major"),
            pr_number,
            head_sha,
            time.time(),
        ),
    )
    return version


def list_contracts(db: Database, asset: str, *, repo: str | None = None) -> list[Contract]:
    where, args = ("AND repo = ?", (repo,)) if repo else ("", ())
    rows = db.execute(
        "SELECT repo, asset, version, schema, changes, breaking, pr_number, head_sha, published_at FROM contracts"
        f" WHERE asset = ? {where} ORDER BY major DESC, minor DESC, patch DESC",
        (asset, *args),
    ).fetchall()
    return [
        Contract(
            repo=r[0],
            asset=r[1],
            version=r[2],
            schema=json.loads(r[3]) if r[3] else None,
            changes=tuple(json.loads(r[4])),
            breaking=bool(r[5]),
            pr_number=r[6],
            head_sha=r[7],
            published_at=r[8],
        )
        for r in rows
    ]
