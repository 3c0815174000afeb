"""Column inference and lineage of one query: names, types, lineage, usage edges, bad SQL."""

from __future__ import annotations

import pytest
from sqlglot import exp

from rules.infer import QueryInfo, infer_query
from rules.model import UNKNOWN, Edge

ORDERS = {"id": "int", "customer_id": "int", "amount": "decimal(10,2)", "status": "text"}
CUSTOMERS = {"id": "int", "name": "text", "plan_code": "varchar(10)"}
SCHEMA = {"raw.orders": ORDERS, "raw.customers": CUSTOMERS}


def _edges(info: QueryInfo, usage: str | None = None) -> set[tuple[str, str | None, str | None]]:
    return {
        (e.upstream, e.upstream_column, e.downstream_column)
        for e in info.edges
        if usage is None or e.usage == usage
    }


def test_output_columns_have_names_types_and_positions_in_select_order() -> None:
    info = infer_query(
        "select o.id as order_id, c.name, o.amount * 2 as doubled, count(*) over () as n "
        "from raw.orders o join raw.customers c on c.id = o.customer_id",
        dialect="duckdb",
        schema=SCHEMA,
        fqn="mart.orders",
    )
    assert info.columns_known
    assert [(c.name, c.type, c.position) for c in info.columns] == [
        ("order_id", "INT", 1),
        ("name", "TEXT", 2),
        ("doubled", "DECIMAL(10, 2)", 3),
        ("n", "BIGINT", 4),
    ]
    assert info.depends_on == ("raw.orders", "raw.customers")


def test_lineage_follows_columns_through_ctes_to_the_parent_columns() -> None:
    info = infer_query(
        """
        with paid as (select id, customer_id, amount from raw.orders where status = 'paid'),
             totals as (select customer_id, sum(amount) as revenue from paid group by customer_id)
        select c.plan_code, t.revenue from totals t join raw.customers c on c.id = t.customer_id
        """,
        dialect="postgres",
        schema=SCHEMA,
        fqn="mart.revenue",
    )
    assert _edges(info, "select") == {
        ("raw.customers", "plan_code", "plan_code"),
        ("raw.orders", "amount", "revenue"),
    }
    assert ("raw.orders", "status", None) in _edges(info, "filter")
    assert ("raw.orders", "customer_id", None) in _edges(info, "group")
    assert _edges(info, "join") == {("raw.customers", "id", None), ("raw.orders", "customer_id", None)}
    # a column only passed between CTEs but never output feeds no output column
    assert not any(e.upstream_column == "id" and e.downstream_column for e in info.edges)


def test_having_and_qualify_columns_are_filter_edges() -> None:
    info = infer_query(
        "select customer_id, sum(amount) as total from raw.orders group by customer_id "
        "having max(status) = 'x' qualify row_number() over (order by customer_id) = 1",
        dialect="snowflake",
        schema=SCHEMA,
        fqn="m",
    )
    assert ("raw.orders", "status", None) in _edges(info, "filter")


def test_star_over_known_parent_expands_to_its_columns() -> None:
    info = infer_query("select * from raw.customers", dialect="duckdb", schema=SCHEMA, fqn="v")
    assert info.columns_known
    assert [c.name for c in info.columns] == ["id", "name", "plan_code"]
    assert ("raw.customers", "plan_code", "plan_code") in _edges(info, "select")


def test_star_over_unknown_parent_reads_it_whole_and_columns_are_unknown() -> None:
    info = infer_query("select * from raw.events", dialect="postgres", schema=SCHEMA, fqn="v")
    assert not info.columns_known
    assert info.edges == (Edge("raw.events", None, "v", None, "star"),)
    assert info.depends_on == ("raw.events",)


def test_named_column_of_unknown_parent_has_unknown_type_but_known_lineage() -> None:
    info = infer_query("select e.kind from raw.events e", dialect="postgres", schema={}, fqn="v")
    assert [(c.name, c.type) for c in info.columns] == [("kind", UNKNOWN)]
    assert _edges(info) == {("raw.events", "kind", "kind")}


def test_union_column_takes_the_widest_branch_type_and_reads_every_branch() -> None:
    info = infer_query(
        "select id from raw.orders union all select cast(id as bigint) from raw.customers",
        dialect="duckdb",
        schema=SCHEMA,
        fqn="u",
    )
    assert [(c.name, c.type) for c in info.columns] == [("id", "BIGINT")]
    assert _edges(info, "select") == {("raw.orders", "id", "id"), ("raw.customers", "id", "id")}


def test_round_of_a_decimal_stays_decimal() -> None:
    info = infer_query(
        "select round(amount, 1) as r from raw.orders", dialect="duckdb", schema=SCHEMA, fqn="m"
    )
    assert info.columns[0].type.startswith("DECIMAL")


