"""``tessera setup``: create the GitHub App from ``deploy/app-manifest.yml`` in one command.

GitHub's manifest flow needs a browser: a form POSTs the manifest to GitHub, the operator confirms,
GitHub redirects back with a one-time ``code``, and ``POST /app-manifests/{code}/conversions``
turns the code into the App's id, private key and webhook secret. This module serves the form and
the redirect target on loopback, checks the ``state`` it handed out, exchanges the code and writes
the credentials where ``tessera serve`` reads them: an env file and a PEM beside it, both 0600.

It also keeps the table of every REST endpoint Tessera calls and the App permission each needs
(:data:`ENDPOINT_PERMISSIONS`); the tests hold the manifest to exactly that table.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import secrets
import sys
import sysconfig
import webbrowser
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import yaml
from aiohttp import web
from gidgethub import GitHubException

from app.errors import TesseraError, TransientError
from app.github import convert_manifest

DEFAULT_GITHUB_URL = "https://github.com"
DEFAULT_API_URL = "https://api.github.com"
ACCESS_LEVELS = {"read": 1, "write": 2}


# --- What the App may do, and why -------------------------------------------------------------


@dataclass(frozen=True)
class EndpointPermission:
    """One REST endpoint Tessera calls and the App permission GitHub checks for it.

    ``permission`` is None for endpoints that need no App permission: those taking the App's JWT,
    no authentication at all, or only an installation token (its repository selection).
    """

    method: str
    path: str
    permission: str | None
    access: str
    why: str


ENDPOINT_PERMISSIONS: tuple[EndpointPermission, ...] = (
    EndpointPermission("GET", "/app/installations/{installation_id}", None, "",
                       "the installation's account and repository selection (App JWT)"),
    EndpointPermission("POST", "/app/installations/{installation_id}/access_tokens", None, "",
                       "installation token (App JWT)"),
    EndpointPermission("POST", "/app-manifests/{code}/conversions", None, "",
                       "tessera setup: the manifest code becomes the App's credentials (no auth)"),
    EndpointPermission("GET", "/installation/repositories", None, "",
                       "the repositories an installation covers, for registry sync (installation token)"),
    EndpointPermission("GET", "/repos/{owner}/{repo}", "metadata", "read",
                       "the default branch, for registry sync"),
    EndpointPermission("POST", "/repos/{owner}/{repo}/check-runs", "checks", "write",
                       "create the Tessera check run"),
    EndpointPermission("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}", "checks", "write",
                       "complete the check, annotations"),
    EndpointPermission("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs", "checks", "read",
                       "find Tessera's own check run on a commit after a restart"),
    EndpointPermission("GET", "/repos/{owner}/{repo}/commits", "contents", "read",
                       "the GitHub user behind an owner's e-mail (its latest commit's author); who last "
                       "changed a reader no one declares an owner for"),
    EndpointPermission("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", "pull_requests", "read",
                       "the PR's base and head, when an event does not carry them"),
    EndpointPermission("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/commits", "pull_requests", "read",
                       "who wrote a PR, never asked as the last to change a reader"),
    EndpointPermission("GET", "/repos/{owner}/{repo}/compare/{basehead}", "contents", "read",
                       "the changed files of an analysed head (between its own base and head)"),
    EndpointPermission("GET", "/repos/{owner}/{repo}/contents/{path}", "contents", "read",
                       ".tessera.yml from the base, SQL and dbt files"),
    EndpointPermission("GET", "/repos/{owner}/{repo}/git/blobs/{file_sha}", "contents", "read",
                       "file contents by blob SHA (cached by SHA, large files)"),
    EndpointPermission("GET", "/repos/{owner}/{repo}/git/trees/{tree_sha}", "contents", "read",
                       "the repository's files, for registry sync"),
    EndpointPermission("GET", "/repos/{owner}/{repo}/tarball/{ref}", "contents", "read",
                       "a commit's files in one call when many are not cached yet"),
    EndpointPermission("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments", "issues", "read",
                       "find Tessera's own impact comment by its marker"),
    EndpointPermission("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments", "issues", "write",
                       "the impact comment and one-line replies"),
    EndpointPermission("GET", "/repos/{owner}/{repo}/issues/comments/{comment_id}", "issues", "read",
                       "re-read a command's comment before acting on it"),
    EndpointPermission("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}", "issues", "write",
                       "edit the impact comment in place"),
    EndpointPermission("POST", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions", "issues",
                       "write", "+1 / confused on a command"),
    EndpointPermission("GET", "/orgs/{org}/teams/{team_slug}/memberships/{username}", "members", "read",
                       "may this user speak for that team"),
    EndpointPermission("GET", "/repos/{owner}/{repo}/collaborators/{username}/permission", "metadata", "read",
                       "override is for repository admins only; maintainers hold for unowned consumers"),
    EndpointPermission("GET", "/orgs/{org}/teams/{team_slug}/members", "members", "read",
                       "the pages' team page lists the team's members"),
    EndpointPermission("GET", "/orgs/{org}/memberships/{username}", "members", "read",
                       "the pages' admin page is for organisation owners"),
    EndpointPermission("GET", "/user", None, "",
                       "sign-in: who the person is (their own user token, used once, never kept)"),
)
"""Every endpoint Tessera calls. Sources: GitHub's "Permissions required for GitHub Apps" pages.

