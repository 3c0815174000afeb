"""Signed cookies for the pages: who is signed in, and the one-time state of a sign-in under way.

A cookie is ``<base64url JSON>.<HMAC-SHA256>`` keyed by ``TESSERA_SESSION_SECRET``; a cookie whose
signature is wrong, whose JSON is not the expected shape or whose time is up reads as no cookie at
all. The session cookie is HttpOnly (no script reads it), SameSite=Lax (another site's form cannot
post with it; the redirect back from GitHub still carries it) and Secure behind https.

Every form carries a CSRF token derived from the session's random id, so a forged POST from
another page (which cannot read our cookie or page) is refused even where SameSite is not honoured.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

SESSION_COOKIE = "tessera_session"
SIGNIN_COOKIE = "tessera_signin"
SESSION_SECONDS = 8 * 3600
"""A working day: after that, sign in again (GitHub remembers the authorization, so it is one click)."""
SIGNIN_SECONDS = 600
MAX_COOKIE_CHARS = 4096


@dataclass(frozen=True)
class Session:
    """A signed-in person: their GitHub login and the random id their CSRF token derives from."""

    login: str
    sid: str
    expires: float


class Signer:
    """Signs and checks cookie values with one secret (random per process when none is configured)."""

    def __init__(self, secret: str | None) -> None:
        self._key = (secret or secrets.token_hex(32)).encode()

    def _mac(self, purpose: str, body: str) -> str:
        return hmac.new(self._key, f"{purpose}:{body}".encode(), hashlib.sha256).hexdigest()

    def sign(self, purpose: str, payload: Mapping[str, object]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(dict(payload), separators=(",", ":")).encode()).decode()
        return f"{body}.{self._mac(purpose, body)}"

    def unsign(self, purpose: str, value: str | None, *, now: float | None = None) -> dict[str, object] | None:
        """The payload of a cookie signed for ``purpose`` and not expired, else None."""
        if not value or len(value) > MAX_COOKIE_CHARS or "." not in value:
            return None
        body, _, mac = value.rpartition(".")
        if not hmac.compare_digest(mac.encode(), self._mac(purpose, body).encode()):
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(body.encode()))
        except ValueError:
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int | float):
            return None
        if payload["exp"] <= (time.time() if now is None else now):
            return None
        return payload

    def csrf_token(self, session: Session) -> str:
        return self._mac("csrf", session.sid)[:40]

    def csrf_ok(self, session: Session | None, token: str | None) -> bool:
        if session is None or not token:
            return False
        return hmac.compare_digest(token.encode(), self.csrf_token(session).encode())


def read_session(signer: Signer, request: web.Request) -> Session | None:
    payload = signer.unsign("session", request.cookies.get(SESSION_COOKIE))
    if payload is None:
        return None
    login, sid, expires = payload.get("login"), payload.get("sid"), payload.get("exp")
    if not isinstance(login, str) or not isinstance(sid, str) or not isinstance(expires, int | float):
        return None
    return Session(login=login, sid=sid, expires=float(expires))


def start_session(signer: Signer, response: web.StreamResponse, login: str, *, secure: bool) -> Session:
    session = Session(login=login, sid=secrets.token_urlsafe(18), expires=time.time() + SESSION_SECONDS)
    value = signer.sign("session", {"login": login, "sid": session.sid, "exp": int(session.expires)})
    set_cookie(response, SESSION_COOKIE, value, max_age=SESSION_SECONDS, secure=secure)
    return session


def set_cookie(response: web.StreamResponse, name: str, value: str, *, max_age: int, secure: bool) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="Lax", secure=secure)


def end_session(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/")
