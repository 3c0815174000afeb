"""SQLite against PostgreSQL, one replica against two: webhook intake and the impact query.

    .venv/bin/python bench/replicas.py                       # 3 interleaved rounds, prints a table
    .venv/bin/python bench/replicas.py --rounds 5 --requests 20000 --record

Intake: signed ~25 KB deliveries, 50 in flight, from ``bench/intake.py``'s light HTTP/1.1 client,
into real ``tessera serve`` processes on a fresh database each run: SQLite (one replica; the
default ``synchronous=FULL``) and PostgreSQL with one and with two replicas (the load split
evenly over them, straight to each replica's port: no proxy in between). Storage is durable
before every reply on both: SQLite fsyncs each group commit, and the PostgreSQL server started
here keeps ``fsync``, ``synchronous_commit`` and ``full_page_writes`` on (the test suite's server
turns them off for speed). The configurations take turns within each round, so a change in the
machine's load reaches all of them alike. Stored is counted in the database afterwards.

Impact: ``bench/registry.py``'s 5,000-model registry synced through the API, then
``GET /api/v1/assets/{fqn}/impact?column=`` for random models and columns, on each backend.

``--record`` appends the tables to bench/RESULTS.md under "Fourth session", with the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import registry  # noqa: E402  (bench/registry.py, beside this file)
from intake import cpu_model, make_bodies, percentile, send_all_raw  # noqa: E402
from results import RESULTS  # noqa: E402

from tests.pg import PostgresServer, find_bindir, start_server  # noqa: E402

SECRET = "bench-secret"
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on", "max_connections": "60"}
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Setup:
    """One configuration of the intake run."""

    name: str
    backend: str
    replicas: int


SETUPS = (Setup("SQLite, 1 replica", "sqlite", 1), Setup("PostgreSQL, 1 replica", "postgresql", 1),
          Setup("PostgreSQL, 2 replicas", "postgresql", 2))


@dataclass(frozen=True)
class IntakeRun:
    setup: Setup
    round: int
    sent: int
    stored: int
    per_second: float
    p50_ms: float
    p99_ms: float
    load: float


async def serve(env: dict[str, str], folder: Path, name: str) -> tuple[asyncio.subprocess.Process, str]:
    """A ``tessera serve`` process; its URL once it listens."""
    out = folder / f"{name}.out"
    with out.open("wb") as stdout:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app.cli", "serve", cwd=folder, env=env, stdout=stdout,
            stderr=asyncio.subprocess.DEVNULL,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while "Tessera listening on " not in out.read_text():
        if process.returncode is not None or time.monotonic() > deadline:
            raise SystemExit(f"{name} did not start")
        await asyncio.sleep(0.05)
    return process, out.read_text().split("Tessera listening on ", 1)[1].split()[0]


def count_stored(setup: Setup, target: str, prefix: str) -> int:
    sql = "SELECT count(*) FROM deliveries WHERE delivery_id LIKE %s"
    if setup.backend == "sqlite":
        with sqlite3.connect(target, timeout=30) as conn:
            return int(conn.execute(sql.replace("%s", "?"), (f"{prefix}%",)).fetchone()[0])
    with psycopg.connect(target, autocommit=True) as conn:
        row = conn.execute(sql, (f"{prefix}%",)).fetchone()
        return int(row[0]) if row else 0


async def intake_run(
    setup: Setup, round_: int, server: PostgresServer, bodies: list[tuple[bytes, str]], requests: int, warmup: int,
    concurrency: int,
) -> IntakeRun:
    folder = Path(tempfile.mkdtemp(prefix="tessera-replicas-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(PYTHONPATH=str(ROOT), TESSERA_WEBHOOK_SECRET=SECRET, TESSERA_PORT="0", TESSERA_DB=str(folder / "t.db"))
    if setup.backend == "sqlite":
        target = str(folder / "t.db")
    else:
        target = server.create_database(f"intake_{round_}_{setup.replicas}")
        env["TESSERA_DATABASE_URL"] = target
    processes: list[asyncio.subprocess.Process] = []
    try:
        urls = []
        for n in range(setup.replicas):  # one after the other: the first applies the migrations
            process, url = await serve(env, folder, f"replica-{n}")
            processes.append(process)
            urls.append(url)
        share = concurrency // len(urls)
        await asyncio.gather(*(send_all_raw(url, bodies, warmup // len(urls), share, f"warm-{n}")
                               for n, url in enumerate(urls)))
        prefix = f"run-{uuid.uuid4().hex[:8]}"
        load = os.getloadavg()[0]
        began = time.perf_counter()
        results = await asyncio.gather(*(send_all_raw(url, bodies, requests // len(urls), share, f"{prefix}-{n}")
                                         for n, url in enumerate(urls)))
        elapsed = time.perf_counter() - began
        latencies = sorted(x * 1000 for result in results for x in result[0])
        accepted = sum(result[1].get(202, 0) for result in results)
        sent = requests // len(urls) * len(urls)
        stored = count_stored(setup, target, prefix)
        assert accepted == sent, f"{setup.name}: {sent - accepted} deliveries not accepted"
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            await process.wait()
        shutil.rmtree(folder, ignore_errors=True)
    return IntakeRun(setup, round_, sent, stored, sent / elapsed, percentile(latencies, 0.50),
                     percentile(latencies, 0.99), load)


def intake_table(runs: list[IntakeRun]) -> list[str]:
    lines = ["| setup | round | deliveries/s | p50 ms | p99 ms | stored = sent | load at start |",
             "|---|---|---|---|---|---|---|"]
    for run in runs:
        lines.append(f"| {run.setup.name} | {run.round} | {run.per_second:,.0f} | {run.p50_ms:.1f} | {run.p99_ms:.1f} |"
                     f" {run.stored:,} = {run.sent:,} |" f" {run.load:.1f} |")
    lines += ["", "| setup | median deliveries/s | median p99 ms | every run stored = sent |", "|---|---|---|---|"]
    for setup in SETUPS:
        mine = [run for run in runs if run.setup == setup]
        lines.append(f"| {setup.name} | {statistics.median(r.per_second for r in mine):,.0f} |"
                     f" {statistics.median(r.p99_ms for r in mine):.1f} |"
                     f" {'yes' if all(r.stored == r.sent for r in mine) else 'NO'} |")
    return lines


def impact_table(results: list[tuple[str, dict[str, float]]]) -> list[str]:
    lines = ["| backend | round | sync s | index build ms | impact p50 ms | p95 ms | p99 ms |", "|---|---|---|---|---|---|---|"]
    for n, (name, r) in enumerate(results):
        lines.append(f"| {name} | {n // 2 + 1} | {r['sync_s']:.1f} | {r['index_first_query_ms']:.0f} |"
                     f" {r['impact_p50_ms']:.1f} | {r['impact_p95_ms']:.1f} | {r['impact_p99_ms']:.1f} |")
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--models", type=int, default=5000, help="registry size for the impact query")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--impact-rounds", type=int, default=2, help="registry runs per backend, interleaved")
    parser.add_argument("--record", action="store_true", help="append the tables to bench/RESULTS.md")
    args = parser.parse_args()
    if find_bindir() is None:
        raise SystemExit("PostgreSQL's server binaries are not installed (Debian: apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="tessera-bench-pg-"))
    server = start_server(root, settings=DURABLE)
    started = dt.datetime.now(dt.UTC)
    load_before = os.getloadavg()
    try:
        bodies = make_bodies(25_000, SECRET)
        runs: list[IntakeRun] = []
        for round_ in range(1, args.rounds + 1):
            for setup in SETUPS:
                run = await intake_run(setup, round_, server, bodies, args.requests, args.warmup, args.concurrency)
                print(f"{setup.name}, round {round_}: {run.per_second:,.0f}/s, p99 {run.p99_ms:.1f} ms,"
                      f" stored {run.stored}/{run.sent}", flush=True)
                runs.append(run)
        impacts: list[tuple[str, dict[str, float]]] = []
        for round_ in range(args.impact_rounds):
            for name in ("SQLite", "PostgreSQL"):
                url = None if name == "SQLite" else server.create_database(f"registry_{round_}")
                result = await registry.run(args.models, args.queries, database_url=url)
                print(f"impact on {name}: p95 {result['impact_p95_ms']:.1f} ms", flush=True)
                impacts.append((name, result))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    load_after = os.getloadavg()
    finished = dt.datetime.now(dt.UTC)
    lines = intake_table(runs) + [""] + impact_table(impacts)
    print("\n".join(lines))
    machine = (f"{os.cpu_count()} CPUs ({cpu_model()}), Python {sys.version.split()[0]}, PostgreSQL"
               f" {server.bindir.parent.name}; load average {load_before[0]:.1f} / {load_before[1]:.1f} at the start,"
               f" {load_after[0]:.1f} / {load_after[1]:.1f} at the end (1 / 5 min)")
    print(machine)
    if args.record:
        section = [
            "",
            f"### Several replicas: intake and impact, SQLite vs PostgreSQL (`bench/replicas.py`,"
            f" {started:%Y-%m-%d %H:%M}–{finished:%H:%M} UTC)",
            "",
            f"{args.requests:,} signed 25 KB deliveries a run, {args.concurrency} in flight, durable before the reply"
            " on both backends; rounds interleaved. " + machine + ".",
            "",
            *lines,
            "",
        ]
        with RESULTS.open("a") as results:
            text = RESULTS.read_text()
            if "## Fourth session" not in text:
                results.write("\n## Fourth session\n")
            results.write("\n".join(section))


if __name__ == "__main__":
    asyncio.run(main())