Comments and reactions on a PR go through the issues API; GitHub accepts ``issues: write`` or
``pull_requests: write`` for them. Tessera takes ``issues: write`` because the ``issue_comment``
event it must receive is offered under the Issues permission, and it keeps ``pull_requests`` at
read so the App can never edit, review or approve a pull request.
"""

EVENT_PERMISSIONS: Mapping[str, str] = {
    "pull_request": "pull_requests",
    "issue_comment": "issues",
    "check_run": "checks",
    "check_suite": "checks",
    "push": "contents",
}
"""The permission an App must hold (at least read) to subscribe to each event it handles."""

ALWAYS_DELIVERED_EVENTS = frozenset({"installation", "installation_repositories", "ping"})
"""Delivered to every GitHub App without a subscription; they cannot appear in ``default_events``."""


def required_permissions(endpoints: Iterable[EndpointPermission] = ENDPOINT_PERMISSIONS,
                         events: Iterable[str] = ()) -> dict[str, str]:
    """The least set of App permissions that lets Tessera call ``endpoints`` and receive ``events``."""
    needed: dict[str, str] = {}

    def grant(permission: str, access: str) -> None:
        if ACCESS_LEVELS[access] > ACCESS_LEVELS.get(needed.get(permission, ""), 0):
            needed[permission] = access

    for endpoint in endpoints:
        if endpoint.permission is not None:
            grant(endpoint.permission, endpoint.access)
    for event in events:
        grant(EVENT_PERMISSIONS[event], "read")
    return needed


# --- The manifest ------------------------------------------------------------------------------


MANIFEST_DATA_PATH = Path("share") / "tessera" / "app-manifest.yml"
"""Where ``pip install`` puts ``deploy/app-manifest.yml`` (``[tool.setuptools.data-files]`` in
pyproject.toml), below an install scheme's data directory: the file stays the one source of truth,
and an installed package finds it without a checkout."""

_CHECKOUT = Path(__file__).resolve().parent.parent


def _data_dirs() -> list[Path]:
    """The data directories a ``pip install`` (into a venv, the system, or ``--user``) may use."""
    dirs: list[Path] = []
    for scheme in (sysconfig.get_default_scheme(), sysconfig.get_preferred_scheme("user")):
        try:
            path = Path(sysconfig.get_path("data", scheme))
        except KeyError:
            continue
        if path not in dirs:
            dirs.append(path)
    return dirs


def manifest_candidates(checkout: Path = _CHECKOUT, data_dirs: Iterable[Path] | None = None) -> list[Path]:
    """Where the manifest may be, most specific first: the checkout (or image) this package runs
    from, then where an installed package's data files went."""
    dirs = _data_dirs() if data_dirs is None else list(data_dirs)
    return [checkout / "deploy" / "app-manifest.yml", *(d / MANIFEST_DATA_PATH for d in dirs)]


