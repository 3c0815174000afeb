"""Impact: who a change reaches through column lineage, and which teams must acknowledge it."""

from __future__ import annotations

from dataclasses import replace

from rules.impact import fingerprint, walk_impact
from rules.model import (
    Asset,
    Change,
    Column,
    Config,
    Edge,
    Exposure,
    Group,
    Registration,
    Snapshot,
    TeamSpec,
)
from rules.owners import codeowners_for, match_team, parse_codeowners, resolve_owner

CONFIG = Config(
    teams={
        "data": TeamSpec("data", github="acme/data-eng", emails=("data@acme.com",)),
        "growth": TeamSpec("growth", github="acme/growth", names=("Growth Analytics",)),
        "finance": TeamSpec("finance", github="acme/finance-data", emails=("finance@acme.com",)),
        "ops": TeamSpec("ops", github="acme/ops"),
    }
)


def cols(*names: str) -> tuple[Column, ...]:
    return tuple(Column(n, "INT", position=i) for i, n in enumerate(names))


def shop() -> Snapshot:
    """stg_orders → int_orders → fct_revenue → exposures; all models owned by the data team."""
    owner = {"tessera": {"owner": "data"}}
    assets = {
        "stg_orders": Asset(
            "stg_orders",
            "model",
            "models/stg_orders.sql",
            columns=cols("id", "amount", "plan", "region"),
            meta=owner,
        ),
        "int_orders": Asset(
            "int_orders",
            "model",
            "models/int_orders.sql",
            columns=cols("id", "amount", "plan_code", "region"),
            depends_on=("stg_orders",),
            meta=owner,
        ),
        "fct_revenue": Asset(
            "fct_revenue",
            "model",
            "models/fct_revenue.sql",
            columns=cols("revenue", "plan_code", "region"),
            depends_on=("int_orders",),
            meta=owner,
        ),
    }
    edges = [
        Edge("stg_orders", "id", "int_orders", "id"),
        Edge("stg_orders", "amount", "int_orders", "amount"),
        Edge("stg_orders", "plan", "int_orders", "plan_code"),
        Edge("stg_orders", "region", "int_orders", "region"),
        Edge("int_orders", "amount", "fct_revenue", "revenue"),
        Edge("int_orders", "plan_code", "fct_revenue", "plan_code"),
        Edge("int_orders", "region", "fct_revenue", "region"),
        Edge("int_orders", "id", "fct_revenue", None, "filter"),
    ]
    exposures = {
        "revenue_dashboard": Exposure(
            "revenue_dashboard",
            depends_on=("fct_revenue",),
            owner="growth",
            columns={"fct_revenue": ("revenue", "plan_code")},
        ),
        "region_report": Exposure(
            "region_report",
            depends_on=("fct_revenue",),
            owner_email="finance@acme.com",
            columns={"fct_revenue": ("region",)},
        ),
    }
    return Snapshot(assets=assets, exposures=exposures, edges=edges)


def removed(asset: str, column: str) -> Change:
    return Change("COLUMN_REMOVED", "breaking", asset, column, before=column)


def test_removing_a_column_read_two_layers_down_requires_only_the_reading_team() -> None:
    snap = shop()
    found = walk_impact([removed("stg_orders", "plan")], snap, snap, CONFIG)
    impacts, acks = found.impacts, found.required
    assert [a.team for a in acks] == ["growth"]
    assert acks[0].github_team == "acme/growth"
    assert "revenue_dashboard" in acks[0].reasons[0]
    (impact,) = impacts
    assert impact.consumer == "revenue_dashboard"
    assert impact.consumer_type == "exposure"
    assert impact.columns == ("plan",)
    assert impact.path == ("stg_orders", "int_orders", "fct_revenue", "revenue_dashboard")


def test_removing_a_column_nobody_reads_requires_no_one() -> None:
    snap = shop()
    found = walk_impact([removed("fct_revenue", "unused")], snap, snap, CONFIG)
    impacts, acks = found.impacts, found.required
    assert impacts == () and acks == ()


def test_a_column_used_only_in_a_filter_counts_as_read_by_everything_downstream() -> None:
    snap = shop()
    acks = walk_impact([removed("stg_orders", "id")], snap, snap, CONFIG).required
    assert [a.team for a in acks] == ["finance", "growth"]


