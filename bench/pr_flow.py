"""Benchmark: the PR flow through the real service against the fake GitHub (issue 4).

Starts Tessera (``create_app``: webhook intake, durable queue, workers, store) and the test suite's
fake GitHub on loopback, then for each scenario pushes a branch, opens a pull request, POSTs a
signed ``pull_request`` delivery and waits until the check run "Tessera" is completed. It reports
the time from delivery to completed check and every GitHub API call the analysis made (the
installation-token exchange left out), split by kind.

Scenarios: a one-file SQL migration PR and a one-model dbt PR on the suite's small repositories
(``tests/data/repos``), then the generated 1,000-model dbt project of ``bench/engine.py`` with 20
changed models in one domain (a typical PR: ``change_models(..., focused=True)``). Each runs twice in the same process: *cold* (empty blob, tree and parse caches)
and *warm* (a second pull request on the same base changing other files: what every PR after the
first one in a repository costs).

    .venv/bin/python bench/pr_flow.py [--models 1000] [--changed 20] [--latency MS] [--blobs-only] [--record]

``--blobs-only`` fetches every file blob by blob (as before commits were fetched as tarballs);
the ``findings`` column fingerprints what the check said, so both ways can be compared.

``--latency`` makes the fake answer every request that much later (GitHub's API usually takes
50-150 ms), which shows what fetching files eight at a time buys on a cold repository.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from app.config import Settings  # noqa: E402
from app.github import GitHubApp  # noqa: E402
from app.server import create_app  # noqa: E402
from app.webhooks import sign  # noqa: E402
from app.workflow import github_source  # noqa: E402
from tests.fakegithub import FakeGitHub, FakeRepo  # noqa: E402

SECRET = "bench-secret"
APP_ID = 4242


def read_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def kind(path: str) -> str:
    for marker, name in (
        ("/tarball/", "tarballs"),
        ("/git/blobs/", "blobs"),
        ("/git/trees/", "trees"),
        ("/check-runs", "check runs"),
        ("/files", "PR files"),
        ("/comments", "comments"),
    ):
        if marker in path:
            return name
    return "other"


class Bench:
    def __init__(self, fake: FakeGitHub, url: str, session: aiohttp.ClientSession) -> None:
        self.fake = fake
        self.url = url
        self.session = session

    async def pull_request(self, repo: FakeRepo, changes: dict[str, str], label: str) -> dict[str, Any]:
        branch = f"bench-{uuid.uuid4().hex[:8]}"
        repo.commit(dict(changes), parent=repo.default_branch, branch=branch)
        pull = repo.open_pull_request(head=branch, author="bench")
        payload = {
            "action": "opened",
            "number": pull.number,
            "pull_request": self.fake._pull_json(repo, pull),
            "repository": self.fake._repo_json(repo),
            "installation": {"id": 1},
            "sender": self.fake._user("bench"),
        }
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(SECRET, body),
        }
        before = len(self.fake.requests)
        started = time.perf_counter()
        async with self.session.post(f"{self.url}/webhooks/github", data=body, headers=headers) as response:
            assert response.status == 202, await response.text()
        deadline = started + 600
        while True:
            run = repo.check_run("Tessera", head_sha=pull.head_sha)
            if run is not None and run.status == "completed":
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{label}: no completed check after 600 s")
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
        calls = [r for r in self.fake.requests[before:] if not r.path.endswith("/access_tokens")]
        by_kind = collections.Counter(kind(r.path) for r in calls)
        return {
            "scenario": label,
            "seconds": elapsed,
            "calls": len(calls),
            "by_kind": dict(by_kind),
            "conclusion": run.conclusion,
            "annotations": len(run.annotations),
            "findings": findings(run),
        }


def findings(run: Any) -> str:
    """A short fingerprint of what the check said (title, annotations), to compare fetch paths."""
    notes = sorted((a["path"], a["start_line"], a["message"]) for a in run.annotations)
    text = json.dumps([run.conclusion, run.output.get("title"), notes])
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def small_sql(fake: FakeGitHub) -> tuple[FakeRepo, dict[str, str], dict[str, str]]:
    repo = fake.add_repo("bench/migrations", installation_id=1, files=read_tree(ROOT / "tests/data/repos/warehouse_sql"))
    first = {"migrations/002_channel.sql": "ALTER TABLE analytics.orders ADD COLUMN channel VARCHAR(20);\n"}
    second = {"migrations/002_region.sql": "ALTER TABLE analytics.orders ADD COLUMN region VARCHAR(2);\n"}
    return repo, first, second


def small_dbt(fake: FakeGitHub) -> tuple[FakeRepo, dict[str, str], dict[str, str]]:
    files = read_tree(ROOT / "tests/data/repos/revenue_dbt")
    repo = fake.add_repo("bench/revenue", installation_id=1, files=files)
    path = "models/marts/fct_revenue.sql"
    first = {path: files[path].replace("    ordered_at\n", "    ordered_at,\n    1 as order_count\n")}
    second = {path: files[path].replace("    ordered_at\n", "    ordered_at,\n    2 as order_rank\n")}
    return repo, first, second


def big_dbt(fake: FakeGitHub, workdir: Path, models: int, changed: int) -> tuple[FakeRepo, dict[str, str], dict[str, str], str]:
    import engine  # bench/engine.py: the generated project

    root = workdir / "project"
    generated = engine.generate(root, models=models)
    base = read_tree(root)
    paths = engine.change_models(root, generated, changed, focused=True, seed=11)
    first = {p: (root / p).read_text() for p in paths}
    for p in paths:
        (root / p).write_text(base[p])
    paths = engine.change_models(root, generated, changed, focused=True, seed=12)
    second = {p: (root / p).read_text() for p in paths}
    repo = fake.add_repo("bench/analytics", installation_id=1, files=base)
    columns = sum(len(m.columns) for m in generated.values())
    return repo, first, second, f"{len(generated)} models, {columns} columns, {len(base)} files"


async def run(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    workdir = Path(tempfile.mkdtemp(prefix="tessera-prflow-"))
    fake = FakeGitHub(app_id=APP_ID, private_key_pem=pem)
    fake.add_installation(1, "bench")
    if args.latency > 0:
        answer = fake._dispatch

        async def slowed(request: web.Request) -> web.StreamResponse:
            await asyncio.sleep(args.latency / 1000)
            return await answer(request)

        fake._dispatch = slowed  # type: ignore[method-assign]
    await fake.start()
    github = GitHubApp(APP_ID, pem, fake.url, timeout=30.0)
    settings = Settings(webhook_secret=SECRET, db_path=str(workdir / "tessera.db"), workers=2, job_timeout=900.0)
    app = create_app(settings, github=github)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    results: list[dict[str, Any]] = []
    try:
        async with aiohttp.ClientSession() as session:
            bench = Bench(fake, url, session)
            for label, build in (("one-file SQL PR", small_sql), ("one-model dbt PR", small_dbt)):
                repo, first, second = build(fake)
                results.append(await bench.pull_request(repo, first, f"{label}, cold"))
                results.append(await bench.pull_request(repo, second, f"{label}, warm"))
            repo, first, second, facts = big_dbt(fake, workdir, args.models, args.changed)
            label = f"{args.models}-model dbt project, {args.changed} changed models"
            results.append(await bench.pull_request(repo, first, f"{label}, cold"))
            results.append(await bench.pull_request(repo, second, f"{label}, warm"))
    finally:
        await runner.cleanup()
        await github.close()
        await fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return results, facts


def table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| scenario | delivery → completed check (s) | GitHub calls | of which tarballs / blobs / trees / check runs / PR files / comments | conclusion | findings |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        k = r["by_kind"]
        kinds = ("tarballs", "blobs", "trees", "check runs", "PR files", "comments")
        split = " / ".join(str(k.get(name, 0)) for name in kinds)
        lines.append(
            f"| {r['scenario']} | {r['seconds']:.2f} | {r['calls']} | {split} | {r['conclusion']} | {r['findings']} |"
        )
    return lines


def record(lines: list[str], facts: str, latency: float) -> None:
    path = ROOT / "bench" / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    section = [
        "",
        "## PR flow",
        "",
        "`bench/pr_flow.py`: Tessera's real service (signed webhook → durable queue → worker → engine → "
        "check run and comment) against the suite's fake GitHub on loopback; time from POSTing the "
        "delivery to the check run being completed, and every GitHub API call the analysis made "
        "(token exchange excluded). Cold: empty blob/tree/parse caches; warm: the next PR on the same "
        f"base changing other files. Fake GitHub latency: {latency:g} ms per request. "
        f"Generated project: {facts}. Machine: {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; {time.strftime('%Y-%m-%d', time.gmtime())}.",
        "",
        *lines,
        "",
    ]
    marker = "\n## PR flow\n"
    if marker in text:
        start = text.index(marker)
        rest = text.find("\n## ", start + len(marker))
        text = text[:start] + (text[rest:] if rest != -1 else "\n")
    path.write_text(text.rstrip("\n") + "\n" + "\n".join(section))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--changed", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.0, help="milliseconds the fake waits per request")
    parser.add_argument("--record", action="store_true", help="write the table into bench/RESULTS.md")
    parser.add_argument(
        "--blobs-only", action="store_true", help="never fetch a tarball (one call per blob, as before tarballs)"
    )
    args = parser.parse_args(argv)
    if args.blobs_only:
        github_source.ARCHIVE_FROM = 10**9
    random.seed(1)
    results, facts = asyncio.run(run(args))
    lines = table(results)
    print(f"generated project: {facts}")
    print("\n".join(lines))
    if args.record:
        record(lines, facts, args.latency)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
