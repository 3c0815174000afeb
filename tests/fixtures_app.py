"""Fixtures for the service: settings, an open store, a running app, signed deliveries, a fake clock.

Use them from any test (``tests/conftest.py`` imports everything here):

- ``app_settings``: :class:`Settings` with a webhook secret (:data:`WEBHOOK_SECRET`), a database
  (a SQLite file in ``tmp_path``, or a fresh PostgreSQL database: see ``store_backend``), two
  workers and short back-off.
- ``store``: an open :class:`Store` on that database (closed after the test).
- ``store_backend``: ``"sqlite"``, or ``"postgres"`` where the test is run on both engines
  (:data:`BOTH_BACKENDS` lists those test modules; ``tests/conftest.py`` parametrizes them), or
  for every test with ``TESSERA_TEST_STORE=postgres``.
- ``store_target``: what ``Store(...)`` opens for this test: the SQLite path or the PostgreSQL URL.
- ``fake_clock``: a :class:`FakeClock`; its ``sleep`` advances time instantly.
- ``make_client``: ``await make_client(router=..., github=..., start_workers=...)`` gives an aiohttp
  test client for ``create_app`` over the ``store`` fixture.
- ``post_delivery(client, event, payload, ...)``: send a delivery signed like GitHub.
- ``load_webhook(event, action)``: a payload from ``tests/data/github/webhooks``.
- ``wait_until(condition, timeout=...)``: await until an (async or plain) condition holds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiohttp.test_utils import TestClient

from app.config import Settings
from app.server import create_app
from app.store import Store
from app.webhooks import sign

WEBHOOK_SECRET = "test-webhook-secret"
BACKENDS = ("sqlite", "postgres")
BOTH_BACKENDS = ("tests/store/", "tests/app/test_queue.py", "tests/app/test_workflow", "tests/app/test_notify")
"""Test modules (path prefixes) whose store-using tests run once per engine: the store, the job
queue, the pull-request workflow and the outbound queue. The rest run on SQLite only, to keep the
suite's time (``TESSERA_TEST_STORE=postgres`` runs them on PostgreSQL)."""
_DATABASES = itertools.count()
WEBHOOKS_DIR = Path(__file__).parent / "data" / "github" / "webhooks"


class FakeClock:
    """Wall time under the test's control: ``sleep`` moves time forward instead of waiting."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.time = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += max(0.0, seconds)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self.time += seconds


def load_webhook(event: str, action: str) -> dict[str, Any]:
    """A trimmed real payload, e.g. ``load_webhook("pull_request", "opened")``."""
    return json.loads((WEBHOOKS_DIR / event / f"{action}.json").read_text())


async def post_delivery(
    client: TestClient,
    event: str,
    payload: dict[str, Any] | bytes,
    *,
    delivery_id: str | None = None,
    secret: str | None = WEBHOOK_SECRET,
    signature: str | None = None,
) -> Any:
    """POST a delivery the way GitHub does (signed with ``secret`` unless ``signature`` is given)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "User-Agent": "GitHub-Hookshot/test",
    }
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    elif secret is not None:
        headers["X-Hub-Signature-256"] = sign(secret, body)
    return await client.post("/webhooks/github", data=body, headers=headers)


async def wait_until(
    condition: Callable[[], Awaitable[object] | object], *, timeout: float = 5.0, interval: float = 0.01
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


@pytest.fixture
def store_backend(request: pytest.FixtureRequest) -> str:
    """The engine this test's store runs on: both where parametrized, else ``TESSERA_TEST_STORE``
    (``sqlite`` by default; ``TESSERA_TEST_STORE=postgres pytest`` runs every store test on PostgreSQL)."""
    return str(getattr(request, "param", os.environ.get("TESSERA_TEST_STORE", "sqlite")))


@pytest.fixture
def store_target(store_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty database for the test: a SQLite path, or a new database on the session's
    PostgreSQL server (one per test, dropped after it: CREATE DATABASE from the template takes
    milliseconds, and a few hundred kept would fill the disk)."""
    if store_backend == "sqlite":
        yield str(tmp_path / "tessera.db")
        return
    server = request.getfixturevalue("postgres_server")
    name = f"t_{os.getpid()}_{next(_DATABASES)}"
    with psycopg.connect(server.url(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield server.url(name)
    with psycopg.connect(server.url(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def app_settings(tmp_path: Path, store_target: str) -> Settings:
    return Settings(
        webhook_secret=WEBHOOK_SECRET,
        db_path=store_target if not store_target.startswith("postgresql://") else str(tmp_path / "tessera.db"),
        database_url=store_target if store_target.startswith("postgresql://") else None,
        workers=2,
        max_attempts=4,
        retry_base_delay=1.0,
        job_timeout=10.0,
    )


@pytest.fixture
async def store(app_settings: Settings) -> Any:
    opened = Store(app_settings.database)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_client(aiohttp_client: Any, app_settings: Settings, store: Store) -> Callable[..., Awaitable[TestClient]]:
    async def make(settings: Settings | None = None, **kwargs: Any) -> TestClient:
        app = create_app(settings or app_settings, store=store, **kwargs)
        return await aiohttp_client(app)

    return make
