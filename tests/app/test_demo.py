"""``tessera demo``'s story, played into a real App against the tests' fake GitHub (which checks
every request the App makes against GitHub's REST description): each pull request ends in the
state the demo promises, and the registry holds what the pages show."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.cli import main
from app.demo import run as demo
from app.demo import scenario
from app.demo.github_pages import pull_page
from app.server import create_app
from tests.app.workflow_support import MARKER
from tests.fakegithub import FakeComment, FakeGitHub, FakePull


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def seeded(
    aiohttp_client: Any, fake_github: FakeGitHub, github_app: Any, app_private_key: str, tmp_path: Path
) -> tuple[FakeGitHub, Any, aiohttp.ClientSession]:
    """The demo's fake GitHub state and the App, seeded through its API and webhook endpoint."""
    repo = demo.populate(fake_github)
    port = _free_port()
    settings = demo.demo_settings(tmp_path, "127.0.0.1", port, fake_github, app_private_key)
    await aiohttp_client(create_app(settings, github=github_app), server_kwargs={"port": port})
    await demo.seed(settings, fake_github, repo, tmp_path)
    return fake_github, repo, settings


def _conclusions(repo: Any) -> dict[str, str | None]:
    return {key: repo.check_run("Tessera", head_sha=repo.pulls[n].head_sha).conclusion
            for key, n in scenario.numbers(dt.date.today()).items()}


def _impact(repo: Any, key: str) -> list[str]:
    number = scenario.numbers(dt.date.today())[key]
    return [c.body for c in repo.bot_comments(number) if MARKER in c.body]


async def test_every_demo_pull_request_ends_in_the_state_the_demo_promises(seeded: Any) -> None:
    fake, repo, settings = seeded
    assert _conclusions(repo) == {
        **{story.key: "success" for story in scenario.MERGED},  # merged untouched
        "drop-plan-code": "action_required",   # waiting for Growth (the demo user's team)
        "drop-country": "success",             # Marketing acknowledged
        "amount-in-cents": "failure",          # Finance blocked it
        "drop-trial-days": "action_required",  # Marketing is migrating: the check keeps waiting
        "add-balance": "success",              # adding a column breaks nobody
        "rename-mrr": "action_required",       # the demo user's own pull request, waiting on Finance
    }
    impact = _impact(repo, "drop-plan-code")
    assert len(impact) == 1 and "growth" in impact[0] and "revenue_dashboard" in impact[0]
    assert "finance" in _impact(repo, "rename-mrr")[0]
    assert _impact(repo, "add-balance") == [] and all(_impact(repo, s.key) == [] for s in scenario.MERGED)
    assert "board pack sums amount in dollars" in _impact(repo, "amount-in-cents")[0]
    assert scenario.migrating_deadline(dt.date.today()) in _impact(repo, "drop-trial-days")[0]
    assert all(repo.pulls[n].merged for n in range(1, len(scenario.MERGED) + 1))


async def test_the_demo_registry_holds_registrations_observed_readers_and_an_audit_alert(seeded: Any) -> None:
    fake, repo, settings = seeded
    headers = {"Authorization": f"Bearer {settings.bootstrap_key}"}
    async with aiohttp.ClientSession(settings.base_url, headers=headers) as http:
        async with http.get("/api/v1/assets", params={"limit": "100"}) as response:
            fqns = {a["fqn"] for a in (await response.json())["items"]}
        assert {"fct_revenue", "mrr_monthly", "customer_ltv", "stg_orders", "int_order_payments"} <= fqns
        async with http.get("/api/v1/registrations") as response:
            registrations = {(r["team"], r["asset"]) for r in (await response.json())["items"]}
        assert {(r.team, r.asset) for r in scenario.REGISTRATIONS} <= registrations
        async with http.get("/api/v1/consumers/observed", params={"unmapped": "true"}) as response:
            unmapped = [(c["asset"], c["reader"]["name"]) for c in (await response.json())["items"]]
        assert unmapped == [("dim_customers", "ADHOC_ANALYST")]
        async with http.get("/api/v1/assets/fct_revenue/audits/trends") as response:
            trends = await response.json()
        assert trends["alerts"], trends


async def test_the_fake_githubs_pull_request_page_shows_the_check_and_the_conversation(seeded: Any) -> None:
    fake, repo, settings = seeded
    async with aiohttp.ClientSession() as http:
        acked = scenario.numbers(dt.date.today())["drop-country"]
        async with http.get(f"{fake.web_url}/{scenario.REPO}/pull/{acked}") as response:
            assert response.status == 200
            page = await response.text()
        async with http.get(f"{fake.web_url}/{scenario.REPO}/pulls") as response:
            listing = await response.text()
    assert 'data-name="Tessera" data-conclusion="success"' in page
    assert "@maya" in page and "/tessera ack" in page
    assert f'href="{settings.base_url}/checks/' in page
    assert "Store order amounts as integer cents</a> by @pat" in listing and "Tessera: failure" in listing


def test_the_fake_githubs_pages_escape_what_people_wrote() -> None:
    pull = FakePull(1, "<b>title</b>", "eve", "main", "x", "a" * 40, "b" * 40, "acme/x", body="<script>x()</script>")
    comment = FakeComment(1, "acme/x", 1, "<img src=x onerror=alert(1)> **bold**", "eve<", "User", "now", "now")
    page = pull_page("acme/x", pull, [], [comment], "demo")
    assert "<script>" not in page and "<img" not in page and "<b>title" not in page
    assert "&lt;b&gt;title&lt;/b&gt;" in page and "<strong>bold</strong>" in page and "@eve&lt;" in page


def test_demo_on_a_taken_port_says_so_and_how_to_choose_another(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["demo", "--port", str(port)]) == 2
    error = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in error and "--port 0 for a free one" in error


def test_demo_refuses_a_dir_that_is_a_file_and_a_port_out_of_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    afile = tmp_path / "notes.txt"
    afile.write_text("mine")
    assert main(["demo", "--port", "0", "--dir", str(afile)]) == 2
    assert f"cannot use --dir {afile}" in capsys.readouterr().err and afile.read_text() == "mine"
    assert main(["demo", "--port", "70000"]) == 2
    assert "--port must be 0..65535" in capsys.readouterr().err
