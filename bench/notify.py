"""Benchmark: notifications through the real service, against the fake GitHub, Slack and subscriber.

Starts Tessera (``create_app``: intake, job queue, outbound queue, store) with the test suite's fake
GitHub, fake Slack and a fake webhook subscriber on loopback (allowed through the SSRF guard with
``outbound_allow``). The repository is ``tests/data/repos/revenue_dbt`` with Growth mapped to
``#data-growth``; every pull request drops a column Growth's dashboard reads.

1. Delivery → Slack: POST a signed ``pull_request`` ``opened`` delivery and time until the fake
   Slack holds Growth's message (analysis, check, comment and the outbound hop included), and the
   outbound hop alone (message stored → Slack answered).
2. Backlog: PR latency (delivery → completed check) with an empty outbound queue; then with 1,000
   outbound webhook deliveries stored at once (the subscriber answers each in ~2 ms) while the same
   kind of PRs keep arriving; and how fast the queue drains (messages/s).

    .venv/bin/python bench/notify.py [--prs 10] [--backlog 1000] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from app.appkeys import OUTBOX_KEY, STORE_KEY  # noqa: E402
from app.config import Settings  # noqa: E402
from app.github import GitHubApp  # noqa: E402
from app.notify import outbox  # noqa: E402
from app.server import create_app  # noqa: E402
from app.store import notify as notify_sql  # noqa: E402
from app.webhooks import sign  # noqa: E402
from tests.app.notify_support import FCT, SLACK_CONFIG  # noqa: E402
from tests.fakegithub import FakeGitHub, FakeRepo  # noqa: E402
from tests.fakeslack import TOKEN, FakeSlack, FakeSubscriber  # noqa: E402

SECRET = "bench-secret"
APP_ID = 4242
CHANNEL = "C0GROWTH"


def read_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


class Bench:
    def __init__(self, fake: FakeGitHub, slack: FakeSlack, url: str, session: aiohttp.ClientSession, repo: FakeRepo) -> None:
        self.fake, self.slack, self.url, self.session, self.repo = fake, slack, url, session, repo
        self.base = repo.files_at("main")[FCT].decode()

    async def breaking_pr(self) -> tuple[float, float]:
        """Open a PR dropping ``plan_code``; (seconds to completed check, seconds to Slack message)."""
        branch = f"bench-{uuid.uuid4().hex[:8]}"
        self.repo.commit({FCT: self.base.replace("    plan_code,\n", "")}, parent=self.repo.default_branch, branch=branch)
        pull = self.repo.open_pull_request(head=branch, author="priya")
        payload = {"action": "opened", "number": pull.number, "pull_request": self.fake._pull_json(self.repo, pull),
                   "repository": self.fake._repo_json(self.repo), "installation": {"id": 1},
                   "sender": self.fake._user("priya")}
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "X-GitHub-Event": "pull_request",
                   "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": sign(SECRET, body)}
        before = len(self.slack.in_channel(CHANNEL))
        started = time.perf_counter()
        async with self.session.post(f"{self.url}/webhooks/github", data=body, headers=headers) as response:
            assert response.status == 202, await response.text()
        check = slack = None
        deadline = started + 120
        while check is None or slack is None:
            now = time.perf_counter()
            run = self.repo.check_run("Tessera", head_sha=pull.head_sha)
            if check is None and run is not None and run.status == "completed":
                check = now - started
            if slack is None and len(self.slack.in_channel(CHANNEL)) > before:
                slack = now - started
            if now > deadline:
                raise RuntimeError("no completed check or Slack message after 120 s")
            await asyncio.sleep(0.002)
        return check, slack


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    workdir = Path(tempfile.mkdtemp(prefix="tessera-notify-"))
    fake = FakeGitHub(app_id=APP_ID, private_key_pem=pem)
    fake.add_installation(1, "acme")
    await fake.start()
    slack, subscriber = FakeSlack(), FakeSubscriber()
    await slack.start()
    await subscriber.start()
    repo = fake.add_repo("acme/warehouse", installation_id=1,
                         files={**read_tree(ROOT / "tests/data/repos/revenue_dbt"), ".tessera.yml": SLACK_CONFIG})
    github = GitHubApp(APP_ID, pem, fake.url, timeout=30.0)
    settings = Settings(webhook_secret=SECRET, db_path=str(workdir / "tessera.db"), workers=2, job_timeout=300.0,
                        slack_bot_token=TOKEN, slack_api_url=slack.api_url, outbound_allow=("127.0.0.1/32",))
    app = create_app(settings, github=github)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    store = app[STORE_KEY]
    result: dict[str, Any] = {}
    try:
        async with aiohttp.ClientSession() as session:
            bench = Bench(fake, slack, url, session, repo)
            await bench.breaking_pr()  # warm the caches: every later PR is the "warm" case
            quiet = [await bench.breaking_pr() for _ in range(args.prs)]
            hop = await store.read(lambda db: [m.finished_at - m.created_at for m in
                                               notify_sql.list_outbound(db, kind="slack", limit=1000)
                                               if m.status == "done" and m.finished_at])
            result["to_slack"] = [s for _, s in quiet]
            result["to_check_quiet"] = [c for c, _ in quiet]
            result["hop"] = hop

            sub = await store.write(lambda db: notify_sql.create_subscription(
                db, team="growth", url=subscriber.url, events=["audit.alert"], secret="bench-secret-0123456789",
                description="", created_by="bench", now=time.time()))
            items = [notify_sql.NewOutbound(f"bench:{i}", "webhook", "audit.alert", f"bench:{i}",
                                            {"data": {"asset": "fct_revenue", "n": i}}, subscription_id=sub.id)
                     for i in range(args.backlog)]
            received_before = len(subscriber.received)
            started = time.perf_counter()
            await store.write(lambda db: notify_sql.enqueue(db, items, time.time()))
            outbox.ring()
            busy = [await bench.breaking_pr() for _ in range(args.prs)]
            while len(subscriber.received) - received_before < args.backlog:
                await asyncio.sleep(0.01)
            drained = time.perf_counter() - started
            result["to_check_busy"] = [c for c, _ in busy]
            result["drain_seconds"] = drained
            result["throughput"] = args.backlog / drained
            result["pending_when_prs_done"] = args.backlog - (len(subscriber.received) - received_before)
            counts = await store.read(notify_sql.count_outbound)
            result["counts"] = counts
            result["duplicates"] = len(subscriber.received) - len({r.headers["X-Tessera-Delivery"] for r in subscriber.received})
            result["workers"] = app[OUTBOX_KEY].workers
    finally:
        await runner.cleanup()
        await github.close()
        await fake.stop()
        await slack.close()
        await subscriber.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def summary(result: dict[str, Any], args: argparse.Namespace) -> list[str]:
    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:.0f} / {pct(values, 0.95) * 1000:.0f} ms"

    return [
        f"| delivery → Slack message in Growth's channel (median / p95 of {args.prs}) | {ms(result['to_slack'])} |",
        f"| outbound hop alone: stored → Slack answered (median / p95) | {ms(result['hop'])} |",
        f"| PR delivery → completed check, outbound queue empty | {ms(result['to_check_quiet'])} |",
        f"| PR delivery → completed check, {args.backlog:,} outbound deliveries pending | {ms(result['to_check_busy'])} |",
        f"| {args.backlog:,} outbound deliveries drained ({result['workers']} outbound workers) |"
        f" {result['drain_seconds']:.2f} s, {result['throughput']:.0f} messages/s |",
        f"| sent twice / failed | {result['duplicates']} / {result['counts']['failed']} |",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prs", type=int, default=10)
    parser.add_argument("--backlog", type=int, default=1000)
    parser.add_argument("--record", action="store_true", help="print the lines for bench/RESULTS.md")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    lines = ["| measure | result |", "|---|---|", *summary(result, args)]
    print("\n".join(lines))
    print(f"python {platform.python_version()}, {platform.machine()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
