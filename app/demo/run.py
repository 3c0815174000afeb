"""``tessera demo``: the App on a fresh SQLite file, with Acme's story played into it.

Nothing is canned: a fake GitHub (:mod:`app.demo.fakegithub`, the one the tests use) holds the
repository, the people and the pull requests; the App runs exactly as ``tessera serve`` runs it,
pointed at that fake. The story (:mod:`app.demo.scenario`) goes in through the App's front doors:
teams, registrations and audit runs through the REST API with a one-off admin key, the repository
and every pull request and comment as signed deliveries to ``POST /webhooks/github``, handled by
the durable queue and the engine, which call the fake GitHub back for files, check runs and
comments; observed readers through discovery of a query log, as ``tessera discover`` reads one.
Signing in goes through the fake GitHub's OAuth web flow, which always says the browser is
``@demo``. Each run starts from an empty database; Ctrl-C stops the App and the fake, and a
temporary folder is removed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import secrets
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.cli import EXIT_ERROR, EXIT_OK, serve
from app.config import Settings
from app.demo import scenario
from app.demo.fakegithub import FakeGitHub, FakePull, FakeRepo
from app.discovery.run import discover
from app.store import Store
from app.webhooks import sign

HOST = "127.0.0.1"
"""Only this machine: the demo signs every visitor in as an owner, and its fake GitHub (where
sign-in goes) listens on loopback too."""
APP_ID = 4242
DB_NAME = "tessera.db"
QUERY_LOG = "query-log.jsonl"
DELIVERY_TIMEOUT = 180.0
"""Seconds a batch of deliveries (six pull requests, say) may take to be handled before the demo
gives up: an analysis takes about a second, far longer only when something is wrong."""
READY_LINE = "Tessera demo ready:"
"""The start of the line that carries the URL, once everything is seeded (tests wait for it)."""


class DemoError(Exception):
    """The demo could not be set up: said in one line, the App stopped."""


def run(args: argparse.Namespace, settings: Settings) -> int:
    """``tessera demo`` (its arguments are defined with the other commands in :mod:`app.cli`): the
    environment's settings are not used, the demo brings its own."""
    if args.port < 0 or args.port > 65535:
        print(f"tessera demo: --port must be 0..65535, got {args.port}", file=sys.stderr)
        return EXIT_ERROR
    try:
        with _folder(args.dir) as folder:
            asyncio.run(demo(folder, host=HOST, port=usable_port(args.port)))
    except DemoError as exc:
        print(f"tessera demo: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


@contextlib.contextmanager
def _folder(chosen: Path | None) -> Iterator[Path]:
    """The given folder with the demo's old files removed, or a temporary one (removed after)."""
    if chosen is None:
        with tempfile.TemporaryDirectory(prefix="tessera-demo-") as temporary:
            yield Path(temporary)
        return
    try:
        chosen.mkdir(parents=True, exist_ok=True)
        for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", QUERY_LOG):
            (chosen / name).unlink(missing_ok=True)
    except OSError as exc:
        raise DemoError(f"cannot use --dir {chosen}: {exc.strerror or exc}") from exc
    shutil.rmtree(chosen / f"{DB_NAME}.parse-cache", ignore_errors=True)
    yield chosen


def usable_port(port: int) -> int:
    """``port`` if nobody listens on it now, or (0) a free one: the App's public URL, where sign-in
    redirects to, must name it before the App starts."""
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise DemoError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc} (choose another --port,"
                            " or --port 0 for a free one)") from exc
        return int(probe.getsockname()[1])


def new_app_key() -> str:
    """A fresh RSA key for the App (the fake GitHub checks its JWTs with the public half)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def demo_settings(folder: Path, host: str, port: int, fake: FakeGitHub, private_key: str) -> Settings:
    """``tessera serve``'s settings for an App installed on the fake GitHub, with fresh secrets."""
    return Settings(
        github_app_id=APP_ID,
        github_private_key=private_key,
        webhook_secret=secrets.token_urlsafe(24),
        github_api_url=fake.url,
        github_web_url=fake.web_url,
        github_client_id=fake.oauth_client_id,
        github_client_secret=fake.oauth_client_secret,
        session_secret=secrets.token_urlsafe(32),
        bootstrap_key=f"demo-{secrets.token_urlsafe(24)}",
        db_path=str(folder / DB_NAME),
        host=host,
        port=port,
        public_url=f"http://{host}:{port}",
    )


def populate(fake: FakeGitHub) -> FakeRepo:
    """Acme's organisation, teams, people and repository on the fake GitHub (no pull requests yet)."""
    fake.add_installation(scenario.INSTALLATION_ID, scenario.ORG)
    repo = fake.add_repo(scenario.REPO, installation_id=scenario.INSTALLATION_ID, files=scenario.project_files())
    for team in scenario.TEAMS:
        org, slug = team.github_team.split("/")
        for login in team.members:
            fake.add_team_member(org, slug, login)
            repo.set_permission(login, "write")
    fake.set_org_role(scenario.ORG, scenario.DEMO_USER, "admin")
    fake.sign_in_as(scenario.DEMO_USER)
    return repo


