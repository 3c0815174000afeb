"""Properties of the diff over generated snapshots: it never crashes, never invents rules, finds
nothing between a snapshot and itself, and respects mode ``none`` whatever changed."""

from __future__ import annotations

import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.catalog import RULES_BY_ID
from rules.diff import diff_snapshots
from rules.migrations import suggest
from rules.model import UNKNOWN, Asset, Column, Config, ParseProblem, Snapshot

NAMES = st.sampled_from(["id", "plan_code", "amount", "region", "Status", "created_at"])
TYPES = st.sampled_from(["INT", "BIGINT", "VARCHAR(10)", "VARCHAR(20)", "TEXT", "DATE", "DECIMAL(12, 2)", UNKNOWN])
CONSTRAINTS = st.sampled_from(["primary_key", "unique", "not_null", "accepted_values:a,b", "foreign_key:x(id)"])


@st.composite
def columns(draw: st.DrawFn) -> tuple[Column, ...]:
    names = draw(st.lists(NAMES, unique_by=str.lower, max_size=5))
    return tuple(
        Column(
            name,
            draw(TYPES),
            nullable=draw(st.sampled_from([None, True, False])),
            default=draw(st.sampled_from([None, "0"])),
            position=i,
            expression=draw(st.sampled_from([None, f"t.{name}", "t.x", "1"])),
            constraints=tuple(draw(st.lists(CONSTRAINTS, unique=True, max_size=2))),
            description=draw(st.sampled_from(["", "doc"])),
            meta=draw(st.sampled_from([{}, {"renamed_from": "plan_code"}])),
        )
        for i, name in enumerate(names)
    )


@st.composite
def assets(draw: st.DrawFn) -> Asset:
    kind = draw(st.sampled_from(["table", "view", "model", "source"]))
    fqn = draw(st.sampled_from(["s.a", "s.b", "m", "m.v1", "m.v2"]))
    return Asset(
        fqn,
        kind,
        path=draw(st.sampled_from(["a.sql", "models/m.sql", "sandbox/x.sql", None])),
        columns=draw(columns()),
        columns_known=draw(st.booleans()),
        dialect=draw(st.sampled_from(["postgres", "snowflake", None])),
        sql=draw(st.sampled_from([None, "select 1 as id", "select id from t where x > 1", "select {{"])),
        materialized=draw(st.sampled_from([None, "table", "view", "ephemeral", "incremental"])),
        access=draw(st.sampled_from([None, "public", "protected", "private"])),
        contract_enforced=draw(st.booleans()),
        version=draw(st.sampled_from([None, "1", "2"])),
        latest_version=draw(st.sampled_from([None, "1", "2"])),
        deprecation_date=draw(st.sampled_from([None, "2027-01-01"])),
        compatibility=draw(st.sampled_from([None, "forward", "none", "bogus"])),
        constraints=tuple(draw(st.lists(st.sampled_from(["primary_key(id)", "unique(a, b)", "check (x > 0)", "odd"]), max_size=2))),
        unique_key=tuple(draw(st.lists(NAMES, max_size=2))),
        enabled=draw(st.booleans()),
        meta=draw(st.sampled_from([{}, {"renamed_from": "s.a"}, {"renamed_from": "a"}])),
    )


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    found = draw(st.lists(assets(), max_size=4))
    problems = draw(st.lists(st.builds(ParseProblem, st.sampled_from(["a.sql", "models/m.sql"]), st.just("bad"),
                                       st.sampled_from([None, 1, 3])), max_size=2))
    return Snapshot(assets={a.fqn: a for a in found}, problems=problems)


CONFIGS = st.builds(
    Config,
    compatibility=st.sampled_from(["backward", "forward", "full", "none"]),
    rules=st.sampled_from([{}, {"COLUMN_REMOVED": "ignore"}, {"FILTER_CHANGED": "breaking"}]),
    ignore=st.sampled_from([(), ("sandbox/**",)]),
    on_unparsed=st.sampled_from(["warn", "block"]),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=snapshots(), head=snapshots(), config=CONFIGS)
def test_diff_never_crashes_and_only_names_catalog_rules(base: Snapshot, head: Snapshot, config: Config) -> None:
    changes = diff_snapshots(base, head, config, changed_paths={"a.sql", "models/m.sql"})
    for change in changes:
        assert change.rule in RULES_BY_ID
        assert change.severity in ("breaking", "review", "safe", "info")
        assert change.message
        assert config.rules.get(change.rule) != "ignore"
    own_modes = [a for s in (base, head) for a in s.assets.values() if a.compatibility in ("backward", "forward", "full")]
    if config.compatibility == "none" and not own_modes:
        assert not [c for c in changes if c.severity == "breaking"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshot=snapshots(), config=CONFIGS)
def test_a_snapshot_compared_with_itself_has_no_findings(snapshot: Snapshot, config: Config) -> None:
    assert diff_snapshots(snapshot, snapshot, config, changed_paths=set()) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=snapshots(), head=snapshots(), config=CONFIGS)
def test_every_breaking_finding_gets_a_migration_whatever_the_snapshots(
    base: Snapshot, head: Snapshot, config: Config
) -> None:
    changes = diff_snapshots(base, head, config, changed_paths={"a.sql"})
    migrations = suggest(changes, base, head, today=datetime.date(2026, 1, 1))
    for change in changes:
        if change.severity == "breaking":
            assert [m for m in migrations if (m.rule, m.asset) == (change.rule, change.asset)], change
