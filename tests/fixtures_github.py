"""Fixtures for the fake GitHub (filled in by the GitHub client work)."""
