"""The pages in a real browser (Playwright driving Debian's chromium): sign in through the fake
GitHub, answer a pull request, explore lineage; on every page no request leaves the App, no
console error, keyboard reachable, and axe-core (vendored) finds no serious violation.
Screenshots of each page at 1280 and 390 px go to ``bench/out/screens/`` (git-ignored)."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from app.server import create_app
from app.store import proposals as sql
from app.web.session import Signer
from tests.app.registry_support import BOOTSTRAP, Api
from tests.app.test_api_audits import _run
from tests.app.workflow_support import PullRequestFlow, repo_files
from tests.fakegithub import FakeGitHub
from tests.fixtures_github import INSTALLATION_ID
from tests.web.browser import NEEDS_CHROMIUM, SCREENS, Watched, free_port
from tests.web.support import SESSION_SECRET, web_settings

FCT = "models/marts/fct_revenue.sql"

pytestmark = NEEDS_CHROMIUM


@pytest.fixture
async def live(
    aiohttp_client: Any, app_settings: Any, store: Any, fake_github: FakeGitHub, github_app: Any
) -> tuple[PullRequestFlow, Api, str]:
    """The App on a real port (its public URL known before start, for the sign-in redirect), the
    fake GitHub beside it, ``acme/warehouse`` with the revenue project, the registry synced."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    settings = web_settings(app_settings, fake_github, bootstrap_key=BOOTSTRAP, public_url=origin)
    client = await aiohttp_client(create_app(settings, store=store, github=github_app), server_kwargs={"port": port})
    repo = fake_github.add_repo("acme/warehouse", installation_id=INSTALLATION_ID, files=repo_files("revenue_dbt"))
    api = Api(client=client, store=store)
    await api.warehouse()
    return PullRequestFlow(fake=fake_github, client=client, store=store, repo=repo), api, origin


