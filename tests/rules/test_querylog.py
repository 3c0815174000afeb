"""Reading a query's text for the columns it reads, and observed readers in the analysis."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.analyze import analyze
from rules.config import parse_config
from rules.model import Coverage, Observation, Registration
from rules.querylog import QueryNotParsed, ReadCache, TableRead, query_shape, table_reads
from rules.sources import DictSource

SCHEMAS = {"shop.orders": ["id", "customer_id", "amount", "status"], "shop.customers": ["id", "email", "region"]}


def reads(sql: str, **kwargs: object) -> dict[str, tuple[bool, set[str]]]:
    found = table_reads(sql, dialect=str(kwargs.pop("dialect", "postgres")), schemas=SCHEMAS, **kwargs)  # type: ignore[arg-type]
    return {r.relation: (r.every_column, set(r.columns)) for r in found}


def test_columns_read_through_a_cte_are_the_base_tables_columns() -> None:
    sql = "with paid as (select customer_id, amount from shop.orders where status = 'paid') select * from paid"
    assert reads(sql) == {"shop.orders": (False, {"customer_id", "amount", "status"})}


def test_select_star_expands_from_known_schemas_and_reads_every_column_when_unknown() -> None:
    assert reads("select * from shop.customers") == {"shop.customers": (False, {"id", "email", "region"})}
    assert reads("select * from shop.refunds") == {"shop.refunds": (True, set())}


def test_joins_attribute_unqualified_columns_by_known_schema() -> None:
    sql = "select email, amount from shop.orders o join shop.customers c on c.id = o.customer_id"
    assert reads(sql) == {
        "shop.orders": (False, {"amount", "customer_id"}),
        "shop.customers": (False, {"email", "id"}),
    }


def test_a_select_alias_reused_in_qualify_is_not_a_column_but_an_alias_named_like_its_column_is() -> None:
    sql = ("select region, revenue, row_number() over (partition by region order by revenue desc) as rnk"
           " from analytics.marts.fct_revenue qualify rnk <= 10")
    assert reads(sql, dialect="snowflake") == {"analytics.marts.fct_revenue": (False, {"region", "revenue"})}
    sql = "select plan_code, sum(revenue) as revenue from marts.fct_revenue group by plan_code"
    assert reads(sql, dialect="bigquery") == {"marts.fct_revenue": (False, {"plan_code", "revenue"})}


def test_an_in_subquerys_columns_belong_to_its_own_table() -> None:
    sql = ("select plan_code from marts.fct_revenue where customer_id in"
           " (select customer_id from marts.dim_customers where segment = 'ENT')")
    assert reads(sql, dialect="snowflake") == {
        "marts.fct_revenue": (False, {"plan_code", "customer_id"}),
        "marts.dim_customers": (False, {"customer_id", "segment"}),
    }


def test_count_star_reads_the_table_but_no_column() -> None:
    assert reads("select count(*) from shop.orders") == {"shop.orders": (False, set())}


def test_unqualified_tables_take_the_session_schema_and_database() -> None:
    found = reads("select amount from orders", default_schema="shop", database="ANALYTICS")
    assert found == {"analytics.shop.orders": (False, {"amount"})}


def test_quoted_names_and_comments_are_read_like_the_warehouse_does() -> None:
    sql = '-- daily report\nSELECT "AMOUNT" /* money */ FROM "ANALYTICS"."SHOP"."ORDERS" WHERE "STATUS" = \'x\''
    assert reads(sql, dialect="snowflake") == {"analytics.shop.orders": (False, {"amount", "status"})}


def test_an_insert_reads_its_select_not_its_target() -> None:
    sql = "insert into shop.daily select id, amount from shop.orders"
    assert reads(sql) == {"shop.orders": (False, {"id", "amount"})}


def test_unparseable_text_raises_a_clear_error() -> None:
    with pytest.raises(QueryNotParsed):
        table_reads("select from where (", dialect="postgres")


def test_the_cache_answers_a_repeated_shape_once_and_remembers_failures() -> None:
    cache = ReadCache(dialect="postgres", schemas=SCHEMAS, size=2)
    first = cache.reads("select amount from shop.orders where id = 1")
    again = cache.reads("select amount  from shop.orders where id = 42")
    assert first == again == (TableRead("shop.orders", frozenset({"amount", "id"})),)
    assert (cache.hits, cache.misses) == (1, 1)
    for _ in range(2):
        with pytest.raises(QueryNotParsed):
            cache.reads("select from where (")
    assert cache.misses == 2
    assert query_shape("select 'a''b', 12.5 from t") == "select ?, ? from t"


# --- observed readers in the analysis --------------------------------------------------------

TODAY = dt.date(2026, 12, 1)
CONFIG = """
teams:
  data: {github: acme/data}
  finance: {github: acme/finance, names: [Finance], warehouse_roles: [LOOKER_FINANCE]}
  growth: {github: acme/growth, warehouse_users: [ana@acme.com]}
