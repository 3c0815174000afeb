"""Semantic comparison of two versions of a query: what changed in meaning, and nothing for form."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
import yaml
from sqlglot.tokens import TokenType

from rules.checks import semantics
from rules.semantic import _PARSED, SemanticDiff, compare_queries, normalize_sql

BASE = """
with paid as (
    select id, customer_id, amount from raw.orders where status = 'paid'
),
totals as (
    select customer_id, sum(amount) as revenue from paid group by 1
)
select c.plan_code, t.revenue
from totals t
join raw.customers c on c.id = t.customer_id
"""


def _rules(diffs: list[SemanticDiff]) -> list[tuple[str, str | None]]:
    return [(d.rule, d.column) for d in diffs]


def test_reformatting_comments_case_aliases_and_cte_renames_change_nothing() -> None:
    after = """
    -- the same query, written by someone else
    WITH Paid_Orders AS (SELECT id, customer_id, amount FROM RAW.ORDERS WHERE status = 'paid'),
         by_customer AS (
            SELECT p.customer_id, SUM(p.amount) AS revenue /* total */
            FROM paid_orders AS p GROUP BY p.customer_id
         )
    SELECT cust.plan_code, bc.revenue
    FROM by_customer bc JOIN raw.customers AS cust ON cust.id = bc.customer_id
    """
    assert compare_queries(BASE, after, dialect="postgres") == []


@pytest.mark.parametrize("dialect", ["postgres", "snowflake", "bigquery", "duckdb", "databricks", "redshift"])
def test_identical_queries_compare_equal_in_every_dialect(dialect: str) -> None:
    assert compare_queries(BASE, BASE, dialect=dialect) == []


def test_filter_added_changed_or_removed_is_filter_changed_with_before_and_after() -> None:
    changed = compare_queries(BASE, BASE.replace("= 'paid'", "in ('paid', 'refunded')"), dialect="postgres")
    assert _rules(changed) == [("FILTER_CHANGED", None)]
    assert changed[0].before == "status = 'paid'"
    assert changed[0].after == "status IN ('paid', 'refunded')"
    assert "paid" in changed[0].message

    removed = compare_queries(BASE, BASE.replace("where status = 'paid'", ""), dialect="postgres")
    assert _rules(removed) == [("FILTER_CHANGED", None)] and removed[0].after is None

    having = compare_queries(BASE, BASE.replace("group by 1", "group by 1 having count(*) > 2"), dialect="duckdb")
    assert _rules(having) == [("FILTER_CHANGED", None)] and "HAVING" in having[0].message


def test_qualify_filter_counts_as_a_filter() -> None:
    before = "select id, ts from raw.events"
    after = "select id, ts from raw.events qualify count(*) over (partition by id) > 2"
    assert _rules(compare_queries(before, after, dialect="snowflake")) == [("FILTER_CHANGED", None)]


def test_adding_a_row_number_dedup_is_a_grain_change_like_distinct() -> None:
    before = "select id, ts from raw.events"
    after = "select id, ts from raw.events qualify row_number() over (partition by id order by ts desc) = 1"
    diffs = compare_queries(before, after, dialect="snowflake")
    assert _rules(diffs) == [("GRAIN_CHANGED", None)]
    assert diffs[0].after == "first row per (id)"


def test_a_dedup_on_a_cte_row_number_reports_its_new_key_once_as_grain() -> None:
    before = (
        "with r as (select id, ts, row_number() over (partition by id order by ts desc) as rn from raw.events)"
        " select id, ts from r where rn = 1"
    )
    after = before.replace("partition by id", "partition by id, ts")
    diffs = compare_queries(before, after, dialect="duckdb")
    assert _rules(diffs) == [("GRAIN_CHANGED", None)]
    assert (diffs[0].before, diffs[0].after) == ("first row per (id)", "first row per (id, ts)")


def test_group_by_keys_or_distinct_changing_is_grain_changed() -> None:
    keys = compare_queries(BASE, BASE.replace("group by 1", "group by 1, id"), dialect="postgres")
    assert _rules(keys) == [("GRAIN_CHANGED", None)]
    distinct = compare_queries(
        "select a, b from raw.t", "select distinct a, b from raw.t", dialect="duckdb"
    )
    assert _rules(distinct) == [("GRAIN_CHANGED", None)]


def test_group_by_position_or_name_is_the_same_grain() -> None:
    before = "select customer_id, count(*) as n from raw.orders group by 1"
    after = "select customer_id, count(*) as n from raw.orders group by customer_id"
    assert compare_queries(before, after, dialect="postgres") == []


def test_join_type_condition_added_and_removed_are_join_changed() -> None:
    kind = compare_queries(BASE, BASE.replace("join raw.customers", "left join raw.customers"), dialect="postgres")
    assert _rules(kind) == [("JOIN_CHANGED", None)]
    assert kind[0].before and kind[0].before.startswith("INNER JOIN")
    assert kind[0].after and kind[0].after.startswith("LEFT JOIN")

    condition = compare_queries(
        BASE, BASE.replace("c.id = t.customer_id", "c.id = t.customer_id and c.active"), dialect="postgres"
    )
    assert _rules(condition) == [("JOIN_CHANGED", None)]

    added = compare_queries(BASE, BASE + " join raw.plans p on p.code = c.plan_code", dialect="postgres")
    assert _rules(added) == [("JOIN_CHANGED", None)] and added[0].before is None

    removed = compare_queries(BASE + " join raw.plans p on p.code = c.plan_code", BASE, dialect="postgres")
    assert _rules(removed) == [("JOIN_CHANGED", None)] and removed[0].after is None


def test_reading_from_another_source_is_join_changed() -> None:
    diffs = compare_queries("select a from raw.t", "select a from raw.t_v2", dialect="duckdb")
    assert _rules(diffs) == [("JOIN_CHANGED", None)]


def test_output_column_expression_change_is_column_logic_changed_for_that_column() -> None:
    diffs = compare_queries(
        BASE, BASE.replace("select c.plan_code,", "select upper(c.plan_code) as plan_code,"), dialect="postgres"
    )
    assert _rules(diffs) == [("COLUMN_LOGIC_CHANGED", "plan_code")]
    assert diffs[0].before == "customers.plan_code"
    assert diffs[0].after == "UPPER(customers.plan_code)"


def test_column_changed_inside_a_cte_is_reported_on_the_output_columns_that_read_it() -> None:
    diffs = compare_queries(BASE, BASE.replace("sum(amount)", "sum(amount * 1.2)"), dialect="postgres")
    assert _rules(diffs) == [("COLUMN_LOGIC_CHANGED", "revenue")]


def test_subquery_in_from_is_compared_like_a_cte() -> None:
    before = "select s.n from (select count(*) as n from raw.t where x > 1) s"
    after = "select s.n from (select count(*) as n from raw.t where x > 2) s"
    assert _rules(compare_queries(before, after, dialect="postgres")) == [("FILTER_CHANGED", None)]


def test_union_branch_added_is_a_filter_change_and_branch_logic_is_column_logic() -> None:
    before = "select a from raw.t union all select a from raw.u"
    three = before + " union all select a from raw.v"
    assert _rules(compare_queries(before, three, dialect="duckdb")) == [("FILTER_CHANGED", None)]
    logic = compare_queries(before, "select a from raw.t union all select a + 1 from raw.u", dialect="duckdb")
    assert _rules(logic) == [("COLUMN_LOGIC_CHANGED", "a")]


def test_unparseable_sql_never_raises() -> None:
    assert compare_queries("selec x frm", "selec x frm", dialect="postgres") == []
    diffs = compare_queries("selec x frm", "selec y frm", dialect="postgres")
    assert _rules(diffs) == [("COLUMN_LOGIC_CHANGED", None)]


def test_normalize_sql_ignores_case_whitespace_and_comments_but_not_literals() -> None:
    a = normalize_sql("SELECT  A -- comment\n FROM T /* x */ WHERE b = 'X'", "snowflake")
    b = normalize_sql("select a from t where B = 'X'", "snowflake")
    c = normalize_sql("select a from t where B = 'x'", "snowflake")
    assert a == b
    assert a != c
    assert normalize_sql("selec x  frm -- y", "postgres") == normalize_sql("SELEC X FRM", "postgres")


def test_limit_added_is_a_filter_change() -> None:
    diffs = compare_queries("select id from raw.t", "select id from raw.t limit 10", dialect="postgres")
    assert _rules(diffs) == [("FILTER_CHANGED", None)] and diffs[0].after == "10"


def test_adding_or_removing_an_output_column_is_not_a_semantic_change() -> None:
    base = "with src as (select * from raw.orders), final as (select id, amount from src) select * from final"
    added = base.replace("select id, amount from src", "select id, amount, status from src")
    assert compare_queries(base, added, dialect="snowflake") == []
    assert compare_queries(added, base, dialect="snowflake") == []


def test_snowflake_names_are_reported_lower_case() -> None:
    base = "with final as (select id, amount from raw.orders) select * from final"
    diffs = compare_queries(base, base.replace("amount from", "amount * 2 as amount from"), dialect="snowflake")
    assert _rules(diffs) == [("COLUMN_LOGIC_CHANGED", "amount")]
    assert "`final`" in diffs[0].message


def test_reordering_and_conditions_or_equality_sides_is_not_a_change() -> None:
    before = "select o.id from raw.o o join raw.c c on o.cid = c.id and c.active where o.x > 1 and o.y = 'a'"
    after = "select o.id from raw.o o join raw.c c on c.active and c.id = o.cid where (o.y = 'a') and o.x > 1"
    assert compare_queries(before, after, dialect="postgres") == []
    changed = "select o.id from raw.o o join raw.c c on o.cid = c.id and c.active where o.x > 2 and o.y = 'a'"
    assert _rules(compare_queries(before, changed, dialect="postgres")) == [("FILTER_CHANGED", None)]


@pytest.mark.parametrize("dialect", ["snowflake", "duckdb", "databricks"])
def test_group_by_all_is_the_grain_of_its_non_aggregate_columns(dialect: str) -> None:
    by_all = "select a, b, sum(c) as s from raw.o group by all"
    assert compare_queries(by_all, "select a, b, sum(c) as s from raw.o group by a, b", dialect=dialect) == []
    fewer = compare_queries(by_all, "select a, sum(c) as s from raw.o group by all", dialect=dialect)
    assert _rules(fewer) == [("GRAIN_CHANGED", None)]


def test_adding_an_import_cte_is_not_a_change_but_pointing_it_elsewhere_is() -> None:
    before = "select o.id, o.amount from raw.orders o where o.status = 'paid'"
    imported = (
        "with orders as (select * from raw.orders)\n"
        "select orders.id, orders.amount from orders where orders.status = 'paid'"
    )
    assert compare_queries(before, imported, dialect="snowflake") == []
    assert compare_queries(imported, before, dialect="snowflake") == []
    elsewhere = compare_queries(imported, imported.replace("raw.orders", "raw.orders_v2"), dialect="snowflake")
    assert _rules(elsewhere) == [("JOIN_CHANGED", None)]
    assert (elsewhere[0].before, elsewhere[0].after) == ("raw.orders", "raw.orders_v2")


def test_import_cte_named_like_its_relation_is_read_through() -> None:
    before = "select o.id from stg_orders o where o.status = 1"
    after = "with stg_orders as (select * from stg_orders) select stg_orders.id from stg_orders where stg_orders.status = 1"
    assert compare_queries(before, after, dialect="duckdb") == []
    filtered = after.replace("(select * from stg_orders)", "(select * from stg_orders where not deleted)")
    assert _rules(compare_queries(after, filtered, dialect="duckdb")) == [("FILTER_CHANGED", None)]



_SHARED_PARSE_CASES = [
    ("with final as (select Id, sum(x) as total from t /* c */ group by 1) select * from final",
     "with final as (select id, sum(x) as total from t where x > 0 group by 1) select * from final"),
    ("with a as (select * from s), final as (select a.id from a join b on a.id = b.id) select * from final",
     "with a as (select * from s), final as (select a.id from a left join b on a.id = b.id) select * from final"),
    ("select 1 as one; select Id from t", "select id from t where id > 1"),
    ("select from where", "select a from"),
]



@pytest.mark.parametrize(("before", "after"), _SHARED_PARSE_CASES)
def test_the_shared_parse_gives_what_parsing_afresh_gives_and_no_reader_changes_it(before: str, after: str) -> None:
    """The diff parses each query once (``parsed_statements``) for its three readers: every answer
    must be what a parse of its own per reader gives, and the readers before the last must leave
    the shared trees as parsed (one that changed them would change what the next reader sees)."""
    readers = (
        lambda: normalize_sql(before, "duckdb"), lambda: normalize_sql(after, "duckdb"),
        lambda: semantics._unwrap_final_select_star(before, "duckdb"),
        lambda: semantics._unwrap_final_select_star(after, "duckdb"),
        lambda: compare_queries(before, after, dialect="duckdb"),
        lambda: semantics._compare_queries(before, after, "duckdb"),
    )

    def answers(*, shared: bool) -> list[object]:
        semantics._compare_queries.cache_clear()
        semantics.normalized_sql.cache_clear()
        _PARSED.clear()
        found = []
        for index, read in enumerate(readers):
            if not shared:
                _PARSED.clear()
            found.append(read())
            if shared and index == 3:  # what the last reader takes is still as parsed
                for sql in (before, after):
                    kept = _PARSED.get((sql, "duckdb"))
                    if isinstance(kept, tuple):
                        fresh = sqlglot.parse(sql, dialect="duckdb")
                        assert [s.sql(comments=True) if s else None for s in kept] == [
                            s.sql(comments=True) if s else None for s in fresh
                        ]
        return found

    alone = answers(shared=False)
    assert answers(shared=True) == alone
    _PARSED.clear()
    assert [read() for read in readers] == alone  # readers called again find what they found
    assert [read() for read in readers] == alone


def _case_queries() -> list[tuple[str, str]]:
    """(SQL, dialect) of every plain query in the rule cases (``tests/rules/cases``)."""
    found = []
    for path in sorted((Path(__file__).parent / "cases").glob("*.yml")):
        for case in yaml.safe_load(path.read_text())["cases"]:
            dialect = case.get("dialect", "duckdb")
            for side in ("base", "head"):
                for name, text in (case.get(side) or {}).items():
                    if name.endswith(".sql") and isinstance(text, str) and "{" not in text:
                        found.append((text, dialect))
    return found


def _respelled(sql: str, dialect: str) -> str:
    """``sql`` in another form: its tokens one per line, keywords and unquoted names in the other
    case, a comment after the first token."""
    pieces = []
    for index, token in enumerate(sqlglot.tokenize(sql, dialect=dialect)):
        text = sql[token.start : token.end + 1]
        if token.token_type not in (TokenType.STRING, TokenType.IDENTIFIER, TokenType.NATIONAL_STRING):
            text = text.swapcase()
        pieces.append(text + (" /* respelled */" if index == 0 else ""))
    return "\n   ".join(pieces)


_QUERIES = [(q, "duckdb") for pair in _SHARED_PARSE_CASES for q in pair] + _case_queries()


@pytest.mark.parametrize(("sql", "dialect"), _QUERIES)
def test_queries_equal_in_canonical_text_never_differ_in_meaning(sql: str, dialect: str) -> None:
    """The diff compares meaning first and makes the canonical texts only when it finds no
    difference (``rules.checks.semantics.query``): that is exact only if two queries whose
    canonical texts are equal always compare equal."""
    try:
        other = _respelled(sql, dialect)
    except sqlglot.errors.SqlglotError:
        pytest.skip("not tokenizable")
    if normalize_sql(sql, dialect) != normalize_sql(other, dialect):
        pytest.skip("the respelling changed the canonical text (a case-sensitive name)")
    assert not semantics._compare_queries(sql, other, dialect)
    assert not semantics._compare_queries(other, sql, dialect)
    assert compare_queries(sql, other, dialect=dialect) == []
