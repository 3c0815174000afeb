"""THE fake GitHub: a real aiohttp server on 127.0.0.1 that answers like GitHub.

Why one fake: every test that talks to GitHub (client, PR workflow, setup) exercises the same
status codes, ``Link`` pagination, rate-limit headers, token checks and request validation, so a
behaviour fixed here is fixed for all; ``tessera demo`` runs the App against this same fake, so the
demo shows what the App does. Each request is recorded and, when the fake is given GitHub's REST
description (``FakeGitHub(openapi=...)``; the tests' copy is ``tests/data/github/openapi/subset.json``),
checked against it; violations are collected in :attr:`FakeGitHub.violations` and the
``fake_github`` fixture fails a test that caused any.

Setting up state::

    repo = fake.add_repo("acme/warehouse", installation_id=1)
    base = repo.commit({"models/a.sql": "select 1 as id"}, branch="main")
    head = repo.commit({"models/a.sql": "select 2 as id"}, parent=base, branch="feature")
    pr = repo.open_pull_request(base="main", head="feature", author="alice")
    fake.add_team_member("acme", "growth", "bob")
    repo.set_permission("carol", "admin")

Commits take *changes* on top of their parent (``None`` deletes a path); a new branch starts
from the default branch; ``repo.push("feature", {...})`` moves open PRs of that branch;
``repo.merge(pr)`` merges into the base branch.

Webhook payloads that agree with this state (same SHAs, ids, installation)::

    payload = fake.event_pull_request(repo, pr, "opened")        # also "synchronize", before=...
    comment = repo.add_comment(pr.number, "/tessera ack", user="bob")
    payload = fake.event_issue_comment(repo, comment)
    payload = fake.event_check_run(repo, repo.check_run("Tessera"), "requested_action", identifier="recheck")
    payload = fake.event_push(repo, "main", before_sha) / fake.event_installation(1)

Reading what happened: ``repo.comments(pr.number)`` / ``repo.bot_comments(...)``,
``repo.check_run("Tessera")`` (latest status, conclusion, output, all annotations, every body
sent), ``repo.reactions(comment_id)``, ``fake.requests`` / ``fake.requests_to("PATCH", "/repos/*")``
(method, path, query, headers, JSON body, status; ``fake.requests.clear()`` to count one phase).

Injecting faults (consumed in order, before normal handling; ``path`` may be a glob)::

    fake.script("POST", "/repos/acme/warehouse/check-runs", server_error(502), server_error(502))
    fake.script("GET", "/repos/*", secondary_rate_limit(retry_after=1), too_many_requests(),
                primary_rate_limit(reset_at=now + 60), slow(2.0), dropped_connection())
    fake.script("POST", "/repos/*/check-runs", lost_answer())   # created, but the caller sees a 502

Tokens: ``fake.issue_token(1)`` for raw calls, ``fake.revoke_tokens()``; the clock is
``fake.clock`` (shared with the client in the fixtures). The manifest flow: the web form
``POST /settings/apps/new`` (or ``/organizations/{org}/settings/apps/new``) redirects back with a
code; ``fake.manifest_code()`` makes one directly. Signing in (the OAuth web flow with PKCE):
``fake.sign_in_as("gina")`` says who the browser is signed in to GitHub as; then
``/login/oauth/authorize`` redirects back at once with a code, ``POST /login/oauth/access_token``
trades it (checking client secret, redirect URI and ``code_verifier``) for a user token, and
``GET /user`` answers who that token belongs to. GitHub Enterprise Server:
``FakeGitHub(api_prefix="/api/v3")``.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import difflib
import fnmatch
import functools
import hashlib
import io
import itertools
import json
import re
import secrets
import tarfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from yarl import URL

from app.demo import github_pages

REST = Path(__file__).parent / "data" / "github" / "rest"
DOCS = "https://docs.github.com/rest"
MAX_COMMENT_LENGTH = 65536
MAX_PR_FILES = 3000
MAX_COMPARE_FILES = 300
"""GitHub lists at most this many files of a comparison (a pull request's own list goes to 3,000)."""
CONTENTS_SIZE_LIMIT = 1024 * 1024
INSTALLATION_RATE_LIMIT = 5000
UNAUTHENTICATED_RATE_LIMIT = 60
TOKEN_LIFETIME = 3600

Clock = Callable[[], float]
Handler = Callable[[web.Request, dict[str, str], "Caller"], Any]


def _template(name: str) -> Any:
    """A fresh copy of a trimmed GitHub example (``data/github/rest/<name>.json`` next to this file)."""
    return copy.deepcopy(_read_template(name))


@functools.cache
def _read_template(name: str) -> Any:
    return json.loads((REST / f"{name}.json").read_text())


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def git_blob_sha(content: bytes) -> str:
    """The SHA git (and GitHub) gives a blob: stable, so tests can predict it."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _as_bytes(content: str | bytes) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else content


def _b64(content: bytes) -> str:
    """Base64 wrapped at 60 characters, as GitHub sends it."""
    text = base64.b64encode(content).decode("ascii")
    return "".join(text[i : i + 60] + "\n" for i in range(0, len(text), 60))


CODELOAD_PREFIX = "/_codeload/"
HUB_PREFIX = "/_hub"
"""Where the fake serves dbt's package hub (``hub.getdbt.com``'s ``/api/v1/<namespace>/<name>.json``)."""


def tarball(repo: FakeRepo, sha: str) -> bytes:
    """The repository at a commit as GitHub's tarball: gzip, one ``owner-repo-short`` top folder,
    the commit in a pax global header."""
    buffer = io.BytesIO()
    top = f"{repo.full_name.replace('/', '-')}-{sha[:7]}"
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT, pax_headers={"comment": sha}) as archive:
        folder = tarfile.TarInfo(top + "/")
        folder.type = tarfile.DIRTYPE
        archive.addfile(folder)
        for path, content in sorted(repo.files_at(sha).items()):
            info = tarfile.TarInfo(f"{top}/{path}")
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


# Scripted responses ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScriptedResponse:
    """One answer a test forces on a route: status, JSON body, headers; or a delay / dropped connection."""

    status: int = 200
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    disconnect: bool = False
    after_handling: bool = False
    """Handle the request for real first (state changes), then answer this instead: the answer lost."""


def server_error(status: int = 502) -> ScriptedResponse:
    return ScriptedResponse(status, {"message": "Server Error"})


def secondary_rate_limit(retry_after: int | None = 1) -> ScriptedResponse:
    headers = (("retry-after", str(retry_after)),) if retry_after is not None else ()
    message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
    return ScriptedResponse(403, {"message": message, "documentation_url": DOCS}, headers)


def too_many_requests(retry_after: int = 1) -> ScriptedResponse:
    return ScriptedResponse(429, {"message": "Too Many Requests"}, (("retry-after", str(retry_after)),))


def primary_rate_limit(reset_at: float) -> ScriptedResponse:
    """403 with ``x-ratelimit-remaining: 0``; ``x-ratelimit-reset`` is the given epoch second."""
    message = "API rate limit exceeded for installation ID 1."
    headers = (("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", str(int(reset_at))))
    return ScriptedResponse(403, {"message": message, "documentation_url": DOCS}, headers)


def lost_answer(status: int = 502) -> ScriptedResponse:
    """GitHub did the work (created the check run, posted the comment) but the caller never hears
    so: a gateway error after the fact, as when a connection drops mid-answer."""
    return ScriptedResponse(status, {"message": "Server Error"}, after_handling=True)


def slow(seconds: float, status: int = 200, body: Any = None) -> ScriptedResponse:
    return ScriptedResponse(status, body, delay=seconds)


def dropped_connection() -> ScriptedResponse:
    """Close the connection without answering. aiohttp's client retries an idempotent request once
    on a reused connection, so script two to be sure the caller sees the failure."""
    return ScriptedResponse(disconnect=True)


# Recorded requests and state ---------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    operation_id: str | None
    status: int = 0


@dataclass
class FakeInstallation:
    id: int
    account: str
    account_type: str = "Organization"
    repositories: str | list[str] = "all"  # "all" or full names
    permissions: dict[str, str] = field(
        default_factory=lambda: {
            "checks": "write",
            "contents": "read",
            "issues": "write",
            "members": "read",
            "metadata": "read",
            "pull_requests": "write",
        }
    )
    suspended: bool = False

    def covers(self, full_name: str) -> bool:
        owner = full_name.split("/", 1)[0]
        if owner.lower() != self.account.lower():
            return False
        return self.repositories == "all" or full_name in self.repositories


@dataclass
class FakeCommit:
    sha: str
    files: dict[str, str]  # path -> blob sha
    parent: str | None
    message: str
    tree_sha: str
    author_email: str = "octocat@users.noreply.test"
    author_login: str | None = "octocat"
    """The GitHub user the commit's e-mail belongs to (None: an e-mail GitHub links to nobody)."""


@dataclass
class FakePull:
    number: int
    title: str
    author: str
    base_ref: str
    head_ref: str
    base_sha: str
    head_sha: str
    head_repo: str
    body: str = ""
    state: str = "open"
    draft: bool = False
    merged: bool = False
    id: int = 0
    merge_commit_sha: str | None = None


@dataclass
class FakeComment:
    id: int
    repo: str
    issue_number: int
    body: str
    user: str
    user_type: str
    created_at: str
    updated_at: str


@dataclass
class FakeReaction:
    id: int
    comment_id: int
    content: str
    user: str


@dataclass
class FakeCheckRun:
    """A check run as GitHub keeps it: the latest fields plus every annotation ever sent."""

    id: int
    repo: str
    name: str
    head_sha: str
    status: str = "queued"
    conclusion: str | None = None
    details_url: str | None = None
    external_id: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    output: dict[str, Any] = field(default_factory=dict)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)  # every create/update body, in order

    def apply(self, body: dict[str, Any], now: str) -> None:
        self.bodies.append(copy.deepcopy(body))
        for key in ("name", "details_url", "external_id", "started_at", "completed_at"):
            if key in body:
                setattr(self, key, body[key])
        if "status" in body:
            self.status = body["status"]
        if body.get("conclusion"):
            self.conclusion = body["conclusion"]
            self.status = "completed"  # GitHub: a conclusion completes the run
        if self.status == "completed" and not self.completed_at:
            self.completed_at = now
        if self.status == "in_progress" and not self.started_at:
            self.started_at = now
        if "actions" in body:
            self.actions = list(body["actions"])
        if "output" in body:
            output = dict(body["output"])
            self.annotations.extend(output.pop("annotations", []))
            output.pop("images", None)
            self.output = output


