"""Schema state from SQL files: DDL, views, ALTERs and DROPs applied in path order, per dialect."""

from __future__ import annotations

import logging

import pytest

from rules.model import UNKNOWN, Asset, Edge
from rules.sql_schema import build_sql_snapshot

INIT = """-- billing schema
CREATE TABLE billing.invoices (
  id bigint PRIMARY KEY,
  customer_id int NOT NULL REFERENCES billing.customers(id),
  amount numeric(12,2) DEFAULT 0 CHECK (amount >= 0),
  code varchar(10) UNIQUE,
  CONSTRAINT inv_uk UNIQUE (customer_id, code)
);
"""


def _columns(asset: Asset) -> list[tuple[str, str]]:
    return [(c.name, c.type) for c in asset.columns]


@pytest.fixture(autouse=True)
def _quiet_sqlglot(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="sqlglot")


def test_create_table_records_columns_types_nullability_defaults_and_constraints() -> None:
    snap = build_sql_snapshot([("db/001_init.sql", INIT)], dialect="postgres")
    invoices = snap.assets["billing.invoices"]
    assert invoices.kind == "table" and invoices.materialized == "table"
    assert invoices.path == "db/001_init.sql" and invoices.line == 2
    assert _columns(invoices) == [
        ("id", "BIGINT"),
        ("customer_id", "INT"),
        ("amount", "DECIMAL(12, 2)"),
        ("code", "VARCHAR(10)"),
    ]
    by_name = {c.name: c for c in invoices.columns}
    assert by_name["id"].nullable is False and "primary_key" in by_name["id"].constraints
    assert by_name["customer_id"].nullable is False
    assert "foreign_key:billing.customers(id)" in by_name["customer_id"].constraints
    assert by_name["amount"].nullable is True and by_name["amount"].default == "0"
    assert "check:amount >= 0" in by_name["amount"].constraints
    assert "unique" in by_name["code"].constraints
    assert invoices.constraints == ("unique(customer_id,code)",)
    assert [c.line for c in invoices.columns] == [3, 4, 5, 6]
    assert all(c.declared_type for c in invoices.columns)
    assert snap.problems == []


def test_migrations_apply_in_order_add_drop_retype_and_nullability() -> None:
    files = [
        ("db/001_init.sql", INIT),
        (
            "db/002_changes.sql",
            "ALTER TABLE billing.invoices ADD COLUMN note text NOT NULL DEFAULT '';\n"
            "ALTER TABLE billing.invoices DROP COLUMN code;\n"
            "ALTER TABLE billing.invoices ALTER COLUMN amount TYPE numeric(14,2);\n"
            "ALTER TABLE billing.invoices ALTER COLUMN amount SET NOT NULL;\n"
            "ALTER TABLE billing.invoices ALTER COLUMN customer_id DROP NOT NULL;\n",
        ),
    ]
    invoices = build_sql_snapshot(files, dialect="postgres").assets["billing.invoices"]
    assert _columns(invoices) == [
        ("id", "BIGINT"),
        ("customer_id", "INT"),
        ("amount", "DECIMAL(14, 2)"),
        ("note", "TEXT"),
    ]
    by_name = {c.name: c for c in invoices.columns}
    assert by_name["amount"].nullable is False
    assert by_name["customer_id"].nullable is True
    assert by_name["note"].nullable is False and by_name["note"].default == "''"
    # the table-level unique key on the dropped column goes with it
    assert invoices.constraints == ()
    # the asset points at its latest change; columns changed there carry their line in it
    assert invoices.path == "db/002_changes.sql" and invoices.line == 5
    assert by_name["note"].line == 1 and by_name["amount"].line == 4
    assert by_name["id"].line is None


def test_renames_are_recorded_for_the_diff() -> None:
    files = [
        ("db/001_init.sql", INIT),
        (
            "db/002_rename.sql",
            "ALTER TABLE billing.invoices RENAME COLUMN code TO invoice_code;\n"
            "ALTER TABLE billing.invoices RENAME TO bills;\n",
        ),
    ]
    snap = build_sql_snapshot(files, dialect="postgres")
    assert "billing.invoices" not in snap.assets
    bills = snap.assets["billing.bills"]
    assert bills.meta["renamed_from"] == "billing.invoices"
    renamed = bills.column("invoice_code")
    assert renamed is not None and renamed.meta["renamed_from"] == "code"
    assert bills.constraints == ("unique(customer_id,invoice_code)",)