def test_select_star_from_an_asset_reads_every_column() -> None:
    snap = shop()
    snap.assets["ops_copy"] = Asset(
        "ops_copy", "view", "views/ops.sql", depends_on=("fct_revenue",), meta={"owner": "ops"}
    )
    snap.edges.append(Edge("fct_revenue", None, "ops_copy", None, "star"))
    found = walk_impact([removed("fct_revenue", "revenue")], snap, snap, CONFIG)
    impacts, acks = found.impacts, found.required
    assert {a.team for a in acks} == {"growth", "ops"}
    ops = [i for i in impacts if i.team == "ops"]
    assert ops[0].consumer == "ops_copy" and ops[0].consumer_type == "view"


def test_a_reader_with_unknown_lineage_counts_as_reading_every_column() -> None:
    snap = shop()
    snap.assets["ops_model"] = Asset(
        "ops_model", "model", depends_on=("fct_revenue",), columns_known=False, meta={"owner": "ops"}
    )
    acks = walk_impact([removed("fct_revenue", "region")], snap, snap, CONFIG).required
    assert {a.team for a in acks} == {"finance", "ops"}


def test_asset_wide_breaking_change_reaches_every_consumer_team() -> None:
    snap = shop()
    change = Change("ASSET_REMOVED", "breaking", "int_orders")
    found = walk_impact([change], snap, snap, CONFIG)
    impacts, acks = found.impacts, found.required
    assert [a.team for a in acks] == ["finance", "growth"]
    assert {i.consumer for i in impacts} == {"revenue_dashboard", "region_report"}


def test_the_producing_team_never_acks_for_itself() -> None:
    snap = shop()
    exposures = dict(snap.exposures)
    exposures["internal"] = Exposure("internal", depends_on=("fct_revenue",), owner="data@acme.com")
    snap.exposures = exposures
    acks = walk_impact([Change("ASSET_REMOVED", "breaking", "fct_revenue")], snap, snap, CONFIG).required
    assert "data" not in {a.team for a in acks}


def test_a_downstream_model_owned_by_another_team_is_a_consumer_and_passes_impact_on() -> None:
    snap = shop()
    snap.assets["growth_kpis"] = Asset(
        "growth_kpis",
        "model",
        "models/growth/kpis.sql",
        columns=cols("mrr"),
        depends_on=("fct_revenue",),
        group="growth_group",
    )
    snap.groups["growth_group"] = Group(
        "growth_group", owner_name="Growth Analytics", owner="Growth Analytics"
    )
    snap.edges.append(Edge("fct_revenue", "revenue", "growth_kpis", "mrr"))
    snap.exposures["board"] = Exposure("board", depends_on=("growth_kpis",), owner="@acme/finance-data")
    found = walk_impact([removed("fct_revenue", "revenue")], snap, snap, CONFIG)
    impacts, acks = found.impacts, found.required
    consumers = {(i.consumer, i.team) for i in impacts}
    assert ("growth_kpis", "growth") in consumers
    assert ("board", "finance") in consumers
    assert [a.team for a in acks] == ["finance", "growth"]


def test_registrations_count_only_when_they_read_the_affected_columns() -> None:
    snap = shop()
    config = Config(
        teams=CONFIG.teams,
        consumers=(Registration("ops", "fct_revenue", ("region",), note="ops sheet"),),
    )
    api = [Registration("finance", "fct_revenue", (), source="api")]
    found = walk_impact([removed("fct_revenue", "revenue")], snap, snap, config, registrations=api)
    impacts, acks = found.impacts, found.required
    assert [a.team for a in acks] == ["finance", "growth"]
    assert ("finance/fct_revenue", "registration") in {(i.consumer, i.consumer_type) for i in impacts}
    acks = walk_impact([removed("fct_revenue", "region")], snap, snap, config, registrations=api).required
    assert [a.team for a in acks] == ["finance", "ops"]


def test_a_removed_column_is_traced_in_the_base_snapshot() -> None:
    base = shop()
    head = shop()
    head.edges = [e for e in head.edges if e.upstream_column != "plan_code"]
    acks = walk_impact([removed("int_orders", "plan_code")], base, head, CONFIG).required
    assert [a.team for a in acks] == ["growth"]


