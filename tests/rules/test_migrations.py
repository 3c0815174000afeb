"""Migration suggestions: concrete steps, a date, and SQL that fits the change."""

from __future__ import annotations

import datetime
from dataclasses import replace

from rules.analyze import analyze
from rules.config import parse_config
from rules.diff import diff_snapshots
from rules.migrations import suggest
from rules.model import Asset, Column, Config, Snapshot
from rules.sources import DictSource

TODAY = datetime.date(2026, 11, 25)


def snap(*assets: Asset) -> Snapshot:
    return Snapshot(assets={a.fqn: a for a in assets})


def run(base: Snapshot, head: Snapshot, **kw: object):  # type: ignore[no-untyped-def]
    changes = diff_snapshots(base, head, Config())
    return suggest(changes, base, head, today=TODAY, **kw)  # type: ignore[arg-type]


def fct(*cols: Column, **kw: object) -> Asset:
    return Asset("fct_revenue", "model", path="models/fct_revenue.sql", sql="select 1", name="fct_revenue",
                 dialect="snowflake", columns=cols, **kw)  # type: ignore[arg-type]


def pg_table(fqn: str, *cols: Column) -> Asset:
    return Asset(fqn, "table", path="migrations/001.sql", dialect="postgres", columns=cols)


AMOUNT = Column("amount", "DECIMAL(12, 2)", position=0, expression="o.amount")
PLAN = Column("plan_code", "VARCHAR", position=1, expression="p.code")


def test_removed_model_column_is_kept_for_a_window_ending_on_a_named_date() -> None:
    (m,) = run(snap(fct(AMOUNT, PLAN)), snap(fct(AMOUNT)))
    assert (m.rule, m.asset, m.column) == ("COLUMN_REMOVED", "fct_revenue", "plan_code")
    assert "2026-12-25" in m.steps
    assert m.sql == "p.code as plan_code  -- deprecated: remove after 2026-12-25"


def test_window_days_moves_the_date() -> None:
    (m,) = run(snap(fct(AMOUNT, PLAN)), snap(fct(AMOUNT)), window_days=7)
    assert "2026-12-02" in m.steps


def test_removed_table_column_is_marked_deprecated_in_the_dialects_syntax() -> None:
    (m,) = run(snap(pg_table("public.accounts", AMOUNT, PLAN)), snap(pg_table("public.accounts", AMOUNT)))
    assert m.sql is not None
    assert m.sql.startswith("COMMENT ON COLUMN public.accounts.plan_code IS 'deprecated: will be dropped after 2026-12-25';")


def test_renamed_column_ships_the_new_name_beside_the_old_one() -> None:
    head = fct(AMOUNT, Column("plan", "VARCHAR", position=1, expression="p.code"))
    (m,) = run(snap(fct(AMOUNT, PLAN)), snap(head))
    assert m.rule == "COLUMN_RENAMED"
    assert "p.code as plan,\n    p.code as plan_code  -- old name" in (m.sql or "")


def test_narrowed_type_adds_a_v2_column_and_keeps_the_old_type() -> None:
    head = fct(Column("amount", "INT", position=0, expression="o.amount"))
    (m,) = run(snap(fct(AMOUNT)), snap(head))
    assert m.rule == "COLUMN_TYPE_NARROWED"
    assert "o.amount as amount,  -- old type" in (m.sql or "")
    assert "o.amount as amount_v2" in (m.sql or "")


def test_incompatible_type_keeps_the_old_logic_for_the_old_column() -> None:
    base = fct(Column("signed_up_on", "DATE", position=0, expression="a.created_at::date"))
    head = fct(Column("signed_up_on", "VARCHAR", position=0, expression="to_char(a.created_at)"))
    (m, _) = run(snap(replace(base, contract_enforced=True)), snap(replace(head, contract_enforced=True)))
    assert m.rule == "COLUMN_TYPE_CHANGED"
    assert "a.created_at::date as signed_up_on," in (m.sql or "")
    assert "to_char(a.created_at) as signed_up_on_v2" in (m.sql or "")


def test_removed_unique_key_on_a_table_is_re_added_in_sql() -> None:
    base = pg_table("public.accounts", Column("email", "TEXT", constraints=("unique",)))
    head = pg_table("public.accounts", Column("email", "TEXT"))
    (m,) = run(snap(base), snap(head))
    assert (m.rule, m.sql) == ("CONSTRAINT_REMOVED", "ALTER TABLE public.accounts ADD UNIQUE (email);")


def test_renamed_table_column_is_added_beside_the_old_one() -> None:
    base = pg_table("public.accounts", PLAN)
    head = pg_table("public.accounts", Column("plan", "VARCHAR", meta={"renamed_from": "plan_code"}))
    (m,) = run(snap(base), snap(head))
    assert m.sql is not None and m.sql.startswith(
        "ALTER TABLE public.accounts ADD COLUMN plan varchar;\nUPDATE public.accounts SET plan = plan_code;"
    )


