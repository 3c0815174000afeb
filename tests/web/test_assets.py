"""The asset explorer and an asset's page: search, columns, consumers and the lineage picture."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.app.registry_support import BOOTSTRAP, Api
from tests.fakegithub import FakeGitHub
from tests.web.support import sign_in, web_settings


@pytest.fixture
async def registry(make_client: Any, app_settings: Any, store: Any, fake_github: FakeGitHub, github_app: Any) -> Api:
    settings = web_settings(app_settings, fake_github, bootstrap_key=BOOTSTRAP)
    api = Api(client=await make_client(settings, github=github_app, start_workers=False), store=store)
    await api.warehouse()
    await sign_in(api.client, fake_github, "gina")
    return api


def _found(html: str) -> set[str]:
    return set(re.findall(r'<tr><td><a href="/assets/([^"]+)">', html))


async def test_search_finds_assets_by_name_column_and_owner(registry: Api) -> None:
    client = registry.client

    async def search(**params: str) -> set[str]:
        return _found(await (await client.get("/assets", params=params)).text())

    assert await search(q="revenue") == {"fct_revenue"}
    assert await search(column="PLAN_CODE") == {"raw.orders", "stg_orders", "fct_revenue", "growth_kpis"}
    assert await search(owner="growth") == {"growth_kpis"}
    assert await search(repo="acme/warehouse", column="revenue") == {"fct_revenue", "growth_kpis", "finance_daily"}
    nothing = await (await client.get("/assets", params={"q": "<script>"})).text()
    assert "No asset matches" in nothing and "<script>" not in nothing.split("<main", 1)[1]


async def test_the_asset_page_shows_columns_consumers_and_lineage_both_ways(registry: Api) -> None:
    page = await registry.client.get("/assets/fct_revenue")
    html = await page.text()
    assert page.status == 200
    assert "<code>plan_code</code>" in html and "revenue_dashboard" in html
    svg = html.split("<svg", 1)[1].split("</svg>", 1)[0]
    boxes = re.findall(r'data-fqn="([^"]+)"', svg)
    assert set(boxes) >= {"stg_orders", "fct_revenue",
                          "growth_kpis", "finance_daily"}
    x = {fqn: int(re.search(rf'data-fqn="{re.escape(fqn)}"[^>]*>\s*<title>[^<]*</title>\s*<rect x="(\d+)"', svg).group(1))
         for fqn in boxes}
    assert x["stg_orders"] < x["fct_revenue"] < x["growth_kpis"]


async def test_selecting_a_column_highlights_what_the_impact_walk_reaches(registry: Api) -> None:
    html = await (await registry.client.get("/assets/fct_revenue", params={"column": "order_id"})).text()
    svg = html.split("<svg", 1)[1].split("</svg>", 1)[0]
    hot_boxes = set(re.findall(r'class="node[^"]*hot[^"]*" href="[^"]*" data-fqn="([^"]+)"', svg))
    status, impact = await registry.call("GET", "/assets/fct_revenue/impact?column=order_id")
    assert status == 200
    assert hot_boxes == {"fct_revenue"} | {a["asset"] for a in impact["downstream"]}
    assert "stg_orders" not in hot_boxes  # upstream is never "what reads it"
    assert re.search(r'<text class="col hot"[^>]*>order_id</text>', svg)
    assert 'data-column="order_id" href="?depth=2&amp;column=order_id#lineage-h" aria-pressed="true"' in html


async def test_an_unknown_asset_is_a_404_page_and_the_explorer_needs_sign_in(registry: Api) -> None:
    missing = await registry.client.get("/assets/nothing_here")
    assert missing.status == 404 and "No such asset" in await missing.text()
    registry.client.session.cookie_jar.clear()
    assert (await registry.client.get("/assets")).status == 401
