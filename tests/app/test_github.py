"""The GitHub client against the fake GitHub: JWTs, tokens, transient failures, helpers."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile

import gidgethub
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from app.config import Settings
from app.errors import PermanentError, TransientError
from app.github import CALLS, RATE_LIMIT_REMAINING, ArchiveTooLarge, GitHubApp, convert_manifest
from tests.fakegithub import (
    FakeGitHub,
    ScriptedResponse,
    dropped_connection,
    primary_rate_limit,
    secondary_rate_limit,
    server_error,
    slow,
    too_many_requests,
)
from tests.fixtures_github import APP_ID, INSTALLATION_ID

T0 = 1_800_000_000.0


class Clock:
    """A clock the test moves by hand; shared by the client and the fake so both agree."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(fake_github: FakeGitHub) -> Clock:
    clock = Clock()
    fake_github.clock = clock
    return clock


@pytest.fixture
def repo(fake_github: FakeGitHub):
    repo = fake_github.add_repo("acme/warehouse", installation_id=INSTALLATION_ID)
    repo.commit({"models/fct_revenue.sql": "select 1 as revenue\n"}, branch="main")
    return repo


def token_requests(fake: FakeGitHub) -> int:
    return len(fake.requests_to("POST", f"/app/installations/{INSTALLATION_ID}/access_tokens"))


def public_key(private_key_pem: str) -> bytes:
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# App JWT and installation tokens -----------------------------------------------------------------