discovery: {stale_after: 30d}
"""
BASE = {
    ".tessera.yml": CONFIG,
    "CODEOWNERS": "* @acme/data\n",
    "db/orders.sql": "create table shop.orders (id int, amount int, plan_code text, status text);",
}
HEAD = {**BASE, "db/orders.sql": "create table shop.orders (id int, amount int, status text);"}


def observed(reader: str, kind: str, columns: tuple[str, ...], *, last_seen: str, team: str = "",
             queries: int = 14, asset: str = "analytics.shop.orders") -> Registration:
    return Registration(
        team=team, asset=asset, columns=columns, source="observed:snowflake",
        observed=Observation(reader_kind=kind, reader=reader, queries=queries, last_seen=last_seen),
    )


def run(registrations: list[Registration], coverage: tuple[Coverage, ...] = ()):  # type: ignore[no-untyped-def]
    return analyze(
        DictSource(BASE), DictSource(HEAD), base_rev="b", head_rev="h", config=parse_config(CONFIG),
        changed_paths=["db/orders.sql"], registrations=registrations, today=TODAY, coverage=coverage,
    )


def test_dropping_a_column_an_observed_role_reads_asks_exactly_its_mapped_team() -> None:
    result = run([
        observed("LOOKER_FINANCE", "role", ("plan_code", "amount"), last_seen="2026-11-30"),
        observed("ana@acme.com", "user", ("amount",), last_seen="2026-11-30"),
    ])
    assert [a.team for a in result.required_acks] == ["finance"]
    assert result.required_acks[0].reasons == (
        "COLUMN_REMOVED on shop.orders.plan_code: read by 14 queries from role LOOKER_FINANCE"
        " in the last 30 days (Finance)",
    )
    rows = [(i.consumer, i.consumer_type, i.team) for i in result.impacts]
    assert rows == [("role LOOKER_FINANCE", "query", "finance")]


def test_a_reader_not_seen_for_stale_after_is_listed_but_not_required() -> None:
    logs = (Coverage("jsonl", last_run="2026-11-30"),)
    result = run([observed("LOOKER_FINANCE", "role", ("plan_code",), last_seen="2026-10-01")], logs)
    assert result.status == "clear"
    assert [u.sentence for u in result.unread] == ["no reads of shop.orders.plan_code in the last 30 days (jsonl query logs)"]
    assert [(i.consumer, i.team) for i in result.impacts] == [
        ("role LOOKER_FINANCE (not seen since 2026-10-01; not required)", "finance")
    ]
    assert not any("LOOKER_FINANCE" in e.message for e in result.errors)


def test_an_unmapped_reader_is_shown_and_said_to_be_unowned() -> None:
    result = run([observed("ETL_ADHOC", "role", ("plan_code",), last_seen="2026-11-30")])
    assert result.status == "clear"
    assert [(i.consumer, i.team) for i in result.impacts] == [("role ETL_ADHOC", None)]
    assert any(
        "role ETL_ADHOC reads shop.orders" in e.message and "teams.<team>.warehouse_roles" in e.message
        for e in result.errors
    )


def test_a_team_from_the_stores_mapping_is_used_when_the_config_says_nothing() -> None:
    result = run([observed("ETL_ADHOC", "role", ("plan_code",), last_seen="2026-11-30", team="growth")])
    assert [(a.team, a.github_team) for a in result.required_acks] == [("growth", "acme/growth")]


def test_a_reader_that_only_counted_rows_is_not_reached_by_a_column_removal() -> None:
    assert run([observed("LOOKER_FINANCE", "role", (), last_seen="2026-11-30")]).impacts == ()


SQL_BITS = st.sampled_from([
    "select", "*", "from", "shop.orders", "o", "join", "shop.customers", "c", "on", "o.id", "=", "c.id", "where",
    "with", "x", "as", "(", ")", ",", "amount", "'a'", "1", "group by", "union", "insert into", "t", "--", "/*",
    "*/", '"Q"', "`b`", ";", "values", "update", "set", "qualify", "over", "partition by", "$1", "{{x}}", "${TABLE}",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(SQL_BITS, max_size=25).map(" ".join) | st.text(max_size=80),
       st.sampled_from(["postgres", "snowflake", "bigquery", "redshift", "databricks"]))
def test_any_text_is_read_or_refused_with_query_not_parsed_never_another_error(sql: str, dialect: str) -> None:
    try:
        found = table_reads(sql, dialect=dialect, schemas=SCHEMAS, default_schema="public")
    except QueryNotParsed:
        return
    assert all(r.relation and r.relation == r.relation.lower() for r in found)


def test_a_reader_name_from_a_bi_tool_cannot_mention_open_code_or_tags_in_the_comment() -> None:
    hostile = "Revenue @acme/finance `x` <img src=y> | cell\n## heading" + "x" * 300
    result = run([Registration(
        team="finance", asset="analytics.shop.orders", columns=("plan_code",), source="observed:metabase",
        observed=Observation(reader_kind="bi", reader=hostile, last_seen="2026-11-30", folder="@acme/all"),
    )])
    texts = [i.consumer for i in result.impacts] + [r for a in result.required_acks for r in a.reasons]
    assert texts and all("@acme" not in t and "`" not in t and "<img" not in t and "\n" not in t for t in texts)
    assert all(len(i.consumer) < 200 for i in result.impacts)


def test_a_stale_reader_without_fresh_query_logs_leaves_the_readers_unknown_and_holds_the_change() -> None:
    result = run([observed("LOOKER_FINANCE", "role", ("plan_code",), last_seen="2026-10-01")])
    assert [(a.team, a.held_for) for a in result.required_acks] == [("maintainers", ("unknown_readers",))]
    assert result.unread == ()
