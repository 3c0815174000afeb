"""Settings from the environment: the only module that reads ``os.environ``.

Everything else receives a :class:`Settings` value, so tests build one with
``Settings.from_env({...})`` (or ``Settings(...)``) and never touch the process environment.
Every bad value raises :class:`app.errors.ConfigError` naming the variable and what was wrong.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from app.errors import ConfigError

DEFAULT_GITHUB_API_URL = "https://api.github.com"
DEFAULT_GITHUB_WEB_URL = "https://github.com"
DEFAULT_DBT_HUB_URL = "https://hub.getdbt.com"
DEFAULT_CODELOAD_URL = "https://codeload.github.com"
DEFAULT_SLACK_API_URL = "https://slack.com/api"
MAX_WEBHOOK_BYTES = 25 * 1024 * 1024
"""GitHub caps deliveries at 25 MB; anything larger is refused with 413."""
DEFAULT_ANALYSIS_MEMORY_MB = 1024
"""``TESSERA_ANALYSIS_MEMORY_MB``: a 1,000-model project's analysis peaks well below it."""


def default_analysis_workers() -> int:
    """``TESSERA_ANALYSIS_WORKERS``: cores − 1 (one is left for the server), at least 1."""
    return max(1, (os.cpu_count() or 1) - 1)


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment, parsed and checked once."""

    github_app_id: int | None = None
    github_private_key: str | None = None
    webhook_secret: str | None = None
    github_api_url: str = DEFAULT_GITHUB_API_URL
    db_path: str = "tessera.db"
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None
    bootstrap_key: str | None = None
    dev_mode: bool = False
    workers: int = 4
    """How many jobs run at once (jobs with the same ordering key never run together)."""
    max_attempts: int = 5
    """Attempts for a job failing with a transient error before it is marked failed."""
    job_timeout: float = 300.0
    """Seconds one attempt of a job may take; a time-out counts as a transient failure."""
    retry_base_delay: float = 2.0
    """First back-off delay in seconds; doubled at each attempt, with jitter, capped at 10 min."""
    max_webhook_bytes: int = MAX_WEBHOOK_BYTES
    keep_days: float = 30.0
    """How long done deliveries are kept (GitHub lets you redeliver the last 3 days; a delivery
    pruned earlier would be processed again). Failed ones are kept until replayed."""
    analysis_workers: int = field(default_factory=default_analysis_workers)
    """Worker processes analysing pull requests at once (``app.engine``)."""
    analysis_memory_mb: int = DEFAULT_ANALYSIS_MEMORY_MB
    """Address space each analysis process may use; past it the analysis ends, named as over memory."""
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    outbound_allow: tuple[str, ...] = ()
    """CIDRs outbound calls (Slack, subscribers) may reach although the SSRF guard refuses private,
    loopback and link-local addresses (an operator's own network, or a test's fakes)."""
    db_synchronous: str = "FULL"
    """SQLite ``synchronous``: FULL (default) fsyncs every commit, so a 202 means on disk; NORMAL
    skips that fsync (faster intake) but a power loss may lose the last deliveries, which GitHub
    never redelivers by itself. A process crash loses nothing either way."""
    discovery_sources: tuple[str, ...] = ()
    """Query-log and BI sources ``tessera serve`` reads on a schedule (``[KIND=]SOURCE``, as
    ``tessera discover SOURCE --kind KIND``)."""
    discovery_interval: float = 3600.0
    """Seconds between two scheduled discovery rounds."""
    # -- pages: sign in with GitHub (the App's own user authorization)
    github_client_id: str | None = None
    github_client_secret: str | None = None
    session_secret: str | None = None
    """Signs the pages' session cookies; unset, a random one per process (sign-ins end at restart)."""
    github_web_url: str = DEFAULT_GITHUB_WEB_URL
    """Where people sign in: github.com, a GitHub Enterprise Server, or a fake in tests."""
    dbt_hub_url: str = DEFAULT_DBT_HUB_URL
    """dbt's package hub, whose index maps a package version to its GitHub tarball (a fake in tests)."""
    codeload_url: str = DEFAULT_CODELOAD_URL
    """Where ``tessera check`` downloads public packages' tarballs (the App asks GitHub's API)."""
    packages_offline: bool = False
    """``TESSERA_PACKAGES_OFFLINE=1``: never fetch dbt packages; their macros use the built-in renderings."""

    @property
    def base_url(self) -> str:
        """Where links (check details, pages) point: the public URL, else the bind address."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.host}:{self.port}"

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests, CLI flags)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``TESSERA_*`` variables (from ``os.environ`` unless a mapping is given)."""
        source: Mapping[str, str] = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = source.get(name)
            if value is None or value.strip() == "":
                return None
            return value.strip()

        app_id = _int(get("TESSERA_GITHUB_APP_ID"), "TESSERA_GITHUB_APP_ID", minimum=1)
        inline_key = source.get("TESSERA_GITHUB_PRIVATE_KEY") or None
        key_path = get("TESSERA_GITHUB_PRIVATE_KEY_PATH")
        if inline_key and key_path:
            raise ConfigError(
                "TESSERA_GITHUB_PRIVATE_KEY and TESSERA_GITHUB_PRIVATE_KEY_PATH are both set: give the"
                " App's private key one way only"
            )
        private_key = _read_key(key_path) if key_path else _check_pem(inline_key, "TESSERA_GITHUB_PRIVATE_KEY")

        api_url = get("TESSERA_GITHUB_API_URL") or DEFAULT_GITHUB_API_URL
        if not api_url.startswith(("http://", "https://")):
            raise ConfigError(f"TESSERA_GITHUB_API_URL must be an http(s) URL, got {api_url!r}")
        public_url = get("TESSERA_PUBLIC_URL")
        if public_url and not public_url.startswith(("http://", "https://")):
            raise ConfigError(f"TESSERA_PUBLIC_URL must be an http(s) URL, got {public_url!r}")

        host = get("TESSERA_HOST") or "127.0.0.1"
        port = _int(get("TESSERA_PORT"), "TESSERA_PORT", minimum=0, maximum=65535, default=8080)
        dev_mode = _bool(get("TESSERA_DEV_MODE"), "TESSERA_DEV_MODE")
        if dev_mode and not is_loopback(host):
            raise ConfigError(
                f"TESSERA_DEV_MODE=1 serves the REST API without keys, so it is refused on the"
                f" non-loopback host {host!r}: bind TESSERA_HOST to 127.0.0.1 or turn dev mode off"
            )

        web_url = get("TESSERA_GITHUB_WEB_URL") or DEFAULT_GITHUB_WEB_URL
        if not web_url.startswith(("http://", "https://")):
            raise ConfigError(f"TESSERA_GITHUB_WEB_URL must be an http(s) URL, got {web_url!r}")
        client_id, client_secret = get("TESSERA_GITHUB_CLIENT_ID"), get("TESSERA_GITHUB_CLIENT_SECRET")
        if bool(client_id) != bool(client_secret):
            raise ConfigError(
                "TESSERA_GITHUB_CLIENT_ID and TESSERA_GITHUB_CLIENT_SECRET go together: set both for sign-in, or neither"
            )
        session_secret = get("TESSERA_SESSION_SECRET")
        if session_secret is not None and len(session_secret) < 32:
            raise ConfigError("TESSERA_SESSION_SECRET must be at least 32 characters (it signs sign-in sessions)")

        return cls(
            github_client_id=client_id,
            github_client_secret=client_secret,
            session_secret=session_secret,
            github_web_url=web_url.rstrip("/"),
            github_app_id=app_id,
            github_private_key=private_key,
            webhook_secret=source.get("TESSERA_WEBHOOK_SECRET") or None,
            github_api_url=api_url.rstrip("/"),
            db_path=get("TESSERA_DB") or "tessera.db",
            host=host,
            port=port,
            public_url=public_url,
            bootstrap_key=get("TESSERA_BOOTSTRAP_KEY"),
            dev_mode=dev_mode,
            workers=_int(get("TESSERA_WORKERS"), "TESSERA_WORKERS", minimum=1, maximum=256, default=4),
            max_attempts=_int(
                get("TESSERA_MAX_ATTEMPTS"), "TESSERA_MAX_ATTEMPTS", minimum=1, maximum=100, default=5
            ),
            job_timeout=_float(get("TESSERA_JOB_TIMEOUT"), "TESSERA_JOB_TIMEOUT", default=300.0),
            keep_days=_keep_days(get("TESSERA_KEEP_DAYS")),
            db_synchronous=_choice(get("TESSERA_DB_SYNCHRONOUS"), "TESSERA_DB_SYNCHRONOUS", ("FULL", "NORMAL")),
            analysis_workers=_int(
                get("TESSERA_ANALYSIS_WORKERS"),
                "TESSERA_ANALYSIS_WORKERS",
                minimum=1,
                maximum=256,
                default=default_analysis_workers(),
            ),
            analysis_memory_mb=_int(
                get("TESSERA_ANALYSIS_MEMORY_MB"),
                "TESSERA_ANALYSIS_MEMORY_MB",
                minimum=128,
                maximum=1_048_576,
                default=DEFAULT_ANALYSIS_MEMORY_MB,
            ),
            discovery_sources=tuple((get("TESSERA_DISCOVERY_SOURCES") or "").split()),
            discovery_interval=_float(
                get("TESSERA_DISCOVERY_INTERVAL"), "TESSERA_DISCOVERY_INTERVAL", default=3600.0
            ),
            **_notify_settings(get),
            **_package_settings(get),
        )


