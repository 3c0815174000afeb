"""A replica that stalls past its job's lease while another takes the job over: the one that
took over publishes, and the stalled one, when it wakes up, writes nothing (its writes are fenced
by the job's lease). Two replicas (two stores, two queues) on one real PostgreSQL database."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from app.appkeys import QUEUE_KEY
from app.config import Settings
from app.github import GitHubApp
from app.server import create_app
from app.store import Store
from tests.app.workflow_support import MARKER, repo_files
from tests.fakegithub import FakeGitHub, FakePull, FakeRepo, slow
from tests.fixtures_app import post_delivery, wait_until
from tests.fixtures_github import INSTALLATION_ID

FCT = "models/marts/fct_revenue.sql"


@pytest.mark.parametrize("store_backend", ["postgres"], indirect=True)
async def test_a_stalled_replica_writes_nothing_after_another_took_its_job_over(
    aiohttp_client: Any,
    app_settings: Settings,
    store: Store,
    store_target: str,
    fake_github: FakeGitHub,
    github_app: GitHubApp,
) -> None:
    repo, pull = _dropping_pull(fake_github)
    settings = app_settings.with_overrides(workers=1, job_timeout=30.0)
    stalled = await aiohttp_client(create_app(settings, store=store, github=github_app))

    # Replica A claims the job, opens the check run, then stalls reading the change.
    fake_github.script("GET", "/repos/acme/warehouse/compare/*", slow(4.0))
    delivery_id = str(uuid.uuid4())
    response = await post_delivery(stalled, "pull_request", _opened(fake_github, repo, pull), delivery_id=delivery_id)
    assert response.status in (200, 202)
    await wait_until(lambda: repo.check_run("Tessera", head_sha=pull.head_sha) is not None, timeout=10)

    # Its lease runs out (its process stopped renewing it, as a stalled process does) and replica
    # B takes the job over and finishes it.
    other = Store(store_target, replica="replica-b")
    await other.open()
    taking_over = None
    try:
        await wait_until(lambda: _take_over(store, other, delivery_id, settings.max_attempts), timeout=10)
        taking_over = await aiohttp_client(create_app(settings, store=other, github=github_app))

        async def done() -> bool:
            delivery = await store.get_delivery(delivery_id)
            return delivery is not None and delivery.status == "done"

        await wait_until(done, timeout=30)
        taken_over = await store.get_delivery(delivery_id)
        assert taken_over.claimed_by == "replica-b" and taken_over.attempts == 2

        # A wakes up, finishes its analysis and would publish: it stops and writes nothing.
        await wait_until(lambda: len(fake_github.requests_to("GET", "/repos/acme/warehouse/compare/*")) == 2, timeout=15)
        await wait_until(lambda: stalled.app[QUEUE_KEY].idle_workers == 1, timeout=30)
    finally:
        if taking_over is not None:
            await taking_over.close()
        await other.close()

    [run] = repo.check_runs(head_sha=pull.head_sha, name="Tessera")
    completions = [b for b in run.bodies if b.get("status") == "completed"]
    assert len(completions) == 1 and run.conclusion == "action_required"
    impact = [c for c in repo.bot_comments(pull.number) if MARKER in c.body]
    assert len(impact) == 1
    assert len(fake_github.requests_to("POST", "/repos/acme/warehouse/issues/*/comments")) == 1
    assert fake_github.requests_to("PATCH", "/repos/acme/warehouse/issues/comments/*") == []
    delivery = await store.get_delivery(delivery_id)
    assert delivery.status == "done" and delivery.claimed_by == "replica-b"


async def _take_over(stalled: Store, other: Store, delivery_id: str, max_attempts: int) -> bool:
    """The stalled replica's lease runs out (it stopped renewing, as a stalled process does) and
    ``other`` takes the job over; False when the stalled replica's lease keeper renewed the lease
    in between (it still runs), so the caller tries again."""
    await stalled.write(lambda db: db.execute("UPDATE deliveries SET lease_until = 0 WHERE delivery_id = ?", (delivery_id,)))
    return await other.take_over_expired(max_attempts, time.time()) == (1, 0)


def _dropping_pull(fake_github: FakeGitHub) -> tuple[FakeRepo, FakePull]:
    """``acme/warehouse`` and priya's pull request dropping ``plan_code``, which Growth reads."""
    repo = fake_github.add_repo("acme/warehouse", installation_id=INSTALLATION_ID, files=repo_files("revenue_dbt"))
    fct = repo.files_at("main")[FCT].decode()
    repo.commit({FCT: fct.replace("    plan_code,\n", "")}, parent="main", branch="drop")
    return repo, repo.open_pull_request(head="drop", author="priya")


def _opened(fake_github: FakeGitHub, repo: FakeRepo, pull: FakePull) -> dict[str, Any]:
    return {
        "action": "opened", "number": pull.number, "pull_request": fake_github._pull_json(repo, pull),
        "repository": fake_github._repo_json(repo), "installation": {"id": INSTALLATION_ID},
        "sender": fake_github._user(pull.author),
    }
