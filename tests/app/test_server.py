"""Health, readiness and Prometheus metrics of the running app."""

from __future__ import annotations

import re
from typing import Any

from gidgethub.routing import Router
from gidgethub.sansio import Event

from app.appkeys import QUEUE_KEY
from app.errors import PermanentError
from app.queue import JobContext
from app.store import Store
from tests.fixtures_app import load_webhook, post_delivery, wait_until


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    label_text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name + (f"{{{label_text}}}" if labels else "")) + r" (\S+)$"
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_healthz_and_readyz_answer_when_the_store_and_workers_run(make_client: Any) -> None:
    client = await make_client()
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["workers"] == 2


async def test_readyz_is_503_once_the_store_is_closed(make_client: Any, store: Store) -> None:
    client = await make_client()
    await store.close()
    response = await client.get("/readyz")
    assert response.status == 503
    assert "store is not open" in (await response.json())["problems"]
    assert (await client.get("/healthz")).status == 200  # the process itself is still up


async def test_readyz_is_503_when_the_workers_are_not_running(make_client: Any) -> None:
    client = await make_client()
    await client.app[QUEUE_KEY].stop()
    response = await client.get("/readyz")
    assert response.status == 503 and "workers are not running" in (await response.json())["problems"]


async def test_metrics_count_deliveries_duplicates_failures_and_job_latency(make_client: Any, store: Store) -> None:
    router = Router()

    @router.register("push")
    async def broken(event: Event, ctx: JobContext) -> None:
        raise PermanentError("cannot sync")

    client = await make_client(router=router)
    before = await (await client.get("/metrics")).text()
    await post_delivery(client, "pull_request", load_webhook("pull_request", "opened"), delivery_id="m1")
    await post_delivery(client, "pull_request", load_webhook("pull_request", "opened"), delivery_id="m1")
    await post_delivery(client, "push", load_webhook("push", "push"), delivery_id="m2")
    await post_delivery(client, "push", b"{}", signature="sha256=00")
    await wait_until(lambda: _ended(store, "m1", "m2"))

    response = await client.get("/metrics")
    assert response.status == 200 and response.content_type == "text/plain"
    after = await response.text()

    def delta(name: str, **labels: str) -> float:
        return _sample(after, name, **labels) - _sample(before, name, **labels)

    assert delta("tessera_webhook_deliveries_total", event="pull_request") == 1
    assert delta("tessera_webhook_deliveries_total", event="push") == 1
    assert delta("tessera_webhook_duplicates_total", event="pull_request") == 1
    assert delta("tessera_webhook_rejected_total", reason="bad_signature") == 1
    assert delta("tessera_jobs_failed_total", event="push") == 1
    assert delta("tessera_jobs_total", event="pull_request", outcome="done") == 1
    assert delta("tessera_job_latency_seconds_count", event="pull_request") == 1
    assert _sample(after, "tessera_deliveries", status="failed") == 1
    assert _sample(after, "tessera_deliveries", status="done") == 1
    assert _sample(after, "tessera_deliveries", status="queued") == 0
    assert "# TYPE tessera_job_latency_seconds histogram" in after


async def _ended(store: Store, *delivery_ids: str) -> bool:
    for delivery_id in delivery_ids:
        delivery = await store.get_delivery(delivery_id)
        if delivery is None or delivery.status not in ("done", "failed"):
            return False
    return True


async def test_the_app_opens_its_own_store_with_the_configured_durability(aiohttp_client: Any, app_settings: Any) -> None:
    from app.appkeys import STORE_KEY
    from app.server import create_app

    client = await aiohttp_client(create_app(app_settings.with_overrides(db_synchronous="NORMAL")))
    store = client.app[STORE_KEY]
    assert await store.write(lambda db: db.execute("PRAGMA synchronous").fetchone()[0]) == 1  # NORMAL
    assert (await client.get("/readyz")).status == 200


async def test_a_wrong_method_on_a_service_endpoint_is_405_in_the_error_shape_naming_the_right_one(
    make_client: Any,
) -> None:
    client = await make_client(start_workers=False)
    response = await client.get("/webhooks/github")
    assert response.status == 405
    assert response.headers["Allow"] == "POST"
    error = (await response.json())["error"]
    assert error["code"] == "method_not_allowed"
    assert error["message"] == "GET is not answered at /webhooks/github: use POST"


async def test_an_unknown_path_is_404_in_the_error_shape_listing_what_is_served(make_client: Any) -> None:
    client = await make_client(start_workers=False)
    response = await client.get("/webhook")
    assert response.status == 404
    error = (await response.json())["error"]
    assert error["code"] == "not_found" and "POST /webhooks/github" in error["message"]
    page = await client.get("/checks/999999")  # a handler's own 404 keeps its own words
    assert page.status == 404 and "No such check" in await page.text()
