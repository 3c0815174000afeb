"""``tessera setup`` runs GitHub's manifest flow against the fake GitHub: the local form, the redirect
back with ``code`` and ``state``, the conversion, and env/PEM files that ``tessera serve`` can use."""

from __future__ import annotations

import argparse
import json
import re
import stat
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import yaml

from app.config import Settings
from app.github import GitHubApp
from app.setup import (
    SetupError,
    SetupOptions,
    SetupServer,
    add_arguments,
    api_url_for,
    convert_manifest_code,
    new_app_url,
    options_from_args,
    run,
    write_credentials,
)
from tests.fakegithub import FakeGitHub
from tests.fixtures_github import APP_ID, INSTALLATION_ID

REPO = Path(__file__).resolve().parents[2]
PUBLIC_URL = "https://tessera.acme.test"


class _Form(HTMLParser):
    """The form of the setup page as a browser sees it: action, method and hidden fields."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.method = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action, self.method = values["action"], values["method"]
        elif tag == "input":
            self.fields[values["name"]] = values["value"]


def _env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))
    return {key: value for key, value in pairs}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


@pytest.fixture
async def setup_server(fake_github: FakeGitHub, tmp_path: Path) -> AsyncIterator[SetupServer]:
    options = SetupOptions(public_url=PUBLIC_URL, env_path=tmp_path / ".env", github_url=fake_github.web_url,
                           api_url=fake_github.url, org="acme", port=0)
    server = SetupServer(options)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def _open_form(browser: aiohttp.ClientSession, server: SetupServer) -> tuple[str, dict, str]:
    """What the operator's browser would post to GitHub: (action URL, manifest, state)."""
    async with browser.get(server.url + "/") as response:
        assert response.status == 200
        form = _Form()
        form.feed(await response.text())
    assert form.method == "post"
    state = parse_qs(urlsplit(form.action).query)["state"][0]
    return form.action, json.loads(form.fields["manifest"]), state


async def _submit(browser: aiohttp.ClientSession, action: str, manifest: dict) -> tuple[int, str]:
    """The operator presses the button: the form goes to GitHub, which redirects back to setup."""
    async with browser.post(action, data={"manifest": json.dumps(manifest)}) as response:
        return response.status, await response.text()


async def test_setup_creates_the_app_and_writes_credentials_serve_can_use(
        fake_github: FakeGitHub, setup_server: SetupServer, browser: aiohttp.ClientSession,
        app_private_key: str, tmp_path: Path) -> None:
    action, manifest, state = await _open_form(browser, setup_server)

    # the form posts the repository's manifest, with this deployment's URLs, to the org's new-App page
    assert action.split("?")[0] == f"{fake_github.web_url}/organizations/acme/settings/apps/new"
    deployed = yaml.safe_load((REPO / "deploy/app-manifest.yml").read_text())
    assert manifest["default_permissions"] == deployed["default_permissions"]
    assert manifest["default_events"] == deployed["default_events"]
    assert manifest["public"] is False
    assert manifest["hook_attributes"] == {"url": f"{PUBLIC_URL}/webhooks/github", "active": True}
    assert manifest["redirect_url"] == f"{setup_server.url}/callback"
    assert urlsplit(setup_server.url).hostname == "127.0.0.1"

    # GitHub creates the App and redirects the browser back with a one-time code and the state
    status, page = await _submit(browser, action, manifest)
    assert status == 200 and "created" in page
    [posted] = fake_github.manifests_posted
    assert posted["org"] == "acme" and posted["state"] == state and posted["manifest"] == manifest
    credentials = await setup_server.wait(timeout=5)
    assert credentials.id == APP_ID

    # the conversion went to the API, unauthenticated, once; the code is spent
    [conversion] = fake_github.requests_to("POST", "/app-manifests/*/conversions")
    assert "authorization" not in conversion.headers
    assert conversion.status == 201
    assert fake_github.manifest_codes == {}

    env_path = tmp_path / ".env"
    env = _env_file(env_path)
    pem_path = Path(env["TESSERA_GITHUB_PRIVATE_KEY_PATH"])
    assert pem_path.parent == tmp_path and pem_path.read_text().strip() == app_private_key.strip()
    assert _mode(env_path) == 0o600 and _mode(pem_path) == 0o600
    assert env["TESSERA_GITHUB_APP_ID"] == str(APP_ID)
    assert env["TESSERA_WEBHOOK_SECRET"] == credentials.webhook_secret and len(credentials.webhook_secret) >= 20
    assert env["TESSERA_PUBLIC_URL"] == PUBLIC_URL
    assert env["TESSERA_GITHUB_API_URL"] == fake_github.url
    # the OAuth client is recorded for sign-in to the pages, with a fresh session secret
    assert env["TESSERA_GITHUB_CLIENT_ID"] == credentials.client_id
    assert env["TESSERA_GITHUB_CLIENT_SECRET"] == credentials.client_secret
    assert len(env["TESSERA_SESSION_SECRET"]) >= 32 and env["TESSERA_GITHUB_WEB_URL"] == fake_github.url

    # what setup wrote is what serve reads, and the key signs JWTs GitHub accepts
    settings = Settings.from_env(env)
    assert settings.github_app_id == APP_ID and settings.webhook_secret == credentials.webhook_secret
    app = GitHubApp.from_settings(settings)
    try:
        installation = await app.get_installation(INSTALLATION_ID)
    finally:
        await app.close()
    assert installation["id"] == INSTALLATION_ID


