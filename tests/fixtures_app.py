"""Fixtures for the service: settings, store, server (filled in by the foundation work)."""
