"""The aiohttp application: wiring of settings, store, GitHub client, queue and routes.

Other modules reach the shared objects through the app keys below
(``request.app[STORE_KEY]``...). To add routes (the REST API, the check pages), write a
``setup_<thing>(app: web.Application) -> None`` in your module and add it to
:func:`route_setups`: one place lists every route owner.

Request bodies are capped app-wide at ``settings.max_webhook_bytes`` (GitHub's 25 MB) for
``request.read()/json()/post()``: a route that must accept more (a large dbt manifest) streams
``request.content`` itself. Handlers that queue work for the workers call
``request.app[QUEUE_KEY].notify()`` after storing it (e.g. a replay through the API).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from urllib.parse import unquote_to_bytes

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from gidgethub.routing import Router

from app.api import setup_api
from app.api.errors import Handler, error_response, store_full_response
from app.appkeys import GITHUB_KEY, OUTBOX_KEY, QUEUE_KEY, RUNS_WORKERS_KEY, SETTINGS_KEY, STORE_KEY
from app.config import Settings
from app.discovery.schedule import setup_discovery
from app.github import GitHubApp
from app.metrics import REGISTRY
from app.notify.interactions import setup_slack
from app.notify.outbox import OutboundQueue
from app.queue import Clock, JobQueue
from app.routing import build_router
from app.store import STATUSES, Store, StoreFull
from app.web import setup_web
from app.webhooks import setup_webhooks

log = logging.getLogger(__name__)


QUEUED = REGISTRY.gauge("tessera_deliveries", "Stored deliveries by status (read from the store at scrape).")


def route_setups() -> list[Callable[[web.Application], None]]:
    """Every module that adds routes. Add yours here."""
    return [setup_webhooks, setup_web, setup_api, setup_discovery, setup_slack]


def _unreadable(encoded: str, what: str) -> str | None:
    """Why the percent-encoded URL part ``encoded`` cannot be taken as text (control characters,
    bytes that are not UTF-8), or None: such values are refused here so no handler, log line or
    header ever holds them. (aiohttp's pure-Python parser lets raw bytes through as surrogates.)"""
    raw = unquote_to_bytes(encoded.encode("utf-8", errors="surrogateescape"))
    if any(b < 0x20 or b == 0x7F for b in raw):
        return f"the {what} holds a control character"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return f"the {what} holds bytes that are not UTF-8"
    return None


def bad_bytes(request: web.Request) -> str | None:
    """What is unreadable about the request line or headers, or None."""
    for name, value in request.raw_headers:
        try:
            name.decode("ascii")
            value.decode("utf-8")
        except UnicodeDecodeError:
            shown = name.decode("ascii", errors="replace")[:40]
            return f"the {shown} header holds bytes that are not UTF-8"
    url = request.rel_url
    return _unreadable(url.raw_path, "path") or _unreadable(url.raw_query_string.replace("+", " "), "query string")


@web.middleware
async def guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unreadable bytes are a 400 before any handler sees them; a full disk is a 503 asking to retry;
    aiohttp's own 404 and 405 (a wrong path or method) answer in the JSON error shape, saying what is
    served instead."""
    problem = bad_bytes(request)
    if problem is not None:
        return error_response(400, "bad_request", f"{problem}: send text (percent-encode it in a URL)")
    try:
        return await handler(request)
    except StoreFull:
        return store_full_response()
    except (web.HTTPMethodNotAllowed, web.HTTPNotFound) as exc:
        if request.match_info.http_exception is None:
            raise  # a handler's own answer (the check page's "No such check.")
        if not isinstance(exc, web.HTTPMethodNotAllowed):
            return error_response(
                404, "not_found",
                f"nothing at {request.path}: Tessera serves POST /webhooks/github, GET /healthz, /readyz,"
                " /metrics, the REST API under /api/v1 (described at /api/v1/openapi.json) and /checks/{id}",
            )
        allowed = ", ".join(sorted(exc.allowed_methods))
        return error_response(
            405, "method_not_allowed", f"{request.method} is not answered at {request.path}: use {allowed}",
            headers={"Allow": allowed},
        )


class _JsonErrors(RequestHandler):
    """A connection that answers in Tessera's JSON error shape even when aiohttp cannot parse the
    request at all (a control byte in the URL): no text echoing the raw bytes back, no bare 500."""

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs it; raises once a response has begun
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        text = (
            "Tessera failed to answer this request; the server log has the details"
            if status >= 500
            else f"{phrase}: the request line or headers could not be read (a control character, or bytes that"
            " are not UTF-8? percent-encode them)"
        )
        response = error_response(status, "bad_request" if status < 500 else "internal_error", text)
        response.force_close()
        return response


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrors(self, loop=self._loop, **self._kwargs)


class Runner(web.AppRunner):
    """``web.AppRunner`` whose connections answer unparseable requests as JSON (see :class:`_JsonErrors`)."""

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return _Server(
            made.request_handler, request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation, loop=made._loop, **made._kwargs,
        )


async def healthz(request: web.Request) -> web.Response:
    """The process is up and answering."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready for traffic: the store is open and can write, the workers run (if this app runs workers),
    and a webhook secret is set (without it every delivery is refused with 503)."""
    store = request.app[STORE_KEY]
    queue = request.app[QUEUE_KEY]
    problems = []
    if not request.app[SETTINGS_KEY].webhook_secret:
        problems.append("TESSERA_WEBHOOK_SECRET is not set: every webhook delivery is refused with 503")
    if not store.is_open:
        problems.append("store is not open")
    if request.app[RUNS_WORKERS_KEY] and not queue.running:
        problems.append("workers are not running")
    if store.is_open and store.is_full and not await store.check_space():
        problems.append("the database cannot grow (the disk is full): writes are answered 503 until space is freed")
    if problems:
        return web.json_response({"status": "unavailable", "problems": problems}, status=503)
    return web.json_response({"status": "ready", "workers": queue.workers if queue.running else 0})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text; delivery counts per status are read fresh from the store."""
    store = request.app[STORE_KEY]
    if store.is_open:
        counts = await store.count_deliveries()
        for status in STATUSES:
            QUEUED.set(counts.get(status, 0), status=status)
    return web.Response(text=REGISTRY.render(), content_type="text/plain", charset="utf-8")


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    github: GitHubApp | None = None,
    router: Router | None = None,
    start_workers: bool = True,
    clock: Clock | None = None,
) -> web.Application:
    """The App. Opens the store (if not open) and starts the workers at start-up, stops them at
    clean-up; a store passed in is left open for its owner to close, one made here is closed."""
    owns_store = store is None
    store = store if store is not None else Store(settings.db_path, synchronous=settings.db_synchronous)
    queue = JobQueue(store, router or build_router(), settings, github=github, clock=clock)
    outbound = OutboundQueue(store, settings, clock=clock)

    app = web.Application(client_max_size=settings.max_webhook_bytes, middlewares=[guard_middleware])
    app[SETTINGS_KEY] = settings
    app[STORE_KEY] = store
    app[QUEUE_KEY] = queue
    app[OUTBOX_KEY] = outbound
    app[GITHUB_KEY] = github
    app[RUNS_WORKERS_KEY] = start_workers

    async def start(app: web.Application) -> None:
        await store.open()
        if start_workers:
            await queue.start()
            await outbound.start()

    async def stop(app: web.Application) -> None:
        await outbound.stop()
        await queue.stop()
        if owns_store:
            await store.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    for setup in route_setups():
        setup(app)
    return app