def test_review_changes_name_consumers_without_requiring_acks() -> None:
    snap = shop()
    change = Change("COLUMN_LOGIC_CHANGED", "review", "fct_revenue", "revenue")
    found = walk_impact([change], snap, snap, CONFIG)
    impacts, acks = found.impacts, found.required
    assert acks == ()
    assert [(i.consumer, i.rules) for i in impacts] == [("revenue_dashboard", ("COLUMN_LOGIC_CHANGED",))]


def test_safe_and_info_changes_reach_no_one() -> None:
    snap = shop()
    changes = [
        Change("COLUMN_ADDED", "safe", "fct_revenue", "x"),
        Change("METADATA_CHANGED", "info", "fct_revenue"),
    ]
    found = walk_impact(changes, snap, snap, CONFIG)
    assert (found.impacts, found.required) == ((), ())


def test_fingerprint_is_stable_for_the_same_breaking_changes_and_differs_otherwise() -> None:
    snap = shop()
    one = [removed("fct_revenue", "plan_code")]
    two = [
        removed("fct_revenue", "plan_code"),
        Change("COLUMN_LOGIC_CHANGED", "review", "fct_revenue", "region"),
    ]
    first = walk_impact(one, snap, snap, CONFIG).required
    second = walk_impact(two, snap, snap, CONFIG).required
    assert first[0].fingerprint == second[0].fingerprint
    third = walk_impact(
        [removed("fct_revenue", "plan_code"), removed("fct_revenue", "revenue")], snap, snap, CONFIG
    ).required
    assert third[0].fingerprint != first[0].fingerprint
    assert fingerprint(reversed(two)) == fingerprint(two)


def test_ownership_prefers_meta_tessera_owner_then_group_then_meta_owner_then_codeowners() -> None:
    snap = Snapshot(groups={"fin": Group("fin", owner_email="finance@acme.com", owner="finance@acme.com")})
    codeowners = "* @acme/ops\n"
    asset = Asset(
        "m", "model", "models/m.sql", group="fin", meta={"tessera": {"owner": "growth"}, "owner": "data"}
    )
    assert resolve_owner(asset, snap, CONFIG, codeowners=codeowners).slug == "growth"
    asset = Asset("m", "model", "models/m.sql", group="fin", meta={"owner": "data"})
    assert resolve_owner(asset, snap, CONFIG, codeowners=codeowners).slug == "finance"
    asset = Asset("m", "model", "models/m.sql", meta={"owner": "data"})
    assert resolve_owner(asset, snap, CONFIG, codeowners=codeowners).slug == "data"
    asset = Asset("m", "model", "models/m.sql")
    assert resolve_owner(asset, snap, CONFIG, codeowners=codeowners).slug == "ops"
    assert resolve_owner(asset, snap, CONFIG) is None


def test_owner_names_emails_and_github_teams_map_to_configured_teams() -> None:
    assert match_team("Growth Analytics", CONFIG).slug == "growth"
    assert match_team("FINANCE@acme.com", CONFIG).slug == "finance"
    assert match_team("@acme/finance-data", CONFIG).slug == "finance"
    unknown = match_team("@acme/platform", CONFIG)
    assert (unknown.slug, unknown.github_team) == ("platform", "acme/platform")
    assert match_team("someone@elsewhere.com", CONFIG) is None


def test_codeowners_last_matching_rule_wins() -> None:
    rules = parse_codeowners(
        """
        # owners
        *                 @acme/data-eng
        *.sql             data@acme.com
        /models/marts/    @acme/finance-data   # marts belong to finance
        docs/*            @acme/docs
        models/marts/sandbox/tmp.sql
        """
    )
    assert codeowners_for("README.md", rules) == ("@acme/data-eng",)
    assert codeowners_for("migrations/001.sql", rules) == ("data@acme.com",)
    assert codeowners_for("models/marts/fct.sql", rules) == ("@acme/finance-data",)
    assert codeowners_for("models/marts/sandbox/tmp.sql", rules) == ()
    assert codeowners_for("docs/a.md", rules) == ("@acme/docs",)
    assert codeowners_for("docs/deep/a.md", rules) == ("@acme/data-eng",)


