"""``tessera demo`` as a visitor meets it: the command in a terminal, then the pages in a real
browser. It prints its URL once seeded; signing in through the demo's fake GitHub makes you
@demo; Home lists what waits on Growth; acknowledging from the proposal page turns the check on
the fake GitHub green and updates the comment there. Ctrl-C stops it cleanly, and a second run
starts from an empty database."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import re
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.demo.run import READY_LINE
from app.demo.scenario import REPO, numbers
from tests.web.browser import NEEDS_CHROMIUM, SCREENS, Watched, free_port

TESSERA = Path(sys.executable).parent / "tessera"
START_TIMEOUT = 120.0
DEMO_SCREENSHOT = SCREENS / "demo-home.png"
"""The README's picture at 1280 px, the first screen only (``docs/demo-home.png`` is a copy, looked
at before it is committed)."""
FOCUS_IN_VIEW = """
() => {
  const picture = document.querySelector('.graph').getBoundingClientRect();
  const focus = document.querySelector('.graph .node.focus rect').getBoundingClientRect();
  return focus.left >= picture.left - 1 && focus.right <= picture.right + 1;
}
"""


@dataclass
class RunningDemo:
    process: asyncio.subprocess.Process
    url: str
    github: str
    folder: Path
    output: list[str]

    async def interrupt(self) -> tuple[int, str, str]:
        """Ctrl-C as a terminal sends it (to the whole process group); exit code and the rest of
        stdout and stderr."""
        os.killpg(self.process.pid, signal.SIGINT)
        stdout, stderr = await asyncio.wait_for(self.process.communicate(), 30)
        return self.process.returncode or 0, stdout.decode(), stderr.decode()


async def start_demo(*args: str) -> RunningDemo:
    """``tessera demo`` on a free port, until it prints the ready line (its URL)."""
    process = await asyncio.create_subprocess_exec(
        str(TESSERA), "demo", "--port", str(free_port()), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )
    assert process.stdout is not None
    output: list[str] = []
    try:
        async with asyncio.timeout(START_TIMEOUT):
            while not any(line.startswith(READY_LINE) for line in output):
                line = (await process.stdout.readline()).decode()
                if not line:
                    stderr = await process.stderr.read() if process.stderr else b""
                    raise AssertionError(f"tessera demo ended before it was ready: {''.join(output)}{stderr.decode()}")
                output.append(line)
            for _ in range(4):  # the lines that follow it: sign-in, pull requests, fake GitHub, database
                output.append((await process.stdout.readline()).decode())
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        raise
    text = "".join(output)
    url = re.search(re.escape(READY_LINE) + r" (\S+)/\n", text)
    github = re.search(r"The fake GitHub's view of them: (http://\S+)/" + re.escape(REPO) + "/pulls", text)
    folder = re.search(r"Database: (.+)/tessera\.db\.", text)
    assert url and github and folder, text
    return RunningDemo(process, url[1], github[1], Path(folder[1]), output)


@pytest.fixture
async def running_demo() -> AsyncIterator[RunningDemo]:
    demo = await start_demo()
    try:
        yield demo
    finally:
        if demo.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(demo.process.pid, signal.SIGKILL)
            await demo.process.wait()


async def fake_pull_page(github: str, number: int) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{github}/{REPO}/pull/{number}") as response:
        assert response.status == 200
        return await response.text()


@NEEDS_CHROMIUM
async def test_a_visitor_signs_in_to_the_demo_and_an_ack_from_the_page_turns_the_check_green(
    running_demo: RunningDemo, browser: Any
) -> None:
    demo = running_demo
    number = numbers(dt.date.today())
    waiting_on_growth, mine = number["drop-plan-code"], number["rename-mrr"]
    assert f"#{waiting_on_growth} waiting, #{number['drop-country']} acked," in "".join(demo.output)
    context = await browser.new_context(base_url=demo.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = Watched(await context.new_page(), demo.url, demo.github)
    await tab.install()
    page = tab.page

    await page.goto("/")
    await page.click("text=Sign in with GitHub")
    await page.wait_for_url(f"{demo.url}/")
    assert "Signed in as @demo" in await page.inner_text("header")
    waiting = await page.inner_text("#waiting-h + ul")
    assert f"{REPO}#{waiting_on_growth}" in waiting and "growth" in waiting
    assert f"{REPO}#{mine}" in await page.inner_text("#mine-h + ul")  # the demo user's own, waiting on Finance
    assert "fct_revenue" in await page.inner_text("#alerts-h + ul")
    await tab.check("demo-home")
    await page.set_viewport_size({"width": 1280, "height": 640})
    await page.screenshot(path=str(DEMO_SCREENSHOT))
    await page.set_viewport_size({"width": 1280, "height": 900})

    before = await fake_pull_page(demo.github, waiting_on_growth)
    assert 'data-name="Tessera" data-conclusion="action_required"' in before

    await page.click(f"text={REPO}#{waiting_on_growth}")
    await page.wait_for_url(re.compile(r".*/proposals/\d+$"))
    assert "waiting for an acknowledgement" in await page.inner_text("#teams + .scroll")
    on_github = await page.get_attribute("text=the pull request on GitHub", "href")
    assert on_github == f"{demo.github}/{REPO}/pull/{waiting_on_growth}"  # the fake GitHub's page below
    await tab.check("demo-proposal")
    await page.click("button:has-text('Acknowledge')")
    await page.wait_for_url(re.compile(r".*\?done=ack#teams$"))
    assert "Acknowledged." in await page.inner_text("[role=status]")
    assert "acknowledged by @demo" in await page.inner_text("#teams + .scroll")

    after = await fake_pull_page(demo.github, waiting_on_growth)
    assert 'data-name="Tessera" data-conclusion="success"' in after
    assert "acknowledged by @demo" in after  # the App's comment on the pull request, updated

    shows = {"/assets/fct_revenue": "revenue_dashboard", "/teams/growth": "Weekly growth e-mail",
             "/audits": "revenue_not_negative", "/admin": "Finance Data"}
    for path, text in shows.items():
        await page.goto(path)
        assert text in await page.inner_text("main"), path
        if path.startswith("/assets/"):  # a phone turned: the picture keeps the asset itself in view
            await page.set_viewport_size({"width": 390, "height": 900})
            await page.wait_for_function(FOCUS_IN_VIEW, timeout=3000)  # else: scrolled out of its picture
            await page.set_viewport_size({"width": 1280, "height": 900})
        await tab.check("demo-" + path.strip("/").split("/")[0])
    await context.close()

    code, stdout, stderr = await demo.interrupt()
    assert code == 0, stderr
    assert "tessera: stopping" in stdout and "Traceback" not in stderr, stderr
    assert not demo.folder.exists()  # the temporary folder went with it


async def test_a_second_demo_run_in_the_same_folder_starts_from_an_empty_database(tmp_path: Path) -> None:
    counts = []
    for _ in range(2):
        demo = await start_demo("--dir", str(tmp_path))
        code, _, stderr = await demo.interrupt()
        assert code == 0, stderr
        with contextlib.closing(sqlite3.connect(tmp_path / "tessera.db")) as db:
            counts.append(db.execute("SELECT count(*) FROM proposals").fetchone()[0])
    assert counts == [12, 12]
