"""``tessera db copy``: move a store between SQLite and PostgreSQL (either way), verified.

Both databases are brought to the current schema first (the migrations, as ``tessera serve``
applies them), then every table the schema has is copied in batches inside one transaction on the
target, parents before children (foreign keys). A target that already holds rows is refused unless
``force``, which replaces them. Afterwards each table is read again on both sides: the row counts
and a checksum must match. The checksum is computed identically on both engines, in Python, over
canonicalised rows (integers, floats that hold integers, text, bytes and NULL spelled one way;
a delivery's payload as its JSON text), summed as SHA-256 numbers so no ordering is needed (text
sorts differently under PostgreSQL's collation than under SQLite's bytes).

PostgreSQL's identity columns and the queue's ``delivery_order`` sequence are moved past the copied
rows, so the next insert does not collide with a copied id.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from app.store.db import POSTGRESQL, Database, connect_postgresql, connect_sqlite, table_names
from app.store.deliveries import decode_payload, encode_payload
from app.store.migrations import apply_migrations
from app.store.postgres import MIGRATION_LOCK

BATCH = 1000
"""Rows per INSERT batch."""
SEEDED = frozenset({"registry_meta"})
"""Tables a fresh store already has rows in (the migrations seed them): not what makes a target
"not empty"; they are replaced by the source's like the rest."""
_MOD = 1 << 256
_CANONICAL: dict[tuple[str, str], Callable[[object], object]] = {("deliveries", "payload"): decode_payload}
"""Columns compared by meaning, not bytes: a payload stored as TEXT before compression is compressed
on the way (PostgreSQL keeps payloads as BYTEA), and is the same delivery."""


class CopyError(Exception):
    """What the operator must fix (a bad URL, an unreachable server, a non-empty target)."""


@dataclass(frozen=True)
class TableCopy:
    """One table's outcome."""

    name: str
    source_rows: int
    target_rows: int
    source_checksum: str
    target_checksum: str

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows and self.source_checksum == self.target_checksum


@dataclass(frozen=True)
class CopyReport:
    tables: tuple[TableCopy, ...]

    @property
    def ok(self) -> bool:
        return all(table.ok for table in self.tables)


def parse_url(url: str) -> str:
    """A store location from a URL: ``sqlite:///relative.db``, ``sqlite:////absolute.db`` (a path)
    or ``postgresql://user:password@host:port/database`` (kept as is)."""
    if url.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(url)
        if not parts.hostname and "host=" not in (parts.query or ""):
            raise CopyError(f"{redact(url)}: a PostgreSQL URL needs a host, e.g. postgresql://tessera@db:5432/tessera")
        if not parts.path.strip("/"):
            raise CopyError(f"{redact(url)}: a PostgreSQL URL needs a database name after the host")
        return url
    if url.startswith("sqlite://"):
        path = url[len("sqlite://") :]
        if not path.startswith("/") or path == "/":
            raise CopyError(f"{url}: a SQLite URL is sqlite:///relative/file.db or sqlite:////absolute/file.db")
        return path[1:]
    raise CopyError(
        f"{redact(url)}: not a store URL; use sqlite:///FILE (three slashes, then the path) or"
        " postgresql://USER@HOST:PORT/DATABASE"
    )


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def open_store_database(location: str, *, must_exist: bool) -> Database:
    """A connection to the store at ``location`` (a path or a PostgreSQL URL), at the current schema."""
    if location.startswith(("postgresql://", "postgres://")):
        try:
            db: Database = connect_postgresql(location)
        except psycopg.Error as exc:
            raise CopyError(f"cannot connect to {redact(location)}: {str(exc).strip()}") from None
        db.execute("SELECT pg_advisory_lock(?)", (MIGRATION_LOCK,))
        try:
            apply_migrations(db)
        finally:
            db.execute("SELECT pg_advisory_unlock(?)", (MIGRATION_LOCK,))
        return db
    if must_exist and not Path(location).is_file():
        raise CopyError(f"no SQLite database at {Path(location).absolute()}")
    Path(location).parent.mkdir(parents=True, exist_ok=True)
    sqlite = connect_sqlite(location)
    apply_migrations(sqlite)
    return sqlite


def columns(db: Database, table: str) -> list[str]:
    if db.dialect == POSTGRESQL:
        rows = db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = ? ORDER BY ordinal_position",
            (table,),
        ).fetchall()
        return [row[0] for row in rows]
    return [row[1] for row in db.execute(f'PRAGMA table_info("{table}")').fetchall()]


def parents(db: Database, table: str) -> set[str]:
    """Tables ``table`` has foreign keys to."""
    if db.dialect == POSTGRESQL:
        rows = db.execute(
            "SELECT confrelid::regclass::text FROM pg_constraint WHERE contype = 'f' AND conrelid = ?::regclass",
            (table,),
        ).fetchall()
        return {row[0].strip('"') for row in rows}
    return {row[2] for row in db.execute(f'PRAGMA foreign_key_list("{table}")').fetchall()}