def test_app_jwt_is_rs256_backdated_a_minute_and_expires_in_nine(app_private_key: str) -> None:
    app = GitHubApp(APP_ID, app_private_key, clock=lambda: T0)
    token = app.app_jwt()

    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(
        token,
        public_key(app_private_key),
        algorithms=["RS256"],
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims == {"iat": int(T0) - 60, "exp": int(T0) + 9 * 60, "iss": str(APP_ID)}


def test_app_jwt_does_not_verify_with_another_key(app_private_key: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    token = GitHubApp(APP_ID, app_private_key).app_jwt()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other, algorithms=["RS256"])


async def test_installation_token_is_reused_until_five_minutes_before_expiry(
    fake_github: FakeGitHub, github_app: GitHubApp, clock: Clock
) -> None:
    first = await github_app.installation_token(INSTALLATION_ID)
    assert token_requests(fake_github) == 1

    clock.now = T0 + 3600 - 5 * 60 - 1  # the fake's tokens live an hour
    assert await github_app.installation_token(INSTALLATION_ID) == first
    assert token_requests(fake_github) == 1

    clock.now = T0 + 3600 - 5 * 60
    second = await github_app.installation_token(INSTALLATION_ID)
    assert second != first
    assert token_requests(fake_github) == 2


async def test_token_request_sends_a_jwt_the_fake_verifies(
    fake_github: FakeGitHub, github_app: GitHubApp
) -> None:
    await github_app.installation_token(INSTALLATION_ID)

    (request,) = fake_github.requests_to("POST", "/app/installations/1/access_tokens")
    assert request.status == 201
    assert request.headers["authorization"].lower().startswith("bearer ")


async def test_concurrent_token_requests_share_one_request(
    fake_github: FakeGitHub, github_app: GitHubApp
) -> None:
    fake_github.script("POST", "/app/installations/1/access_tokens", slow(0.2))

    tokens = await asyncio.gather(*(github_app.installation_token(INSTALLATION_ID) for _ in range(10)))

    assert len(set(tokens)) == 1
    assert token_requests(fake_github) == 1


async def test_revoked_token_is_dropped_and_the_retry_fetches_a_new_one(
    fake_github: FakeGitHub, github_app: GitHubApp, repo
) -> None:
    gh = await github_app.for_installation(INSTALLATION_ID)
    fake_github.revoke_tokens()

    with pytest.raises(TransientError):
        await gh.get_repo("acme", "warehouse")
    assert (await gh.get_repo("acme", "warehouse"))["full_name"] == "acme/warehouse"
    assert token_requests(fake_github) == 2


async def test_a_missing_or_suspended_installation_fails_for_good(
    fake_github: FakeGitHub, github_app: GitHubApp
) -> None:
    with pytest.raises(PermanentError, match="installation 999"):
        await github_app.installation_token(999)

    fake_github.installations[INSTALLATION_ID].suspended = True
    with pytest.raises(PermanentError, match="403"):
        await github_app.for_installation(INSTALLATION_ID)


async def test_get_installation_uses_the_app_jwt(fake_github: FakeGitHub, github_app: GitHubApp) -> None:
    installation = await github_app.get_installation(INSTALLATION_ID)

    assert installation["id"] == INSTALLATION_ID
    assert installation["account"]["login"] == "acme"
    assert installation["app_id"] == APP_ID


# Transient failures become TransientError for the queue ---------------------------------------------


async def test_502_twice_then_201_raises_transient_twice_and_a_retry_loop_lands_one_check_run(
    fake_github: FakeGitHub, github_app: GitHubApp, repo
) -> None:
    head = repo.resolve("main")
    fake_github.script("POST", "/repos/acme/warehouse/check-runs", server_error(502), server_error(502))
    gh = await github_app.for_installation(INSTALLATION_ID)

    failures: list[TransientError] = []
    created = None
    for _attempt in range(5):  # what the queue does, without its back-off
        try:
            created = await gh.create_check_run(
                "acme", "warehouse", name="Tessera", head_sha=head, status="in_progress"
            )
            break
        except TransientError as exc:
            failures.append(exc)

    assert len(failures) == 2
    assert all("502" in str(f) for f in failures)
    assert created is not None and created["status"] == "in_progress"
    assert [r.status for r in fake_github.requests_to("POST", "/repos/acme/warehouse/check-runs")] == [
        502,
        502,
        201,
    ]
    assert len(repo.check_runs(name="Tessera")) == 1


async def test_secondary_rate_limit_403_carries_github_retry_after(
    fake_github: FakeGitHub, github_app: GitHubApp, repo
) -> None:
    fake_github.script("GET", "/repos/acme/warehouse", secondary_rate_limit(retry_after=7))
    gh = await github_app.for_installation(INSTALLATION_ID)

    with pytest.raises(TransientError) as raised:
        await gh.get_repo("acme", "warehouse")
    assert raised.value.retry_after == 7
    assert "rate limited" in str(raised.value)


async def test_secondary_rate_limit_without_retry_after_waits_a_minute(
    fake_github: FakeGitHub, github_app: GitHubApp, repo
) -> None:
    fake_github.script("GET", "/repos/acme/warehouse", secondary_rate_limit(retry_after=None))
    gh = await github_app.for_installation(INSTALLATION_ID)

    with pytest.raises(TransientError) as raised:
        await gh.get_repo("acme", "warehouse")
    assert raised.value.retry_after == 60


async def test_429_carries_retry_after(fake_github: FakeGitHub, github_app: GitHubApp, repo) -> None:
    fake_github.script("GET", "/repos/acme/warehouse", too_many_requests(retry_after=3))
    gh = await github_app.for_installation(INSTALLATION_ID)

    with pytest.raises(TransientError) as raised:
        await gh.get_repo("acme", "warehouse")
    assert raised.value.retry_after == 3


async def test_primary_rate_limit_waits_until_the_reset_time(
    fake_github: FakeGitHub, github_app: GitHubApp, clock: Clock, repo
) -> None:
    gh = await github_app.for_installation(INSTALLATION_ID)
    fake_github.script("GET", "/repos/acme/warehouse", primary_rate_limit(reset_at=T0 + 120))

    with pytest.raises(TransientError) as raised:
        await gh.get_repo("acme", "warehouse")
    assert raised.value.retry_after == 120


async def test_an_exhausted_installation_waits_for_the_reset_without_calling_github(
    fake_github: FakeGitHub, github_app: GitHubApp, clock: Clock, repo
) -> None:
    gh = await github_app.for_installation(INSTALLATION_ID)
    last_one = ScriptedResponse(
        200,
        {"full_name": "acme/warehouse"},
        (("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", str(int(T0) + 300))),
    )
    fake_github.script("GET", "/repos/acme/warehouse", last_one)
    await gh.get_repo("acme", "warehouse")  # succeeds, but was the window's last request
    calls = len(fake_github.requests)

    with pytest.raises(TransientError) as raised:
        await gh.get_pull("acme", "warehouse", 1)
    assert raised.value.retry_after == 300
    assert len(fake_github.requests) == calls  # GitHub was not asked

    clock.now = T0 + 300
    assert (await gh.get_repo("acme", "warehouse"))["full_name"] == "acme/warehouse"


async def test_time_out_is_transient(fake_github: FakeGitHub, app_private_key: str, repo) -> None:
    app = GitHubApp(APP_ID, app_private_key, fake_github.url, timeout=0.2)
    try:
        gh = await app.for_installation(INSTALLATION_ID)
        fake_github.script("GET", "/repos/acme/warehouse", slow(0.6))
        with pytest.raises(TransientError) as raised:
            await gh.get_repo("acme", "warehouse")
        assert "timed out" in str(raised.value)
    finally:
        await app.close()


async def test_dropped_connection_is_transient(fake_github: FakeGitHub, github_app: GitHubApp, repo) -> None:
    gh = await github_app.for_installation(INSTALLATION_ID)
    fake_github.script("GET", "/repos/acme/warehouse", dropped_connection(), dropped_connection())

    with pytest.raises(TransientError):
        await gh.get_repo("acme", "warehouse")


async def test_refused_github_is_transient(app_private_key: str) -> None:
    app = GitHubApp(APP_ID, app_private_key, "http://127.0.0.1:9", timeout=2)
    try:
        with pytest.raises(TransientError):
            await app.installation_token(INSTALLATION_ID)
    finally:
        await app.close()


async def test_not_found_and_forbidden_stay_gidgethub_errors(
    fake_github: FakeGitHub, github_app: GitHubApp, repo
) -> None:
    gh = await github_app.for_installation(INSTALLATION_ID)
    with pytest.raises(gidgethub.BadRequest) as missing:
        await gh.get_pull("acme", "warehouse", 404)
    assert missing.value.status_code == 404

    repo.commit({"a.sql": "select 1"}, parent="main", branch="feature")
    pull = repo.open_pull_request(head="feature")
    human = repo.add_comment(pull.number, "looks good", user="bob")
    with pytest.raises(gidgethub.BadRequest) as forbidden:  # a bot cannot edit a person's comment
        await gh.update_issue_comment("acme", "warehouse", human.id, "edited")
    assert forbidden.value.status_code == 403
    assert repo.comments(pull.number)[0].body == "looks good"


async def test_metrics_count_calls_and_track_rate_limit_remaining(
    fake_github: FakeGitHub, github_app: GitHubApp, repo
) -> None:
    gh = await github_app.for_installation(INSTALLATION_ID)
    before_ok = CALLS.value(method="GET", status="200")
    before_502 = CALLS.value(method="GET", status="502")
    fake_github.script("GET", "/repos/acme/warehouse", server_error(502))

    with pytest.raises(TransientError):
        await gh.get_repo("acme", "warehouse")
    await gh.get_repo("acme", "warehouse")

    assert CALLS.value(method="GET", status="502") == before_502 + 1
    assert CALLS.value(method="GET", status="200") == before_ok + 1
    last = fake_github.requests[-1]
    assert last.status == 200
    used = fake_github.rate_used[last.headers["authorization"].split(" ", 1)[1]]
    assert RATE_LIMIT_REMAINING.value() == 5000 - used


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [
        (502, {}, b"", (True, None)),
        (503, {"retry-after": "5"}, b"", (True, 5.0)),
        (403, {"retry-after": "2"}, b"", (True, 2.0)),
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(T0) + 90)}, b"", (True, 90.0)),
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(T0) - 5)}, b"", (True, 1.0)),
        (403, {}, b'{"message": "You have exceeded a secondary rate limit."}', (True, 60.0)),
        (429, {}, b"", (True, 60.0)),
        (
            403,
            {"x-ratelimit-remaining": "4999"},
            b'{"message": "Resource not accessible by integration"}',
            (False, None),
        ),
        (404, {}, b"", (False, None)),
        (422, {}, b"", (False, None)),
        (200, {}, b"", (False, None)),
    ],
    ids=[
        "502",
        "503-retry-after",
        "403-retry-after",
        "primary",
        "primary-past-reset",
        "secondary",
        "429",
        "403-permission",
        "404",
        "422",
        "200",
    ],
)
def test_which_answers_are_worth_retrying_and_after_how_long(
    status: int, headers: dict[str, str], body: bytes, expected: tuple[bool, float | None]
) -> None:
    from app.github import transient_wait

    assert transient_wait(status, headers, body, T0) == expected


