"""Parse ``.tessera.yml`` leniently.

The file is written by people, read from the PR's base branch, and a typo in it must never stop an
analysis: every problem (malformed YAML, unknown key, bad value) is recorded in
``Config.problems`` with a message naming the key, and the default is used instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from rules import yamlsafe
from rules.catalog import RuleId
from rules.model import (
    MODES,
    Config,
    DbtSettings,
    DiscoverySettings,
    InternalSettings,
    Registration,
    SqlSettings,
    TeamSpec,
)

RULE_SEVERITIES: tuple[str, ...] = ("breaking", "review", "safe", "info", "ignore")
ON_UNPARSED: tuple[str, ...] = ("regressions", "warn", "block")
"""``regressions`` (the default): a file Tessera read before and cannot read now is held for its
readers like a breaking change, so making a model unreadable cannot hide a change in it; other
unreadable files are review. ``warn``: always review. ``block``: always breaking."""
ON_UNOWNED: tuple[str, ...] = ("block", "warn")
DIALECTS: tuple[str, ...] = (
    "postgres",
    "snowflake",
    "bigquery",
    "duckdb",
    "databricks",
    "redshift",
    "spark",
    "mysql",
    "trino",
    "presto",
    "athena",
    "tsql",
    "oracle",
    "clickhouse",
    "sqlite",
    "hive",
    "fabric",
    "singlestore",
    "teradata",
    "materialize",
    "risingwave",
    "starrocks",
    "doris",
    "dremio",
    "exasol",
)
"""Dialects accepted for ``dbt.dialect`` / ``sql.dialect`` (all known to sqlglot)."""

TOP_LEVEL_KEYS: tuple[str, ...] = (
    "compatibility",
    "teams",
    "dbt",
    "sql",
    "rules",
    "ignore",
    "consumers",
    "on_unparsed",
    "fallback",
    "on_unowned",
    "on_unknown_readers",
    "discovery",
    "internal",
)


TEAM_KEYS: tuple[str, ...] = ("github", "emails", "names", "warehouse_roles", "warehouse_users", "slack")


class _Problems:
    """Collects messages while parsing so each helper can report and carry on."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, message: str) -> None:
        self.items.append(message)


