"""API keys and who a request speaks for.

A key reads ``tsk_<prefix>_<secret>``: the prefix (8 hex characters) finds the row, the SHA-256 of
the whole key is what is stored, and the key itself is shown once, when it is created. Scopes are
``read`` < ``write`` < ``admin`` (admin implies the others, and speaks for every team); any other
key speaks only for its own team. ``TESSERA_BOOTSTRAP_KEY`` is an admin key for first setup,
compared in constant time. Dev mode (``TESSERA_DEV_MODE=1``) lets requests without a key through
as an admin, and only when the server is bound to loopback.

401 means "who are you?" (no key, unknown, revoked, expired); 403 means "you may not" (missing
scope, another team).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from app.api.errors import ApiError
from app.config import Settings, is_loopback
from app.store import registry as reg_sql

KEY_PATTERN = re.compile(r"^tsk_([0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$")
SCOPE_ORDER = {"read": 0, "write": 1, "admin": 2}


@dataclass(frozen=True)
class NewKey:
    """A freshly made key: ``key`` is the only copy of the secret there will ever be."""

    key: str
    prefix: str
    secret_hash: str


@dataclass(frozen=True)
class Principal:
    """Who a request speaks for."""

    kind: str
    """``key``, ``bootstrap`` or ``dev``."""
    team: str | None
    scopes: frozenset[str]
    key_id: int | None = None
    prefix: str | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        if self.kind == "key":
            return f"key:{self.prefix}" + (f" ({self.team})" if self.team else "")
        return self.kind

    def allows(self, scope: str) -> bool:
        return any(SCOPE_ORDER[s] >= SCOPE_ORDER[scope] for s in self.scopes)


def new_key() -> NewKey:
    prefix = secrets.token_hex(4)
    key = f"tsk_{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(key=key, prefix=prefix, secret_hash=hash_key(key))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def normalise_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted(set(scopes), key=SCOPE_ORDER.__getitem__))


def dev_mode_active(settings: Settings) -> bool:
    """Dev mode counts only on a loopback bind (Settings refuses it elsewhere; this is the second lock)."""
    return settings.dev_mode and is_loopback(settings.host)


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "the Authorization header must be 'Bearer <key>'",
                       headers={"WWW-Authenticate": 'Bearer realm="tessera"'})
    return token.strip()


def check_key(db: Any, token: str, now: float) -> reg_sql.ApiKey:
    """The stored key ``token`` is, or an ApiError 401 saying what is wrong with it."""
    match = KEY_PATTERN.match(token)
    if match is None:
        raise _unauthorized("that is not a Tessera API key (they look like tsk_<prefix>_<secret>)")
    key = reg_sql.key_by_prefix(db, match.group(1))
    if key is None or not hmac.compare_digest(key.secret_hash, hash_key(token)):
        raise _unauthorized("unknown API key: check it was copied whole, or ask an admin for a new one")
    if key.revoked_at is not None:
        raise _unauthorized(f"API key {key.prefix} was revoked: ask an admin of team {key.team} for a new one")
    if key.expires_at is not None and key.expires_at <= now:
        raise _unauthorized(f"API key {key.prefix} has expired: create a new one with POST /api/v1/teams/{key.team}/keys")
    return key


def principal_for(key: reg_sql.ApiKey) -> Principal:
    return Principal(kind="key", team=key.team, scopes=frozenset(key.scopes), key_id=key.id, prefix=key.prefix)


def is_bootstrap(settings: Settings, token: str) -> bool:
    if not settings.bootstrap_key:
        return False
    return hmac.compare_digest(token.encode("utf-8"), settings.bootstrap_key.encode("utf-8"))


BOOTSTRAP = Principal(kind="bootstrap", team=None, scopes=frozenset({"read", "write", "admin"}))
DEV = Principal(kind="dev", team=None, scopes=frozenset({"read", "write", "admin"}))


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="tessera"'})


def widest(scopes: Iterable[str]) -> int:
    """The rank of the widest of ``scopes`` (-1 for none): a key may not act on a wider one."""
    return max((SCOPE_ORDER.get(s, -1) for s in scopes), default=-1)


def require(principal: Principal, scope: str) -> None:
    """403 unless the caller holds ``scope`` (or a higher one)."""
    if not principal.allows(scope):
        held = ", ".join(sorted(principal.scopes, key=SCOPE_ORDER.__getitem__)) or "none"
        raise ApiError(403, "forbidden", f"this needs the '{scope}' scope; your key has: {held}")


def require_team(principal: Principal, team: str, scope: str = "write") -> None:
    """403 unless the caller may act for ``team``: its own team with ``scope``, or an admin."""
    require(principal, scope)
    if principal.is_admin:
        return
    if principal.team != team:
        raise ApiError(
            403, "forbidden", f"your key belongs to team {principal.team!r} and cannot act for team {team!r}"
        )


def expiry(value: str | None, now: float | None = None) -> float | None:
    """An ISO 8601 expiry to epoch seconds; 400 for a bad or past one."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "invalid_request", f"expires_at {value!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    epoch = parsed.timestamp()
    if epoch <= (now if now is not None else time.time()):
        raise ApiError(400, "invalid_request", "expires_at is in the past: give a future date-time or null")
    return epoch