# Helpers the PR workflow uses ---------------------------------------------------------------------


async def test_file_content_is_decoded_and_absent_files_are_none(
    fake_github: FakeGitHub, github_app: GitHubApp, repo
) -> None:
    gh = await github_app.for_installation(INSTALLATION_ID)
    head = repo.commit({"models/fct_revenue.sql": "select 2 as revenue, 'é' as plan_code\n"}, parent="main")

    base_file = await gh.get_file("acme", "warehouse", "models/fct_revenue.sql", "main")
    head_file = await gh.get_file("acme", "warehouse", "models/fct_revenue.sql", head)

    assert base_file is not None and base_file.text == "select 1 as revenue\n"
    assert head_file is not None and head_file.text == "select 2 as revenue, 'é' as plan_code\n"
    assert head_file.sha != base_file.sha
    assert await gh.get_file("acme", "warehouse", ".tessera.yml", "main") is None


async def test_files_over_a_megabyte_are_read_through_the_blobs_api(
    fake_github: FakeGitHub, github_app: GitHubApp, repo
) -> None:
    big = ("select 1 as c -- " + "x" * 80 + "\n") * 12_000
    assert len(big) > 1024 * 1024
    repo.commit({"models/huge.sql": big}, branch="main")
    gh = await github_app.for_installation(INSTALLATION_ID)

    found = await gh.get_file("acme", "warehouse", "models/huge.sql", "main")

    assert found is not None and found.text == big and found.size == len(big)
    assert fake_github.requests_to("GET", f"/repos/acme/warehouse/git/blobs/{found.sha}")


