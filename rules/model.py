"""The values that flow through the engine and out of it to ``app``.

A :class:`Snapshot` is the schema state of a repository at one commit: its assets (tables, views,
dbt models, sources), exposures, groups and column-level edges. Two snapshots are diffed into
:class:`Change` findings; changes plus the graph give :class:`Impact` rows and the
:class:`RequiredAck` list; the whole answer is an :class:`Analysis`, whose ``to_dict`` is the
``tessera check --format json`` object of DESIGN.md.

Names: asset fqns are lower-case (``schema.name`` for SQL, with the database when the SQL names
one; the model name for dbt, ``name.v2`` for versions). Column names are compared lower-case
(:func:`column_key`) but keep their declared spelling for display.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

UNKNOWN = "UNKNOWN"
"""The type of a column whose type cannot be inferred. Changes to it are at least ``review``."""

Severity = Literal["breaking", "review", "safe", "info"]
SEVERITIES: tuple[str, ...] = ("breaking", "review", "safe", "info")
Mode = Literal["backward", "forward", "full", "none"]
MODES: tuple[str, ...] = ("backward", "forward", "full", "none")

AssetKind = Literal["table", "view", "model", "source", "seed", "snapshot"]
Usage = Literal["select", "filter", "join", "group", "order", "star", "unknown"]


NOT_PRODUCED = "tessera_not_produced"
"""Column meta key set by the build: an enforced contract declares this column, but the model's
query does not produce it (``dbt build`` fails the contract)."""


PRODUCED_TYPE = "tessera_produced_type"
"""Column meta key set by the build: the type a contracted model's query produces for a column
whose declared ``data_type`` differs (the diff says when ``dbt build`` would fail on it)."""


PRODUCED_EXTRA = "tessera_produced_extra"
"""Asset meta key set by the build: columns a contracted model's query produces that its contract
does not declare (``dbt build`` fails the contract)."""


PROPERTIES_AT = "tessera_properties_at"
"""Asset meta key set by the dbt loader: ``[path, line]`` of the model's YAML entry, where findings
about YAML properties (access, contract, versions) point."""


def column_key(name: str) -> str:
    """The case-insensitive key a column is matched by."""
    return name.strip('"`[]').lower()


@dataclass(frozen=True)
class Column:
    """One output column of an asset."""

    name: str
    type: str = UNKNOWN
    """Normalised type text in the asset's dialect (``types.normalize_type``), or ``UNKNOWN``."""
    nullable: bool | None = None
    """False when NOT NULL is declared or enforced; None when unknown."""
    default: str | None = None
    description: str = ""
    position: int = 0
    expression: str | None = None
    """Normalised SQL of the expression that produces it (views, models); None for tables."""
    constraints: tuple[str, ...] = ()
    """Column-level constraints: ``primary_key``, ``unique``, ``not_null``, ``foreign_key:<ref>``,
    ``check:<expr>``, ``accepted_values:<sorted,values>`` (dbt tests count as constraints)."""
    declared_type: bool = False
    """True when the type was declared (DDL, dbt YAML ``data_type``) rather than inferred."""
    tags: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict, hash=False)
    line: int | None = None

    @property
    def key(self) -> str:
        return column_key(self.name)


