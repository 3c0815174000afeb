"""Tessera's service: webhook intake, durable queue, GitHub client, PR workflow, REST API, store, CLI.

Everything that talks to GitHub, SQLite or the clock lives here; the pure engine is ``rules``.
"""

__version__ = "0.1.0"
