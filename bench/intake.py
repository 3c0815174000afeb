"""Webhook intake benchmark: signed ~25 KB deliveries at concurrency 50 against ``tessera serve``.

    .venv/bin/python bench/intake.py                  # starts `tessera serve` on a temp database
    .venv/bin/python bench/intake.py --requests 50000
    .venv/bin/python bench/intake.py --url http://host:8080 --secret S [--db path/to/tessera.db]

Prints one table: sent, accepted (202), stored (rows in the store), deliveries/s, p50 and p99 latency.
The load comes from a minimal HTTP/1.1 keep-alive client (``--client raw``, the default), which
spends ~0.1 ms of CPU per delivery where aiohttp's client (``--client aiohttp``) spends ~0.3 ms:
both run on the same two cores as the server, so the lighter one measures the server more.
Nothing is lost when stored == sent. The server runs its workers as in production (the default
router has no handlers for pull_request, so each job is claimed and marked done), so the writer
carries the jobs' bookkeeping as well as the inserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from app.webhooks import sign  # noqa: E402

DISTINCT_BODIES = 200


_WORDS = (
    "the a revenue model column plan_code drop keep migrate dashboard growth finance orders customers"
    " daily monthly table view join filter contract version deprecate release team owner schema"
    " warehouse snowflake dbt sql select from where group by having window partition null default"
).split()


def _urls(kind: str, name: str) -> dict[str, str]:
    """The ``*_url`` fields GitHub puts on every user and repository object (most of a payload's bytes)."""
    api = f"https://api.github.com/{kind}/{name}"
    fields = (
        "events followers following gists starred subscriptions organizations repos received_events"
        if kind == "users"
        else "forks keys collaborators teams hooks issue_events events assignees branches tags blobs"
        " git_tags git_refs trees statuses languages stargazers contributors subscribers subscription"
        " commits git_commits comments issue_comment contents compare merges archive downloads issues"
        " pulls milestones notifications labels releases deployments"
    )
    return {"url": api, "html_url": f"https://github.com/{name}", **{f"{f}_url": f"{api}/{f}{{/id}}" for f in fields.split()}}


def make_bodies(size: int, secret: str, seed: int = 7) -> list[tuple[bytes, str]]:
    """Realistic ``pull_request`` deliveries of about ``size`` bytes on 200 different PRs, signed.

    Shaped like GitHub's: user and repository objects carry their ``*_url`` fields, and the PR
    description is filled with varied words, so the body compresses like a real one (a 28 KB real
    pull_request delivery compresses ~7x at zlib level 1; these ~5x) rather than like padding.
    The action is ``labeled``: a delivery the workflow acknowledges and ignores, as most are.
    """
    import random

    rng = random.Random(seed)
    template = json.loads((REPO_ROOT / "tests/data/github/webhooks/pull_request/synchronize.json").read_text())
    bodies = []
    for n in range(DISTINCT_BODIES):
        payload = json.loads(json.dumps(template))
        payload["action"] = "labeled"
        payload["number"] = payload["pull_request"]["number"] = n + 1
        payload["repository"].update(_urls("repos", payload["repository"]["full_name"]))
        for user in (payload["sender"], payload["pull_request"]["user"], payload["repository"]["owner"]):
            user.update(_urls("users", user["login"]))
        for side in ("head", "base"):
            payload["pull_request"][side]["repo"].update(_urls("repos", payload["repository"]["full_name"]))
        words: list[str] = []
        payload["pull_request"]["body"] = ""
        room = size - len(json.dumps(payload).encode())
        while room > 0:
            word = rng.choice(_WORDS) if rng.random() < 0.8 else f"{rng.randrange(10**6):x}"
            words.append(word)
            room -= len(word) + 1
        payload["pull_request"]["body"] = " ".join(words)[: max(0, size - len(json.dumps(payload).encode()))]
        body = json.dumps(payload).encode()
        bodies.append((body, sign(secret, body)))
    return bodies


async def start_server(db: Path, secret: str, synchronous: str) -> tuple[asyncio.subprocess.Process, str]:
    env = {
        **os.environ,
        "TESSERA_DB_SYNCHRONOUS": synchronous,
        "TESSERA_DB": str(db),
        "TESSERA_WEBHOOK_SECRET": secret,
        "TESSERA_PORT": "0",
        "PYTHONPATH": str(REPO_ROOT),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "serve", env=env, cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
    if not line.startswith("Tessera listening on "):
        raise SystemExit(f"server did not start: {line!r}")
    return process, line.split()[3]


async def send_all(url: str, bodies: list[tuple[bytes, str]], requests: int, concurrency: int, prefix: str) -> tuple[list[float], dict[int, int], float]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one_client() -> None:
            for n in counter:
                body, signature = bodies[n % len(bodies)]
                headers = {
                    "Content-Type": "application/json",
                    "X-GitHub-Event": "pull_request",
                    "X-GitHub-Delivery": f"{prefix}-{n}",
                    "X-Hub-Signature-256": signature,
                }
                started = time.perf_counter()
                async with session.post(f"{url}/webhooks/github", data=body, headers=headers) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                latencies.append(time.perf_counter() - started)

        # warm the connections so the run measures intake, not TCP handshakes
        began = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return latencies, statuses, elapsed


async def send_all_raw(url: str, bodies: list[tuple[bytes, str]], requests: int, concurrency: int, prefix: str) -> tuple[list[float], dict[int, int], float]:
    """The same load as :func:`send_all` through a minimal HTTP/1.1 keep-alive client.

    Why: the load generator shares the machine's two cores with the server, and aiohttp's
    client spends about as much CPU per request as the server does, so the figures measured
    the client as much as the server. This client writes prepared header bytes and reads the
    status line, headers and ``Content-Length`` body of each answer, as a tool like ``wrk``
    would, and costs a fraction of that."""
    parsed = urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(requests))
    fixed = (
        f"POST /webhooks/github HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: GitHub-Hookshot/bench\r\n"
        "Content-Type: application/json\r\nX-GitHub-Event: pull_request\r\n"
    ).encode()

    async def one_client() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for n in counter:
                body, signature = bodies[n % len(bodies)]
                head = fixed + (
                    f"X-GitHub-Delivery: {prefix}-{n}\r\nX-Hub-Signature-256: {signature}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
                started = time.perf_counter()
                writer.write(head + body)
                status_line = await reader.readline()
                if not status_line:
                    raise ConnectionError("the server closed the connection")
                status = int(status_line.split()[1])
                length = 0
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                    elif name.lower() == b"transfer-encoding":
                        raise ConnectionError("chunked answers are not expected from the webhook endpoint")
                await reader.readexactly(length)
                statuses[status] = statuses.get(status, 0) + 1
                latencies.append(time.perf_counter() - started)
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return latencies, statuses, time.perf_counter() - began


def count_stored(db: Path, prefix: str) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute("SELECT count(*) FROM deliveries WHERE delivery_id LIKE ?", (f"{prefix}-%",)).fetchone()[0]


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1] if len(values) > 1 else values[0]


def process_cpu_seconds(pid: int, thread: int | None = None) -> float | None:
    """User + system CPU time of a process, or of one of its threads (Linux), to express cost per delivery."""
    path = f"/proc/{pid}/task/{thread}/stat" if thread is not None else f"/proc/{pid}/stat"
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server (default: start `tessera serve` on a temp database)")
    parser.add_argument("--secret", default="bench-secret", help="its webhook secret")
    parser.add_argument("--db", type=Path, help="its database, to count what was stored")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--size", type=int, default=25_000, help="body size in bytes")
    parser.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL"], help="for the started server")
    parser.add_argument("--warmup", type=int, default=1_000, help="deliveries sent before measuring")
    parser.add_argument(
        "--client",
        default="raw",
        choices=["raw", "aiohttp"],
        help="load generator: a minimal HTTP/1.1 client (default: leaves the cores to the server) or aiohttp's",
    )
    args = parser.parse_args()
    send = send_all_raw if args.client == "raw" else send_all

    bodies = make_bodies(args.size, args.secret)
    process = None
    tmp = None
    url, db = args.url, args.db
    if url is None:
        tmp = tempfile.TemporaryDirectory(prefix="tessera-bench-")
        db = Path(tmp.name) / "bench.db"
        process, url = await start_server(db, args.secret, args.synchronous)
    try:
        if args.warmup:
            await send(url, bodies, args.warmup, args.concurrency, f"warmup-{uuid.uuid4().hex[:8]}")
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        load_before = os.getloadavg()[0]
        cpu_before = process_cpu_seconds(process.pid) if process else None
        loop_before = process_cpu_seconds(process.pid, process.pid) if process else None
        client_before = time.process_time()
        latencies, statuses, elapsed = await send(url, bodies, args.requests, args.concurrency, prefix)
        client_cpu = time.process_time() - client_before
        cpu_after = process_cpu_seconds(process.pid) if process else None
        loop_after = process_cpu_seconds(process.pid, process.pid) if process else None
        stored = count_stored(db, prefix) if db else None
    finally:
        if process is not None:
            process.terminate()
            await process.wait()
        if tmp is not None:
            tmp.cleanup()

    ms = sorted(x * 1000 for x in latencies)
    rows = [
        ("sent", f"{args.requests}"),
        ("accepted (202)", f"{statuses.get(202, 0)}"),
        ("other statuses", ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()) if k != 202) or "none"),
        ("stored", "n/a (give --db)" if stored is None else f"{stored}"),
        ("deliveries/s", f"{args.requests / elapsed:,.0f}"),
        ("p50 ms", f"{percentile(ms, 0.50):.1f}"),
        ("p99 ms", f"{percentile(ms, 0.99):.1f}"),
        ("max ms", f"{ms[-1]:.1f}"),
        ("body bytes", f"{len(bodies[0][0])} (zlib-1 ratio {len(bodies[0][0]) / len(zlib.compress(bodies[0][0], 1)):.1f}x)"),
        ("concurrency", f"{args.concurrency}"),
        ("synchronous", args.synchronous if process else "as the server was started"),
        (
            "server CPU per delivery",
            f"{(cpu_after - cpu_before) / args.requests * 1000:.2f} ms"
            if cpu_before is not None and cpu_after is not None
            else "n/a (external server)",
        ),
        (
            "  of which event loop",
            f"{(loop_after - loop_before) / args.requests * 1000:.2f} ms"
            if loop_before is not None and loop_after is not None
            else "n/a",
        ),
        ("load generator", f"{args.client} client, {client_cpu / args.requests * 1000:.2f} ms CPU per delivery"),
        ("load average at start", f"{load_before:.1f}"),
        ("machine", f"{os.cpu_count()} CPUs, {cpu_model()}, Python {platform.python_version()}"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    asyncio.run(main())