def parse_config(text: str | None) -> Config:
    """The configuration in ``text`` (None or empty: all defaults), never raising."""
    if text is None or not text.strip():
        return Config()
    problems = _Problems()
    try:
        data = yamlsafe.load(text, yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return Config(problems=(f".tessera.yml is not valid YAML{where}: {reason}; using defaults",))
    if data is None:
        return Config()
    if not isinstance(data, Mapping):
        return Config(
            problems=(f".tessera.yml must be a mapping of settings, not {_kind(data)}; using defaults",)
        )
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            problems.add(f"unknown key {key!r} in .tessera.yml (known: {', '.join(TOP_LEVEL_KEYS)})")
    compatibility = _choice(data.get("compatibility"), "compatibility", MODES, "backward", problems)
    on_unparsed = _choice(data.get("on_unparsed"), "on_unparsed", ON_UNPARSED, "regressions", problems)
    teams = _teams(data.get("teams"), problems)
    dbt = _dbt(data.get("dbt"), problems)
    sql = _sql(data.get("sql"), problems)
    rules = _rules(data.get("rules"), problems)
    ignore = _strings(data.get("ignore"), "ignore", problems)
    consumers = _consumers(data.get("consumers"), teams, problems)
    on_unowned = _choice(data.get("on_unowned"), "on_unowned", ON_UNOWNED, "block", problems)
    on_unknown_readers = _choice(
        data.get("on_unknown_readers"), "on_unknown_readers", ON_UNOWNED, "block", problems
    )
    fallback = _fallback(data.get("fallback"), teams, problems)
    discovery = _discovery(data.get("discovery"), problems)
    internal = _internal(data.get("internal"), problems)
    return Config(
        discovery=discovery,
        internal=internal,
        compatibility=compatibility,
        teams=teams,
        dbt=dbt,
        sql=sql,
        rules=rules,
        ignore=ignore,
        consumers=consumers,
        on_unparsed=on_unparsed,
        fallback=fallback,
        on_unowned=on_unowned,
        on_unknown_readers=on_unknown_readers,
        problems=tuple(problems.items),
    )


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


def _choice(value: Any, key: str, allowed: tuple[str, ...], default: str, problems: _Problems) -> str:
    if value is None:
        return default
    if isinstance(value, str) and value.strip().lower() in allowed:
        return value.strip().lower()
    problems.add(f"{key}: {value!r} is not one of {', '.join(allowed)}; using {default!r}")
    return default


def _strings(value: Any, key: str, problems: _Problems) -> tuple[str, ...]:
    """A list of strings; a single string is accepted as a one-item list."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        problems.add(f"{key}: expected a list of strings, got {_kind(value)}; ignored")
        return ()
    out: list[str] = []
    for item in value:
        if isinstance(item, str) and item.strip():
            out.append(item.strip())
        else:
            problems.add(f"{key}: {item!r} is not a string; skipped")
    return tuple(out)


def _mapping(value: Any, key: str, problems: _Problems) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.add(f"{key}: expected a mapping, got {_kind(value)}; using defaults")
        return {}
    return value


def _teams(value: Any, problems: _Problems) -> dict[str, TeamSpec]:
    teams: dict[str, TeamSpec] = {}
    for slug, spec in _mapping(value, "teams", problems).items():
        slug_text = str(slug).strip().lower()
        if spec is None:
            spec = {}
        if isinstance(spec, str):  # `growth: acme/growth` shorthand
            spec = {"github": spec}
        if not isinstance(spec, Mapping):
            problems.add(f"teams.{slug}: expected a mapping, got {_kind(spec)}; team kept without details")
            teams[slug_text] = TeamSpec(slug=slug_text)
            continue
        for key in spec:
            if key not in TEAM_KEYS:
                problems.add(f"teams.{slug}: unknown key {key!r} (known: {', '.join(TEAM_KEYS)})")
        github = spec.get("github")
        if github is not None:
            github = str(github).strip().lstrip("@")
            if "/" not in github:
                problems.add(f"teams.{slug}.github: {github!r} should be 'org/team-slug'; ignored")
                github = None
        teams[slug_text] = TeamSpec(
            slug=slug_text,
            github=github or None,
            emails=tuple(e.lower() for e in _strings(spec.get("emails"), f"teams.{slug}.emails", problems)),
            names=_strings(spec.get("names"), f"teams.{slug}.names", problems),
            warehouse_roles=_strings(spec.get("warehouse_roles"), f"teams.{slug}.warehouse_roles", problems),
            warehouse_users=_strings(spec.get("warehouse_users"), f"teams.{slug}.warehouse_users", problems),
            slack=_slack_channel(spec.get("slack"), f"teams.{slug}.slack", problems),
        )
    return teams


def _slack_channel(value: Any, where: str, problems: _Problems) -> str | None:
    """``"#channel"`` or a channel id; anything else is named and ignored."""
    if value is None:
        return None
    text = str(value).strip() if isinstance(value, str) else ""
    if not text or len(text) > 80 or any(c.isspace() or c in "<>&|/:" for c in text):
        # An incoming-webhook URL is a secret: it is set through the API, never committed here.
        problems.add(f"{where}: expected a channel such as '#data-growth' or 'C0123ABCD'; ignored")
        return None
    return text


def _dbt(value: Any, problems: _Problems) -> DbtSettings:
    data = _mapping(value, "dbt", problems)
    for key in data:
        if key not in ("projects", "dialect", "manifest"):
            problems.add(f"dbt: unknown key {key!r} (known: projects, dialect, manifest)")
    projects = tuple(p.strip("/") or "." for p in _strings(data.get("projects"), "dbt.projects", problems))
    manifest = data.get("manifest")
    if manifest is not None and not isinstance(manifest, str):
        problems.add(f"dbt.manifest: expected a path, got {_kind(manifest)}; ignored")
        manifest = None
    return DbtSettings(
        projects=projects,
        dialect=_dialect(data.get("dialect"), "dbt.dialect", problems),
        manifest=manifest.strip("/") if manifest else None,
    )


def _sql(value: Any, problems: _Problems) -> SqlSettings:
    data = _mapping(value, "sql", problems)
    for key in data:
        if key not in ("paths", "dialect"):
            problems.add(f"sql: unknown key {key!r} (known: paths, dialect)")
    return SqlSettings(
        paths=_strings(data.get("paths"), "sql.paths", problems),
        dialect=_dialect(data.get("dialect"), "sql.dialect", problems),
    )


def _dialect(value: Any, key: str, problems: _Problems) -> str | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    if text == "postgresql":
        text = "postgres"
    if text in DIALECTS:
        return text
    problems.add(f"{key}: unknown dialect {value!r} (known: {', '.join(DIALECTS)}); using the default")
    return None


def _rules(value: Any, problems: _Problems) -> dict[str, str]:
    rules: dict[str, str] = {}
    for rule, severity in _mapping(value, "rules", problems).items():
        rule_id = str(rule).strip().upper()
        known = _known_rule_ids()
        if known and rule_id not in known:
            problems.add(f"rules: unknown rule {rule!r}; ignored")
            continue
        text = str(severity).strip().lower() if isinstance(severity, str) else None
        if text not in RULE_SEVERITIES:
            problems.add(f"rules.{rule_id}: {severity!r} is not one of {', '.join(RULE_SEVERITIES)}; ignored")
            continue
        rules[rule_id] = text
    return rules


def _known_rule_ids() -> frozenset[str]:
    """The catalog's rule ids (an override naming another is reported)."""
    return frozenset(rule.value for rule in RuleId)


def _fallback(value: Any, teams: Mapping[str, TeamSpec], problems: _Problems) -> str | None:
    """``fallback: <team>``: a slug of ``teams:`` or an ``org/team`` GitHub team."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        problems.add(f"fallback: expected a team, got {_kind(value)}; the repository's maintainers hold instead")
        return None
    text = value.strip().lower()
    if text.lstrip("@") not in teams and "/" not in text:
        problems.add(
            f"fallback: {value!r} is neither a team under teams: nor an 'org/team' GitHub team;"
            " the repository's maintainers hold instead"
        )
        return None
    return text


def _consumers(value: Any, teams: Mapping[str, TeamSpec], problems: _Problems) -> tuple[Registration, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.add(f"consumers: expected a list, got {_kind(value)}; ignored")
        return ()
    out: list[Registration] = []
    for index, item in enumerate(value):
        where = f"consumers[{index}]"
        if not isinstance(item, Mapping):
            problems.add(f"{where}: expected a mapping with team and asset; skipped")
            continue
        team, asset = item.get("team"), item.get("asset")
        if not isinstance(team, str) or not team.strip() or not isinstance(asset, str) or not asset.strip():
            problems.add(f"{where}: needs 'team' and 'asset' strings; skipped")
            continue
        for key in item:
            if key not in ("team", "asset", "columns", "note"):
                problems.add(f"{where}: unknown key {key!r} (known: team, asset, columns, note)")
        slug = team.strip().lower()
        if teams and slug not in teams:
            problems.add(f"{where}: team {team!r} is not listed under teams:")
        note = item.get("note")
        out.append(
            Registration(
                team=slug,
                asset=asset.strip().lower(),
                columns=_strings(item.get("columns"), f"{where}.columns", problems),
                note=str(note) if note is not None else "",
                source="config",
            )
        )
    return tuple(out)


_DURATION = re.compile(r"^\s*(\d+)\s*([dwh]?)\s*$")
_DURATION_DAYS = {"": 1, "d": 1, "w": 7}


def _discovery(value: Any, problems: _Problems) -> DiscoverySettings:
    """``discovery: {stale_after: 30d}`` (days, ``4w`` weeks, or ``720h`` hours)."""
    data = _mapping(value, "discovery", problems)
    for key in data:
        if key != "stale_after":
            problems.add(f"discovery: unknown key {key!r} (known: stale_after)")
    raw = data.get("stale_after")
    if raw is None:
        return DiscoverySettings()
    match = _DURATION.match(str(raw)) if not isinstance(raw, bool) else None
    if match is None or int(match.group(1)) == 0:
        problems.add(f"discovery.stale_after: {raw!r} is not a duration like 30d, 4w or 720h; using 30d")
        return DiscoverySettings()
    number, unit = int(match.group(1)), match.group(2)
    days = max(1, number // 24) if unit == "h" else number * _DURATION_DAYS[unit]
    return DiscoverySettings(stale_after_days=days)


def _internal(value: Any, problems: _Problems) -> InternalSettings:
    """``internal: {folders: [staging, intermediate, base], prefixes: [stg_, int_, base_]}``: a key
    left out (or left empty, ``folders:``) keeps its default, an empty list (``[]``) marks nothing
    internal that way. A folder is one name: ``models/staging`` could never match, so it is a
    problem the comment shows rather than a rule that silently does nothing."""
    data = _mapping(value, "internal", problems)
    known = ("folders", "prefixes")
    for key in data:
        if key not in known:
            problems.add(f"internal: unknown key {key!r} (known: {', '.join(known)})")
    default = InternalSettings()
    folders = default.folders
    prefixes = default.prefixes
    if data.get("folders") is not None:
        named = [f.strip("/").lower() for f in _strings(data["folders"], "internal.folders", problems) if f.strip("/")]
        nested = [f for f in named if "/" in f]
        if nested:
            problems.add(
                f"internal.folders: {', '.join(repr(f) for f in nested)} is a path; name one folder"
                " (e.g. 'staging'): any folder of that name below the models folder counts"
            )
        folders = tuple(f for f in named if "/" not in f)
    if data.get("prefixes") is not None:
        prefixes = tuple(p.lower() for p in _strings(data["prefixes"], "internal.prefixes", problems) if p)
    return InternalSettings(folders=folders, prefixes=prefixes)