async def test_callback_with_a_wrong_state_is_refused_and_exchanges_nothing(
        fake_github: FakeGitHub, setup_server: SetupServer, browser: aiohttp.ClientSession,
        tmp_path: Path) -> None:
    _, manifest, state = await _open_form(browser, setup_server)
    code = fake_github.manifest_code(manifest=manifest)

    for forged in ("", "x" * len(state), state[:-1]):
        async with browser.get(manifest["redirect_url"], params={"code": code, "state": forged}) as response:
            assert response.status == 400
            assert "state" in await response.text()
    assert fake_github.requests_to("POST", "/app-manifests/*/conversions") == []
    assert not (tmp_path / ".env").exists()
    assert code in fake_github.manifest_codes  # still unused

    # the real redirect still completes the flow afterwards
    async with browser.get(manifest["redirect_url"], params={"code": code, "state": state}) as response:
        assert response.status == 200
    assert (await setup_server.wait(timeout=5)).slug == fake_github.app_slug
    # and the page is single-use once done
    async with browser.get(manifest["redirect_url"], params={"code": code, "state": state}) as response:
        assert response.status == 410


async def test_a_code_github_does_not_know_fails_setup_with_github_s_answer(
        fake_github: FakeGitHub, setup_server: SetupServer, browser: aiohttp.ClientSession,
        tmp_path: Path) -> None:
    _, manifest, state = await _open_form(browser, setup_server)
    async with browser.get(manifest["redirect_url"], params={"code": "expired", "state": state}) as response:
        assert response.status == 502
    with pytest.raises(SetupError, match="refused"):
        await setup_server.wait(timeout=5)
    assert not (tmp_path / ".env").exists()


@pytest.mark.parametrize(
    ("api_url", "reason"),
    [("http://github.tessera-test.invalid", "could not be resolved"), ("http://127.0.0.1:9", "cannot connect to")],
    ids=["dns", "refused"],
)
async def test_a_network_failure_is_not_worded_as_github_refusing_the_code(api_url: str, reason: str) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(SetupError) as failed:
            await convert_manifest_code(session, api_url, "a-code")
    message = str(failed.value)
    assert message.startswith(f"could not reach GitHub at {api_url} (")
    assert reason in message and "refused the manifest code" not in message
    assert "Error(" not in message and "ClientConnector" not in message  # no raw exception text


