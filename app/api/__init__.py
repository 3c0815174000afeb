"""The registry REST API under ``/api/v1`` (issue 5), described by ``/api/v1/openapi.json``.

A sub-application with its own middlewares: errors become ``{"error": {"code", "message"}}``
(:mod:`app.api.errors`) and every request but the document itself is authenticated first
(:mod:`app.api.auth`). One module per resource lists its routes; :func:`setup_api` mounts them all.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web

from app.api import admin, assets, audits, auth, discovery, proposals, registrations, subscriptions, teams
from app.api.assets import GRAPH_KEY
from app.api.common import PRINCIPAL_KEY, json_response, store
from app.api.errors import ApiError, Handler, error_middleware
from app.api.graph import Graph
from app.api.openapi import document
from app.appkeys import SETTINGS_KEY
from app.store import StoreFull
from app.store import registry as reg_sql

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
PUBLIC_PATHS = frozenset({f"{PREFIX}/openapi.json"})
TOUCH_EVERY = 60.0
"""A key's ``last_used_at`` is written at most this often (not one write per request)."""


def api_routes() -> list[web.RouteDef]:
    """Every route of the API, relative to :data:`PREFIX`."""
    return [
        web.get("/openapi.json", openapi_json),
        *teams.routes(),
        *assets.routes(),
        *audits.routes(),
        *registrations.routes(),
        *discovery.routes(),
        *proposals.routes(),
        *admin.routes(),
        *subscriptions.routes(),
    ]


async def openapi_json(request: web.Request) -> web.Response:
    return json_response(document())


def _auth_middleware(settings: Any) -> Any:
    dev = auth.dev_mode_active(settings)
    if settings.dev_mode and not dev:
        log.error("TESSERA_DEV_MODE ignored: the server is not bound to loopback (%s), so keys are required", settings.host)
    touched: dict[int, float] = {}

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS:
            return await handler(request)
        token = auth.bearer(request.headers.get("Authorization"))
        if token is None:
            if not dev:
                raise ApiError(401, "unauthorized", "send an API key: 'Authorization: Bearer tsk_...'"
                               " (an admin creates keys with POST /api/v1/teams/{slug}/keys or `tessera keys create`)",
                               headers={"WWW-Authenticate": 'Bearer realm="tessera"'})
            request[PRINCIPAL_KEY] = auth.DEV
        elif auth.is_bootstrap(settings, token):
            request[PRINCIPAL_KEY] = auth.BOOTSTRAP
        else:
            now = time.time()
            key = await store(request).read(lambda db: auth.check_key(db, token, now))
            request[PRINCIPAL_KEY] = auth.principal_for(key)
            if now - touched.get(key.id, 0.0) > TOUCH_EVERY:
                touched[key.id] = now
                try:
                    await store(request).write(lambda db: reg_sql.touch_key(db, key.id))
                except StoreFull:
                    log.warning("key %s: last_used_at not recorded (the disk is full)", key.prefix)
        return await handler(request)

    return authenticate


def setup_api(app: web.Application) -> None:
    """Mount the API on the service's app (listed in :func:`app.server.route_setups`)."""
    api = web.Application(middlewares=[error_middleware, _auth_middleware(app[SETTINGS_KEY])])
    api[GRAPH_KEY] = Graph()
    api.add_routes(api_routes())
    app.add_subapp(PREFIX, api)
