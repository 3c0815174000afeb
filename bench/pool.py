"""Benchmark: analyses in worker processes vs one engine lock, and the server under hostile PRs.

Throughput. Starts Tessera (``create_app``: intake, queue, store) and the test suite's fake GitHub
on loopback, pushes the generated 1,000-model dbt project of ``bench/engine.py``, then opens 20 pull
requests at once (each changes 20 models of one domain, different ones each) and POSTs their
deliveries together; it reports the time until all 20 checks are completed, as analyses per
minute, and the peak resident memory of the server and of its analysis workers. Each variant runs
in a fresh process from a checkout given with ``--code`` (so the code from before the pool, with
its engine lock, can be measured the same way: ``git worktree add /tmp/lock <commit>``), and the
variants alternate round by round so that they share the machine's conditions.

Hostile PRs (``--hostile``, this checkout only). Opens a PR whose model computes
``n ** (n ** 7 * 4)`` in Jinja and one that renders ``'a' * 10**9`` together with an ordinary
one, samples ``/healthz`` every 20 ms and the server's and workers' memory every 100 ms while they
run (a 50 s job time-out: the analysis budget is 30 s), and reports p50/p99/max of ``/healthz``, the other PR's intake time, and memory peaks.

    .venv/bin/python bench/pool.py [--models 1000] [--prs 20] [--runs 2] [--workers 1 2]
        [--lock-code DIR] [--hostile] [--record]

``--record`` appends the tables to ``bench/RESULTS.md`` under "Third session".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

FREEZE = "{% set n = 10 %}{% set x = (n ** (n ** 7 * 4)) %}\nselect 1 as x\n"
MEMORY_BOMB = "{{ 'a' * 10**9 }}\nselect 1 as x\n"


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (0 once it is gone)."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1_048_576


def child_pids(pid: int) -> list[int]:
    """Every process below ``pid`` (the fork server, the analysis workers), from ``/proc/*/stat``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    stack = [pid]
    while stack:
        parent = stack.pop()
        for child, of in parents.items():
            if of == parent:
                found.append(child)
                stack.append(child)
    return found


class Sampler:
    """Peak resident memory of this process and of its descendants, sampled every 100 ms on a
    thread of its own (scanning ``/proc`` on the event loop would add to the latencies measured)."""

    def __init__(self) -> None:
        self.server = 0.0
        self.worker = 0.0
        self.workers_total = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.1):
            self.server = max(self.server, rss_mb(me))
            sizes = [rss_mb(p) for p in child_pids(me)]
            if sizes:
                self.worker = max(self.worker, max(sizes))
                self.workers_total = max(self.workers_total, sum(sizes))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def one_run(args: argparse.Namespace) -> dict[str, Any]:
    """(In a fresh process, with ``--code`` first on ``sys.path``.) One variant, one round."""
    sys.path.insert(0, str(ROOT / "bench"))
    import aiohttp
    import engine as generator  # bench/engine.py: the generated project
    from aiohttp import web
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from app.config import Settings
    from app.github import GitHubApp
    from app.server import create_app
    from app.webhooks import sign
    from tests.fakegithub import FakeGitHub

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    workdir = Path(tempfile.mkdtemp(prefix="tessera-pool-"))
    fake = FakeGitHub(app_id=4242, private_key_pem=pem)
    fake.add_installation(1, "bench")
    await fake.start()
    github = GitHubApp(4242, pem, fake.url, timeout=30.0)
    options: dict[str, Any] = {"webhook_secret": "bench", "db_path": str(workdir / "tessera.db"), "workers": 4,
                               "job_timeout": 50.0 if args.hostile else 900.0}
    if args.analysis_workers:
        options["analysis_workers"] = args.analysis_workers
    app = create_app(Settings(**options), github=github)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"

    root = workdir / "project"
    generated = generator.generate(root, models=args.models)
    base = {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}
    repo = fake.add_repo("bench/analytics", installation_id=1, files=base)

    def open_pull(changes: dict[str, str]) -> Any:
        branch = f"bench-{uuid.uuid4().hex[:8]}"
        repo.commit(dict(changes), parent=repo.default_branch, branch=branch)
        return repo.open_pull_request(head=branch, author="bench")

    async def deliver(session: aiohttp.ClientSession, pull: Any) -> tuple[float, int]:
        payload = {"action": "opened", "number": pull.number, "pull_request": fake._pull_json(repo, pull),
                   "repository": fake._repo_json(repo), "installation": {"id": 1}, "sender": fake._user("bench")}
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "X-GitHub-Event": "pull_request",
                   "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": sign("bench", body)}
        started = time.perf_counter()
        async with session.post(f"{url}/webhooks/github", data=body, headers=headers) as response:
            return time.perf_counter() - started, response.status

    def completed(pull: Any) -> Any:
        run = repo.check_run("Tessera", head_sha=pull.head_sha)
        return run if run is not None and run.status == "completed" else None

    async def all_completed(pulls: list[Any], limit: float) -> list[Any]:
        deadline = time.perf_counter() + limit
        while True:
            runs = [completed(p) for p in pulls]
            if all(runs):
                return runs
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{sum(1 for r in runs if r)} of {len(pulls)} checks completed after {limit:g} s")
            await asyncio.sleep(0.01)

    result: dict[str, Any] = {}
    try:
        async with aiohttp.ClientSession() as session:
            if args.hostile:
                text = base[next(p for p in sorted(base) if p.startswith("models/") and p.endswith(".sql"))]
                path = next(p for p in sorted(base) if p.startswith("models/") and p.endswith(".sql"))
                ordinary = open_pull({path: text + "\n-- reformatted\n"})
                frozen = open_pull({"models/freeze.sql": FREEZE})
                bomb = open_pull({"models/bomb.sql": MEMORY_BOMB})
                latencies: list[float] = []
                with Sampler() as sampler:
                    for pull in (frozen, bomb):
                        await deliver(session, pull)
                    await asyncio.sleep(0.2)
                    intake, status = await deliver(session, ordinary)
                    started = time.perf_counter()
                    while not (completed(frozen) and completed(bomb) and completed(ordinary)):
                        if time.perf_counter() - started > 900:
                            raise RuntimeError("hostile PRs: checks not completed after 900 s")
                        began = time.perf_counter()
                        async with session.get(f"{url}/healthz") as response:
                            assert response.status == 200
                        latencies.append(time.perf_counter() - began)
                        await asyncio.sleep(0.02)
                result = {
                    "healthz_p50_ms": statistics.median(latencies) * 1000,
                    "healthz_p99_ms": statistics.quantiles(latencies, n=100)[98] * 1000,
                    "healthz_max_ms": max(latencies) * 1000,
                    "healthz_samples": len(latencies),
                    "intake_s": intake,
                    "intake_status": status,
                    "seconds": time.perf_counter() - started,
                    "server_mb": sampler.server,
                    "worker_mb": sampler.worker,
                    "frozen": completed(frozen).output.get("title"),
                    "bomb": completed(bomb).output.get("title"),
                    "ordinary": completed(ordinary).conclusion,
                }
            else:
                pulls = []
                for seed in range(args.prs):
                    paths = generator.change_models(root, generated, args.changed, focused=True, seed=100 + seed)
                    pulls.append(open_pull({p: (root / p).read_text() for p in paths}))
                    for p in paths:
                        (root / p).write_text(base[p])
                with Sampler() as sampler:
                    started = time.perf_counter()
                    answers = await asyncio.gather(*(deliver(session, pull) for pull in pulls))
                    runs = await all_completed(pulls, 1800)
                    seconds = time.perf_counter() - started
                result = {
                    "seconds": seconds,
                    "per_minute": len(pulls) * 60 / seconds,
                    "intake_max_s": max(a[0] for a in answers),
                    "conclusions": sorted({r.conclusion for r in runs}),
                    "server_mb": sampler.server,
                    "worker_mb": sampler.worker,
                    "workers_total_mb": sampler.workers_total,
                }
    finally:
        await runner.cleanup()
        await github.close()
        await fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def run_variant(code: Path, args: argparse.Namespace, *, analysis_workers: int | None, hostile: bool = False) -> dict[str, Any]:
    command = [sys.executable, str(ROOT / "bench" / "pool.py"), "--one-run", "--code", str(code),
               "--models", str(args.models), "--prs", str(args.prs), "--changed", str(args.changed)]
    if analysis_workers:
        command += ["--analysis-workers", str(analysis_workers)]
    if hostile:
        command.append("--hostile")
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run(command, cwd=code, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"run failed ({code}, workers={analysis_workers}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--prs", type=int, default=20)
    parser.add_argument("--changed", type=int, default=20)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2], help="analysis workers to measure")
    parser.add_argument("--lock-code", help="a checkout of the code before the pool (its engine lock)")
    parser.add_argument("--hostile", action="store_true", help="also (or, with --one-run, only) the hostile PRs")
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--one-run", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--code", default=str(ROOT), help=argparse.SUPPRESS)
    parser.add_argument("--analysis-workers", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one_run:
        print(json.dumps(asyncio.run(one_run(args))))
        return 0

    variants: list[tuple[str, Path, int | None]] = []
    if args.lock_code:
        variants.append(("engine lock (before)", Path(args.lock_code), None))
    variants += [(f"pool, {n} worker{'s' if n > 1 else ''}", ROOT, n) for n in args.workers]
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in variants}
    for round_number in range(args.runs):
        order = variants if round_number % 2 == 0 else list(reversed(variants))
        for name, code, workers in order:
            results[name].append(run_variant(code, args, analysis_workers=workers))
            print(f"round {round_number + 1}: {name}: {results[name][-1]}", flush=True)

    lines = [
        f"{args.prs} PRs queued at once on the {args.models}-model project ({args.changed} models changed each),"
        f" median of {args.runs} interleaved rounds:",
        "",
        "| variant | all checks completed (s) | analyses / minute | slowest 202 (s) | server peak RSS (MB) "
        "| one worker peak RSS (MB) |",
        "|---|---|---|---|---|---|",
    ]
    for name, runs in results.items():
        lines.append(
            f"| {name} | {statistics.median(r['seconds'] for r in runs):.1f} "
            f"| {statistics.median(r['per_minute'] for r in runs):.1f} "
            f"| {max(r['intake_max_s'] for r in runs):.2f} | {max(r['server_mb'] for r in runs):.0f} "
            f"| {max(r['worker_mb'] for r in runs):.0f} |"
        )
    if args.hostile:
        hostile = run_variant(ROOT, args, analysis_workers=max(args.workers), hostile=True)
        print(f"hostile: {hostile}", flush=True)
        lines += [
            "",
            f"A freezing PR (`n ** (n ** 7 * 4)`), a memory-bomb PR (`'a' * 10**9`) and an ordinary one together,"
            f" {max(args.workers)} analysis workers, default limits:",
            "",
            "| /healthz p50 / p99 / max (ms) | other PR's 202 (s) | server peak RSS (MB) | worker peak RSS (MB) "
            "| freezing PR's check | memory-bomb PR's check |",
            "|---|---|---|---|---|---|",
            f"| {hostile['healthz_p50_ms']:.1f} / {hostile['healthz_p99_ms']:.1f} / {hostile['healthz_max_ms']:.1f} "
            f"| {hostile['intake_s']:.3f} | {hostile['server_mb']:.0f} | {hostile['worker_mb']:.0f} "
            f"| {hostile['frozen']} | {hostile['bomb']} |",
        ]
    print("\n".join(lines))
    if args.record:
        facts = f"{platform.python_version()}, {os.cpu_count()} cores"
        with (ROOT / "bench" / "RESULTS.md").open("a") as handle:
            handle.write(f"\n### Worker pool (`bench/pool.py`, {facts})\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