def copy_order(db: Database, tables: Sequence[str]) -> list[str]:
    """Parents before children; otherwise by name."""
    pending = {table: parents(db, table) & set(tables) - {table} for table in tables}
    order: list[str] = []
    while pending:
        ready = sorted(t for t, needs in pending.items() if not needs - set(order))
        if not ready:  # a cycle: cannot happen in this schema; copy the rest as they come
            ready = sorted(pending)
        for table in ready:
            order.append(table)
            del pending[table]
    return order


def _canonical(value: object) -> str:
    if value is None:
        return "n"
    if isinstance(value, bool | int):
        return f"i{int(value)}"
    if isinstance(value, Decimal):
        value = int(value) if value == value.to_integral_value() else float(value)
        return _canonical(value)
    if isinstance(value, float):
        return f"i{int(value)}" if value.is_integer() and abs(value) < 2**53 else f"f{value!r}"
    if isinstance(value, bytes | bytearray | memoryview):
        return "b" + bytes(value).hex()
    return "s" + str(value)


def _rows(db: Database, table: str, cols: Sequence[str]) -> Iterable[tuple[object, ...]]:
    quoted = ", ".join(f'"{c}"' for c in cols)
    cursor = db.execute(f'SELECT {quoted} FROM "{table}"')
    while True:
        batch = cursor.fetchmany(BATCH)
        if not batch:
            return
        yield from batch


def table_checksum(db: Database, table: str, cols: Sequence[str]) -> tuple[int, str]:
    """(rows, checksum) of a table, the same on either engine for the same rows."""
    meaning = [_CANONICAL.get((table, c)) for c in cols]
    count, total = 0, 0
    for row in _rows(db, table, cols):
        values = [_canonical(m(v) if m is not None and v is not None else v) for m, v in zip(meaning, row, strict=True)]
        digest = hashlib.sha256(json.dumps(values, ensure_ascii=False).encode()).digest()
        total = (total + int.from_bytes(digest, "big")) % _MOD
        count += 1
    return count, f"{total:064x}"


def _convert(target: Database, table: str, cols: Sequence[str], row: tuple[object, ...]) -> tuple[object, ...]:
    if table != "deliveries" or target.dialect != POSTGRESQL:
        return row
    index = cols.index("payload")
    payload = row[index]
    if isinstance(payload, str):  # stored before compression: PostgreSQL keeps bytes
        return (*row[:index], encode_payload(payload), *row[index + 1 :])
    return row


def _reset_sequences(db: Database, tables: Sequence[str]) -> None:
    for table, column in db.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND is_identity = 'YES'"
    ).fetchall():
        if table in tables:
            db.execute(
                f"SELECT setval(pg_get_serial_sequence(?, ?), coalesce(max(\"{column}\"), 0) + 1, false) FROM \"{table}\"",
                (table, column),
            )
    db.execute("SELECT setval('delivery_order', (SELECT coalesce(max(seq), 0) + 1 FROM deliveries), false)")


def copy_database(
    source_url: str, target_url: str, *, force: bool = False, progress: Callable[[str, int], None] | None = None
) -> CopyReport:
    """Copy every table of the store at ``source_url`` into the one at ``target_url``, verified."""
    source_location, target_location = parse_url(source_url), parse_url(target_url)
    if source_location == target_location:
        raise CopyError("the source and the target are the same database")
    source = open_store_database(source_location, must_exist=True)
    try:
        target = open_store_database(target_location, must_exist=False)
        try:
            return _copy(source, target, force=force, progress=progress)
        finally:
            target.close()
    finally:
        source.close()


def _copy(source: Database, target: Database, *, force: bool, progress: Callable[[str, int], None] | None) -> CopyReport:
    shared = sorted((set(table_names(source)) & set(table_names(target))) - {"_migrations"})
    order = copy_order(target, shared)
    plan = {table: [c for c in columns(target, table) if c in set(columns(source, table))] for table in order}
    occupied = [
        (t, n) for t in order if t not in SEEDED and (n := target.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])
    ]
    if occupied and not force:
        listed = ", ".join(f"{t} ({n})" for t, n in occupied[:5])
        raise CopyError(f"the target is not empty: {listed}; pass --force to replace what it holds")
    with target.atomic():
        for table in reversed(order):
            target.execute(f'DELETE FROM "{table}"')
        for table in order:
            cols = plan[table]
            marks = ", ".join("?" * len(cols))
            insert = f'INSERT INTO "{table}" ({", ".join(chr(34) + c + chr(34) for c in cols)}) VALUES ({marks})'
            batch: list[tuple[object, ...]] = []
            copied = 0
            for row in _rows(source, table, cols):
                batch.append(_convert(target, table, cols, row))
                if len(batch) >= BATCH:
                    target.executemany(insert, batch)
                    copied += len(batch)
                    batch = []
            if batch:
                target.executemany(insert, batch)
                copied += len(batch)
            if progress is not None:
                progress(table, copied)
        if target.dialect == POSTGRESQL:
            _reset_sequences(target, order)
    tables = []
    for table in order:
        rows_source, sum_source = table_checksum(source, table, plan[table])
        rows_target, sum_target = table_checksum(target, table, plan[table])
        tables.append(TableCopy(table, rows_source, rows_target, sum_source, sum_target))
    return CopyReport(tuple(tables))