@dataclass(frozen=True)
class Asset:
    """A relation whose schema others may depend on."""

    fqn: str
    kind: AssetKind
    path: str | None = None
    """Repository-relative path of the file that defines it (the SQL file for dbt models)."""
    line: int | None = None
    columns: tuple[Column, ...] = ()
    columns_known: bool = True
    """False when the output columns could not be worked out (e.g. ``SELECT *`` from an unknown
    parent, unparsable SQL): consumers then count as reading every column."""
    dialect: str | None = None
    sql: str | None = None
    """The query for views and models (rendered / compiled SQL), None for tables and sources."""
    materialized: str | None = None
    """dbt materialization (table, view, incremental, ephemeral, ...) or ``table``/``view`` for SQL."""
    name: str | None = None
    """Display name (dbt model name, SQL table name)."""
    owner: str | None = None
    """The most specific raw owner found (meta.tessera.owner, group owner, meta.owner): a team slug,
    a name, an e-mail or ``@org/team``. Resolved to a team by ``impact``."""
    group: str | None = None
    access: str | None = None
    contract_enforced: bool = False
    version: str | None = None
    latest_version: str | None = None
    deprecation_date: str | None = None
    compatibility: str | None = None
    """Per-asset compatibility mode (dbt ``meta.tessera.compatibility``), None for the repo default."""
    description: str = ""
    tags: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict, hash=False)
    constraints: tuple[str, ...] = ()
    """Asset-level constraints, normalised text: ``primary_key(a,b)``, ``unique(a)``,
    ``foreign_key(a)->other(b)``, ``check(...)``."""
    unique_key: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    """Upstream asset fqns (refs and sources for dbt; tables read for views)."""
    enabled: bool = True
    package: str | None = None
    checksum: str | None = None
    """Hash of the definition (raw SQL + properties); equal checksums mean nothing changed."""
    relation: str | None = None
    """The relation name other SQL uses to read it (dbt ``relation_name``, e.g.
    ``"db"."schema"."customers_v3"``), so compiled SQL can be mapped back to fqns."""

    def column(self, name: str) -> Column | None:
        key = column_key(name)
        for col in self.columns:
            if col.key == key:
                return col
        return None


@dataclass(frozen=True)
class Exposure:
    """A dbt exposure: a dashboard, notebook, application or ML model that reads assets."""

    name: str
    depends_on: tuple[str, ...] = ()
    owner: str | None = None
    """meta.tessera.owner, else the exposure's owner e-mail, else its owner name."""
    owner_name: str | None = None
    owner_email: str | None = None
    type: str | None = None
    url: str | None = None
    path: str | None = None
    description: str = ""
    columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    """Optional per-asset columns it reads (``meta.tessera.columns``); absent means every column."""


@dataclass(frozen=True)
class Group:
    """A dbt group and its owner."""

    name: str
    owner_name: str | None = None
    owner_email: str | None = None
    owner: str | None = None
    """meta.tessera.owner when given, else the e-mail, else the name."""


@dataclass(frozen=True)
class Edge:
    """A column-level dependency: ``downstream`` reads ``upstream``.

    ``downstream_column`` is the output column fed by ``upstream_column``; it is None when the
    upstream column is used in a join, filter or grouping (the whole downstream asset depends on
    it). ``upstream_column`` None means the dependency is on the asset as a whole (``SELECT *``
    or unknown usage: every column counts as read).
    """

    upstream: str
    upstream_column: str | None
    downstream: str
    downstream_column: str | None
    usage: Usage = "select"


@dataclass(frozen=True)
class ParseProblem:
    """A file (or statement) Tessera could not analyse. Becomes an UNPARSED change when the file
    changed in the PR."""

    path: str
    message: str
    line: int | None = None


@dataclass
class Snapshot:
    """The schema state of a repository at one commit."""

    assets: dict[str, Asset] = field(default_factory=dict)
    exposures: dict[str, Exposure] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    problems: list[ParseProblem] = field(default_factory=list)


# --- configuration (.tessera.yml) -------------------------------------------------------------


@dataclass(frozen=True)
class TeamSpec:
    slug: str
    github: str | None = None
    """``org/team-slug`` of the GitHub team whose active members speak for this team."""
    emails: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    warehouse_roles: tuple[str, ...] = ()
    """Warehouse roles whose observed queries are this team's (matched case-insensitively)."""
    warehouse_users: tuple[str, ...] = ()
    slack: str | None = None
    """The team's Slack channel (``#data-growth`` or a channel id), where it is asked to ack."""


