"""Inferred column types checked against a real engine: DuckDB describes the same queries."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from rules.infer import infer_query
from rules.sql_schema import split_statements
from rules.types import compare_types

duckdb = pytest.importorskip("duckdb")

BATTERY = Path(__file__).parent.parent / "data" / "sql" / "duckdb_type_battery.sql"
TABLES = (
    "create table orders (id integer, customer_id integer, amount decimal(10,2), status varchar,"
    " created_at timestamp, is_test boolean)",
    "create table customers (id integer, name varchar, plan_code varchar, score double, signup_date date)",
)


@pytest.fixture(scope="module")
def engine() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    for ddl in TABLES:
        con.execute(ddl)
    yield con
    con.close()


def _schema(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    return {t: {r[0]: r[1] for r in con.execute(f"describe {t}").fetchall()} for t in ("orders", "customers")}


def test_inferred_types_match_what_duckdb_reports_for_nearly_every_column(
    engine: duckdb.DuckDBPyConnection,
) -> None:
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    schema = _schema(engine)
    total = 0
    misses: list[str] = []
    for statement in split_statements(BATTERY.read_text(), "duckdb"):
        real = engine.execute(f"describe {statement.text}").fetchall()
        info = infer_query(statement.text, dialect="duckdb", schema=schema, fqn="m")
        assert info.columns_known, (statement.line, info.problems)
        assert [c.name for c in info.columns] == [r[0].lower() for r in real], statement.line
        for (name, real_type, *_rest), column in zip(real, info.columns, strict=True):
            total += 1
            if compare_types(real_type, column.type, "duckdb") != "same":
                misses.append(f"line {statement.line} {name}: duckdb {real_type}, inferred {column.type}")
    assert total >= 90
    # the known misses are decimal precision arithmetic and a few integer widths
    assert len(misses) / total <= 0.08, "\n".join(misses)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("sum(amount)", "DECIMAL(38,2)"),
        ("sum(id)", "HUGEINT"),
        ("round(amount, 1)", "DECIMAL(10,1)"),
        ("round(amount)", "DECIMAL(10,0)"),
        ("floor(amount)", "DECIMAL(10,0)"),
        ("amount / 2", "DOUBLE"),
        ("replace(status, 'a', 'b')", "VARCHAR"),
        ("left(status, 2)", "VARCHAR"),
        ("date_trunc('month', created_at)", "DATE"),
        ("date_trunc('hour', created_at)", "TIMESTAMP"),
    ],
)
def test_function_result_type_overrides_agree_with_duckdb(
    engine: duckdb.DuckDBPyConnection, expression: str, expected: str
) -> None:
    sql = f"select {expression} as x from orders"
    real = engine.execute(f"describe {sql}").fetchall()[0][1]
    assert compare_types(real, expected, "duckdb") == "same"
    inferred = infer_query(sql, dialect="duckdb", schema=_schema(engine), fqn="m").columns[0].type
    assert compare_types(inferred, expected, "duckdb") == "same", inferred
