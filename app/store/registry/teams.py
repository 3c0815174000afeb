"""Teams: who owns assets and who is asked to acknowledge (slug, name, GitHub team)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.store.db import Database
from app.store.registry.assets import bump_graph_version
from app.store.registry.common import iso


@dataclass(frozen=True)
class Team:
    slug: str
    name: str
    github_team: str | None
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"slug": self.slug, "name": self.name, "github_team": self.github_team, "created_at": iso(self.created_at)}


def get_team(db: Database, slug: str) -> Team | None:
    row = db.execute("SELECT slug, name, github_team, created_at FROM teams WHERE slug = ?", (slug,)).fetchone()
    return None if row is None else Team(*row)


def list_teams(db: Database, *, after: str | None = None, limit: int = 100) -> list[Team]:
    rows = db.execute(
        "SELECT slug, name, github_team, created_at FROM teams WHERE slug > ? ORDER BY slug LIMIT ?",
        (after or "", limit),
    ).fetchall()
    return [Team(*r) for r in rows]


def create_team(db: Database, slug: str, name: str, github_team: str | None) -> Team | None:
    """The new team, or None when the slug is taken."""
    now = time.time()
    cursor = db.execute(
        "INSERT INTO teams (slug, name, github_team, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (slug) DO NOTHING",
        (slug, name, github_team, now, now),
    )
    if not cursor.rowcount:
        return None
    bump_graph_version(db)
    return get_team(db, slug)


def update_team(db: Database, slug: str, fields: Mapping[str, Any]) -> Team | None:
    if get_team(db, slug) is None:
        return None
    allowed = {k: v for k, v in fields.items() if k in ("name", "github_team")}
    if allowed:
        sets = ", ".join(f"{k} = ?" for k in allowed)
        db.execute(f"UPDATE teams SET {sets}, updated_at = ? WHERE slug = ?", (*allowed.values(), time.time(), slug))
        bump_graph_version(db)
    return get_team(db, slug)


def delete_team(db: Database, slug: str) -> bool:
    """Delete a team; its keys are revoked and its API registrations removed with it."""
    cursor = db.execute("DELETE FROM teams WHERE slug = ?", (slug,))
    if not cursor.rowcount:
        return False
    db.execute("UPDATE api_keys SET revoked_at = ? WHERE team = ? AND revoked_at IS NULL", (time.time(), slug))
    db.execute("DELETE FROM registrations WHERE team = ? AND source = 'api'", (slug,))
    bump_graph_version(db)
    return True


def github_teams(db: Database) -> dict[str, str | None]:
    return dict(db.execute("SELECT slug, github_team FROM teams").fetchall())