@dataclass(frozen=True)
class Observation:
    """How an observed consumer was seen: who read, how often, when last (``rules.observed``)."""

    reader_kind: str
    """``role`` or ``user`` (a warehouse identity) or ``bi`` (a BI tool object)."""
    reader: str
    queries: int = 0
    """Queries seen in the window (``window_days``) before the analysis."""
    last_seen: str | None = None
    """ISO date of the newest query seen."""
    every_column: bool = False
    """True when a query read every column (``select *`` of a table whose columns were unknown).
    With no ``columns`` and this False the reader touched no column (``count(*)``): only
    asset-wide changes reach it."""
    folder: str | None = None
    """The BI folder or project the object lives in (maps to a team)."""
    window_days: int = 30
    stale: bool = False
    """Not seen for ``discovery.stale_after``: listed, never required."""


@dataclass(frozen=True)
class Coverage:
    """A warehouse query log that discovery reads (``tessera discover``): its source kind and the
    day it last ran. While it is fresh, a published relation with no observed read of a column is
    known to be read by nobody, rather than by readers nobody knows."""

    kind: str
    """The discovery source's kind: ``postgres``, ``snowflake``, ``bigquery``, ``databricks``,
    ``redshift`` (a warehouse's own log, covering that dialect) or ``jsonl`` (an exported log of any
    warehouse)."""
    last_run: str
    """ISO date of the source's last discovery run."""


@dataclass(frozen=True)
class Unread:
    """A breaking change to a published relation that fresh query logs saw nobody read: why it
    passes without asking anyone."""

    target: str
    """The relation, or ``relation.column`` for a column's change."""
    days: int
    """The window the logs cover (``discovery.stale_after``)."""
    logs: tuple[str, ...]
    """The kinds of query log that cover its warehouse."""

    @property
    def sentence(self) -> str:
        return f"no reads of {self.target} in the last {self.days} days ({', '.join(self.logs)} query logs)"


UNKNOWN_READERS = "unknown"
"""The ``consumer_type`` of the readers nobody knows of a published relation (held for the fallback)."""


@dataclass(frozen=True)
class Registration:
    """A team declaring that it reads an asset (``consumers:`` in .tessera.yml, or the API)."""

    team: str
    asset: str
    columns: tuple[str, ...] = ()
    """Empty means every column."""
    note: str = ""
    source: str = "config"
    """``config``, ``api``, ``sql:<repo>/<path>`` for SQL found in another repository, or
    ``observed:<kind>`` for a reader seen in a query log or BI tool (with ``observed``)."""
    observed: Observation | None = None


@dataclass(frozen=True)
class DbtSettings:
    projects: tuple[str, ...] = ()
    """Folders holding dbt_project.yml; empty means find them automatically."""
    dialect: str | None = None
    manifest: str | None = None


@dataclass(frozen=True)
class SqlSettings:
    paths: tuple[str, ...] = ()
    """Glob patterns of SQL files (DDL, migrations, views); empty means ``**/*.sql`` outside dbt."""
    dialect: str | None = None


@dataclass(frozen=True)
class InternalSettings:
    """What marks a relation as a building block of the repository rather than an interface for
    readers outside it (dbt's documented project structure by default): a file under a folder of one
    of these names, or a name starting with one of these prefixes. A building block is never held
    for readers nobody knows; ``access: public`` still publishes it."""

    folders: tuple[str, ...] = ("staging", "intermediate", "base")
    prefixes: tuple[str, ...] = ("stg_", "int_", "base_")


@dataclass(frozen=True)
class DiscoverySettings:
    stale_after_days: int = 30
    """An observed consumer not seen for this long is listed but no longer required."""


