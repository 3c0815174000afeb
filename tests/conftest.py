"""Shared fixtures. Each concern keeps its fixtures in its own module; they are gathered here."""

from tests.fixtures_app import *  # noqa: F401,F403  (settings, store, running server)
from tests.fixtures_github import *  # noqa: F401,F403  (fake GitHub, App key)
