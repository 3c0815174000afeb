"""What a store tells ``tessera check --db``: registrations and observed consumers, so a producer
sees locally who would be asked, and the query logs discovery reads. Opened read-only: a check
never writes.

Its own module so that a check without ``--db`` never loads the store, its PostgreSQL driver or
sqlite-utils (``app.check`` imports it only for ``--db``).
"""

from __future__ import annotations

import datetime
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import psycopg
import sqlite_utils

from app.store import observed as observed_sql
from app.store import registry as registry_sql
from app.store.copy import redact as redact_url
from app.store.db import Database, connect_postgresql, is_postgresql_url, table_names
from rules.model import Coverage, Registration


class StoreUnreadable(Exception):
    """``--db`` names no store this check can read; the message says why, for the user."""


@dataclass(frozen=True)
class StoreReads:
    """What a store tells the check: who reads what, and which query logs discovery reads."""

    registrations: tuple[Registration, ...] = ()
    coverage: tuple[Coverage, ...] = ()


def store_registrations(db: str | None, *, today: datetime.date) -> StoreReads:
    """What a store knows consumers read: API and SQL registrations and observed consumers, so a
    producer sees locally who would be asked, and the query logs that say when nobody reads.
    Opened read-only: a check never writes to it."""
    if not db:
        return StoreReads()
    if is_postgresql_url(db):
        return _postgresql_registrations(db, today=today)
    if "://" in db:
        raise StoreUnreadable(f"--db {db.split('://', 1)[0]}://…: give a SQLite store file or a postgresql:// URL")
    path = Path(db)
    if not path.is_file():
        raise StoreUnreadable(f"--db {db}: no such store file")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        store = sqlite_utils.Database(conn)
        return _registrations_in(store, set(store.table_names()), today=today)
    except sqlite3.DatabaseError as error:
        raise StoreUnreadable(f"--db {db}: not a Tessera store ({error})") from None
    finally:
        conn.close()


def _registrations_in(db: Database, tables: set[str], *, today: datetime.date) -> StoreReads:
    """Registrations, observed consumers and discovery's sources in an open store (either
    engine); a store older than these tables simply has none of them."""
    found: list[Registration] = []
    if "registrations" in tables:
        found += registry_sql.all_registrations(db)
    if "observed_consumers" in tables:
        found += observed_sql.observed_registrations(db, today=today)
    logs = observed_sql.coverage(db) if "discovery_watermarks" in tables else []
    return StoreReads(tuple(found), tuple(logs))


def _postgresql_registrations(url: str, *, today: datetime.date) -> StoreReads:
    """``store_registrations`` on a PostgreSQL store, in a read-only transaction."""
    label = redact_url(url)
    try:
        db = connect_postgresql(url)
    except psycopg.Error as error:
        raise StoreUnreadable(f"--db {label}: cannot connect ({str(error).strip().splitlines()[0]})") from None
    try:
        with db.atomic():
            db.execute("SET TRANSACTION READ ONLY")
            return _registrations_in(db, set(table_names(db)), today=today)
    except psycopg.Error as error:
        raise StoreUnreadable(f"--db {label}: not a Tessera store ({str(error).strip().splitlines()[0]})") from None
    finally:
        db.close()
