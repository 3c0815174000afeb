"""The GitHub client: App JWTs, cached installation tokens, and a gidgethub API that fails the queue's way.

Why this shape: every job talks to GitHub as one installation, so :class:`GitHubApp` keeps one
aiohttp session and one token cache for the whole process, and hands out cheap
:class:`InstallationClient` objects (gidgethub ``GitHubAPI`` subclasses) that fetch the cached
token per request. Failures that may go away by themselves (5xx, rate limits, time-outs,
dropped connections) become :class:`~app.errors.TransientError` with the wait GitHub asked for,
so the durable queue retries the job later instead of a worker sleeping; 404/422 and other 4xx
stay gidgethub's exceptions because retrying cannot fix them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import aiohttp
import cachetools
import gidgethub
import gidgethub.aiohttp
import gidgethub.sansio
import jwt
import yarl
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from uritemplate import variable

from app.config import Settings
from app.errors import ConfigError, PermanentError, TransientError
from app.metrics import REGISTRY

DEFAULT_API_URL = "https://api.github.com"
REQUESTER = "tessera"
JWT_BACKDATE = 60  # GitHub rejects an `iat` in the future; allow for clock drift.
JWT_LIFETIME = 9 * 60  # GitHub's maximum is 10 minutes.
TOKEN_REFRESH_MARGIN = 5 * 60  # a token is replaced this long before it expires.
SECONDARY_LIMIT_DEFAULT_WAIT = 60.0  # GitHub: "wait at least one minute" without retry-after.
PER_PAGE = 100
LOW_BUDGET_FRACTION = 0.05
"""Below this share of the hourly window left, new analyses wait for the reset (what remains
finishes work already started); GitHub gives an installation 5,000 requests or more an hour."""

Clock = Callable[[], float]

CALLS = REGISTRY.counter("tessera_github_calls_total", "GitHub API calls by method and status.")
RATE_LIMIT_REMAINING = REGISTRY.gauge(
    "tessera_github_rate_limit_remaining", "Requests left in the current GitHub rate-limit window."
)


@dataclass(frozen=True)
class BudgetWait:
    """The API budget runs low until ``until`` (epoch seconds), ``seconds`` from now."""

    until: float
    seconds: float


@dataclass(frozen=True)
class RepoFile:
    """A file's content at a ref; ``sha`` is the git blob SHA, a stable cache key for parse results."""

    path: str
    sha: str
    size: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


def _parse_time(value: str) -> float:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.title())
    return value