async def test_a_directory_is_not_a_file(fake_github: FakeGitHub, github_app: GitHubApp, repo) -> None:
    gh = await github_app.for_installation(INSTALLATION_ID)
    with pytest.raises(PermanentError, match="directory"):
        await gh.get_file("acme", "warehouse", "models", "main")


async def test_tree_lists_every_file_recursively(
    fake_github: FakeGitHub, github_app: GitHubApp, repo
) -> None:
    head = repo.commit({"analytics/models/marts/a.sql": "select 1", "README.md": "hi"}, parent="main")
    gh = await github_app.for_installation(INSTALLATION_ID)

    tree = await gh.get_tree("acme", "warehouse", head)

    blobs = {e["path"] for e in tree["tree"] if e["type"] == "blob"}
    assert blobs == {"analytics/models/marts/a.sql", "README.md", "models/fct_revenue.sql"}
    assert tree["truncated"] is False


async def test_comment_helpers_create_list_update_and_react(
    fake_github: FakeGitHub, github_app: GitHubApp, repo
) -> None:
    repo.commit({"a.sql": "select 1"}, parent="main", branch="feature")
    pull = repo.open_pull_request(head="feature")
    gh = await github_app.for_installation(INSTALLATION_ID)

    created = await gh.create_issue_comment("acme", "warehouse", pull.number, "<!-- tessera -->\nfirst")
    await gh.update_issue_comment("acme", "warehouse", created["id"], "<!-- tessera -->\nsecond")
    human = repo.add_comment(pull.number, "/tessera ack", user="bob")
    await gh.create_comment_reaction("acme", "warehouse", human.id, "+1")
    listed = await gh.list_issue_comments("acme", "warehouse", pull.number)

    assert [c["body"] for c in listed] == ["<!-- tessera -->\nsecond", "/tessera ack"]
    assert listed[0]["user"]["login"] == "tessera[bot]" and listed[0]["user"]["type"] == "Bot"
    assert [r.content for r in repo.reactions(human.id)] == ["+1"]


async def test_check_run_helpers_create_then_complete(
    fake_github: FakeGitHub, github_app: GitHubApp, repo
) -> None:
    head = repo.resolve("main")
    gh = await github_app.for_installation(INSTALLATION_ID)

    run = await gh.create_check_run("acme", "warehouse", name="Tessera", head_sha=head, status="in_progress")
    await gh.update_check_run(
        "acme",
        "warehouse",
        run["id"],
        conclusion="action_required",
        output={"title": "1 team must acknowledge", "summary": "growth"},
    )

    latest = repo.check_run("Tessera")
    assert latest is not None
    assert (latest.status, latest.conclusion) == ("completed", "action_required")
    assert latest.output["title"] == "1 team must acknowledge"