def test_a_registration_on_a_versioned_models_name_means_its_latest_version() -> None:
    snap = Snapshot(
        assets={
            "dim.v1": Asset(
                "dim.v1", "model", columns=cols("a"), version="1", latest_version="2", meta={"owner": "data"}
            ),
            "dim.v2": Asset(
                "dim.v2", "model", columns=cols("a"), version="2", latest_version="2", meta={"owner": "data"}
            ),
        }
    )
    config = Config(teams=CONFIG.teams, consumers=(Registration("growth", "dim"),))
    acks = walk_impact([removed("dim.v2", "a")], snap, snap, config).required
    assert [a.team for a in acks] == ["growth"]
    acks = walk_impact([removed("dim.v1", "a")], snap, snap, config).required
    # not Growth's: v1's readers (refs pinned to v1) are unknown, so it is held for the maintainers
    assert [(a.team, a.held_for) for a in acks] == [("maintainers", ("unknown_readers",))]


def test_a_renamed_column_reaches_the_readers_of_its_old_name() -> None:
    base = shop()
    head = shop()
    change = Change(
        "COLUMN_RENAMED", "breaking", "fct_revenue", "plan_code", before="plan_code", after="plan"
    )
    found = walk_impact([change], base, head, CONFIG)
    impacts, acks = found.impacts, found.required
    assert [a.team for a in acks] == ["growth"]
    assert impacts[0].columns == ("plan_code",)


def test_a_renamed_asset_reaches_every_reader_of_its_old_name() -> None:
    base = shop()
    head = shop()
    head.assets.pop("int_orders")
    change = Change("ASSET_RENAMED", "breaking", "int_orders", before="int_orders", after="orders_enriched")
    acks = walk_impact([change], base, head, CONFIG).required
    assert [a.team for a in acks] == ["finance", "growth"]


def test_a_reader_the_same_pr_rewrote_to_stop_reading_a_removed_column_passes_nothing_on() -> None:
    base = shop()
    head = shop()
    head.assets["fct_revenue"] = replace(head.assets["fct_revenue"], sql="select 'flat' as plan_code, ...")
    head.edges = [
        e for e in head.edges if not (e.upstream == "int_orders" and e.upstream_column == "plan_code")
    ]
    acks = walk_impact([removed("int_orders", "plan_code")], base, head, CONFIG).required
    assert acks == ()


def test_an_untouched_reader_still_reads_a_removed_column_whatever_its_head_lineage_says() -> None:
    base = shop()
    head = shop()
    head.edges = [
        e for e in head.edges if not (e.upstream == "int_orders" and e.upstream_column == "plan_code")
    ]
    acks = walk_impact([removed("int_orders", "plan_code")], base, head, CONFIG).required
    assert [a.team for a in acks] == ["growth"]


def test_narrowed_access_asks_models_in_other_groups_and_registrations_but_not_exposure_owners() -> None:
    snap = shop()
    snap.assets["fct_revenue"] = replace(snap.assets["fct_revenue"], group="core", package="analytics")
    snap.assets["growth_kpis"] = Asset(
        "growth_kpis", "model", columns=cols("mrr"), depends_on=("fct_revenue",),
        group="growth_group", package="analytics", meta={"owner": "growth"},
    )
    snap.assets["ops_kpis"] = Asset(
        "ops_kpis", "model", columns=cols("mrr"), depends_on=("fct_revenue",),
        group="core", package="analytics", meta={"owner": "ops"},
    )
    snap.edges.append(Edge("fct_revenue", "revenue", "growth_kpis", "mrr"))
    snap.edges.append(Edge("fct_revenue", "revenue", "ops_kpis", "mrr"))
    api = [Registration("finance", "fct_revenue", (), source="api")]
    change = Change("ACCESS_NARROWED", "breaking", "fct_revenue", before="public", after="private")
    found = walk_impact([change], snap, snap, CONFIG, registrations=api)
    impacts, acks = found.impacts, found.required
    assert [a.team for a in acks] == ["finance", "growth"]
    assert "exposure" not in {i.consumer_type for i in impacts}
    protected = replace(change, after="protected")
    acks = walk_impact([protected], snap, snap, CONFIG, registrations=api).required
    assert [a.team for a in acks] == ["finance"]


