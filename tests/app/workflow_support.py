"""The PR-workflow test harness: a running Tessera, the fake GitHub, and helpers that act like people.

Everything goes through the front door: deliveries are signed and POSTed to ``/webhooks/github``,
the durable queue runs the real handlers and the real engine, and the fake GitHub (which checks
every request against GitHub's REST description) is where the outcome is read: check runs,
comments, reactions.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fakegithub import FakeCheckRun, FakeComment, FakeGitHub, FakePull, FakeRepo
from tests.fixtures_app import post_delivery, wait_until
from tests.fixtures_github import INSTALLATION_ID

REPOS_DIR = Path(__file__).parent.parent / "data" / "repos"
MARKER = "<!-- tessera:impact -->"
WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")


def repo_files(name: str) -> dict[str, str]:
    """A test repository under ``tests/data/repos/<name>`` as path → text."""
    root = REPOS_DIR / name
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


@dataclass
class PullRequestFlow:
    fake: FakeGitHub
    client: Any
    store: Any
    repo: FakeRepo
    deliveries: list[str] = field(default_factory=list)

    def use_repo(self, full_name: str, files: Mapping[str, str]) -> FakeRepo:
        """Work in another repository of the same installation from now on."""
        self.repo = self.fake.add_repo(full_name, installation_id=INSTALLATION_ID, files=dict(files))
        return self.repo

    # -- acting like GitHub and people

    async def deliver(self, event: str, payload: Mapping[str, Any], *, delivery_id: str | None = None) -> str:
        """POST a signed delivery and wait until the queue has finished it."""
        delivery_id = delivery_id or str(uuid.uuid4())
        response = await post_delivery(self.client, event, dict(payload), delivery_id=delivery_id)
        assert response.status in (200, 202), await response.text()
        self.deliveries.append(delivery_id)
        await self.wait_done(delivery_id)
        return delivery_id

    async def wait_done(self, delivery_id: str) -> None:
        """Wait until the queue has finished the delivery (a replayed one too); it must not fail."""

        async def finished() -> bool:
            delivery = await self.store.get_delivery(delivery_id)
            return delivery is not None and delivery.status in ("done", "failed")

        await wait_until(finished, timeout=30)
        delivery = await self.store.get_delivery(delivery_id)
        assert delivery.status == "done", f"delivery failed: {delivery.last_error}"

    def pull_payload(self, pull: FakePull, action: str, **extra: Any) -> dict[str, Any]:
        return {
            "action": action,
            "number": pull.number,
            "pull_request": self.fake._pull_json(self.repo, pull),
            "repository": self.fake._repo_json(self.repo),
            "installation": {"id": INSTALLATION_ID, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="},
            "sender": self.fake._user(pull.author),
            **extra,
        }

    async def open_pr(
        self,
        changes: Mapping[str, str | None],
        *,
        author: str = "priya",
        branch: str | None = None,
        head_repo: str | None = None,
        draft: bool = False,
        commit_author: tuple[str, str | None] | None = None,
    ) -> FakePull:
        """Push ``changes`` on a new branch, open a pull request and deliver ``opened``;
        ``commit_author`` is the commit's (e-mail, GitHub login or None)."""
        branch = branch or f"change-{uuid.uuid4().hex[:6]}"
        self.repo.commit(dict(changes), parent=self.repo.default_branch, branch=branch, author=commit_author)
        pull = self.repo.open_pull_request(head=branch, author=author, head_repo=head_repo, draft=draft)
        await self.deliver("pull_request", self.pull_payload(pull, "opened"))
        return pull

    async def push(self, pull: FakePull, changes: Mapping[str, str | None]) -> None:
        """Push to the pull request's branch and deliver ``synchronize``."""
        self.repo.push(pull.head_ref, dict(changes))
        await self.deliver("pull_request", self.pull_payload(pull, "synchronize"))

    async def comment(
        self, pull: FakePull, body: str, *, user: str, user_type: str = "User", action: str = "created"
    ) -> FakeComment:
        """Write a comment as ``user`` and deliver ``issue_comment``."""
        comment = self.repo.add_comment(pull.number, body, user=user, user_type=user_type)
        issue = {
            "number": pull.number,
            "title": pull.title,
            "state": "open",
            "user": self.fake._user(pull.author),
            "pull_request": {"url": f"{self.fake.url}/repos/{self.repo.full_name}/pulls/{pull.number}"},
            "body": pull.body,
        }
        payload: dict[str, Any] = {
            "action": action,
            "issue": issue,
            "comment": self.fake._comment_json(comment),
            "repository": self.fake._repo_json(self.repo),
            "installation": {"id": INSTALLATION_ID},
            "sender": self.fake._user(user, user_type),
        }
        if action == "edited":
            payload["changes"] = {"body": {"from": "lgtm"}}
        await self.deliver("issue_comment", payload)
        return comment

    # -- reading the outcome

    def check(self, pull: FakePull) -> FakeCheckRun:
        run = self.repo.check_run("Tessera", head_sha=pull.head_sha)
        assert run is not None, "no Tessera check run on the head commit"
        return run

    def impact_comments(self, pull: FakePull) -> list[FakeComment]:
        return [c for c in self.repo.bot_comments(pull.number) if MARKER in c.body]

    def replies(self, pull: FakePull) -> list[FakeComment]:
        return [c for c in self.repo.bot_comments(pull.number) if MARKER not in c.body]

    def reactions(self, comment: FakeComment) -> list[str]:
        return [r.content for r in self.repo.reactions(comment.id)]

    def api_calls(self, since: int = 0) -> list[tuple[str, str]]:
        """(method, path) of every request to the fake after index ``since``, token exchange excluded."""
        return [
            (r.method, r.path)
            for r in self.fake.requests[since:]
            if not r.path.endswith("/access_tokens")
        ]

    def writes(self, since: int = 0) -> list[tuple[str, str]]:
        return [call for call in self.api_calls(since) if call[0] in WRITE_METHODS]


@pytest.fixture
async def pr_flow(fake_github: FakeGitHub, github_app: Any, make_client: Any, store: Any) -> AsyncIterator[PullRequestFlow]:
    """Tessera with its workers running against the fake, and ``acme/warehouse`` holding the dbt
    project ``revenue_dbt`` (Finance produces ``fct_revenue``; Growth's dashboard reads it)."""
    repo = fake_github.add_repo("acme/warehouse", installation_id=INSTALLATION_ID, files=repo_files("revenue_dbt"))
    client = await make_client(github=github_app)
    yield PullRequestFlow(fake=fake_github, client=client, store=store, repo=repo)