@dataclass(frozen=True)
class Config:
    """A parsed ``.tessera.yml`` (always read from the PR's base branch)."""

    compatibility: str = "backward"
    teams: Mapping[str, TeamSpec] = field(default_factory=dict, hash=False)
    dbt: DbtSettings = DbtSettings()
    sql: SqlSettings = SqlSettings()
    rules: Mapping[str, str] = field(default_factory=dict, hash=False)
    """Per-rule severity overrides: breaking | review | safe | info | ignore."""
    ignore: tuple[str, ...] = ()
    consumers: tuple[Registration, ...] = ()
    on_unparsed: str = "regressions"
    """``regressions`` (a file that was readable and no longer is counts as breaking for its
    readers; other UNPARSED is review), ``warn`` (UNPARSED is review) or ``block`` (breaking)."""
    fallback: str | None = None
    """The team that holds for a consumer whose owner resolves to nobody."""
    on_unowned: str = "block"
    """``block`` (hold such a change for a fallback) or ``warn`` (only say so)."""
    on_unknown_readers: str = "block"
    """``block`` (hold a breaking change to a published relation nobody is known to read for the
    fallback) or ``warn`` (only say its readers are unknown)."""
    discovery: DiscoverySettings = DiscoverySettings()
    internal: InternalSettings = InternalSettings()
    """Which relations are the repository's own building blocks (see :class:`InternalSettings`)."""
    problems: tuple[str, ...] = ()
    """What was wrong with the file (unknown keys, bad values): shown to the user, never fatal."""


# --- findings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One finding of the diff, with its severity already resolved for the asset's mode."""

    rule: str
    severity: str
    asset: str
    column: str | None = None
    path: str | None = None
    line: int | None = None
    message: str = ""
    before: str | None = None
    after: str | None = None


@dataclass(frozen=True)
class Impact:
    asset: str
    """The changed asset."""
    consumer: str
    """The fqn of a downstream asset, an exposure name, or a registration's team/asset."""
    consumer_type: str
    """model | exposure | registration | view | query"""
    team: str | None
    columns: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    path: tuple[str, ...] = ()
    """The chain of assets from the changed asset to the consumer (for diagrams)."""


MAINTAINERS = "maintainers"
"""The key of the last fallback: the repository's users with maintain or admin permission."""


@dataclass(frozen=True)
class RequiredAck:
    """Who must acknowledge, and why: a team, or a person (``kind="user"``).

    ``team`` is the key responses are stored under: the team slug, ``user:<identity>`` for a
    person, or :data:`MAINTAINERS` for the last fallback.
    """

    team: str
    github_team: str | None
    reasons: tuple[str, ...] = ()
    fingerprint: str = ""
    """A hash of the breaking changes this team must acknowledge: an ack is kept across pushes
    while the fingerprint stays the same."""
    kind: str = "team"
    """``team`` or ``user``."""
    user: str | None = None
    """A person as the project names them: a login, an e-mail or a name."""
    login: str | None = None
    """The GitHub login that answers for the person, once the App has found it."""
    fallback: bool = False
    """Held for a consumer whose owner resolves to nobody."""
    stand_in: str | None = None
    """For a person the App may not find (an e-mail or a name): who holds instead, as a raw owner
    (``@org/team``, a team slug, ``@login``); None: ``fallback:``, else the maintainers."""
    owner_source: str | None = None
    """``history`` for a person asked because they last changed a reader no one declares an owner
    for; None when the owner was declared (exposure, group, meta, CODEOWNERS) or is a fallback."""
    held_for: tuple[str, ...] = ()
    """Why a fallback holds: ``unknown_readers`` (a published relation nobody is known to read)
    and/or ``unowned`` (a consumer whose owner resolves to nobody)."""

    @property
    def maintainers(self) -> bool:
        """The repository's maintainers hold for an unowned consumer (no team, no person)."""
        return self.fallback and self.kind == "team" and self.team == MAINTAINERS and not self.github_team


@dataclass(frozen=True)
class Migration:
    rule: str
    asset: str
    column: str | None
    steps: str
    sql: str | None = None


@dataclass(frozen=True)
class AnalysisError:
    path: str
    message: str