async def test_team_membership_and_permission_helpers(
    fake_github: FakeGitHub, github_app: GitHubApp, repo
) -> None:
    fake_github.add_team_member("acme", "growth", "bob")
    fake_github.add_team_member("acme", "growth", "dora", state="pending")
    repo.set_permission("carol", "admin")
    repo.set_permission("dave", "maintain")
    gh = await github_app.for_installation(INSTALLATION_ID)

    assert await gh.team_membership_state("acme", "growth", "bob") == "active"
    assert await gh.team_membership_state("acme", "growth", "dora") == "pending"
    assert await gh.team_membership_state("acme", "growth", "eve") is None
    assert await gh.collaborator_permission("acme", "warehouse", "carol") == "admin"
    assert await gh.collaborator_permission("acme", "warehouse", "dave") == "write"
    assert await gh.collaborator_permission("acme", "warehouse", "eve") == "none"


async def test_compare_reports_files_between_two_commits(
    fake_github: FakeGitHub, github_app: GitHubApp, repo
) -> None:
    base = repo.resolve("main")
    head = repo.commit({"models/fct_revenue.sql": None, "models/fct_revenue_v2.sql": "select 1"}, parent=base)
    gh = await github_app.for_installation(INSTALLATION_ID)

    comparison = await gh.compare("acme", "warehouse", base, head)

    assert comparison["status"] == "ahead" and comparison["ahead_by"] == 1
    assert {(f["filename"], f["status"]) for f in comparison["files"]} == {
        ("models/fct_revenue.sql", "removed"),
        ("models/fct_revenue_v2.sql", "added"),
    }


async def test_check_runs_on_a_commit_are_listed_by_name(
    fake_github: FakeGitHub, github_app: GitHubApp, repo
) -> None:
    head = repo.resolve("main")
    gh = await github_app.for_installation(INSTALLATION_ID)
    await gh.create_check_run("acme", "warehouse", name="Tessera", head_sha=head)
    await gh.create_check_run("acme", "warehouse", name="lint", head_sha=head)
    second = await gh.create_check_run(
        "acme", "warehouse", name="Tessera", head_sha=head, status="in_progress"
    )

    tessera = await gh.list_check_runs("acme", "warehouse", head, name="Tessera")
    every = await gh.list_check_runs("acme", "warehouse", head)

    assert second["id"] in {r["id"] for r in tessera} and len(tessera) == 2
    assert {r["name"] for r in every} == {"Tessera", "lint"} and len(every) == 3
    ours = await gh.list_check_runs("acme", "warehouse", head, name="Tessera", app_id=gh.github_app_id)
    theirs = await gh.list_check_runs("acme", "warehouse", head, name="Tessera", app_id=gh.github_app_id + 1)
    assert len(ours) == 2 and theirs == []


async def test_installation_repositories_are_listed_across_pages(
    fake_github: FakeGitHub, github_app: GitHubApp
) -> None:
    for i in range(105):
        fake_github.add_repo(f"acme/repo{i:03}", installation_id=INSTALLATION_ID)
    fake_github.add_repo("someone-else/repo", files={"a.sql": "select 1"})
    gh = await github_app.for_installation(INSTALLATION_ID)

    repos = await gh.list_repositories()

    assert sorted(r["full_name"] for r in repos) == [f"acme/repo{i:03}" for i in range(105)]
    assert len(fake_github.requests_to("GET", "/installation/repositories")) == 2


async def test_a_comment_is_read_back_by_id(fake_github: FakeGitHub, github_client, repo) -> None:
    repo.commit({"a.sql": "select 1"}, branch="feature")
    pull = repo.open_pull_request(head="feature")
    human = repo.add_comment(pull.number, "/tessera ack growth", user="bob")

    comment = await github_client.get_issue_comment("acme", "warehouse", human.id)

    assert (comment["body"], comment["user"]["login"], comment["user"]["type"]) == (
        "/tessera ack growth",
        "bob",
        "User",
    )


# Construction and the manifest flow ---------------------------------------------------------------


