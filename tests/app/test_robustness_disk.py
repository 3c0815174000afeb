"""A full disk: writes are answered 503 with ``Retry-After`` (nothing half-stored, no bare 500), and
``/readyz`` says not ready until a write fits again.

The database is really full: SQLite's ``max_page_count`` caps the file at its current size, so the
next write that needs a page fails with SQLITE_FULL, exactly as on a full disk.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from app.store import Store
from tests.app import registry_support as support
from tests.app.registry_support import Api
from tests.fixtures_app import post_delivery

api, api_settings = support.api, support.api_settings


async def _cap_database(store: Store, pages: int | None) -> None:
    """Cap the database at its current size (``pages=None``) or lift the cap."""
    limit = 1 if pages is None else pages  # SQLite never sets the cap below the current size
    await store.write(lambda db: db.execute(f"PRAGMA max_page_count = {int(limit)}").fetchall())


def _delivery() -> dict[str, Any]:
    """A payload that does not compress: it needs new pages wherever it goes."""
    return {"action": "opened", "padding": os.urandom(48 * 1024).hex(), "repository": {"id": 1, "full_name": "acme/x"}}


@pytest.fixture
async def full(api: Api) -> Api:
    await _cap_database(api.store, None)
    return api


async def test_a_delivery_on_a_full_disk_is_503_with_retry_after_and_not_stored(full: Api) -> None:
    response = await post_delivery(full.client, "pull_request", _delivery(), delivery_id="full-1")
    assert response.status == 503
    assert int(response.headers["Retry-After"]) > 0
    assert (await response.json())["error"]["code"] == "storage_full"
    await _cap_database(full.store, 10_000_000)
    assert await full.store.get_delivery("full-1") is None
    response = await post_delivery(full.client, "pull_request", _delivery(), delivery_id="full-1")
    assert response.status == 202


async def test_an_api_write_on_a_full_disk_is_503_in_the_error_shape(full: Api) -> None:
    # A small row may still fit in a page's free space: write until one does not.
    for n in range(500):
        response = await full.client.post("/api/v1/teams", json={"slug": f"team-{n}", "name": "G" * 200},
                                          headers=support.ADMIN)
        if response.status != 201:
            break
    assert response.status == 503, await response.text()
    assert int(response.headers["Retry-After"]) > 0
    assert (await response.json())["error"]["code"] == "storage_full"
    status, _ = await full.call("GET", f"/teams/team-{n}")
    assert status == 404  # nothing of the refused write was kept


async def test_readyz_is_not_ready_while_the_disk_is_full_and_ready_once_a_write_fits(full: Api) -> None:
    assert (await full.client.get("/readyz")).status == 200  # nothing has failed yet
    assert (await post_delivery(full.client, "pull_request", _delivery())).status == 503
    response = await full.client.get("/readyz")
    assert response.status == 503
    assert "disk is full" in " ".join((await response.json())["problems"])
    await _cap_database(full.store, 10_000_000)
    response = await full.client.get("/readyz")
    assert response.status == 200, await response.text()
    assert (await post_delivery(full.client, "pull_request", _delivery())).status == 202