async def test_enterprise_server_web_url_sends_the_form_there_and_the_exchange_to_its_api_v3(
        app_private_key: str, browser: aiohttp.ClientSession, tmp_path: Path) -> None:
    async with FakeGitHub(app_id=77, private_key_pem=app_private_key, api_prefix="/api/v3") as ghes:
        args = _args(["--github-url", ghes.web_url, "--public-url", PUBLIC_URL, "--env-file", str(tmp_path / "t.env"),
                      "--port", "0"])
        options = options_from_args(args, api_url=None, public_url=None)
        assert options.api_url == ghes.url == f"{ghes.web_url}/api/v3"
        server = SetupServer(options)
        await server.start()
        try:
            action, manifest, _ = await _open_form(browser, server)
            assert action.split("?")[0] == f"{ghes.web_url}/settings/apps/new"
            assert (await _submit(browser, action, manifest))[0] == 200
            assert (await server.wait(timeout=5)).id == 77
        finally:
            await server.close()
        ghes.assert_no_violations()
        assert [(r.method, r.path.split("/")[1]) for r in ghes.requests] == [("POST", "app-manifests")]
        assert ghes.manifests_posted[0]["org"] is None
    assert _env_file(tmp_path / "t.env")["TESSERA_GITHUB_API_URL"] == f"{ghes.web_url}/api/v3"


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_api_url_follows_the_environment_then_the_github_url() -> None:
    assert api_url_for("https://github.com") == "https://api.github.com"
    assert api_url_for("https://ghe.acme.com/") == "https://ghe.acme.com/api/v3"
    args = _args(["--github-url", "https://ghe.acme.com", "--public-url", PUBLIC_URL])
    assert options_from_args(args, api_url=None, public_url=None).api_url == "https://ghe.acme.com/api/v3"
    explicit = options_from_args(args, api_url="https://api.ghe.internal/", public_url=None)
    assert explicit.api_url == "https://api.ghe.internal"
    plain = options_from_args(_args([]), api_url=None, public_url="https://t.example")
    assert (plain.github_url, plain.api_url, plain.public_url) == ("https://github.com", "https://api.github.com",
                                                                   "https://t.example")


def test_new_app_page_is_the_organisation_s_or_the_user_s() -> None:
    assert new_app_url("https://github.com", "acme") == "https://github.com/organizations/acme/settings/apps/new"
    assert new_app_url("https://github.com/", None) == "https://github.com/settings/apps/new"


def test_setup_without_a_public_url_stops_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(_args(["--no-browser"]), api_url=None, public_url=None) == 2
    assert "--public-url" in capsys.readouterr().err


def test_rewriting_an_env_file_keeps_other_settings_replaces_the_app_and_makes_it_private(tmp_path: Path) -> None:
    from app.setup import AppCredentials

    env_path = tmp_path / ".env"
    env_path.write_text("TESSERA_DB=/srv/tessera.db\nTESSERA_WEBHOOK_SECRET=old\nexport TESSERA_GITHUB_APP_ID=1\n")
    env_path.chmod(0o644)
    credentials = AppCredentials(id=9, slug="tessera-acme", pem="-----BEGIN KEY-----\nabc\n-----END KEY-----",
                                 webhook_secret="new", client_id="Iv1.x", client_secret="cs", html_url="")
    pem = write_credentials(credentials, env_path, api_url="https://api.github.com", public_url=PUBLIC_URL + "/")
    text = env_path.read_text()
    written = _env_file(env_path)
    assert len(written.pop("TESSERA_SESSION_SECRET")) >= 32
    assert written == {
        "TESSERA_DB": "/srv/tessera.db", "TESSERA_GITHUB_APP_ID": "9",
        "TESSERA_GITHUB_PRIVATE_KEY_PATH": str(pem), "TESSERA_WEBHOOK_SECRET": "new", "TESSERA_PUBLIC_URL": PUBLIC_URL,
        "TESSERA_GITHUB_CLIENT_ID": "Iv1.x", "TESSERA_GITHUB_CLIENT_SECRET": "cs",
    }
    assert len(re.findall("TESSERA_WEBHOOK_SECRET", text)) == 1
    assert _mode(env_path) == 0o600 and _mode(pem) == 0o600
    assert pem.name == "tessera-acme.private-key.pem" and pem.read_text().endswith("-----END KEY-----\n")


