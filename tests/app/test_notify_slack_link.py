"""A Slack user links their Slack account to their GitHub login once, through the sign-in page, and
their Acknowledge presses then count under the same rules as ``/tessera ack``."""

from __future__ import annotations

import re
from typing import Any

import pytest

from app.store import notify as notify_sql
from app.store import proposals as proposal_sql
from tests.app import notify_support as support
from tests.app.notify_support import SLACK_CONFIG, ack_press, drop_plan_code, signed_interaction
from tests.app.workflow_support import PullRequestFlow, repo_files
from tests.fakegithub import FakeGitHub
from tests.fakeslack import FakeSlack
from tests.fixtures_app import wait_until
from tests.fixtures_github import INSTALLATION_ID
from tests.web.support import CSRF, sign_in, web_settings

fake_slack, notify_settings = support.fake_slack, support.notify_settings
LINK = re.compile(r"(/auth/slack/link\?token=[A-Za-z0-9_\-=.]+)")


@pytest.fixture
async def linked_flow(
    fake_github: FakeGitHub, github_app: Any, make_client: Any, store: Any, notify_settings: Any
) -> PullRequestFlow:
    files = {**repo_files("revenue_dbt"), ".tessera.yml": SLACK_CONFIG}
    repo = fake_github.add_repo("acme/warehouse", installation_id=INSTALLATION_ID, files=files)
    fake_github.add_team_member("acme", "growth", "gina")
    client = await make_client(web_settings(notify_settings, fake_github), github=github_app)
    return PullRequestFlow(fake=fake_github, client=client, store=store, repo=repo)


async def press(flow: PullRequestFlow, payload: dict[str, Any]) -> Any:
    body, headers = signed_interaction(payload)
    response = await flow.client.post("/slack/interactions", data=body, headers=headers)
    assert response.status == 200
    return await response.json() if response.content_length else None


async def test_an_unlinked_slack_user_links_once_through_sign_in_and_then_acks(
    linked_flow: PullRequestFlow, fake_slack: FakeSlack
) -> None:
    flow = linked_flow
    pull = await drop_plan_code(flow)
    proposal = await flow.store.read(lambda db: proposal_sql.get_proposal(db, flow.repo.id, pull.number))

    answer = await press(flow, ack_press("U0GINA", proposal.id, "growth", fake_slack.response_url()))
    [link] = LINK.findall(answer["text"])

    # before sign-in the link asks for it; a tampered token is refused
    page = await flow.client.get(link)
    assert page.status == 401 and "Sign in" in await page.text()
    forged = await flow.client.get(link[:-4] + "AAAA")
    assert forged.status == 400 and "expired" in await forged.text()

    await sign_in(flow.client, flow.fake, "gina", next_path=link)
    page = await flow.client.get(link)
    text = await page.text()
    assert page.status == 200 and "U0GINA" in text and "@gina" in text
    token = re.search(r'name="token" value="([^"]+)"', text).group(1)  # type: ignore[union-attr]
    refused = await flow.client.post("/auth/slack/link", data={"csrf": "wrong", "token": token})
    assert refused.status == 403
    assert await flow.store.read(lambda db: notify_sql.github_login_for(db, "U0GINA")) is None
    done = await flow.client.post("/auth/slack/link", data={"csrf": CSRF.search(text).group(1), "token": token})  # type: ignore[union-attr]
    assert done.status == 200 and "linked" in await done.text()
    assert await flow.store.read(lambda db: notify_sql.github_login_for(db, "U0GINA")) == "gina"
    log = await flow.store.read(lambda db: proposal_sql.list_audit(db, action="slack_linked"))
    assert [(e["actor"], e["detail"]["slack_user"]) for e in log] == [("gina", "U0GINA")]

    await press(flow, ack_press("U0GINA", proposal.id, "growth", fake_slack.response_url()))
    await wait_until(lambda: flow.check(pull).conclusion == "success", timeout=15)
    acks = await flow.store.read(lambda db: proposal_sql.list_acks(db, proposal.id))
    assert acks["growth"].user == "gina"