def test_removed_table_is_marked_deprecated_or_kept_as_a_view_under_the_old_name() -> None:
    (m,) = run(snap(pg_table("public.accounts", AMOUNT)), snap())
    assert m.rule == "ASSET_REMOVED"
    assert "COMMENT ON TABLE public.accounts IS 'deprecated: will be dropped after 2026-12-25';" in (m.sql or "")
    assert "CREATE VIEW public.accounts AS SELECT amount FROM <replacement>;" in (m.sql or "")


def test_dropped_view_is_kept_with_its_old_definition() -> None:
    view = Asset("public.big", "view", dialect="postgres", sql="SELECT id FROM public.orders WHERE amount > 100",
                 columns=(Column("id", "INT"),))
    (m,) = run(snap(view), snap())
    assert m.sql == (
        "CREATE OR REPLACE VIEW public.big AS\nSELECT id FROM public.orders WHERE amount > 100;\n"
        "-- after 2026-12-25: DROP VIEW public.big;"
    )


def test_renamed_table_leaves_a_view_reading_the_new_one() -> None:
    head = Asset("public.customers", "table", dialect="postgres", columns=(AMOUNT,), meta={"renamed_from": "accounts"})
    (m,) = run(snap(pg_table("public.accounts", AMOUNT)), snap(head))
    assert m.sql == "CREATE VIEW public.accounts AS\nSELECT * FROM public.customers;"


def test_contracted_model_also_gets_a_new_version_with_a_deprecation_date() -> None:
    migrations = run(snap(fct(AMOUNT, PLAN, contract_enforced=True)), snap(fct(AMOUNT, contract_enforced=True)))
    assert [m.rule for m in migrations] == ["COLUMN_REMOVED", "COLUMN_REMOVED"]
    version = migrations[1]
    assert "latest_version: 2" in (version.sql or "")
    assert "deprecation_date: 2026-12-25" in (version.sql or "")
    assert "exclude: [plan_code]" in (version.sql or "")


def test_nothing_is_suggested_for_changes_that_break_no_one() -> None:
    head = fct(AMOUNT, PLAN, Column("note", "VARCHAR", position=2), description="new words")
    assert run(snap(fct(AMOUNT, PLAN)), snap(head)) == []


def test_changed_grain_of_a_dbt_model_is_shipped_as_a_new_version() -> None:
    base = fct(AMOUNT, unique_key=("id",))
    head = fct(AMOUNT, unique_key=("id", "day"))
    (m,) = run(snap(base), snap(head))
    assert m.rule == "GRAIN_CHANGED"
    assert "version 2 of `fct_revenue`" in m.steps and "`models/fct_revenue_v1.sql`" in m.steps
    assert m.sql is not None and "latest_version: 2" in m.sql and "deprecation_date: 2026-12-25" in m.sql


def test_removed_column_of_an_uncontracted_model_also_offers_a_new_version() -> None:
    (m,) = run(snap(fct(AMOUNT, PLAN)), snap(fct(AMOUNT)))
    assert "Or ship `fct_revenue` v2 without it and give v1 a `deprecation_date` of 2026-12-25." in m.steps


def test_removed_view_column_comes_with_the_view_that_keeps_it() -> None:
    from rules.sql_schema import build_sql_snapshot

    table = "create table public.orders (id integer, plan_code text, amount numeric(12,2));\n"
    base = build_sql_snapshot(
        [("views/v.sql", table + "create view public.plans as select id, upper(plan_code) as plan_code from public.orders where amount > 0;")],
        dialect="postgres",
    )
    head = build_sql_snapshot(
        [("views/v.sql", table + "create view public.plans as select id from public.orders where amount > 0;")],
        dialect="postgres",
    )
    (m,) = suggest(diff_snapshots(base, head, Config()), base, head, today=TODAY)
    assert m.sql is not None
    assert m.sql.startswith("-- keep plan_code until 2026-12-25\nCREATE OR REPLACE VIEW public.plans AS\nSELECT")
    assert "UPPER(plan_code) AS plan_code" in m.sql and "WHERE" in m.sql


def test_renamed_view_column_comes_with_the_view_that_selects_both_names() -> None:
    from rules.sql_schema import build_sql_snapshot

    table = "create table public.orders (id integer, plan_code text);\n"
    base = build_sql_snapshot([("v.sql", table + "create view public.plans as select id, plan_code from public.orders;")],
                              dialect="postgres")
    head = build_sql_snapshot([("v.sql", table + "create view public.plans as select id, plan_code as plan from public.orders;")],
                              dialect="postgres")
    (m,) = suggest(diff_snapshots(base, head, Config()), base, head, today=TODAY)
    assert m.rule == "COLUMN_RENAMED"
    assert m.sql is not None and "plan_code AS plan,\n  plan_code AS plan_code" in m.sql