def _sourced() -> Snapshot:
    """raw.orders (a source) → stg_orders (staging team) → fct_orders (data) → a growth dashboard."""
    snap = Snapshot(
        assets={
            "raw.orders": Asset("raw.orders", "source", "models/staging/sources.yml", columns=cols("id", "amount")),
            "stg_orders": Asset("stg_orders", "model", columns=cols("id", "amount"),
                                depends_on=("raw.orders",), meta={"owner": "ops"}),
            "fct_orders": Asset("fct_orders", "model", columns=cols("id", "amount"),
                                depends_on=("stg_orders",), meta={"owner": "data"}),
        },
        exposures={"orders_board": Exposure("orders_board", depends_on=("fct_orders",), owner="growth")},
        edges=[
            Edge("raw.orders", "amount", "stg_orders", "amount"),
            Edge("stg_orders", "amount", "fct_orders", "amount"),
        ],
    )
    return snap


def test_the_team_reading_an_unowned_source_is_not_its_consumer_but_teams_further_down_are() -> None:
    snap = _sourced()
    found = walk_impact([removed("raw.orders", "amount")], snap, snap, CONFIG)
    impacts, acks = found.impacts, found.required
    assert [a.team for a in acks] == ["data", "growth"]
    assert "stg_orders" not in {i.consumer for i in impacts}


def test_the_team_reading_someone_elses_source_is_its_consumer() -> None:
    snap = _sourced()
    snap.assets["raw.orders"] = replace(snap.assets["raw.orders"], meta={"owner": "finance"})
    acks = walk_impact([removed("raw.orders", "amount")], snap, snap, CONFIG).required
    assert [a.team for a in acks] == ["data", "growth", "ops"]


def test_a_moved_relation_asks_readers_of_the_relation_but_not_teams_whose_models_ref_it() -> None:
    snap = shop()
    snap.assets["growth_kpis"] = Asset(
        "growth_kpis", "model", columns=cols("mrr"), depends_on=("fct_revenue",), meta={"owner": "ops"},
    )
    snap.edges.append(Edge("fct_revenue", "revenue", "growth_kpis", "mrr"))
    moved = Change("ASSET_RENAMED", "breaking", "fct_revenue", before="fct_revenue", after="marts.revenue")
    found = walk_impact([moved], snap, snap, CONFIG)
    impacts, acks = found.impacts, found.required
    assert [a.team for a in acks] == ["finance", "growth"]
    assert {i.consumer_type for i in impacts} == {"exposure"}


def _rename_int_orders(head: Snapshot) -> None:
    """The PR renames int_orders to orders_enriched (same columns, same inputs)."""
    head.assets["orders_enriched"] = replace(head.assets.pop("int_orders"), fqn="orders_enriched")
    head.edges = [
        replace(e, upstream="orders_enriched") if e.upstream == "int_orders"
        else replace(e, downstream="orders_enriched") if e.downstream == "int_orders" else e
        for e in head.edges
    ]


def test_a_renamed_model_whose_only_reader_the_same_pr_points_at_the_new_name_needs_no_ack() -> None:
    base = shop()
    head = shop()
    _rename_int_orders(head)
    head.assets["fct_revenue"] = replace(
        head.assets["fct_revenue"], sql="select * from orders_enriched", depends_on=("orders_enriched",)
    )
    change = Change("ASSET_RENAMED", "breaking", "int_orders", before="int_orders", after="orders_enriched")
    found = walk_impact([change], base, head, CONFIG)
    impacts, acks = found.impacts, found.required
    assert acks == ()
    assert impacts == ()


def test_a_renamed_model_whose_reader_was_rewritten_but_still_refs_the_old_name_still_needs_acks() -> None:
    base = shop()
    head = shop()
    _rename_int_orders(head)
    head.assets["fct_revenue"] = replace(head.assets["fct_revenue"], sql="select 1 from int_orders")
    change = Change("ASSET_RENAMED", "breaking", "int_orders", before="int_orders", after="orders_enriched")
    acks = walk_impact([change], base, head, CONFIG).required
    assert [a.team for a in acks] == ["finance", "growth"]


