"""The pages in a real browser (Playwright driving Debian's chromium): sign in through the fake
GitHub, answer a pull request, explore lineage; on every page no request leaves the App, no
console error, keyboard reachable, and axe-core (vendored) finds no serious violation.
Screenshots of each page at 1280 and 390 px go to ``bench/out/screens/`` (git-ignored)."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from app.server import create_app
from app.store import proposals as sql
from tests.app.registry_support import BOOTSTRAP, Api
from tests.app.test_api_audits import _run
from tests.app.workflow_support import PullRequestFlow, repo_files
from tests.fakegithub import FakeGitHub
from tests.fixtures_github import INSTALLATION_ID
from tests.web.support import web_settings

CHROMIUM = Path("/usr/bin/chromium")
SCREENS = Path(__file__).parent.parent.parent / "bench" / "out" / "screens"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FCT = "models/marts/fct_revenue.sql"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium): .ci/run installs it")

AXE_SERIOUS = """
async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => v.id + ": " + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(" | "));
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Watched:
    """One browser tab whose every request, console error and page error is recorded."""

    def __init__(self, page: Any, app_origin: str, github_origin: str) -> None:
        self.page, self.app_origin, self.github_origin = page, app_origin, github_origin
        self.errors: list[str] = []
        self.left_app: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    async def install(self) -> None:
        async def route(route: Any) -> None:
            url = route.request.url
            origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
            signing_in = origin == self.github_origin and urlsplit(url).path == "/login/oauth/authorize"
            if origin == self.app_origin or (signing_in and route.request.is_navigation_request()):
                await route.continue_()
            else:
                self.left_app.append(url)
                await route.abort()

        await self.page.route("**/*", route)

    async def check(self, name: str) -> None:
        """The page as it stands: no request off the App, no console error, axe clean, screenshots."""
        page = self.page
        await page.add_script_tag(url="/static/vendor/axe.min.js")
        serious = await page.evaluate(AXE_SERIOUS)
        assert serious == [], f"{name}: axe found serious violations: {serious}"
        SCREENS.mkdir(parents=True, exist_ok=True)
        for width in (1280, 390):
            await page.set_viewport_size({"width": width, "height": 900})
            await page.screenshot(path=str(SCREENS / f"{name}-{width}.png"), full_page=True)
            overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} runs off a {width} px screen by {overflow} px"
        await page.set_viewport_size({"width": 1280, "height": 900})
        assert self.left_app == [], f"{name}: requests left the App: {self.left_app}"
        assert self.errors == [], f"{name}: console errors: {self.errors}"


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright  # only where chromium exists (the skip above)

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def live(
    aiohttp_client: Any, app_settings: Any, store: Any, fake_github: FakeGitHub, github_app: Any
) -> tuple[PullRequestFlow, Api, str]:
    """The App on a real port (its public URL known before start, for the sign-in redirect), the
    fake GitHub beside it, ``acme/warehouse`` with the revenue project, the registry synced."""
    port = _free_port()
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

    # signed out: the home page explains and offers sign-in
    await page.goto("/")
    await tab.check("home-signed-out")

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
