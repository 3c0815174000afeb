"""Shared fixtures. Each concern keeps its fixtures in its own module; they are gathered here."""

import rules.infer
from tests.fixtures_app import *  # noqa: F401,F403  (settings, store, running server)
from tests.fixtures_github import *  # noqa: F401,F403  (fake GitHub, App key)
from tests.pg import postgres_server  # noqa: F401  (a throwaway real PostgreSQL, session-scoped)

# Every answer of the engine's fast path for ancestor types is checked against sqlglot's own
# qualify + annotate_types in every test that builds a snapshot: a difference fails the test.
rules.infer.CHECK_FAST_PATH = True
