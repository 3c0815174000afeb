"""Consumer discovery benchmark: a generated JSON-lines query log streamed through the aggregator.

    .venv/bin/python bench/discovery.py                       # 10,000,000 lines
    .venv/bin/python bench/discovery.py --lines 1000000 --shapes 5000

Writes the log to a temporary file first (not timed), then reads it exactly as
``tessera discover LOG --kind jsonl`` does (``app.discovery.logs.query_rows`` into
``app.discovery.aggregate.Aggregator``) and prints one table: lines, lines/s, distinct query
shapes parsed, consumers found, unparsed and malformed lines, and resident memory sampled every
million lines (peak RSS of the process at the end). Memory must stay flat as lines grow: the
aggregator keeps one entry per (asset, reader) and a bounded cache of parsed shapes, never the
rows.

The log: ``--shapes`` query templates over 40 tables and 12 columns each (CTEs, joins,
``select *``, quoted names, comments), filled with fresh literals on every line so no two lines
repeat; 60 roles and 400 users; one line in 10,000 unparseable and one in 20,000 malformed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from app.discovery.aggregate import Aggregator  # noqa: E402
from app.discovery.logs import LAYOUTS, query_rows  # noqa: E402

TABLES = [f"{schema}.t_{n:02d}" for schema in ("marts", "staging", "finance", "growth") for n in range(10)]
COLUMNS = [f"c_{n:02d}" for n in range(12)]


def templates(count: int, rng: random.Random) -> list[str]:
    """Query shapes with ``{n}``/``{s}`` holes for literals."""
    out = []
    for i in range(count):
        table, other = rng.sample(TABLES, 2)
        cols = rng.sample(COLUMNS, rng.randint(1, 5))
        kind = i % 5
        if kind == 0:
            out.append(f"select {', '.join(cols)} from {table} where {cols[0]} > {{n}} and c_11 = '{{s}}'")
        elif kind == 1:
            out.append(
                f"-- report {i}\nwith x as (select {', '.join(cols)}, c_00 from {table} where c_01 = {{n}})\n"
                f"select {cols[0]}, count(*) from x group by 1"
            )
        elif kind == 2:
            out.append(
                f"select a.{cols[0]}, b.c_03 from {table} a join {other} b on a.c_00 = b.c_00 "
                f"where b.c_02 = '{{s}}' /* dashboard {i} */ limit {{n}}"
            )
        elif kind == 3:
            out.append(f"select * from {table} where c_00 = {{n}}")
        else:
            quoted = ".".join(f'"{p.upper()}"' for p in table.split("."))
            out.append(f'SELECT "{cols[0].upper()}", SUM("C_05") FROM {quoted} WHERE "C_04" = \'{{s}}\' GROUP BY 1')
    return out


def generate(path: Path, lines: int, shapes: int, seed: int = 3) -> None:
    rng = random.Random(seed)
    shapes_list = templates(shapes, rng)
    roles = [f"ROLE_{n:02d}" for n in range(60)]
    users = [f"user{n}@acme.com" for n in range(400)]
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    with path.open("w", buffering=1 << 20) as out:
        for n in range(lines):
            if n % 20_000 == 19_999:
                out.write('{"query": "select 1", "time": \n')
                continue
            query = "select ((( from" if n % 10_000 == 9_999 else shapes_list[rng.randrange(shapes)].format(
                n=rng.randrange(100_000), s=f"v{rng.randrange(10_000)}")
            at = start + dt.timedelta(seconds=n * 0.25)
            out.write(json.dumps({
                "query": query, "user": users[rng.randrange(400)], "role": roles[rng.randrange(60)],
                "time": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }) + "\n")


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--shapes", type=int, default=5_000)
    parser.add_argument("--keep", help="write the log here and keep it (default: a temporary file)")
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="tessera-discovery-bench-")
    path = Path(args.keep) if args.keep else Path(folder) / "log.jsonl"
    began = time.perf_counter()
    generate(path, args.lines, args.shapes)
    size_mb = path.stat().st_size / 1e6
    print(f"generated {args.lines:,} lines ({size_mb:,.0f} MB) in {time.perf_counter() - began:.0f} s", file=sys.stderr)

    aggregator = Aggregator(dialect="postgres")
    samples: list[tuple[int, float]] = []
    start_rss = rss_mb()
    began = time.perf_counter()
    cpu = time.process_time()
    rows = query_rows(path, LAYOUTS["jsonl"], now=dt.datetime.now(dt.UTC))
    batch = []
    for count, row in enumerate(rows, start=1):
        batch.append(row)
        if len(batch) == 10_000:
            aggregator.add_all(batch)
            batch.clear()
        if count % 1_000_000 == 0:
            samples.append((count, rss_mb()))
            print(f"  {count:,} lines, {time.perf_counter() - began:.0f} s, RSS {samples[-1][1]:.0f} MB", file=sys.stderr)
    aggregator.add_all(batch)
    wall = time.perf_counter() - began
    cpu = time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    counts = aggregator.counts
    total = counts.rows + counts.malformed
    if not args.keep:
        path.unlink()
        os.rmdir(folder)

    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")
    print("| what | value |")
    print("|---|---|")
    print(f"| lines read | {total:,} ({size_mb:,.0f} MB) |")
    print(f"| wall s / CPU s | {wall:.1f} / {cpu:.1f} |")
    print(f"| lines/s | {total / wall:,.0f} |")
    print(f"| query shapes parsed (cache misses) / cache hits | {aggregator.cache.misses:,} / {aggregator.cache.hits:,} |")
    print(f"| consumers (asset, reader) | {len(aggregator):,} |")
    print(f"| unparsed / malformed lines | {counts.unparsed:,} / {counts.malformed:,} |")
    print(f"| RSS before reading | {start_rss:.0f} MB |")
    print(f"| RSS at each million lines | {', '.join(f'{r:.0f}' for _, r in samples)} MB |")
    print(f"| peak RSS (process) | {peak:.0f} MB |")


if __name__ == "__main__":
    main()
