"""Shared set-up for the notification tests: the fake Slack, a fake subscriber, and a PR flow whose
``.tessera.yml`` maps Growth to ``#data-growth``.

The fakes listen on 127.0.0.1, which the SSRF guard refuses: the settings here allow it through
``outbound_allow`` (``TESSERA_OUTBOUND_ALLOW``), as an operator would for an internal receiver.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.appkeys import OUTBOX_KEY
from app.config import Settings
from tests.app.workflow_support import PullRequestFlow, repo_files
from tests.fakegithub import FakeGitHub
from tests.fakeslack import SIGNING_SECRET, TOKEN, FakeSlack, FakeSubscriber
from tests.fixtures_app import FakeClock
from tests.fixtures_github import INSTALLATION_ID

FCT = "models/marts/fct_revenue.sql"
GROWTH_CHANNEL = "C0GROWTH"
SLACK_CONFIG = """# Finance produces revenue; Growth reads it through a dashboard.
compatibility: backward
teams:
  finance: {github: acme/finance-data, names: [Finance Data]}
  growth: {github: acme/growth, names: [Growth Analytics], slack: "#data-growth"}
dbt:
  dialect: duckdb
"""


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    slack = FakeSlack()
    await slack.start()
    yield slack
    await slack.close()


@pytest.fixture
async def subscriber() -> AsyncIterator[FakeSubscriber]:
    receiver = FakeSubscriber()
    await receiver.start()
    yield receiver
    await receiver.close()


@pytest.fixture
def notify_settings(app_settings: Settings, fake_slack: FakeSlack) -> Settings:
    return app_settings.with_overrides(
        slack_bot_token=TOKEN, slack_signing_secret=SIGNING_SECRET, slack_api_url=fake_slack.api_url,
        outbound_allow=("127.0.0.1/32",), bootstrap_key="bootstrap-key-for-tests-0123456789",
    )


@pytest.fixture
async def slack_flow(
    fake_github: FakeGitHub, github_app: Any, make_client: Any, store: Any, notify_settings: Settings
) -> PullRequestFlow:
    """Tessera (workers running) against the fake GitHub and the fake Slack; ``acme/warehouse``
    holds ``revenue_dbt`` with Growth's channel in its ``.tessera.yml``; gina is in Growth."""
    files = {**repo_files("revenue_dbt"), ".tessera.yml": SLACK_CONFIG}
    repo = fake_github.add_repo("acme/warehouse", installation_id=INSTALLATION_ID, files=files)
    fake_github.add_team_member("acme", "growth", "gina")
    client = await make_client(notify_settings, github=github_app)
    return PullRequestFlow(fake=fake_github, client=client, store=store, repo=repo)


def outbox_of(flow: PullRequestFlow) -> Any:
    return flow.client.app[OUTBOX_KEY]


async def drop_plan_code(flow: PullRequestFlow) -> Any:
    """The 3am story's pull request: priya drops ``plan_code``, which Growth's dashboard reads."""
    text = flow.repo.files_at("main")[FCT].decode()
    return await flow.open_pr({FCT: text.replace("    plan_code,\n", "")}, author="priya")


def signed_interaction(payload: dict[str, Any], *, secret: str = SIGNING_SECRET, timestamp: float | None = None,
                       ) -> tuple[bytes, dict[str, str]]:
    """A Slack interactivity request: form-encoded ``payload=<json>``, signed like Slack does."""
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(timestamp if timestamp is not None else time.time()))
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return body, {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}",
                  "Content-Type": "application/x-www-form-urlencoded"}


def ack_press(slack_user: str, proposal_id: int, team: str, response_url: str) -> dict[str, Any]:
    """The ``block_actions`` payload Slack sends when the Acknowledge button is pressed."""
    return {
        "type": "block_actions",
        "user": {"id": slack_user, "username": slack_user.lower(), "team_id": "T0ACME"},
        "team": {"id": "T0ACME", "domain": "acme"},
        "trigger_id": f"trigger-{slack_user}-{time.monotonic_ns()}",
        "response_url": response_url,
        "container": {"type": "message", "channel_id": GROWTH_CHANNEL},
        "actions": [{"type": "button", "action_id": "tessera_ack", "block_id": "b1",
                     "value": json.dumps({"proposal": proposal_id, "team": team}), "action_ts": "1750000000.1"}],
    }


def clock_at_now() -> FakeClock:
    return FakeClock(start=time.time())
