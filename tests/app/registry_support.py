"""Shared set-up for the registry API and sync tests: a running app, the bootstrap key, team keys."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings

BOOTSTRAP = "bootstrap-key-for-tests-0123456789"
MANIFEST = Path(__file__).parent.parent / "data" / "registry" / "manifest.json"
WAREHOUSE_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


ADMIN = bearer(BOOTSTRAP)


@dataclass
class Api:
    """A test client of the app with the bootstrap key, and helpers that act like an operator."""

    client: Any
    store: Any

    async def call(self, method: str, path: str, *, key: str | None = BOOTSTRAP, **kwargs: Any) -> tuple[int, Any]:
        headers = dict(kwargs.pop("headers", {}) or {})
        if key is not None:
            headers.update(bearer(key))
        response = await self.client.request(method, f"/api/v1{path}", headers=headers, **kwargs)
        text = await response.text()
        body: Any = None
        if text:
            try:
                body = json.loads(text)
            except ValueError:
                body = text
        return response.status, body

    async def team(self, slug: str, github_team: str | None = None, name: str | None = None) -> dict[str, Any]:
        status, body = await self.call(
            "POST", "/teams", json={"slug": slug, "name": name or slug.title(), "github_team": github_team}
        )
        assert status == 201, body
        return body

    async def key(self, team: str, scopes: Sequence[str] = ("read",), expires_at: str | None = None) -> str:
        status, body = await self.call("POST", f"/teams/{team}/keys", json={"scopes": list(scopes), "expires_at": expires_at})
        assert status == 201, body
        return str(body["key"])

    async def warehouse(self) -> None:
        """Finance and Growth, and the analytics manifest synced for acme/warehouse by an admin:
        finance owns stg_orders, fct_revenue and finance_daily; growth owns growth_kpis."""
        await self.team("finance", "acme/finance-data", name="Finance Data")
        await self.team("growth", "acme/growth", name="Growth Analytics")
        body = {"repo": "acme/warehouse", "commit": WAREHOUSE_COMMIT, "manifest": json.loads(MANIFEST.read_text()),
                "project_dir": "analytics"}
        status, summary = await self.call("POST", "/sync/dbt", json=body)
        assert status == 200, summary


@pytest.fixture
def api_settings(app_settings: Settings) -> Settings:
    return app_settings.with_overrides(bootstrap_key=BOOTSTRAP)


@pytest.fixture
async def api(make_client: Any, api_settings: Settings, store: Any) -> Api:
    client = await make_client(api_settings, start_workers=False)
    return Api(client=client, store=store)
