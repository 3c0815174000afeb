"""Several ``tessera serve`` processes on one database, one of them killed mid-stream: nothing
lost, nothing done twice, every pull request's jobs in order.

The chaos test of issue 14. Real replicas (``python -m app.cli serve`` subprocesses) share one
database and one GitHub (the suite's fake, served from this process on a loopback port). 2,000
signed deliveries about 50 pull requests go round-robin across the replicas; each pull request's
deliveries are sent one after the other (the next once the previous was answered), as GitHub
sends them. Mid-stream one replica is SIGKILLed, later another is restarted (SIGTERM, then a
new process); a delivery that reached no live replica is sent again with the same
``X-GitHub-Delivery`` (GitHub's "Redeliver"), and some answered ones are sent twice on purpose.

Afterwards, read from the database and from the fake GitHub:
- every delivery answered 2xx is stored exactly once, and all of them are ``done``;
- nothing is left claimed (``running``);
- every pull request's jobs ran in the order they arrived, never two at once;
- each pull request has exactly one impact comment, and one check run per head SHA, completed.

Deliveries are cheap on purpose (a four-file dbt project; three of four deliveries need no
analysis) so 2,000 fit in about a minute on two cores. SQLite allows one replica (it is one
file on one host), which proves the harness and that a crash loses nothing; PostgreSQL runs
three.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from app.webhooks import sign
from tests.app.workflow_support import MARKER, repo_files
from tests.fakegithub import FakeGitHub, FakePull, FakeRepo
from tests.fixtures_app import WEBHOOK_SECRET, load_webhook
from tests.fixtures_github import APP_ID, INSTALLATION_ID
from tests.pg import PostgresServer, find_bindir, start_server

pytestmark = pytest.mark.replicas

REPO_ROOT = Path(__file__).resolve().parents[2]
PULLS = 50
DELIVERIES_PER_PULL = 40
FCT = "models/marts/fct_revenue.sql"
START_TIMEOUT = 60.0
SETTLE_TIMEOUT = 240.0
"""Far above the ~100 s a run takes at load 13 on two cores: a bound that fails a stuck queue, not a slow machine."""
Query = Callable[[str], list[tuple[Any, ...]]]


# -- the workload -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery as GitHub would send it."""

    id: str
    event: str
    body: bytes

    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "X-GitHub-Event": self.event,
            "X-GitHub-Delivery": self.id,
            "X-Hub-Signature-256": sign(WEBHOOK_SECRET, self.body),
            "User-Agent": "GitHub-Hookshot/chaos",
        }


@dataclass
class PullPlan:
    """A pull request's deliveries, made as it moves: each push happens when its ``synchronize``
    is sent (as on GitHub, where the push comes first), so an analysis sees the pull request as
    it is when its job runs. ``sent`` keeps each delivery, in order, for the checks afterwards."""

    fake: FakeGitHub
    repo: FakeRepo
    index: int
    pull: FakePull | None = None
    sent: list[Delivery] = field(default_factory=list)
    heads: list[str] = field(default_factory=list)

    def deliveries(self) -> Iterator[Delivery]:
        """Four heads (breaking, clear, review, breaking again), each followed by nine cheap
        deliveries: a title edit, a label, a comment that is no command, the same push twice."""
        fake, repo = self.fake, self.repo
        base_text = repo.files_at("main")[FCT].decode()
        versions = [
            base_text.replace("    plan_code,\n", ""),  # drops a column Growth's dashboard reads
            base_text.replace("    ordered_at\n", "    ordered_at,\n    1 as batch\n"),  # adds one: safe
            base_text.replace("amount as revenue", "amount * 1 as revenue"),  # new logic: review
            base_text.replace("    plan_code,\n", "").replace("amount as", "amount * 1 as"),  # breaking again
        ]
        branch = f"chaos-{self.index}"
        fillers = DELIVERIES_PER_PULL // len(versions) - 1
        for step, text in enumerate(versions):
            if self.pull is None:
                repo.commit({FCT: text}, parent="main", branch=branch)
                self.pull = repo.open_pull_request(head=branch, author="priya", title=f"Change {self.index}")
                yield self._made("pull_request", fake.event_pull_request(repo, self.pull, "opened"))
            else:
                before = self.pull.head_sha
                repo.push(branch, {FCT: text})
                payload = fake.event_pull_request(repo, self.pull, "synchronize", before=before)
                yield self._made("pull_request", payload)
            self.heads.append(self.pull.head_sha)
            for n in range(fillers):
                kind = n % 4
                if kind == 0:
                    payload = fake.event_pull_request(repo, self.pull, "edited", changes={"title": {"from": "Change"}})
                    yield self._made("pull_request", payload)
                elif kind == 1:
                    payload = fake.event_pull_request(repo, self.pull, "labeled", label={"name": f"step-{step}"})
                    yield self._made("pull_request", payload)
                elif kind == 2:
                    comment = repo.add_comment(self.pull.number, f"looks fine ({step}.{n})", user="reviewer")
                    yield self._made("issue_comment", fake.event_issue_comment(repo, comment))
                else:  # GitHub sends a push twice now and then (as two deliveries)
                    payload = fake.event_pull_request(repo, self.pull, "synchronize", before=self.pull.head_sha)
                    yield self._made("pull_request", payload)

    def _made(self, event: str, payload: dict[str, Any]) -> Delivery:
        delivery = Delivery(str(uuid.uuid4()), event, json.dumps(payload).encode())
        self.sent.append(delivery)
        return delivery


