"""Store bench: the 5,000-model registry on SQLite and on PostgreSQL, moved between them.

    .venv/bin/python bench/store_copy.py [--models 5000] [--queries 300] [--record]

Builds the store of ``bench/registry.py`` (its generated dbt manifest synced through
``/api/v1/sync/dbt`` of an in-process app on a fresh SQLite file), adds 500 proposals with an ack
each and 5,000 deliveries, then ``tessera db copy``-s it to a throwaway local PostgreSQL (Debian's
binaries, as the tests start it) and back to a fresh SQLite file. Measured: each copy's wall time
and rows, whether every table's count and checksum matched, whether the same impact queries
(``GET /api/v1/assets/{fqn}/impact?column=``) answer identically on all three stores, and their
p50/p95 on each engine (the index warm). ``--record`` writes the "Store copy" section of
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import registry as registry_bench  # noqa: E402  (bench/registry.py, beside this file)
from aiohttp.test_utils import TestClient, TestServer  # noqa: E402
from results import write_section  # noqa: E402

from app.config import Settings  # noqa: E402
from app.server import create_app  # noqa: E402
from app.store import NewDelivery, Store  # noqa: E402
from app.store import proposals as proposal_sql  # noqa: E402
from app.store.copy import copy_database  # noqa: E402
from app.workflow.acks import AckRecord  # noqa: E402
from tests.pg import start_server  # noqa: E402

KEY = "bench-bootstrap-key"
HEADERS = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}


def _settings(target: str, folder: str) -> Settings:
    if target.startswith("postgresql://"):
        return Settings(database_url=target, db_path=os.path.join(folder, "unused.db"), bootstrap_key=KEY)
    return Settings(db_path=target, bootstrap_key=KEY)


async def build(target: str, folder: str, models: int) -> list[tuple[str, str]]:
    """The store of bench/registry.py plus proposals and deliveries; returns (model, column) pairs."""
    manifest = registry_bench.generate_manifest(models)
    pairs = [(uid.split(".")[-1], column) for uid, node in manifest["nodes"].items()
             if node["resource_type"] == "model" for column in node["columns"]]
    body = json.dumps({"repo": "acme/warehouse", "commit": "f" * 40, "manifest": manifest}).encode()
    store = Store(target)
    await store.open()
    client = TestClient(TestServer(create_app(_settings(target, folder), store=store, start_workers=False)))
    await client.start_server()
    try:
        for team in registry_bench.TEAMS:
            await client.post("/api/v1/teams", json={"slug": team, "name": team, "github_team": f"acme/{team}"},
                              headers=HEADERS)
        response = await client.post("/api/v1/sync/dbt", data=body, headers=HEADERS)
        assert response.status == 200, await response.text()

        def proposals(db: Any) -> None:
            for n in range(500):
                proposal = proposal_sql.upsert_proposal(db, repo_id=1, pr_number=n + 1, fields={
                    "repo": "acme/warehouse", "title": f"Change {n}", "head_sha": f"{n:040x}", "installation_id": 42})
                proposal_sql.put_ack(db, proposal.id, AckRecord(team=registry_bench.TEAMS[n % 20], response="ack",
                                                                user=f"user{n}", created_at=1.7e9 + n))

        await store.write(proposals)
        payload = json.dumps({"action": "synchronize", "pad": "x" * 2000})
        await asyncio.gather(*(store.insert_delivery(NewDelivery(
            f"d-{n}", "pull_request", "synchronize", f"pr:{n % 500}", 42, "acme/warehouse", payload, 1.7e9 + n
        )) for n in range(5000)))
    finally:
        await client.close()
        await store.close()
    return pairs


async def ask(target: str, folder: str, questions: list[tuple[str, str]]) -> tuple[list[Any], list[float]]:
    """The impact answers for ``questions`` on the store at ``target``, and each query's time (ms)."""
    store = Store(target)
    await store.open()
    client = TestClient(TestServer(create_app(_settings(target, folder), store=store, start_workers=False)))
    await client.start_server()
    try:
        first = await client.get(f"/api/v1/assets/{questions[0][0]}/impact", headers=HEADERS)
        assert first.status == 200
        answers, timings = [], []
        for fqn, column in questions:
            started = time.perf_counter()
            response = await client.get(f"/api/v1/assets/{fqn}/impact?column={column}", headers=HEADERS)
            answers.append(await response.json())
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status == 200
        return answers, timings
    finally:
        await client.close()
        await store.close()


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


