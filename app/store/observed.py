"""Observed consumers: readers found in warehouse query logs and BI tools, and who they belong to.

Tables (migration ``0040_observed``):

- ``observed_consumers``: one row per (asset, reader): the columns read (union), whether some
  query read every column, the BI folder, first and last seen.
- ``observed_daily``: queries per consumer per day, so "in the last 30 days" is a sum, and a
  consumer decays by itself when the log stops mentioning it.
- ``discovery_watermarks``: per source (a connection URL without its password, or a file path),
  where the last run stopped (newest query time, or ``pg_stat_statements`` call counts) and what
  it counted (rows, unparsed queries, malformed rows): a run reads only what is new.
- ``discovery_mappings``: a warehouse role or user, or a BI folder, mapped to a team (the API's
  one-step mapping; ``.tessera.yml`` ``teams.<t>.warehouse_roles`` / ``warehouse_users`` map too
  and win in their repository).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.store.db import Database
from rules.build import relation_resolver
from rules.model import Asset, Coverage, Observation, Registration
from rules.observed import mapped_team, resolve_name


def m0040_observed(db: Database) -> None:
    """Observed consumers, their daily query counts, source watermarks and reader mappings."""
    db.execute(
        """
        CREATE TABLE observed_consumers (
            id INTEGER PRIMARY KEY,
            asset TEXT NOT NULL,
            reader_kind TEXT NOT NULL CHECK (reader_kind IN ('role', 'user', 'bi')),
            reader TEXT NOT NULL,
            folder TEXT,
            source_kind TEXT NOT NULL,
            columns TEXT NOT NULL DEFAULT '[]',
            every_column INTEGER NOT NULL DEFAULT 0,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            UNIQUE (asset, reader_kind, reader)
        )
        """
    )
    db.execute("CREATE INDEX observed_consumers_reader ON observed_consumers (reader_kind, reader)")
    db.execute(
        "CREATE TABLE observed_daily (consumer_id INTEGER NOT NULL REFERENCES observed_consumers(id)"
        " ON DELETE CASCADE, day TEXT NOT NULL, queries INTEGER NOT NULL, PRIMARY KEY (consumer_id, day))"
    )
    db.execute(
        "CREATE TABLE discovery_watermarks (source TEXT PRIMARY KEY, kind TEXT NOT NULL,"
        " state TEXT NOT NULL DEFAULT '{}', last_run TEXT NOT NULL DEFAULT '{}', updated_at REAL NOT NULL)"
    )
    db.execute(
        """
        CREATE TABLE discovery_mappings (
            kind TEXT NOT NULL CHECK (kind IN ('role', 'user', 'folder')),
            name TEXT NOT NULL,
            team TEXT NOT NULL,
            created_by TEXT,
            created_at REAL NOT NULL,
            PRIMARY KEY (kind, name)
        )
        """
    )


@dataclass(frozen=True)
class ObservedRead:
    """What discovery found for one (asset, reader): the unit a source run produces."""

    asset: str
    reader_kind: str
    reader: str
    columns: tuple[str, ...] = ()
    every_column: bool = False
    queries: int = 0
    last_seen: str = ""
    """ISO timestamp of the newest query (or when a BI object was read)."""
    folder: str | None = None
    daily: Mapping[str, int] = field(default_factory=dict, hash=False)
    """Queries per ISO day."""


def record(db: Database, reads: Iterable[ObservedRead], *, source_kind: str) -> int:
    """Merge a run's reads into the store (columns union, counts added per day); how many."""
    count = 0
    for read in reads:
        count += 1
        row = db.execute(
            "SELECT id, columns, every_column, last_seen FROM observed_consumers"
            " WHERE asset = ? AND reader_kind = ? AND reader = ?",
            (read.asset, read.reader_kind, read.reader),
        ).fetchone()
        if row is None:
            cursor = db.execute(
                "INSERT INTO observed_consumers (asset, reader_kind, reader, folder, source_kind, columns,"
                " every_column, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (read.asset, read.reader_kind, read.reader, read.folder, source_kind,
                 json.dumps(sorted(set(read.columns))), int(read.every_column), read.last_seen, read.last_seen),
            )
            consumer_id = cursor.fetchone()[0]
        else:
            consumer_id = row[0]
            columns = sorted(set(json.loads(row[1])) | set(read.columns))
            db.execute(
                "UPDATE observed_consumers SET columns = ?, every_column = ?, last_seen = ?,"
                " folder = coalesce(?, folder), source_kind = ? WHERE id = ?",
                (json.dumps(columns), int(bool(row[2]) or read.every_column), max(row[3], read.last_seen),
                 read.folder, source_kind, consumer_id),
            )
        for day, queries in read.daily.items():
            db.execute(
                "INSERT INTO observed_daily (consumer_id, day, queries) VALUES (?, ?, ?)"
                " ON CONFLICT (consumer_id, day) DO UPDATE SET queries = observed_daily.queries + excluded.queries",
                (consumer_id, day, queries),
            )
    return count


