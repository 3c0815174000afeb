"""Consumer discovery end to end: a real PostgreSQL's pg_stat_statements, Snowflake and BigQuery
exports, a LookML project, Metabase and Tableau metadata; and what a PR then asks."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from app.check import main as check_main
from app.cli import main
from app.discovery.run import discover
from app.store import Store
from app.store import observed as observed_sql
from tests.pg import PostgresServer

DATA = Path(__file__).resolve().parents[1] / "data" / "discovery"
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)

SCHEMA = """
create extension if not exists pg_stat_statements;
create schema shop;
create table shop.orders (id int primary key, customer_id int, amount numeric, plan_code text, status text);
create table shop.customers (id int primary key, email text, region text);
insert into shop.customers values (1, 'a@x.com', 'EU'), (2, 'b@x.com', 'US');
insert into shop.orders values (1, 1, 10, 'pro', 'paid'), (2, 2, 20, 'free', 'open');
"""
ROLES = {
    "looker_finance": [
        "with paid as (select customer_id, amount, plan_code from shop.orders where status = 'paid')"
        " select plan_code, sum(amount) from paid group by plan_code",
        "select o.plan_code, count(*) from shop.orders o group by 1",
    ],
    "growth_analyst": [
        "select c.region, sum(o.amount) from shop.orders o join shop.customers c on c.id = o.customer_id group by 1",
        "select * from shop.customers where region = 'EU'",
    ],
    "ops_etl": [
        "select count(*) from shop.orders",
        "select id, status from shop.orders where status <> 'paid'",
    ],
}
CONFIG = """
teams:
  data: {github: acme/data}
  finance: {github: acme/finance, names: [Finance], warehouse_roles: [looker_finance]}
  growth: {github: acme/growth, warehouse_roles: [growth_analyst]}
  ops: {github: acme/ops, warehouse_roles: [ops_etl]}