async def test_a_member_signs_in_acks_explores_lineage_registers_and_an_owner_manages_keys_in_the_browser(
    live: tuple[PullRequestFlow, Api, str], browser: Any
) -> None:
    flow, api, origin = live
    flow.fake.add_team_member("acme", "growth", "gina")
    for login in ("gina", "bob"):
        flow.repo.set_permission(login, "read")
    text = flow.repo.files_at("main")[FCT].decode()
    pull = await flow.open_pr({FCT: text.replace("    plan_code,\n", "")}, author="priya")
    proposal = await flow.store.read(lambda db: sql.get_proposal(db, flow.repo.id, pull.number))
    assert flow.check(pull).conclusion == "action_required"

    context = await browser.new_context(base_url=origin, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    tab = Watched(await context.new_page(), origin, flow.fake.web_url)
    await tab.install()
    page = tab.page

    # signed out: the home page explains and offers sign-in; a private page asks for it (401)
    await page.goto("/")
    await tab.check("home-signed-out")
    answer = await page.goto("/teams/growth")
    assert answer.status == 401 and "Sign in with GitHub" in await page.inner_text("main")
    await tab.check("signin-required")
    # the check run's signed details link shows the proposal without sign-in
    await page.goto(flow.check(pull).details_url)
    assert "waiting for an acknowledgement" in await page.inner_text("#teams + .scroll")
    await tab.check("check-details")
    await page.goto("/")

    # sign in through the fake GitHub; back home, the pull request waits on my team
    flow.fake.sign_in_as("gina")
    await page.click("text=Sign in with GitHub")
    await page.wait_for_url(f"{origin}/")
    assert "Signed in as @gina" in await page.inner_text("header")
    waiting = await page.inner_text("#waiting-h + ul")
    assert f"acme/warehouse#{pull.number}" in waiting and "growth" in waiting
    await tab.check("home")

    # the keyboard reaches everything: the skip link first, then the navigation
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Tessera"

    # the proposal page, answered with the keyboard alone
    await page.click(f"text=acme/warehouse#{pull.number}")
    await page.wait_for_url(f"{origin}/proposals/{proposal.id}")
    assert "waiting for an acknowledgement" in await page.inner_text("#teams + .scroll")
    await tab.check("proposal")
    await page.focus("#ack-team")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Acknowledge"
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{origin}/proposals/{proposal.id}?done=ack#teams")
    assert "Acknowledged." in await page.inner_text("[role=status]")
    assert "acknowledged by @gina" in await page.inner_text("#teams + .scroll")
    assert flow.check(pull).conclusion == "success"
    assert "acknowledged by @gina" in flow.impact_comments(pull)[-1].body
    await tab.check("proposal-acked")

    # the Slack link page (opened from Slack's answer to an unlinked user): confirm linking
    token = Signer(SESSION_SECRET).sign("slack-link", {"u": "U0GINA", "exp": int(time.time()) + 600})
    await page.goto(f"/auth/slack/link?token={token}")
    assert "Slack user U0GINA will speak as @gina" in await page.inner_text("main")
    await tab.check("slack-link")
    await page.click("button:has-text('Link to @gina')")
    assert "Your Slack presses now speak as @gina" in await page.inner_text("main")
    await tab.check("slack-linked")

    # a page that is not there says so in the same design (404)
    answer = await page.goto("/assets/no_such_model")
    assert answer.status == 404 and "no_such_model" in await page.inner_text("main")
    await tab.check("problem-404")

    # search an asset, open its lineage, select a column (the script highlights without reloading)
    await page.goto("/assets")
    await page.fill("#q", "revenue")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{origin}/assets?q=revenue*")
    await tab.check("assets")
    await page.click("text=fct_revenue")
    await page.wait_for_url(f"{origin}/assets/fct_revenue")
    assert await page.locator(".graph .node").count() >= 4
    await tab.check("asset")
    url_before = page.url
    await page.click('a.select-column[data-column="plan_code"]')
    assert await page.get_attribute('a.select-column[data-column="plan_code"]', "aria-pressed") == "true"
    assert await page.locator('.graph .node.hot[data-fqn="growth_kpis"]').count() == 1
    assert await page.locator('.graph .node.hot[data-fqn="stg_orders"]').count() == 0
    assert page.url != url_before and "column=plan_code" in page.url
    await tab.check("asset-column")

    # the content reads with JavaScript off: the same highlight comes from the server
    plain = await browser.new_context(base_url=origin, java_script_enabled=False)
    await plain.add_cookies(await context.cookies())
    off = await plain.new_page()
    await off.goto("/assets/fct_revenue?column=plan_code")
    assert await off.locator('.graph .node.hot[data-fqn="growth_kpis"]').count() == 1
    await plain.close()

    # a non-member: no buttons, and a forged POST (no token, then another session's token) is refused
    other = await browser.new_context(base_url=origin)
    stranger = Watched(await other.new_page(), origin, flow.fake.web_url)
    await stranger.install()
    flow.fake.sign_in_as("bob")
    await stranger.page.goto("/auth/github/login?next=/proposals/" + str(proposal.id))
    await stranger.page.wait_for_url(f"{origin}/proposals/{proposal.id}")
    assert await stranger.page.locator("text=Acknowledge for").count() == 0
    await stranger.check("proposal-non-member")
    forged = await other.request.post(f"/proposals/{proposal.id}/respond", form={"verb": "block", "team": "growth", "reason": "x"})
    assert forged.status == 403 and "security token did not match" in await forged.text()
    gina_token = await page.evaluate("document.querySelector('input[name=csrf]').value")
    forged = await other.request.post(
        f"/proposals/{proposal.id}/respond", form={"csrf": gina_token, "verb": "block", "team": "growth", "reason": "x"}
    )
    assert forged.status == 403
    acks = await flow.store.read(lambda db: sql.list_acks(db, proposal.id))
    assert acks["growth"].response == "ack" and acks["growth"].user == "gina"
    await other.close()

    # the team page: a member registers what the team reads, through the form
    await page.goto("/teams/growth")
    await tab.check("team")
    await page.fill("#reg-asset", "finance_daily")
    await page.fill("#reg-columns", "revenue")
    await page.fill("#reg-note", "weekly deck")
    await page.click("form[aria-labelledby=add-h] button[type=submit]")
    await page.wait_for_url(f"{origin}/teams/growth?done=added#reads-h")
    assert "weekly deck" in await page.inner_text("#reads-h + .scroll")
    await tab.check("team-registered")

    # audits: three runs of fct_revenue, two failed, make the 24-hour alert fire
    for n, passed in enumerate([False, False, True]):
        status, _ = await api.call("POST", "/assets/fct_revenue/audits", json=_run(f"r{n}", passed, hours=3 - n))
        assert status == 201
    await page.goto("/audits")
    assert "2 of 3 runs failed in the last 24 hours" in await page.inner_text("main")
    await tab.check("audits")

    # an organisation owner creates a key (shown once) and revokes it
    flow.fake.set_org_role("acme", "gina", "admin")
    await page.goto("/admin")
    await page.select_option("#key-scope", "read")
    await page.click("form[aria-labelledby=newkey-h] button[type=submit]")
    key = await page.inner_text("#new-key")
    assert key.startswith("tsk_")
    await tab.check("admin-key-created")
    prefix = key.split("_")[1]
    await page.click(f"[aria-label='Revoke key {prefix}']")
    await page.wait_for_url(f"{origin}/admin?done=revoked#keys-h")
    assert "revoked" in await page.inner_text("#keys-h")
    await tab.check("admin")
    await context.close()
    assert os.listdir(SCREENS)