def transient_wait(
    status: int, headers: Mapping[str, str], body: bytes, now: float
) -> tuple[bool, float | None]:
    """Whether a response is worth retrying later, and how long GitHub asks us to wait.

    The wait is ``None`` when GitHub names none (the queue's back-off decides). A 403 is
    transient only when it is a rate limit: a ``retry-after``, ``x-ratelimit-remaining: 0`` (wait
    until ``x-ratelimit-reset``) or GitHub's secondary-limit message; any other 403 is a
    permission problem that retrying cannot fix.
    """
    if status < 500 and status not in (403, 429):
        return False, None
    retry_after = _number(_header(headers, "retry-after"))
    if retry_after is not None:
        return True, max(retry_after, 0.0)
    if status >= 500:
        return True, None
    if _header(headers, "x-ratelimit-remaining") == "0":
        reset = _number(_header(headers, "x-ratelimit-reset"))
        return True, (max(reset - now, 1.0) if reset is not None else SECONDARY_LIMIT_DEFAULT_WAIT)
    if status == 429 or b"secondary rate limit" in body.lower():
        return True, SECONDARY_LIMIT_DEFAULT_WAIT
    return False, None


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class TesseraGitHubAPI(gidgethub.aiohttp.GitHubAPI):
    """gidgethub over the shared session, turning transient failures into :class:`TransientError`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        clock: Clock,
        timeout: float,
        oauth_token: str | None = None,
    ) -> None:
        super().__init__(session, REQUESTER, oauth_token=oauth_token, base_url=base_url)
        self._clock = clock
        self._timeout = timeout

    async def _request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes = b""
    ) -> tuple[int, Mapping[str, str], bytes]:
        try:
            async with self._session.request(
                method,
                url,
                headers=headers,
                data=body,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            ) as response:
                status, response_headers, data = response.status, response.headers, await response.read()
        except TimeoutError as exc:
            CALLS.inc(method=method, status="timeout")
            raise TransientError(f"GitHub {method} {url} timed out after {self._timeout:g}s") from exc
        except aiohttp.ClientError as exc:
            CALLS.inc(method=method, status="error")
            raise TransientError(f"GitHub {method} {url} failed: {exc!r}") from exc
        CALLS.inc(method=method, status=str(status))
        self._note_rate_limit(response_headers)
        transient, wait = transient_wait(status, response_headers, data, self._clock())
        if transient:
            what = "rate limited" if status in (403, 429) else "unavailable"
            message = data[:200].decode("utf-8", errors="replace")
            raise TransientError(
                f"GitHub {what}: {method} {url} answered {status} {message}", retry_after=wait
            )
        return status, response_headers, data

    def _note_rate_limit(self, headers: Mapping[str, str]) -> None:
        """Keep the gauge current, remember a used-up window and whether the budget runs low."""
        remaining = _header(headers, "x-ratelimit-remaining")
        if remaining is None or not remaining.isdigit():
            return
        RATE_LIMIT_REMAINING.set(float(remaining))
        reset = _number(_header(headers, "x-ratelimit-reset"))
        if remaining == "0":
            self._exhausted(reset)
        limit = _number(_header(headers, "x-ratelimit-limit"))
        if (_header(headers, "x-ratelimit-resource") or "core") == "core" and limit:
            self._budget(low=int(remaining) < limit * LOW_BUDGET_FRACTION, reset=reset)

    def _exhausted(self, reset: float | None) -> None:
        """The rate-limit window is used up until ``reset``; subclasses remember it."""

    def _budget(self, *, low: bool, reset: float | None) -> None:
        """Whether the window's remaining requests are under the reserve; subclasses remember it."""


class AppClient(TesseraGitHubAPI):
    """Requests made as the App itself (JWT), and the manifest conversion (no auth at all)."""

    def __init__(self, app: GitHubApp) -> None:
        super().__init__(app.session, base_url=app.api_url, clock=app.clock, timeout=app.timeout)
        self._app = app

    async def get_installation(self, installation_id: int) -> dict[str, Any]:
        return await self.getitem("/app/installations/{id}", {"id": installation_id}, jwt=self._app.app_jwt())

    async def create_installation_token(self, installation_id: int) -> dict[str, Any]:
        return await self.post(
            "/app/installations/{id}/access_tokens",
            {"id": installation_id},
            data={},
            jwt=self._app.app_jwt(),
        )