def default_manifest_path(checkout: Path = _CHECKOUT, data_dirs: Iterable[Path] | None = None) -> Path:
    """The first manifest that exists; the checkout's path when none does (the error names it)."""
    candidates = manifest_candidates(checkout, data_dirs)
    return next((path for path in candidates if path.is_file()), candidates[0])


def load_manifest(path: Path | None = None) -> dict[str, Any]:
    """Read the App manifest; a clear error beats a confusing page on GitHub."""
    path = path or default_manifest_path()
    try:
        manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SetupError(f"cannot read the App manifest {path}: {exc.strerror}; run setup from a checkout "
                         "of Tessera or pass --manifest deploy/app-manifest.yml") from exc
    if not isinstance(manifest, dict) or "default_permissions" not in manifest:
        raise SetupError(f"{path} is not a GitHub App manifest (no default_permissions)")
    return manifest


def prepare_manifest(manifest: Mapping[str, Any], *, public_url: str, redirect_url: str,
                     name: str | None = None) -> dict[str, Any]:
    """The manifest with this deployment's URLs: homepage, webhook and the local redirect."""
    prepared = json.loads(json.dumps(manifest))  # a deep copy of plain data
    base = public_url.rstrip("/")
    prepared["url"] = base
    prepared["hook_attributes"] = {**prepared.get("hook_attributes", {}),
                                   "url": f"{base}/webhooks/github", "active": True}
    prepared["redirect_url"] = redirect_url
    prepared["callback_urls"] = [f"{base}/auth/github/callback"]  # sign-in to the pages
    if name:
        prepared["name"] = name
    return prepared


def new_app_url(github_url: str, org: str | None) -> str:
    """GitHub's page that accepts a manifest, for a user account or for an organisation."""
    base = github_url.rstrip("/")
    if org:
        return f"{base}/organizations/{org}/settings/apps/new"
    return f"{base}/settings/apps/new"


def api_url_for(github_url: str) -> str:
    """The REST root of a GitHub web URL: api.github.com, or ``/api/v3`` on Enterprise Server."""
    base = github_url.rstrip("/")
    if urlsplit(base).hostname in ("github.com", "www.github.com"):
        return DEFAULT_API_URL
    return f"{base}/api/v3"


# --- The exchange and the files ----------------------------------------------------------------


class SetupError(Exception):
    """Setup cannot go on; the message tells the operator what to do."""


@dataclass(frozen=True)
class AppCredentials:
    """What GitHub returns once for a new App; the key and secrets are never shown again."""

    id: int
    slug: str
    pem: str = field(repr=False)
    webhook_secret: str = field(repr=False)
    client_id: str
    client_secret: str = field(repr=False)
    html_url: str


async def convert_manifest_code(session: aiohttp.ClientSession, api_url: str, code: str) -> AppCredentials:
    """``POST /app-manifests/{code}/conversions`` through the GitHub client: no auth, valid once, one hour."""
    try:
        body = await convert_manifest(code, api_url, session=session)
    except TransientError as exc:  # never reached GitHub: not a refusal of the code
        raise SetupError(
            f"could not reach GitHub at {api_url} ({_network_reason(exc)}): check the network (or"
            " TESSERA_GITHUB_API_URL) and run tessera setup again"
        ) from exc
    except (GitHubException, TesseraError) as exc:
        raise SetupError(f"GitHub refused the manifest code: {exc}") from exc
    missing = [k for k in ("id", "pem", "webhook_secret") if not body.get(k)]
    if missing:
        raise SetupError(f"GitHub's answer lacks {', '.join(missing)}; finish the App by hand on its settings "
                         "page (deploy/README.md, 'By hand')")
    # GitHub's description does not promise a slug; the PEM's file name needs something stable
    slug = str(body.get("slug") or f"app-{body['id']}")
    return AppCredentials(id=int(body["id"]), slug=slug, pem=str(body["pem"]),
                          webhook_secret=str(body["webhook_secret"]),
                          client_id=str(body.get("client_id") or ""),
                          client_secret=str(body.get("client_secret") or ""),
                          html_url=str(body.get("html_url") or ""))


