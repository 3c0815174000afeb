"""Pages bench: each web page's server time over the 5,000-model registry of ``bench/registry.py``,
and the lineage picture of a 200-asset neighbourhood.

    .venv/bin/python bench/pages.py [--models 5000] [--requests 60] [--record]

The generated manifest is synced through ``/api/v1/sync/dbt`` of an in-process app on a fresh
database, with 20 teams, registrations and 30 days of audit runs for 100 assets. A signed-in
session (a cookie signed with the bench's session secret) then asks each page ``--requests`` times
through aiohttp's test client: the time is the whole HTTP round trip on loopback (routing, store
reads, the graph walk, rendering), an upper bound on server time. The first request of each page
is left out (it fills the caches: the graph index, timed apart, and the audit summary). The lineage bench picks the asset whose
neighbourhood at depth 6 fills the 200-asset cap and times ``/assets/{fqn}?depth=6&column=…``.
Targets (issue "Pages"): every page p95 < 100 ms; the 200-node lineage page < 300 ms.
``--record`` writes the figures to bench/RESULTS.md under "Third session: pages".
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from registry import TEAMS, generate_manifest  # noqa: E402  (bench/registry.py, beside this file)
from results import write_section  # noqa: E402

SECRET = "bench-session-secret-0123456789abcdef"
HEADERS = {"Authorization": "Bearer bench-bootstrap-key"}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(models: int, requests: int) -> dict[str, Any]:
    from aiohttp.test_utils import TestClient, TestServer

    from app.config import Settings
    from app.server import create_app
    from app.store import Store
    from app.web.lineage import edge_index, neighbourhood
    from app.web.session import SESSION_COOKIE, Signer

    manifest = generate_manifest(models)
    body = json.dumps({"repo": "acme/warehouse", "commit": "f" * 40, "manifest": manifest}).encode()
    model_columns = [(uid.split(".")[-1], list(node["columns"])) for uid, node in manifest["nodes"].items()
                     if node["resource_type"] == "model"]
    del manifest
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(db_path=os.path.join(folder, "bench.db"), bootstrap_key="bench-bootstrap-key",
                            webhook_secret="bench", session_secret=SECRET)
        store = Store(settings.database)
        await store.open()
        client = TestClient(TestServer(create_app(settings, store=store, start_workers=False)))
        await client.start_server()
        cookie = Signer(SECRET).sign("session", {"login": "bench", "sid": "bench-sid", "exp": int(time.time()) + 3600})
        client.session.cookie_jar.update_cookies({SESSION_COOKIE: cookie})
        try:
            for team in TEAMS:
                await client.post("/api/v1/teams", json={"slug": team, "name": f"Team {team}",
                                                         "github_team": f"acme/{team}"}, headers=HEADERS)
            synced = await client.post("/api/v1/sync/dbt", data=body, headers={**HEADERS, "Content-Type": "application/json"})
            assert synced.status == 200, await synced.text()
            now = dt.datetime.now(dt.UTC)
            for name, columns in rng.sample(model_columns, 100):
                await client.post("/api/v1/registrations", headers=HEADERS, json={
                    "team": rng.choice(TEAMS), "asset": name, "columns": columns[:2], "note": "bench"})
                for n in range(10):
                    at = (now - dt.timedelta(days=3 * n, hours=rng.random() * 24)).isoformat().replace("+00:00", "Z")
                    passed = rng.random() > 0.2
                    await client.post(f"/api/v1/assets/{name}/audits", headers=HEADERS, json={
                        "run_id": f"r{n}", "run_at": at, "results": [
                            {"id": "not_null", "passed": passed}, {"id": "unique", "passed": True}]})

            async def timed(path: str) -> tuple[float, str]:
                started = time.perf_counter()
                answer = await client.get(path)
                text = await answer.text()
                assert answer.status == 200, f"{path}: {answer.status} {text[:300]}"
                return (time.perf_counter() - started) * 1000, text

            warm_ms, _ = await timed(f"/assets/{model_columns[0][0]}")
            pages: dict[str, list[str]] = {
                "home `/`": ["/"],
                "explorer `/assets`": ["/assets"],
                "search by name `/assets?q=`": [f"/assets?q={rng.choice(model_columns)[0][:6]}" for _ in range(20)],
                "search by column `/assets?column=`": [f"/assets?column={rng.choice(model_columns)[1][0]}" for _ in range(20)],
                "search by owner `/assets?owner=`": [f"/assets?owner={t}" for t in TEAMS],
                "asset page `/assets/{fqn}` (depth 2)": [f"/assets/{m}" for m, _ in rng.sample(model_columns, 40)],
                "asset page, a column selected": [f"/assets/{m}?column={c[1]}" for m, c in rng.sample(model_columns, 40)],
                "team page `/teams/{slug}`": [f"/teams/{t}" for t in TEAMS],
                "audits `/audits`": ["/audits"],
            }
            results: dict[str, dict[str, float]] = {}
            for label, paths in pages.items():
                await timed(paths[0])  # warm: the audit summary and graph caches fill on first use
                times = [(await timed(paths[i % len(paths)]))[0] for i in range(requests)]
                results[label] = {"p50": statistics.median(times), "p95": _pct(times, 0.95), "max": max(times)}

            # the 200-node neighbourhood: the asset whose depth-6 picture is largest (sizes asked in-process)
            edges = await store.read(edge_index)
            best_nodes, best = max((len(neighbourhood(edges, name, 6)[0]), (name, columns))
                                   for name, columns in model_columns)
            big = [(await timed(f"/assets/{best[0]}?depth=6&column={best[1][i % len(best[1])]}"))[0] for i in range(30)]
            _, text = await timed(f"/assets/{best[0]}?depth=6")
            assert text.count('data-fqn="') == best_nodes
        finally:
            await client.close()
            await store.close()
    return {"models": models, "requests": requests, "warm_ms": warm_ms, "pages": results,
            "graph_asset": best[0], "graph_nodes": best_nodes,
            "graph_p50": statistics.median(big), "graph_p95": _pct(big, 0.95), "graph_max": max(big)}


def table(result: dict[str, Any]) -> list[str]:
    lines = ["| page | p50 | p95 | max |", "|---|---|---|---|"]
    for label, r in result["pages"].items():
        lines.append(f"| {label} | {r['p50']:.1f} ms | {r['p95']:.1f} ms | {r['max']:.1f} ms |")
    lines.append(f"| lineage picture, {result['graph_nodes']} assets (depth 6, a column selected) |"
                 f" {result['graph_p50']:.1f} ms | {result['graph_p95']:.1f} ms | {result['graph_max']:.1f} ms |")
    return lines


def record(lines: list[str], result: dict[str, Any]) -> None:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = "\n".join([
        "## Third session: pages",
        "",
        f"`bench/pages.py`: the web pages over `bench/registry.py`'s {result['models']:,}-model registry (20 teams,",
        "100 registrations, 30 days of audit runs for 100 assets), a signed-in session, each page asked",
        f"{result['requests']} times through aiohttp's test client (whole loopback round trip: routing, store",
        f"reads, graph walk, Jinja rendering). The graph index is built once first ({result['warm_ms']:.0f} ms, then",
        "reused until the registry changes). Targets: every page p95 < 100 ms; the 200-node lineage page < 300 ms.",
        "",
        "    .venv/bin/python bench/pages.py --models 5000 --record",
        "",
        f"Run {when}, 2 vCPUs shared with other engineers' runs (load average {os.getloadavg()[0]:.1f}).",
        "",
        *lines,
        "",
        "Not in this table: the proposal and admin pages ask GitHub who the person is allowed to be (team",
        "membership, repository access, organisation role; remembered for a minute), so their time is",
        "GitHub's; their own rendering is the same template work as the pages above.",
        "",
    ])
    write_section("Third session: pages", section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--record", action="store_true", help="write the pages section of bench/RESULTS.md")
    args = parser.parse_args()
    result = asyncio.run(run(args.models, args.requests))
    lines = table(result)
    print("\n".join(lines))
    if args.record:
        record(lines, result)


if __name__ == "__main__":
    main()
