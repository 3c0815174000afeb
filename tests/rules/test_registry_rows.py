"""What a repository's SQL says it reads of other repositories' assets (:mod:`rules.registry_rows`)."""

from __future__ import annotations

from rules.registry_rows import query_reads


def test_a_query_reads_the_qualified_tables_and_their_columns() -> None:
    reads = query_reads("select o.plan_code, count(*) from analytics.orders o join analytics.plans p on p.code = o.plan_code", "postgres")
    assert reads == {"analytics.orders": {"plan_code"}, "analytics.plans": {"code"}}


def test_select_star_and_unqualified_columns_over_several_tables_read_everything() -> None:
    assert query_reads("select * from analytics.orders", "postgres") == {"analytics.orders": None}
    assert query_reads("select id from analytics.a, analytics.b", "postgres") == {"analytics.a": None, "analytics.b": None}


def test_ctes_ddl_and_unparseable_text_register_nothing() -> None:
    assert query_reads("with recent as (select id from analytics.orders) select id from recent", "postgres") == {
        "analytics.orders": {"id"}}
    assert query_reads("create table analytics.x (id int)", "postgres") == {}
    assert query_reads("select from where ((", "postgres") == {}
