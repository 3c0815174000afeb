"""Type normalisation and comparison: aliases are equal, and a change says how readers are hit."""

from __future__ import annotations

import pytest

from rules.model import UNKNOWN
from rules.types import compare_types, normalize_type


@pytest.mark.parametrize(
    ("dialect", "spellings"),
    [
        ("postgres", ["int", "integer", "INT4", "  Integer "]),
        ("postgres", ["varchar", "character varying", "VARCHAR"]),
        ("postgres", ["float8", "double precision", "float"]),
        ("snowflake", ["number", "decimal(38,0)", "NUMBER(38, 0)", "int", "bigint", "numeric"]),
        ("snowflake", ["varchar", "text", "string", "varchar(16777216)"]),
        ("bigquery", ["int64", "int", "integer", "bigint"]),
        ("bigquery", ["float64", "float", "double"]),
        ("duckdb", ["varchar", "text", "string"]),
        ("databricks", ["string", "varchar", "text"]),
        ("redshift", ["int", "integer", "int4"]),
    ],
)
def test_aliases_of_one_type_normalise_to_the_same_text(dialect: str, spellings: list[str]) -> None:
    normalised = {normalize_type(s, dialect) for s in spellings}
    assert len(normalised) == 1
    assert normalised != {UNKNOWN}


def test_distinct_types_stay_distinct() -> None:
    assert normalize_type("int", "postgres") != normalize_type("bigint", "postgres")
    assert normalize_type("varchar(10)", "postgres") != normalize_type("varchar(20)", "postgres")
    assert normalize_type("date", "duckdb") != normalize_type("timestamp", "duckdb")


@pytest.mark.parametrize("text", [None, "", "   ", "UNKNOWN", "not a type ((", "decimal(10,"])
def test_empty_or_unparseable_types_are_unknown(text: str | None) -> None:
    assert normalize_type(text, "postgres") == UNKNOWN


def test_normalised_type_is_stable_when_normalised_again() -> None:
    for dialect in ("postgres", "snowflake", "bigquery", "duckdb", "databricks", "redshift"):
        for text in ("int", "varchar(20)", "decimal(12,2)", "timestamp", "array<int>", "boolean"):
            once = normalize_type(text, dialect)
            assert normalize_type(once, dialect) == once, (dialect, text)


@pytest.mark.parametrize(
    ("before", "after", "dialect", "expected"),
    [
        ("int", "integer", "postgres", "same"),
        ("INT", "  int  ", "duckdb", "same"),
        ("varchar", "text", "postgres", "same"),
        ("int", "bigint", "postgres", "widened"),
        ("smallint", "int", "duckdb", "widened"),
        ("varchar(10)", "varchar(20)", "postgres", "widened"),
        ("varchar(10)", "text", "redshift", "widened"),
        ("real", "double precision", "postgres", "widened"),
        ("float", "double", "duckdb", "widened"),
        ("decimal(10,2)", "decimal(12,2)", "snowflake", "widened"),
        ("int", "decimal(12,0)", "postgres", "widened"),
        ("int", "double", "duckdb", "widened"),
        ("timestamp(3)", "timestamp(6)", "postgres", "widened"),
        ("array<int>", "array<bigint>", "duckdb", "widened"),
        ("bigint", "int", "postgres", "narrowed"),
        ("varchar(20)", "varchar(10)", "snowflake", "narrowed"),
        ("double", "float", "duckdb", "narrowed"),
        ("decimal(12,2)", "decimal(10,2)", "postgres", "narrowed"),
        ("decimal(12,4)", "decimal(12,2)", "bigquery", "narrowed"),
        ("double", "int", "postgres", "narrowed"),
        ("int", "varchar", "postgres", "changed"),
        ("date", "int", "snowflake", "changed"),
        ("date", "timestamp", "postgres", "changed"),
        ("date", "timestamp", "snowflake", "changed"),
        ("date", "datetime", "bigquery", "changed"),
        ("date", "timestamp", "bigquery", "changed"),
        ("timestamp", "date", "duckdb", "changed"),
        ("Date", "Date32", "clickhouse", "widened"),
        ("Date32", "Date", "clickhouse", "narrowed"),
        ("boolean", "int", "databricks", "changed"),
        ("timestamp", "timestamptz", "postgres", "changed"),
        ("varchar", "date", "bigquery", "changed"),
        ("UNKNOWN", "int", "postgres", "unknown"),
        ("int", "weird type ((", "postgres", "unknown"),
        ("UNKNOWN", "UNKNOWN", "postgres", "same"),
    ],
)
def test_type_change_is_classified_by_what_readers_can_still_read(
    before: str, after: str, dialect: str, expected: str
) -> None:
    assert compare_types(before, after, dialect) == expected


