"""Fixtures for the fake GitHub: the App's key, the running fake, and a client pointed at it.

``fake_github`` fails the test at teardown when a request broke GitHub's REST description, so every
test that talks to the fake also checks the bot's requests against the real API contract.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.github import GitHubApp, InstallationClient
from tests.fakegithub import FakeGitHub

__all__ = ["APP_ID", "INSTALLATION_ID", "app_private_key", "fake_github", "github_app", "github_client"]

APP_ID = 4242
INSTALLATION_ID = 1


@pytest.fixture(scope="session")
def app_private_key() -> str:
    """One RSA key per test session (generating keys is slow): the App's PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
async def fake_github(app_private_key: str) -> AsyncIterator[FakeGitHub]:
    """A started fake GitHub with installation 1 on the ``acme`` organisation."""
    fake = FakeGitHub(app_id=APP_ID, private_key_pem=app_private_key)
    fake.add_installation(INSTALLATION_ID, "acme")
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
    fake.assert_no_violations()


@pytest.fixture
async def github_app(fake_github: FakeGitHub, app_private_key: str) -> AsyncIterator[GitHubApp]:
    """A :class:`GitHubApp` talking to the fake; its clock is the fake's, so both agree on time."""
    app = GitHubApp(APP_ID, app_private_key, fake_github.url, clock=lambda: fake_github.clock(), timeout=20.0)
    try:
        yield app
    finally:
        await app.close()


@pytest.fixture
async def github_client(github_app: GitHubApp) -> InstallationClient:
    """The client for installation 1 (``acme``), as a job gets it from ``ctx.github``."""
    return await github_app.for_installation(INSTALLATION_ID)