def test_views_infer_columns_and_lineage_and_follow_renames() -> None:
    files = [
        ("db/001_init.sql", INIT),
        (
            "db/002_view.sql",
            "CREATE VIEW billing.big_invoices AS\n"
            "SELECT i.id, i.amount * 2 AS doubled FROM billing.invoices i WHERE i.code <> '';\n",
        ),
        ("db/003_rename.sql", "ALTER TABLE billing.invoices RENAME COLUMN amount TO total;"),
    ]
    snap = build_sql_snapshot(files, dialect="postgres")
    view = snap.assets["billing.big_invoices"]
    assert view.kind == "view" and view.materialized == "view"
    assert _columns(view) == [("id", "BIGINT"), ("doubled", "DECIMAL(12, 2)")]
    assert view.depends_on == ("billing.invoices",)
    assert view.sql is not None and "amount" in view.sql
    assert set(snap.edges) == {
        Edge("billing.invoices", "id", "billing.big_invoices", "id", "select"),
        Edge("billing.invoices", "total", "billing.big_invoices", "doubled", "select"),
        Edge("billing.invoices", "code", "billing.big_invoices", None, "filter"),
    }


def test_create_or_replace_and_drop_replace_and_remove_assets() -> None:
    files = [
        ("a.sql", "CREATE TABLE s.t (a int);\nCREATE VIEW s.v AS SELECT a FROM s.t;"),
        ("b.sql", "CREATE OR REPLACE VIEW s.v AS SELECT a, a + 1 AS b FROM s.t;\nDROP TABLE IF EXISTS s.gone;"),
        ("c.sql", "CREATE TABLE s.old (x int); DROP TABLE s.old;"),
    ]
    snap = build_sql_snapshot(files, dialect="postgres")
    assert sorted(snap.assets) == ["s.t", "s.v"]
    assert [c.name for c in snap.assets["s.v"].columns] == ["a", "b"]


def test_ctas_is_a_table_with_inferred_columns() -> None:
    snap = build_sql_snapshot(
        [("m.sql", "CREATE TABLE s.t (a int, b text);\nCREATE TABLE s.c AS SELECT a, upper(b) AS ub FROM s.t;")],
        dialect="duckdb",
    )
    ctas = snap.assets["s.c"]
    assert ctas.kind == "table" and _columns(ctas) == [("a", "INT"), ("ub", "TEXT")]


def test_checksum_ignores_formatting_comments_and_case() -> None:
    a = build_sql_snapshot([("x.sql", "create table s.t (a int not null, b text);")], dialect="postgres")
    b = build_sql_snapshot(
        [("x.sql", "-- hello\nCREATE TABLE S.T (\n  A   INTEGER NOT NULL, /* c */\n  B TEXT\n);")],
        dialect="postgres",
    )
    assert a.assets["s.t"].checksum == b.assets["s.t"].checksum
    c = build_sql_snapshot([("x.sql", "create table s.t (a bigint not null, b text);")], dialect="postgres")
    assert a.assets["s.t"].checksum != c.assets["s.t"].checksum


def test_unparseable_statements_become_problems_with_their_line_and_the_rest_still_counts() -> None:
    text = (
        "CREATE TABLE s.t (a int);\n"
        "\n"
        "CREATE TABLE s.broken (;\n"
        "ALTER TABLE s.t ADD COLUMN b int;\n"
        "SELEC nonsense;\n"
        "ALTER TABLE s.t FROBNICATE a;\n"
    )
    snap = build_sql_snapshot([("m.sql", text)], dialect="postgres")
    assert [c.name for c in snap.assets["s.t"].columns] == ["a", "b"]
    assert sorted(p.line for p in snap.problems if p.line) == [3, 5, 6]
    assert all(p.path == "m.sql" and p.message for p in snap.problems)