async def test_a_missing_manifest_stops_setup_before_anything_is_served(tmp_path: Path) -> None:
    options = SetupOptions(public_url=PUBLIC_URL, env_path=tmp_path / ".env", manifest_path=tmp_path / "nope.yml")
    server = SetupServer(options)
    with pytest.raises(SetupError, match="--manifest"):
        await server.start()
    await server.close()


async def test_tessera_setup_command_runs_the_flow_and_exits_zero(
        fake_github: FakeGitHub, browser: aiohttp.ClientSession, tmp_path: Path) -> None:
    """The console script as an operator runs it: TESSERA_GITHUB_API_URL from the environment."""
    import asyncio
    import os
    import sys

    cli = pytest.importorskip("app.cli", reason="app/cli.py has not landed yet")
    if "setup" not in [c.name for c in cli.commands()]:
        pytest.skip("tessera setup is not registered in app/cli.py yet")
    script = Path(sys.executable).with_name("tessera")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env["TESSERA_GITHUB_API_URL"] = fake_github.url
    process = await asyncio.create_subprocess_exec(
        *command, "setup", "--no-browser", "--port", "0", "--org", "acme", "--github-url", fake_github.web_url,
        "--public-url", PUBLIC_URL, "--env-file", str(tmp_path / ".env"), "--timeout", "60",
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        page = re.search(r"Open (http://127\.0\.0\.1:\d+)/ ", line)
        assert page, line
        async with browser.get(page.group(1) + "/") as response:
            form = _Form()
            form.feed(await response.text())
        assert (await _submit(browser, form.action, json.loads(form.fields["manifest"])))[0] == 200
        out, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    assert f"Created GitHub App {fake_github.app_slug}" in out.decode()
    assert f"Then start it: tessera serve --env-file {tmp_path / '.env'}" in out.decode()
    assert _env_file(tmp_path / ".env")["TESSERA_GITHUB_API_URL"] == fake_github.url


async def test_an_answer_without_a_slug_still_writes_a_named_key_and_a_bare_one_is_refused(
        fake_github: FakeGitHub, app_private_key: str, tmp_path: Path) -> None:
    """GitHub's REST description promises id, pem and webhook_secret, not the slug."""
    from tests.fakegithub import ScriptedResponse

    fake_github.script("POST", "/app-manifests/*/conversions",
                       ScriptedResponse(201, {"id": 31, "pem": app_private_key, "webhook_secret": "s",
                                              "client_id": "Iv1.a", "client_secret": "c", "html_url": ""}),
                       ScriptedResponse(201, {"id": 32, "pem": app_private_key, "webhook_secret": None}))
    async with aiohttp.ClientSession() as session:
        credentials = await convert_manifest_code(session, fake_github.url, "c0de")
        pem = write_credentials(credentials, tmp_path / ".env", api_url=fake_github.url, public_url=PUBLIC_URL)
        assert pem.name == "app-31.private-key.pem"
        with pytest.raises(SetupError, match="webhook_secret"):
            await convert_manifest_code(session, fake_github.url, "c0de")


async def test_a_busy_port_or_a_missing_env_folder_is_a_clear_error(tmp_path: Path) -> None:
    first = SetupServer(SetupOptions(public_url=PUBLIC_URL, env_path=tmp_path / ".env", port=0))
    await first.start()
    try:
        port = urlsplit(first.url).port
        second = SetupServer(SetupOptions(public_url=PUBLIC_URL, env_path=tmp_path / ".env", port=port))
        with pytest.raises(SetupError, match="--port"):
            await second.start()
        await second.close()
    finally:
        await first.close()
    with pytest.raises(SetupError, match="does not exist"):
        options_from_args(_args(["--env-file", str(tmp_path / "no" / ".env")]), api_url=None, public_url=PUBLIC_URL)