# -- replicas -----------------------------------------------------------------------------------


@dataclass
class Replica:
    name: str
    process: asyncio.subprocess.Process
    url: str


class Cluster:
    """``tessera serve`` processes on one database; deliveries go round-robin over the live ones."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.live: list[Replica] = []
        self._turn = itertools.count()
        self._started = itertools.count(1)

    async def start(self) -> Replica:
        name = f"replica-{next(self._started)}"
        out = self.logs / f"{name}.out"
        with out.open("wb") as stdout, (self.logs / f"{name}.err").open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "app.cli", "serve",
                cwd=self.logs, env=self.env, stdout=stdout, stderr=stderr,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while "Tessera listening on " not in out.read_text():
            if process.returncode is not None or time.monotonic() > deadline:
                if process.returncode is None:
                    process.kill()  # reaped here, not left to a later test's garbage collection
                await process.wait()
                raise AssertionError(f"{name} did not start: {(self.logs / f'{name}.err').read_text()[-3000:]}")
            await asyncio.sleep(0.05)
        url = out.read_text().split("Tessera listening on ", 1)[1].split()[0]
        replica = Replica(name, process, url)
        self.live.append(replica)
        return replica

    async def kill(self, replica: Replica) -> None:
        """SIGKILL: no shutdown, jobs left claimed mid-run."""
        self.live.remove(replica)
        replica.process.send_signal(signal.SIGKILL)
        await replica.process.wait()

    async def stop(self, replica: Replica) -> None:
        """SIGTERM: the graceful stop a deploy does."""
        self.live.remove(replica)
        replica.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(replica.process.wait(), 30)
        except TimeoutError:
            replica.process.kill()
            await replica.process.wait()
            raise AssertionError(f"{replica.name} did not stop within 30 s of SIGTERM") from None

    async def stop_all(self) -> None:
        for replica in list(self.live):
            await self.stop(replica)

    def next_url(self) -> str | None:
        if not self.live:
            return None
        return self.live[next(self._turn) % len(self.live)].url


async def send(session: aiohttp.ClientSession, cluster: Cluster, delivery: Delivery) -> int:
    """POST until a replica answers 2xx; a refused connection or a 5xx is redelivered (same id)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        url = cluster.next_url()
        if url is not None:
            try:
                async with session.post(f"{url}/webhooks/github", data=delivery.body, headers=delivery.headers()) as r:
                    if 200 <= r.status < 300:
                        return r.status
                    assert r.status >= 500, f"{delivery.id}: {r.status} {await r.text()}"
            except (aiohttp.ClientConnectionError, TimeoutError):
                pass  # the replica died under us: GitHub would show a failed delivery; redeliver
        await asyncio.sleep(0.1)
    raise AssertionError(f"delivery {delivery.id} was never answered 2xx")


def analysis_windows(fake: FakeGitHub, repo: FakeRepo, heads: list[str]) -> list[tuple[int, int]]:
    """Per head, the first and last of the requests (in the order the fake answered them) that
    created or updated its check run: one analysis's footprint at GitHub.

    Timestamps in the store cannot show that two jobs never overlapped (each replica stamps a
    claim when it asks, not when the database grants it), so the fake GitHub, one process with
    one order of events, is the witness."""
    run_of_head = {head: runs[0].id for head in heads if (runs := repo.check_runs(head_sha=head, name="Tessera"))}
    footprint: dict[int, list[int]] = {run: [] for run in run_of_head.values()}
    for index, request in enumerate(fake.requests):
        if request.method == "POST" and request.path.endswith("/check-runs"):
            run = run_of_head.get((request.json or {}).get("head_sha"))
        elif request.method == "PATCH" and "/check-runs/" in request.path:
            run = int(request.path.rsplit("/", 1)[1])
        else:
            continue
        if run in footprint:
            footprint[run].append(index)
    return [(min(footprint[run]), max(footprint[run])) for run in run_of_head.values()]


