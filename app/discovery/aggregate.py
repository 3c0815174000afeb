"""Query-log rows folded into observed reads, in memory bounded by (asset, reader), not by rows.

A :class:`QueryRow` is one query (or one group of identical calls) a source read: its text, who ran
it, when, in which session database and schema, and, where the warehouse lists them itself
(Snowflake's ``ACCESS_HISTORY``), the relations and columns it touched. :class:`Aggregator` parses
the text when needed (through a bounded :class:`~rules.querylog.ReadCache`), names each relation by
the fqn the registry knows, and adds the query to its (asset, reader) entry. Rows at or before the
source's watermark are skipped, so a run reads only what is new; unparseable queries and malformed
rows are counted, with a few examples kept to show, and never stop the run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from app.store.observed import ObservedRead
from rules.observed import resolve_name
from rules.querylog import QueryNotParsed, ReadCache, Schemas, TableRead

MAX_EXAMPLES = 5
"""Examples of unparsed queries and malformed rows kept per run (the rest are only counted)."""


SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "account_usage", "sys", "system"})


def is_system(relation: str) -> bool:
    """The warehouse's own catalog (``pg_catalog``, ``information_schema``, ``pg_stat_*``): the
    tools reading it are not consumers of anyone's data."""
    parts = relation.split(".")
    return bool(SYSTEM_SCHEMAS & set(parts[:-1])) or parts[-1].startswith("pg_")


@dataclass(frozen=True)
class QueryRow:
    query: str | None
    user: str | None
    role: str | None
    at: dt.datetime
    database: str | None = None
    schema: str | None = None
    calls: int = 1
    reads: tuple[TableRead, ...] | None = None
    """Relations and columns the warehouse itself recorded; None: parse ``query``."""
    fallback: tuple[TableRead, ...] = ()
    """What the query is known to read when its text cannot be parsed (BigQuery's
    ``referenced_tables``: every column)."""


@dataclass(frozen=True)
class Malformed:
    """A row a source could not read (missing query or time, bad JSON): counted and shown."""

    where: str
    reason: str


@dataclass
class _Entry:
    columns: set[str]
    every_column: bool
    queries: int
    last_seen: str
    daily: dict[str, int]
    folder: str | None = None


@dataclass
class RunCounts:
    rows: int = 0
    skipped: int = 0
    """Rows at or before the watermark (read by an earlier run)."""
    unparsed: int = 0
    malformed: int = 0
    examples: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.examples) < MAX_EXAMPLES and text[:300] not in self.examples:
            self.examples.append(text[:300])

    def to_dict(self) -> dict[str, object]:
        return {"rows": self.rows, "skipped": self.skipped, "unparsed": self.unparsed,
                "malformed": self.malformed, "examples": list(self.examples)}


class Aggregator:
    """Folds rows into one entry per (asset, reader kind, reader)."""

    def __init__(
        self,
        *,
        dialect: str,
        schemas: Schemas | None = None,
        relations: Mapping[str, str] | None = None,
        since: dt.datetime | None = None,
        cache_size: int = 20_000,
    ) -> None:
        self.cache = ReadCache(dialect=dialect, schemas=schemas, size=cache_size)
        self.relations = relations or {}
        self.since = since
        self.newest = since
        self.counts = RunCounts()
        self._entries: dict[tuple[str, str, str], _Entry] = {}
        self._names: dict[str, str] = {}

    def add_all(self, rows: Iterable[QueryRow | Malformed]) -> None:
        for row in rows:
            if isinstance(row, Malformed):
                self.counts.malformed += 1
                self.counts.note(f"{row.where}: {row.reason}")
            else:
                self.add(row)

    def add(self, row: QueryRow) -> None:
        self.counts.rows += 1
        if self.since is not None and row.at <= self.since:
            self.counts.skipped += 1
            return
        if self.newest is None or row.at > self.newest:
            self.newest = row.at
        reads = row.reads
        if reads is None:
            try:
                reads = self.cache.reads(row.query or "", database=row.database, default_schema=row.schema)
            except QueryNotParsed as error:
                self.counts.unparsed += 1
                self.counts.note(f"not parsed ({error}): {' '.join((row.query or '').split())[:160]}")
                if not row.fallback:
                    return
                reads = row.fallback
        if row.role:
            kind, reader = "role", row.role
        elif row.user:
            kind, reader = "user", row.user
        else:
            self.counts.malformed += 1
            self.counts.note("a row names neither a user nor a role")
            return
        day = row.at.date().isoformat()
        stamp = row.at.isoformat(timespec="seconds")
        for read in reads:
            if is_system(read.relation):
                continue
            key = (self._name(read.relation), kind, reader)
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(set(), False, 0, stamp, {})
            entry.columns.update(read.columns)
            entry.every_column = entry.every_column or read.every_column
            entry.queries += row.calls
            entry.last_seen = max(entry.last_seen, stamp)
            entry.daily[day] = entry.daily.get(day, 0) + row.calls

    def add_bi(self, asset: str, reader: str, columns: Iterable[str], *, every_column: bool,
               folder: str | None, seen: dt.datetime) -> None:
        """A BI object (a Looker explore, a Metabase card, a Tableau data source) reading an asset."""
        key = (self._name(asset), "bi", reader)
        stamp = seen.isoformat(timespec="seconds")
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(set(), False, 0, stamp, {}, folder)
        entry.columns.update(c.lower() for c in columns)
        entry.every_column = entry.every_column or every_column
        entry.folder = entry.folder or folder

    def _name(self, relation: str) -> str:
        found = self._names.get(relation)
        if found is None:
            found = resolve_name(relation, self.relations)
            if len(self._names) < 100_000:
                self._names[relation] = found
        return found

    def reads(self) -> list[ObservedRead]:
        return [
            ObservedRead(
                asset=asset, reader_kind=kind, reader=reader, columns=tuple(sorted(e.columns)),
                every_column=e.every_column, queries=e.queries, last_seen=e.last_seen, folder=e.folder,
                daily=dict(e.daily),
            )
            for (asset, kind, reader), e in sorted(self._entries.items())
        ]

    def __len__(self) -> int:
        return len(self._entries)