def _network_reason(exc: TransientError) -> str:
    """A few words on why a request never got an answer, without the exception's repr."""
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientConnectorDNSError):
        return f"the name {cause.host} could not be resolved"
    if isinstance(cause, aiohttp.ClientConnectorError):
        return f"cannot connect to {cause.host}:{cause.port}: {cause.os_error.strerror or 'connection failed'}"
    if isinstance(cause, TimeoutError):
        return "no answer in time"
    return "the connection failed"


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only, also when the file already existed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def write_credentials(credentials: AppCredentials, env_path: Path, *, api_url: str,
                      public_url: str) -> Path:
    """Write the PEM beside ``env_path`` and set Tessera's variables in it; returns the PEM's path.

    Other lines of an existing env file are kept, so re-running setup replaces only the App.
    The App's OAuth client id and secret are written for sign-in to the pages (the user token a
    sign-in yields is used once, to learn who signed in), with a fresh session secret.
    """
    env_path = env_path.resolve()
    pem_path = env_path.parent / f"{credentials.slug}.private-key.pem"
    _write_private(pem_path, credentials.pem if credentials.pem.endswith("\n") else credentials.pem + "\n")
    values = {
        "TESSERA_GITHUB_APP_ID": str(credentials.id),
        "TESSERA_GITHUB_PRIVATE_KEY_PATH": str(pem_path),
        "TESSERA_WEBHOOK_SECRET": credentials.webhook_secret,
        "TESSERA_PUBLIC_URL": public_url.rstrip("/"),
    }
    if credentials.client_id and credentials.client_secret:
        values["TESSERA_GITHUB_CLIENT_ID"] = credentials.client_id
        values["TESSERA_GITHUB_CLIENT_SECRET"] = credentials.client_secret
        values["TESSERA_SESSION_SECRET"] = secrets.token_urlsafe(36)
    if api_url.rstrip("/") != DEFAULT_API_URL:
        values["TESSERA_GITHUB_API_URL"] = api_url.rstrip("/")
        values["TESSERA_GITHUB_WEB_URL"] = api_url.rstrip("/").removesuffix("/api/v3")
    kept: list[str] = []
    if env_path.exists():
        for line in env_path.read_text(encoding="utf-8").splitlines():
            key = line.split("=", 1)[0].strip()
            if key.startswith("export "):
                key = key[len("export "):].strip()
            if key not in values:
                kept.append(line)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [*kept, f"# GitHub App {credentials.slug} ({credentials.html_url}), written by tessera setup {stamp}"]
    lines += [f"{key}={value}" for key, value in values.items()]
    _write_private(env_path, "\n".join(lines) + "\n")
    return pem_path