def test_snowflake_integer_types_are_one_number_type() -> None:
    # Snowflake stores INT, BIGINT and NUMBER alike as NUMBER(38,0): no change to report.
    assert compare_types("int", "bigint", "snowflake") == "same"
    assert compare_types("number", "int", "snowflake") == "same"


def test_bigquery_integer_aliases_are_all_int64() -> None:
    assert compare_types("int", "bigint", "bigquery") == "same"
    assert normalize_type("smallint", "bigquery") == "INT64"


def test_struct_losing_a_field_is_a_change_and_gaining_one_widens() -> None:
    assert compare_types("struct<a int>", "struct<a int, b text>", "duckdb") == "widened"
    assert compare_types("struct<a int, b text>", "struct<a int>", "duckdb") == "changed"


@pytest.mark.parametrize(
    ("dialect", "spellings"),
    [
        ("snowflake", ["timestamp", "TIMESTAMP_NTZ", "TIMESTAMP_NTZ(9)", "datetime"]),
        ("duckdb", ["character varying(256)", "varchar(10)", "text", "string"]),
        ("postgres", ["serial", "int", "integer"]),
        ("postgres", ["bigserial", "bigint", "int8"]),
        ("redshift", ["text", "varchar", "character varying(256)"]),
    ],
)
def test_warehouse_defaults_and_synonyms_fold_to_one_type(dialect: str, spellings: list[str]) -> None:
    # what dbt's catalog reports (TIMESTAMP_NTZ(9), character varying(256)) equals what people write
    assert len({normalize_type(s, dialect) for s in spellings}) == 1


def test_redshift_text_is_a_bounded_varchar() -> None:
    assert compare_types("text", "varchar(1000)", "redshift") == "widened"
    assert compare_types("varchar(1000)", "text", "redshift") == "narrowed"


SPELLINGS = (
    "tinyint", "smallint", "int", "bigint", "decimal(10,2)", "decimal(12,2)", "decimal(12,4)",
    "decimal(38,0)", "numeric", "float", "double", "real", "varchar(10)", "varchar(20)", "varchar",
    "text", "char(5)", "date", "timestamp", "timestamp(3)", "timestamptz", "time", "boolean",
    "int[]", "bigint[]", "json", "uuid", "UNKNOWN",
)


@pytest.mark.parametrize("dialect", ["postgres", "snowflake", "bigquery", "duckdb", "databricks", "redshift"])
def test_comparison_is_consistent_in_both_directions(dialect: str) -> None:
    # widening one way is narrowing the other; same, changed and unknown are symmetric;
    # types neither of which holds the other (decimal(10,2) vs decimal(38,0)) narrow both ways
    inverse = {"same": {"same"}, "widened": {"narrowed"}, "narrowed": {"widened", "narrowed"},
               "changed": {"changed"}, "unknown": {"unknown"}}
    for a in SPELLINGS:
        assert compare_types(a, a, dialect) == "same"
        for b in SPELLINGS:
            forward, backward = compare_types(a, b, dialect), compare_types(b, a, dialect)
            assert backward in inverse[forward], (a, b, forward, backward)


def test_snowflake_timestamps_are_shown_as_snowflake_spells_them_and_still_compare_canonically() -> None:
    from rules.types import display_type

    ntz = normalize_type("timestamp_ntz", "snowflake")
    assert display_type(ntz, "snowflake") == "TIMESTAMP_NTZ"
    assert display_type(normalize_type("timestamp_tz(3)", "snowflake"), "snowflake") == "TIMESTAMP_TZ(3)"
    assert display_type(normalize_type("timestamptz", "postgres"), "postgres") == "TIMESTAMPTZ"
    assert compare_types(ntz, normalize_type("timestamp", "snowflake"), "snowflake") == "same"


def test_sqlglot_fallback_warnings_do_not_reach_the_log_once_the_engine_is_loaded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from rules.sql_schema import build_sql_snapshot

    snap = build_sql_snapshot([("ddl/1.sql", "create table a.t (id int);\nvacuum full a.t;\n")], dialect="postgres")
    assert "a.t" in snap.assets
    assert [r.getMessage() for r in caplog.records if r.name.startswith("sqlglot")] == []
