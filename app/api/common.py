"""What every handler shares: the caller, the store, JSON bodies (bounded, validated), pagination."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from collections.abc import Sequence
from typing import Any

import orjson
from aiohttp import web

from app.api.auth import Principal
from app.api.errors import ApiError
from app.api.openapi import validate
from app.appkeys import SETTINGS_KEY, STORE_KEY
from app.config import Settings

PRINCIPAL_KEY = "tessera_principal"
MAX_BODY = 1024 * 1024
"""Bodies other than manifest uploads and dbt run results stay small."""
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_CURSOR = 400
"""Characters of a cursor: the API's own are a base64 row id or slug, far shorter."""


def principal(request: web.Request) -> Principal:
    return request[PRINCIPAL_KEY]


def store(request: web.Request) -> Any:
    return request.config_dict[STORE_KEY]


def settings(request: web.Request) -> Settings:
    return request.config_dict[SETTINGS_KEY]


async def read_body(request: web.Request, cap: int = MAX_BODY) -> bytes:
    """The raw body, refused with 413 once it passes ``cap`` (without reading the rest)."""
    if request.content_length is not None and request.content_length > cap:
        raise ApiError(413, "payload_too_large", f"the body is {request.content_length} bytes; the limit here is {cap}")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            break
        size += len(chunk)
        if size > cap:
            raise ApiError(413, "payload_too_large", f"the body is over the limit of {cap} bytes here")
        chunks.append(chunk)
    return b"".join(chunks)


PARSE_OFF_LOOP = 512 * 1024
"""Bodies bigger than this (manifests, run results) are parsed on a thread, not the event loop."""


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise ApiError(400, "invalid_body", "the request needs a JSON body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_body", f"the body is not valid JSON: {exc}") from None


async def parse_large_json(raw: bytes) -> Any:
    """:func:`parse_json` off the event loop for big bodies (25 MB of JSON is over a second of CPU)."""
    if len(raw) <= PARSE_OFF_LOOP:
        return parse_json(raw)

    return await asyncio.to_thread(parse_json, raw)


async def json_body(request: web.Request, schema: str, cap: int = MAX_BODY) -> Any:
    """The body, parsed and checked against the OpenAPI document's ``schema``."""
    body = parse_json(await read_body(request, cap))
    validate(body, schema)
    return body


def int_param(value: str, what: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ApiError(404, "not_found", f"{what} {value!r} does not exist (ids are numbers)") from None
    if number < 1 or number > 2**62:
        raise ApiError(404, "not_found", f"{what} {value} does not exist")
    return number


def page_params(request: web.Request) -> tuple[int, str | None]:
    """``limit`` (1..500, default 50) and the decoded ``cursor``."""
    raw_limit = request.query.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        try:
            limit = int(raw_limit)
        except ValueError:
            raise ApiError(400, "invalid_request", f"limit must be a whole number from 1 to {MAX_LIMIT}") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise ApiError(400, "invalid_request", f"limit must be from 1 to {MAX_LIMIT}, got {limit}")
    cursor = request.query.get("cursor")
    if cursor is None or cursor == "":
        return limit, None
    if len(cursor) > MAX_CURSOR:
        raise ApiError(400, "invalid_request", "cursor is not one this API gave out: pass next_cursor as is")
    try:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_request", "cursor is not one this API gave out: pass next_cursor as is") from None
    return limit, decoded


def id_cursor(cursor: str | None) -> int:
    """A row id cursor: ASCII digits a SQLite integer can hold, else 400 (never an overflow's 500)."""
    if cursor is None:
        return 0
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 18):
        raise ApiError(400, "invalid_request", "cursor is not one this API gave out: pass next_cursor as is")
    return int(cursor)


def encode_cursor(value: object) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def page(request: web.Request, items: Sequence[Any], limit: int, last: object | None) -> web.Response:
    """A list answer: ``{items, next_cursor}`` and a ``Link`` header to the next page when there is one.

    Callers fetch ``limit + 1`` rows: the extra one only says that more remain.
    """
    more = len(items) > limit
    shown = list(items[:limit])
    next_cursor = encode_cursor(last) if more and last is not None else None
    headers = {}
    if next_cursor:
        url = request.url.update_query({"cursor": next_cursor, "limit": str(limit)})
        headers["Link"] = f'<{url.raw_path_qs}>; rel="next"'  # percent-encoded: a header never holds raw bytes
    return web.json_response({"items": shown, "next_cursor": next_cursor}, headers=headers, dumps=_dumps)


def iso_time(epoch: float | None) -> str | None:
    """Every time in an API body is ISO 8601 UTC (``2026-05-01T12:00:00Z``), never epoch seconds."""
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def with_iso_times(row: dict[str, Any], *fields: str) -> dict[str, Any]:
    """``row`` with the named epoch fields as ISO 8601."""
    return {**row, **{name: iso_time(row[name]) for name in fields}}


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, dumps=_dumps)
