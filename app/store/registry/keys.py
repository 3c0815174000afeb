"""REST API keys: a prefix to find the key by, a hash of its secret, its team and scopes."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.store.db import Database
from app.store.registry.common import iso

SCOPES = ("read", "write", "admin")


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
            "expires_at": iso(self.expires_at),
            "revoked_at": iso(self.revoked_at),
            "created_at": iso(self.created_at),
            "created_by": self.created_by,
            "last_used_at": iso(self.last_used_at),
        }


_KEY_COLUMNS = "id, prefix, secret_hash, team, scopes, expires_at, revoked_at, created_at, created_by, last_used_at"


def _key(row: Sequence[Any] | None) -> ApiKey | None:
    if row is None:
        return None
    values = list(row)
    values[4] = tuple(json.loads(values[4]))
    return ApiKey(*values)


def insert_key(
    db: Database,
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
        " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (prefix, secret_hash, team, json.dumps(sorted(set(scopes))), expires_at, time.time(), created_by),
    )
    found = get_key(db, int(cursor.fetchone()[0]))
    assert found is not None
    return found


def get_key(db: Database, key_id: int) -> ApiKey | None:
    return _key(db.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)).fetchone())


def key_by_prefix(db: Database, prefix: str) -> ApiKey | None:
    return _key(db.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE prefix = ?", (prefix,)).fetchone())


def list_keys(db: Database, team: str) -> list[ApiKey]:
    rows = db.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE team = ? ORDER BY id", (team,)).fetchall()
    return [k for k in (_key(r) for r in rows) if k is not None]


def list_all_keys(db: Database) -> list[ApiKey]:
    """Every team's keys, revoked ones too, oldest first (``tessera keys list``)."""
    rows = db.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY id").fetchall()
    return [k for k in (_key(r) for r in rows) if k is not None]


def revoke_key(db: Database, key_id: int) -> bool:
    cursor = db.execute(
        "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (time.time(), key_id)
    )
    return bool(cursor.rowcount)


def touch_key(db: Database, key_id: int) -> None:
    db.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (time.time(), key_id))
