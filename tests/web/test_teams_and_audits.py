"""The team page (what we own, read and owe; members change registrations) and the audits page."""

from __future__ import annotations

import re

from app.store import proposals as sql
from app.store import registry as reg_sql
from tests.app.registry_support import Api
from tests.app.test_api_audits import _run
from tests.app.workflow_support import PullRequestFlow
from tests.web import support
from tests.web.support import CSRF, sign_in

both = support.both


async def test_a_member_adds_and_removes_a_registration_from_the_team_page(both: tuple[PullRequestFlow, Api]) -> None:
    flow, _ = both
    await sign_in(flow.client, flow.fake, "gina")
    html = await (await flow.client.get("/teams/growth")).text()
    assert "growth_kpis" in html.split('id="owns-h"', 1)[1].split("<h2", 1)[0]
    pending = html.split('id="pending-h"', 1)[1].split("<h2", 1)[0]
    assert "acme/warehouse#1" in pending and "(waiting for an acknowledgement)" in pending
    assert "<li>@gina</li>" in html.split('id="members-h"', 1)[1].split("</ul>", 1)[0]
    token = CSRF.search(html).group(1)

    added = await flow.client.post("/teams/growth/registrations", allow_redirects=False, data={
        "csrf": token, "action": "add", "asset": "finance_daily", "columns": "revenue", "note": "weekly deck"})
    assert added.status == 303
    regs = await flow.store.read(lambda db: reg_sql.list_registrations(db, team="growth"))
    assert [(r["asset"], r["columns"], r["note"]) for r in regs] == [("finance_daily", ["revenue"], "weekly deck")]
    page = await (await flow.client.get(added.headers["Location"])).text()
    assert "Registration saved." in page and "weekly deck" in page

    wrong = await flow.client.post("/teams/growth/registrations", data={
        "csrf": token, "action": "add", "asset": "finance_daily", "columns": "nope"})
    assert wrong.status == 400 and "finance_daily has no column nope" in await wrong.text()

    removed = await flow.client.post("/teams/growth/registrations", allow_redirects=False, data={
        "csrf": token, "action": "remove", "id": str(regs[0]["id"])})
    assert removed.status == 303
    assert await flow.store.read(lambda db: reg_sql.list_registrations(db, team="growth")) == []
    log = await flow.store.read(lambda db: sql.list_audit(db, team="growth"))
    assert [e["action"] for e in log[:2]] == ["registration_deleted", "registration_created"]
    assert log[0]["actor"] == "user:gina"


async def test_a_non_member_sees_no_form_and_cannot_register_for_the_team(both: tuple[PullRequestFlow, Api]) -> None:
    flow, _ = both
    await sign_in(flow.client, flow.fake, "bob")
    html = await (await flow.client.get("/teams/growth")).text()
    assert "Register something we read" not in html
    token = CSRF.search(html).group(1)
    refused = await flow.client.post("/teams/growth/registrations", data={
        "csrf": token, "action": "add", "asset": "finance_daily"})
    assert refused.status == 403 and "Only active members of @acme/growth" in await refused.text()
    assert await flow.store.read(lambda db: reg_sql.list_registrations(db, team="growth")) == []


async def test_the_audits_page_shows_rates_per_asset_and_guarantee_and_the_alerts(both: tuple[PullRequestFlow, Api]) -> None:
    flow, api = both
    for n, passed in enumerate([False, False, True]):
        status, _ = await api.call("POST", "/assets/fct_revenue/audits", json=_run(f"r{n}", passed, hours=3 - n))
        assert status == 201
    await sign_in(flow.client, flow.fake, "gina")
    html = await (await flow.client.get("/audits")).text()
    assert "2 of 3 runs failed in the last 24 hours" in html
    assert re.search(r"<td>revenue_not_negative</td><td>3</td><td>2</td>", html)
    assert 'aria-label="failure rate: 24h 67 %' in html
    home = await (await flow.client.get("/")).text()
    assert "fct_revenue" in home.split('id="alerts-h"', 1)[1].split("</section>", 1)[0]
    asset = await (await flow.client.get("/assets/fct_revenue")).text()
    assert "2 of the last 3 runs failed." in asset
