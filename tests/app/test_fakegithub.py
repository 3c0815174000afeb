"""The fake GitHub itself: it must refuse and answer like GitHub, or the suite tests a fiction.

These tests talk to the fake with a plain aiohttp session (not Tessera's client) so they check the
raw protocol: status codes, error bodies, headers, pagination links.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest

from tests.fakegithub import MAX_PR_FILES, FakeGitHub, git_blob_sha, server_error
from tests.fixtures_github import APP_ID, INSTALLATION_ID

ROOT = Path(__file__).resolve().parents[2]
SHARED_OPENAPI = ROOT / ".." / "shared" / "fixtures" / "github" / "openapi" / "api.github.com.json"
SHARED_EXAMPLES = ROOT / ".." / "shared" / "fixtures" / "github" / "rest-examples"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def token(fake_github: FakeGitHub) -> str:
    return fake_github.issue_token(INSTALLATION_ID)


@pytest.fixture
def repo(fake_github: FakeGitHub):
    repo = fake_github.add_repo("acme/warehouse", installation_id=INSTALLATION_ID)
    repo.commit({"models/a.sql": "select 1 as id\n"}, branch="main")
    repo.commit({"models/a.sql": "select 1 as id, 2 as b\n"}, parent="main", branch="feature")
    return repo


async def call(
    http: aiohttp.ClientSession,
    fake: FakeGitHub,
    method: str,
    path: str,
    *,
    auth: str | None = None,
    body: Any = None,
    params: dict[str, str] | None = None,
) -> tuple[int, Any, dict[str, str]]:
    headers = {"accept": "application/vnd.github+json"}
    if auth:
        headers["authorization"] = auth
    url = fake.url + path
    async with http.request(method, url, headers=headers, json=body, params=params) as response:
        text = await response.text()
        return response.status, (json.loads(text) if text else None), dict(response.headers)


def app_jwt(private_key: str, *, iat: float, exp: float, iss: str = str(APP_ID)) -> str:
    return jwt.encode({"iat": int(iat), "exp": int(exp), "iss": iss}, private_key, algorithm="RS256")


# Authentication ------------------------------------------------------------------------------------


async def test_wrong_token_gets_401_with_githubs_error_body(http, fake_github: FakeGitHub, repo) -> None:
    status, body, headers = await call(
        http, fake_github, "GET", "/repos/acme/warehouse", auth="token ghs_nope"
    )

    assert status == 401
    assert body["message"] == "Bad credentials"
    assert body["documentation_url"].startswith("https://docs.github.com/")
    assert "x-ratelimit-remaining" in {k.lower() for k in headers}


async def test_missing_token_gets_401(http, fake_github: FakeGitHub, repo) -> None:
    status, body, _ = await call(http, fake_github, "GET", "/repos/acme/warehouse")
    assert (status, body["message"]) == (401, "Requires authentication")


async def test_expired_token_gets_401(http, fake_github: FakeGitHub, repo) -> None:
    now = [time.time()]
    fake_github.clock = lambda: now[0]
    token = fake_github.issue_token(INSTALLATION_ID)
    assert (await call(http, fake_github, "GET", "/repos/acme/warehouse", auth=f"token {token}"))[0] == 200

    now[0] += 3601
    status, body, _ = await call(http, fake_github, "GET", "/repos/acme/warehouse", auth=f"token {token}")
    assert (status, body["message"]) == (401, "Bad credentials")


async def test_repository_outside_the_installation_is_not_found(
    http, fake_github: FakeGitHub, token: str
) -> None:
    fake_github.add_repo("elsewhere/secret", files={"a.sql": "select 1"})
    status, body, _ = await call(http, fake_github, "GET", "/repos/elsewhere/secret", auth=f"token {token}")
    assert (status, body["message"]) == (404, "Not Found")


async def test_valid_app_jwt_gets_a_token_that_expires_in_an_hour(
    http, fake_github: FakeGitHub, app_private_key: str
) -> None:
    now = time.time()
    auth = f"Bearer {app_jwt(app_private_key, iat=now - 60, exp=now + 540)}"
    status, body, _ = await call(
        http, fake_github, "POST", f"/app/installations/{INSTALLATION_ID}/access_tokens", auth=auth
    )

    assert status == 201
    assert body["token"].startswith("ghs_") and body["token"] in fake_github.tokens
    expires = body["expires_at"]
    assert abs(fake_github.tokens[body["token"]][1] - now - 3600) < 5
    assert expires.endswith("Z")


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"iat": -60, "exp": 660}, "too far in the future"),
        ({"iat": 120, "exp": 540}, "'Issued at' claim"),
        ({"iat": -700, "exp": -100}, "'Expiration time' claim"),
        ({"iat": -60, "exp": 540, "iss": "1"}, "Integration not found"),
    ],
)
async def test_app_jwt_breaking_githubs_rules_gets_401(
    http, fake_github: FakeGitHub, app_private_key: str, claims: dict[str, Any], message: str
) -> None:
    now = time.time()
    token = app_jwt(
        app_private_key, iat=now + claims["iat"], exp=now + claims["exp"], iss=claims.get("iss", str(APP_ID))
    )
    status, body, _ = await call(
        http, fake_github, "POST", "/app/installations/1/access_tokens", auth=f"Bearer {token}"
    )
    assert status == 401
    assert message in body["message"]


async def test_app_jwt_signed_by_another_key_gets_401(http, fake_github: FakeGitHub) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    now = time.time()
    token = app_jwt(other.decode(), iat=now - 60, exp=now + 540)
    status, body, _ = await call(http, fake_github, "GET", "/app/installations/1", auth=f"Bearer {token}")
    assert status == 401
    assert "could not be decoded" in body["message"]


async def test_installation_token_cannot_call_app_endpoints(
    http, fake_github: FakeGitHub, token: str
) -> None:
    status, _, _ = await call(http, fake_github, "GET", "/app/installations/1", auth=f"token {token}")
    assert status == 401


# Headers and pagination ----------------------------------------------------------------------------


async def test_every_response_carries_rate_limit_headers_and_counts_down(
    http, fake_github: FakeGitHub, token: str, repo
) -> None:
    seen = []
    for path in ("/repos/acme/warehouse", "/repos/acme/warehouse/pulls/999"):
        status, _, headers = await call(http, fake_github, "GET", path, auth=f"token {token}")
        lower = {k.lower(): v for k, v in headers.items()}
        assert {
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "x-ratelimit-used",
            "x-ratelimit-resource",
        } <= set(lower)
        seen.append((status, int(lower["x-ratelimit-remaining"]), int(lower["x-ratelimit-used"])))
    assert seen == [(200, 4999, 1), (404, 4998, 2)]


async def test_comment_pages_link_to_next_last_prev_and_first(
    http, fake_github: FakeGitHub, token: str, repo
) -> None:
    pull = repo.open_pull_request(head="feature")
    for i in range(5):
        repo.add_comment(pull.number, f"comment {i}", user="bob")
    path = f"/repos/acme/warehouse/issues/{pull.number}/comments"

    pages = []
    for page in ("1", "2", "3"):
        status, body, headers = await call(
            http, fake_github, "GET", path, auth=f"token {token}", params={"per_page": "2", "page": page}
        )
        assert status == 200
        pages.append(([c["body"] for c in body], headers.get("Link", "")))

    assert [bodies for bodies, _ in pages] == [
        ["comment 0", "comment 1"],
        ["comment 2", "comment 3"],
        ["comment 4"],
    ]
    first, middle, last = (link for _, link in pages)
    assert 'per_page=2&page=2>; rel="next"' in first and 'per_page=2&page=3>; rel="last"' in first
    assert 'rel="prev"' not in first
    assert all(f'rel="{rel}"' in middle for rel in ("prev", "first", "next", "last"))
    assert 'rel="next"' not in last and 'per_page=2&page=2>; rel="prev"' in last


async def test_pull_request_files_stop_at_3000(http, fake_github: FakeGitHub, token: str, repo) -> None:
    repo.commit({f"m/{i:04}.sql": "select 1" for i in range(MAX_PR_FILES + 5)}, parent="main", branch="huge")
    pull = repo.open_pull_request(head="huge")

    status, body, headers = await call(
        http,
        fake_github,
        "GET",
        f"/repos/acme/warehouse/pulls/{pull.number}/files",
        auth=f"token {token}",
        params={"per_page": "100", "page": "30"},
    )
    assert status == 200 and len(body) == 100
    assert 'rel="next"' not in headers.get("Link", "")
    _, pull_json, _ = await call(
        http, fake_github, "GET", f"/repos/acme/warehouse/pulls/{pull.number}", auth=f"token {token}"
    )
    assert pull_json["changed_files"] == MAX_PR_FILES + 5


# Validation GitHub does itself --------------------------------------------------------------------


async def test_comment_over_65536_characters_is_refused_with_422(
    http, fake_github: FakeGitHub, token: str, repo
) -> None:
    pull = repo.open_pull_request(head="feature")
    path = f"/repos/acme/warehouse/issues/{pull.number}/comments"

    status, body, _ = await call(
        http, fake_github, "POST", path, auth=f"token {token}", body={"body": "x" * 65537}
    )
    assert status == 422
    assert body["message"] == "Validation Failed"
    assert body["errors"][0]["field"] == "body" and "too long" in body["errors"][0]["message"]

    status, created, _ = await call(
        http, fake_github, "POST", path, auth=f"token {token}", body={"body": "x" * 65536}
    )
    assert status == 201
    status, _, _ = await call(
        http,
        fake_github,
        "PATCH",
        f"/repos/acme/warehouse/issues/comments/{created['id']}",
        auth=f"token {token}",
        body={"body": "y" * 65537},
    )
    assert status == 422
    assert repo.comments(pull.number)[0].body == "x" * 65536


async def test_reacting_twice_answers_200_and_keeps_one_reaction(
    http, fake_github: FakeGitHub, token: str, repo
) -> None:
    pull = repo.open_pull_request(head="feature")
    comment = repo.add_comment(pull.number, "/tessera ack", user="bob")
    path = f"/repos/acme/warehouse/issues/comments/{comment.id}/reactions"

    first = await call(http, fake_github, "POST", path, auth=f"token {token}", body={"content": "+1"})
    second = await call(http, fake_github, "POST", path, auth=f"token {token}", body={"content": "+1"})

    assert (first[0], second[0]) == (201, 200)
    assert [r.content for r in repo.reactions(comment.id)] == ["+1"]


async def test_check_run_annotations_accumulate_across_updates(
    http, fake_github: FakeGitHub, token: str, repo
) -> None:
    head = repo.resolve("feature")
    annotation = {
        "path": "models/a.sql",
        "start_line": 1,
        "end_line": 1,
        "annotation_level": "warning",
        "message": "m",
    }
    status, run, _ = await call(
        http,
        fake_github,
        "POST",
        "/repos/acme/warehouse/check-runs",
        auth=f"token {token}",
        body={
            "name": "Tessera",
            "head_sha": head,
            "status": "in_progress",
            "output": {"title": "t", "summary": "s", "annotations": [annotation] * 50},
        },
    )
    assert status == 201
    status, updated, _ = await call(
        http,
        fake_github,
        "PATCH",
        f"/repos/acme/warehouse/check-runs/{run['id']}",
        auth=f"token {token}",
        body={
            "conclusion": "failure",
            "output": {"title": "t2", "summary": "s2", "annotations": [annotation] * 3},
        },
    )

    assert status == 200
    assert updated["status"] == "completed" and updated["conclusion"] == "failure"
    assert updated["output"]["annotations_count"] == 53
    latest = repo.check_run("Tessera", head_sha=head)
    assert latest is not None and len(latest.annotations) == 53 and latest.output["title"] == "t2"
    assert len(latest.bodies) == 2


async def test_check_run_on_an_unknown_commit_is_refused(
    http, fake_github: FakeGitHub, token: str, repo
) -> None:
    status, body, _ = await call(
        http,
        fake_github,
        "POST",
        "/repos/acme/warehouse/check-runs",
        auth=f"token {token}",
        body={"name": "Tessera", "head_sha": "0" * 40},
    )
    assert status == 422 and "No commit found" in body["message"]


# Validation against GitHub's REST description --------------------------------------------------------


async def test_a_body_the_rest_description_forbids_is_refused_and_recorded(
    http, fake_github: FakeGitHub, token: str, repo
) -> None:
    head = repo.resolve("feature")
    status, body, _ = await call(
        http,
        fake_github,
        "POST",
        "/repos/acme/warehouse/check-runs",
        auth=f"token {token}",
        body={"name": "Tessera", "head_sha": head, "conclusion": "passed"},
    )

    assert status == 422 and body["message"].startswith("Invalid request.")
    assert len(fake_github.violations) == 1
    assert (
        "checks/create" in fake_github.violations[0] and "'passed' is not one of" in fake_github.violations[0]
    )
    assert repo.check_runs() == []
    fake_github.violations.clear()  # seen; the fixture would fail the test otherwise


async def test_more_than_50_annotations_in_one_request_is_a_violation(
    http, fake_github: FakeGitHub, token: str, repo
) -> None:
    annotation = {"path": "a", "start_line": 1, "end_line": 1, "annotation_level": "notice", "message": "m"}
    await call(
        http,
        fake_github,
        "POST",
        "/repos/acme/warehouse/check-runs",
        auth=f"token {token}",
        body={
            "name": "T",
            "head_sha": repo.resolve("main"),
            "output": {"title": "t", "summary": "s", "annotations": [annotation] * 51},
        },
    )
    assert any("output/annotations" in v and "too long" in v for v in fake_github.violations)
    fake_github.violations.clear()


async def test_undocumented_query_parameters_and_endpoints_are_violations(
    http, fake_github: FakeGitHub, token: str, repo
) -> None:
    await call(
        http,
        fake_github,
        "GET",
        "/repos/acme/warehouse/pulls/1/files",
        auth=f"token {token}",
        params={"perpage": "100"},
    )
    await call(http, fake_github, "DELETE", "/repos/acme/warehouse", auth=f"token {token}")

    assert any("'perpage' is not documented" in v for v in fake_github.violations)
    assert any(
        v.startswith("DELETE /repos/acme/warehouse: no such operation") for v in fake_github.violations
    )
    fake_github.violations.clear()


async def test_fixture_fails_a_test_that_left_a_violation(app_private_key: str) -> None:
    fake = FakeGitHub(app_id=APP_ID, private_key_pem=app_private_key)
    fake.violations.append("POST /x: something")
    with pytest.raises(AssertionError, match="REST description"):
        fake.assert_no_violations()


# State: commits, diffs, contents -------------------------------------------------------------------


async def test_diff_reports_added_removed_modified_and_renamed(
    http, fake_github: FakeGitHub, token: str
) -> None:
    repo = fake_github.add_repo(
        "acme/dbt",
        installation_id=INSTALLATION_ID,
        files={
            "keep.sql": "select 1",
            "edit.sql": "select 1\nfrom a\n",
            "gone.sql": "x",
            "old_name.sql": "same",
        },
    )
    repo.commit(
        {
            "edit.sql": "select 2\nfrom a\n",
            "gone.sql": None,
            "old_name.sql": None,
            "new_name.sql": "same",
            "new.sql": "select 3",
        },
        parent="main",
        branch="change",
    )
    pull = repo.open_pull_request(head="change")

    _, files, _ = await call(
        http, fake_github, "GET", f"/repos/acme/dbt/pulls/{pull.number}/files", auth=f"token {token}"
    )

    by_name = {f["filename"]: f for f in files}
    assert {n: f["status"] for n, f in by_name.items()} == {
        "edit.sql": "modified",
        "gone.sql": "removed",
        "new.sql": "added",
        "new_name.sql": "renamed",
    }
    assert by_name["new_name.sql"]["previous_filename"] == "old_name.sql"
    assert by_name["edit.sql"]["patch"] == "@@ -1,2 +1,2 @@\n-select 1\n+select 2\n from a"
    assert (by_name["edit.sql"]["additions"], by_name["edit.sql"]["deletions"]) == (1, 1)
    assert by_name["edit.sql"]["sha"] == git_blob_sha(b"select 2\nfrom a\n")


async def test_push_to_the_head_branch_moves_the_pull_request(fake_github: FakeGitHub, repo) -> None:
    pull = repo.open_pull_request(head="feature")
    before = pull.head_sha
    after = repo.push("feature", {"models/b.sql": "select 2"})
    assert (before != after, pull.head_sha) == (True, after)


async def test_contents_of_a_directory_list_its_entries(
    http, fake_github: FakeGitHub, token: str, repo
) -> None:
    repo.commit({"models/staging/s.sql": "select 1"}, branch="main")
    status, body, _ = await call(
        http,
        fake_github,
        "GET",
        "/repos/acme/warehouse/contents/models",
        auth=f"token {token}",
        params={"ref": "main"},
    )
    assert status == 200
    assert {(e["name"], e["type"]) for e in body} == {("a.sql", "file"), ("staging", "dir")}


async def test_fork_pull_request_names_the_fork_as_head_repository(
    http, fake_github: FakeGitHub, token: str, repo
) -> None:
    pull = repo.open_pull_request(head="feature", head_repo="outsider/warehouse", author="outsider")
    _, body, _ = await call(
        http, fake_github, "GET", f"/repos/acme/warehouse/pulls/{pull.number}", auth=f"token {token}"
    )
    assert body["head"]["repo"]["full_name"] == "outsider/warehouse" and body["head"]["repo"]["fork"] is True
    assert body["base"]["repo"]["full_name"] == "acme/warehouse"
    assert body["head"]["sha"] == repo.resolve("feature")


async def test_scripted_answers_come_first_then_normal_service(
    http, fake_github: FakeGitHub, token: str, repo
) -> None:
    fake_github.script("GET", "/repos/acme/*", server_error(503))
    statuses = [
        (await call(http, fake_github, "GET", "/repos/acme/warehouse", auth=f"token {token}"))[0]
        for _ in range(2)
    ]
    assert statuses == [503, 200]


async def test_manifest_form_redirects_back_with_a_code_that_converts(
    http, fake_github: FakeGitHub, app_private_key: str
) -> None:
    manifest = {
        "name": "Tessera Acme",
        "url": "https://tessera.example.com",
        "hook_attributes": {"url": "https://tessera.example.com/webhooks/github"},
        "redirect_url": "http://127.0.0.1:9999/callback",
    }
    async with http.post(
        f"{fake_github.web_url}/organizations/acme/settings/apps/new?state=xyz",
        data={"manifest": json.dumps(manifest)},
        allow_redirects=False,
    ) as response:
        assert response.status == 302
        location = response.headers["Location"]
    assert location.startswith("http://127.0.0.1:9999/callback?code=") and location.endswith("&state=xyz")
    code = location.split("code=")[1].split("&")[0]

    status, app, _ = await call(http, fake_github, "POST", f"/app-manifests/{code}/conversions")
    assert status == 201
    assert (app["slug"], app["pem"]) == ("tessera-acme", app_private_key)
    assert fake_github.manifests_posted[0]["org"] == "acme"


# The checked-in data stays true to the shared reference ----------------------------------------------


def _load_script(relative: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(Path(relative).stem, ROOT / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.shared
@pytest.mark.skipif(not SHARED_OPENAPI.exists(), reason="../shared is absent")
def test_checked_in_subset_and_examples_match_githubs_description() -> None:
    description = json.loads(SHARED_OPENAPI.read_text())

    subset = _load_script("tests/data/github/openapi/extract.py").extract(description)
    examples = _load_script("tests/data/github/rest/trim.py").examples_of(description)

    assert subset == json.loads((ROOT / "tests/data/github/openapi/subset.json").read_text())
    for name, value in examples.items():
        assert value == json.loads((ROOT / "app/demo/data/github/rest" / f"{name}.json").read_text()), name


@pytest.mark.shared
@pytest.mark.skipif(not SHARED_EXAMPLES.exists(), reason="../shared is absent")
def test_githubs_own_request_examples_pass_the_fakes_validation(app_private_key: str) -> None:
    fake = FakeGitHub(app_id=APP_ID, private_key_pem=app_private_key)
    checked = 0
    for example in sorted(SHARED_EXAMPLES.glob("*.json")):
        data = json.loads(example.read_text())
        path = data["path"].replace("{owner}", "acme").replace("{repo}", "warehouse")
        path = path.replace("{basehead}", "main...feature")
        path = path.format_map(
            {
                k: "7"
                for k in (
                    "installation_id",
                    "issue_number",
                    "comment_id",
                    "check_run_id",
                    "pull_number",
                    "org",
                    "team_slug",
                    "username",
                    "path",
                )
            }
        )
        for body in data.get("request_examples", {}).values() or [None]:
            operation_id, problems = fake._validate(data["method"], path, {}, body)
            assert operation_id == data["operationId"], example.name
            assert problems == [], (example.name, problems)
            checked += 1
    assert checked >= 13 and fake.violations == []


# Answers have GitHub's shape -------------------------------------------------------------------------

# Keys of GitHub's example a fake answer may leave out (GitHub itself omits them in these cases).
OPTIONAL_KEYS = {
    "apps.create-installation-access-token": {"repositories"},  # only for tokens limited to repositories
    "pulls.list-files": {"patch"},  # absent for binary files and pure renames
}


async def test_answers_carry_every_field_of_githubs_examples(
    http, fake_github: FakeGitHub, token: str, app_private_key: str, repo
) -> None:
    pull = repo.open_pull_request(head="feature")
    fake_github.add_team_member("acme", "growth", "bob")
    repo.set_permission("bob", "write")
    comment = repo.add_comment(pull.number, "hi", user="bob")
    blob = repo.commits[repo.resolve("main")].files["models/a.sql"]
    now = time.time()
    jwt_auth = f"Bearer {app_jwt(app_private_key, iat=now - 60, exp=now + 540)}"
    auth = f"token {token}"
    calls = {
        "apps.create-installation-access-token": (
            "POST",
            "/app/installations/1/access_tokens",
            jwt_auth,
            None,
        ),
        "apps.get-installation": ("GET", "/app/installations/1", jwt_auth, None),
        "apps.create-from-manifest": (
            "POST",
            f"/app-manifests/{fake_github.manifest_code()}/conversions",
            None,
            None,
        ),
        "checks.create": (
            "POST",
            "/repos/acme/warehouse/check-runs",
            auth,
            {"name": "Tessera", "head_sha": repo.resolve("feature")},
        ),
        "git.get-blob": ("GET", f"/repos/acme/warehouse/git/blobs/{blob}", auth, None),
        "git.get-tree": ("GET", "/repos/acme/warehouse/git/trees/main", auth, None),
        "issues.create-comment": (
            "POST",
            f"/repos/acme/warehouse/issues/{pull.number}/comments",
            auth,
            {"body": "x"},
        ),
        "pulls.get": ("GET", f"/repos/acme/warehouse/pulls/{pull.number}", auth, None),
        "pulls.list-files": ("GET", f"/repos/acme/warehouse/pulls/{pull.number}/files", auth, None),
        "reactions.create-for-issue-comment": (
            "POST",
            f"/repos/acme/warehouse/issues/comments/{comment.id}/reactions",
            auth,
            {"content": "+1"},
        ),
        "repos.compare-commits-with-basehead": (
            "GET",
            "/repos/acme/warehouse/compare/main...feature",
            auth,
            None,
        ),
        "repos.get": ("GET", "/repos/acme/warehouse", auth, None),
        "repos.get-collaborator-permission-level": (
            "GET",
            "/repos/acme/warehouse/collaborators/bob/permission",
            auth,
            None,
        ),
        "repos.get-content": ("GET", "/repos/acme/warehouse/contents/models/a.sql", auth, None),
        "teams.get-membership-for-user-in-org": (
            "GET",
            "/orgs/acme/teams/growth/memberships/bob",
            auth,
            None,
        ),
    }
    templates = {p.stem for p in (ROOT / "app/demo/data/github/rest").glob("*.json")}
    assert templates == set(calls)

    for name, (method, path, credentials, body) in calls.items():
        status, answer, _ = await call(http, fake_github, method, path, auth=credentials, body=body)
        assert status in (200, 201), (name, answer)
        example = json.loads((ROOT / "app/demo/data/github/rest" / f"{name}.json").read_text())
        example, answer = (example[0], answer[0]) if isinstance(example, list) else (example, answer)
        missing = set(example) - set(answer) - OPTIONAL_KEYS.get(name, set())
        assert not missing, f"{name} lacks {sorted(missing)}"


# Webhook payloads built from the fake's state ------------------------------------------------------

WEBHOOKS = ROOT / "tests" / "data" / "github" / "webhooks"


def _keys_of(example: str) -> tuple[set[str], dict[str, set[str]]]:
    data = json.loads((WEBHOOKS / example).read_text())
    return set(data), {k: set(v) for k, v in data.items() if isinstance(v, dict)}


def _assert_shaped_like(payload: dict[str, Any], example: str) -> None:
    """The payload has every top-level key, and every key of each nested object, of a real delivery."""
    if not (WEBHOOKS / example).exists():
        pytest.skip(f"{example} is not in tests/data yet")
    top, nested = _keys_of(example)
    assert top <= set(payload), f"missing {top - set(payload)}"
    for key, keys in nested.items():
        if isinstance(payload.get(key), dict):
            assert keys <= set(payload[key]), f"{key} lacks {keys - set(payload[key])}"


async def test_pull_request_event_matches_the_fakes_pull_request(fake_github: FakeGitHub, repo) -> None:
    pull = repo.open_pull_request(head="feature", author="alice")
    before = pull.head_sha
    repo.push("feature", {"models/c.sql": "select 3"})

    payload = fake_github.event_pull_request(repo, pull, "synchronize", before=before)

    assert payload["pull_request"]["head"]["sha"] == repo.resolve("feature") == payload["after"]
    assert payload["before"] == before
    assert payload["pull_request"]["base"]["sha"] == repo.resolve("main")
    assert payload["installation"]["id"] == INSTALLATION_ID
    assert payload["sender"]["login"] == "alice"
    _assert_shaped_like(payload, "pull_request/opened.json")


async def test_issue_comment_event_is_on_a_pull_request_and_names_bots_as_bots(
    fake_github: FakeGitHub, repo
) -> None:
    pull = repo.open_pull_request(head="feature")
    human = repo.add_comment(pull.number, "/tessera ack", user="bob")
    bot = repo.add_comment(pull.number, "/tessera ack", user="dependabot[bot]", user_type="Bot")

    payload = fake_github.event_issue_comment(repo, human)
    from_bot = fake_github.event_issue_comment(repo, bot)

    assert payload["issue"]["number"] == pull.number and "pull_request" in payload["issue"]
    assert (payload["comment"]["id"], payload["comment"]["body"]) == (human.id, "/tessera ack")
    assert payload["sender"] == payload["comment"]["user"] and payload["sender"]["type"] == "User"
    assert from_bot["sender"]["type"] == "Bot"
    _assert_shaped_like(payload, "issue_comment/created.on-pull-request.json")


async def test_check_run_event_carries_the_run_and_requested_action(
    http, fake_github: FakeGitHub, token: str, repo
) -> None:
    pull = repo.open_pull_request(head="feature")
    await call(
        http,
        fake_github,
        "POST",
        "/repos/acme/warehouse/check-runs",
        auth=f"token {token}",
        body={
            "name": "Tessera",
            "head_sha": pull.head_sha,
            "conclusion": "action_required",
            "output": {"title": "t", "summary": "s"},
        },
    )
    run = repo.check_run("Tessera")
    assert run is not None

    payload = fake_github.event_check_run(repo, run, "requested_action", identifier="recheck")

    assert payload["check_run"]["id"] == run.id and payload["requested_action"] == {"identifier": "recheck"}
    assert [p["number"] for p in payload["check_run"]["pull_requests"]] == [pull.number]
    assert payload["check_run"]["app"]["id"] == APP_ID
    _assert_shaped_like(payload, "check_run/requested_action.json")


async def test_merge_moves_the_base_branch_and_push_event_lists_the_new_commit(
    fake_github: FakeGitHub, repo
) -> None:
    pull = repo.open_pull_request(head="feature")
    before = repo.resolve("main")

    merged = repo.merge(pull)
    push = fake_github.event_push(repo, "main", before)
    closed = fake_github.event_pull_request(repo, pull, "closed")

    assert repo.files_at("main") == {"models/a.sql": b"select 1 as id, 2 as b\n"}
    assert (push["before"], push["after"], [c["id"] for c in push["commits"]]) == (before, merged, [merged])
    assert closed["pull_request"]["merged"] is True and closed["pull_request"]["merge_commit_sha"] == merged
    _assert_shaped_like(push, "push/push.json")


async def test_installation_event_lists_the_covered_repositories(fake_github: FakeGitHub, repo) -> None:
    fake_github.add_repo("elsewhere/other")

    payload = fake_github.event_installation(INSTALLATION_ID)

    assert [r["full_name"] for r in payload["repositories"]] == ["acme/warehouse"]
    assert payload["installation"]["account"]["login"] == "acme"
    _assert_shaped_like(payload, "installation/created.json")


async def test_an_installation_without_the_needed_permission_gets_403(
    http, fake_github: FakeGitHub, repo
) -> None:
    fake_github.installations[INSTALLATION_ID].permissions.pop("members")
    fake_github.installations[INSTALLATION_ID].permissions["checks"] = "read"
    fake_github.add_team_member("acme", "growth", "bob")
    auth = f"token {fake_github.issue_token(INSTALLATION_ID)}"

    team = await call(http, fake_github, "GET", "/orgs/acme/teams/growth/memberships/bob", auth=auth)
    check = await call(
        http,
        fake_github,
        "POST",
        "/repos/acme/warehouse/check-runs",
        auth=auth,
        body={"name": "Tessera", "head_sha": repo.resolve("main")},
    )
    listed = await call(
        http,
        fake_github,
        "GET",
        f"/repos/acme/warehouse/commits/{repo.resolve('main')}/check-runs",
        auth=auth,
    )

    assert (team[0], team[1]["message"]) == (403, "Resource not accessible by integration")
    assert check[0] == 403 and repo.check_runs() == []
    assert listed[0] == 200  # read is enough to list


async def test_a_tree_past_the_limit_is_truncated_and_says_so(
    http, fake_github: FakeGitHub, token: str, repo
) -> None:
    repo.tree_limit = 2
    repo.commit({"b.sql": "select 2", "c/d.sql": "select 3"}, branch="main")

    _, tree, _ = await call(
        http,
        fake_github,
        "GET",
        "/repos/acme/warehouse/git/trees/main",
        auth=f"token {token}",
        params={"recursive": "1"},
    )

    assert tree["truncated"] is True and len(tree["tree"]) == 2
