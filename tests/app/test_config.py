"""Settings come from TESSERA_* variables only, with defaults and clear errors for bad values."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.config import Settings
from app.errors import ConfigError

PEM = "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"


def test_an_empty_environment_gives_the_documented_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert (settings.github_api_url, settings.db_path, settings.host, settings.port) == (
        "https://api.github.com", "tessera.db", "127.0.0.1", 8080,
    )
    assert settings.webhook_secret is None and settings.dev_mode is False and settings.github_app_id is None
    assert settings.base_url == "http://127.0.0.1:8080"


def test_every_documented_variable_is_read(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "TESSERA_GITHUB_APP_ID": "12345",
            "TESSERA_GITHUB_PRIVATE_KEY": PEM,
            "TESSERA_WEBHOOK_SECRET": "s3cret",
            "TESSERA_GITHUB_API_URL": "https://ghe.acme.com/api/v3/",
            "TESSERA_DB": str(tmp_path / "x.db"),
            "TESSERA_HOST": "::1",
            "TESSERA_PORT": "9000",
            "TESSERA_PUBLIC_URL": "https://tessera.acme.com/",
            "TESSERA_BOOTSTRAP_KEY": "boot",
            "TESSERA_DEV_MODE": "1",
            "TESSERA_WORKERS": "8",
            "TESSERA_MAX_ATTEMPTS": "7",
            "TESSERA_JOB_TIMEOUT": "60",
            "TESSERA_DB_SYNCHRONOUS": "normal",
            "TESSERA_KEEP_DAYS": "90",
        }
    )
    assert settings.github_app_id == 12345 and settings.github_private_key == PEM
    assert settings.webhook_secret == "s3cret"
    assert settings.github_api_url == "https://ghe.acme.com/api/v3"
    assert (settings.host, settings.port, settings.dev_mode) == ("::1", 9000, True)
    assert settings.base_url == "https://tessera.acme.com"
    assert (settings.bootstrap_key, settings.workers, settings.max_attempts, settings.job_timeout) == (
        "boot", 8, 7, 60.0,
    )
    assert (settings.db_synchronous, settings.keep_days) == ("NORMAL", 90.0)


def test_the_private_key_is_read_from_its_path(tmp_path: Path) -> None:
    key = tmp_path / "app.pem"
    key.write_text(PEM)
    assert Settings.from_env({"TESSERA_GITHUB_PRIVATE_KEY_PATH": str(key)}).github_private_key == PEM


def test_an_inline_key_with_escaped_newlines_is_unescaped() -> None:
    one_line = PEM.replace("\n", "\\n")
    assert Settings.from_env({"TESSERA_GITHUB_PRIVATE_KEY": one_line}).github_private_key == PEM


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TESSERA_PORT": "http"}, "TESSERA_PORT must be a whole number, got 'http'"),
        ({"TESSERA_PORT": "70000"}, "TESSERA_PORT must be between 0 and 65535"),
        ({"TESSERA_GITHUB_APP_ID": "my-app"}, "TESSERA_GITHUB_APP_ID must be a whole number"),
        ({"TESSERA_GITHUB_PRIVATE_KEY_PATH": "/nonexistent/app.pem"}, "cannot read the private key file"),
        ({"TESSERA_GITHUB_PRIVATE_KEY": "not a key"}, "does not hold a PEM private key"),
        ({"TESSERA_GITHUB_PRIVATE_KEY": PEM, "TESSERA_GITHUB_PRIVATE_KEY_PATH": "k.pem"}, "both set"),
        ({"TESSERA_DEV_MODE": "1", "TESSERA_HOST": "0.0.0.0"}, "refused on the non-loopback host '0.0.0.0'"),
        ({"TESSERA_DEV_MODE": "maybe"}, "TESSERA_DEV_MODE must be 1 or 0"),
        ({"TESSERA_GITHUB_API_URL": "api.github.com"}, "must be an http(s) URL"),
        ({"TESSERA_WORKERS": "0"}, "TESSERA_WORKERS must be between 1 and 256"),
        ({"TESSERA_JOB_TIMEOUT": "-1"}, "TESSERA_JOB_TIMEOUT must be positive"),
        ({"TESSERA_DB_SYNCHRONOUS": "off"}, "TESSERA_DB_SYNCHRONOUS must be one of FULL, NORMAL"),
        ({"TESSERA_KEEP_DAYS": "1"}, "TESSERA_KEEP_DAYS must be at least 3"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env(env)
    assert message in str(error.value)


def test_a_key_file_that_is_not_pem_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "app.pem"
    key.write_bytes(b"\x00\xff binary")
    with pytest.raises(ConfigError, match="PEM"):
        Settings.from_env({"TESSERA_GITHUB_PRIVATE_KEY_PATH": str(key)})


def test_only_the_config_module_reads_the_process_environment() -> None:
    app_dir = Path(__file__).resolve().parents[2] / "app"
    readers = sorted(
        str(path.relative_to(app_dir))
        for path in app_dir.rglob("*.py")
        if "os.environ" in path.read_text() or "getenv(" in path.read_text()
    )
    assert readers == ["config.py"]


def test_analysis_workers_default_to_cores_minus_one_and_memory_to_1024_mb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert (Settings.from_env({}).analysis_workers, Settings.from_env({}).analysis_memory_mb) == (7, 1024)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert Settings.from_env({}).analysis_workers == 1
    env = {"TESSERA_ANALYSIS_WORKERS": "3", "TESSERA_ANALYSIS_MEMORY_MB": "2048"}
    assert (Settings.from_env(env).analysis_workers, Settings.from_env(env).analysis_memory_mb) == (3, 2048)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TESSERA_ANALYSIS_WORKERS": "0"}, "TESSERA_ANALYSIS_WORKERS must be between 1 and 256, got 0"),
        ({"TESSERA_ANALYSIS_MEMORY_MB": "64"}, "TESSERA_ANALYSIS_MEMORY_MB must be between 128 and"),
        ({"TESSERA_ANALYSIS_MEMORY_MB": "1G"}, "TESSERA_ANALYSIS_MEMORY_MB must be a whole number, got '1G'"),
    ],
)
def test_bad_analysis_limits_are_config_errors_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)