async def run(models: int, queries: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(tempfile.mkdtemp(prefix="tessera-bench-pg-"))
        server = start_server(root)
        try:
            source = os.path.join(folder, "source.db")
            pairs = await build(source, folder, models)
            rng = random.Random(11)
            questions = [rng.choice(pairs[: len(pairs) * 2 // 3]) for _ in range(queries)]
            pg = server.create_database("bench_copy")
            back = os.path.join(folder, "back.db")
            started = time.perf_counter()
            there = copy_database(f"sqlite:///{source}", pg)
            there_s = time.perf_counter() - started
            started = time.perf_counter()
            again = copy_database(pg, f"sqlite:///{back}")
            back_s = time.perf_counter() - started
            on_sqlite, sqlite_ms = await ask(source, folder, questions)
            on_pg, pg_ms = await ask(pg, folder, questions)
            on_back, _ = await ask(back, folder, questions)
        finally:
            server.stop()
            shutil.rmtree(root, ignore_errors=True)
    return {
        "models": models, "queries": queries, "rows": sum(t.source_rows for t in there.tables),
        "tables": len(there.tables), "to_pg_s": there_s, "back_s": back_s,
        "verified": there.ok and again.ok, "same_answers": on_sqlite == on_pg == on_back,
        "sqlite_p50": _pct(sqlite_ms, 50), "sqlite_p95": _pct(sqlite_ms, 95),
        "pg_p50": _pct(pg_ms, 50), "pg_p95": _pct(pg_ms, 95),
        "largest": sorted(((t.source_rows, t.name) for t in there.tables), reverse=True)[:4],
    }


def table(r: dict[str, Any]) -> list[str]:
    largest = ", ".join(f"{name} {rows:,}" for rows, name in r["largest"])
    return [
        "| models | rows (tables) | SQLite → PostgreSQL | PostgreSQL → SQLite | counts + checksums | same impact answers |"
        " impact p50 / p95 SQLite | impact p50 / p95 PostgreSQL |",
        "|---|---|---|---|---|---|---|---|",
        f"| {r['models']:,} | {r['rows']:,} ({r['tables']}) | {r['to_pg_s']:.1f} s | {r['back_s']:.1f} s |"
        f" {'match' if r['verified'] else 'DIFFER'} | {'yes' if r['same_answers'] else 'NO'} ({r['queries']}) |"
        f" {r['sqlite_p50']:.1f} / {r['sqlite_p95']:.1f} ms | {r['pg_p50']:.1f} / {r['pg_p95']:.1f} ms |",
        "",
        f"Largest tables: {largest}.",
    ]


def record(lines: list[str]) -> None:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = "\n".join([
        "## Store copy",
        "",
        "`bench/store_copy.py` builds the store of `bench/registry.py` (the generated 5,000-model manifest synced",
        "through the API) plus 500 proposals with acks and 5,000 deliveries on SQLite, copies it with",
        "`tessera db copy` to a local PostgreSQL (Debian's server, fsync off as in the tests) and back to a",
        "fresh SQLite file, then asks the same impact queries of all three stores.",
        "",
        "    .venv/bin/python bench/store_copy.py --record",
        "",
        f"Run {when}, 2 vCPUs shared with other engineers' runs (load average {os.getloadavg()[0]:.1f}).",
        "",
        *lines,
        "",
    ])
    write_section("Store copy", section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--record", action="store_true", help="write the Store copy section of bench/RESULTS.md")
    args = parser.parse_args()
    lines = table(asyncio.run(run(args.models, args.queries)))
    print("\n".join(lines))
    if args.record:
        record(lines)


if __name__ == "__main__":
    main()
