"""The name the PR workflow looks registrations up by (``app.workflow.pulls._registrations``).

The registry's tables live in :mod:`app.store.registry`; this re-exports the one loader the
workflow needs, so registrations made through the API (and found in other repositories' SQL)
reach every pull-request analysis.
"""

from app.store.registry import all_registrations

__all__ = ["all_registrations"]