"""
DDL = "create table shop.orders (id int primary key, customer_id int, amount numeric, plan_code text, status text);\n"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@x", "PATH": "/usr/bin:/bin"})


@pytest.fixture
def shop_db(postgres_server: PostgresServer) -> str:
    url = postgres_server.create_database("shop")
    postgres_server.psql(SCHEMA, database="shop")
    for role in ROLES:
        postgres_server.psql(
            f"drop role if exists {role}; create role {role} login;"
            f" grant usage on schema shop to {role}; grant select on all tables in schema shop to {role};",
            database="shop",
        )
    postgres_server.psql("select pg_stat_statements_reset()", database="shop")
    for role, queries in ROLES.items():
        for query in queries:
            postgres_server.psql(query, database="shop", user=role)
    return url


def discover_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    assert main(["discover", *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def warehouse_dropping_plan_code(tmp_path: Path) -> Path:
    """A repository whose last commit drops ``shop.orders.plan_code``, which looker_finance reads."""
    repo = tmp_path / "warehouse"
    repo.mkdir()
    (repo / ".tessera.yml").write_text(CONFIG)
    (repo / "CODEOWNERS").write_text("* @acme/data\n")
    (repo / "schema.sql").write_text(DDL)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    (repo / "schema.sql").write_text(DDL.replace(", plan_code text", ""))
    git(repo, "commit", "-qam", "drop plan_code")
    return repo


def test_discover_finds_each_postgres_roles_column_reads_and_a_pr_asks_exactly_the_reading_team(
    shop_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "tessera.db"
    monkeypatch.setenv("TESSERA_DB", str(store))
    found = discover_json([shop_db], capsys)
    reads = {(r["reader"]["name"], r["asset"]): set(r["columns"]) for r in found}  # type: ignore[index]
    assert reads == {
        ("looker_finance", "shop.orders"): {"customer_id", "amount", "plan_code", "status"},
        ("growth_analyst", "shop.orders"): {"amount", "customer_id"},
        ("growth_analyst", "shop.customers"): {"id", "email", "region"},  # select * from the live catalog
        ("ops_etl", "shop.orders"): {"id", "status"},
    }
    assert all(r["reader"]["kind"] == "role" and r["queries"] >= 1 for r in found)  # type: ignore[index]

    repo = warehouse_dropping_plan_code(tmp_path)
    code = check_main(["--repo", str(repo), "--base", "HEAD~1", "--format", "json", "--db", str(store)])
    result = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [a["team"] for a in result["required_acks"]] == ["finance"]
    assert result["required_acks"][0]["reasons"][0].startswith(
        "COLUMN_REMOVED on shop.orders.plan_code: read by 2 queries from role looker_finance in the last 30 days (Finance)"
    )
    assert [(i["consumer"], i["consumer_type"]) for i in result["impacts"]] == [("role looker_finance", "query")]

    # without the store the reader was never written down anywhere else: shop.orders' readers are
    # unknown, so the change is held for the maintainers rather than passing green
    assert check_main(["--repo", str(repo), "--base", "HEAD~1", "--format", "json"]) == 1
    unknown = json.loads(capsys.readouterr().out)
    assert [(a["team"], a["reason"]) for a in unknown["required_acks"]] == [("maintainers", "unknown_readers")]


def test_a_check_with_fresh_query_logs_passes_a_column_nobody_reads_and_says_so(
    shop_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "tessera.db"
    monkeypatch.setenv("TESSERA_DB", str(store))
    discover_json([shop_db], capsys)
    repo = tmp_path / "customers"
    repo.mkdir()
    (repo / ".tessera.yml").write_text(CONFIG)
    ddl = "create table shop.customers (id int primary key, email text, region text, legacy_code text);\n"
    (repo / "schema.sql").write_text(ddl)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    (repo / "schema.sql").write_text(ddl.replace(", legacy_code text", ""))
    git(repo, "commit", "-qam", "drop legacy_code")

    # growth_analyst reads shop.customers, never legacy_code, and the postgres log is fresh
    code = check_main(["--repo", str(repo), "--base", "HEAD~1", "--format", "json", "--db", str(store)])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["required_acks"] == []
    assert result["unread"] == ["no reads of shop.customers.legacy_code in the last 30 days (postgres query logs)"]

    # without the store nothing is known about its readers: held
    assert check_main(["--repo", str(repo), "--base", "HEAD~1", "--format", "json"]) == 1
    capsys.readouterr()


def test_a_check_reads_the_readers_a_postgresql_store_holds_and_asks_exactly_the_reading_team(
    shop_db: str, postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store_url = postgres_server.create_database("checkstore")
    monkeypatch.setenv("TESSERA_DATABASE_URL", store_url)
    discover_json([shop_db], capsys)
    repo = warehouse_dropping_plan_code(tmp_path)
    code = check_main(["--repo", str(repo), "--base", "HEAD~1", "--format", "json", "--db", store_url])
    result = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [a["team"] for a in result["required_acks"]] == ["finance"]
    assert [(i["consumer"], i["consumer_type"]) for i in result["impacts"]] == [("role looker_finance", "query")]


def test_a_second_postgres_run_counts_only_the_calls_made_since(
    shop_db: str, postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TESSERA_DB", str(tmp_path / "t.db"))
    discover_json([shop_db], capsys)
    assert discover_json([shop_db], capsys) == []
    postgres_server.psql("select o.plan_code, count(*) from shop.orders o group by 1", database="shop", user="looker_finance")
    again = discover_json([shop_db], capsys)
    assert [(r["reader"]["name"], r["queries"]) for r in again] == [("looker_finance", 1)]  # type: ignore[index]
    postgres_server.psql("select pg_stat_statements_reset()", database="shop")
    postgres_server.psql("select id, status from shop.orders where status <> 'open'", database="shop", user="ops_etl")
    after_reset = discover_json([shop_db], capsys)
    assert [(r["reader"]["name"], r["queries"]) for r in after_reset] == [("ops_etl", 1)]  # type: ignore[index]


def test_an_unreachable_database_is_a_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TESSERA_DB", str(tmp_path / "t.db"))
    assert main(["discover", "postgresql://nobody:secret@127.0.0.1:1/x"]) == 2
    err = capsys.readouterr().err
    assert "tessera discover: postgresql://nobody:***@127.0.0.1:1/x" in err and "secret" not in err


# --- exported logs -------------------------------------------------------------------------------


async def run_discover(tmp_path: Path, source: Path, kind: str) -> tuple[object, list[dict[str, object]]]:
    async with Store(tmp_path / "t.db") as store:
        result = await discover(store, str(source), kind, now=NOW)
        rows = await store.read(lambda db: observed_sql.list_observed(db, today=NOW.date()))
        runs = await store.read(observed_sql.last_runs)
    return result, rows + [{"runs": runs}]


def by_reader(rows: list[dict[str, object]]) -> dict[tuple[str, str], tuple[set[str], bool]]:
    return {
        (r["reader"]["name"], r["asset"]): (set(r["columns"]), bool(r["every_column"]))  # type: ignore[index,arg-type]
        for r in rows if "reader" in r
    }


def test_snowflake_export_uses_access_history_columns_and_parses_the_rest(tmp_path: Path) -> None:
    result, rows = asyncio.run(run_discover(tmp_path, DATA / "snowflake_query_history.csv", "snowflake"))
    reads = by_reader(rows)
    assert reads[("LOOKER_FINANCE", "analytics.marts.fct_revenue")] == (
        {"plan_code", "revenue", "booked_at", "region"}, False)
    assert reads[("FINANCE_ADHOC", "analytics.marts.fct_revenue")] == ({"plan_code", "revenue", "customer_id"}, False)
    assert reads[("GROWTH_ANALYST", "analytics.marts.dim_customers")] == ({"segment", "customer_id", "region"}, True)
    assert reads[("DATA_ENG", "analytics.staging.stg_orders")] == ({"customer_id", "amount", "status"}, False)
    assert reads[("DATA_ENG", "analytics.marts.fct_revenue")] == ({"customer_id", "revenue"}, False)  # its CTAS
    assert not any(name == "ACCOUNTADMIN" for name, _ in reads)  # SHOW TABLES reads no data
    counts = result.counts  # type: ignore[attr-defined]
    assert (counts.rows, counts.unparsed, counts.malformed) == (297, 6, 3)
    assert any("SELECT FROM WHERE" in e for e in counts.examples)
    assert rows[-1]["runs"][0]["unparsed"] == 6  # type: ignore[index]


def test_snowflake_rerun_skips_what_the_watermark_says_was_read(tmp_path: Path) -> None:
    asyncio.run(run_discover(tmp_path, DATA / "snowflake_query_history.csv", "snowflake"))
    again, rows = asyncio.run(run_discover(tmp_path, DATA / "snowflake_query_history.csv", "snowflake"))
    assert again.reads == () and again.counts.skipped == again.counts.rows  # type: ignore[attr-defined]
    finance = next(r for r in rows if r.get("reader") == {"kind": "role", "name": "LOOKER_FINANCE"})
    assert finance["queries"] == 97  # counted once, not twice


def test_bigquery_jobs_read_by_user_with_referenced_tables_when_the_text_fails(tmp_path: Path) -> None:
    result, rows = asyncio.run(run_discover(tmp_path, DATA / "bigquery_jobs.jsonl", "bigquery"))
    reads = by_reader(rows)
    bot = "finance-bot@acme-prod.iam.gserviceaccount.com"
    assert reads[(bot, "acme-prod.marts.fct_revenue")] == ({"plan_code", "revenue", "booked_at", "region"}, False)
    assert reads[("ana@acme.com", "acme-prod.marts.fct_revenue")] == ({"customer_id", "region", "booked_at"}, False)
    assert reads[("ana@acme.com", "acme-prod.marts.dim_customers")] == ({"customer_id", "segment"}, True)
    assert reads[("ops@acme.com", "acme-prod.marts.fct_revenue")] == (set(), True)  # the unparsed one
    counts = result.counts  # type: ignore[attr-defined]
    assert counts.unparsed == 5 and counts.malformed == 3


def test_warehouse_names_become_the_registrys_fqns(tmp_path: Path) -> None:
    async def scenario() -> list[dict[str, object]]:
        async with Store(tmp_path / "t.db") as store:
            await store.write(lambda db: db.execute(
                "INSERT INTO assets (repo, fqn, kind, relation, source, synced_at)"
                " VALUES ('acme/dbt', 'fct_revenue', 'model', 'analytics.marts.fct_revenue', 'dbt', 0)"))
            await discover(store, str(DATA / "snowflake_query_history.csv"), "snowflake", now=NOW)
            return await store.read(lambda db: observed_sql.list_observed(db, today=NOW.date()))

    assets = {r["asset"] for r in asyncio.run(scenario())}
    assert assets == {"fct_revenue", "analytics.marts.dim_customers", "analytics.staging.stg_orders"}


def test_jsonl_log_with_bad_lines_counts_them_and_keeps_going(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(
        '{"query": "select amount from shop.orders", "user": "u1", "role": "R", "time": "2026-11-30T10:00:00Z"}\n'
        "not json\n"
        '{"query": "select amount from shop.orders", "user": "u1", "time": "never"}\n'
        '["a list"]\n'
        '{"query": "select ((( from", "user": "u2", "time": 1764500000}\n'
    )
    result, rows = asyncio.run(run_discover(tmp_path, log, "jsonl"))
    assert by_reader(rows) == {("R", "shop.orders"): ({"amount"}, False)}
    counts = result.counts  # type: ignore[attr-defined]
    assert (counts.unparsed, counts.malformed) == (1, 3)


# --- BI tools ------------------------------------------------------------------------------------


def test_lookml_explores_read_their_views_tables_columns_and_derived_tables(tmp_path: Path) -> None:
    project = tmp_path / "finance_looker"
    shutil.copytree(DATA / "lookml", project)
    result, rows = asyncio.run(run_discover(tmp_path, project, "lookml"))
    reads = by_reader(rows)
    assert reads[("looker explore finance.revenue", "analytics.marts.fct_revenue")] == (
        {"plan_code", "revenue", "booked_at", "customer_id", "region"}, False)
    assert reads[("looker explore finance.revenue", "analytics.marts.dim_customers")] == (
        {"customer_id", "segment"}, False)
    assert reads[("looker explore finance.big_spenders", "analytics.marts.fct_revenue")] == (
        {"customer_id", "revenue", "booked_at"}, False)
    assert {r["folder"] for r in rows if "reader" in r} == {"finance_looker"}
    assert result.counts.malformed == 1  # type: ignore[attr-defined]  # broken.view.lkml


def test_metabase_and_tableau_exports_become_bi_consumers_in_their_folders(tmp_path: Path) -> None:
    _, metabase = asyncio.run(run_discover(tmp_path, DATA / "metabase_cards.json", "metabase"))
    reads = by_reader(metabase)
    assert reads[("metabase card 12 Revenue by plan", "marts.fct_revenue")] == ({"plan_code", "revenue"}, False)
    assert reads[("metabase card 13 EU customers", "marts.dim_customers")] == ({"region", "email"}, False)
    _, tableau = asyncio.run(run_discover(tmp_path, DATA / "tableau_metadata.json", "tableau"))
    reads = by_reader(tableau)
    assert reads[("tableau workbook Board pack", "analytics.marts.fct_revenue")] == ({"revenue", "region"}, False)
    assert {(r["reader"]["name"], r["folder"]) for r in tableau if "reader" in r and r["source"] == "tableau"} == {
        ("tableau workbook Board pack", "Finance"), ("tableau datasource Customers", None)}


@pytest.mark.parametrize(
    ("kind", "header", "row"),
    [
        ("databricks", "statement_id,executed_by,statement_text,start_time,execution_status",
         's1,ana@acme.com,"SELECT region, revenue FROM main.marts.fct_revenue",2026-11-30T10:00:00.000Z,FINISHED'),
        ("redshift", "query_id,user_name,query_text,start_time,database_name,status",
         '7,ana@acme.com,"select region, revenue from marts.fct_revenue",2026-11-30 10:00:00.123,main,success'),
        ("redshift", "query,usename,querytxt,starttime,database",
         '7,ana@acme.com,"select region, revenue from marts.fct_revenue",2026-11-30 10:00:00,main'),
    ],
)
def test_databricks_and_redshift_system_table_exports_read_by_user(tmp_path: Path, kind: str, header: str, row: str) -> None:
    export = tmp_path / "history.csv"
    export.write_text(f"{header}\n{row}\n")
    result, rows = asyncio.run(run_discover(tmp_path, export, kind))
    assert by_reader(rows) == {("ana@acme.com", "main.marts.fct_revenue"): ({"region", "revenue"}, False)}


def test_a_pg_stat_statements_csv_export_counts_calls_per_role(tmp_path: Path) -> None:
    export = tmp_path / "pgss.csv"
    export.write_text('rolname,calls,query\nlooker_finance,41,"select plan_code from shop.orders where id = $1"\n')
    _, rows = asyncio.run(run_discover(tmp_path, export, "postgres"))
    assert [(r["reader"]["name"], r["asset"], r["columns"], r["queries"]) for r in rows if "reader" in r] == [
        ("looker_finance", "shop.orders", ["id", "plan_code"], 41)]


def test_a_missing_export_or_an_unclear_source_is_a_usage_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TESSERA_DB", str(tmp_path / "t.db"))
    assert main(["discover", str(tmp_path / "nothing.csv"), "--kind", "snowflake"]) == 2
    assert "nothing.csv: no such file or folder" in capsys.readouterr().err
    (tmp_path / "export.csv").write_text("a,b\n1,2\n")
    assert main(["discover", str(tmp_path / "export.csv")]) == 2
    assert "pass --kind" in capsys.readouterr().err


def test_a_csv_export_saved_with_a_byte_order_mark_is_read_by_its_header(tmp_path: Path) -> None:
    export = tmp_path / "history.csv"
    export.write_bytes("QUERY_TEXT,USER_NAME,ROLE_NAME,START_TIME\n"
                       "select amount from shop.orders,ANA,ANALYST,2026-11-30 10:00:00\n".encode("utf-8-sig"))
    result, rows = asyncio.run(run_discover(tmp_path, export, "snowflake"))
    assert by_reader(rows) == {("ANALYST", "shop.orders"): ({"amount"}, False)}


def test_a_json_array_export_too_large_to_read_whole_asks_for_json_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.discovery.logs.MAX_JSON_ARRAY", 100)
    export = tmp_path / "jobs.json"
    export.write_text(json.dumps([{"query": "select a from t", "user_email": "u", "creation_time": "2026-11-30"}] * 5))
    result, rows = asyncio.run(run_discover(tmp_path, export, "bigquery"))
    assert result.counts.malformed == 1 and "export JSON lines" in result.counts.examples[0]  # type: ignore[attr-defined]
    small = tmp_path / "small" / "jobs.json"
    small.parent.mkdir()
    monkeypatch.setattr("app.discovery.logs.MAX_JSON_ARRAY", 10_000)
    small.write_text(export.read_text())
    _, rows = asyncio.run(run_discover(tmp_path / "small", small, "bigquery"))
    assert by_reader(rows) == {("u", "t"): ({"a"}, False)}


def test_check_db_refuses_a_url_or_a_file_that_is_not_a_store_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "schema.sql").write_text(DDL)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    not_a_store = tmp_path / "notes.txt"
    not_a_store.write_text("hello " * 200)
    for db, message in [("postgresql://x:secret@127.0.0.1:1/tessera", "postgresql://x:***@127.0.0.1:1/tessera: cannot connect"),
                        ("mysql://x@db/tessera", "give a SQLite store file or a postgresql:// URL"),
                        (str(tmp_path / "missing.db"), "no such store file"),
                        (str(not_a_store), "not a Tessera store")]:
        assert check_main(["--repo", str(repo), "--base", "HEAD", "--db", db]) == 2
        assert message in capsys.readouterr().err