def test_a_removed_model_whose_reader_the_same_pr_also_removed_needs_no_ack() -> None:
    base = shop()
    head = shop()
    head.assets.pop("int_orders")
    head.assets.pop("fct_revenue")
    head.exposures = {}
    change = Change("ASSET_REMOVED", "breaking", "int_orders", before="int_orders")
    acks = walk_impact([change], base, head, CONFIG).required
    assert acks == ()


def test_a_column_read_only_by_a_reader_the_same_pr_removed_needs_no_ack() -> None:
    base = shop()
    head = shop()
    head.assets.pop("fct_revenue")
    head.exposures = {}
    head.edges = [e for e in head.edges if e.downstream != "fct_revenue"]
    acks = walk_impact([removed("int_orders", "plan_code")], base, head, CONFIG).required
    assert acks == ()


def test_a_renamed_column_whose_reader_the_same_pr_switched_to_the_new_name_needs_no_ack() -> None:
    base = shop()
    head = shop()
    head.assets["int_orders"] = replace(head.assets["int_orders"], columns=cols("id", "amount", "plan", "region"))
    head.assets["fct_revenue"] = replace(head.assets["fct_revenue"], sql="select plan as plan_code, ...")
    head.edges = [
        replace(e, upstream_column="plan") if e.upstream == "int_orders" and e.upstream_column == "plan_code"
        else replace(e, downstream_column="plan") if e.downstream == "int_orders" and e.downstream_column == "plan_code"
        else e
        for e in head.edges
    ]
    change = Change("COLUMN_RENAMED", "breaking", "int_orders", "plan_code", before="plan_code", after="plan")
    acks = walk_impact([change], base, head, CONFIG).required
    assert acks == ()
    acks = walk_impact([change], base, replace(base), CONFIG).required
    assert [a.team for a in acks] == ["growth"], "an untouched reader of the old name still breaks"


def test_an_exposure_the_same_pr_points_at_the_renamed_model_needs_no_ack() -> None:
    base = shop()
    base.exposures["orders_board"] = Exposure("orders_board", depends_on=("int_orders",), owner="ops")
    head = shop()
    _rename_int_orders(head)
    head.assets["fct_revenue"] = replace(
        head.assets["fct_revenue"], sql="select * from orders_enriched", depends_on=("orders_enriched",)
    )
    head.exposures["orders_board"] = Exposure("orders_board", depends_on=("orders_enriched",), owner="ops")
    change = Change("ASSET_RENAMED", "breaking", "int_orders", before="int_orders", after="orders_enriched")
    acks = walk_impact([change], base, head, CONFIG).required
    assert acks == ()
    head.exposures["orders_board"] = base.exposures["orders_board"]
    acks = walk_impact([change], base, head, CONFIG).required
    assert [a.team for a in acks] == ["ops"], "an exposure left on the old name still breaks"


def test_a_reader_listing_its_columns_below_a_select_star_model_is_judged_by_those_columns() -> None:
    snap = shop()
    snap.assets["stg_all"] = Asset(
        "stg_all", "model", "models/stg_all.sql", depends_on=("stg_orders",), columns_known=False,
        meta={"tessera": {"owner": "data"}},
    )
    snap.edges.append(Edge("stg_orders", None, "stg_all", None, "star"))
    snap.assets["ops_kpis"] = Asset(
        "ops_kpis", "model", columns=cols("id"), depends_on=("stg_all",), meta={"owner": "ops"}
    )
    snap.edges.append(Edge("stg_all", "id", "ops_kpis", "id"))
    snap.assets["finance_kpis"] = Asset(
        "finance_kpis", "model", columns=cols("plan"), depends_on=("stg_all",), meta={"owner": "finance"}
    )
    snap.edges.append(Edge("stg_all", "plan", "finance_kpis", "plan"))
    found = walk_impact([removed("stg_orders", "plan")], snap, snap, CONFIG)
    impacts, acks = found.impacts, found.required
    assert [a.team for a in acks] == ["finance", "growth"]
    assert "ops_kpis" not in {i.consumer for i in impacts}
    snap.assets["ops_wide"] = Asset("ops_wide", "model", depends_on=("stg_all",), columns_known=False,
                                    meta={"owner": "ops"})
    acks = walk_impact([removed("stg_orders", "plan")], snap, snap, CONFIG).required
    assert [a.team for a in acks] == ["finance", "growth", "ops"], "unknown lineage still reads everything"
