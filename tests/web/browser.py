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
    from playwright.async_api import async_playwright  # only where chromium exists (NEEDS_CHROMIUM)

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()
