"""One discovery run: a source read into the store, incrementally; and ``tessera discover``.

``discover`` names the source's relations by the registry's fqns and expands ``select *`` from
the registry's columns (and, live, the database's own), skips what the source's watermark says
an earlier run read, records the reads as observed consumers and moves the watermark, all in one
store transaction. What could not be read is counted in the run's summary (and stored with the
watermark), never fatal.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.config import Settings
from app.discovery import bi, bigquery, logs, postgres, snowflake
from app.discovery.aggregate import Aggregator, Malformed, QueryRow, RunCounts
from app.discovery.warehouse_api import SourceError
from app.store import Store
from app.store import observed as observed_sql
from app.store.observed import ObservedRead
from rules.observed import mapped_team

LOG_KINDS: tuple[str, ...] = ("postgres", "snowflake", "bigquery", "databricks", "redshift", "jsonl")
BI_KINDS: tuple[str, ...] = ("lookml", "metabase", "tableau")
KINDS: tuple[str, ...] = LOG_KINDS + BI_KINDS
BI_DIALECT = "snowflake"
"""The dialect LookML derived tables and Metabase native questions are read in unless told."""


class DiscoveryError(Exception):
    """The source cannot be read at all (missing file, unknown kind, no driver, no connection)."""


@dataclass(frozen=True)
class DiscoveryResult:
    source: str
    kind: str
    reads: tuple[ObservedRead, ...]
    counts: RunCounts


def detect_kind(source: str) -> str:
    """The kind a source evidently is; otherwise ask for ``--kind``."""
    if postgres.is_postgres_url(source):
        return "postgres"
    if snowflake.is_snowflake_url(source):
        return "snowflake"
    if bigquery.is_bigquery_url(source):
        return "bigquery"
    path = Path(source)
    if path.is_dir() and next(path.rglob("*.lkml"), None) is not None:
        return "lookml"
    if path.is_file() and path.name.lower().endswith((".jsonl", ".ndjson")):
        return "jsonl"
    raise DiscoveryError(f"cannot tell what kind of source {source!r} is: pass --kind ({', '.join(KINDS)})")


def source_key(source: str) -> str:
    """The watermark's key: a URL without its password, or the absolute path."""
    return postgres.redacted(source) if "://" in source else str(Path(source).resolve())


async def discover(
    store: Store, source: str, kind: str | None = None, *, now: dt.datetime, dialect: str | None = None
) -> DiscoveryResult:
    """Read ``source`` and record what it shows in the store."""
    kind = kind or detect_kind(source)
    if kind not in KINDS:
        raise DiscoveryError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")
    live = kind == "postgres" and postgres.is_postgres_url(source)
    over_http = (kind == "snowflake" and snowflake.is_snowflake_url(source)) or (
        kind == "bigquery" and bigquery.is_bigquery_url(source))
    if "://" in source and not (live or over_http):
        raise DiscoveryError(f"{postgres.redacted(source)}: a {kind} source is not read from this URL"
                             " (live: postgresql://, snowflake://, bigquery://)")
    if not (live or over_http) and not Path(source).exists():
        raise DiscoveryError(f"{source}: no such file or folder")
    key = source_key(source)
    schemas, relations = await store.read(observed_sql.known_schemas)
    state = await store.read(lambda db: observed_sql.watermark(db, key))
    since = logs.parse_time(state.get("newest")) if state.get("newest") else None
    new_state: dict[str, Any] = {}
    if live:
        try:
            snapshot = await asyncio.to_thread(
                postgres.read_server, source, state.get("calls") or {}, now=now, reset=state.get("reset"))
        except postgres.DriverMissing as error:
            raise DiscoveryError(str(error)) from None
        except Exception as error:  # noqa: BLE001 - psycopg's errors: refused, auth, no pg_stat_statements
            raise DiscoveryError(f"{postgres.redacted(source)}: {str(error).strip().splitlines()[0]}") from None
        aggregator = Aggregator(dialect="postgres", schemas={**snapshot.schemas, **schemas}, relations=relations)
        await asyncio.to_thread(aggregator.add_all, snapshot.rows)
        new_state = {"calls": snapshot.calls, "reset": snapshot.reset}
    elif over_http:
        aggregator = Aggregator(dialect=dialect or logs.LAYOUTS[kind].dialect, schemas=schemas, relations=relations,
                                since=since)
        until = await _read_over_http(aggregator, kind, source, since=since, now=now)
        new_state = {"newest": until.isoformat(), "newest_query": (aggregator.newest or until).isoformat()}
    elif kind in LOG_KINDS:
        layout = logs.LAYOUTS[kind]
        aggregator = Aggregator(dialect=dialect or layout.dialect, schemas=schemas, relations=relations, since=since)
        await asyncio.to_thread(aggregator.add_all, logs.query_rows(Path(source), layout, now=now))
        if layout.time and aggregator.newest is not None:
            new_state = {"newest": aggregator.newest.isoformat()}
    else:
        aggregator = Aggregator(dialect=dialect or BI_DIALECT, schemas=schemas, relations=relations)
        await asyncio.to_thread(add_bi, aggregator, _bi_reads(kind, Path(source), dialect or BI_DIALECT), now)
    reads = tuple(aggregator.reads())
    counts = aggregator.counts

    def write(db: Any) -> None:
        observed_sql.record(db, reads, source_kind=kind)
        observed_sql.save_watermark(db, key, kind=kind, state=new_state or state, last_run=counts.to_dict())

    await store.write(write)
    return DiscoveryResult(key, kind, reads, counts)


