"""PostgreSQL, live: ``pg_stat_statements`` joined to the roles that ran each statement.

``pg_stat_statements`` keeps one row per (role, database, normalised statement) with a running
``calls`` count and no times. The watermark is therefore the call count last seen for each
(role, statement): a run counts only the calls made since, and dates them at the run. The
columns of the database's tables (``information_schema.columns``) expand ``select *``.

psycopg is an optional dependency (the ``postgres`` extra): it is imported when a PostgreSQL URL
is read, and a missing driver is a clear message, not a crash.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from urllib.parse import urlsplit, urlunsplit

from app.discovery.aggregate import QueryRow

STATEMENTS = """
SELECT r.rolname, s.queryid::text, s.query, s.calls
FROM pg_stat_statements s
JOIN pg_roles r ON r.oid = s.userid
JOIN pg_database d ON d.oid = s.dbid
WHERE d.datname = current_database()
"""
COLUMNS = """
SELECT table_schema, table_name, column_name FROM information_schema.columns
WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
ORDER BY table_schema, table_name, ordinal_position
"""
RESET = "SELECT stats_reset::text FROM pg_stat_statements_info"
"""When the statistics were last reset (PostgreSQL 14+): a reset since the last run makes every
count new, even one that happens to have grown back past the old value."""
CONNECT_TIMEOUT = 10


class DriverMissing(RuntimeError):
    """psycopg is not installed."""


def is_postgres_url(source: str) -> bool:
    return source.startswith(("postgres://", "postgresql://"))


def redacted(url: str) -> str:
    """The URL without its password: the watermark's key and what is shown."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{netloc[0].split(':', 1)[0]}:***@{netloc[1]}"))


def _driver() -> ModuleType:
    try:
        import psycopg  # optional: the `postgres` extra
    except ImportError as error:
        raise DriverMissing(
            "reading PostgreSQL needs psycopg: pip install 'tessera[postgres]' (or export pg_stat_statements"
            " to CSV and pass the file with --kind postgres)"
        ) from error
    return psycopg


@dataclass
class Snapshot:
    """What one read of the server gave: the statements and the known schemas."""

    calls: dict[str, int]
    """``role/queryid`` → calls: the next watermark."""
    reset: str | None
    rows: list[QueryRow]
    schemas: dict[str, list[str]]


def read_server(url: str, previous: Mapping[str, int], *, now: dt.datetime, reset: str | None = None) -> Snapshot:
    """Statements run since ``previous`` (calls by ``role/queryid``, taken when the statistics
    were last reset at ``reset``), as rows dated ``now``."""
    psycopg = _driver()
    with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT, autocommit=True) as conn:
        try:
            found = conn.execute(RESET).fetchone()
            reset_now = found[0] if found else None
        except psycopg.Error:  # before PostgreSQL 14: only a shrinking count shows a reset
            reset_now = None
        if reset_now != reset:
            previous = {}
        schemas: dict[str, list[str]] = {}
        for schema, table, column in conn.execute(COLUMNS):
            schemas.setdefault(f"{schema}.{table}".lower(), []).append(column)
        calls: dict[str, int] = {}
        texts: dict[str, tuple[str, str]] = {}
        for role, queryid, query, count in _statements(conn):
            key = f"{role}/{queryid}"  # one statement may have a top-level and a nested row: summed
            calls[key] = calls.get(key, 0) + int(count)
            if query:
                texts.setdefault(key, (role, query))
    rows: list[QueryRow] = []
    for key, (role, query) in texts.items():
        since = calls[key] - int(previous.get(key, 0))
        if since < 0:  # the statistics were reset: everything counted now is new
            since = calls[key]
        if since > 0:
            rows.append(QueryRow(query=query, user=None, role=role, at=now, schema="public", calls=since))
    return Snapshot(calls, reset_now, rows, schemas)


def _statements(conn: object) -> Iterator[tuple[str, str, str, int]]:
    cursor = conn.execute(STATEMENTS)  # type: ignore[attr-defined]
    while batch := cursor.fetchmany(1000):
        yield from batch