def _since(today: dt.date, window_days: int) -> str:
    return (today - dt.timedelta(days=window_days)).isoformat()


def list_observed(
    db: Database,
    *,
    today: dt.date,
    window_days: int = 30,
    asset: str | None = None,
    team: str | None = None,
    unmapped: bool = False,
    after_id: int = 0,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Observed consumers with their mapped team and the queries of the last ``window_days``."""
    mappings = mapping_index(db)
    where, args = ["c.id > ?"], [after_id]
    if asset:
        where.append("c.asset = ?")
        args.append(asset.lower())
    rows = db.execute(
        "SELECT c.id, c.asset, c.reader_kind, c.reader, c.folder, c.source_kind, c.columns, c.every_column,"
        " c.first_seen, c.last_seen, coalesce((SELECT sum(d.queries) FROM observed_daily d"
        "   WHERE d.consumer_id = c.id AND d.day >= ?), 0)"
        f" FROM observed_consumers c WHERE {' AND '.join(where)} ORDER BY c.id",
        (_since(today, window_days), *args),
    ).fetchall()
    out: list[dict[str, Any]] = []
    cutoff = _since(today, window_days)
    for row in rows:
        found = _team(mappings, row[2], row[3], row[4])
        if (team and found != team) or (unmapped and found is not None):
            continue
        out.append({
            "id": row[0], "asset": row[1], "columns": json.loads(row[6]), "every_column": bool(row[7]),
            "reader": {"kind": row[2], "name": row[3]}, "folder": row[4], "source": row[5], "team": found,
            "queries": row[10], "first_seen": row[8], "last_seen": row[9], "stale": row[9][:10] < cutoff,
        })
        if len(out) >= limit:
            break
    return out


def unmapped_readers(db: Database, *, today: dt.date, window_days: int = 30) -> list[dict[str, Any]]:
    """Readers no mapping gives a team, grouped: how many assets they read (and the first
    ``MAX_ASSETS_NAMED`` by name), how often, when last."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for row in list_observed(db, today=today, window_days=window_days, unmapped=True, limit=1_000_000):
        kind, name = row["reader"]["kind"], row["reader"]["name"]
        key = (kind, name) if kind != "bi" else ("folder", row["folder"] or "")
        group = groups.setdefault(key, {"kind": key[0], "name": key[1], "assets": 0, "assets_read": [],
                                        "queries": 0, "last_seen": ""})
        group["assets"] += 1
        if row["asset"] not in group["assets_read"]:
            group["assets_read"].append(row["asset"])
        group["queries"] += row["queries"]
        group["last_seen"] = max(group["last_seen"], row["last_seen"])
    for group in groups.values():
        group["assets_read"] = sorted(group["assets_read"])[:MAX_ASSETS_NAMED]
    return sorted(groups.values(), key=lambda g: (-g["queries"], g["kind"], g["name"]))


MAX_ASSETS_NAMED = 20
"""The assets an unmapped reader reads that are named (all are counted)."""


def observed_registrations(
    db: Database, *, today: dt.date, window_days: int = 30
) -> list[Registration]:
    """Every observed consumer as the engine reads it (team from the store's mappings, or none;
    the repository's ``.tessera.yml`` may map it at analysis time)."""
    return [
        Registration(
            team=row["team"] or "",
            asset=row["asset"],
            columns=tuple(row["columns"]),
            source=f"observed:{row['source']}",
            observed=Observation(
                reader_kind=row["reader"]["kind"], reader=row["reader"]["name"], queries=row["queries"],
                last_seen=row["last_seen"][:10], every_column=row["every_column"], folder=row["folder"],
                window_days=window_days,
            ),
        )
        for row in list_observed(db, today=today, window_days=window_days, limit=10_000_000)
    ]


# --- mappings -----------------------------------------------------------------------------------


def mapping_index(db: Database) -> dict[tuple[str, str], str]:
    return {(k, n): t for k, n, t in db.execute("SELECT kind, name, team FROM discovery_mappings")}


def _team(mappings: Mapping[tuple[str, str], str], kind: str, reader: str, folder: str | None) -> str | None:
    return mapped_team(kind, reader, folder, mappings)


def list_mappings(db: Database) -> list[dict[str, Any]]:
    return [
        {"kind": k, "name": n, "team": t, "created_by": by, "created_at": at}
        for k, n, t, by, at in db.execute(
            "SELECT kind, name, team, created_by, created_at FROM discovery_mappings ORDER BY kind, name"
        )
    ]


def set_mapping(db: Database, *, kind: str, name: str, team: str, created_by: str | None) -> dict[str, Any]:
    """Map a reader (role, user) or BI folder to a team, replacing an earlier mapping of it."""
    now = time.time()
    db.execute(
        "INSERT INTO discovery_mappings (kind, name, team, created_by, created_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (kind, name) DO UPDATE SET team = excluded.team, created_by = excluded.created_by,"
        " created_at = excluded.created_at",
        (kind, name.strip().lower(), team, created_by, now),
    )
    return {"kind": kind, "name": name.strip().lower(), "team": team, "created_by": created_by, "created_at": now}


# --- watermarks ---------------------------------------------------------------------------------


def watermark(db: Database, source: str) -> dict[str, Any]:
    row = db.execute("SELECT state FROM discovery_watermarks WHERE source = ?", (source,)).fetchone()
    return json.loads(row[0]) if row else {}


def save_watermark(
    db: Database, source: str, *, kind: str, state: Mapping[str, Any], last_run: Mapping[str, Any]
) -> None:
    db.execute(
        "INSERT INTO discovery_watermarks (source, kind, state, last_run, updated_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (source) DO UPDATE SET kind = excluded.kind, state = excluded.state,"
        " last_run = excluded.last_run, updated_at = excluded.updated_at",
        (source, kind, json.dumps(state), json.dumps(last_run), time.time()),
    )


def last_runs(db: Database) -> list[dict[str, Any]]:
    """What each source's last run counted (rows read, queries not parsed, malformed rows)."""
    return [
        {"source": s, "kind": k, **json.loads(r), "updated_at": at}
        for s, k, r, at in db.execute(
            "SELECT source, kind, last_run, updated_at FROM discovery_watermarks ORDER BY source"
        )
    ]


def coverage(db: Database) -> list[Coverage]:
    """Each discovery source's kind and the day of its last run, if that run read the log: where
    the engine learns which query logs are fresh enough to say that nobody reads a column. A
    source whose last run failed (the schedule records its error) covers nothing until a run
    succeeds again: a log that could not be read cannot show that nobody reads a column."""
    return [
        Coverage(kind=kind, last_run=dt.datetime.fromtimestamp(at, dt.UTC).date().isoformat())
        for kind, last_run, at in db.execute(
            "SELECT kind, last_run, updated_at FROM discovery_watermarks ORDER BY source"
        )
        if "error" not in json.loads(last_run)
    ]


def known_schemas(db: Database) -> tuple[dict[str, list[str]], dict[str, str]]:
    """From the registry: columns by relation and fqn (for ``select *``), and the relation names
    (with their unambiguous suffixes) → fqn, as the engine resolves compiled SQL."""
    by_asset: dict[int, list[str]] = {}
    for asset_id, name in db.execute("SELECT asset_id, name FROM columns ORDER BY asset_id, position"):
        by_asset.setdefault(asset_id, []).append(name)
    columns: dict[str, list[str]] = {}
    assets: list[Asset] = []
    for asset_id, fqn, kind, relation in db.execute("SELECT id, fqn, kind, relation FROM assets"):
        names = by_asset.get(asset_id, [])
        columns.setdefault(fqn.lower(), names)
        if relation:
            columns.setdefault(resolve_name(relation, {}), names)
        assets.append(Asset(fqn=fqn, kind=kind, relation=relation))
    return columns, relation_resolver(assets).keys
