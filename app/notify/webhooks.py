"""Outbound webhooks: the events subscribers can ask for, and how each delivery is signed.

A delivery is a POST of a JSON body ``{"id", "event", "created_at", "data"}`` with the headers

- ``X-Tessera-Event``: the event name; ``X-Tessera-Delivery``: the delivery id (the same on every
  retry and redelivery of one event: receivers deduplicate on it);
- ``X-Tessera-Timestamp``: Unix seconds when this attempt was signed;
- ``X-Tessera-Signature-256``: ``sha256=`` + hex HMAC-SHA256, keyed with the subscription's
  secret, of ``"<X-Tessera-Timestamp>.<raw body>"``.

Receivers recompute the HMAC over the raw bytes, compare in constant time, and refuse timestamps
more than five minutes old (see README, "Verifying Tessera's webhooks").
"""

from __future__ import annotations

import hashlib
import hmac

EVENTS = (
    "proposal.opened",
    "proposal.ack_required",
    "proposal.acked",
    "proposal.resolved",
    "contract.published",
    "audit.alert",
)
SIGNATURE_HEADER = "X-Tessera-Signature-256"
TIMESTAMP_HEADER = "X-Tessera-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Tessera-Signature-256`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, given: str, *, now: float, tolerance: float = 300) -> bool:
    """The receiver's side of :func:`sign` (used by the tests and documented as the recipe)."""
    try:
        fresh = abs(now - int(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), given)