class InstallationClient(TesseraGitHubAPI):
    """gidgethub's API as one installation, plus the thin helpers the PR workflow uses.

    The token is asked of the App on every request (a cache hit, usually), so a long job never
    runs into an expired token.
    """

    def __init__(self, app: GitHubApp, installation_id: int) -> None:
        super().__init__(app.session, base_url=app.api_url, clock=app.clock, timeout=app.timeout)
        self._app = app
        self.installation_id = installation_id

    @property
    def github_app_id(self) -> int:
        """The App this client acts for: its own check runs carry this id."""
        return self._app.app_id

    async def _make_request(
        self,
        method: str,
        url: str,
        url_vars: Mapping[str, variable.VariableValue] | None,
        data: Any,
        accept: str,
        jwt: str | None = None,
        oauth_token: str | None = None,
        content_type: str = gidgethub.abc.JSON_CONTENT_TYPE,
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[bytes, str | None, int]:
        self._check_budget()
        if jwt is None and oauth_token is None:
            oauth_token = await self._app.installation_token(self.installation_id)
        try:
            return await super()._make_request(
                method,
                url,
                url_vars,
                data,
                accept,
                jwt=jwt,
                oauth_token=oauth_token,
                content_type=content_type,
                extra_headers=extra_headers,
            )
        except gidgethub.BadRequest as exc:
            if exc.status_code == 401:
                # Revoked or expired early: forget it so the retry fetches a fresh one.
                self._app.forget_token(self.installation_id)
                raise TransientError(f"GitHub refused the installation token: {exc}") from exc
            raise

    def _check_budget(self) -> None:
        limited_until = self._app.limited_until(self.installation_id)
        if limited_until is not None:
            # GitHub asks integrations not to keep calling while rate limited: wait for the reset.
            raise TransientError(
                f"installation {self.installation_id} is out of GitHub API requests until the rate-limit reset",
                retry_after=max(limited_until - self._clock(), 1.0),
            )

    def _exhausted(self, reset: float | None) -> None:
        self._app.mark_rate_limited(self.installation_id, reset)

    def _budget(self, *, low: bool, reset: float | None) -> None:
        self._app.note_budget(self.installation_id, low=low, reset=reset)

    def budget_wait(self) -> BudgetWait | None:
        """How long to hold off new analyses: the window's budget is under the reserve kept for
        finishing work already started (check updates, comments, acks). None when it is not."""
        until = self._app.budget_low_until(self.installation_id)
        if until is None:
            return None
        return BudgetWait(until=until, seconds=max(until - self._clock(), 1.0))

    # Repositories and pull requests -------------------------------------------------------------

    async def get_repo(self, owner: str, repo: str) -> dict[str, Any]:
        return await self.getitem("/repos/{owner}/{repo}", {"owner": owner, "repo": repo})

    async def get_pull(self, owner: str, repo: str, number: int) -> dict[str, Any]:
        return await self.getitem(
            "/repos/{owner}/{repo}/pulls/{number}", {"owner": owner, "repo": repo, "number": number}
        )

    async def compare(self, owner: str, repo: str, base: str, head: str) -> dict[str, Any]:
        return await self.getitem(
            "/repos/{owner}/{repo}/compare/{basehead}",
            {"owner": owner, "repo": repo, "basehead": f"{base}...{head}"},
        )

    # Contents ----------------------------------------------------------------------------------

    async def get_file(self, owner: str, repo: str, path: str, ref: str) -> RepoFile | None:
        """A file at ``ref``, or ``None`` when it does not exist there.

        Files over 1 MB come back from the contents API without content; those are read from
        the git blobs API by SHA.
        """
        try:
            entry = await self.getitem(
                "/repos/{owner}/{repo}/contents/{+path}{?ref}",
                {"owner": owner, "repo": repo, "path": path.lstrip("/"), "ref": ref},
            )
        except gidgethub.BadRequest as exc:
            if exc.status_code == 404:
                return None
            raise
        if not isinstance(entry, dict) or entry.get("type") != "file":
            kind = "a directory" if isinstance(entry, list) else (entry or {}).get("type", "unknown")
            raise PermanentError(f"{owner}/{repo}:{path}@{ref} is {kind}, not a file")
        sha, size = entry["sha"], int(entry.get("size", 0))
        if entry.get("encoding") == "base64" and (entry.get("content") or size == 0):
            content = _b64decode(entry.get("content") or "")
        else:
            content = await self.get_blob(owner, repo, sha)
        return RepoFile(path=entry.get("path", path), sha=sha, size=size, content=content)

    async def get_blob(self, owner: str, repo: str, sha: str) -> bytes:
        blob = await self.getitem(
            "/repos/{owner}/{repo}/git/blobs/{sha}", {"owner": owner, "repo": repo, "sha": sha}
        )
        if blob.get("encoding") == "base64":
            return _b64decode(blob.get("content") or "")
        return str(blob.get("content") or "").encode("utf-8")

    async def get_tree(
        self, owner: str, repo: str, tree_sha: str, *, recursive: bool = True
    ) -> dict[str, Any]:
        """The git tree at a commit, branch or tree SHA; ``truncated`` is true past GitHub's limit."""
        url_vars: dict[str, Any] = {"owner": owner, "repo": repo, "sha": tree_sha}
        if recursive:
            url_vars["recursive"] = "1"
        return await self.getitem("/repos/{owner}/{repo}/git/trees/{sha}{?recursive}", url_vars)

    async def download_tarball(self, owner: str, repo: str, ref: str, sink: BinaryIO, *, max_bytes: int) -> int:
        """The repository at ``ref`` as GitHub's gzipped tarball, streamed into ``sink``; its size.

        One API call whatever the repository's size. GitHub answers with a redirect to a
        short-lived download URL (codeload) that carries its own token: the installation token
        goes along only when that URL is on the API's own origin (GitHub Enterprise Server), never
        to another host. An archive over ``max_bytes`` raises :class:`ArchiveTooLarge` mid-stream.
        """
        self._check_budget()
        token = await self._app.installation_token(self.installation_id)
        url = gidgethub.sansio.format_url(
            "/repos/{owner}/{repo}/tarball/{ref}", {"owner": owner, "repo": repo, "ref": ref}, base_url=self.base_url
        )
        headers = gidgethub.sansio.create_headers(REQUESTER, oauth_token=token)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout, sock_read=self._timeout)
        try:
            async with self._session.get(url, headers=headers, allow_redirects=False, timeout=timeout) as response:
                status, response_headers = response.status, response.headers
                location = response_headers.get("location")
                body = b"" if status in (301, 302, 303, 307, 308) else await response.content.read(64 * 1024)
                if status == 200:  # served directly (some GitHub Enterprise Server set-ups)
                    CALLS.inc(method="GET", status="200")
                    self._note_rate_limit(response_headers)
                    return await _stream(response, sink, body, max_bytes)
        except TimeoutError as exc:
            CALLS.inc(method="GET", status="timeout")
            raise TransientError(f"GitHub GET {url} timed out after {self._timeout:g}s") from exc
        except aiohttp.ClientError as exc:
            CALLS.inc(method="GET", status="error")
            raise TransientError(f"GitHub GET {url} failed: {exc!r}") from exc
        CALLS.inc(method="GET", status=str(status))
        self._note_rate_limit(response_headers)
        transient, wait = transient_wait(status, response_headers, body, self._clock())
        if transient:
            raise TransientError(f"GitHub GET {url} answered {status}", retry_after=wait)
        if status not in (301, 302, 303, 307, 308) or not location:
            gidgethub.sansio.decipher_response(status, response_headers, body)  # raises BadRequest & co
            raise PermanentError(f"GitHub answered {status} for {url} without a download location")
        target = yarl.URL(url).join(yarl.URL(location))
        same_origin = target.origin() == yarl.URL(url).origin()
        download_headers = {"user-agent": REQUESTER}
        if same_origin:
            download_headers["authorization"] = headers["authorization"]
        try:
            async with self._session.get(
                target, headers=download_headers, allow_redirects=False, timeout=timeout
            ) as download:
                if download.status >= 500:
                    raise TransientError(f"the tarball download for {owner}/{repo}@{ref} answered {download.status}")
                if download.status != 200:
                    raise PermanentError(f"the tarball download for {owner}/{repo}@{ref} answered {download.status}")
                return await _stream(download, sink, b"", max_bytes)
        except TimeoutError as exc:
            raise TransientError(f"the tarball download for {owner}/{repo}@{ref} timed out") from exc
        except aiohttp.ClientError as exc:
            raise TransientError(f"the tarball download for {owner}/{repo}@{ref} failed: {exc!r}") from exc

    # Check runs --------------------------------------------------------------------------------

    async def create_check_run(self, owner: str, repo: str, **fields: Any) -> dict[str, Any]:
        """``fields`` are GitHub's body: name, head_sha, status, conclusion, output, details_url…"""
        return await self.post(
            "/repos/{owner}/{repo}/check-runs", {"owner": owner, "repo": repo}, data=fields
        )

    async def update_check_run(
        self, owner: str, repo: str, check_run_id: int, **fields: Any
    ) -> dict[str, Any]:
        return await self.patch(
            "/repos/{owner}/{repo}/check-runs/{id}",
            {"owner": owner, "repo": repo, "id": check_run_id},
            data=fields,
        )

    async def list_check_runs(
        self, owner: str, repo: str, ref: str, *, name: str | None = None, app_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Check runs on a commit, optionally only those called ``name`` and made by the App
        ``app_id`` (to find our own after a restart, not a same-named run of another App)."""
        url_vars: dict[str, Any] = {"owner": owner, "repo": repo, "ref": ref, "per_page": PER_PAGE}
        if name is not None:
            url_vars["check_name"] = name
        if app_id is not None:
            url_vars["app_id"] = app_id
        template = "/repos/{owner}/{repo}/commits/{ref}/check-runs{?check_name,app_id,per_page}"
        return [run async for run in self.getiter(template, url_vars, iterable_key="check_runs")]

    # Comments and reactions --------------------------------------------------------------------

    async def list_issue_comments(self, owner: str, repo: str, number: int) -> list[dict[str, Any]]:
        url_vars = {"owner": owner, "repo": repo, "number": number, "per_page": PER_PAGE}
        return [
            c
            async for c in self.getiter("/repos/{owner}/{repo}/issues/{number}/comments{?per_page}", url_vars)
        ]

    async def get_issue_comment(self, owner: str, repo: str, comment_id: int) -> dict[str, Any]:
        return await self.getitem(
            "/repos/{owner}/{repo}/issues/comments/{id}", {"owner": owner, "repo": repo, "id": comment_id}
        )

    async def create_issue_comment(self, owner: str, repo: str, number: int, body: str) -> dict[str, Any]:
        return await self.post(
            "/repos/{owner}/{repo}/issues/{number}/comments",
            {"owner": owner, "repo": repo, "number": number},
            data={"body": body},
        )

    async def update_issue_comment(self, owner: str, repo: str, comment_id: int, body: str) -> dict[str, Any]:
        return await self.patch(
            "/repos/{owner}/{repo}/issues/comments/{id}",
            {"owner": owner, "repo": repo, "id": comment_id},
            data={"body": body},
        )

    async def create_comment_reaction(
        self, owner: str, repo: str, comment_id: int, content: str
    ) -> dict[str, Any]:
        """React to an issue/PR comment (``+1``, ``confused``…); GitHub answers 200 if it already exists."""
        return await self.post(
            "/repos/{owner}/{repo}/issues/comments/{id}/reactions",
            {"owner": owner, "repo": repo, "id": comment_id},
            data={"content": content},
        )

    # The installation ----

    async def list_repositories(self) -> list[dict[str, Any]]:
        """Every repository this installation can see (for syncing the registry on install)."""
        return [
            r
            async for r in self.getiter(
                "/installation/repositories{?per_page}", {"per_page": PER_PAGE}, iterable_key="repositories"
            )
        ]

    # People ------------------------------------------------------------------------------------

    async def team_membership_state(self, org: str, team_slug: str, username: str) -> str | None:
        """``"active"``, ``"pending"``, or ``None`` when the user is not in the team (GitHub: 404)."""
        try:
            membership = await self.getitem(
                "/orgs/{org}/teams/{team}/memberships/{user}",
                {"org": org, "team": team_slug, "user": username},
            )
        except gidgethub.BadRequest as exc:
            if exc.status_code == 404:
                return None
            raise
        return str(membership.get("state")) if membership.get("state") else None

    async def team_members(self, org: str, team_slug: str) -> list[str]:
        """The logins of a team's members (the team page lists them)."""
        url_vars = {"org": org, "team": team_slug, "per_page": PER_PAGE}
        return [
            str(member.get("login"))
            async for member in self.getiter("/orgs/{org}/teams/{team}/members{?per_page}", url_vars)
            if isinstance(member, Mapping) and member.get("login")
        ]

    async def org_role(self, org: str, username: str) -> str | None:
        """``admin`` (an owner) or ``member`` for an active member of ``org``, else None."""
        try:
            membership = await self.getitem(
                "/orgs/{org}/memberships/{user}", {"org": org, "user": username}
            )
        except gidgethub.BadRequest as exc:
            if exc.status_code in (403, 404):
                return None
            raise
        if membership.get("state") != "active":
            return None
        return str(membership.get("role") or "member")

    async def commit_author_login(self, owner: str, repo: str, email: str) -> str | None:
        """The GitHub login of whoever made the latest commit under ``email`` on the default branch,
        or None when no commit carries it (or GitHub links the e-mail to no user)."""
        try:
            commits = await self.getitem(
                "/repos/{owner}/{repo}/commits{?author,per_page}",
                {"owner": owner, "repo": repo, "author": email, "per_page": 1},
            )
        except gidgethub.BadRequest as exc:
            if exc.status_code in (404, 409):  # no such repository / an empty one
                return None
            raise
        for commit in commits if isinstance(commits, list) else []:
            author = commit.get("author") if isinstance(commit, Mapping) else None
            login = author.get("login") if isinstance(author, Mapping) else None
            if isinstance(login, str) and login:
                return login
        return None

    async def file_commits(self, owner: str, repo: str, path: str, sha: str, *, per_page: int) -> list[Mapping[str, Any]]:
        """The latest commits up to ``sha`` that changed ``path``, newest first (one page): who
        last changed a file. Empty when GitHub knows no such path, commit or repository."""
        try:
            commits = await self.getitem(
                "/repos/{owner}/{repo}/commits{?sha,path,per_page}",
                {"owner": owner, "repo": repo, "sha": sha, "path": path, "per_page": per_page},
            )
        except gidgethub.BadRequest as exc:
            if exc.status_code in (404, 409, 422):  # no such repository or commit / an empty one
                return []
            raise
        return [c for c in commits if isinstance(c, Mapping)] if isinstance(commits, list) else []

    async def pull_commits(self, owner: str, repo: str, number: int, *, per_page: int = PER_PAGE) -> list[Mapping[str, Any]]:
        """A pull request's commits, oldest first: its first page only (who wrote the change).
        Empty when GitHub knows no such pull request."""
        try:
            commits = await self.getitem(
                "/repos/{owner}/{repo}/pulls/{number}/commits{?per_page}",
                {"owner": owner, "repo": repo, "number": number, "per_page": per_page},
            )
        except gidgethub.BadRequest as exc:
            if exc.status_code == 404:
                return []
            raise
        return [c for c in commits if isinstance(c, Mapping)] if isinstance(commits, list) else []

    async def collaborator_role(self, owner: str, repo: str, username: str) -> str:
        """``admin``, ``maintain``, ``write``, ``triage``, ``read`` or ``none``: the role, where the
        older ``permission`` field folds maintain into write."""
        answer = await self._collaborator(owner, repo, username)
        return str(answer.get("role_name") or answer.get("permission") or "none")

    async def collaborator_permission(self, owner: str, repo: str, username: str) -> str:
        """``admin``, ``write``, ``read`` or ``none`` (also for a user GitHub does not know)."""
        answer = await self._collaborator(owner, repo, username)
        return str(answer.get("permission") or "none")

    async def _collaborator(self, owner: str, repo: str, username: str) -> Mapping[str, Any]:
        """The collaborator permission answer; empty for a user GitHub does not know (404)."""
        try:
            answer = await self.getitem(
                "/repos/{owner}/{repo}/collaborators/{user}/permission",
                {"owner": owner, "repo": repo, "user": username},
            )
        except gidgethub.BadRequest as exc:
            if exc.status_code == 404:
                return {}
            raise
        return answer if isinstance(answer, Mapping) else {}


class ArchiveTooLarge(PermanentError):
    """A download went past the size Tessera accepts; the caller falls back to single files."""


async def _stream(response: aiohttp.ClientResponse, sink: BinaryIO, first: bytes, max_bytes: int) -> int:
    """Copy a response body into ``sink`` chunk by chunk, stopping past ``max_bytes``."""
    size = 0
    chunks = response.content.iter_chunked(256 * 1024)
    chunk = first
    while True:
        if chunk:
            size += len(chunk)
            if size > max_bytes:
                raise ArchiveTooLarge(f"the archive is over {max_bytes / 1_048_576:g} MB")
            sink.write(chunk)
        try:
            chunk = await chunks.__anext__()
        except StopAsyncIteration:
            return size


def _b64decode(content: str) -> bytes:
    try:
        return base64.b64decode("".join(content.split()), validate=True)
    except binascii.Error as exc:
        raise PermanentError(f"GitHub sent content that is not base64: {exc}") from exc


@functools.lru_cache(maxsize=8)
def _load_private_key(pem: str) -> PrivateKeyTypes:
    """Parse the App's PEM once: cryptography checks an RSA key on load (~150 ms), far more than signing."""
    try:
        return serialization.load_pem_private_key(pem.encode("utf-8"), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"the GitHub App private key is not a usable PEM private key: {exc}") from exc


class GitHubApp:
    """The App: signs JWTs, caches installation tokens, owns the one aiohttp session."""

    def __init__(
        self,
        app_id: int,
        private_key: str,
        api_url: str = DEFAULT_API_URL,
        *,
        session: aiohttp.ClientSession | None = None,
        clock: Clock = time.time,
        timeout: float = 30.0,
    ) -> None:
        self.app_id = int(app_id)
        self.private_key = private_key
        self._signing_key = _load_private_key(private_key)
        self.api_url = api_url.rstrip("/")
        self.clock = clock
        self.timeout = timeout
        self._session = session
        self._owns_session = session is None
        self._tokens: cachetools.TLRUCache[int, tuple[str, float]] = cachetools.TLRUCache(
            maxsize=4096, ttu=lambda _key, value, _now: value[1] - TOKEN_REFRESH_MARGIN, timer=clock
        )
        self._locks: dict[int, asyncio.Lock] = {}
        self._limited_until: dict[int, float] = {}
        self._budget_low_until: dict[int, float] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        session: aiohttp.ClientSession | None = None,
        clock: Clock = time.time,
        timeout: float = 30.0,
    ) -> GitHubApp:
        """The common path: ``TESSERA_GITHUB_APP_ID``, the private key and ``TESSERA_GITHUB_API_URL``."""
        if settings.github_app_id is None or not settings.github_private_key:
            raise ConfigError(
                "the GitHub App is not configured: set TESSERA_GITHUB_APP_ID and "
                "TESSERA_GITHUB_PRIVATE_KEY (or TESSERA_GITHUB_PRIVATE_KEY_PATH)"
            )
        return cls(
            settings.github_app_id,
            settings.github_private_key,
            settings.github_api_url or DEFAULT_API_URL,
            session=session,
            clock=clock,
            timeout=timeout,
        )

    @property
    def session(self) -> aiohttp.ClientSession:
        """The shared session, created on first use (inside the running event loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._owns_session and not self._session.closed:
            await self._session.close()

    def app_jwt(self) -> str:
        """A fresh App JWT: RS256, ``iat`` 60 s back, ``exp`` 9 minutes ahead, ``iss`` the App id."""
        now = int(self.clock())
        claims = {"iat": now - JWT_BACKDATE, "exp": now + JWT_LIFETIME, "iss": str(self.app_id)}
        return jwt.encode(claims, self._signing_key, algorithm="RS256")

    def as_app(self) -> AppClient:
        return AppClient(self)

    async def get_installation(self, installation_id: int) -> dict[str, Any]:
        return await self.as_app().get_installation(installation_id)

    async def installation_token(self, installation_id: int) -> str:
        """The installation's token, reused until 5 minutes before it expires.

        Concurrent callers for one installation wait on one lock, so they share one request.
        """
        cached = self._tokens.get(installation_id)
        if cached is not None:
            return cached[0]
        lock = self._locks.setdefault(installation_id, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(installation_id)
            if cached is not None:
                return cached[0]
            try:
                answer = await self.as_app().create_installation_token(installation_id)
            except gidgethub.BadRequest as exc:
                if exc.status_code in (403, 404):  # uninstalled or suspended: retrying cannot help
                    raise PermanentError(
                        f"GitHub gives no token for installation {installation_id} "
                        f"({int(exc.status_code)} {exc}): is the App uninstalled or suspended?"
                    ) from exc
                raise
            token, expires_at = str(answer["token"]), _parse_time(str(answer["expires_at"]))
            self._tokens[installation_id] = (token, expires_at)
            return token

    def mark_rate_limited(self, installation_id: int, reset: float | None) -> None:
        """Remember that an installation's window is used up (until ``reset``, or a minute)."""
        self._limited_until[installation_id] = reset if reset is not None else self.clock() + 60.0

    def limited_until(self, installation_id: int) -> float | None:
        """When the installation may call GitHub again, or ``None`` when it may now."""
        until = self._limited_until.get(installation_id)
        if until is not None and until <= self.clock():
            del self._limited_until[installation_id]
            return None
        return until

    def note_budget(self, installation_id: int, *, low: bool, reset: float | None) -> None:
        """Remember (until ``reset``) or forget that an installation's budget runs low."""
        if low:
            self._budget_low_until[installation_id] = reset if reset is not None else self.clock() + 60.0
        else:
            self._budget_low_until.pop(installation_id, None)

    def budget_low_until(self, installation_id: int) -> float | None:
        """Until when the installation's budget is under the reserve, or None."""
        until = self._budget_low_until.get(installation_id)
        if until is not None and until <= self.clock():
            del self._budget_low_until[installation_id]
            return None
        return until

    def forget_token(self, installation_id: int) -> None:
        self._tokens.pop(installation_id, None)

    async def for_installation(self, installation_id: int) -> InstallationClient:
        """A client acting as the installation; cheap, shares the session and token cache."""
        await self.installation_token(installation_id)
        return InstallationClient(self, installation_id)

    async def convert_manifest(self, code: str) -> dict[str, Any]:
        """Finish the manifest flow: ``code`` → the new App's id, slug, PEM, webhook secret…

        Unauthenticated, as GitHub requires.
        """
        return await convert_manifest(code, self.api_url, session=self.session, timeout=self.timeout)