# --- The local page ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SetupOptions:
    """Everything one run of the flow needs; built from the command line and Settings."""

    public_url: str
    env_path: Path
    github_url: str = DEFAULT_GITHUB_URL
    api_url: str = DEFAULT_API_URL
    org: str | None = None
    name: str | None = None
    manifest_path: Path | None = None
    host: str = "127.0.0.1"
    port: int = 0


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tessera setup</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 3em auto">
{body}
</body></html>
"""


def _page(body: str, status: int = 200) -> web.Response:
    return web.Response(text=_PAGE.format(body=body), status=status, content_type="text/html")


class SetupFlow:
    """The two pages of the manifest flow and the one-time ``state`` that ties them together."""

    def __init__(self, options: SetupOptions, session: aiohttp.ClientSession) -> None:
        self.options = options
        self.session = session
        self.state = secrets.token_urlsafe(24)
        self.manifest_template = load_manifest(options.manifest_path)
        self.redirect_url = ""
        self.result: asyncio.Future[AppCredentials] = asyncio.get_running_loop().create_future()

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/", self.form), web.get("/callback", self.callback)]

    def manifest(self) -> dict[str, Any]:
        return prepare_manifest(self.manifest_template, public_url=self.options.public_url,
                                redirect_url=self.redirect_url, name=self.options.name)

    async def form(self, request: web.Request) -> web.Response:
        """A form that posts the manifest to GitHub; the operator confirms there."""
        target = new_app_url(self.options.github_url, self.options.org)
        action = f"{target}?{urlencode({'state': self.state})}"
        owner = f"the organisation <b>{html.escape(self.options.org)}</b>" if self.options.org else "your account"
        return _page(
            f"<h1>Create the Tessera GitHub App</h1>"
            f"<p>This sends Tessera's App manifest to {html.escape(self.options.github_url)} to create "
            f"the App on {owner}. Its webhooks will go to "
            f"<code>{html.escape(self.options.public_url.rstrip('/'))}/webhooks/github</code>.</p>"
            f'<form action="{html.escape(action)}" method="post">'
            f'<input type="hidden" name="manifest" value="{html.escape(json.dumps(self.manifest()))}">'
            f'<button type="submit">Create the App on GitHub</button></form>'
        )

    async def callback(self, request: web.Request) -> web.Response:
        """GitHub's redirect: check ``state``, exchange ``code``, write the credentials."""
        if self.result.done():
            return _page("<p>This setup has already finished; run <code>tessera setup</code> again.</p>", 410)
        state = request.query.get("state", "")
        if not secrets.compare_digest(state.encode(), self.state.encode()):
            return _page("<h1>Refused</h1><p>The <code>state</code> does not match the one this "
                         "setup handed out; nothing was exchanged.</p>", 400)
        code = request.query.get("code", "")
        if not code:
            return _page("<h1>Refused</h1><p>GitHub sent no <code>code</code>.</p>", 400)
        try:
            credentials = await convert_manifest_code(self.session, self.options.api_url, code)
            pem_path = write_credentials(credentials, self.options.env_path, api_url=self.options.api_url,
                                         public_url=self.options.public_url)
        except (SetupError, aiohttp.ClientError, OSError) as exc:
            if not self.result.done():
                self.result.set_exception(exc if isinstance(exc, SetupError) else SetupError(str(exc)))
            return _page(f"<h1>Setup failed</h1><p>{html.escape(str(exc))}</p>", 502)
        self.result.set_result(credentials)
        install = f"{credentials.html_url}/installations/new" if credentials.html_url else ""
        return _page(
            f"<h1>Tessera App <code>{html.escape(credentials.slug)}</code> created</h1>"
            f"<p>Credentials written to <code>{html.escape(str(self.options.env_path))}</code> and "
            f"<code>{html.escape(str(pem_path))}</code>. You can close this page.</p>"
            + (f'<p>Next: <a href="{html.escape(install)}">install it on your repositories</a>.</p>'
               if install else "")
        )


class SetupServer:
    """The flow served on loopback; ``url`` is known once :meth:`start` has bound a port."""

    def __init__(self, options: SetupOptions) -> None:
        self.options = options
        self.url = ""
        self.flow: SetupFlow | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> str:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        self.flow = SetupFlow(self.options, self._session)
        app = web.Application()
        app.add_routes(self.flow.routes())
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.options.host, self.options.port)
        try:
            await site.start()
        except OSError as exc:
            raise SetupError(f"cannot listen on {self.options.host}:{self.options.port} ({exc.strerror}); "
                             "pick another --port") from exc
        port = self._runner.addresses[0][1]
        self.url = f"http://{self.options.host}:{port}"
        self.flow.redirect_url = f"{self.url}/callback"
        return self.url

    async def wait(self, timeout: float) -> AppCredentials:
        """The App's credentials once GitHub has redirected back and the exchange succeeded."""
        assert self.flow is not None, "start() first"
        try:
            return await asyncio.wait_for(asyncio.shield(self.flow.result), timeout)
        except TimeoutError as exc:
            raise SetupError(f"no answer from GitHub within {timeout:.0f} s; run tessera setup again") from exc

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()


