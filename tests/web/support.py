"""The pages' test harness: the PR-workflow harness with sign-in configured against the fake
GitHub's OAuth endpoints, and a helper that signs a test client in the way a browser would."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from yarl import URL

from app.config import Settings
from tests.app.registry_support import BOOTSTRAP, Api
from tests.app.workflow_support import PullRequestFlow, repo_files
from tests.fakegithub import FakeGitHub
from tests.fixtures_github import INSTALLATION_ID

SESSION_SECRET = "s" * 40
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
FCT = "models/marts/fct_revenue.sql"


def web_settings(base: Settings, fake: FakeGitHub, **changes: object) -> Settings:
    return base.with_overrides(
        github_client_id=fake.oauth_client_id,
        github_client_secret=fake.oauth_client_secret,
        session_secret=SESSION_SECRET,
        github_web_url=fake.web_url,
        github_api_url=fake.url,
        **changes,
    )


async def sign_in(client: Any, fake: FakeGitHub, login: str, *, next_path: str = "/") -> aiohttp.ClientResponse:
    """Follow the sign-in redirects by hand (the test client cannot leave the App): the App → the
    fake's authorize page → back to the App's callback, which answers with the session cookie."""
    fake.sign_in_as(login)
    start = await client.get("/auth/github/login", params={"next": next_path}, allow_redirects=False)
    assert start.status == 302, await start.text()
    async with aiohttp.ClientSession() as browser:
        async with browser.get(start.headers["Location"], allow_redirects=False) as authorize:
            assert authorize.status == 302, await authorize.text()
            back = URL(authorize.headers["Location"])
    return await client.get(back.path_qs, allow_redirects=False)


@pytest.fixture
async def web_flow(
    fake_github: FakeGitHub, github_app: Any, make_client: Any, store: Any, app_settings: Settings
) -> AsyncIterator[PullRequestFlow]:
    """:func:`tests.app.workflow_support.pr_flow` with sign-in set up."""
    repo = fake_github.add_repo("acme/warehouse", installation_id=INSTALLATION_ID, files=repo_files("revenue_dbt"))
    client = await make_client(web_settings(app_settings, fake_github), github=github_app)
    yield PullRequestFlow(fake=fake_github, client=client, store=store, repo=repo)


@pytest.fixture
async def both(
    fake_github: FakeGitHub, github_app: Any, make_client: Any, store: Any, app_settings: Any
) -> AsyncIterator[tuple[PullRequestFlow, Api]]:
    """The workflow (a breaking pull request open on acme/warehouse) and the registry synced."""
    repo = fake_github.add_repo("acme/warehouse", installation_id=INSTALLATION_ID, files=repo_files("revenue_dbt"))
    client = await make_client(web_settings(app_settings, fake_github, bootstrap_key=BOOTSTRAP), github=github_app)
    flow = PullRequestFlow(fake=fake_github, client=client, store=store, repo=repo)
    api = Api(client=client, store=store)
    await api.warehouse()
    fake_github.add_team_member("acme", "growth", "gina")
    text = repo.files_at("main")[FCT].decode()
    await flow.open_pr({FCT: text.replace("    plan_code,\n", "")}, author="priya")
    yield flow, api
