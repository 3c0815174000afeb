"""Observed consumers in the analysis: readers nobody wrote down, found in query logs and BI tools.

An observed consumer is a :class:`~rules.model.Registration` with an
:class:`~rules.model.Observation`: the warehouse role, user or BI object that read an asset's
columns, how many queries and when last. Before impact is computed, :func:`prepare` names each one
by the engine's fqn (a warehouse relation ``analytics.fct_revenue`` is the dbt model
``fct_revenue``), gives it the team the repository's ``.tessera.yml`` maps its reader to
(``teams.<t>.warehouse_roles`` / ``warehouse_users``; otherwise the team the store's mappings
gave, otherwise none), and marks it stale when it was not seen for ``discovery.stale_after``: a
stale consumer is still listed, never required.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import replace

from rules.model import Config, Coverage, Observation, Registration


def config_team(kind: str, name: str, config: Config) -> str | None:
    """The team ``.tessera.yml`` gives a warehouse role or user (case-insensitive)."""
    key = name.strip().lower()
    for slug, spec in config.teams.items():
        listed = spec.warehouse_roles if kind == "role" else spec.warehouse_users if kind == "user" else ()
        if any(item.strip().lower() == key for item in listed):
            return slug
    return None


def mapped_team(
    kind: str, name: str, folder: str | None, mappings: Mapping[tuple[str, str], str]
) -> str | None:
    """The team the store's mappings give a reader: by its role/user name, or a BI object's
    folder. Keys are ``(kind, lower-case name)``."""
    if kind in ("role", "user"):
        return mappings.get((kind, name.strip().lower()))
    if folder:
        return mappings.get(("folder", folder.strip().lower()))
    return None


def prepare(
    registrations: Sequence[Registration],
    config: Config,
    *,
    today: dt.date,
    relations: Mapping[str, str] | None = None,
) -> list[Registration]:
    """Observed registrations named by fqn, teamed by the repository's config, staleness marked;
    the others unchanged. ``relations`` maps lower-case relation names (and their unambiguous
    suffixes) to fqns: ``rules.build.RelationResolver.keys``."""
    observed = [r for r in registrations if r.observed is not None]
    if not observed:
        return list(registrations)
    cutoff = today - dt.timedelta(days=config.discovery.stale_after_days)
    out: list[Registration] = []
    for reg in registrations:
        seen = reg.observed
        if seen is None:
            out.append(reg)
            continue
        team = config_team(seen.reader_kind, seen.reader, config) or reg.team
        stale = _seen_before(seen.last_seen, cutoff)
        out.append(
            replace(
                reg,
                asset=resolve_name(reg.asset, relations or {}),
                team=team,
                observed=replace(seen, stale=stale),
            )
        )
    return out


QUERY_LOG_KINDS = frozenset({"postgres", "snowflake", "bigquery", "databricks", "redshift", "jsonl"})
"""Discovery sources that see every query a warehouse ran (BI tools see only their own objects)."""


def fresh_coverage(coverage: Sequence[Coverage], config: Config, *, today: dt.date) -> tuple[Coverage, ...]:
    """The query logs discovery read within ``discovery.stale_after``: only those can say that
    nobody reads a column (an older or a BI-only source says nothing about who reads now)."""
    cutoff = today - dt.timedelta(days=config.discovery.stale_after_days)
    return tuple(c for c in coverage if c.kind in QUERY_LOG_KINDS and not _seen_before(c.last_run, cutoff))


def covers(coverage: Coverage, dialect: str | None) -> bool:
    """Whether a query log sees the warehouse a relation of ``dialect`` lives in (an exported
    ``jsonl`` log may be any warehouse's)."""
    return coverage.kind == "jsonl" or (dialect or "").lower() == coverage.kind


def resolve_name(relation: str, relations: Mapping[str, str]) -> str:
    """The fqn of a warehouse relation: its longest dotted suffix the engine knows, else itself."""
    parts = [p.strip().strip('"`[]').lower() for p in relation.split(".") if p.strip()]
    for size in range(len(parts), 0, -1):
        found = relations.get(".".join(parts[-size:]))
        if found is not None:
            return found
    return ".".join(parts)


def unowned_notes(registrations: Sequence[Registration]) -> dict[str, str | None]:
    """For each observed consumer's label: what to say when no team is mapped to it (None: say
    nothing, it is stale and asks nobody anyway)."""
    notes: dict[str, str | None] = {}
    for reg in registrations:
        seen = reg.observed
        if seen is None:
            continue
        if seen.stale:
            notes[reader_label(seen)] = None
        elif seen.reader_kind == "bi":
            notes[reader_label(seen)] = (
                f"but no team is mapped to its folder {safe_name(seen.folder or '(none)')}: map it with"
                " POST /api/v1/discovery/mappings (kind folder)"
            )
        else:
            key = "warehouse_roles" if seen.reader_kind == "role" else "warehouse_users"
            notes[reader_label(seen)] = (
                f"but no team is mapped to {seen.reader_kind} {safe_name(seen.reader)}: list it under teams.<team>.{key}"
                f" in .tessera.yml, or POST /api/v1/discovery/mappings"
            )
    return notes


def _seen_before(last_seen: str | None, cutoff: dt.date) -> bool:
    if not last_seen:
        return True
    try:
        return dt.date.fromisoformat(last_seen[:10]) < cutoff
    except ValueError:
        return True


MAX_NAME = 120
_UNSAFE = str.maketrans({"`": "'", "<": "‹", ">": "›", "|": "¦", "@": "@\u200b", "\r": " ", "\n": " ", "\t": " "})


def safe_name(name: str) -> str:
    """A reader's name as the comment may show it: names come from warehouse logs and BI tools
    (a Metabase question can be called anything), so no mention, code span, tag or table cell
    can be opened by one, and it stays short."""
    text = "".join(ch for ch in name if ch.isprintable() or ch in "\r\n\t").translate(_UNSAFE)
    text = " ".join(text.split())
    return text if len(text) <= MAX_NAME else text[: MAX_NAME - 1] + "…"


def reader_label(seen: Observation) -> str:
    """How a reader is named as a consumer: ``role LOOKER_FINANCE``, ``bi looker explore x``."""
    label = f"{seen.reader_kind} {safe_name(seen.reader)}"
    if seen.stale:
        label += f" (not seen since {seen.last_seen or 'ever'}; not required)"
    return label


def describe(seen: Observation, team: str | None, config: Config) -> str:
    """The words of a required ack's reason: "14 queries from role LOOKER_FINANCE in the last
    30 days (Finance)"."""
    who = f"{seen.reader_kind} {safe_name(seen.reader)}"
    if seen.reader_kind == "bi":
        what = safe_name(seen.reader) + (f" (last seen {seen.last_seen})" if seen.last_seen else "")
    else:
        what = f"{_plural(seen.queries, 'query', 'queries')} from {who} in the last {seen.window_days} days"
    return f"{what} ({team_name(team, config)})" if team else what


def team_name(slug: str, config: Config) -> str:
    """A team's display name: its first ``names`` entry in ``.tessera.yml``, else the slug."""
    spec = config.teams.get(slug)
    return spec.names[0] if spec is not None and spec.names else slug


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"