def test_statements_that_do_not_touch_schemas_are_ignored_quietly() -> None:
    text = (
        "BEGIN;\nSET search_path TO s;\nCREATE TABLE s.t (a int);\n"
        "INSERT INTO s.t VALUES (1);\nCREATE INDEX i ON s.t (a);\nGRANT SELECT ON s.t TO r;\n"
        "CREATE EXTENSION IF NOT EXISTS pgcrypto;\nCOMMIT;\n"
    )
    snap = build_sql_snapshot([("m.sql", text)], dialect="postgres")
    assert list(snap.assets) == ["s.t"]
    assert snap.problems == []


def test_comments_set_descriptions() -> None:
    text = (
        "CREATE TABLE s.t (a int);\nCOMMENT ON TABLE s.t IS 'the t';\n"
        "COMMENT ON COLUMN s.t.a IS 'the a';"
    )
    asset = build_sql_snapshot([("m.sql", text)], dialect="postgres").assets["s.t"]
    assert asset.description == "the t"
    assert asset.columns[0].description == "the a"


def test_drop_constraint_by_postgres_generated_name_removes_the_key() -> None:
    text = (
        "CREATE TABLE s.t (id int PRIMARY KEY, code text UNIQUE);\n"
        "ALTER TABLE s.t DROP CONSTRAINT t_pkey;\nALTER TABLE s.t DROP CONSTRAINT t_code_key;"
    )
    asset = build_sql_snapshot([("m.sql", text)], dialect="postgres").assets["s.t"]
    assert [c.constraints for c in asset.columns] == [(), ()]


def test_bare_table_names_keep_no_schema_and_views_find_them() -> None:
    snap = build_sql_snapshot(
        [("m.sql", "CREATE TABLE t (a int);\nCREATE VIEW v AS SELECT a FROM public.t;")], dialect="postgres"
    )
    assert sorted(snap.assets) == ["t", "v"]
    assert snap.assets["v"].depends_on == ("t",)
    assert _columns(snap.assets["v"]) == [("a", "INT")]


def test_snowflake_ddl() -> None:
    text = (
        "CREATE OR REPLACE TABLE ANALYTICS.PUBLIC.ORDERS (ID NUMBER(38,0) NOT NULL, AMT FLOAT,"
        " CONSTRAINT PK PRIMARY KEY (ID));\n"
        "ALTER TABLE ANALYTICS.PUBLIC.ORDERS ADD COLUMN NOTE VARCHAR;\n"
        "ALTER TABLE ANALYTICS.PUBLIC.ORDERS ALTER COLUMN AMT SET DATA TYPE NUMBER(12,2);\n"
        "ALTER TABLE ANALYTICS.PUBLIC.ORDERS DROP PRIMARY KEY;\n"
        "CREATE OR REPLACE SECURE VIEW ANALYTICS.PUBLIC.V AS SELECT ID, AMT FROM ANALYTICS.PUBLIC.ORDERS;\n"
    )
    snap = build_sql_snapshot([("sf.sql", text)], dialect="snowflake")
    orders = snap.assets["analytics.public.orders"]
    assert _columns(orders) == [("id", "DECIMAL(38, 0)"), ("amt", "DECIMAL(12, 2)"), ("note", "VARCHAR")]
    assert orders.constraints == () and orders.columns[0].constraints == ("not_null",)
    assert _columns(snap.assets["analytics.public.v"]) == [("id", "DECIMAL(38, 0)"), ("amt", "DECIMAL(12, 2)")]
    assert snap.problems == []


def test_bigquery_ddl() -> None:
    text = (
        "CREATE TABLE `proj.ds.events` (id INT64 NOT NULL, payload STRUCT<kind STRING>, tags ARRAY<STRING>)"
        " OPTIONS(description='raw events');\n"
        "ALTER TABLE `proj.ds.events` ADD COLUMN IF NOT EXISTS source STRING;\n"
        "ALTER TABLE `proj.ds.events` RENAME COLUMN source TO origin;\n"
        "CREATE OR REPLACE VIEW `proj.ds.kinds` AS SELECT id, payload.kind AS kind FROM `proj.ds.events`;\n"
    )
    snap = build_sql_snapshot([("bq.sql", text)], dialect="bigquery")
    events = snap.assets["proj.ds.events"]
    assert [c.name for c in events.columns] == ["id", "payload", "tags", "origin"]
    assert events.description == "raw events"
    assert events.columns[0].type == "INT64" and events.columns[0].nullable is False
    assert [c.name for c in snap.assets["proj.ds.kinds"].columns] == ["id", "kind"]


