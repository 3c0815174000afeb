"""Registrations: a team declaring it reads an asset (through the API, or found in SQL by a sync)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

from app.store.db import Database
from app.store.registry.assets import bump_graph_version
from app.store.registry.common import iso
from rules.model import Registration

_REG_COLUMNS = "id, team, asset, columns, version, note, source, created_by, created_at"


def _registration(row: Sequence[Any]) -> dict[str, Any]:
    keys = [c.strip() for c in _REG_COLUMNS.split(",")]
    item = dict(zip(keys, row, strict=True))
    item["columns"] = json.loads(item["columns"])
    item["created_at"] = iso(item["created_at"])
    return item


def create_registration(
    db: Database,
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
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (team, asset, json.dumps(list(columns)), version, note, source, created_by, time.time()),
        )
        reg_id, created = int(cursor.fetchone()[0]), True
    bump_graph_version(db)
    found = get_registration(db, reg_id)
    assert found is not None
    return found, created


def get_registration(db: Database, reg_id: int) -> dict[str, Any] | None:
    row = db.execute(f"SELECT {_REG_COLUMNS} FROM registrations WHERE id = ?", (reg_id,)).fetchone()
    return None if row is None else _registration(row)


def list_registrations(
    db: Database,
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


def delete_registration(db: Database, reg_id: int) -> bool:
    deleted = bool(db.execute("DELETE FROM registrations WHERE id = ?", (reg_id,)).rowcount)
    if deleted:
        bump_graph_version(db)
    return deleted


def replace_sql_registrations(db: Database, repo: str, found: Iterable[Registration]) -> None:
    """The registrations SQL in ``repo`` implies (source ``sql:<repo>/<path>``), replacing the last sync's."""
    db.execute("DELETE FROM registrations WHERE source LIKE ?", (f"sql:{repo}/%",))
    now = time.time()
    db.executemany(
        "INSERT INTO registrations (team, asset, columns, version, note, source, created_by, created_at)"
        " VALUES (?, ?, ?, NULL, ?, ?, 'sync', ?) ON CONFLICT (team, asset, source) DO UPDATE SET"
        " columns = excluded.columns, version = NULL, note = excluded.note, created_by = 'sync',"
        " created_at = excluded.created_at",
        [(r.team, r.asset, json.dumps(list(r.columns)), r.note, r.source, now) for r in found],
    )
    bump_graph_version(db)


def all_registrations(db: Database) -> list[Registration]:
    """Every registration as the engine reads them (the PR workflow passes these to ``analyze``)."""
    return [
        Registration(team=team, asset=asset, columns=tuple(json.loads(cols)), note=note, source=source)
        for team, asset, cols, note, source in db.execute(
            "SELECT team, asset, columns, note, source FROM registrations ORDER BY id"
        )
    ]


def registrations_for(db: Database, fqns: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    wanted = sorted(set(fqns))
    out: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        for row in db.execute(f"SELECT {_REG_COLUMNS} FROM registrations WHERE asset IN ({marks})", chunk):
            reg = _registration(row)
            out.setdefault(reg["asset"], []).append(reg)
    return out


def registration_rows(db: Database) -> list[tuple[str, int, str, tuple[str, ...], str, str]]:
    """Every registration as (asset, id, team, columns, source, note), for the impact index."""
    return [
        (row[2], row[0], row[1], tuple(json.loads(row[3])), row[4], row[5])
        for row in db.execute("SELECT id, team, asset, columns, source, note FROM registrations")
    ]
