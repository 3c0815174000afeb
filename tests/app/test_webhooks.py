"""POST /webhooks/github: signature first, then persistence keyed by delivery id, then 202."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from app.config import Settings
from app.store import Store
from app.webhooks import ordering_key, sign, verify_signature
from tests.fixtures_app import WEBHOOK_SECRET, load_webhook, post_delivery

EVERY_SUBSCRIBED_EVENT = [
    ("pull_request", "opened", "pr:186853002#2"),
    ("pull_request", "synchronize", "pr:186853002#2"),
    ("pull_request", "edited", "pr:108976240#10"),
    ("pull_request_review", "submitted", "pr:186853002#2"),
    ("issue_comment", "created", "pr:186853002#1"),
    ("issue_comment", "created.on-pull-request", "pr:164268911#1"),
    ("check_run", "rerequested", "repo:526"),
    ("check_run", "requested_action", "pr:9384267#26764"),
    ("check_suite", "requested", "repo:186853002"),
    ("check_suite", "rerequested", "pr:186853002#2"),
    ("push", "push", "repo:186853002"),
    ("installation", "created", "installation:957387"),
    ("installation_repositories", "added", "installation:957387"),
    ("ping", "ping", "repo:186853261"),
]


def test_the_signature_matches_githubs_documented_test_vector() -> None:
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign("It's a Secret to Everybody", b"Hello, World!") == expected
    assert verify_signature("It's a Secret to Everybody", b"Hello, World!", expected)
    assert not verify_signature("It's a Secret to Everybody", b"Hello, World?", expected)
    assert not verify_signature("It's a Secret to Everybody", b"Hello, World!", expected[:-1])
    assert not verify_signature("It's a Secret to Everybody", b"Hello, World!", None)


@pytest.mark.parametrize(("event", "action", "key"), EVERY_SUBSCRIBED_EVENT)
async def test_a_valid_delivery_of_each_event_is_stored_with_its_ordering_key(
    make_client: Any, store: Store, event: str, action: str, key: str
) -> None:
    client = await make_client(start_workers=False)
    payload = load_webhook(event, action)
    response = await post_delivery(client, event, payload, delivery_id=f"{event}-{action}")
    assert response.status == 202
    body = await response.json()
    assert body["status"] == "queued" and body["delivery"] == f"{event}-{action}"
    stored = await store.get_delivery(f"{event}-{action}", with_payload=True)
    assert stored is not None
    assert (stored.event, stored.action, stored.ordering_key, stored.status) == (
        event, payload.get("action"), key, "queued",
    )
    assert json.loads(stored.payload or "") == payload
    assert ordering_key(event, payload) == key


async def test_a_ping_is_answered_with_pong_and_stored(make_client: Any, store: Store) -> None:
    client = await make_client(start_workers=False)
    response = await post_delivery(client, "ping", load_webhook("ping", "ping"), delivery_id="ping-1")
    assert response.status == 202
    assert (await response.json())["message"] == "pong"
    assert (await store.get_delivery("ping-1")).event == "ping"


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "sha256=" + "0" * 64,
        "sha1=abcdef",
        "sha256=" + sign(WEBHOOK_SECRET, b"x")[7:][:40],  # truncated
    ],
    ids=["missing", "empty", "wrong", "wrong-algorithm", "truncated"],
)
async def test_a_delivery_without_a_valid_signature_is_refused_and_not_stored(
    make_client: Any, store: Store, signature: str | None
) -> None:
    client = await make_client(start_workers=False)
    payload = load_webhook("pull_request", "opened")
    if signature is None:
        response = await post_delivery(client, "pull_request", payload, secret=None)
    else:
        response = await post_delivery(client, "pull_request", payload, signature=signature)
    assert response.status == 401
    assert "X-Hub-Signature-256" in (await response.json())["error"]["message"]
    assert sum((await store.count_deliveries()).values()) == 0


async def test_a_truncated_signature_of_the_right_body_is_refused(make_client: Any, store: Store) -> None:
    client = await make_client(start_workers=False)
    body = json.dumps(load_webhook("push", "push")).encode()
    response = await post_delivery(client, "push", body, signature=sign(WEBHOOK_SECRET, body)[:-2])
    assert response.status == 401
    assert sum((await store.count_deliveries()).values()) == 0


async def test_a_body_signed_with_another_secret_is_refused(make_client: Any, store: Store) -> None:
    client = await make_client(start_workers=False)
    response = await post_delivery(client, "push", load_webhook("push", "push"), secret="not-our-secret")
    assert response.status == 401
    assert sum((await store.count_deliveries()).values()) == 0


async def test_without_a_configured_secret_every_delivery_is_refused_with_503(
    make_client: Any, store: Store, app_settings: Settings
) -> None:
    client = await make_client(app_settings.with_overrides(webhook_secret=None), start_workers=False)
    response = await post_delivery(client, "push", load_webhook("push", "push"))
    assert response.status == 503
    assert "TESSERA_WEBHOOK_SECRET" in (await response.json())["error"]["message"]
    assert sum((await store.count_deliveries()).values()) == 0


async def test_a_webhook_refusal_has_the_rest_apis_error_shape(make_client: Any, store: Store) -> None:
    client = await make_client(start_workers=False)
    response = await post_delivery(client, "push", load_webhook("push", "push"), secret=None)
    assert response.status == 401
    error = (await response.json())["error"]
    assert error["code"] == "bad_signature"
    assert "X-Hub-Signature-256" in error["message"]


async def test_the_server_is_not_ready_without_a_webhook_secret(
    make_client: Any, store: Store, app_settings: Settings
) -> None:
    client = await make_client(app_settings.with_overrides(webhook_secret=None), start_workers=False)
    response = await client.get("/readyz")
    body = await response.json()
    assert response.status == 503
    assert body["status"] == "unavailable"
    assert any("TESSERA_WEBHOOK_SECRET" in problem for problem in body["problems"])


async def test_a_replayed_delivery_id_is_acknowledged_and_not_queued_again(make_client: Any, store: Store) -> None:
    client = await make_client(start_workers=False)
    payload = load_webhook("pull_request", "opened")
    first = await post_delivery(client, "pull_request", payload, delivery_id="same-id")
    repeat = await post_delivery(client, "pull_request", payload, delivery_id="same-id")
    assert first.status == 202
    assert repeat.status == 200 and (await repeat.json())["status"] == "duplicate"
    assert await store.count_deliveries() == {"queued": 1, "running": 0, "done": 0, "failed": 0, "quarantined": 0}


@pytest.mark.parametrize(
    "body", [b"{not json", b"\xff\xfe binary", b"[1, 2, 3]", b""], ids=["broken", "not-utf8", "array", "empty"]
)
async def test_a_signed_body_that_is_not_a_json_object_is_refused_with_400_and_not_stored(
    make_client: Any, store: Store, body: bytes
) -> None:
    client = await make_client(start_workers=False)
    response = await post_delivery(client, "push", body)
    assert response.status == 400
    assert "not" in (await response.json())["error"]["message"]
    assert sum((await store.count_deliveries()).values()) == 0


async def test_a_delivery_without_event_or_delivery_headers_is_refused(make_client: Any, store: Store) -> None:
    client = await make_client(start_workers=False)
    body = b'{"zen": "x"}'
    response = await client.post(
        "/webhooks/github", data=body, headers={"X-Hub-Signature-256": sign(WEBHOOK_SECRET, body)}
    )
    assert response.status == 400
    assert sum((await store.count_deliveries()).values()) == 0


async def test_a_form_encoded_delivery_is_read_from_its_payload_field(make_client: Any, store: Store) -> None:
    client = await make_client(start_workers=False)
    from urllib.parse import urlencode

    body = urlencode({"payload": json.dumps(load_webhook("push", "push"))}).encode()
    response = await client.post(
        "/webhooks/github",
        data=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "form-1",
            "X-Hub-Signature-256": sign(WEBHOOK_SECRET, body),
        },
    )
    assert response.status == 202
    assert (await store.get_delivery("form-1")).ordering_key == "repo:186853002"


async def test_a_body_over_the_size_limit_is_refused_with_413_and_not_stored(
    make_client: Any, store: Store, app_settings: Settings
) -> None:
    # A 64 KB limit stands in for GitHub's 25 MB so the test stays fast; the code path is the same.
    small = app_settings.with_overrides(max_webhook_bytes=64 * 1024)
    client = await make_client(small, start_workers=False)
    body = json.dumps({"zen": "x" * 70_000}).encode()
    response = await post_delivery(client, "ping", body)
    assert response.status == 413
    assert sum((await store.count_deliveries()).values()) == 0


async def test_a_chunked_body_over_the_limit_without_content_length_is_refused(
    make_client: Any, store: Store, app_settings: Settings
) -> None:
    client = await make_client(app_settings.with_overrides(max_webhook_bytes=64 * 1024), start_workers=False)
    body = json.dumps({"zen": "x" * 70_000}).encode()

    async def chunks():
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    response = await client.post(
        "/webhooks/github",
        data=chunks(),
        headers={
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": "chunked-1",
            "X-Hub-Signature-256": sign(WEBHOOK_SECRET, body),
        },
    )
    assert response.status == 413
    assert sum((await store.count_deliveries()).values()) == 0


async def test_the_default_limit_is_githubs_25_mb(app_settings: Settings) -> None:
    assert app_settings.max_webhook_bytes == 25 * 1024 * 1024


async def test_a_body_just_over_25_mb_is_refused_with_413(make_client: Any, store: Store) -> None:
    client = await make_client(start_workers=False)
    body = b'{"zen": "' + b"x" * (25 * 1024 * 1024) + b'"}'
    response = await post_delivery(client, "ping", body)
    assert response.status == 413
    assert sum((await store.count_deliveries()).values()) == 0


async def test_the_answer_does_not_wait_for_the_handlers(make_client: Any, store: Store) -> None:
    from gidgethub.routing import Router

    from tests.fixtures_app import wait_until

    started, release = asyncio.Event(), asyncio.Event()
    router = Router()

    @router.register("pull_request")
    async def slow(event: Any, ctx: Any) -> None:
        started.set()
        await release.wait()

    client = await make_client(router=router)
    # If the request ran the handler, this would wait on `release` and time out.
    response = await asyncio.wait_for(
        post_delivery(client, "pull_request", load_webhook("pull_request", "opened"), delivery_id="s1"), 5
    )
    assert response.status == 202
    await asyncio.wait_for(started.wait(), 5)
    assert (await store.get_delivery("s1")).status == "running"
    release.set()
    await wait_until(lambda: _done(store, "s1"))


async def _done(store: Store, delivery_id: str) -> bool:
    return (await store.get_delivery(delivery_id)).status == "done"