def _package_settings(get: Callable[[str], str | None]) -> dict[str, object]:
    """Where dbt packages are looked up (``TESSERA_DBT_HUB_URL``) and whether at all
    (``TESSERA_PACKAGES_OFFLINE``)."""
    hub_url = get("TESSERA_DBT_HUB_URL") or DEFAULT_DBT_HUB_URL
    codeload_url = get("TESSERA_CODELOAD_URL") or DEFAULT_CODELOAD_URL
    for name, url in (("TESSERA_DBT_HUB_URL", hub_url), ("TESSERA_CODELOAD_URL", codeload_url)):
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{name} must be an http(s) URL, got {url!r}")
    return {
        "dbt_hub_url": hub_url.rstrip("/"),
        "codeload_url": codeload_url.rstrip("/"),
        "packages_offline": _bool(get("TESSERA_PACKAGES_OFFLINE"), "TESSERA_PACKAGES_OFFLINE"),
    }


def _notify_settings(get: Callable[[str], str | None]) -> dict[str, object]:
    """Slack (bot token, signing secret, Web API URL) and the SSRF allow-list ``TESSERA_OUTBOUND_ALLOW``."""
    slack_url = get("TESSERA_SLACK_API_URL") or DEFAULT_SLACK_API_URL
    if not slack_url.startswith(("http://", "https://")):
        raise ConfigError(f"TESSERA_SLACK_API_URL must be an http(s) URL, got {slack_url!r}")
    allow: list[str] = []
    for item in (get("TESSERA_OUTBOUND_ALLOW") or "").replace(",", " ").split():
        try:
            allow.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(
                f"TESSERA_OUTBOUND_ALLOW: {item!r} is not an address or CIDR (e.g. 10.1.0.0/16, 127.0.0.1)"
            ) from None
    return {
        "slack_bot_token": get("TESSERA_SLACK_BOT_TOKEN"),
        "slack_signing_secret": get("TESSERA_SLACK_SIGNING_SECRET"),
        "slack_api_url": slack_url.rstrip("/"),
        "outbound_allow": tuple(allow),
    }


