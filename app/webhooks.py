"""``POST /webhooks/github``: verify, persist, answer. Nothing else happens inside the request.

The order matters. No secret configured → 503 (unsigned deliveries are never accepted). Declared
size over 25 MB → 413 before reading. Then the HMAC-SHA256 of the raw body is checked against
``X-Hub-Signature-256`` in constant time *before* the body is parsed: a missing, wrong or
truncated signature is 401 and nothing is stored. Only then is the body parsed. A body that is
not a JSON object is answered 400 with the reason and stored nowhere: there is nothing a worker
could do with it, and GitHub's delivery log shows the response to whoever sent it. The delivery
is stored keyed by ``X-GitHub-Delivery``; a repeat (GitHub's "redeliver", or a retry by a proxy)
is answered 200 ``duplicate`` and not processed again. A new delivery is answered 202 once it is
durable (the store's group commit), typically within milliseconds.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import orjson
from aiohttp import web

from app.api.errors import error_response
from app.appkeys import QUEUE_KEY, SETTINGS_KEY, STORE_KEY
from app.metrics import REGISTRY
from app.store import NewDelivery

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_DELIVERY_ID_LENGTH = 200

RECEIVED = REGISTRY.counter("tessera_webhook_deliveries_total", "Verified deliveries stored, by event.")
DUPLICATES = REGISTRY.counter(
    "tessera_webhook_duplicates_total", "Deliveries whose X-GitHub-Delivery was seen before, by event."
)
REJECTED = REGISTRY.counter(
    "tessera_webhook_rejected_total",
    "Requests refused, by reason (no_secret, bad_signature, too_large, bad_request, invalid_json).",
)

_PR_EVENTS = frozenset(
    {"pull_request", "pull_request_review", "pull_request_review_comment", "pull_request_review_thread"}
)
_INSTALLATION_EVENTS = frozenset(
    {"installation", "installation_repositories", "installation_target", "github_app_authorization"}
)


_GIL_SAFE_CHUNK = 2047
"""OpenSSL hashing releases the GIL for inputs of 2048 bytes or more; the event loop then waits for
the store's threads to hand it back (often a whole switch interval, ~5 ms, per delivery). Feeding
the HMAC in smaller pieces keeps the GIL: a 25 KB body costs ~30 µs instead of milliseconds."""


def sign(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``body`` (also used by tests and the bench)."""
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    view = memoryview(body)
    for start in range(0, len(view), _GIL_SAFE_CHUNK):
        mac.update(view[start : start + _GIL_SAFE_CHUNK])
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """True when ``header`` is GitHub's HMAC-SHA256 of ``body``; compared in constant time."""
    if not header:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


def ordering_key(event: str, payload: Mapping[str, Any]) -> str:
    """The key that serialises a delivery's job: its pull request, else repository, else installation.

    Events about one pull request (including ``issue_comment`` and check runs/suites attached to a
    PR) share ``pr:<repo id>#<number>`` so they run one at a time in order. Installation-wide events
    (``installation``, ``installation_repositories``: the set of repositories changes) share
    ``installation:<id>``; other repository events (``push``) use ``repo:<id>``.
    """
    repo = payload.get("repository")
    repo_id = repo.get("id") if isinstance(repo, Mapping) else None
    installation = payload.get("installation")
    installation_id = installation.get("id") if isinstance(installation, Mapping) else None

    number: object = None
    if event in _PR_EVENTS:
        pull = payload.get("pull_request")
        number = payload.get("number") or (pull.get("number") if isinstance(pull, Mapping) else None)
    elif event in ("issue_comment", "issues"):
        issue = payload.get("issue")
        number = issue.get("number") if isinstance(issue, Mapping) else None
    elif event in ("check_run", "check_suite"):
        subject = payload.get(event)
        pulls = subject.get("pull_requests") if isinstance(subject, Mapping) else None
        if isinstance(pulls, list) and pulls and isinstance(pulls[0], Mapping):
            number = pulls[0].get("number")
    if isinstance(number, str) and number.isascii() and number.isdigit():
        number = int(number)  # a relay that stringifies numbers must not split a PR's ordering
    if isinstance(repo_id, str) and repo_id.isascii() and repo_id.isdigit():
        repo_id = int(repo_id)
    if isinstance(number, int) and repo_id is not None:
        return f"pr:{repo_id}#{number}"
    if event in _INSTALLATION_EVENTS and installation_id is not None:
        return f"installation:{installation_id}"
    if repo_id is not None:
        return f"repo:{repo_id}"
    if installation_id is not None:
        return f"installation:{installation_id}"
    return f"event:{event}"


