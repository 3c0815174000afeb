"""The operator's path when things go wrong: bad settings, a failed delivery found, its cause
fixed, replayed from the command line; a key made on the command line used on the API; and
``/metrics`` telling the story afterwards."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from tests.app.test_robustness_payloads import flow, settle
from tests.app.workflow_support import PullRequestFlow
from tests.fixtures_app import wait_until
from tests.fixtures_github import INSTALLATION_ID

__all__ = ["flow"]

FCT = "models/marts/fct_revenue.sql"


@pytest.mark.parametrize("port", ["eighty", "70000", "-1", "80.5"])
def test_a_bad_port_is_a_configuration_error_naming_the_variable(
    port: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TESSERA_PORT", port)
    monkeypatch.setenv("TESSERA_DB", str(tmp_path / "t.db"))
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and "TESSERA_PORT" in err and "Traceback" not in err


def test_a_port_already_taken_is_said_plainly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("TESSERA_PORT", str(port))
        monkeypatch.setenv("TESSERA_DB", str(tmp_path / "t.db"))
        monkeypatch.setenv("TESSERA_WEBHOOK_SECRET", "s")
        assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err and "Traceback" not in err and "internal error" not in err


async def test_a_failed_delivery_is_found_replayed_after_the_fix_and_the_metrics_show_it(
    flow: PullRequestFlow, app_settings: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TESSERA_DB", app_settings.db_path)
    cli = asyncio.to_thread  # the CLI runs its own event loop, as it does from a shell

    # The App was suspended on the organisation: the pull request cannot be analysed.
    suspended = flow.fake.installations.pop(INSTALLATION_ID)
    text = flow.repo.files_at("main")[FCT].decode()
    flow.repo.commit({FCT: text.replace("    plan_code,\n", "")}, parent="main", branch="drop")
    pull = flow.repo.open_pull_request(head="drop", author="priya")
    delivery = await settle(flow, "pull_request", flow.pull_payload(pull, "opened"))
    assert delivery.status == "failed" and delivery.attempts == 1
    assert flow.repo.check_runs(head_sha=pull.head_sha) == []

    capsys.readouterr()
    assert await cli(main, ["deliveries", "--failed"]) == 0
    listed = capsys.readouterr().out
    assert delivery.delivery_id in listed and "pull_request.opened" in listed
    assert "installation" in listed  # the reason, on the line

    # The admin unsuspends the App, then replays the delivery.
    flow.fake.installations[INSTALLATION_ID] = suspended
    assert await cli(main, ["deliveries", "--replay", delivery.delivery_id]) == 0
    assert "queued" in capsys.readouterr().out

    async def done() -> bool:
        replayed = await flow.store.get_delivery(delivery.delivery_id)
        return replayed.status == "done"

    await wait_until(done, timeout=15)  # the idle poll finds a delivery replayed by another process
    check = flow.check(pull)
    assert check.status == "completed" and check.conclusion == "action_required"
    assert len(flow.impact_comments(pull)) == 1

    # A key from the command line works on the API.
    assert await cli(main, ["keys", "create", "--team", "growth", "--scope", "read", "--create-team"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    answer = await flow.client.get("/api/v1/proposals", headers={"Authorization": f"Bearer {key}"})
    assert answer.status == 200, await answer.text()
    body = await answer.json()
    assert any(p.get("pr_number") == pull.number for p in body.get("items", body if isinstance(body, list) else []))
    refused = await flow.client.get("/api/v1/proposals", headers={"Authorization": f"Bearer {key}x"})
    assert refused.status == 401

    metrics = await (await flow.client.get("/metrics")).text()
    failed = [line for line in metrics.splitlines() if line.startswith("tessera_jobs_failed_total{")]
    assert any('event="pull_request"' in line and float(line.rsplit(" ", 1)[1]) >= 1 for line in failed), failed
    assert 'tessera_pr_analyses_total{conclusion="action_required"}' in metrics