def test_a_change_whose_assets_are_missing_still_gets_a_suggestion() -> None:
    from rules.model import Change

    changes = [Change("COLUMN_TYPE_NARROWED", "breaking", "ghost", "a", before="BIGINT", after="INT"),
               Change("GRAIN_CHANGED", "breaking", "ghost2")]
    migrations = suggest(changes, Snapshot(), Snapshot(), today=TODAY)
    assert [(m.rule, m.asset) for m in migrations] == [("COLUMN_TYPE_NARROWED", "ghost"), ("GRAIN_CHANGED", "ghost2")]
    assert all("2026-12-25" in m.steps for m in migrations)


def test_a_select_star_model_that_lost_a_column_through_its_input_gets_no_suggestion_of_its_own() -> None:
    from rules.model import Edge

    stg_before = Asset("stg", "model", sql="select 1 as a, 2 as b", name="stg", dialect="duckdb", checksum="s1",
                       columns=(Column("a", "INT", position=0), Column("b", "INT", position=1)))
    stg_after = replace(stg_before, sql="select 1 as a", checksum="s2", columns=(Column("a", "INT"),))
    wide_before = Asset("wide", "model", sql="select * from stg", name="wide", dialect="duckdb", checksum="w",
                        columns=stg_before.columns)
    wide_after = replace(wide_before, columns=stg_after.columns)
    base, head = snap(stg_before, wide_before), snap(stg_after, wide_after)
    base.edges += [Edge("stg", "a", "wide", "a"), Edge("stg", "b", "wide", "b")]
    changes = diff_snapshots(base, head, Config())
    assert [(c.rule, c.asset) for c in changes] == [("COLUMN_REMOVED", "stg"), ("COLUMN_REMOVED", "wide")]
    assert [(m.rule, m.asset, m.column) for m in suggest(changes, base, head, today=TODAY)] == [
        ("COLUMN_REMOVED", "stg", "b")
    ]


def test_a_not_null_column_without_default_gets_the_add_backfill_tighten_plan_though_it_is_review() -> None:
    base = snap(pg_table("public.accounts", Column("id", "INT", position=0)))
    head = snap(pg_table("public.accounts", Column("id", "INT", position=0),
                         Column("tier", "TEXT", nullable=False, position=1)))
    (m,) = run(base, head)
    assert (m.rule, m.column) == ("COLUMN_ADDED_REQUIRED", "tier")
    assert "ALTER TABLE public.accounts ADD COLUMN tier text;" in (m.sql or "")


def test_a_column_dropped_and_added_again_is_changed_in_place_instead() -> None:
    base = snap(pg_table("public.accounts", Column("id", "INT", position=0), Column("seats", "INT", position=1)))
    head = snap(replace(
        pg_table("public.accounts", Column("id", "INT", position=0), Column("seats", "BIGINT", position=1)),
        meta={"dropped_columns": {"seats": ["migrations/002.sql", 1]}},
    ))
    (m,) = [m for m in run(base, head) if m.rule == "COLUMN_REMOVED"]
    assert "that empties it for every existing row" in m.steps
    assert m.sql == "ALTER TABLE public.accounts ALTER COLUMN seats TYPE bigint USING seats::bigint;"


def test_a_model_moved_to_a_new_alias_keeps_a_view_at_its_old_relation() -> None:
    base = fct(AMOUNT, access="public", relation="analytics.fct_revenue")
    head = replace(base, relation="analytics.revenue")
    (m,) = run(snap(base), snap(head))
    assert m.rule == "ASSET_RENAMED"
    assert "CREATE OR REPLACE VIEW analytics.fct_revenue AS\nSELECT * FROM analytics.revenue;" in m.sql
    assert "ref(" not in m.sql


def test_a_removed_grouped_column_is_suggested_as_the_author_wrote_it_and_added_to_the_group_by() -> None:
    base = {
        "dbt_project.yml": "name: p\nversion: '1'\nprofile: p\n",
        "models/stg_orders.sql": "select 1 as order_id, 2 as customer_id, 'x' as plan_code, 3.0 as amount\n",
        "models/fct.sql": "select o.customer_id, o.plan_code, sum(o.amount) as revenue\n"
        "from {{ ref('stg_orders') }} as o\ngroup by o.customer_id, o.plan_code\n",
    }
    head = {**base, "models/fct.sql": "select o.customer_id, sum(o.amount) as revenue\n"
            "from {{ ref('stg_orders') }} as o\ngroup by o.customer_id\n"}
    result = analyze(DictSource(base), DictSource(head), base_rev="b", head_rev="h", config=parse_config(None),
                     changed_paths=["models/fct.sql"], today=datetime.date(2026, 12, 5))
    [m] = [m for m in result.migrations if m.rule == "COLUMN_REMOVED"]
    assert m.sql.splitlines() == [
        "o.plan_code as plan_code  -- deprecated: remove after 2027-01-04",
        "-- and in the GROUP BY: o.plan_code",
    ]
    assert "add `o.plan_code` to its GROUP BY too" in m.steps
