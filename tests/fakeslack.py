"""A fake Slack Web API and fake webhook subscribers: real aiohttp servers on 127.0.0.1.

The Slack fake answers ``chat.postMessage`` and ``chat.update`` in Slack's shapes: HTTP 200 with
``{"ok": true, "channel", "ts", "message"}``, or ``{"ok": false, "error": "channel_not_found"}``
(also ``not_authed``, ``invalid_auth``, ``invalid_arguments``, ``message_not_found``); rate
limits are HTTP 429 with ``Retry-After`` and ``{"ok": false, "error": "ratelimited"}``. It checks
each call's arguments against Slack's documented shapes (``channel``; ``text`` and/or ``blocks``,
each block an object with a ``type``; ``ts`` for an update), so a malformed call fails a test. It
also serves ``response_url`` endpoints (``/respond/<id>``) and incoming webhooks
(``/services/...``), which answer a bare ``ok``.

An outage is a window of the test's clock: ``slack.outage(status=503, until=t)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

TOKEN = "xoxb-test-token"
SIGNING_SECRET = "slack-signing-secret-for-tests"
BLOCK_TYPES = {"section", "actions", "context", "divider", "header", "image", "input", "rich_text"}


@dataclass
class SlackMessage:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    edits: int = 0


@dataclass
class SlackCall:
    method: str
    arguments: dict[str, Any]
    status: int
    answer: dict[str, Any]


@dataclass
class FakeSlack:
    """Channels by name and id; every message posted; every call made (answered or not)."""

    channels: dict[str, str] = field(default_factory=lambda: {"#data-growth": "C0GROWTH", "#finance": "C0FINANCE"})
    messages: dict[str, SlackMessage] = field(default_factory=dict)
    calls: list[SlackCall] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    incoming: list[dict[str, Any]] = field(default_factory=list)
    clock: Callable[[], float] | None = None
    _outage: tuple[int, float, float | None] | None = None
    _seq: int = 0
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.url}/respond/{name}"

    def outage(self, *, status: int = 503, until: float, retry_after: float | None = None) -> None:
        """Answer ``status`` to every Web API call while the test's clock is before ``until``."""
        self._outage = (status, until, retry_after)

    def in_channel(self, channel_id: str) -> list[SlackMessage]:
        return [m for m in self.messages.values() if m.channel == channel_id and m.thread_ts is None]

    def thread(self, ts: str) -> list[SlackMessage]:
        return [m for m in self.messages.values() if m.thread_ts == ts]

    def posted(self) -> list[SlackCall]:
        return [c for c in self.calls if c.method == "chat.postMessage" and c.answer.get("ok")]

    # -- the server --------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_post("/respond/{name}", self._respond)
        app.router.add_post("/services/{path:.*}", self._incoming)
        return app

    async def _incoming(self, request: web.Request) -> web.Response:
        """An incoming webhook: posts to its channel, answers a bare ``ok`` (or ``invalid_payload``)."""
        body = await request.json()
        if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
            return web.Response(status=400, text="invalid_payload")
        self.incoming.append(body)
        return web.Response(text="ok")

    async def _respond(self, request: web.Request) -> web.Response:
        self.responses.append({"name": request.match_info["name"], **(await request.json())})
        return web.Response(text="ok")

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            arguments = await request.json()
        except ValueError:
            arguments = {}
        status, answer, headers = self._answer(request, method, arguments)
        self.calls.append(SlackCall(method, arguments, status, answer))
        return web.json_response(answer, status=status, headers=headers)

    def _answer(self, request: web.Request, method: str, args: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        if self._outage is not None and self.clock is not None:
            status, until, retry_after = self._outage
            if self.clock() < until:
                headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else {}
                if status == 429:
                    return 429, {"ok": False, "error": "ratelimited"}, headers
                return status, {"ok": False, "error": "service_unavailable"}, headers
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return 200, {"ok": False, "error": "not_authed"}, {}
        if auth != f"Bearer {TOKEN}":
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        if request.content_type != "application/json":
            return 200, {"ok": False, "error": "invalid_arguments"}, {}
        if method not in ("chat.postMessage", "chat.update"):
            return 200, {"ok": False, "error": "unknown_method"}, {}
        problem = _argument_problem(method, args)
        if problem:
            return 200, {"ok": False, "error": "invalid_arguments", "response_metadata": {"messages": [problem]}}, {}
        channel = self.channels.get(args["channel"]) or (args["channel"] if args["channel"] in self.channels.values() else None)
        if channel is None:
            return 200, {"ok": False, "error": "channel_not_found"}, {}
        if method == "chat.update":
            message = self.messages.get(args["ts"])
            if message is None or message.channel != channel:
                return 200, {"ok": False, "error": "message_not_found"}, {}
            message.text, message.blocks = args.get("text", ""), args.get("blocks", [])
            message.edits += 1
            return 200, {"ok": True, "channel": channel, "ts": message.ts, "text": message.text,
                         "message": {"text": message.text, "blocks": message.blocks}}, {}
        self._seq += 1
        ts = f"1750000000.{self._seq:06d}"
        thread = args.get("thread_ts")
        self.messages[ts] = SlackMessage(channel, ts, args.get("text", ""), args.get("blocks", []), thread)
        return 200, {"ok": True, "channel": channel, "ts": ts,
                     "message": {"type": "message", "text": args.get("text", ""), "blocks": args.get("blocks", []),
                                 "ts": ts, "bot_id": "B0TESSERA"}}, {}

    async def start(self) -> None:
        self.server = TestServer(self.app(), host="127.0.0.1")
        await self.server.start_server()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()


def _argument_problem(method: str, args: dict[str, Any]) -> str | None:
    """Slack's documented arguments: ``channel`` (string); ``text`` or ``blocks``; ``ts`` to update."""
    if not isinstance(args.get("channel"), str) or not args["channel"]:
        return "[ERROR] missing required field: channel"
    if "text" not in args and "blocks" not in args:
        return "[ERROR] one of text or blocks is required"
    if "text" in args and not isinstance(args["text"], str):
        return "[ERROR] text must be a string"
    blocks = args.get("blocks", [])
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "[ERROR] blocks must be a list of at most 50 blocks"
    for block in blocks:
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            return f"[ERROR] invalid block {json.dumps(block)[:80]}"
        if block["type"] == "section" and len(block.get("text", {}).get("text", "")) > 3000:
            return "[ERROR] section text over 3000 characters"
        if block["type"] == "actions":
            for element in block.get("elements", []):
                if element.get("type") != "button" or element.get("text", {}).get("type") != "plain_text":
                    return "[ERROR] invalid button"
    if method == "chat.update" and not isinstance(args.get("ts"), str):
        return "[ERROR] missing required field: ts"
    return None


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class FakeSubscriber:
    """A webhook receiver: records what it got, answers what the test scripted (default 204)."""

    received: list[Received] = field(default_factory=list)
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/hook"))

    def answer(self, *answers: int | tuple[int, dict[str, str]]) -> None:
        """The next answers, in order (then 204 again)."""
        self.script.extend(a if isinstance(a, tuple) else (a, {}) for a in answers)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{path:.*}", self._hook)
        return app

    async def _hook(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["path"]
        self.hits[path] = self.hits.get(path, 0) + 1
        if path != "/hook":
            return web.Response(status=204)
        self.received.append(Received(dict(request.headers), await request.read()))
        status, headers = self.script.pop(0) if self.script else (204, {})
        return web.Response(status=status, headers=headers)

    async def start(self) -> None:
        self.server = TestServer(self.app(), host="127.0.0.1")
        await self.server.start_server()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()