async def demo(folder: Path, *, host: str, port: int) -> None:
    """Run until Ctrl-C: the fake GitHub, the App, the story; print where to look."""
    private_key = new_app_key()
    fake = FakeGitHub(app_id=APP_ID, private_key_pem=private_key)  # requests unchecked: GitHub's description is test data
    repo = populate(fake)
    await fake.start()
    try:
        settings = demo_settings(folder, host, port, fake, private_key)
        listening, stop = asyncio.Event(), asyncio.Event()
        server = asyncio.create_task(serve(settings, ready=lambda url: listening.set(), stop=stop))
        if not await _first(listening.wait(), server):
            server.result()  # it ended before listening: raises what went wrong
            return
        seeding = asyncio.create_task(seed(settings, fake, repo, folder))
        if not await _first(seeding, server):
            return  # stopped (Ctrl-C) while seeding
        if seeding.exception() is not None:
            stopped_by_signal = stop.is_set()  # then the App went away under the seeding: not an error
            stop.set()
            await server
            if stopped_by_signal:
                return
            seeding.result()  # raises what went wrong
        print(ready_text(settings.base_url, fake, folder), flush=True)
        await server
    finally:
        await fake.stop()


async def _first(work: Awaitable[object], server: asyncio.Task[None]) -> bool:
    """Wait for ``work`` or the server's end, whichever comes first; True when ``work`` finished
    (what is left of it is cancelled when the server ended first)."""
    task = asyncio.ensure_future(work)
    await asyncio.wait({task, server}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False


def ready_text(url: str, fake: FakeGitHub, folder: Path) -> str:
    stories = scenario.stories(dt.date.today())
    numbers = scenario.numbers(dt.date.today())
    return "\n".join((
        f"{READY_LINE} {url}/",
        f"  Sign in with GitHub: the fake GitHub signs you in as @{scenario.DEMO_USER}"
        " (a member of Growth Analytics and an owner of acme).",
        f"  {scenario.REPO}: {len(scenario.MERGED)} pull requests merged untouched, {len(stories)} open: "
        + ", ".join(f"#{numbers[s.key]} {s.state}" for s in stories) + ".",
        f"  The fake GitHub's view of them: {fake.web_url}/{scenario.REPO}/pulls",
        f"  Database: {folder / DB_NAME}. Ctrl-C stops.",
    ))


async def seed(settings: Settings, fake: FakeGitHub, repo: FakeRepo, folder: Path) -> None:
    """Play the story into the running App at ``settings.base_url``."""
    async with aiohttp.ClientSession(
        settings.base_url, timeout=aiohttp.ClientTimeout(total=60),
        headers={"Authorization": f"Bearer {settings.bootstrap_key}"},
    ) as http:
        try:
            await Seeder(settings, fake, repo, folder, http).seed()
        except aiohttp.ClientError as exc:
            raise DemoError(f"the App at {settings.base_url} stopped answering while the demo was seeded: {exc}") from exc


@dataclass
class Seeder:
    """Plays the story into the running App through its REST API and its webhook endpoint."""

    settings: Settings
    fake: FakeGitHub
    repo: FakeRepo
    folder: Path
    http: aiohttp.ClientSession

    async def seed(self) -> None:
        print(f"tessera demo: seeding {scenario.REPO}: teams, the dbt project, registrations, audits,"
              " observed readers, pull requests...", flush=True)
        for team in scenario.TEAMS:
            await self.api("POST", "/teams", {"slug": team.slug, "name": team.name, "github_team": team.github_team})
        await self.deliveries([("installation", self.fake.event_installation(scenario.INSTALLATION_ID))])
        for registration in scenario.REGISTRATIONS:
            await self.api("POST", "/registrations", {
                "team": registration.team, "asset": registration.asset,
                "columns": list(registration.columns), "note": registration.note})
        await self.audits(dt.datetime.now(dt.UTC))
        await self.observed(dt.datetime.now(dt.UTC))
        await self.pull_requests()

    async def api(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        async with self.http.request(method, f"/api/v1{path}", json=body) as response:
            text = await response.text()
            if response.status >= 300:
                raise DemoError(f"{method} /api/v1{path} answered {response.status}: {text[:500]}")
            return json.loads(text) if text else None

    async def audits(self, now: dt.datetime) -> None:
        """A daily run per audited asset over the last 30 days (and today's retries)."""
        for audited in scenario.AUDITS:
            runs = [(day, now - dt.timedelta(days=day, hours=2), "scheduled")
                    for day in range(scenario.AUDIT_DAYS - 1, -1, -1)]
            runs += [(0, now - dt.timedelta(minutes=30 * (n + 1)), "manual") for n in range(audited.extra_runs_today)]
            for day, at, trigger in runs:
                results = [{
                    "id": g.id, "passed": day not in g.failing_days, "rows_checked": 12_000,
                    "rows_failed": g.failed_rows if day in g.failing_days else 0,
                    "message": f"{g.failed_rows} rows failed {g.id}" if day in g.failing_days else "",
                } for g in audited.guarantees]
                await self.api("POST", f"/assets/{audited.asset}/audits", {
                    "run_id": f"{trigger}__{at:%Y-%m-%dT%H:%M}", "triggered_by": "airflow",
                    "run_at": at.isoformat(timespec="seconds").replace("+00:00", "Z"), "results": results})

    async def observed(self, now: dt.datetime) -> None:
        """Write the warehouse's query log and read it the way ``tessera discover`` does."""
        log = self.folder / QUERY_LOG
        lines = [
            {"query": q.query, "user": q.user, "role": q.role or None, "calls": q.calls,
             "time": (now - dt.timedelta(hours=q.hours_ago)).isoformat(timespec="seconds")}
            for q in scenario.QUERY_LOG
        ]
        log.write_text("".join(json.dumps(line) + "\n" for line in lines))
        async with Store(self.settings.db_path) as store:
            await discover(store, str(log), "jsonl", now=now)
        for kind, name, team in scenario.READER_MAPPINGS:
            await self.api("POST", "/discovery/mappings", {"kind": kind, "name": name, "team": team})

    async def pull_requests(self) -> None:
        """The merged pull requests (opened, merged, pushed), then every open story's pull request,
        then the answers people give on them."""
        before = self.repo.resolve(self.repo.default_branch)
        merged = [self.open(story) for story in scenario.MERGED]
        await self.deliveries([("pull_request", self.fake.event_pull_request(self.repo, p)) for p in merged])
        for pull in merged:
            self.repo.merge(pull, message=pull.title)
        await self.deliveries([("pull_request", self.fake.event_pull_request(self.repo, p, "closed")) for p in merged]
                              + [("push", self.fake.event_push(self.repo, self.repo.default_branch, before))])
        stories = scenario.stories(dt.date.today())
        opened = [self.open(story) for story in stories]
        await self.deliveries([("pull_request", self.fake.event_pull_request(self.repo, p)) for p in opened])
        answers = []
        for story, pull in zip(stories, opened, strict=True):
            for login, text in story.replies:
                comment = self.repo.add_comment(pull.number, text, user=login)
                answers.append(("issue_comment", self.fake.event_issue_comment(self.repo, comment)))
        await self.deliveries(answers)

    def open(self, story: scenario.Story) -> FakePull:
        """A branch with the story's edits on today's default branch, and its pull request."""
        files = {path: content.decode() for path, content in self.repo.files_at(self.repo.default_branch).items()}
        self.repo.commit(scenario.apply(files, story.edits), parent=self.repo.default_branch,
                         branch=story.key, message=story.title)
        return self.repo.open_pull_request(head=story.key, author=story.author, title=story.title, body=story.body)

    async def deliveries(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """POST each event signed as GitHub signs it, then wait until the App has handled them all."""
        ids = []
        for event, payload in events:
            body = json.dumps(payload).encode()
            delivery_id = str(uuid.uuid4())
            headers = {"Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": delivery_id,
                       "X-Hub-Signature-256": sign(self.settings.webhook_secret or "", body),
                       "User-Agent": "GitHub-Hookshot/demo"}
            async with self.http.post("/webhooks/github", data=body, headers=headers) as response:
                if response.status >= 300:
                    raise DemoError(f"the webhook endpoint refused a {event} delivery: {response.status}"
                                    f" {await response.text()}")
            ids.append(delivery_id)
        await self.handled(ids)

    async def handled(self, ids: list[str]) -> None:
        """Wait until the queue is idle: these deliveries and the jobs they queued (a repository's
        sync after ``installation``) are done; any that failed ends the demo with its error."""
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        while True:
            busy = [row for status in ("queued", "running")
                    for row in (await self.api("GET", f"/deliveries?status={status}&limit=500"))["items"]]
            if not busy:
                break
            if time.monotonic() > deadline:
                raise DemoError(f"{len(busy)} deliveries were not handled within {DELIVERY_TIMEOUT:.0f} s")
            await asyncio.sleep(0.1)
        for status in ("failed", "quarantined"):
            for row in (await self.api("GET", f"/deliveries?status={status}&limit=1"))["items"]:
                raise DemoError(f"the App could not handle a {row['event']} delivery ({row['delivery_id']}):"
                                f" {row['last_error']}")
