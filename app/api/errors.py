"""Errors of the REST API: always ``{"error": {"code", "message"}}``, never an HTML page or a bare 500.

Handlers raise :class:`ApiError` with a message a person can act on ("the key has expired: create
a new one with ..."). The middleware turns it, aiohttp's own 404/405 and anything unexpected into
that shape; a full disk is a 503 with ``Retry-After``; an unexpected exception is logged with its
traceback and answered with a 500 whose message names the request id, never the exception text
(it may hold internals).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from app.store import StoreFull

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An answer other than success: HTTP status, a stable machine code, a human message."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


RETRY_AFTER_FULL = 60
"""Seconds a client is asked to wait when the disk is full (an operator has to free space)."""


def store_full_response() -> web.Response:
    """503 with ``Retry-After``: the store could not grow, nothing of the request was kept."""
    return error_response(
        503, "storage_full", "Tessera's database cannot grow (the disk is full): nothing was stored; try again later",
        headers={"Retry-After": str(RETRY_AFTER_FULL)},
    )


def bad_request(message: str, code: str = "invalid_request") -> ApiError:
    return ApiError(400, code, message)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", what)


_HTTP_CODES: dict[int, tuple[str, str]] = {
    404: ("not_found", "no such endpoint: see /api/v1/openapi.json for the routes"),
    405: ("method_not_allowed", "this endpoint does not accept that method: see /api/v1/openapi.json"),
    413: ("payload_too_large", "the request body is too large"),
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.headers)
    except StoreFull:
        return store_full_response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code, message = _HTTP_CODES.get(exc.status, ("http_error", exc.reason))
        headers: dict[str, Any] = {}
        if exc.status == 405 and "Allow" in exc.headers:
            headers["Allow"] = exc.headers["Allow"]
            message = f"{request.method} is not allowed here; allowed: {exc.headers['Allow']}"
        return error_response(exc.status, code, message, headers)
    except Exception:
        incident = uuid.uuid4().hex[:12]
        log.exception("API %s %s failed (incident %s)", request.method, request.path, incident)
        return error_response(
            500, "internal_error", f"Tessera failed to answer this request (incident {incident}); the server log has the details"
        )