def test_resolver_maps_rendered_relation_names_to_parent_fqns() -> None:
    def resolve(table: exp.Table) -> str | None:
        return table.name.removeprefix("__ref__") if table.name.startswith("__ref__") else None

    info = infer_query(
        "select id, name from __ref__stg_customers",
        dialect="snowflake",
        schema={"stg_customers": {"id": "number", "name": "varchar"}},
        fqn="dim_customers",
        resolve=resolve,
    )
    assert info.depends_on == ("stg_customers",)
    assert [(c.name, c.type) for c in info.columns] == [("id", "DECIMAL(38, 0)"), ("name", "VARCHAR")]
    assert _edges(info) == {("stg_customers", "id", "id"), ("stg_customers", "name", "name")}


def test_snowflake_upper_cases_nothing_in_names_or_expressions() -> None:
    info = infer_query(
        "select O.ID as Order_Id from RAW.ORDERS o", dialect="snowflake", schema=SCHEMA, fqn="m"
    )
    assert [c.name for c in info.columns] == ["order_id"]
    assert info.columns[0].expression == "id"
    assert _edges(info) == {("raw.orders", "id", "order_id")}


def test_expression_ignores_aliases_and_formatting() -> None:
    a = infer_query(
        "select o.amount + 1 as x from raw.orders o", dialect="postgres", schema=SCHEMA, fqn="m"
    )
    b = infer_query(
        "SELECT   ord.AMOUNT+1   AS y -- renamed\nFROM raw.orders AS ord",
        dialect="postgres",
        schema=SCHEMA,
        fqn="m",
    )
    assert a.columns[0].expression == b.columns[0].expression


def test_ctas_and_trailing_semicolon_are_accepted() -> None:
    info = infer_query(
        "create table mart.t as select id from raw.orders;", dialect="postgres", schema=SCHEMA, fqn="mart.t"
    )
    assert [c.name for c in info.columns] == ["id"]


@pytest.mark.parametrize(
    "sql",
    ["selec foo frm", "", "select (", "VACUUM FULL", "select a from t where ((("],
)
def test_bad_sql_never_raises_and_says_why(sql: str) -> None:
    info = infer_query(sql, dialect="postgres", schema=SCHEMA, fqn="m")
    assert not info.columns_known
    assert info.problems and all(p for p in info.problems)


@pytest.mark.parametrize("dialect", ["postgres", "snowflake", "bigquery", "duckdb", "databricks", "redshift"])
def test_inference_works_in_every_supported_dialect(dialect: str) -> None:
    info = infer_query(
        "select customer_id, count(*) as n from raw.orders where status = 'x' group by customer_id",
        dialect=dialect,
        schema=SCHEMA,
        fqn="m",
    )
    assert info.columns_known, info.problems
    assert [c.name for c in info.columns] == ["customer_id", "n"]
    assert info.columns[1].type != UNKNOWN
    assert ("raw.orders", "status", None) in _edges(info, "filter")


def test_flatten_and_unnest_outputs_read_the_array_column_they_expand() -> None:
    schema = {"raw.orders": {"id": "int", "items": "int[]"}}
    for dialect, sql in (
        ("snowflake", "select o.id, f.value as item from raw.orders o, lateral flatten(input => o.items) f"),
        ("bigquery", "select o.id, item from raw.orders o, unnest(o.items) as item"),
        ("duckdb", "select id, unnest(items) as item from raw.orders"),
    ):
        info = infer_query(sql, dialect=dialect, schema=schema, fqn="m")
        assert ("raw.orders", "items", "item") in _edges(info, "select"), dialect


def test_join_using_columns_are_join_edges_from_both_sides() -> None:
    info = infer_query(
        "select o.amount, c.name from raw.orders o join raw.customers c using (id)",
        dialect="duckdb",
        schema=SCHEMA,
        fqn="m",
    )
    assert {("raw.orders", "id", None), ("raw.customers", "id", None)} <= _edges(info, "join")


def test_columns_used_in_subquery_filters_are_filter_edges() -> None:
    info = infer_query(
        "select id from raw.orders o where exists "
        "(select 1 from raw.customers c where c.id = o.customer_id and c.plan_code = 'pro')",
        dialect="postgres",
        schema=SCHEMA,
        fqn="m",
    )
    assert ("raw.customers", "plan_code", None) in _edges(info, "filter")
    assert ("raw.orders", "customer_id", None) in _edges(info, "filter")


def test_scalar_subquery_expression_names_real_tables() -> None:
    info = infer_query(
        "select id, (select count(*) from raw.customers c where c.id = o.customer_id) as n from raw.orders o",
        dialect="postgres",
        schema=SCHEMA,
        fqn="m",
    )
    expression = info.columns[1].expression or ""
    assert "raw.customers" in expression and "__tessera" not in expression
    assert info.columns[1].type == "BIGINT"


