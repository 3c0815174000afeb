"""Who last changed a file before a commit, as GitHub answered: shared by every replica and kept
across restarts, so each (repository, path, base commit) costs one API request, ever.

A file's history before a given commit never changes, so an answer is never stale; the table is
bounded by dropping the oldest answers beyond :data:`MAX_ROWS` (a base commit that old is rarely
a pull request's base any more), in the queue's periodic prune (:func:`trim`), not on each write:
finding the cut-off walks the whole index. Table (migration ``0071_history_cache``):
``history_cache``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping

from app.store.db import Database

MAX_ROWS = 50_000
"""Answers kept (a few hundred bytes each): thousands of pull requests' readers."""


def m0071_history_cache(db: Database) -> None:
    """Authors of each looked-up file's latest commits before a base commit."""
    db.execute(
        "CREATE TABLE history_cache (repo_id INTEGER NOT NULL, path TEXT NOT NULL, base_sha TEXT NOT NULL,"
        " authors TEXT NOT NULL, fetched_at REAL NOT NULL, PRIMARY KEY (repo_id, path, base_sha))"
    )
    db.execute("CREATE INDEX history_cache_fetched ON history_cache (fetched_at)")


def recent_authors(db: Database, repo_id: int, base_sha: str, paths: Collection[str]) -> dict[str, tuple[str, ...]]:
    """The stored answers for those of ``paths`` looked up before at ``base_sha``."""
    if not paths:
        return {}
    marks = ", ".join("?" * len(paths))
    rows = db.execute(
        f"SELECT path, authors FROM history_cache WHERE repo_id = ? AND base_sha = ? AND path IN ({marks})",
        (repo_id, base_sha, *paths),
    ).fetchall()
    return {path: tuple(json.loads(authors)) for path, authors in rows}


def put_recent_authors(
    db: Database, repo_id: int, base_sha: str, found: Mapping[str, tuple[str, ...]], *, now: float
) -> None:
    """Store new answers (:func:`trim` bounds the table)."""
    if not found:
        return
    db.executemany(
        "INSERT INTO history_cache (repo_id, path, base_sha, authors, fetched_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (repo_id, path, base_sha) DO UPDATE SET authors = excluded.authors,"
        " fetched_at = excluded.fetched_at",
        [(repo_id, path, base_sha, json.dumps(list(authors)), now) for path, authors in found.items()],
    )


def trim(db: Database, max_rows: int | None = None) -> int:
    """Drop the oldest answers beyond ``max_rows`` (:data:`MAX_ROWS`); how many were dropped."""
    keep = MAX_ROWS if max_rows is None else max_rows
    return int(
        db.execute(
            "DELETE FROM history_cache WHERE fetched_at < ("
            "SELECT fetched_at FROM history_cache ORDER BY fetched_at DESC LIMIT 1 OFFSET ?)",
            (keep - 1,),
        ).rowcount
    )


def count(db: Database) -> int:
    (rows,) = db.execute("SELECT count(*) FROM history_cache").fetchone()
    return int(rows)