async def test_an_app_built_from_the_environment_talks_to_the_configured_api(
    fake_github: FakeGitHub, app_private_key: str, tmp_path, repo
) -> None:
    key_file = tmp_path / "app.pem"
    key_file.write_text(app_private_key)
    settings = Settings.from_env(
        {
            "TESSERA_GITHUB_APP_ID": str(APP_ID),
            "TESSERA_GITHUB_PRIVATE_KEY_PATH": str(key_file),
            "TESSERA_GITHUB_API_URL": fake_github.url + "/",
        }
    )
    app = GitHubApp.from_settings(settings)
    try:
        gh = await app.for_installation(INSTALLATION_ID)
        assert (await gh.get_repo("acme", "warehouse"))["full_name"] == "acme/warehouse"
    finally:
        await app.close()
    assert (app.app_id, app.api_url) == (APP_ID, fake_github.url)


def test_a_private_key_that_is_not_pem_is_a_configuration_error() -> None:
    from app.errors import ConfigError

    with pytest.raises(ConfigError, match="not a usable PEM private key"):
        GitHubApp(APP_ID, "-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----\n")


def test_from_settings_without_an_app_says_what_to_set() -> None:
    from app.errors import ConfigError

    with pytest.raises(ConfigError, match="TESSERA_GITHUB_APP_ID"):
        GitHubApp.from_settings(Settings())


async def test_enterprise_server_api_path_is_honoured(app_private_key: str) -> None:
    async with FakeGitHub(app_id=APP_ID, private_key_pem=app_private_key, api_prefix="/api/v3") as ghes:
        ghes.add_repo("acme/warehouse", installation_id=INSTALLATION_ID, files={"a.sql": "select 1"})
        app = GitHubApp(APP_ID, app_private_key, ghes.url)
        try:
            gh = await app.for_installation(INSTALLATION_ID)
            found = await gh.get_file("acme", "warehouse", "a.sql", "main")
        finally:
            await app.close()
        assert ghes.url.endswith("/api/v3")
        assert found is not None and found.text == "select 1"
        assert [r.path for r in ghes.requests] == [
            "/app/installations/1/access_tokens",
            "/repos/acme/warehouse/contents/a.sql",
        ]
        ghes.assert_no_violations()


async def test_manifest_code_converts_once_without_credentials(
    fake_github: FakeGitHub, app_private_key: str
) -> None:
    code = fake_github.manifest_code(app_id=99, slug="tessera-acme", webhook_secret="s3cret")

    created = await convert_manifest(code, fake_github.url)

    assert (created["id"], created["slug"], created["webhook_secret"]) == (99, "tessera-acme", "s3cret")
    assert created["pem"] == app_private_key
    (request,) = fake_github.requests_to("POST", f"/app-manifests/{code}/conversions")
    assert "authorization" not in request.headers
    with pytest.raises(gidgethub.BadRequest) as again:
        await convert_manifest(code, fake_github.url)
    assert again.value.status_code == 404


# Through the durable queue --------------------------------------------------------------------------


async def test_the_queue_retries_github_failures_until_the_check_run_lands_once(
    fake_github: FakeGitHub, github_app: GitHubApp, repo, store, app_settings, fake_clock
) -> None:
    from gidgethub.routing import Router

    from app.queue import JobQueue
    from app.store import NewDelivery
    from tests.fixtures_app import wait_until

    head = repo.resolve("main")
    fake_github.script(
        "POST", "/repos/acme/warehouse/check-runs", server_error(502), secondary_rate_limit(retry_after=30)
    )
    attempts: list[float] = []
    router = Router()

    @router.register("pull_request")
    async def start_check(event, ctx) -> None:
        attempts.append(ctx.clock.now())
        gh = await ctx.github.for_installation(event.data["installation"]["id"])
        await gh.create_check_run("acme", "warehouse", name="Tessera", head_sha=event.data["head_sha"])

    payload = {"action": "opened", "installation": {"id": INSTALLATION_ID}, "head_sha": head}
    await store.insert_delivery(
        NewDelivery(
            delivery_id="d-1",
            event="pull_request",
            action="opened",
            ordering_key="pr:acme/warehouse#1",
            installation_id=INSTALLATION_ID,
            repository="acme/warehouse",
            payload=json.dumps(payload),
            received_at=fake_clock.now(),
        )
    )
    queue = JobQueue(
        store, router, app_settings, github=github_app, clock=fake_clock, workers=1, rng=lambda: 1.0
    )
    await queue.start()
    try:
        await wait_until(lambda: _delivery_status(store, "d-1", "done"))
    finally:
        await queue.stop()

    assert len(attempts) == 3
    assert attempts[2] - attempts[1] == 30.0  # GitHub's retry-after beat the 2 s back-off
    assert [r.status for r in fake_github.requests_to("POST", "/repos/acme/warehouse/check-runs")] == [
        502,
        403,
        201,
    ]
    assert len(repo.check_runs(name="Tessera", head_sha=head)) == 1


