"""The aiohttp application's shared objects, by key: ``request.app[STORE_KEY]``...

A module of their own, below every route owner: the webhook intake, the API, the pages, the
discovery schedule and Slack's interactions all read these keys, and :mod:`app.server` sets them,
so none of them needs to import the server that mounts them.
"""

from __future__ import annotations

from aiohttp import web

from app.config import Settings
from app.github import GitHubApp
from app.notify.outbox import OutboundQueue
from app.queue import JobQueue
from app.store import Store

SETTINGS_KEY: web.AppKey[Settings] = web.AppKey("settings", Settings)
STORE_KEY: web.AppKey[Store] = web.AppKey("store", Store)
QUEUE_KEY: web.AppKey[JobQueue] = web.AppKey("queue", JobQueue)
OUTBOX_KEY: web.AppKey[OutboundQueue] = web.AppKey("outbox", OutboundQueue)
"""Slack messages and subscriber deliveries: workers of their own (:mod:`app.notify.outbox`)."""
GITHUB_KEY: web.AppKey[GitHubApp | None] = web.AppKey("github", object)
"""The :class:`app.github.GitHubApp`, or None when the App is not configured (or in tests)."""
RUNS_WORKERS_KEY: web.AppKey[bool] = web.AppKey("runs_workers", bool)
"""Whether this process runs the workers (``/readyz`` then asks that they run)."""