@dataclass(frozen=True)
class Dialect:
    """The SQL dialect a dbt project was read in, and why: a reader who sees models lose their
    columns can tell at once whether Tessera guessed (``default``) or where it looked."""

    name: str
    """A sqlglot dialect name (``bigquery``, ``snowflake``, ...)."""
    source: str
    """Where it came from: ``.tessera.yml``, ``profiles.yml (target dev: bigquery)``,
    ``requirements.txt: dbt-bigquery``, ``target/manifest.json: metadata.adapter_type snowflake``,
    or ``default``."""


@dataclass(frozen=True)
class Project:
    """A dbt project the analysis read, and in which dialect."""

    path: str
    """The folder holding ``dbt_project.yml`` (``.`` for the repository root)."""
    dialect: Dialect


@dataclass(frozen=True)
class Detected:
    """What Tessera worked out on its own for a repository without ``.tessera.yml`` (said in the
    check's summary, with how to refine it)."""

    owner_sources: tuple[str, ...] = ()
    """Where owners were found: ``exposures``, ``groups``, ``meta.owner``, ``CODEOWNERS``."""


@dataclass(frozen=True)
class Analysis:
    base: str
    head: str
    status: str
    """``clear`` or ``needs_ack``."""
    changes: tuple[Change, ...] = ()
    impacts: tuple[Impact, ...] = ()
    required_acks: tuple[RequiredAck, ...] = ()
    migrations: tuple[Migration, ...] = ()
    errors: tuple[AnalysisError, ...] = ()
    projects: tuple[Project, ...] = ()
    """The dbt projects read, each with its dialect (empty when nothing needed reading)."""
    detected: Detected | None = None
    """Set when the repository has no ``.tessera.yml``: what was found without it."""
    unread: tuple[Unread, ...] = ()
    """Breaking changes to published relations that fresh query logs show nobody reads, one
    sentence each (``no reads of fct_orders.plan_code in the last 30 days``): why they pass."""
    notes: tuple[str, ...] = ()
    """What the reader of the check should know about how it was read (dbt packages fetched or
    not); said in the check's summary, never a reason for a comment."""

    def to_dict(self) -> dict[str, Any]:
        """The ``tessera check --format json`` object (DESIGN.md), stable field order."""
        return {
            "base": self.base,
            "head": self.head,
            "status": self.status,
            "changes": [asdict(c) for c in self.changes],
            "impacts": [
                {
                    "asset": i.asset,
                    "consumer": i.consumer,
                    "consumer_type": i.consumer_type,
                    "team": None if person_identity(i.team) else i.team,
                    **({"user": person_identity(i.team)} if person_identity(i.team) else {}),
                    "columns": list(i.columns),
                    "rules": list(i.rules),
                }
                for i in self.impacts
            ],
            "required_acks": [_required_dict(r) for r in self.required_acks],
            "migrations": [asdict(m) for m in self.migrations],
            "errors": [asdict(e) for e in self.errors],
            "projects": [asdict(p) for p in self.projects],
            **({"unread": [u.sentence for u in self.unread]} if self.unread else {}),
            **({"notes": list(self.notes)} if self.notes else {}),
        }


USER_KEY = "user:"
"""Prefix of a person's key where a team slug would be (impacts, responses)."""


def person_key(identity: str) -> str:
    """The key a person's impacts and responses are stored under."""
    return USER_KEY + identity.strip().lower()


def person_identity(key: str | None) -> str | None:
    """The person a key names (login, e-mail or name), None for a team."""
    if key and key.startswith(USER_KEY):
        return key[len(USER_KEY):]
    return None


def _required_dict(required: RequiredAck) -> dict[str, Any]:
    """One ``required_acks`` entry of the JSON: a team, or a person under ``user``."""
    entry: dict[str, Any] = {"kind": required.kind}
    if required.kind == "user":
        entry["user"] = required.login or required.user
    else:
        entry["team"] = required.team
        entry["github_team"] = required.github_team
    entry["reasons"] = list(required.reasons)
    if required.fallback:
        entry["fallback"] = True
        if required.held_for:
            entry["reason"] = ",".join(required.held_for)
    if required.owner_source:
        entry["owner_source"] = required.owner_source
    return entry
