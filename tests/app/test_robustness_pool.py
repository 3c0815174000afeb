"""Hostile pull requests can neither stall Tessera nor slip past it.

A model whose Jinja computes ``n ** (n ** 7 * 4)`` holds the GIL in C for minutes; one that
renders ``'a' * 10**9`` wants gigabytes. Both are analysed in worker processes under the limits,
so while they run the server keeps answering ``/healthz`` at once, takes another pull request's
delivery and analyses it; each hostile one ends as a completed check naming the limit and the file.
An analysis that ends its worker twice for one delivery is quarantined, not retried again.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from app import engine
from app.appkeys import QUEUE_KEY
from app.config import Settings
from app.store import deliveries as delivery_sql
from tests.app.registry_support import ADMIN, BOOTSTRAP
from tests.app.test_robustness_content import FCT, completed_saying
from tests.app.test_robustness_payloads import flow, settle
from tests.app.workflow_support import PullRequestFlow
from tests.fixtures_app import WEBHOOK_SECRET, post_delivery, wait_until

__all__ = ["flow"]

FREEZE = "{% set n = 10 %}{% set x = (n ** (n ** 7 * 4)) %}\nselect 1 as x\n"
MEMORY_BOMB = "{{ 'a' * 10**9 }}\nselect 1 as x\n"


BUDGET = 8.0


@pytest.fixture
def app_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Three jobs and three analyses at once; 256 MB and 8 s per analysis (a shared test machine
    can be slow; the job's own time-out is far enough away not to interfere)."""
    monkeypatch.setattr(engine, "analysis_budget", lambda settings: BUDGET)
    return Settings(
        webhook_secret=WEBHOOK_SECRET,
        db_path=str(tmp_path / "tessera.db"),
        workers=3,
        max_attempts=4,
        retry_base_delay=1.0,
        job_timeout=30.0,
        analysis_workers=3,
        analysis_memory_mb=256,
        bootstrap_key=BOOTSTRAP,
    )


def _branch_with(flow: PullRequestFlow, changes: dict[str, str]) -> Any:
    branch = f"b-{uuid.uuid4().hex[:8]}"
    flow.repo.commit(changes, parent="main", branch=branch)
    return flow.repo.open_pull_request(head=branch, author="priya")


async def _post(flow: PullRequestFlow, pull: Any) -> tuple[str, float, int]:
    delivery_id = str(uuid.uuid4())
    started = time.perf_counter()
    response = await post_delivery(flow.client, "pull_request", flow.pull_payload(pull, "opened"), delivery_id=delivery_id)
    return delivery_id, time.perf_counter() - started, response.status


async def _finished(flow: PullRequestFlow, delivery_id: str) -> Any:
    async def done() -> Any:
        delivery = await flow.store.get_delivery(delivery_id)
        return delivery if delivery is not None and delivery.status not in ("queued", "running") else None

    return await wait_until(done, timeout=30)


async def test_while_a_freezing_and_a_memory_bomb_pr_are_analysed_the_server_answers_and_analyses_another(
    flow: PullRequestFlow,
) -> None:
    await flow.client.get("/healthz")
    frozen = _branch_with(flow, {"models/marts/freeze.sql": FREEZE})
    bomb = _branch_with(flow, {"models/marts/bomb.sql": MEMORY_BOMB})
    text = flow.repo.files_at("main")[FCT].decode()
    ordinary = _branch_with(flow, {FCT: text.replace("    plan_code,\n", "")})

    statuses: list[int] = []
    hostile = [await _post(flow, frozen), await _post(flow, bomb)]
    statuses += [status for _, _, status in hostile]
    await asyncio.sleep(0.3)  # both hostile analyses are under way

    latencies: list[float] = []
    other: tuple[str, float, int] | None = None
    until = time.monotonic() + BUDGET + 0.5  # past the budget of the freezing one
    while time.monotonic() < until:
        started = time.perf_counter()
        response = await flow.client.get("/healthz")
        latencies.append(time.perf_counter() - started)
        statuses.append(response.status)
        if other is None and len(latencies) == 20:
            other = await _post(flow, ordinary)
            statuses.append(other[2])
        await asyncio.sleep(0.01)
    assert other is not None

    p99 = statistics.quantiles(latencies, n=100)[98]
    assert p99 < 0.1, f"/healthz p99 {p99 * 1000:.0f} ms over {len(latencies)} requests"
    assert other[1] < 1.0 and other[2] == 202
    assert set(statuses) == {200, 202}  # nothing answered 500

    deliveries = [await _finished(flow, delivery_id) for delivery_id in (hostile[0][0], hostile[1][0], other[0])]
    assert [d.status for d in deliveries] == ["done", "done", "done"], [d.last_error for d in deliveries]
    completed_saying(flow, frozen, "could not be analysed: over the 8 s time limit", "models/marts/freeze.sql")
    completed_saying(flow, bomb, "could not be analysed: over the 256 MB memory limit", "models/marts/bomb.sql")
    assert flow.check(ordinary).conclusion == "action_required"
    assert [d.worker_kills for d in deliveries] == [1, 1, 0]


async def test_a_delivery_whose_analysis_ends_its_worker_twice_is_quarantined_and_can_be_replayed(
    flow: PullRequestFlow,
) -> None:
    bomb = _branch_with(flow, {"models/marts/bomb.sql": MEMORY_BOMB})
    delivery = await settle(flow, "pull_request", flow.pull_payload(bomb, "opened"))
    assert delivery.status == "done" and delivery.worker_kills == 1
    completed_saying(flow, bomb, "over the 256 MB memory limit")

    # the same delivery runs again with its count (as after a crash while completing the check)
    await flow.store.write(
        lambda db: db.execute(
            "UPDATE deliveries SET status = 'queued', run_after = 0 WHERE delivery_id = ?", [delivery.delivery_id]
        )
    )
    flow.client.app[QUEUE_KEY].notify()

    async def quarantined() -> Any:
        found = await flow.store.get_delivery(delivery.delivery_id)
        return found if found is not None and found.status == "quarantined" else None

    found = await wait_until(quarantined, timeout=30)
    assert found.worker_kills == 2 and found.attempts == 2
    assert "quarantined" in (found.last_error or "") and "over the 256 MB memory limit" in (found.last_error or "")
    assert flow.check(bomb).status == "completed"
    assert [d.delivery_id for d in await flow.store.list_deliveries(status="quarantined")] == [delivery.delivery_id]

    assert await flow.store.replay_delivery(delivery.delivery_id, time.time())
    replayed = await flow.store.read(lambda db: delivery_sql.get(db, delivery.delivery_id))
    assert replayed is not None and replayed.worker_kills == 0  # the operator decided to try again


async def test_the_deliveries_api_lists_quarantined_deliveries_with_their_kills(flow: PullRequestFlow) -> None:
    bomb = _branch_with(flow, {"models/marts/bomb.sql": MEMORY_BOMB})
    delivery = await settle(flow, "pull_request", flow.pull_payload(bomb, "opened"))
    await flow.store.write(lambda db: delivery_sql.count_kill(db, delivery.delivery_id))
    await flow.store.write(
        lambda db: delivery_sql.mark_failed(db, delivery.id, "quarantined: twice", time.time(), status="quarantined")
    )
    response = await flow.client.get("/api/v1/deliveries?status=quarantined", headers=ADMIN)
    assert response.status == 200, await response.text()
    body = await response.json()
    rows = body["items"] if isinstance(body, dict) and "items" in body else body["data"]
    assert [(r["delivery_id"], r["status"], r["worker_kills"]) for r in rows] == [(delivery.delivery_id, "quarantined", 2)]
