"""The browser harness of the page tests: Playwright driving Debian's chromium (never a
downloaded browser), and a tab that records every request leaving the App, every console error,
and checks a page with axe-core (vendored) and screenshots at 1280 and 390 px in ``bench/out/screens/``."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
SCREENS = Path(__file__).parent.parent.parent / "bench" / "out" / "screens"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

NEEDS_CHROMIUM = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium): .ci/run installs it"
)

AXE_SERIOUS = """
async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => v.id + ": " + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(" | "));
}
"""


TAB_STOPS = """
() => {
  const selector = 'a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]),'
    + ' select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex="-1"])';
  const shown = el => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  const stops = [...document.querySelectorAll(selector)].filter(el => el.tabIndex >= 0 && shown(el));
  stops.forEach((el, i) => el.setAttribute('data-tab-stop', String(i)));
  return stops.length;
}
"""
FOCUSED = """
() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return {stop: el.getAttribute('data-tab-stop'), tag: el.tagName.toLowerCase(),
          text: (el.textContent || el.getAttribute('aria-label') || '').trim().slice(0, 40),
          ring: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0};
}
"""
START_AT_TOP = """
() => {
  const start = document.createElement('span');
  start.id = 'tab-walk-start';
  start.tabIndex = -1;
  document.body.prepend(start);
  start.focus();
}
"""
"""Where a fresh page's keyboard user starts: before everything (the marker is no Tab stop itself)."""
DOCUMENT_STATUS_NOTE = "Failed to load resource: the server responded with a status of"
KEYBOARD_STOPS = 30
"""Tab stops walked per page: the skip link, the navigation and the first controls of the content."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Watched:
    """One browser tab whose every request, console error and page error is recorded."""

    def __init__(self, page: Any, app_origin: str, github_origin: str) -> None:
        self.page, self.app_origin, self.github_origin = page, app_origin, github_origin
        self.errors: list[str] = []
        self.left_app: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _console(self, message: Any) -> None:
        """Console errors, except Chromium's note that the page itself came with an error status (a
        404 or 401 page the test asked for is the page, not a failure of it; a stylesheet or script
        that fails to load is still an error)."""
        if message.type != "error":
            return
        if message.text.startswith(DOCUMENT_STATUS_NOTE) and message.location.get("url") == self.page.url:
            return
        self.errors.append(message.text)

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
        """The page as it stands: no request off the App, no console error, axe clean, screenshots,
        the keyboard reaches it all."""
        page = self.page
        await page.add_script_tag(url="/static/vendor/axe.min.js")
        serious = await page.evaluate(AXE_SERIOUS)
        assert serious == [], f"{name}: axe found serious violations: {serious}"
        SCREENS.mkdir(parents=True, exist_ok=True)
        for width in (1280, 390, 360):
            await page.set_viewport_size({"width": width, "height": 900})
            if width != 360:  # the narrowest phone is checked for overflow, not photographed
                await page.screenshot(path=str(SCREENS / f"{name}-{width}.png"), full_page=True)
            overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} runs off a {width} px screen by {overflow} px"
        await page.set_viewport_size({"width": 1280, "height": 900})
        await self.keyboard(name)
        assert self.left_app == [], f"{name}: requests left the App: {self.left_app}"
        assert self.errors == [], f"{name}: console errors: {self.errors}"

    async def keyboard(self, name: str) -> None:
        """Tab from the top reaches the page's controls one after another in reading order (no
        trap, nothing skipped, no positive tabindex), the skip link first, each with a visible
        focus ring."""
        page = self.page
        stops = await page.evaluate(TAB_STOPS)
        await page.evaluate(START_AT_TOP)
        reached: list[dict[str, Any]] = []
        wanted = min(stops, KEYBOARD_STOPS)
        for _ in range(3 * wanted):  # a date input takes several presses: its fields, its picker
            if len(reached) == wanted:
                break
            await page.keyboard.press("Tab")
            focused = await page.evaluate(FOCUSED)
            if not reached or focused["stop"] != reached[-1]["stop"]:
                reached.append(focused)
        order = [r["stop"] for r in reached]
        assert order == [str(i) for i in range(len(reached))], f"{name}: Tab order {reached}"
        assert not reached or reached[0]["text"] == "Skip to content", f"{name}: first Tab stop {reached[:1]}"
        unringed = [r for r in reached if not r["ring"]]
        assert unringed == [], f"{name}: focused without a visible focus ring: {unringed}"
        # leave the keyboard where a fresh page has it: at the top, nothing focused
        await page.evaluate("(() => { const s = document.getElementById('tab-walk-start'); s.focus(); s.remove(); })()")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright  # only where chromium exists (NEEDS_CHROMIUM)

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()
