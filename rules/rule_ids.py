"""The names every layer shares about rules: rule ids, how far a rule's impact reaches, and which
snapshot its readers are found in.

Kept apart from :mod:`rules.catalog` (which says what each rule *is*) so that the modules the
catalog lists behaviour from (migration builders, query comparison) can name rules without
importing the catalog back. The values are DESIGN-level names: they appear in ``tessera check``
JSON, ``.tessera.yml`` overrides and the store, so they never change.
"""

from __future__ import annotations

from enum import StrEnum


class RuleId(StrEnum):
    """Every change Tessera knows, in DESIGN.md's order."""

    ASSET_REMOVED = "ASSET_REMOVED"
    ASSET_RENAMED = "ASSET_RENAMED"
    ACCESS_NARROWED = "ACCESS_NARROWED"
    COLUMN_REMOVED = "COLUMN_REMOVED"
    COLUMN_RENAMED = "COLUMN_RENAMED"
    COLUMN_TYPE_CHANGED = "COLUMN_TYPE_CHANGED"
    COLUMN_TYPE_NARROWED = "COLUMN_TYPE_NARROWED"
    COLUMN_TYPE_WIDENED = "COLUMN_TYPE_WIDENED"
    COLUMN_NULLABILITY_LOOSENED = "COLUMN_NULLABILITY_LOOSENED"
    COLUMN_NULLABILITY_TIGHTENED = "COLUMN_NULLABILITY_TIGHTENED"
    COLUMN_ADDED = "COLUMN_ADDED"
    COLUMN_ADDED_REQUIRED = "COLUMN_ADDED_REQUIRED"
    COLUMN_REORDERED = "COLUMN_REORDERED"
    CONSTRAINT_REMOVED = "CONSTRAINT_REMOVED"
    CONTRACT_UNENFORCED = "CONTRACT_UNENFORCED"
    GRAIN_CHANGED = "GRAIN_CHANGED"
    FILTER_CHANGED = "FILTER_CHANGED"
    JOIN_CHANGED = "JOIN_CHANGED"
    COLUMN_LOGIC_CHANGED = "COLUMN_LOGIC_CHANGED"
    MATERIALIZATION_CHANGED = "MATERIALIZATION_CHANGED"
    VERSION_DEPRECATED = "VERSION_DEPRECATED"
    METADATA_CHANGED = "METADATA_CHANGED"
    UNPARSED = "UNPARSED"


class Reach(StrEnum):
    """How far a breaking finding travels downstream before it stops mattering."""

    COLUMN = "column"
    """Consumers that read the finding's column (directly or through lineage); every consumer
    downstream when the finding names no column."""
    ASSET = "asset"
    """Every consumer downstream, whatever columns it reads (one row now means something else)."""
    DIRECT_READERS = "direct_readers"
    """Only what reads the relation itself: a dbt ``ref`` to a model that became ephemeral inlines
    it, so models downstream (and what reads them) are not hit."""
    REFS = "refs"
    """Only models whose ``ref`` the change refuses (dbt access governs refs, nothing else)."""


class Graph(StrEnum):
    """The snapshot a finding's readers are looked up in."""

    HEAD = "head"
    BASE = "base"
    """For what the head no longer has (a removed asset or column): its readers are in the base."""