async def run_setup(options: SetupOptions, *, open_browser: bool = True, timeout: float = 900.0) -> AppCredentials:
    """Serve the flow, point the operator at it, and return once the credentials are written."""
    server = SetupServer(options)
    try:
        url = await server.start()
        print(f"Open {url}/ in a browser to create the Tessera GitHub App "
              f"({'organisation ' + options.org if options.org else 'your account'} on {options.github_url}).",
              flush=True)
        if open_browser:
            webbrowser.open(f"{url}/")
        # closing the runner lets the success page finish before the server goes away
        return await server.wait(timeout)
    finally:
        await server.close()


# --- Command line ------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``tessera setup``."""
    parser.add_argument("--org", help="create the App on this organisation (default: your user account)")
    parser.add_argument("--github-url", default=None,
                        help="GitHub's web URL, e.g. https://ghe.example.com for Enterprise Server "
                             "(default https://github.com)")
    parser.add_argument("--public-url", default=None,
                        help="where GitHub reaches Tessera (default: TESSERA_PUBLIC_URL)")
    parser.add_argument("--env-file", type=Path, default=Path(".env"),
                        help="env file to write the credentials to (default .env)")
    parser.add_argument("--name", help="the App's name on GitHub (must be unique there; default Tessera)")
    parser.add_argument("--manifest", type=Path, default=None, help="App manifest (default deploy/app-manifest.yml)")
    parser.add_argument("--port", type=int, default=8765, help="local port of the setup page (loopback only)")
    parser.add_argument("--no-browser", action="store_true", help="print the URL, do not open a browser")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for GitHub (default 900)")


def options_from_args(args: argparse.Namespace, *, api_url: str | None, public_url: str | None) -> SetupOptions:
    """Merge the command line with the environment's ``TESSERA_GITHUB_API_URL`` / ``TESSERA_PUBLIC_URL``.

    An explicit API URL wins; otherwise it follows ``--github-url`` (``/api/v3`` on Enterprise Server).
    """
    github_url = (args.github_url or DEFAULT_GITHUB_URL).rstrip("/")
    if api_url and api_url.rstrip("/") != DEFAULT_API_URL:
        resolved_api = api_url.rstrip("/")
    else:
        resolved_api = api_url_for(github_url)
    public = args.public_url or public_url
    if not public:
        raise SetupError("GitHub needs to know where to send webhooks: pass --public-url https://... "
                         "or set TESSERA_PUBLIC_URL")
    if urlsplit(public).scheme not in ("http", "https"):
        raise SetupError(f"--public-url must be an http(s) URL, not {public!r}")
    if not args.env_file.resolve().parent.is_dir():
        raise SetupError(f"the folder of --env-file {args.env_file} does not exist")
    return SetupOptions(public_url=public, env_path=args.env_file, github_url=github_url, api_url=resolved_api,
                        org=args.org, name=args.name, manifest_path=args.manifest, port=args.port)


def run(args: argparse.Namespace, *, api_url: str | None = None, public_url: str | None = None) -> int:
    """``tessera setup``: exit 0 when the App exists and its credentials are written, 2 otherwise."""
    try:
        options = options_from_args(args, api_url=api_url, public_url=public_url)
        credentials = asyncio.run(run_setup(options, open_browser=not args.no_browser, timeout=args.timeout))
    except SetupError as exc:
        print(f"tessera setup: {exc}", file=sys.stderr)
        return 2
    print(f"Created GitHub App {credentials.slug} (id {credentials.id}); credentials in {options.env_path}.")
    if credentials.html_url:
        print(f"Install it: {credentials.html_url}/installations/new")
    env_file = options.env_path
    serve = "tessera serve" if env_file == Path(".env") else f"tessera serve --env-file {env_file}"
    print(f"Then start it: {serve} (it reads {env_file}; GitHub must reach {options.public_url} over HTTPS)")
    return 0
