"""The discovery page in a real browser (Playwright driving Debian's chromium): a team member
maps an unmapped warehouse role with the form and the open pull request's check waits for the
team; no request leaves the App, no console error, axe-core finds no serious violation."""

from __future__ import annotations

from typing import Any

from app.store import observed as observed_sql
from tests.app.registry_support import Api
from tests.app.workflow_support import PullRequestFlow
from tests.fixtures_app import wait_until
from tests.web.browser import Watched, browser  # noqa: F401 - the browser fixture
from tests.web.test_browser import FCT, live, pytestmark  # noqa: F401 - fixtures, the skip
from tests.web.test_discovery import looker_finance


async def test_a_member_maps_an_unmapped_role_in_the_browser_and_the_check_waits_for_the_team(
    live: tuple[PullRequestFlow, Api, str], browser: Any  # noqa: F811
) -> None:
    flow, api, origin = live
    await api.team("marketing", "acme/marketing", name="Marketing")
    flow.fake.add_team_member("acme", "marketing", "mo")
    await flow.store.write(lambda db: observed_sql.record(db, [looker_finance()], source_kind="snowflake"))
    text = flow.repo.files_at("main")[FCT].decode()
    pull = await flow.open_pr({FCT: text.replace("    plan_code,\n", "")}, author="priya")
    assert "@acme/marketing" not in flow.check(pull).output["title"]

    context = await browser.new_context(base_url=origin, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    tab = Watched(await context.new_page(), origin, flow.fake.web_url)
    await tab.install()
    page = tab.page
    flow.fake.sign_in_as("mo")
    await page.goto("/auth/github/login?next=/discovery")
    await page.wait_for_url(f"{origin}/discovery")
    unmapped = await page.inner_text("#unmapped-h + .scroll")
    assert "LOOKER_FINANCE" in unmapped and "fct_revenue" in unmapped and "14" in unmapped
    await tab.check("discovery")

    await page.select_option("select[aria-label='Team for warehouse role LOOKER_FINANCE']", "marketing")
    await page.focus("[aria-label='Map warehouse role LOOKER_FINANCE']")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{origin}/discovery?done=mapped&rechecks=1#unmapped-h")
    assert "1 open pull request it reads is analysed again" in await page.inner_text("[role=status]")
    assert "looker_finance" in await page.inner_text("#mappings-h + .scroll")
    await tab.check("discovery-mapped")

    check = await wait_until(
        lambda: "@acme/marketing" in flow.check(pull).output.get("title", "") and flow.check(pull), timeout=30)
    assert check.conclusion == "action_required"

    # another signed-in person's page cannot lend its form: without the session's token it is refused
    other = await browser.new_context(base_url=origin)
    flow.fake.sign_in_as("bob")
    stranger = await other.new_page()
    await stranger.goto("/auth/github/login?next=/discovery")
    await stranger.wait_for_url(f"{origin}/discovery")
    forged = await other.request.post("/discovery/mappings", form={"kind": "role", "name": "ETL", "team": "marketing"})
    assert forged.status == 403 and "security token did not match" in await forged.text()
    mo_token = await page.evaluate("document.querySelector('input[name=csrf]').value")
    forged = await other.request.post("/discovery/mappings",
                                      form={"csrf": mo_token, "kind": "role", "name": "ETL", "team": "marketing"})
    assert forged.status == 403
    assert [m["name"] for m in await flow.store.read(observed_sql.list_mappings)] == ["looker_finance"]
    await other.close()
    await context.close()