async def convert_manifest(
    code: str,
    api_url: str = DEFAULT_API_URL,
    *,
    session: aiohttp.ClientSession | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """The manifest conversion before any App exists (``tessera setup``): no key, no JWT."""
    own = session is None
    active = session or aiohttp.ClientSession()
    try:
        client = TesseraGitHubAPI(active, base_url=api_url.rstrip("/"), clock=time.time, timeout=timeout)
        return await client.post("/app-manifests/{code}/conversions", {"code": code}, data=b"")
    finally:
        if own:
            await active.close()


class SignInFailed(Exception):
    """GitHub refused the code or answered something unexpected (the message says which)."""


async def oauth_login(web_url: str, api_url: str, exchange: dict[str, str]) -> str:
    """The end of the OAuth web flow (sign-in to the pages): trade the code, with the PKCE verifier,
    for a user token, then ask GitHub whose it is. The token is not kept."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as client:
        async with client.post(
            f"{web_url}/login/oauth/access_token", data=exchange, headers={"Accept": "application/json"}
        ) as answer:
            body = await answer.json(content_type=None) if answer.status == 200 else None
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            error = body.get("error") if isinstance(body, dict) else f"status {answer.status}"
            raise SignInFailed(f"GitHub refused the sign-in code ({error}); start again from the Sign in link.")
        headers = {"Authorization": f"Bearer {body['access_token']}", "Accept": "application/vnd.github+json"}
        async with client.get(f"{api_url}/user", headers=headers) as answer:
            user = await answer.json(content_type=None) if answer.status == 200 else None
    if not isinstance(user, dict) or not isinstance(user.get("login"), str) or not user["login"]:
        raise SignInFailed("GitHub did not say who you are; start again from the Sign in link.")
    return user["login"]