class FakeRepo:
    """A repository: commits of whole file sets, branches, pull requests, comments, check runs."""

    def __init__(
        self, fake: FakeGitHub, full_name: str, repo_id: int, default_branch: str, private: bool
    ) -> None:
        self.fake = fake
        self.full_name = full_name
        self.owner, self.name = full_name.split("/", 1)
        self.id = repo_id
        self.default_branch = default_branch
        self.private = private
        self.blobs: dict[str, bytes] = {}
        self.commits: dict[str, FakeCommit] = {}
        self.branches: dict[str, str] = {}
        self.pulls: dict[int, FakePull] = {}
        self.permissions: dict[str, str] = {}
        self.tree_limit = 100_000  # GitHub truncates recursive trees past this many entries
        self._diffs: dict[tuple[str, str], list[dict[str, Any]]] = {}

    # -- building state

    def commit(
        self,
        files: dict[str, str | bytes | None],
        *,
        parent: str | None = None,
        branch: str | None = None,
        message: str = "change",
        author: tuple[str, str | None] | None = None,
    ) -> str:
        """Commit ``files`` on top of ``parent`` and return the new commit's SHA.

        ``parent`` is a SHA or branch; without it, the tip of ``branch`` if that exists, else the
        tip of the default branch (so a new feature branch starts from main), else nothing (the
        first commit). ``files`` are changes: a ``None`` content deletes the path, unnamed paths
        are kept. The branch, when given, moves to the new commit and open pull requests whose
        head is that branch follow it (like a push). ``author`` is (e-mail, GitHub login or None).
        """
        if parent:
            parent_sha: str | None = self.resolve(parent)
        else:
            parent_sha = self.branches.get(branch or "") or self.branches.get(self.default_branch)
        tree = dict(self.commits[parent_sha].files) if parent_sha else {}
        for path, content in files.items():
            path = path.strip("/")
            if content is None:
                tree.pop(path, None)
                continue
            data = _as_bytes(content)
            sha = git_blob_sha(data)
            self.blobs[sha] = data
            tree[path] = sha
        listing = "\n".join(f"{p} {s}" for p, s in sorted(tree.items()))
        tree_sha = hashlib.sha1(f"tree\n{listing}".encode()).hexdigest()
        sha = hashlib.sha1(
            f"commit {tree_sha} {parent_sha} {message} {next(self.fake._ids)}".encode()
        ).hexdigest()
        self.commits[sha] = FakeCommit(sha, tree, parent_sha, message, tree_sha, *(author or ()))
        if branch:
            self.branches[branch] = sha
            for pull in self.pulls.values():
                if pull.state == "open" and pull.head_ref == branch:
                    pull.head_sha = sha
        return sha

    def push(self, branch: str, files: dict[str, str | bytes | None], message: str = "push") -> str:
        return self.commit(files, branch=branch, message=message)

    def open_pull_request(
        self,
        *,
        base: str | None = None,
        head: str,
        author: str = "octocat",
        title: str = "Change the warehouse",
        body: str = "",
        number: int | None = None,
        draft: bool = False,
        head_repo: str | None = None,
    ) -> FakePull:
        """Open a PR from branch ``head`` into ``base`` (default branch); ``head_repo`` names a fork."""
        base = base or self.default_branch
        number = number or next(self.fake._numbers)
        pull = FakePull(
            number=number,
            title=title,
            author=author,
            base_ref=base,
            head_ref=head,
            base_sha=self.resolve(base),
            head_sha=self.resolve(head),
            head_repo=head_repo or self.full_name,
            body=body,
            draft=draft,
            id=next(self.fake._ids),
        )
        self.pulls[number] = pull
        return pull

    def merge(self, pull: FakePull, *, message: str | None = None) -> str:
        """Merge the PR into its base branch (the PR's changes applied to the base tip); returns the SHA."""
        merge_base = self.merge_base(self.resolve(pull.base_ref), pull.head_sha) or pull.base_sha
        before, after = self.commits[merge_base].files, self.commits[pull.head_sha].files
        changes: dict[str, str | bytes | None] = {p: None for p in before if p not in after}
        changes.update({p: self.blobs[sha] for p, sha in after.items() if before.get(p) != sha})
        sha = self.commit(
            changes, branch=pull.base_ref, message=message or f"Merge pull request #{pull.number}"
        )
        pull.state, pull.merged, pull.merge_commit_sha = "closed", True, sha
        return sha

    def close(self, pull: FakePull) -> None:
        pull.state = "closed"

    def set_permission(self, username: str, permission: str) -> None:
        """``admin`` / ``maintain`` / ``write`` / ``triage`` / ``read`` on this repository."""
        self.permissions[username] = permission

    def add_comment(
        self, number: int, body: str, user: str = "octocat", user_type: str = "User"
    ) -> FakeComment:
        """A comment written by a person (or another bot) in the PR's conversation."""
        return self.fake._add_comment(self.full_name, number, body, user, user_type)

    # -- reading state

    def resolve(self, ref: str) -> str:
        """A commit SHA from a branch name, a full SHA or a unique SHA prefix (KeyError if unknown)."""
        ref = ref.removeprefix("refs/heads/")
        if ref in self.branches:
            return self.branches[ref]
        if ref in self.commits:
            return ref
        matches = [sha for sha in self.commits if len(ref) >= 7 and sha.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        raise KeyError(ref)

    def files_at(self, ref: str) -> dict[str, bytes]:
        return {path: self.blobs[sha] for path, sha in self.commits[self.resolve(ref)].files.items()}

    def comments(self, number: int) -> list[FakeComment]:
        return [
            c for c in self.fake.comments.values() if c.repo == self.full_name and c.issue_number == number
        ]

    def bot_comments(self, number: int) -> list[FakeComment]:
        return [c for c in self.comments(number) if c.user == self.fake.bot_login]

    def check_runs(self, *, head_sha: str | None = None, name: str | None = None) -> list[FakeCheckRun]:
        return [
            run
            for run in self.fake.check_runs.values()
            if run.repo == self.full_name
            and (head_sha is None or run.head_sha == head_sha)
            and (name is None or run.name == name)
        ]

    def check_run(self, name: str = "Tessera", head_sha: str | None = None) -> FakeCheckRun | None:
        """The latest check run of that name (on that SHA), or ``None`` when none was created."""
        runs = self.check_runs(head_sha=head_sha, name=name)
        return runs[-1] if runs else None

    def reactions(self, comment_id: int) -> list[FakeReaction]:
        return [r for r in self.fake.reactions if r.comment_id == comment_id]

    def changed_file(self, sha: str, path: str) -> bool:
        """Whether commit ``sha`` added, changed or deleted ``path`` (against its parent)."""
        commit = self.commits[sha]
        before = self.commits[commit.parent].files.get(path) if commit.parent else None
        return commit.files.get(path) != before

    def merge_base(self, base: str, head: str) -> str | None:
        ancestors = set(self._ancestry(base))
        return next((sha for sha in self._ancestry(head) if sha in ancestors), None)

    def _ancestry(self, sha: str | None) -> Iterable[str]:
        while sha:
            yield sha
            sha = self.commits[sha].parent

    def diff(self, base_sha: str, head_sha: str) -> list[dict[str, Any]]:
        """GitHub's file list between two commits: status, counts, patch, renames detected by blob.

        Commits never change, so each pair is computed once (a 3,000-file PR is read in 30 pages).
        """
        cached = self._diffs.get((base_sha, head_sha))
        if cached is None:
            cached = self._diffs[(base_sha, head_sha)] = self._compute_diff(base_sha, head_sha)
        return list(cached)

    def _compute_diff(self, base_sha: str, head_sha: str) -> list[dict[str, Any]]:
        before, after = self.commits[base_sha].files, self.commits[head_sha].files
        removed = {p: s for p, s in before.items() if p not in after}
        added = {p: s for p, s in after.items() if p not in before}
        renamed_from: dict[str, str] = {}
        by_sha = {s: p for p, s in removed.items()}
        for path, sha in added.items():
            if sha in by_sha:
                renamed_from[path] = by_sha.pop(sha)
        gone = set(renamed_from.values())
        entries: list[dict[str, Any]] = []
        for path in sorted(set(before) | set(after)):
            if path in gone:
                continue
            old, new = before.get(path), after.get(path)
            if old == new:
                continue
            if path in renamed_from:
                status, old = "renamed", before[renamed_from[path]]
            elif old is None:
                status = "added"
            elif new is None:
                status = "removed"
            else:
                status = "modified"
            entries.append(self._file_entry(path, status, old, new, head_sha, renamed_from.get(path)))
        return entries

    def _file_entry(
        self, path: str, status: str, old: str | None, new: str | None, head_sha: str, previous: str | None
    ) -> dict[str, Any]:
        old_text = self.blobs[old].decode("utf-8", "replace").splitlines() if old else []
        new_text = self.blobs[new].decode("utf-8", "replace").splitlines() if new else []
        patch_lines = list(difflib.unified_diff(old_text, new_text, lineterm="", n=3))[2:]
        additions = sum(1 for line in patch_lines if line.startswith("+"))
        deletions = sum(1 for line in patch_lines if line.startswith("-"))
        web = f"{self.fake.web_url}/{self.full_name}"
        entry: dict[str, Any] = {
            "sha": new or old,
            "filename": path,
            "status": status,
            "additions": additions,
            "deletions": deletions,
            "changes": additions + deletions,
            "blob_url": f"{web}/blob/{head_sha}/{path}",
            "raw_url": f"{web}/raw/{head_sha}/{path}",
            "contents_url": f"{self.fake.url}/repos/{self.full_name}/contents/{path}?ref={head_sha}",
        }
        if patch_lines:
            entry["patch"] = "\n".join(patch_lines)
        if previous:
            entry["previous_filename"] = previous
        return entry


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the App (JWT), an installation (token), or nobody."""

    kind: str  # "app" | "installation" | "user" | "anonymous"
    installation: FakeInstallation | None = None
    credential: str = ""


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: str  # "app" | "none" | the installation permission it needs, e.g. "contents:read"


def _compile(template: str) -> re.Pattern[str]:
    """``/repos/{owner}/{repo}/contents/{path}`` → a regex; ``{path}`` may hold slashes."""
    out = ""
    for literal, name in re.findall(r"([^{]*)(?:\{(\w+)\})?", template):
        out += re.escape(literal)
        if name:
            out += f"(?P<{name}>.+)" if name == "path" else f"(?P<{name}>[^/]+)"
    return re.compile(f"^{out}$")


class GitHubError(Exception):
    """Raised by a handler to answer with GitHub's error body."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


class FakeGitHub:
    """The fake GitHub server. ``await start()``, use :attr:`url` as the API URL, ``await stop()``."""

    def __init__(
        self,
        *,
        app_id: int = 4242,
        private_key_pem: str | None = None,
        app_slug: str = "tessera",
        clock: Clock = time.time,
        api_prefix: str = "",
        openapi: Path | None = None,
    ) -> None:
        self.app_id = app_id
        self.app_slug = app_slug
        self.bot_login = f"{app_slug}[bot]"
        self.clock = clock
        self.api_prefix = api_prefix.rstrip("/")
        self.public_key_pem = _public_key(private_key_pem) if private_key_pem else None
        self.app_private_key_pem = private_key_pem
        self.installations: dict[int, FakeInstallation] = {}
        self.repos: dict[str, FakeRepo] = {}
        self.teams: dict[
            tuple[str, str], dict[str, tuple[str, str]]
        ] = {}  # (org, slug) -> user -> (state, role)
        self.comments: dict[int, FakeComment] = {}
        self.reactions: list[FakeReaction] = []
        self.check_runs: dict[int, FakeCheckRun] = {}
        self.tokens: dict[str, tuple[int, float]] = {}  # token -> (installation id, expires epoch)
        self.manifest_codes: dict[str, dict[str, Any]] = {}
        self.codeload_tokens: dict[str, tuple[str, str]] = {}  # download token -> (repo, commit)
        self.downloads: list[str] = []  # archive downloads (not API calls)
        self.tarball_override: bytes | None = None  # a test's own (hostile) archive bytes
        self.hub_packages: dict[str, dict[str, str]] = {}  # "namespace/name" -> version -> tarball URL
        self.hub_requests: list[str] = []  # paths asked of the fake dbt hub
        self.manifests_posted: list[dict[str, Any]] = []  # (web) manifests a browser posted, with owner
        self.oauth_client_id = "Iv1.fakeclient"
        self.oauth_client_secret = "fake-client-secret"
        self.signed_in_as: str | None = None  # who the browser is signed in to GitHub as
        self.oauth_codes: dict[str, dict[str, str]] = {}
        self.user_tokens: dict[str, str] = {}  # user access token -> login
        self.org_roles: dict[tuple[str, str], str] = {}  # (org, user) -> "admin" | "member"
        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []
        self.rate_used: dict[str, int] = {}
        self.rate_window_start = 0.0
        self.rate_spent_elsewhere = 0
        """Requests every credential has already used in this window (``spend_rate_budget``)."""
        self._scripts: list[tuple[str, re.Pattern[str], list[ScriptedResponse]]] = []
        self._ids = itertools.count(1001)
        self._numbers = itertools.count(1)
        self._operations = _load_operations(openapi) if openapi is not None else []
        self._routes = self._build_routes()
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.web_url = ""

    # -- lifecycle

    async def start(self) -> FakeGitHub:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.web_url = f"http://127.0.0.1:{port}"
        self.url = self.web_url + self.api_prefix
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeGitHub:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- state set-up

    def add_installation(
        self,
        installation_id: int = 1,
        account: str = "acme",
        *,
        account_type: str = "Organization",
        repositories: str | list[str] = "all",
    ) -> FakeInstallation:
        installation = FakeInstallation(installation_id, account, account_type, repositories)
        self.installations[installation_id] = installation
        return installation

    def add_repo(
        self,
        full_name: str,
        *,
        installation_id: int | None = None,
        default_branch: str = "main",
        files: dict[str, str | bytes | None] | None = None,
        private: bool = True,
    ) -> FakeRepo:
        """A repository; with ``installation_id`` the installation is created if needed and covers it.

        ``files`` makes an initial commit on the default branch.
        """
        if installation_id is not None:
            owner = full_name.split("/", 1)[0]
            installation = self.installations.get(installation_id) or self.add_installation(
                installation_id, owner
            )
            if isinstance(installation.repositories, list) and full_name not in installation.repositories:
                installation.repositories.append(full_name)
        repo = FakeRepo(self, full_name, next(self._ids), default_branch, private)
        self.repos[full_name.lower()] = repo
        if files is not None:
            repo.commit(files, branch=default_branch, message="initial")
        return repo

    def repo(self, full_name: str) -> FakeRepo:
        return self.repos[full_name.lower()]

    def add_team_member(
        self, org: str, team_slug: str, username: str, *, state: str = "active", role: str = "member"
    ) -> None:
        self.teams.setdefault((org.lower(), team_slug.lower()), {})[username.lower()] = (state, role)

    def remove_team_member(self, org: str, team_slug: str, username: str) -> None:
        self.teams.get((org.lower(), team_slug.lower()), {}).pop(username.lower(), None)

    def spend_rate_budget(self, requests: int) -> None:
        """Start a rate-limit window now in which ``requests`` were already used (by other work of
        the installation): the next answers show that much less ``x-ratelimit-remaining``."""
        self.rate_window_start = float(int(self.clock()))
        self.rate_used.clear()
        self.rate_spent_elsewhere = requests

    def issue_token(self, installation_id: int, lifetime: float = TOKEN_LIFETIME) -> str:
        """An installation token without the JWT exchange (for tests of other routes)."""
        token = "ghs_" + secrets.token_hex(18)
        self.tokens[token] = (installation_id, self.clock() + lifetime)
        return token

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    def manifest_code(
        self,
        *,
        app_id: int | None = None,
        slug: str | None = None,
        pem: str | None = None,
        webhook_secret: str | None = None,
        manifest: dict[str, Any] | None = None,
    ) -> str:
        """A one-time code as GitHub puts in the manifest flow's redirect; converting it returns the App."""
        code = secrets.token_hex(10)
        answer = _template("apps.create-from-manifest")
        answer.update(
            id=app_id or self.app_id,
            slug=slug or self.app_slug,
            name=(manifest or {}).get("name", slug or self.app_slug),
            client_id=f"Iv1.{secrets.token_hex(8)}",
            client_secret=secrets.token_hex(20),
            webhook_secret=webhook_secret or secrets.token_hex(20),
            pem=pem or self.app_private_key_pem or answer["pem"],
        )
        if manifest:
            answer["permissions"] = manifest.get("default_permissions", answer["permissions"])
            answer["events"] = manifest.get("default_events", answer["events"])
            answer["manifest"] = manifest
        self.manifest_codes[code] = answer
        return code

    # -- webhook payloads that agree with this fake's state

    def _sender(self, login: str) -> dict[str, Any]:
        return self._user(login, "Bot" if login.endswith("[bot]") else "User")

    def _hook_installation(self, repo: FakeRepo) -> dict[str, Any]:
        installation = next((i for i in self.installations.values() if i.covers(repo.full_name)), None)
        if installation is None:
            raise KeyError(f"no installation covers {repo.full_name}")
        return {
            "id": installation.id,
            "node_id": base64.b64encode(f"Installation{installation.id}".encode()).decode(),
        }

    def event_pull_request(
        self,
        repo: FakeRepo,
        pull: FakePull,
        action: str = "opened",
        *,
        sender: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """A ``pull_request`` delivery for the PR as it is now (``synchronize``: pass ``before=``)."""
        payload = {
            "action": action,
            "number": pull.number,
            "pull_request": self._pull_json(repo, pull),
            "repository": self._repo_json(repo),
            "installation": self._hook_installation(repo),
            "sender": self._sender(sender or pull.author),
        }
        if action == "synchronize":
            payload.setdefault("after", pull.head_sha)
        payload.update(extra)
        return payload

    def event_issue_comment(
        self, repo: FakeRepo, comment: FakeComment, action: str = "created", **extra: Any
    ) -> dict[str, Any]:
        """An ``issue_comment`` delivery for a comment on a PR (``issue.pull_request`` is set)."""
        pull = repo.pulls[comment.issue_number]
        issue = {
            "id": pull.id,
            "number": pull.number,
            "title": pull.title,
            "state": pull.state,
            "user": self._user(pull.author),
            "body": pull.body,
            "url": f"{self.url}/repos/{repo.full_name}/issues/{pull.number}",
            "html_url": f"{self.web_url}/{repo.full_name}/pull/{pull.number}",
            "pull_request": {
                "url": f"{self.url}/repos/{repo.full_name}/pulls/{pull.number}",
                "html_url": f"{self.web_url}/{repo.full_name}/pull/{pull.number}",
            },
        }
        payload = {
            "action": action,
            "issue": issue,
            "comment": self._comment_json(comment),
            "repository": self._repo_json(repo),
            "installation": self._hook_installation(repo),
            "sender": self._user(comment.user, comment.user_type),
        }
        payload.update(extra)
        return payload

    def event_check_run(
        self,
        repo: FakeRepo,
        run: FakeCheckRun,
        action: str = "rerequested",
        *,
        sender: str = "octocat",
        identifier: str | None = None,
    ) -> dict[str, Any]:
        """A ``check_run`` delivery (``rerequested``, or ``requested_action`` with ``identifier``)."""
        payload: dict[str, Any] = {
            "action": action,
            "check_run": self._check_run_json(repo, run),
            "repository": self._repo_json(repo),
            "installation": self._hook_installation(repo),
            "sender": self._sender(sender),
        }
        if identifier is not None:
            payload["requested_action"] = {"identifier": identifier}
        return payload

    def event_push(
        self, repo: FakeRepo, branch: str, before: str, *, sender: str = "octocat"
    ) -> dict[str, Any]:
        """A ``push`` delivery for ``branch`` moving from ``before`` to its current tip."""
        after = repo.resolve(branch)
        commits = list(itertools.takewhile(lambda sha: sha != before, repo._ancestry(after)))[::-1]
        return {
            "ref": f"refs/heads/{branch}",
            "before": before,
            "after": after,
            "created": False,
            "deleted": False,
            "forced": False,
            "base_ref": None,
            "compare": f"{self.web_url}/{repo.full_name}/compare/{before[:12]}...{after[:12]}",
            "commits": [{"id": sha, "message": repo.commits[sha].message} for sha in commits],
            "head_commit": {"id": after, "message": repo.commits[after].message},
            "repository": {**self._repo_json(repo), "master_branch": repo.default_branch},
            "pusher": {"name": sender, "email": f"{sender}@example.com"},
            "installation": self._hook_installation(repo),
            "sender": self._sender(sender),
        }

    def event_installation(
        self, installation_id: int, action: str = "created", *, sender: str = "octocat"
    ) -> dict[str, Any]:
        """An ``installation`` delivery listing the repositories it covers now."""
        installation = self.installations[installation_id]
        repos = [
            {"id": r.id, "node_id": "", "name": r.name, "full_name": r.full_name, "private": r.private}
            for r in self.repos.values()
            if installation.covers(r.full_name)
        ]
        return {
            "action": action,
            "installation": self._installation_json(installation),
            "repositories": repos,
            "sender": self._sender(sender),
        }

    # -- fault injection

    def script(self, method: str, path: str, *responses: ScriptedResponse) -> None:
        """The next requests to ``method path`` get these answers, in order, before normal handling.

        ``path`` is the API path without the prefix, either concrete or a glob (``/repos/*/check-runs``).
        """
        pattern = re.compile(fnmatch.translate(path))
        self._scripts.append((method.upper(), pattern, list(responses)))

    def _scripted(self, method: str, path: str) -> ScriptedResponse | None:
        for script_method, pattern, queue in self._scripts:
            if queue and script_method == method and pattern.match(path):
                return queue.pop(0)
        return None

    # -- reading what happened

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        """Recorded requests whose method matches and whose path matches the glob ``path``."""
        pattern = re.compile(fnmatch.translate(path))
        return [r for r in self.requests if r.method == method.upper() and pattern.match(r.path)]

    def assert_no_violations(self) -> None:
        assert not self.violations, "requests GitHub's REST description does not allow:\n" + "\n".join(
            self.violations
        )

    # -- dispatch

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        method = request.method.upper()
        path = request.path
        if method == "POST" and _NEW_APP_PAGE.match(path):
            return await self._new_app_from_manifest(request)
        if method == "GET" and path.startswith(CODELOAD_PREFIX):
            return self._codeload(request)
        if method == "GET" and path.startswith(HUB_PREFIX + "/"):
            return self._hub(request)
        if method == "GET" and path == "/login/oauth/authorize":
            return self._oauth_authorize(request)
        if method == "POST" and path == "/login/oauth/access_token":
            return await self._oauth_access_token(request)
        if method == "GET" and (page := self._web_page(path)) is not None:
            return page
        if self.api_prefix and path.startswith(self.api_prefix + "/"):
            path = path[len(self.api_prefix) :]
        raw = await request.read()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                self.violations.append(f"{method} {path}: body is not JSON")
                return self._error(400, "Problems parsing JSON", credential="")
        request["body"] = body
        operation_id, validation = self._validate(method, path, dict(request.query), body)
        record = RecordedRequest(
            method=method,
            path=path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            json=body,
            operation_id=operation_id,
        )
        try:
            response = await self._answer(request, method, path, body, validation)
        except asyncio.CancelledError:
            self.requests.append(record)  # a dropped connection: status 0
            raise
        self.requests.append(RecordedRequest(**{**record.__dict__, "status": response.status}))
        return response

    async def _answer(
        self, request: web.Request, method: str, path: str, body: Any, validation: list[str]
    ) -> web.StreamResponse:
        scripted = self._scripted(method, path)
        if scripted is not None and scripted.after_handling:
            await self._handle(request, method, path, validation)
            headers = self._rate_headers("scripted")
            headers.update(dict(scripted.headers))
            return web.json_response(scripted.body, status=scripted.status, headers=headers)
        if scripted is not None:
            if scripted.delay:
                await asyncio.sleep(scripted.delay)
            if scripted.disconnect:
                if request.transport is not None:
                    request.transport.close()
                raise asyncio.CancelledError
            if scripted.status != 200 or scripted.body is not None:
                headers = self._rate_headers("scripted")
                headers.update(dict(scripted.headers))
                return web.json_response(scripted.body, status=scripted.status, headers=headers)
        return await self._handle(request, method, path, validation)

    async def _handle(
        self, request: web.Request, method: str, path: str, validation: list[str]
    ) -> web.StreamResponse:
        """The route's real answer (no scripted faults)."""
        for route in self._routes:
            if route.method != method:
                continue
            match = route.pattern.match(path)
            if not match:
                continue
            try:
                caller = self._authenticate(request, route.auth)
                self._authorize(caller, route.auth)
                if validation:
                    raise GitHubError(422, "Invalid request.\n\n" + "\n".join(validation))
                result = route.handler(request, match.groupdict(), caller)
                status, payload, extra = result if len(result) == 3 else (*result, {})
            except GitHubError as exc:
                credential = request.headers.get("authorization", "").partition(" ")[2]
                return self._error(exc.status, exc.message, exc.errors, credential=credential)
            headers = self._rate_headers(caller.credential)
            headers.update(extra)
            if payload is None:
                return web.Response(status=status, headers=headers)
            return web.json_response(payload, status=status, headers=headers)
        return self._error(404, "Not Found", credential="")

    def _error(
        self, status: int, message: str, errors: list[dict[str, Any]] | None = None, *, credential: str
    ) -> web.Response:
        payload: dict[str, Any] = {"message": message, "documentation_url": DOCS, "status": str(status)}
        if errors:
            payload["errors"] = errors
        return web.json_response(payload, status=status, headers=self._rate_headers(credential))

    def _rate_headers(self, credential: str) -> dict[str, str]:
        """GitHub's rate-limit headers; each credential has its own hourly window."""
        now = self.clock()
        if now >= self.rate_window_start + 3600:
            self.rate_window_start = float(int(now))  # GitHub's reset is a whole second
            self.rate_used.clear()
            self.rate_spent_elsewhere = 0
        limit = INSTALLATION_RATE_LIMIT if credential else UNAUTHENTICATED_RATE_LIMIT
        own = self.rate_used.get(credential, 0) + 1
        self.rate_used[credential] = own
        used = own + (self.rate_spent_elsewhere if credential else 0)
        return {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(max(limit - used, 0)),
            "x-ratelimit-reset": str(int(self.rate_window_start + 3600)),
            "x-ratelimit-used": str(used),
            "x-ratelimit-resource": "core",
            "x-github-request-id": secrets.token_hex(8).upper(),
        }

    def _authenticate(self, request: web.Request, auth: str) -> Caller:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        if auth == "none":
            return Caller("anonymous", credential=credential)
        if not credential:
            raise GitHubError(401, "Requires authentication")
        if auth == "user":
            if credential not in self.user_tokens or scheme.lower() not in ("token", "bearer"):
                raise GitHubError(401, "Bad credentials")
            return Caller("user", credential=credential)
        if auth == "app":
            if scheme.lower() != "bearer":
                raise GitHubError(401, "A JSON web token could not be decoded")
            self._verify_jwt(credential)
            return Caller("app", credential=credential)
        installation_id, expires = self.tokens.get(credential, (None, 0.0))
        if installation_id is None or expires <= self.clock() or scheme.lower() not in ("token", "bearer"):
            raise GitHubError(401, "Bad credentials")
        return Caller("installation", self.installations.get(installation_id), credential)

    def _authorize(self, caller: Caller, auth: str) -> None:
        """403 like GitHub when the installation lacks the permission the endpoint needs."""
        if caller.kind != "installation" or ":" not in auth:
            return
        names, _, level = auth.partition(":")
        granted = caller.installation.permissions if caller.installation else {}
        rank = {"read": 1, "write": 2, "admin": 3}
        if not any(rank.get(granted.get(name, ""), 0) >= rank[level] for name in names.split("|")):
            raise GitHubError(403, "Resource not accessible by integration")

    def _verify_jwt(self, token: str) -> None:
        """GitHub's App JWT rules: RS256 by the App's key, ``iss`` the App id, ``iat`` past, ``exp`` ≤ 10 min."""
        if self.public_key_pem is None:
            raise GitHubError(500, "the fake has no App key: pass private_key_pem")
        try:
            claims = jwt.decode(
                token,
                self.public_key_pem,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_iss": False},
            )
        except jwt.PyJWTError as exc:
            raise GitHubError(401, f"A JSON web token could not be decoded ({exc})") from exc
        now = self.clock()
        if str(claims.get("iss")) != str(self.app_id):
            raise GitHubError(401, f"Integration not found (iss {claims.get('iss')!r})")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or iat > now + 1:
            raise GitHubError(
                401,
                "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
            )
        if not isinstance(exp, int) or exp <= now:
            raise GitHubError(
                401,
                "'Expiration time' claim ('exp') must be a numeric value representing the future time at which "
                "the assertion expires",
            )
        if exp - now > 600 + 1 or exp - iat > 660:
            raise GitHubError(401, "'Expiration time' claim ('exp') is too far in the future")

    # -- validation against GitHub's REST description

    def _validate(
        self, method: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[str | None, list[str]]:
        """Match the request to a documented operation and check its query and body; record violations.

        Without a REST description (the demo) every request passes unchecked.
        """
        if not self._operations:
            return None, []
        for operation in self._operations:
            if operation["method"] != method or not operation["regex"].match(path):
                continue
            problems: list[str] = []
            declared = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
            for name, value in query.items():
                if name not in declared:
                    problems.append(f"query parameter {name!r} is not documented")
                    continue
                schema = declared[name]["schema"]
                if schema.get("type") == "integer" and not value.lstrip("-").isdigit():
                    problems.append(f"query parameter {name}={value!r} is not an integer")
                elif "enum" in schema and value not in [str(v) for v in schema["enum"]]:
                    problems.append(f"query parameter {name}={value!r} not in {schema['enum']}")
            request_body = operation["requestBody"]
            if request_body is None:
                if body not in (None, {}, ""):
                    problems.append("the operation takes no request body")
            elif body is None:
                if request_body["required"]:
                    problems.append("request body is required")
            else:
                validator = jsonschema.Draft7Validator(request_body["schema"])
                for error in sorted(validator.iter_errors(body), key=lambda e: list(e.path)):
                    where = "/".join(str(p) for p in error.path) or "(body)"
                    message = (
                        error.message
                        if len(error.message) <= 240
                        else f"{error.message[:120]}…{error.message[-120:]}"
                    )
                    problems.append(f"{where}: {message}")
            for problem in problems:
                self.violations.append(f"{method} {path} ({operation['operationId']}): {problem}")
            return operation["operationId"], problems
        self.violations.append(f"{method} {path}: no such operation in GitHub's REST description subset")
        return None, []

    # -- the web side of the manifest flow (github.com, not the API)

    async def _new_app_from_manifest(self, request: web.Request) -> web.StreamResponse:
        """``POST /settings/apps/new`` (or an organisation's): GitHub shows a confirmation page, then
        redirects to the manifest's ``redirect_url`` with a one-time ``code`` and the ``state``.
        The fake confirms at once and answers with that redirect."""
        form = await request.post()
        match = _NEW_APP_PAGE.match(request.path)
        org = match.group("org") if match else None
        try:
            manifest = json.loads(str(form.get("manifest", "")))
        except ValueError:
            return web.Response(status=422, text="Invalid GitHub App configuration: manifest is not JSON")
        problems = [key for key in ("url",) if not isinstance(manifest, dict) or not manifest.get(key)]
        hook = manifest.get("hook_attributes") if isinstance(manifest, dict) else None
        if isinstance(hook, dict) and hook.get("active", True) and not hook.get("url"):
            problems.append("hook_attributes.url")
        redirect = manifest.get("redirect_url") if isinstance(manifest, dict) else None
        if not redirect:
            problems.append("redirect_url")
        if problems:
            return web.Response(
                status=422, text=f"Invalid GitHub App configuration: missing {', '.join(problems)}"
            )
        self.manifests_posted.append({"org": org, "state": request.query.get("state"), "manifest": manifest})
        code = self.manifest_code(
            manifest=manifest,
            slug=re.sub(r"[^a-z0-9]+", "-", str(manifest.get("name", self.app_slug)).lower()).strip("-"),
        )
        query = {"code": code}
        if request.query.get("state") is not None:
            query["state"] = request.query["state"]
        target = URL(str(redirect)).update_query(query)
        raise web.HTTPFound(str(target))

    # -- the web side of signing in (github.com/login/oauth/*, not the API)

    def set_org_role(self, org: str, username: str, role: str = "member") -> None:
        """``username`` is an active member of ``org``; role ``admin`` makes them an owner."""
        self.org_roles[(org.lower(), username.lower())] = role

    def _org_membership(self, request: web.Request, params: dict[str, str], caller: Caller) -> tuple[int, Any]:
        role = self.org_roles.get((params["org"].lower(), params["user"].lower()))
        if role is None:
            raise GitHubError(404, "Not Found")
        return 200, {"state": "active", "role": role, "organization_url": f"{self.url}/orgs/{params['org']}",
                     "user": self._user(params["user"])}

    def _web_page(self, path: str) -> web.Response | None:
        """github.com's page of a pull request or of a repository's pull requests (None: not one)."""
        if match := github_pages.PULL_PAGE.match(path):
            repo = self.repos.get(f"{match['owner']}/{match['repo']}".lower())
            pull = repo.pulls.get(int(match["number"])) if repo else None
            if repo is None or pull is None:
                return None
            page = github_pages.pull_page(repo.full_name, pull, repo.check_runs(head_sha=pull.head_sha),
                                          repo.comments(pull.number), self.signed_in_as)
            return web.Response(text=page, content_type="text/html")
        if match := github_pages.PULLS_PAGE.match(path):
            repo = self.repos.get(f"{match['owner']}/{match['repo']}".lower())
            if repo is None:
                return None
            pulls = [(pull, repo.check_run("Tessera", head_sha=pull.head_sha)) for pull in repo.pulls.values()]
            return web.Response(text=github_pages.pulls_page(repo.full_name, pulls, self.signed_in_as),
                                content_type="text/html")
        return None

    def sign_in_as(self, login: str | None) -> None:
        """The browser is signed in to GitHub as ``login`` (None: nobody, authorize refuses)."""
        self.signed_in_as = login

    def _oauth_authorize(self, request: web.Request) -> web.StreamResponse:
        """GitHub asks the signed-in person to authorize, then redirects back with a code and the
        ``state``. The fake authorizes at once for :attr:`signed_in_as`."""
        query = request.query
        if query.get("client_id") != self.oauth_client_id:
            return web.Response(status=404, text="Not Found (unknown client_id)")
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return web.Response(status=400, text="PKCE with code_challenge_method=S256 is required")
        redirect = query.get("redirect_uri", "")
        if not redirect.startswith(("http://", "https://")):
            return web.Response(status=400, text="redirect_uri is required")
        if self.signed_in_as is None:
            return web.Response(status=401, text="Sign in to GitHub to continue")
        code = secrets.token_hex(10)
        self.oauth_codes[code] = {
            "login": self.signed_in_as,
            "redirect_uri": redirect,
            "challenge": query["code_challenge"],
        }
        back = {"code": code}
        if "state" in query:
            back["state"] = query["state"]
        raise web.HTTPFound(str(URL(redirect).update_query(back)))

    async def _oauth_access_token(self, request: web.Request) -> web.StreamResponse:
        """Trade a code for a user token, as GitHub does: an error is a 200 with ``error`` set."""
        form = await request.post()
        code = self.oauth_codes.pop(str(form.get("code", "")), None)

        def refuse(error: str) -> web.Response:
            return web.json_response({"error": error, "error_description": error.replace("_", " ")})

        if form.get("client_id") != self.oauth_client_id or form.get("client_secret") != self.oauth_client_secret:
            return refuse("incorrect_client_credentials")
        if code is None:
            return refuse("bad_verification_code")
        if form.get("redirect_uri") not in (None, code["redirect_uri"]):
            return refuse("redirect_uri_mismatch")
        verifier = str(form.get("code_verifier", ""))
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not verifier or digest != code["challenge"]:
            return refuse("bad_verification_code")
        token = "ghu_" + secrets.token_hex(18)
        self.user_tokens[token] = code["login"]
        return web.json_response({"access_token": token, "token_type": "bearer", "scope": ""})

    def _authenticated_user(self, request: web.Request, params: dict[str, str], caller: Caller) -> tuple[int, Any]:
        return 200, self._user(self.user_tokens[caller.credential])

    # -- routes

    def _build_routes(self) -> list[_Route]:
        """Every route, who may call it, and the installation permission it needs (as GitHub documents:
        ``contents:read``; ``a|b:write`` when either permission will do)."""
        table: list[tuple[str, str, Handler, str]] = [
            ("POST", "/app/installations/{installation_id}/access_tokens", self._create_token, "app"),
            ("GET", "/app/installations/{installation_id}", self._get_installation, "app"),
            ("POST", "/app-manifests/{code}/conversions", self._convert_manifest, "none"),
            ("GET", "/installation/repositories", self._installation_repos, "metadata:read"),
            ("GET", "/repos/{owner}/{repo}", self._get_repo, "metadata:read"),
            ("GET", "/repos/{owner}/{repo}/pulls/{number}", self._get_pull, "pull_requests:read"),
            (
                "GET",
                "/repos/{owner}/{repo}/pulls/{pull_number}/commits",
                self._list_pull_commits,
                "pull_requests:read",
            ),
            (
                "GET",
                "/repos/{owner}/{repo}/pulls/{number}/files",
                self._list_pull_files,
                "pull_requests:read",
            ),
            ("GET", "/repos/{owner}/{repo}/contents/{path}", self._get_content, "contents:read"),
            ("GET", "/repos/{owner}/{repo}/git/trees/{sha}", self._get_tree, "contents:read"),
            ("GET", "/repos/{owner}/{repo}/git/blobs/{sha}", self._get_blob, "contents:read"),
            ("GET", "/repos/{owner}/{repo}/compare/{basehead}", self._compare, "contents:read"),
            ("GET", "/repos/{owner}/{repo}/tarball/{ref}", self._tarball, "contents:read"),
            ("POST", "/repos/{owner}/{repo}/check-runs", self._create_check_run, "checks:write"),
            ("PATCH", "/repos/{owner}/{repo}/check-runs/{id}", self._update_check_run, "checks:write"),
            ("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs", self._list_check_runs, "checks:read"),
            ("GET", "/repos/{owner}/{repo}/commits", self._list_commits, "contents:read"),
            (
                "GET",
                "/repos/{owner}/{repo}/issues/{number}/comments",
                self._list_comments,
                "issues|pull_requests:read",
            ),
            (
                "POST",
                "/repos/{owner}/{repo}/issues/{number}/comments",
                self._create_comment,
                "issues|pull_requests:write",
            ),
            (
                "GET",
                "/repos/{owner}/{repo}/issues/comments/{id}",
                self._get_comment,
                "issues|pull_requests:read",
            ),
            (
                "PATCH",
                "/repos/{owner}/{repo}/issues/comments/{id}",
                self._update_comment,
                "issues|pull_requests:write",
            ),
            (
                "POST",
                "/repos/{owner}/{repo}/issues/comments/{id}/reactions",
                self._create_reaction,
                "issues|pull_requests:write",
            ),
            ("GET", "/orgs/{org}/teams/{team}/memberships/{user}", self._team_membership, "members:read"),
            ("GET", "/user", self._authenticated_user, "user"),
            ("GET", "/orgs/{org}/memberships/{user}", self._org_membership, "members:read"),
            ("GET", "/orgs/{org}/teams/{team}/members", self._team_members, "members:read"),
            (
                "GET",
                "/repos/{owner}/{repo}/collaborators/{user}/permission",
                self._permission,
                "metadata:read",
            ),
        ]
        return [_Route(m, _compile(t), h, a) for m, t, h, a in table]

    def _now(self) -> str:
        return _iso(self.clock())

    def _repo_for(self, params: dict[str, str], caller: Caller) -> FakeRepo:
        repo = self.repos.get(f"{params['owner']}/{params['repo']}".lower())
        if repo is None or caller.installation is None or not caller.installation.covers(repo.full_name):
            raise GitHubError(404, "Not Found")
        return repo

    def _page(self, request: web.Request, items: list[Any]) -> tuple[int, list[Any], dict[str, str]]:
        """One page of ``items`` with GitHub's ``Link`` header (``per_page`` ≤ 100, default 30)."""
        try:
            per_page = min(max(int(request.query.get("per_page", 30)), 1), 100)
        except ValueError:
            per_page = 30
        try:
            page = max(int(request.query.get("page", 1)), 1)
        except ValueError:
            page = 1
        last = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page : page * per_page]
        links = []

        def link(n: int, rel: str) -> str:
            return f'<{request.url.update_query(page=str(n))}>; rel="{rel}"'

        if page > 1:
            links += [link(page - 1, "prev"), link(1, "first")]
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        return 200, chunk, ({"link": ", ".join(links)} if links else {})

    def _user(self, login: str, user_type: str = "User") -> dict[str, Any]:
        number = int(hashlib.sha1(login.encode()).hexdigest()[:6], 16)
        return {
            "login": login,
            "id": number,
            "node_id": base64.b64encode(f"04:User{number}".encode()).decode(),
            "avatar_url": f"{self.web_url}/avatars/{login}",
            "url": f"{self.url}/users/{login}",
            "html_url": f"{self.web_url}/{login}",
            "type": user_type,
            "site_admin": False,
        }

    def _repo_json(self, repo: FakeRepo) -> dict[str, Any]:
        payload = _template("repos.get")
        payload.update(
            id=repo.id,
            name=repo.name,
            full_name=repo.full_name,
            owner=self._user(repo.owner, "Organization"),
            private=repo.private,
            default_branch=repo.default_branch,
            url=f"{self.url}/repos/{repo.full_name}",
            html_url=f"{self.web_url}/{repo.full_name}",
        )
        return payload

    # apps

    def _create_token(self, request: web.Request, params: dict[str, str], caller: Caller) -> tuple[int, Any]:
        installation = self.installations.get(int(params["installation_id"]))
        if installation is None:
            raise GitHubError(404, "Not Found")
        if installation.suspended:
            raise GitHubError(403, "This installation has been suspended")
        token = self.issue_token(installation.id)
        payload = {
            "token": token,
            "expires_at": _iso(self.tokens[token][1]),
            "permissions": dict(installation.permissions),
            "repository_selection": "all" if installation.repositories == "all" else "selected",
        }
        return 201, payload

    def _installation_json(self, installation: FakeInstallation) -> dict[str, Any]:
        payload = _template("apps.get-installation")
        payload.update(
            id=installation.id,
            account=self._user(installation.account, installation.account_type),
            app_id=self.app_id,
            app_slug=self.app_slug,
            target_type=installation.account_type,
            repository_selection="all" if installation.repositories == "all" else "selected",
            permissions=dict(installation.permissions),
            access_tokens_url=f"{self.url}/app/installations/{installation.id}/access_tokens",
            suspended_at=self._now() if installation.suspended else None,
        )
        return payload

    def _get_installation(
        self, request: web.Request, params: dict[str, str], caller: Caller
    ) -> tuple[int, Any]:
        installation = self.installations.get(int(params["installation_id"]))
        if installation is None:
            raise GitHubError(404, "Not Found")
        return 200, self._installation_json(installation)

    def _convert_manifest(
        self, request: web.Request, params: dict[str, str], caller: Caller
    ) -> tuple[int, Any]:
        answer = self.manifest_codes.pop(params["code"], None)  # a code works once
        if answer is None:
            raise GitHubError(404, "Not Found")
        return 201, answer

    def _installation_repos(self, request: web.Request, params: dict[str, str], caller: Caller) -> Any:
        assert caller.installation is not None
        repos = [self._repo_json(r) for r in self.repos.values() if caller.installation.covers(r.full_name)]
        status, chunk, headers = self._page(request, repos)
        return status, {"total_count": len(repos), "repositories": chunk}, headers

    # repositories, pulls, contents

    def _get_repo(self, request: web.Request, params: dict[str, str], caller: Caller) -> tuple[int, Any]:
        return 200, self._repo_json(self._repo_for(params, caller))

    def _pull(self, repo: FakeRepo, number: str) -> FakePull:
        pull = repo.pulls.get(int(number)) if number.isdigit() else None
        if pull is None:
            raise GitHubError(404, "Not Found")
        return pull

    def _pull_json(self, repo: FakeRepo, pull: FakePull) -> dict[str, Any]:
        payload = _template("pulls.get")
        head_repo = self.repos.get(pull.head_repo.lower())
        head_repo_json = (
            self._repo_json(head_repo)
            if head_repo
            else {
                **self._repo_json(repo),
                "full_name": pull.head_repo,
                "name": pull.head_repo.split("/")[1],
                "owner": self._user(pull.head_repo.split("/")[0]),
                "fork": True,
            }
        )
        files = repo.diff(repo.merge_base(pull.base_sha, pull.head_sha) or pull.base_sha, pull.head_sha)
        payload.update(
            id=pull.id,
            number=pull.number,
            state=pull.state,
            title=pull.title,
            body=pull.body,
            draft=pull.draft,
            merged=pull.merged,
            locked=False,
            user=self._user(pull.author),
            url=f"{self.url}/repos/{repo.full_name}/pulls/{pull.number}",
            html_url=f"{self.web_url}/{repo.full_name}/pull/{pull.number}",
            head={
                "label": f"{pull.head_repo.split('/')[0]}:{pull.head_ref}",
                "ref": pull.head_ref,
                "sha": pull.head_sha,
                "user": self._user(pull.head_repo.split("/")[0]),
                "repo": head_repo_json,
            },
            base={
                "label": f"{repo.owner}:{pull.base_ref}",
                "ref": pull.base_ref,
                "sha": pull.base_sha,
                "user": self._user(repo.owner, "Organization"),
                "repo": self._repo_json(repo),
            },
            changed_files=len(files),
            additions=sum(f["additions"] for f in files),
            deletions=sum(f["deletions"] for f in files),
            commits=1,
        )
        payload.update(  # the example's people and labels are not this PR's
            assignee=None,
            assignees=[],
            requested_reviewers=[],
            requested_teams=[],
            labels=[],
            milestone=None,
            merged_by=self._user(repo.owner) if pull.merged else None,
            merged_at=self._now() if pull.merged else None,
            closed_at=self._now() if pull.state == "closed" else None,
            auto_merge=None,
            merge_commit_sha=pull.merge_commit_sha,
            mergeable=None,
            mergeable_state="unknown",
        )
        return payload

    def _get_pull(self, request: web.Request, params: dict[str, str], caller: Caller) -> tuple[int, Any]:
        repo = self._repo_for(params, caller)
        return 200, self._pull_json(repo, self._pull(repo, params["number"]))

    def _list_pull_files(self, request: web.Request, params: dict[str, str], caller: Caller) -> Any:
        repo = self._repo_for(params, caller)
        pull = self._pull(repo, params["number"])
        base = repo.merge_base(pull.base_sha, pull.head_sha) or pull.base_sha
        return self._page(request, repo.diff(base, pull.head_sha)[:MAX_PR_FILES])

    def _resolve(self, repo: FakeRepo, ref: str | None) -> FakeCommit:
        try:
            return repo.commits[repo.resolve(ref or repo.default_branch)]
        except KeyError:
            raise GitHubError(404, f"No commit found for the ref {ref}") from None

    def _content_entry(
        self, repo: FakeRepo, path: str, sha: str, ref: str, with_content: bool
    ) -> dict[str, Any]:
        data = repo.blobs[sha]
        entry: dict[str, Any] = {
            "type": "file",
            "size": len(data),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "url": f"{self.url}/repos/{repo.full_name}/contents/{path}?ref={ref}",
            "git_url": f"{self.url}/repos/{repo.full_name}/git/blobs/{sha}",
            "html_url": f"{self.web_url}/{repo.full_name}/blob/{ref}/{path}",
            "download_url": f"{self.web_url}/{repo.full_name}/raw/{ref}/{path}",
        }
        if with_content:
            too_big = len(data) > CONTENTS_SIZE_LIMIT
            entry["content"] = "" if too_big else _b64(data)
            entry["encoding"] = "none" if too_big else "base64"
        return entry

    def _get_content(self, request: web.Request, params: dict[str, str], caller: Caller) -> tuple[int, Any]:
        repo = self._repo_for(params, caller)
        ref = request.query.get("ref") or repo.default_branch
        commit = self._resolve(repo, ref)
        path = params["path"].strip("/")
        if path in commit.files:
            return 200, self._content_entry(repo, path, commit.files[path], ref, with_content=True)
        prefix = path + "/"
        children: dict[str, dict[str, Any]] = {}
        for file_path, sha in sorted(commit.files.items()):
            if not file_path.startswith(prefix):
                continue
            rest = file_path[len(prefix) :]
            if "/" in rest:
                name = rest.split("/", 1)[0]
                children.setdefault(
                    name, {"type": "dir", "name": name, "path": prefix + name, "sha": "", "size": 0}
                )
            else:
                children[rest] = self._content_entry(repo, file_path, sha, ref, with_content=False)
        if not children:
            raise GitHubError(404, "Not Found")
        return 200, list(children.values())

    def _get_tree(self, request: web.Request, params: dict[str, str], caller: Caller) -> tuple[int, Any]:
        repo = self._repo_for(params, caller)
        sha = params["sha"]
        commit = next((c for c in repo.commits.values() if c.tree_sha == sha), None) or self._resolve(
            repo, sha
        )
        recursive = request.query.get("recursive") not in (None, "", "0", "false")
        entries: dict[str, dict[str, Any]] = {}
        for path, blob in sorted(commit.files.items()):
            parts = path.split("/")
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                if (recursive or depth == 1) and directory not in entries:
                    tree_sha = hashlib.sha1(f"{commit.tree_sha}:{directory}".encode()).hexdigest()
                    entries[directory] = {
                        "path": directory,
                        "mode": "040000",
                        "type": "tree",
                        "sha": tree_sha,
                        "url": f"{self.url}/repos/{repo.full_name}/git/trees/{tree_sha}",
                    }
            if recursive or len(parts) == 1:
                entries[path] = {
                    "path": path,
                    "mode": "100644",
                    "type": "blob",
                    "sha": blob,
                    "size": len(repo.blobs[blob]),
                    "url": f"{self.url}/repos/{repo.full_name}/git/blobs/{blob}",
                }
        payload = {
            "sha": commit.tree_sha,
            "url": f"{self.url}/repos/{repo.full_name}/git/trees/{commit.tree_sha}",
            "tree": [entries[k] for k in sorted(entries)][: repo.tree_limit],
            "truncated": len(entries) > repo.tree_limit,
        }
        return 200, payload

    def _get_blob(self, request: web.Request, params: dict[str, str], caller: Caller) -> tuple[int, Any]:
        repo = self._repo_for(params, caller)
        data = repo.blobs.get(params["sha"])
        if data is None:
            raise GitHubError(404, "Not Found")
        payload = {
            "sha": params["sha"],
            "node_id": base64.b64encode(f"04:Blob{params['sha']}".encode()).decode(),
            "size": len(data),
            "url": f"{self.url}/repos/{repo.full_name}/git/blobs/{params['sha']}",
            "content": _b64(data),
            "encoding": "base64",
        }
        return 200, payload

    def _tarball(self, request: web.Request, params: dict[str, str], caller: Caller) -> tuple[int, Any, dict[str, str]]:
        """GitHub answers 302 to a short-lived codeload URL with its own token; the fake serves that
        URL on another host name (``localhost`` instead of ``127.0.0.1``), so a client that forwards
        its Authorization header across hosts is caught. A public repository's archive is
        served to any installation, as on GitHub (a dbt package's code)."""
        public = self.repos.get(f"{params['owner']}/{params['repo']}".lower())
        repo = public if public is not None and not public.private else self._repo_for(params, caller)
        commit = self._resolve(repo, params["ref"])
        token = secrets.token_urlsafe(12)
        self.codeload_tokens[token] = (repo.full_name, commit.sha)
        port = URL(self.web_url).port
        owner, name = repo.full_name.split("/")
        location = f"http://localhost:{port}{CODELOAD_PREFIX}{owner}/{name}/legacy.tar.gz/{commit.sha}?token={token}"
        return 302, None, {"location": location}

    def _codeload(self, request: web.Request) -> web.Response:
        """The archive download: no API call, no rate limit, authorised by the URL's token alone."""
        token = request.query.get("token", "")
        public = re.fullmatch(CODELOAD_PREFIX + r"([^/]+)/([^/]+)/tar\.gz/(.+)", request.path)
        if not token and public is not None:  # codeload serves public repositories to anyone
            self.downloads.append(request.path)
            repo = self.repos.get(f"{public[1]}/{public[2]}".lower())
            try:
                sha = repo.resolve(public[3]) if repo is not None and not repo.private else None
            except KeyError:
                sha = None
            if repo is None or sha is None:
                return web.Response(status=404, text="Not Found")
            return web.Response(body=tarball(repo, sha), content_type="application/x-gzip")
        if request.headers.get("authorization"):
            self.violations.append(f"GET {request.path}: the API's Authorization header was sent to the download host")
        found = self.codeload_tokens.get(token)
        self.downloads.append(request.path)
        if found is None:
            return web.Response(status=404, text="Not Found")
        full_name, sha = found
        repo = self.repo(full_name)
        if self.tarball_override is not None:
            return web.Response(body=self.tarball_override, content_type="application/x-gzip")
        return web.Response(body=tarball(repo, sha), content_type="application/x-gzip")

    @property
    def codeload_url(self) -> str:
        """Where the fake serves public repositories' tarballs as codeload does (``/<owner>/<repo>/tar.gz/<ref>``)."""
        return self.web_url + CODELOAD_PREFIX.rstrip("/")

    @property
    def hub_url(self) -> str:
        """The base URL of the fake dbt package hub (``TESSERA_DBT_HUB_URL`` in tests)."""
        return self.web_url + HUB_PREFIX

    def publish_package(
        self, hub_name: str, version: str, repo: FakeRepo | None, ref: str = "", *, tarball_url: str | None = None
    ) -> None:
        """List ``hub_name`` (``namespace/name``) at ``version`` on the fake hub, its code being
        ``repo`` at ``ref`` (a branch or commit of the fake), as the real hub points at GitHub;
        or any ``tarball_url`` a test wants the hub to answer with."""
        where = tarball_url or f"https://codeload.github.com/{repo.full_name if repo else ''}/tar.gz/{ref}"
        self.hub_packages.setdefault(hub_name, {})[version] = where

    def _hub(self, request: web.Request) -> web.Response:
        """dbt hub's package index: versions, each with the codeload tarball of its GitHub tag."""
        self.hub_requests.append(request.path)
        match = re.fullmatch(HUB_PREFIX + r"/api/v1/([^/]+)/([^/]+)\.json", request.path)
        versions = self.hub_packages.get(f"{match[1]}/{match[2]}") if match else None
        if match is None or versions is None:
            return web.Response(status=404, text="Not Found")
        answer = {
            "name": match[2],
            "namespace": match[1],
            "latest": max(versions),
            "versions": {
                version: {
                    "name": match[2],
                    "version": version,
                    "downloads": {"tarball": where, "format": "tgz"},
                }
                for version, where in versions.items()
            },
        }
        return web.json_response(answer)

    def _compare(self, request: web.Request, params: dict[str, str], caller: Caller) -> Any:
        repo = self._repo_for(params, caller)
        base_ref, sep, head_ref = params["basehead"].partition("...")
        if not sep:
            raise GitHubError(404, "Not Found")
        base, head = self._resolve(repo, base_ref), self._resolve(repo, head_ref)
        merge_base = repo.merge_base(base.sha, head.sha)
        ahead = list(itertools.takewhile(lambda s: s != merge_base, repo._ancestry(head.sha)))
        behind = list(itertools.takewhile(lambda s: s != merge_base, repo._ancestry(base.sha)))
        status = (
            "identical"
            if base.sha == head.sha
            else "ahead"
            if not behind
            else "behind"
            if not ahead
            else "diverged"
        )

        def commit_json(sha: str) -> dict[str, Any]:
            return {
                "sha": sha,
                "commit": {"message": repo.commits[sha].message, "tree": {"sha": repo.commits[sha].tree_sha}},
                "parents": [{"sha": repo.commits[sha].parent}] if repo.commits[sha].parent else [],
            }

        payload = {
            "url": f"{self.url}/repos/{repo.full_name}/compare/{params['basehead']}",
            "html_url": f"{self.web_url}/{repo.full_name}/compare/{params['basehead']}",
            "base_commit": commit_json(base.sha),
            "merge_base_commit": commit_json(merge_base) if merge_base else None,
            "status": status,
            "ahead_by": len(ahead),
            "behind_by": len(behind),
            "total_commits": len(ahead),
            "commits": [commit_json(s) for s in reversed(ahead)],
            "files": repo.diff(merge_base or base.sha, head.sha)[:MAX_COMPARE_FILES],
        }
        return 200, payload

    def _list_commits(self, request: web.Request, params: dict[str, str], caller: Caller) -> Any:
        """Commits reachable from ``sha`` (default branch), newest first; ``author`` is a login or an
        e-mail, ``path`` keeps the commits that changed that file. The commit's ``author`` is the
        GitHub user its e-mail belongs to, or null."""
        repo = self._repo_for(params, caller)
        start = self._resolve(repo, request.query.get("sha") or repo.default_branch)
        wanted = (request.query.get("author") or "").lower()
        path = (request.query.get("path") or "").strip("/")
        listed = []
        for sha in repo._ancestry(start.sha):
            commit = repo.commits[sha]
            if wanted and wanted not in (commit.author_email.lower(), (commit.author_login or "").lower()):
                continue
            if path and not repo.changed_file(sha, path):
                continue
            listed.append(self._commit_json(repo, sha))
        return self._page(request, listed)

    def _list_pull_commits(self, request: web.Request, params: dict[str, str], caller: Caller) -> Any:
        """A pull request's commits, oldest first (those on its head not on its base)."""
        repo = self._repo_for(params, caller)
        pull = self._pull(repo, params["pull_number"])
        base = repo.merge_base(pull.base_sha, pull.head_sha)
        own = list(itertools.takewhile(lambda sha: sha != base, repo._ancestry(pull.head_sha)))[::-1]
        return self._page(request, [self._commit_json(repo, sha) for sha in own])

    def _commit_json(self, repo: FakeRepo, sha: str) -> dict[str, Any]:
        """A commit as GitHub lists it (``commit`` schema); a ``[bot]`` login is of type Bot."""
        commit = repo.commits[sha]
        person = {"name": commit.author_email.split("@")[0], "email": commit.author_email, "date": self._now()}
        login = commit.author_login
        user = self._user(login, "Bot" if login.endswith("[bot]") else "User") if login else None
        return {
            "sha": sha,
            "node_id": base64.b64encode(f"06:Commit{sha}".encode()).decode(),
            "url": f"{self.url}/repos/{repo.full_name}/commits/{sha}",
            "html_url": f"{self.web_url}/{repo.full_name}/commit/{sha}",
            "comments_url": f"{self.url}/repos/{repo.full_name}/commits/{sha}/comments",
            "commit": {
                "url": f"{self.url}/repos/{repo.full_name}/git/commits/{sha}",
                "author": person,
                "committer": person,
                "message": commit.message,
                "tree": {"sha": commit.tree_sha, "url": f"{self.url}/repos/{repo.full_name}/git/trees/{commit.tree_sha}"},
                "comment_count": 0,
            },
            "author": user,
            "committer": user,
            "parents": [{"sha": commit.parent}] if commit.parent else [],
        }

    # check runs

    def _check_run_json(self, repo: FakeRepo, run: FakeCheckRun) -> dict[str, Any]:
        payload = _template("checks.create")
        output = {"title": None, "summary": None, "text": None, **run.output}
        output["annotations_count"] = len(run.annotations)
        output["annotations_url"] = f"{self.url}/repos/{repo.full_name}/check-runs/{run.id}/annotations"
        payload.update(
            id=run.id,
            head_sha=run.head_sha,
            name=run.name,
            status=run.status,
            conclusion=run.conclusion,
            details_url=run.details_url,
            external_id=run.external_id,
            started_at=run.started_at,
            completed_at=run.completed_at,
            output=output,
            url=f"{self.url}/repos/{repo.full_name}/check-runs/{run.id}",
            html_url=f"{self.web_url}/{repo.full_name}/runs/{run.id}",
            app={**payload["app"], "id": self.app_id, "slug": self.app_slug, "name": self.app_slug},
            pull_requests=[
                {
                    "number": p.number,
                    "head": {"ref": p.head_ref, "sha": p.head_sha},
                    "base": {"ref": p.base_ref, "sha": p.base_sha},
                }
                for p in repo.pulls.values()
                if p.head_sha == run.head_sha and p.state == "open"
            ],
        )
        return payload

    def _create_check_run(
        self, request: web.Request, params: dict[str, str], caller: Caller
    ) -> tuple[int, Any]:
        repo = self._repo_for(params, caller)
        body = dict(request["body"])
        try:
            head_sha = repo.resolve(body["head_sha"])
        except KeyError:
            raise GitHubError(422, "No commit found for SHA: " + body["head_sha"]) from None
        if head_sha != body["head_sha"]:
            raise GitHubError(422, "No commit found for SHA: " + body["head_sha"])
        run = FakeCheckRun(next(self._ids), repo.full_name, body["name"], head_sha)
        self._check_completed(body)
        run.apply(body, self._now())
        self.check_runs[run.id] = run
        return 201, self._check_run_json(repo, run)

    def _check_completed(self, body: dict[str, Any]) -> None:
        if body.get("status") == "completed" and not body.get("conclusion"):
            raise GitHubError(
                422, 'Invalid request.\n\nNo subschema in "anyOf" matched.\n"conclusion" wasn\'t supplied.'
            )

    def _update_check_run(
        self, request: web.Request, params: dict[str, str], caller: Caller
    ) -> tuple[int, Any]:
        repo = self._repo_for(params, caller)
        run = self.check_runs.get(int(params["id"])) if params["id"].isdigit() else None
        if run is None or run.repo != repo.full_name:
            raise GitHubError(404, "Not Found")
        body = dict(request["body"])
        self._check_completed(body)
        run.apply(body, self._now())
        return 200, self._check_run_json(repo, run)

    def _list_check_runs(self, request: web.Request, params: dict[str, str], caller: Caller) -> Any:
        repo = self._repo_for(params, caller)
        sha = self._resolve(repo, params["ref"]).sha
        name = request.query.get("check_name")
        runs = [self._check_run_json(repo, r) for r in reversed(repo.check_runs(head_sha=sha, name=name))]
        if request.query.get("app_id") not in (None, str(self.app_id)):
            runs = []  # every run in the fake is this App's
        status, chunk, headers = self._page(request, runs)
        return status, {"total_count": len(runs), "check_runs": chunk}, headers

    # comments and reactions

    def _add_comment(self, repo: str, number: int, body: str, user: str, user_type: str) -> FakeComment:
        now = self._now()
        comment = FakeComment(next(self._ids), repo, number, body, user, user_type, now, now)
        self.comments[comment.id] = comment
        return comment

    def _comment_json(self, comment: FakeComment) -> dict[str, Any]:
        payload = _template("issues.create-comment")
        payload.update(
            id=comment.id,
            node_id=base64.b64encode(f"012:IssueComment{comment.id}".encode()).decode(),
            url=f"{self.url}/repos/{comment.repo}/issues/comments/{comment.id}",
            html_url=f"{self.web_url}/{comment.repo}/pull/{comment.issue_number}#issuecomment-{comment.id}",
            issue_url=f"{self.url}/repos/{comment.repo}/issues/{comment.issue_number}",
            body=comment.body,
            user=self._user(comment.user, comment.user_type),
            created_at=comment.created_at,
            updated_at=comment.updated_at,
            author_association="NONE" if comment.user_type == "Bot" else "MEMBER",
        )
        return payload

    def _comment_body(self, body: dict[str, Any]) -> str:
        text = body["body"]
        if len(text) > MAX_COMMENT_LENGTH:
            raise GitHubError(
                422,
                "Validation Failed",
                [
                    {
                        "resource": "IssueComment",
                        "code": "custom",
                        "field": "body",
                        "message": f"body is too long (maximum is {MAX_COMMENT_LENGTH} characters)",
                    }
                ],
            )
        return text

    def _issue_number(self, repo: FakeRepo, number: str) -> int:
        if not number.isdigit() or int(number) not in repo.pulls:
            raise GitHubError(404, "Not Found")
        return int(number)

    def _list_comments(self, request: web.Request, params: dict[str, str], caller: Caller) -> Any:
        repo = self._repo_for(params, caller)
        number = self._issue_number(repo, params["number"])
        return self._page(request, [self._comment_json(c) for c in repo.comments(number)])

    def _create_comment(
        self, request: web.Request, params: dict[str, str], caller: Caller
    ) -> tuple[int, Any]:
        repo = self._repo_for(params, caller)
        number = self._issue_number(repo, params["number"])
        text = self._comment_body(request["body"])
        comment = self._add_comment(repo.full_name, number, text, self.bot_login, "Bot")
        return 201, self._comment_json(comment)

    def _comment_in(self, repo: FakeRepo, comment_id: str) -> FakeComment:
        comment = self.comments.get(int(comment_id)) if comment_id.isdigit() else None
        if comment is None or comment.repo != repo.full_name:
            raise GitHubError(404, "Not Found")
        return comment

    def _get_comment(self, request: web.Request, params: dict[str, str], caller: Caller) -> tuple[int, Any]:
        return 200, self._comment_json(self._comment_in(self._repo_for(params, caller), params["id"]))

    def _update_comment(
        self, request: web.Request, params: dict[str, str], caller: Caller
    ) -> tuple[int, Any]:
        comment = self._comment_in(self._repo_for(params, caller), params["id"])
        text = self._comment_body(request["body"])
        if comment.user != self.bot_login:
            raise GitHubError(403, "Resource not accessible by integration")
        comment.body = text
        comment.updated_at = self._now()
        return 200, self._comment_json(comment)

    def _create_reaction(
        self, request: web.Request, params: dict[str, str], caller: Caller
    ) -> tuple[int, Any]:
        comment = self._comment_in(self._repo_for(params, caller), params["id"])
        content = request["body"]["content"]
        existing = next(
            (
                r
                for r in self.reactions
                if r.comment_id == comment.id and r.content == content and r.user == self.bot_login
            ),
            None,
        )
        status = 200 if existing else 201
        reaction = existing or FakeReaction(next(self._ids), comment.id, content, self.bot_login)
        if not existing:
            self.reactions.append(reaction)
        payload = _template("reactions.create-for-issue-comment")
        payload.update(
            id=reaction.id, content=content, user=self._user(self.bot_login, "Bot"), created_at=self._now()
        )
        return status, payload

    # people

    def _team_membership(
        self, request: web.Request, params: dict[str, str], caller: Caller
    ) -> tuple[int, Any]:
        if caller.installation is None or caller.installation.account.lower() != params["org"].lower():
            raise GitHubError(404, "Not Found")
        members = self.teams.get((params["org"].lower(), params["team"].lower()))
        if members is None or params["user"].lower() not in members:
            raise GitHubError(404, "Not Found")
        state, role = members[params["user"].lower()]
        payload = {"url": f"{self.url}/teams/1/memberships/{params['user']}", "role": role, "state": state}
        return 200, payload

    def _team_members(self, request: web.Request, params: dict[str, str], caller: Caller) -> Any:
        if caller.installation is None or caller.installation.account.lower() != params["org"].lower():
            raise GitHubError(404, "Not Found")
        members = self.teams.get((params["org"].lower(), params["team"].lower()))
        if members is None:
            raise GitHubError(404, "Not Found")
        active = sorted(login for login, (state, _) in members.items() if state == "active")
        return self._page(request, [self._user(login) for login in active])

    def _permission(self, request: web.Request, params: dict[str, str], caller: Caller) -> tuple[int, Any]:
        repo = self._repo_for(params, caller)
        role = repo.permissions.get(params["user"], "none")
        legacy = {"maintain": "write", "triage": "read"}.get(role, role)
        payload = {"permission": legacy, "role_name": role, "user": self._user(params["user"])}
        return 200, payload


_NEW_APP_PAGE = re.compile(r"^(?:/organizations/(?P<org>[^/]+))?/settings/apps/new$")


@functools.lru_cache(maxsize=8)
def _public_key(private_key_pem: str) -> str:
    """The App's public key (cached: loading a private key checks it, ~150 ms)."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _load_operations(description: Path) -> list[dict[str, Any]]:
    operations = json.loads(description.read_text())["operations"]
    for operation in operations:
        operation["regex"] = _compile(operation["path"])
    return operations
