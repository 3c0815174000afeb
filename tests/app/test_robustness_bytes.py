"""Bytes that are not text: every one is a 400 in the JSON error shape, never a 500 or a dropped
connection. The requests go over a raw socket to the server as ``tessera serve`` runs it, because
an HTTP client library would refuse to send most of them."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from app.config import Settings
from app.server import Runner, create_app
from app.store import Store
from app.webhooks import sign
from tests.app import registry_support as support
from tests.app.registry_support import BOOTSTRAP, Api
from tests.fixtures_app import WEBHOOK_SECRET

api, api_settings = support.api, support.api_settings

AUTH = f"Authorization: Bearer {BOOTSTRAP}\r\n".encode()


@dataclass(frozen=True)
class Answer:
    status: int | None
    headers: dict[str, str]
    body: bytes

    def error(self) -> dict[str, Any]:
        return json.loads(self.body)["error"]


@dataclass(frozen=True)
class RawServer:
    port: int

    async def send(self, request: bytes) -> Answer:
        """One request as raw bytes; the answer as the server wrote it (status None: no answer at all)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/"):
            return Answer(None, {}, raw)
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        return Answer(int(lines[0].split()[1]), headers, body)

    async def get(self, target: bytes, headers: bytes = AUTH) -> Answer:
        return await self.send(b"GET " + target + b" HTTP/1.1\r\nHost: tessera\r\n" + headers + b"Connection: close\r\n\r\n")


@pytest.fixture
async def served(api_settings: Settings, store: Store) -> AsyncIterator[RawServer]:
    """The app behind the same runner ``tessera serve`` uses, on a free port."""
    runner = Runner(create_app(api_settings, store=store, start_workers=False))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield RawServer(port=runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def test_an_authorization_header_that_is_not_utf8_is_400_not_500(served: RawServer) -> None:
    answer = await served.get(b"/api/v1/teams", b"Authorization: Bearer tsk_\xff\xfe\r\n")
    assert answer.status == 400
    assert answer.error()["code"] == "bad_request" and "Authorization header" in answer.error()["message"]


async def test_a_signed_delivery_whose_event_header_is_not_utf8_is_400_and_not_stored(
    served: RawServer, store: Store
) -> None:
    body = b'{"action": "opened"}'
    request = (
        b"POST /webhooks/github HTTP/1.1\r\nHost: tessera\r\nContent-Type: application/json\r\n"
        b"X-GitHub-Event: pull_\xffrequest\r\nX-GitHub-Delivery: d-1\r\n"
        + f"X-Hub-Signature-256: {sign(WEBHOOK_SECRET, body)}\r\nContent-Length: {len(body)}\r\n".encode()
        + b"Connection: close\r\n\r\n" + body
    )
    answer = await served.send(request)
    assert answer.status == 400 and "X-GitHub-Event header" in answer.error()["message"]
    assert await store.get_delivery("d-1") is None


async def test_a_control_character_in_a_query_parameter_is_400_not_a_dropped_connection(
    served: RawServer, store: Store, api: Api
) -> None:
    await api.team("alpha")
    await api.team("beta")
    # Two teams and limit=1: the answer would carry a Link header built from the query.
    answer = await served.get(b"/api/v1/teams?limit=1&note=%0d%0aSet-Cookie:%20x")
    assert answer.status == 400
    assert "control character" in answer.error()["message"] and "Set-Cookie" not in answer.headers
    answer = await served.get(b"/api/v1/assets?q=a%00b")
    assert answer.status == 400


async def test_a_raw_control_byte_in_the_request_line_is_answered_400_as_json_without_echoing_it(
    served: RawServer,
) -> None:
    for target in (b"/api/v1/assets?q=a\x01b", b"/api/v1/assets/a\x1bb", b"/api/v1/assets?q=\xff"):
        answer = await served.get(target)
        assert answer.status == 400, target
        assert answer.headers["Content-Type"].startswith("application/json")
        assert answer.error()["code"] == "bad_request" and b"\x01" not in answer.body and b"\x1b" not in answer.body


async def test_bytes_that_are_not_utf8_in_a_path_or_query_are_400(served: RawServer) -> None:
    assert (await served.get(b"/api/v1/assets/%ff%fe")).status == 400
    answer = await served.get(b"/api/v1/teams?limit=1&q=%ff")
    assert answer.status == 400 and "not UTF-8" in answer.error()["message"]


async def test_the_next_page_link_is_percent_encoded(api: Api) -> None:
    await api.team("alpha")
    await api.team("beta")
    response = await api.client.get("/api/v1/teams?limit=1&q=caf%C3%A9", headers=support.ADMIN)
    assert response.status == 200
    link = response.headers["Link"]
    assert link.isascii() and "q=caf%C3%A9" in link and "cursor=" in link


LISTINGS = ["/audit-log", "/deliveries", "/assets", "/proposals", "/registrations", "/teams/growth/keys",
            "/assets/fct_revenue/audits"]
"""Every listing whose cursor is a row id (``/teams`` pages by slug: any text is a place to start)."""


@pytest.mark.parametrize("path", LISTINGS)
async def test_a_huge_or_malformed_cursor_is_400(api: Api, path: str) -> None:
    await api.team("growth")
    digits = base64.urlsafe_b64encode(b"9" * 400).decode().rstrip("=")
    for cursor in ("9" * 400, digits, base64.urlsafe_b64encode("²".encode()).decode(), "%ff"):
        status, body = await api.call("GET", f"{path}?cursor={cursor}")
        assert status == 400, (cursor, body)
        assert "cursor" in body["error"]["message"] or "UTF-8" in body["error"]["message"]