# -- backends -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    """Where the replicas keep their store, and how the test reads it afterwards."""

    name: str
    replicas: int
    env: dict[str, str]
    query: Query


def sqlite_backend(tmp_path: Path) -> Backend:
    path = tmp_path / "tessera.db"

    def query(sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(path) as conn:
            return conn.execute(sql).fetchall()

    return Backend("sqlite", 1, {"TESSERA_DB": str(path)}, query)


def postgres_backend(server: PostgresServer) -> Backend:
    url = server.create_database(f"chaos_{os.getpid()}")

    def query(sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(url, autocommit=True) as conn:
            return [tuple(row) for row in conn.execute(sql).fetchall()]

    return Backend("postgresql", 3, {"TESSERA_DATABASE_URL": url}, query)


@pytest.fixture
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return sqlite_backend(tmp_path)
    return postgres_backend(request.getfixturevalue("postgres_server"))


# -- the test -----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
async def test_deliveries_across_replicas_with_one_killed_are_each_stored_once_and_run_in_order(
    backend: Backend, fake_github: FakeGitHub, app_private_key: str, tmp_path: Path
) -> None:
    fake = fake_github
    repo = fake.add_repo("acme/warehouse", installation_id=INSTALLATION_ID, files=repo_files("revenue_dbt"))
    plans = [PullPlan(fake, repo, i) for i in range(PULLS)]
    total = PULLS * DELIVERIES_PER_PULL

    inherited = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env = {
        **inherited,
        "PYTHONPATH": str(REPO_ROOT),
        "TESSERA_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "TESSERA_GITHUB_APP_ID": str(APP_ID),
        "TESSERA_GITHUB_PRIVATE_KEY": app_private_key,
        "TESSERA_GITHUB_API_URL": fake.url,
        "TESSERA_PUBLIC_URL": "https://tessera.example.com",
        "TESSERA_HOST": "127.0.0.1",
        "TESSERA_PORT": "0",
        "TESSERA_WORKERS": "8",
        "TESSERA_ANALYSIS_WORKERS": "1",
        "TESSERA_MAX_ATTEMPTS": "10",
        **backend.env,
    }
    cluster = Cluster(env, tmp_path)
    started = time.monotonic()
    for _ in range(backend.replicas):
        await cluster.start()

    answered: dict[str, list[int]] = {}
    sent = 0
    progress = asyncio.Condition()

    async def send_pull(session: aiohttp.ClientSession, plan: PullPlan) -> None:
        nonlocal sent
        for delivery in plan.deliveries():
            answered.setdefault(delivery.id, []).append(await send(session, cluster, delivery))
            async with progress:
                sent += 1
                progress.notify_all()

    async def reached(fraction: float) -> None:
        async with progress:
            await progress.wait_for(lambda: sent >= total * fraction)

    async def chaos() -> None:
        await reached(0.3)
        victim = cluster.live[0]
        await cluster.kill(victim)
        if not cluster.live:  # one replica: the stream waits for it to come back
            await asyncio.sleep(1.0)
            await cluster.start()
        await reached(0.6)
        await cluster.stop(cluster.live[-1])
        await cluster.start()
        if len(cluster.live) < backend.replicas:
            await cluster.start()

    timeout = aiohttp.ClientTimeout(total=15)
    connector = aiohttp.TCPConnector(limit=PULLS)
    try:
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            await asyncio.gather(chaos(), *(send_pull(session, plan) for plan in plans))
            # GitHub's "Redeliver" of some answered deliveries: stored already, not run again
            for plan in plans[::5]:
                for delivery in plan.sent[::8]:
                    answered[delivery.id].append(await send(session, cluster, delivery))
        sent_in = time.monotonic() - started

        def settled() -> bool:
            rows = backend.query("SELECT count(*) FROM deliveries WHERE status IN ('queued', 'running')")
            return rows[0][0] == 0

        while not settled():
            assert time.monotonic() - started < SETTLE_TIMEOUT, "the queue did not drain in time"
            await asyncio.sleep(0.25)
    finally:
        await cluster.stop_all()
    elapsed = time.monotonic() - started
    [(retried,)] = backend.query("SELECT count(*) FROM deliveries WHERE attempts > 1")
    print(
        f"{backend.name}, {backend.replicas} replica(s): {total} deliveries sent in {sent_in:.1f} s, all done in"
        f" {elapsed:.1f} s; {retried} run more than once (interrupted by the kill or the restart)"
    )

    # every delivery answered 2xx is stored once, and ran to done
    assert len(answered) == total and all(statuses for statuses in answered.values())
    rows = backend.query("SELECT delivery_id, status, ordering_key, seq, started_at, finished_at FROM deliveries")
    assert sorted(r[0] for r in rows) == sorted(answered)
    failed = [(r[0], r[1]) for r in rows if r[1] != "done"]
    assert failed == []
    assert retried > 0, "the kill interrupted no job: the test proved nothing about a crash"
    # nothing left claimed
    assert backend.query(
        "SELECT count(*) FROM deliveries WHERE status = 'running' OR lease_until IS NOT NULL"
    ) == [(0,)]

    # each pull request's jobs were stored in the order they were sent (each after the previous
    # one's answer), and so claimed in that order
    by_id = {r[0]: r for r in rows}
    for plan in plans:
        jobs = [by_id[d.id] for d in plan.sent]
        assert len({job[2] for job in jobs}) == 1, "one pull request, one ordering key"
        assert [job[3] for job in jobs] == sorted(job[3] for job in jobs), f"#{plan.pull.number} stored out of order"
    # ...and ran one at a time: everything an analysis did at GitHub (creating its check run,
    # updating it) happened after everything the previous analysis of that pull request did
    for plan in plans:
        windows = analysis_windows(fake, repo, plan.heads)
        assert windows == sorted(windows) and all(a[1] < b[0] for a, b in itertools.pairwise(windows)), (
            f"#{plan.pull.number}: analyses overlapped or ran out of order at GitHub: {windows}"
        )

    heads_seen = superseded = 0
    # one impact comment per pull request, naming what its last push breaks; at most one check
    # run per head, completed, made in push order (a head pushed over before its job ran has none,
    # one pushed over while it ran is cancelled naming a later head); the last head's check waits
    # for Growth
    for plan in plans:
        assert plan.pull is not None and len(plan.sent) == DELIVERIES_PER_PULL
        number = plan.pull.number
        bot_comments = repo.bot_comments(number)
        assert [MARKER in c.body for c in bot_comments] == [True], f"#{number}: {len(bot_comments)} comments"
        assert "plan_code" in bot_comments[0].body and "@acme/growth" in bot_comments[0].body
        runs = []
        heads_seen += len(plan.heads)
        for index, head in enumerate(plan.heads):
            on_head = repo.check_runs(head_sha=head, name="Tessera")
            assert len(on_head) <= 1, f"#{number}: {len(on_head)} check runs on {head[:8]}"
            if not on_head:
                assert index < len(plan.heads) - 1, f"#{number}: no check run on the last head"
                superseded += 1
                continue
            assert on_head[0].status == "completed", f"#{number}: check left {on_head[0].status}"
            if on_head[0].conclusion == "cancelled":
                superseded += 1
                later = {h[:12] for h in plan.heads[index + 1 :]}
                assert any(h in on_head[0].output["title"] for h in later), on_head[0].output
            runs.append(on_head[0])
        assert [run.id for run in runs] == sorted(run.id for run in runs), f"#{number}: checks out of push order"
        assert runs[-1].head_sha == plan.heads[-1] and runs[-1].conclusion == "action_required", runs[-1].output
    print(f"{backend.name}: {superseded} of {heads_seen} heads superseded by a later push before being shown")


async def test_a_delivery_postgresql_cannot_store_is_never_answered_2xx(tmp_path: Path) -> None:
    """The database gone under a running replica: a delivery is answered with an error within
    GitHub's 10 s (GitHub shows it failed, an operator redelivers it), never with a 2xx for
    something not stored; and the replica still stops on SIGTERM."""
    if find_bindir() is None:
        pytest.skip("PostgreSQL is not installed (initdb/postgres not found); .ci/run installs it")
    root = Path(tempfile.mkdtemp(prefix="tessera-pg-down-"))  # the server's user must reach it
    server = start_server(root)  # its own server: this test stops it
    try:
        url = server.create_database("down")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
        env.update(PYTHONPATH=str(REPO_ROOT), TESSERA_WEBHOOK_SECRET=WEBHOOK_SECRET, TESSERA_PORT="0",
                   TESSERA_DATABASE_URL=url, TESSERA_DB=str(tmp_path / "cache.db"))
        cluster = Cluster(env, tmp_path)
        replica = await cluster.start()
        payload = json.dumps(load_webhook("pull_request", "edited")).encode()
        before, after = (Delivery(str(uuid.uuid4()), "pull_request", payload) for _ in range(2))
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
                async with session.post(f"{replica.url}/webhooks/github", data=payload, headers=before.headers()) as r:
                    assert r.status == 202
                server.stop()
                started = time.monotonic()
                async with session.post(f"{replica.url}/webhooks/github", data=payload, headers=after.headers()) as r:
                    status, body, waited = r.status, await r.text(), time.monotonic() - started
        finally:
            await cluster.stop_all()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    assert status >= 500, (status, body)
    assert "error" in json.loads(body)
    assert waited < 10, f"answered after {waited:.1f} s: GitHub gives up after 10 s"