def test_databricks_ddl() -> None:
    text = (
        "CREATE TABLE main.sales.t (id BIGINT NOT NULL, s STRING COMMENT 'the s') USING DELTA;\n"
        "ALTER TABLE main.sales.t ADD COLUMNS (c INT, d STRING);\n"
        "ALTER TABLE main.sales.t DROP COLUMNS (d);\n"
        "ALTER TABLE main.sales.t ALTER COLUMN c SET NOT NULL;\n"
    )
    t = build_sql_snapshot([("dbx.sql", text)], dialect="databricks").assets["main.sales.t"]
    assert _columns(t) == [("id", "BIGINT"), ("s", "STRING"), ("c", "INT")]
    assert t.columns[1].description == "the s" and t.columns[2].nullable is False


def test_redshift_ddl() -> None:
    text = (
        "CREATE TABLE s.t (id INTEGER IDENTITY(1,1) NOT NULL, name VARCHAR(256) ENCODE zstd,"
        " PRIMARY KEY(id)) DISTKEY(id) SORTKEY(id);\n"
        "ALTER TABLE s.t ALTER COLUMN name TYPE VARCHAR(512);\n"
        "CREATE MATERIALIZED VIEW s.mv AS SELECT id FROM s.t;\n"
    )
    snap = build_sql_snapshot([("rs.sql", text)], dialect="redshift")
    assert _columns(snap.assets["s.t"]) == [("id", "INTEGER"), ("name", "VARCHAR(512)")]
    assert snap.assets["s.t"].constraints == ("primary_key(id)",)
    assert snap.assets["s.mv"].materialized == "materialized_view"


def test_duckdb_rename_without_column_keyword_renames_the_column() -> None:
    text = "CREATE TABLE t (id INTEGER, k VARCHAR);\nALTER TABLE t RENAME k TO kk;\nALTER TABLE t RENAME TO u;"
    snap = build_sql_snapshot([("d.sql", text)], dialect="duckdb")
    assert [c.name for c in snap.assets["u"].columns] == ["id", "kk"]
    assert snap.assets["u"].meta["renamed_from"] == "t"


def test_view_over_unknown_table_has_unknown_columns_and_reads_it_whole() -> None:
    snap = build_sql_snapshot([("v.sql", "CREATE VIEW s.v AS SELECT * FROM ext.events;")], dialect="postgres")
    assert not snap.assets["s.v"].columns_known
    assert snap.edges == [Edge("ext.events", None, "s.v", None, "star")]


def test_view_column_type_is_unknown_when_the_parent_column_is_not_known() -> None:
    snap = build_sql_snapshot([("v.sql", "CREATE VIEW s.v AS SELECT e.kind FROM ext.events e;")], dialect="postgres")
    assert _columns(snap.assets["s.v"]) == [("kind", UNKNOWN)]


def test_unterminated_string_in_a_file_never_crashes() -> None:
    snap = build_sql_snapshot([("bad.sql", "CREATE TABLE s.t (a int);\nSELECT 'oops")], dialect="postgres")
    assert snap.problems


def test_temporary_tables_are_not_assets() -> None:
    text = "CREATE TEMP TABLE tmp_x (id int);\nCREATE TEMPORARY TABLE tmp_y AS SELECT 1 AS a;\nCREATE TABLE s.t (a int);"
    assert list(build_sql_snapshot([("m.sql", text)], dialect="postgres").assets) == ["s.t"]