async def _read_over_http(
    aggregator: Aggregator, kind: str, source: str, *, since: dt.datetime | None, now: dt.datetime
) -> dt.datetime:
    """Stream a Snowflake or BigQuery query history into ``aggregator`` batch by batch; the end of
    the window read (the next watermark)."""
    batches: AsyncIterator[list[QueryRow | Malformed]]
    try:
        if kind == "snowflake":
            batches, latency = snowflake.history(snowflake.parse_url(source), since=since, now=now), snowflake.LATENCY
        else:
            batches, latency = bigquery.jobs(bigquery.parse_url(source), since=since, now=now), bigquery.LATENCY
        async for batch in batches:
            await asyncio.to_thread(aggregator.add_all, batch)
    except SourceError as error:
        raise DiscoveryError(f"{source_key(source)}: {error}") from None
    return max(now - latency, since) if since is not None else now - latency


def _bi_reads(kind: str, path: Path, dialect: str) -> Iterable[bi.BiRead | Malformed]:
    if kind == "lookml":
        return bi.lookml_reads(path, dialect=dialect)
    files = logs.files_of(path) if path.is_dir() else [path]
    if kind == "metabase":
        return (r for f in files for r in bi.metabase_reads(f, dialect=dialect))
    return (r for f in files for r in bi.tableau_reads(f))


def add_bi(aggregator: Aggregator, reads: Iterable[bi.BiRead | Malformed], now: dt.datetime) -> None:
    """BI objects' reads into the aggregator; what could not be read is counted."""
    for read in reads:
        if isinstance(read, Malformed):
            aggregator.counts.malformed += 1
            aggregator.counts.note(f"{read.where}: {read.reason}")
            continue
        aggregator.counts.rows += 1
        aggregator.add_bi(read.relation, read.reader, read.columns, every_column=read.every_column,
                          folder=read.folder, seen=now)


def as_json(reads: Iterable[ObservedRead], mappings: dict[tuple[str, str], str]) -> list[dict[str, Any]]:
    """The ``tessera discover --format json`` list (DESIGN)."""
    out = []
    for read in reads:
        team = mapped_team(read.reader_kind, read.reader, read.folder, mappings)
        out.append({
            "asset": read.asset, "columns": list(read.columns), "reader": {"kind": read.reader_kind, "name": read.reader},
            "team": team, "queries": read.queries, "last_seen": read.last_seen or None,
        })
    return out


# --- tessera discover -------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="a connection URL (postgresql://…, snowflake://USER@ACCOUNT?…,"
                        " bigquery://PROJECT/REGION?…), an exported file or a folder")
    parser.add_argument("--kind", choices=KINDS, help="what the source is (found from the URL or file when clear)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--dialect", help="SQL dialect of the queries (default: the warehouse's own)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        return asyncio.run(_run(args, settings))
    except DiscoveryError as error:
        print(f"tessera discover: {error}", file=sys.stderr)
        return 2


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    async with Store(settings.database) as store:
        result = await discover(store, args.source, args.kind, now=dt.datetime.now(dt.UTC), dialect=args.dialect)
        mappings = await store.read(observed_sql.mapping_index)
    rows = as_json(result.reads, mappings)
    counts = result.counts
    if args.format == "json":
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        for row in rows:
            columns = ", ".join(row["columns"]) or "(no column)"
            print(f"{row['asset']}: {row['reader']['kind']} {row['reader']['name']} → {row['team'] or 'unmapped'}"
                  f" · {row['queries']} queries · last {row['last_seen']} · {columns}")
    print(
        f"{result.kind} {result.source}: {counts.rows} rows read ({counts.skipped} before the watermark),"
        f" {len(rows)} consumers, {counts.unparsed} queries not parsed, {counts.malformed} malformed rows",
        file=sys.stderr,
    )
    for example in counts.examples:
        print(f"  {example}", file=sys.stderr)
    return 0