def _error(status: int, reason: str, message: str) -> web.Response:
    """The REST API's error shape, ``{"error": {"code", "message"}}``, so one client parses both."""
    REJECTED.inc(reason=reason)
    return error_response(status, reason, message)


def _payload_bytes(request: web.Request, body: bytes) -> bytes:
    """The JSON document: the body itself, or its ``payload`` field for form-encoded hooks."""
    if request.content_type == "application/x-www-form-urlencoded":
        fields = parse_qs(body.decode("utf-8"))
        if "payload" not in fields:
            raise ValueError("form-encoded delivery without a 'payload' field")
        return fields["payload"][0].encode()
    return body


async def receive_github_webhook(request: web.Request) -> web.Response:
    """Verify, store and acknowledge one GitHub delivery (see the module docstring for the order)."""
    settings = request.app[SETTINGS_KEY]
    secret = settings.webhook_secret
    if not secret:
        return _error(
            503,
            "no_secret",
            "webhooks are disabled: TESSERA_WEBHOOK_SECRET is not set, and unsigned deliveries are never accepted",
        )
    limit = settings.max_webhook_bytes
    if request.content_length is not None and request.content_length > limit:
        return _error(413, "too_large", f"delivery body over the {limit}-byte limit")
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        return _error(401, "bad_signature", f"missing {SIGNATURE_HEADER} header")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error(413, "too_large", f"delivery body over the {limit}-byte limit")
    if not verify_signature(secret, body, signature):
        return _error(401, "bad_signature", f"{SIGNATURE_HEADER} does not match the body")

    event = request.headers.get("X-GitHub-Event", "").strip()
    delivery_id = request.headers.get("X-GitHub-Delivery", "").strip()
    if not event or not delivery_id:
        return _error(400, "bad_request", "X-GitHub-Event and X-GitHub-Delivery headers are required")
    if len(delivery_id) > MAX_DELIVERY_ID_LENGTH:
        return _error(400, "bad_request", "X-GitHub-Delivery is too long")
    try:
        document = _payload_bytes(request, body)
        payload = orjson.loads(document)  # also rejects bytes that are not UTF-8
    except (UnicodeDecodeError, ValueError) as exc:
        return _error(400, "invalid_json", f"the body is not JSON: {exc}")
    if not isinstance(payload, dict):
        return _error(400, "invalid_json", "the body is JSON but not an object")

    action = payload.get("action")
    installation = payload.get("installation")
    repository = payload.get("repository")
    installation_id = installation.get("id") if isinstance(installation, dict) else None
    delivery = NewDelivery(
        delivery_id=delivery_id,
        event=event,
        action=action if isinstance(action, str) else None,
        ordering_key=ordering_key(event, payload),
        installation_id=installation_id if isinstance(installation_id, int) else None,
        repository=repository.get("full_name") if isinstance(repository, dict) else None,
        payload=document.decode(),
        received_at=time.time(),
    )
    is_new = await request.app[STORE_KEY].insert_delivery(delivery)
    if not is_new:
        DUPLICATES.inc(event=event)
        return web.json_response({"delivery": delivery_id, "status": "duplicate"}, status=200)
    RECEIVED.inc(event=event)
    request.app[QUEUE_KEY].notify()
    answer: dict[str, Any] = {"delivery": delivery_id, "status": "queued"}
    if event == "ping":
        answer["message"] = "pong"
    return web.json_response(answer, status=202)


def setup_webhooks(app: web.Application) -> None:
    """Route ``POST /webhooks/github``."""
    app.router.add_post("/webhooks/github", receive_github_webhook)
