"""Nothing in the SQL layer raises on bad input: random SQL-ish text gives problems, not crashes."""

from __future__ import annotations

import logging

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.infer import infer_query
from rules.semantic import compare_queries, normalize_sql
from rules.sql_schema import build_sql_snapshot
from rules.types import compare_types, normalize_type

logging.getLogger("sqlglot").setLevel(logging.CRITICAL)

WORDS = st.sampled_from(
    [
        "select", "from", "where", "group", "by", "join", "on", "create", "table", "view", "alter",
        "drop", "column", "as", "with", "(", ")", ",", ";", "*", "a", "b", "s.t", "'x'", "1", "int",
        "varchar(", "union", "all", "qualify", "over", "--", "/*", "*/", "$$", "`", '"', "not",
        "null", "rename", "to", "add", "primary", "key", "case", "when", "end", "lateral", "\n",
    ]
)
SQLISH = st.lists(WORDS, max_size=30).map(" ".join)
DIALECTS = st.sampled_from(["postgres", "snowflake", "bigquery", "duckdb", "databricks", "redshift"])


@settings(max_examples=60, deadline=None)
@given(sql=SQLISH, dialect=DIALECTS)
def test_infer_query_never_raises(sql: str, dialect: str) -> None:
    info = infer_query(sql, dialect=dialect, schema={"s.t": {"a": "int"}}, fqn="m")
    assert info.columns_known or info.problems or not info.columns


@settings(max_examples=60, deadline=None)
@given(sql=SQLISH, dialect=DIALECTS)
def test_build_sql_snapshot_never_raises(sql: str, dialect: str) -> None:
    snapshot = build_sql_snapshot([("a.sql", "create table s.t (a int);"), ("b.sql", sql)], dialect=dialect)
    assert all(p.path in ("a.sql", "b.sql") for p in snapshot.problems)


@settings(max_examples=60, deadline=None)
@given(before=SQLISH, after=SQLISH, dialect=DIALECTS)
def test_semantic_comparison_never_raises(before: str, after: str, dialect: str) -> None:
    compare_queries(before, after, dialect=dialect)
    assert normalize_sql(before, dialect) == normalize_sql(before, dialect)


@settings(max_examples=100, deadline=None)
@given(a=st.text(max_size=20), b=st.text(max_size=20), dialect=DIALECTS)
def test_type_functions_never_raise(a: str, b: str, dialect: str) -> None:
    assert normalize_type(a, dialect)
    assert compare_types(a, b, dialect) in {"same", "widened", "narrowed", "changed", "unknown"}
