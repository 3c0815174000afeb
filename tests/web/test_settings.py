"""The pages' settings: sign-in needs the client id and secret together, and a long session secret."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.errors import ConfigError


def test_sign_in_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env({
        "TESSERA_GITHUB_CLIENT_ID": "Iv1.abc", "TESSERA_GITHUB_CLIENT_SECRET": "shh",
        "TESSERA_SESSION_SECRET": "k" * 32, "TESSERA_GITHUB_WEB_URL": "https://git.acme.test/",
    })
    assert (settings.github_client_id, settings.github_client_secret) == ("Iv1.abc", "shh")
    assert settings.session_secret == "k" * 32 and settings.github_web_url == "https://git.acme.test"
    assert Settings.from_env({}).github_web_url == "https://github.com"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TESSERA_GITHUB_CLIENT_ID": "Iv1.abc"}, "go together"),
        ({"TESSERA_GITHUB_CLIENT_SECRET": "shh"}, "go together"),
        ({"TESSERA_SESSION_SECRET": "short"}, "at least 32 characters"),
        ({"TESSERA_GITHUB_WEB_URL": "github.com"}, "must be an http(s) URL"),
    ],
)
def test_a_half_configured_sign_in_is_refused_with_the_variable_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(env)