def test_create_table_like_or_clone_copies_the_columns() -> None:
    pg = build_sql_snapshot(
        [("m.sql", "CREATE TABLE s.base (id int PRIMARY KEY, a text);\nCREATE TABLE s.copy (LIKE s.base INCLUDING ALL);")],
        dialect="postgres",
    )
    assert _columns(pg.assets["s.copy"]) == [("id", "INT"), ("a", "TEXT")]
    sf = build_sql_snapshot(
        [("m.sql", "CREATE TABLE db.s.t (id int);\nCREATE TABLE db.s.t2 CLONE db.s.t;\nCREATE TABLE db.s.t3 CLONE db.s.gone;")],
        dialect="snowflake",
    )
    assert [c.name for c in sf.assets["db.s.t2"].columns] == ["id"]
    assert not sf.assets["db.s.t3"].columns_known


def test_function_bodies_and_constraint_renames_are_not_problems_but_do_blocks_are() -> None:
    text = (
        "CREATE TABLE s.base (id int PRIMARY KEY);\n"
        "ALTER TABLE s.base RENAME CONSTRAINT base_pkey TO base_pk;\n"
        "CREATE FUNCTION f() RETURNS trigger AS $$ BEGIN CREATE TABLE zzz (a int); RETURN NEW; END; $$ LANGUAGE plpgsql;\n"
        "DO $$ BEGIN ALTER TABLE s.base ADD COLUMN e int; END $$;\n"
    )
    snap = build_sql_snapshot([("m.sql", text)], dialect="postgres")
    assert [(p.line, p.message.split(":")[0]) for p in snap.problems] == [(4, "statement Tessera cannot analyse")]
    assert list(snap.assets) == ["s.base"]


def test_view_column_list_names_the_columns_and_projections_give_lines() -> None:
    text = (
        "CREATE TABLE s.t (a int, b text);\n"
        "\n"
        "CREATE VIEW s.v (x, y) AS\n"
        "SELECT\n"
        "  a,\n"
        "  upper(b) AS bb\n"
        "FROM s.t;\n"
    )
    snap = build_sql_snapshot([("m.sql", text)], dialect="postgres")
    view = snap.assets["s.v"]
    assert [(c.name, c.line) for c in view.columns] == [("x", 5), ("y", 6)]
    assert Edge("s.t", "b", "s.v", "y", "select") in snap.edges


def test_add_column_first_or_after_puts_it_in_place() -> None:
    text = (
        "CREATE TABLE s.t (a INT, b INT);\n"
        "ALTER TABLE s.t ADD COLUMN c INT AFTER a;\n"
        "ALTER TABLE s.t ADD COLUMNS (z STRING FIRST);\n"
    )
    t = build_sql_snapshot([("m.sql", text)], dialect="databricks").assets["s.t"]
    assert [(c.name, c.position) for c in t.columns] == [("z", 1), ("a", 2), ("c", 3), ("b", 4)]


def test_serial_and_identity_columns_have_a_default_so_they_are_never_required() -> None:
    text = (
        "CREATE TABLE s.t (id serial NOT NULL, big bigserial, n int GENERATED ALWAYS AS IDENTITY NOT NULL);"
    )
    t = build_sql_snapshot([("m.sql", text)], dialect="postgres").assets["s.t"]
    assert [(c.name, c.type, c.default) for c in t.columns] == [
        ("id", "INT", "serial"),
        ("big", "BIGINT", "serial"),
        ("n", "INT", "identity"),
    ]


def test_snowflake_swap_exchanges_the_two_tables() -> None:
    text = "create table s.a (x int);\ncreate table s.b (y text);\nalter table s.a swap with s.b;"
    snap = build_sql_snapshot([("m.sql", text)], dialect="snowflake")
    assert [c.name for c in snap.assets["s.a"].columns] == ["y"]
    assert [c.name for c in snap.assets["s.b"].columns] == ["x"]
    assert snap.assets["s.a"].line == 3


def test_checksum_changes_when_a_comment_changes_the_description() -> None:
    table = "CREATE TABLE s.t (a int);\n"
    one = build_sql_snapshot([("m.sql", table + "COMMENT ON COLUMN s.t.a IS 'one';")], dialect="postgres")
    two = build_sql_snapshot([("m.sql", table + "COMMENT ON COLUMN s.t.a IS 'two';")], dialect="postgres")
    assert one.assets["s.t"].checksum != two.assets["s.t"].checksum