def test_group_by_all_columns_are_group_edges() -> None:
    info = infer_query(
        "select customer_id, status, sum(amount) as total from raw.orders group by all",
        dialect="snowflake",
        schema=SCHEMA,
        fqn="m",
    )
    assert _edges(info, "group") == {("raw.orders", "customer_id", None), ("raw.orders", "status", None)}


def test_unqualified_column_over_several_unknown_parents_reads_that_column_of_each() -> None:
    info = infer_query(
        "with e as (select * from raw.events) select kind, c.name from e join raw.customers c on c.id = e.cid",
        dialect="postgres",
        schema=SCHEMA,
        fqn="m",
    )
    assert ("raw.events", "kind", "kind") in _edges(info, "select")
    assert not any(e.upstream == "raw.customers" and e.upstream_column == "kind" for e in info.edges)


def test_import_cte_named_like_its_relation_still_reads_the_relation() -> None:
    # dbt's `with stg_orders as (select * from {{ ref('stg_orders') }})`, refs rendered as names
    schema = {"stg_orders": {"id": "int", "amount": "decimal(10,2)"}}
    info = infer_query(
        "with stg_orders as (select * from stg_orders) select id, amount from stg_orders",
        dialect="duckdb",
        schema=schema,
        fqn="fct",
    )
    assert info.depends_on == ("stg_orders",)
    assert [(c.name, c.type) for c in info.columns] == [("id", "INT"), ("amount", "DECIMAL(10, 2)")]
    assert _edges(info) == {("stg_orders", "id", "id"), ("stg_orders", "amount", "amount")}


def test_recursive_cte_references_itself() -> None:
    info = infer_query(
        "with recursive r as (select 1 as n union all select n + 1 from r where n < 3) select n from r",
        dialect="postgres",
        schema={},
        fqn="m",
    )
    assert info.depends_on == () and [c.name for c in info.columns] == ["n"]


SCHEMA_ONLY_QUERIES = {
    "joins, CTEs and aggregates": (
        "with o as (select customer_id, amount from raw.orders where status = 'paid') "
        "select c.name, sum(o.amount) as total, count(*) as n from o "
        "join raw.customers c on c.id = o.customer_id group by c.name"
    ),
    "a union": "select id, amount from raw.orders union all select id, null from raw.orders",
    "a star over a known parent": "select * from raw.customers",
    "a star over an unknown parent": "select * from raw.unknown_table",
    "quoted names and a lateral alias": 'select id as "OrderId", "OrderId" + 1 as next_id from raw.orders',
    "bad SQL": "select from where",
}


@pytest.mark.parametrize("dialect", ["duckdb", "snowflake", "bigquery"])
@pytest.mark.parametrize("case", sorted(SCHEMA_ONLY_QUERIES))
def test_schema_only_inference_gives_the_same_schema_without_lineage(case: str, dialect: str) -> None:
    sql = SCHEMA_ONLY_QUERIES[case]
    full = infer_query(sql, dialect=dialect, schema=SCHEMA, fqn="mart.x")
    schema_only = infer_query(sql, dialect=dialect, schema=SCHEMA, fqn="mart.x", lineage=False)
    assert [(c.name, c.type, c.position) for c in schema_only.columns] == [
        (c.name, c.type, c.position) for c in full.columns
    ]
    assert (schema_only.columns_known, schema_only.depends_on, schema_only.problems) == (
        full.columns_known,
        full.depends_on,
        full.problems,
    )
    assert schema_only.edges == ()
    assert all(c.expression is None for c in schema_only.columns)


def test_schema_only_inference_still_types_columns_through_the_parents() -> None:
    info = infer_query(
        "select o.amount * 2 as doubled, c.plan_code from raw.orders o join raw.customers c on c.id = o.customer_id",
        dialect="postgres",
        schema=SCHEMA,
        fqn="mart.x",
        lineage=False,
    )
    assert [(c.name, c.type) for c in info.columns] == [("doubled", "DECIMAL(10, 2)"), ("plan_code", "VARCHAR(10)")]
    assert info.columns_known


@pytest.mark.parametrize(
    ("sql", "names"),
    [
        ("select o.id, o.amount * 2 as doubled, o.Status from raw.orders o", ("id", "doubled", "status")),
        ('select id as "Mixed" from raw.orders', None),
        ("with x as (select * from raw.orders) select id as Order_Id from x", ("order_id",)),
        ("select id from raw.orders union all select id from raw.customers", ("id",)),
        ("select * from raw.orders", None),
        ("select o.* from raw.orders o", None),
        ("select id, count(*) from raw.orders group by id", None),
        ("select from where", None),
    ],
)
def test_output_names_come_from_the_text_alone_or_not_at_all(sql: str, names: tuple[str, ...] | None) -> None:
    from rules.infer import output_names

    assert output_names(sql, "duckdb") == names
    if names is not None:  # the same names a full inference gives
        assert infer_query(sql, dialect="duckdb", schema=SCHEMA, fqn="m").column_names() == names