async def _delivery_status(store, delivery_id: str, status: str) -> bool:
    delivery = await store.get_delivery(delivery_id)
    return delivery is not None and delivery.status == status


async def test_a_tarball_follows_githubs_redirect_without_taking_the_token_to_the_download_host(
    fake_github: FakeGitHub, github_app: GitHubApp, repo
) -> None:
    gh = await github_app.for_installation(INSTALLATION_ID)
    sink = io.BytesIO()
    size = await gh.download_tarball("acme", "warehouse", repo.resolve("main"), sink, max_bytes=1024 * 1024)

    assert size == len(sink.getvalue()) > 0
    with tarfile.open(fileobj=io.BytesIO(sink.getvalue()), mode="r:gz") as archive:
        names = archive.getnames()
        member = next(m for m in archive.getmembers() if m.name.endswith("/models/fct_revenue.sql"))
        assert archive.extractfile(member).read() == b"select 1 as revenue\n"
    assert names[0].startswith("acme-warehouse-") and len(fake_github.downloads) == 1
    [api_call] = fake_github.requests_to("GET", "/repos/acme/warehouse/tarball/*")
    assert api_call.status == 302 and api_call.headers["authorization"].startswith("token ")
    fake_github.assert_no_violations()  # the download host saw no Authorization header


async def test_a_tarball_larger_than_allowed_stops_mid_download(
    fake_github: FakeGitHub, github_app: GitHubApp, repo
) -> None:
    gh = await github_app.for_installation(INSTALLATION_ID)
    fake_github.tarball_override = b"\x1f\x8b" + b"\0" * 4096
    with pytest.raises(ArchiveTooLarge, match="over"):
        await gh.download_tarball("acme", "warehouse", repo.resolve("main"), io.BytesIO(), max_bytes=1000)


async def test_a_tarball_of_an_unknown_commit_is_githubs_404(
    fake_github: FakeGitHub, github_app: GitHubApp, repo
) -> None:
    gh = await github_app.for_installation(INSTALLATION_ID)
    with pytest.raises(gidgethub.BadRequest) as raised:
        await gh.download_tarball("acme", "warehouse", "f" * 40, io.BytesIO(), max_bytes=1000)
    assert raised.value.status_code == 404 and fake_github.downloads == []


async def test_a_tarball_request_answered_502_is_transient(
    fake_github: FakeGitHub, github_app: GitHubApp, repo
) -> None:
    gh = await github_app.for_installation(INSTALLATION_ID)
    fake_github.script("GET", "/repos/acme/warehouse/tarball/*", server_error(502))
    with pytest.raises(TransientError, match="502"):
        await gh.download_tarball("acme", "warehouse", repo.resolve("main"), io.BytesIO(), max_bytes=1000)


async def test_a_budget_under_five_percent_asks_to_wait_until_the_reset_and_a_fresh_window_clears_it(
    fake_github: FakeGitHub, github_app: GitHubApp, repo, clock: Clock
) -> None:
    gh = await github_app.for_installation(INSTALLATION_ID)
    await gh.get_repo("acme", "warehouse")
    assert gh.budget_wait() is None

    fake_github.spend_rate_budget(4_800)  # 199 of 5,000 left after the next call: under 5 %
    await gh.get_repo("acme", "warehouse")
    wait = gh.budget_wait()
    assert wait is not None and wait.until == fake_github.rate_window_start + 3600
    assert wait.seconds == pytest.approx(3600, abs=1)

    clock.now = wait.until
    await gh.get_repo("acme", "warehouse")  # the fake's new window: the whole budget again
    assert gh.budget_wait() is None