def require_database(settings: Settings) -> None:
    """Operator commands work on the server's database: refuse, rather than create, a missing one.

    Run in the wrong folder, ``tessera keys create`` once made a fresh ``tessera.db`` there and
    printed a key the server would never know.
    """
    path = settings.db_path
    if path == ":memory:" or path.startswith("file:"):
        return
    if not Path(path).is_file():
        raise ConfigError(
            f"no database at {Path(path).absolute()}: set TESSERA_DB to the server's database (run"
            " `tessera serve` once to create one)"
        )


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of an env file (what ``tessera setup`` writes): ``#`` comments, blank
    lines, ``export KEY=...`` and one pair of surrounding quotes are understood; anything else is a
    :class:`ConfigError` naming the line, so a typo is not silently a missing setting."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the env file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"the env file {path} is not UTF-8 text") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped[len("export "):].lstrip()
        key, sep, value = stripped.partition("=")
        key = key.strip()
        if not sep or not key.replace("_", "a").isalnum() or key[0].isdigit():
            raise ConfigError(f"{path}:{number}: expected KEY=value, got {line.strip()[:60]!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def environment_with_file(path: Path, *, required: bool) -> dict[str, str]:
    """The process environment over the values of an env file: the real environment wins, so a
    variable set for one run overrides the file. A missing file is an error only when ``required``
    (named with ``--env-file``); the default ``./.env`` may be absent."""
    if not path.exists() and not required:
        return dict(os.environ)
    if not path.is_file():
        raise ConfigError(f"the env file {path} does not exist")
    return {**read_env_file(path), **os.environ}


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (dev mode is allowed only there)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _int(
    raw: str | None, name: str, *, minimum: int, maximum: int | None = None, default: int | None = None
) -> int | None:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise ConfigError(f"{name} must be {bounds}, got {value}")
    return value


def _float(raw: str | None, name: str, *, default: float) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


def _keep_days(raw: str | None) -> float:
    value = _float(raw, "TESSERA_KEEP_DAYS", default=30.0)
    if value < 3:
        raise ConfigError(
            f"TESSERA_KEEP_DAYS must be at least 3 (GitHub redelivers up to 3 days back), got {raw!r}"
        )
    return value


def _choice(raw: str | None, name: str, choices: tuple[str, ...]) -> str:
    if raw is None:
        return choices[0]
    if raw.upper() not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw.upper()


def _bool(raw: str | None, name: str) -> bool:
    if raw is None:
        return False
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0, got {raw!r}")


def _read_key(path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"TESSERA_GITHUB_PRIVATE_KEY_PATH: cannot read the private key file {path!r}: {exc.strerror or exc}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"TESSERA_GITHUB_PRIVATE_KEY_PATH: {path!r} is not a PEM text file") from None
    return _check_pem(text, f"TESSERA_GITHUB_PRIVATE_KEY_PATH ({path})") or ""


def _check_pem(text: str | None, source: str) -> str | None:
    if text is None:
        return None
    # Env files often carry the key on one line with literal "\n" separators.
    if "\\n" in text and "\n" not in text.strip():
        text = text.replace("\\n", "\n")
    if "-----BEGIN" not in text or "PRIVATE KEY-----" not in text:
        raise ConfigError(f"{source} does not hold a PEM private key (expected '-----BEGIN ... PRIVATE KEY-----')")
    return text
