"""Deliveries that are signed and valid JSON but malformed for their event.

DESIGN.md: bad input "never crashes a worker or loses a delivery". Each delivery here must end
``done`` (nothing to do) or ``failed`` with a ``last_error`` that says what was wrong — never left
``queued``/``running`` — and the worker must then serve the next delivery normally.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.app.workflow_support import PullRequestFlow, repo_files
from tests.fakegithub import FakeGitHub
from tests.fixtures_app import FakeClock, post_delivery, wait_until
from tests.fixtures_github import INSTALLATION_ID

FCT = "models/marts/fct_revenue.sql"


@pytest.fixture
async def flow(
    fake_github: FakeGitHub, github_app: Any, make_client: Any, store: Any, fake_clock: FakeClock
) -> AsyncIterator[PullRequestFlow]:
    """The PR workflow on a fake clock, so a retried job runs again at once (no real back-off)."""
    repo = fake_github.add_repo("acme/warehouse", installation_id=INSTALLATION_ID, files=repo_files("revenue_dbt"))
    client = await make_client(github=github_app, clock=fake_clock)
    yield PullRequestFlow(fake=fake_github, client=client, store=store, repo=repo)


async def settle(flow: PullRequestFlow, event: str, payload: dict[str, Any] | bytes) -> Any:
    """POST a signed delivery and return it once it is ``done`` or ``failed`` (never anything else)."""
    delivery_id = str(uuid.uuid4())
    response = await post_delivery(flow.client, event, payload, delivery_id=delivery_id)
    assert response.status == 202, await response.text()

    async def finished() -> Any:
        delivery = await flow.store.get_delivery(delivery_id)
        return delivery if delivery is not None and delivery.status in ("done", "failed") else None

    return await wait_until(finished, timeout=20)


async def the_next_pull_request_is_still_analysed(flow: PullRequestFlow) -> None:
    text = flow.repo.files_at("main")[FCT].decode()
    pull = await flow.open_pr({FCT: text.replace("    plan_code,\n", "")})
    assert flow.check(pull).conclusion == "action_required"


def opened_payload(flow: PullRequestFlow) -> dict[str, Any]:
    text = flow.repo.files_at("main")[FCT].decode()
    branch = f"b-{uuid.uuid4().hex[:6]}"
    flow.repo.commit({FCT: text.replace("    plan_code,\n", "")}, parent="main", branch=branch)
    pull = flow.repo.open_pull_request(head=branch, author="priya")
    return flow.pull_payload(pull, "opened")


@pytest.mark.parametrize(
    ("mutilate", "says"),
    [
        (lambda p: p.pop("pull_request"), "pull_request"),
        (lambda p: p.update(repository=None), "repository"),
        (lambda p: p.pop("installation"), "installation"),
        (lambda p: p["pull_request"].update(head=None), "head"),
        (lambda p: p["pull_request"]["base"].update(sha=12), "base"),
        (lambda p: p["pull_request"].update(number="not a number"), "number"),
    ],
    ids=["no_pull_request", "repository_null", "no_installation", "head_null", "sha_not_text", "number_text"],
)
async def test_a_malformed_pull_request_delivery_fails_at_once_saying_which_field(
    flow: PullRequestFlow, mutilate: Any, says: str
) -> None:
    payload = opened_payload(flow)
    mutilate(payload)
    delivery = await settle(flow, "pull_request", payload)
    assert delivery.status == "failed"
    assert delivery.attempts == 1, "retrying a malformed payload cannot help"
    assert says in delivery.last_error and "malformed" in delivery.last_error
    assert "Traceback" not in delivery.last_error and 'File "' not in delivery.last_error
    await the_next_pull_request_is_still_analysed(flow)


async def test_numbers_sent_as_strings_are_read_as_numbers(flow: PullRequestFlow) -> None:
    payload = opened_payload(flow)
    payload["number"] = str(payload["number"])
    payload["pull_request"]["number"] = str(payload["pull_request"]["number"])
    payload["repository"]["id"] = str(payload["repository"]["id"])
    payload["installation"]["id"] = str(payload["installation"]["id"])
    delivery = await settle(flow, "pull_request", payload)
    assert delivery.status == "done", delivery.last_error
    [run] = flow.repo.check_runs(name="Tessera")
    assert run.conclusion == "action_required"


@pytest.mark.parametrize(
    ("event", "payload", "says"),
    [
        ("issue_comment", {"action": "created", "issue": {"number": 1, "pull_request": {}}, "comment": {"body": "/tessera ack"}}, "repository"),
        ("issue_comment", {"action": "created", "issue": {"number": 1, "pull_request": {}}, "comment": {"body": "/tessera ack", "user": {"login": "x"}}, "repository": {"id": 1, "full_name": "acme/warehouse"}, "installation": {"id": 1}}, "comment"),
        ("check_run", {"action": "rerequested", "check_run": {"name": "Tessera", "pull_requests": [{"number": None}]}, "repository": {"id": 1, "full_name": "acme/warehouse"}, "installation": {"id": 1}}, "number"),
        ("check_run", {"action": "rerequested", "check_run": None, "repository": {"id": 1}}, "check_run"),
        ("check_suite", {"action": "rerequested", "check_suite": {"pull_requests": "all"}, "repository": None}, "check_suite"),
        ("push", {"ref": None, "repository": "acme/warehouse", "installation": {"id": 1}}, "repository"),
        ("installation", {"action": "created", "installation": None}, "installation"),
    ],
    ids=["comment_no_repository", "comment_no_id", "check_run_number_null", "check_run_null", "check_suite_pulls_text", "push_repository_text", "installation_null"],
)
async def test_malformed_deliveries_of_every_event_fail_at_once_with_a_clear_reason(
    flow: PullRequestFlow, event: str, payload: dict[str, Any], says: str
) -> None:
    delivery = await settle(flow, event, payload)
    assert delivery.status == "failed", "a delivery with nothing usable must not pass as done"
    assert delivery.attempts == 1
    assert says in delivery.last_error and "malformed" in delivery.last_error
    await the_next_pull_request_is_still_analysed(flow)


async def test_a_pull_request_whose_head_commit_is_gone_fails_saying_so(flow: PullRequestFlow) -> None:
    payload = opened_payload(flow)
    payload["pull_request"]["head"]["sha"] = "0" * 40  # force-pushed away before the job ran
    delivery = await settle(flow, "pull_request", payload)
    assert delivery.status == "failed"
    assert "0000000" in delivery.last_error and "no longer exists" in delivery.last_error
    assert delivery.attempts == 1
    await the_next_pull_request_is_still_analysed(flow)


async def test_a_one_megabyte_comment_is_answered_like_any_other(flow: PullRequestFlow) -> None:
    flow.fake.add_team_member("acme", "growth", "gina")
    text = flow.repo.files_at("main")[FCT].decode()
    pull = await flow.open_pr({FCT: text.replace("    plan_code,\n", "")})
    body = "/tessera ack\n" + ("x" * 80 + "\n") * 13_000
    comment = flow.repo.add_comment(pull.number, body[:65_536], user="gina")
    payload = flow.fake.event_issue_comment(flow.repo, comment)
    payload["comment"]["body"] = body  # GitHub caps bodies at 65,536; a hostile sender may not
    delivery = await settle(flow, "issue_comment", payload)
    assert delivery.status == "done", delivery.last_error
    assert flow.reactions(comment) == ["+1"]
    assert flow.check(pull).conclusion == "success"


EVENTS = ["pull_request", "issue_comment", "check_run", "check_suite", "push", "installation", "installation_repositories"]
json_scalars = st.none() | st.booleans() | st.integers(-5, 10**12) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
        ["id", "number", "full_name", "head", "base", "sha", "ref", "pull_request", "pull_requests", "user",
         "login", "type", "body", "name", "repositories_added", "action", "issue", "comment"]), inner, max_size=4),
    max_leaves=12,
)
payloads = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(["opened", "synchronize", "created", "rerequested", "closed", "added", "deleted"]),
        "pull_request": json_values,
        "repository": json_values,
        "installation": json_values,
        "issue": json_values,
        "comment": json_values,
        "check_run": json_values,
        "check_suite": json_values,
        "number": json_values,
        "ref": json_values,
        "repositories_added": json_values,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_payload_shape_of_a_subscribed_event_leaves_a_job_unfinished_or_untold(data: Any) -> None:
    """Hypothesis over payload shapes, dispatched through the real router as the queue does: a
    handler either finishes or raises a PermanentError that names the problem (never a KeyError,
    TypeError or AttributeError, which the queue would retry as a bug and report as a traceback)."""
    import asyncio

    from gidgethub.sansio import Event

    from app.errors import PermanentError
    from app.routing import build_router

    event_name = data.draw(st.sampled_from(EVENTS))
    payload = data.draw(payloads)
    router = build_router()

    class NoGitHub:
        async def for_installation(self, installation_id: int) -> Any:
            raise PermanentError("no GitHub in this test")

    class NoStore:
        def __getattr__(self, name: str) -> Any:
            async def refuse(*args: Any, **kwargs: Any) -> Any:
                raise PermanentError("no store in this test")

            return refuse

    from app.config import Settings
    from app.queue import JobContext, SystemClock

    ctx = JobContext(store=NoStore(), settings=Settings(), github=NoGitHub(), delivery_id="d", attempt=1, clock=SystemClock())  # type: ignore[arg-type]
    try:
        asyncio.run(router.dispatch(Event(payload, event=event_name, delivery_id="d"), ctx))
    except PermanentError as exc:
        assert str(exc)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:2]):
            found += _paths(value, (*prefix, index))
    return found


def _mutate(payload: dict[str, Any], rng: Any) -> str:
    path = rng.choice(_paths(payload))
    parent: Any = payload
    for part in path[:-1]:
        parent = parent[part]
    value = rng.choice([None, "", "0" * 40, -1, 10**20, [], {}, True, "x" * 300, {"id": "1"}, ["a"]])
    if rng.random() < 0.2 and isinstance(parent, dict):
        del parent[path[-1]]
        return f"del {'.'.join(map(str, path))}"
    parent[path[-1]] = value
    return f"{'.'.join(map(str, path))} = {value!r}"[:120]


async def test_a_valid_delivery_mutated_anywhere_ends_done_or_failed_with_its_reason(flow: PullRequestFlow) -> None:
    """Seeded random mutations of real pull_request and issue_comment deliveries, each through the
    whole server (signature, store, queue, handlers, fake GitHub): every one ends ``done`` or
    ``failed`` with a reason that is not a bare traceback, and no check run is left in progress."""
    import copy
    import random

    rng = random.Random(20261126)
    text = flow.repo.files_at("main")[FCT].decode()
    flow.repo.commit({FCT: text.replace("    plan_code,\n", "")}, parent="main", branch="drop")
    pull = flow.repo.open_pull_request(head="drop", author="priya")
    comment = flow.repo.add_comment(pull.number, "/tessera status", user="gina")
    templates = {
        "pull_request": flow.pull_payload(pull, "synchronize"),
        "issue_comment": flow.fake.event_issue_comment(flow.repo, comment),
    }
    for round_ in range(40):
        event = "pull_request" if round_ % 2 == 0 else "issue_comment"
        payload = copy.deepcopy(templates[event])
        what = [_mutate(payload, rng) for _ in range(rng.randint(1, 2))]
        if event == "pull_request":
            payload["pull_request"]["head"]["sha"] = flow.repo.push("drop", {f"docs/{round_}.md": "x\n"})  # a new head each time
            payload["pull_request"]["base"]["sha"] = flow.repo.resolve("main")
            what.append(_mutate(payload, rng))
        delivery = await settle(flow, event, payload)
        assert delivery.status in ("done", "failed"), what
        if delivery.status == "failed":
            assert delivery.last_error and 'File "' not in delivery.last_error, (what, delivery.last_error)
            assert not delivery.last_error.startswith(("KeyError", "TypeError", "AttributeError")), (what, delivery.last_error)
        for run in flow.repo.check_runs():
            assert run.status == "completed", (what, run.status)


def test_numbers_sent_as_strings_keep_the_pull_requests_ordering_key() -> None:
    from app.webhooks import ordering_key

    as_numbers = ordering_key("pull_request", {"number": 7, "repository": {"id": 42}, "pull_request": {"number": 7}})
    as_strings = ordering_key("pull_request", {"number": "7", "repository": {"id": "42"}, "pull_request": {"number": "7"}})
    comment = ordering_key("issue_comment", {"issue": {"number": 7}, "repository": {"id": 42}})
    assert as_numbers == as_strings == comment == "pr:42#7"
