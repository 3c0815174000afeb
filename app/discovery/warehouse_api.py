"""What the live warehouse sources reached over HTTP share (Snowflake's SQL API, BigQuery's REST
API): no driver, only aiohttp and a signed JWT.

A source URL names the account or project and carries its options as query parameters (a key
file's path, never a secret itself). ``endpoint`` replaces the vendor's address (a proxy, or a
test's fake); it must be https unless it is this machine. Every failure becomes a
:class:`SourceError` whose message says what went wrong and what to check; nothing is recorded
from a run that failed part-way, so the next run starts again from the same watermark.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

REQUEST_TIMEOUT = 120.0
"""Seconds one HTTP request may take (a statement may run longer: it is polled)."""
DEFAULT_DAYS = 30
"""How far back a source's first run reads (``?days=``): the default ``discovery.stale_after``."""
MAX_DAYS = 3660
MAX_ERROR_CHARS = 300


class SourceError(Exception):
    """A live source could not be read; the message is for the operator."""


def option(options: Mapping[str, list[str]], name: str) -> str | None:
    values = options.get(name)
    return values[-1] if values else None


def days_option(options: Mapping[str, list[str]]) -> int:
    raw = option(options, "days") or str(DEFAULT_DAYS)
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
        raise SourceError(f"days must be a whole number from 1 to {MAX_DAYS} (how far back the first run reads)")
    return int(raw)


def endpoint(options: Mapping[str, list[str]], default: str) -> str:
    """The API's base URL: ``default``, or ``?endpoint=`` when it is https or on this machine."""
    chosen = option(options, "endpoint") or default
    parts = urlsplit(chosen)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SourceError(f"endpoint {chosen!r} is not an http(s) URL")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise SourceError(f"endpoint {chosen!r}: tokens are sent only over https (or to this machine)")
    return chosen.rstrip("/")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def rsa_key(pem: bytes, where: str) -> rsa.RSAPrivateKey:
    """An unencrypted RSA private key in PEM (PKCS#8 or PKCS#1)."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise SourceError(f"{where}: the private key is encrypted; give an unencrypted PKCS#8 key"
                          " (openssl pkcs8 -topk8 -nocrypt)") from None
    except ValueError as error:
        raise SourceError(f"{where}: not a PEM private key ({error})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SourceError(f"{where}: the key is not an RSA key")
    return key


def read_file(path: str | None, what: str, hint: str) -> bytes:
    if not path:
        raise SourceError(f"no {what}: {hint}")
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as error:
        raise SourceError(f"cannot read the {what} {path}: {error.strerror or error}") from None


async def call(
    session: aiohttp.ClientSession, method: str, url: str, *, what: str, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    """One request: its status and JSON object; unreachable servers and answers that are not
    JSON objects become a :class:`SourceError` naming ``what`` was asked."""
    try:
        async with session.request(method, url, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
                                   **kwargs) as response:
            body = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as error:
        raise SourceError(f"{what}: cannot reach {urlsplit(url).netloc}: {error or type(error).__name__}") from None
    try:
        data = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        raise SourceError(f"{what}: HTTP {status}, not JSON: {body[:200].decode('utf-8', 'replace')!r}") from None
    if not isinstance(data, dict):
        raise SourceError(f"{what}: HTTP {status}, expected a JSON object")
    return status, data


def short(text: object) -> str:
    words = " ".join(str(text).split())
    return words if len(words) <= MAX_ERROR_CHARS else words[: MAX_ERROR_CHARS - 1] + "…"


def iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")
