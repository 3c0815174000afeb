"""Snowflake (SQL API v2, key-pair JWT) and BigQuery (jobs.query, service-account OAuth) read live
over HTTP, against fakes written from the vendors' documented requests and answers, serving the
same documented history the export tests read: the readers found, the watermark moving, and
refused keys, failed statements and pages lost half-way told plainly with nothing recorded."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.cli import main
from app.discovery import bigquery, snowflake
from app.discovery.run import DiscoveryError, discover, source_key
from app.discovery.schedule import run_round
from app.store import Store
from app.store import observed as observed_sql
from tests.fakebigquery import FIELDS, FakeBigQuery, error_answer
from tests.fakesnowflake import FakeSnowflake, requests_to

DATA = Path(__file__).resolve().parents[1] / "data" / "discovery"
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
BOT = "finance-bot@acme-prod.iam.gserviceaccount.com"
ACCOUNT = "tessera-discovery@acme-prod.iam.gserviceaccount.com"


def pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture(scope="module")
def keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    """The key the warehouse knows, and one it does not."""
    return (rsa.generate_private_key(public_exponent=65537, key_size=2048),
            rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture
async def fake_snowflake(keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]) -> AsyncIterator[FakeSnowflake]:
    fake = FakeSnowflake(partition_rows=50, running_polls=2)
    fake.add_user("TESSERA_SVC", keys[0].public_key())
    fake.load_csv(DATA / "snowflake_query_history.csv")
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def fake_bigquery(keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]) -> AsyncIterator[FakeBigQuery]:
    fake = FakeBigQuery(running_polls=1)
    await fake.start()
    fake.add_service_account(ACCOUNT, keys[0].public_key(), projects={"acme-prod"})
    fake.load_jsonl(DATA / "bigquery_jobs.jsonl")
    yield fake
    await fake.stop()


def snowflake_url(fake: FakeSnowflake, key_file: Path, **extra: str) -> str:
    options = "&".join(f"{k}={v}" for k, v in {"private_key_file": key_file, "endpoint": fake.url,
                                               "warehouse": "ADMIN_WH", "role": "DISCOVERY", **extra}.items())
    return f"snowflake://tessera_svc@acme-prod?{options}"


def service_account(tmp_path: Path, fake: FakeBigQuery, key: rsa.RSAPrivateKey) -> Path:
    path = tmp_path / "sa.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "acme-prod", "private_key_id": "3f2a", "private_key": pem(key).decode(),
        "client_email": ACCOUNT, "client_id": "1099", "token_uri": fake.token_uri,
    }))
    return path


async def run(tmp_path: Path, source: str, *, now: dt.datetime = NOW) -> tuple[Any, dict[tuple[str, str], Any]]:
    async with Store(tmp_path / "t.db") as store:
        result = await discover(store, source, now=now)
        rows = await store.read(lambda db: observed_sql.list_observed(db, today=now.date(), window_days=60))
    return result, {(r["reader"]["name"], r["asset"]): r for r in rows}


async def state_of(tmp_path: Path, source: str) -> dict[str, Any]:
    async with Store(tmp_path / "t.db") as store:
        return await store.read(lambda db: observed_sql.watermark(db, source_key(source)))


def columns(found: dict[tuple[str, str], Any], reader: str, asset: str) -> tuple[set[str], bool]:
    row = found[reader, asset]
    return set(row["columns"]), row["every_column"]


# --- Snowflake ------------------------------------------------------------------------------------


async def test_snowflake_sql_api_finds_each_roles_column_reads_and_moves_the_watermark(
    fake_snowflake: FakeSnowflake, keys: Any, tmp_path: Path
) -> None:
    key_file = tmp_path / "rsa_key.p8"
    key_file.write_bytes(pem(keys[0]))
    source = snowflake_url(fake_snowflake, key_file)
    result, found = await run(tmp_path, source)

    assert columns(found, "LOOKER_FINANCE", "analytics.marts.fct_revenue") == (
        {"plan_code", "revenue", "booked_at", "region"}, False)
    assert columns(found, "FINANCE_ADHOC", "analytics.marts.fct_revenue") == ({"plan_code", "revenue", "customer_id"}, False)
    assert columns(found, "GROWTH_ANALYST", "analytics.marts.dim_customers") == ({"segment", "customer_id", "region"}, True)
    assert columns(found, "DATA_ENG", "analytics.staging.stg_orders") == ({"customer_id", "amount", "status"}, False)
    assert not any(name == "ACCOUNTADMIN" for name, _ in found)
    assert result.counts.rows == len([r for r in fake_snowflake.history if r["EXECUTION_STATUS"] == "SUCCESS"])
    assert result.counts.malformed == 0  # the failed statements (the unparsable ones) are not asked for

    [submitted] = requests_to(fake_snowflake, "POST", "/api/v2/statements")
    assert submitted.headers["X-Snowflake-Authorization-Token-Type"] == "KEYPAIR_JWT"
    assert (submitted.body["warehouse"], submitted.body["role"]) == ("ADMIN_WH", "DISCOVERY")
    assert submitted.body["bindings"]["2"] == {"type": "TEXT", "value": (NOW - snowflake.LATENCY).isoformat(
        timespec="microseconds")}
    fetched = [r.query.get("partition") for r in requests_to(fake_snowflake, "GET", "/api/v2/statements/*")]
    assert fetched == [None, None, "1", "2", "3", "4", "5"]  # two polls while it ran, then partitions 2..6
    assert (await state_of(tmp_path, source))["newest"] == (NOW - snowflake.LATENCY).isoformat()

    # a day later: only what started since the watermark is read, and adds to the counts
    looker_before = found["LOOKER_FINANCE", "analytics.marts.fct_revenue"]["queries"]
    fake_snowflake.history.append({
        "QUERY_ID": "01b0ffff-0000-0001", "QUERY_TEXT": "select plan_code from analytics.marts.fct_revenue",
        "USER_NAME": "LOOKER_SVC", "ROLE_NAME": "LOOKER_FINANCE", "EXECUTION_STATUS": "SUCCESS",
        "START_TIME": NOW + dt.timedelta(hours=2), "DATABASE_NAME": "ANALYTICS", "SCHEMA_NAME": "MARTS",
        "DIRECT_OBJECTS_ACCESSED": None})
    later = NOW + dt.timedelta(days=1)
    again, found = await run(tmp_path, source, now=later)
    assert again.counts.rows == 1 and again.counts.skipped == 0
    assert found["LOOKER_FINANCE", "analytics.marts.fct_revenue"]["queries"] == looker_before + 1
    second = list(requests_to(fake_snowflake, "POST", "/api/v2/statements"))[-1]
    assert second.body["bindings"]["1"]["value"] == (NOW - snowflake.LATENCY).isoformat(timespec="microseconds")
    assert (await state_of(tmp_path, source))["newest"] == (later - snowflake.LATENCY).isoformat()


async def test_a_key_snowflake_does_not_know_is_refused_naming_the_fingerprint_and_nothing_is_recorded(
    fake_snowflake: FakeSnowflake, keys: Any, tmp_path: Path
) -> None:
    key_file = tmp_path / "other.p8"
    key_file.write_bytes(pem(keys[1]))
    source = snowflake_url(fake_snowflake, key_file)
    with pytest.raises(DiscoveryError) as refused:
        await run(tmp_path, source)
    message = str(refused.value)
    assert "Snowflake refused the key-pair JWT of tessera_svc on acme-prod (HTTP 401 390144 JWT token is invalid.)" in message
    assert snowflake.fingerprint(keys[1]) in message and "RSA_PUBLIC_KEY" in message
    assert await state_of(tmp_path, source) == {}


async def test_a_partition_lost_half_way_records_nothing_and_the_next_run_reads_the_window_again(
    fake_snowflake: FakeSnowflake, keys: Any, tmp_path: Path
) -> None:
    fake_snowflake.running_polls = 0
    fake_snowflake.script("GET", "/api/v2/statements/*", (503, {"code": "000610", "message": "Service unavailable."}))
    key_file = tmp_path / "rsa_key.p8"
    key_file.write_bytes(pem(keys[0]))
    source = snowflake_url(fake_snowflake, key_file)
    with pytest.raises(DiscoveryError) as lost:
        await run(tmp_path, source)
    assert "partition 2 of 6: Snowflake is busy (HTTP 503 Service unavailable.)" in str(lost.value)
    assert "after 50 rows; nothing recorded, the next run reads the same window again" in str(lost.value)
    assert await state_of(tmp_path, source) == {}
    _, found = await run(tmp_path, source)  # the fault is gone: the same window, read whole
    assert found["LOOKER_FINANCE", "analytics.marts.fct_revenue"]["queries"] > 0


async def test_a_role_without_account_usage_gets_the_grant_it_needs(
    fake_snowflake: FakeSnowflake, keys: Any, tmp_path: Path
) -> None:
    fake_snowflake.script("POST", "/api/v2/statements", (422, {
        "code": "002003", "sqlState": "02000", "statementHandle": "01b1",
        "message": "SQL compilation error:\nSchema 'SNOWFLAKE.ACCOUNT_USAGE' does not exist or not authorized."}))
    key_file = tmp_path / "rsa_key.p8"
    key_file.write_bytes(pem(keys[0]))
    with pytest.raises(DiscoveryError, match="the statement failed: 002003 SQL compilation error: Schema"
                       " 'SNOWFLAKE.ACCOUNT_USAGE' does not exist or not authorized. \\(the role needs IMPORTED"
                       " PRIVILEGES on the SNOWFLAKE database\\)"):
        await run(tmp_path, snowflake_url(fake_snowflake, key_file))


@pytest.mark.parametrize(("url", "message"), [
    ("snowflake://acme-prod", "a Snowflake source is snowflake://USER@ACCOUNT?private_key_file=PATH"),
    ("snowflake://svc@acme-prod", "no private key file: add ?private_key_file=PATH"),
    ("snowflake://svc@acme-prod?private_key_file=/nonexistent/k.p8", "cannot read the private key file"),
    ("snowflake://svc@acme-prod?private_key_file={junk}", "not a PEM private key"),
    ("snowflake://svc@acme-prod?private_key_file={key}&endpoint=http://snowflake.example.com",
     "tokens are sent only over https"),
    ("snowflake://svc@acme-prod?private_key_file={key}&days=0", "days must be a whole number from 1 to 3660"),
    ("bigquery://acme-prod", "a BigQuery source is bigquery://PROJECT/REGION?credentials=KEY.json"),
    ("bigquery://acme-prod/us", "no credentials file: add ?credentials=KEY.json"),
    ("bigquery://acme-prod/us?credentials={junk}", "not a JSON key file"),
    ("bigquery://acme-prod/us?credentials={user_creds}", "not a service account key file"),
    ("bigquery://acme-prod/us;drop?credentials={junk}", "letters, digits and hyphens only"),
])
def test_a_live_source_url_missing_what_it_needs_says_what_to_add(
    url: str, message: str, keys: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "junk").write_text("not a key")
    (tmp_path / "key.p8").write_bytes(pem(keys[0]))
    (tmp_path / "user.json").write_text(json.dumps({"type": "authorized_user", "refresh_token": "x"}))
    monkeypatch.setenv("TESSERA_DB", str(tmp_path / "t.db"))
    url = url.format(junk=tmp_path / "junk", key=tmp_path / "key.p8", user_creds=tmp_path / "user.json")
    assert main(["discover", url]) == 2
    assert message in capsys.readouterr().err


async def test_tessera_discover_reads_snowflake_live_and_prints_the_consumers(
    fake_snowflake: FakeSnowflake, keys: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key_file = tmp_path / "rsa_key.p8"
    key_file.write_bytes(pem(keys[0]))
    monkeypatch.setenv("TESSERA_DB", str(tmp_path / "t.db"))
    url = snowflake_url(fake_snowflake, key_file)
    # the command runs its own event loop: in a thread, while the fake answers on this one
    assert await asyncio.to_thread(main, ["discover", url, "--format", "json"]) == 0
    captured = capsys.readouterr()
    looker = [r for r in json.loads(captured.out) if r["reader"] == {"kind": "role", "name": "LOOKER_FINANCE"}]
    assert {r["asset"] for r in looker} >= {"analytics.marts.fct_revenue"}
    assert "snowflake snowflake://tessera_svc@acme-prod?" in captured.err and "queries not parsed" in captured.err


# --- BigQuery -------------------------------------------------------------------------------------


async def test_bigquery_jobs_query_finds_each_users_reads_page_by_page_and_moves_the_watermark(
    fake_bigquery: FakeBigQuery, keys: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bigquery, "PAGE_ROWS", 40)
    source = (f"bigquery://acme-prod/us?credentials={service_account(tmp_path, fake_bigquery, keys[0])}"
              f"&endpoint={fake_bigquery.url}")
    result, found = await run(tmp_path, source)

    assert columns(found, BOT, "acme-prod.marts.fct_revenue") == ({"plan_code", "revenue", "booked_at", "region"}, False)
    assert columns(found, "ana@acme.com", "acme-prod.marts.fct_revenue") == ({"customer_id", "region", "booked_at"}, False)
    assert columns(found, "ana@acme.com", "acme-prod.marts.dim_customers") == ({"customer_id", "segment"}, True)
    assert columns(found, "ops@acme.com", "acme-prod.marts.fct_revenue") == (set(), True)  # unparsed: referenced_tables
    assert result.counts.malformed == 0 and result.counts.unparsed > 0
    served = [j for j in fake_bigquery.jobs if j.get("job_type") == "QUERY" and j.get("state") == "DONE"
              and not j.get("error_result") and j.get("statement_type") != "SCRIPT"]
    assert result.counts.rows == len(served)

    token_request = next(r for r in fake_bigquery.requests if r[1] == "/token")
    assert token_request[3]["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    query = next(r for r in fake_bigquery.requests if r[0] == "POST" and r[1].endswith("/queries"))[3]
    assert "`region-us`.INFORMATION_SCHEMA.JOBS" in query["query"] and query["location"] == "US"
    pages = [r[2].get("pageToken") for r in fake_bigquery.requests if r[0] == "GET"]
    assert pages == [None] + [str(n) for n in range(40, len(served), 40)]  # one wait, then page by page
    assert (await state_of(tmp_path, source))["newest"] == (NOW - bigquery.LATENCY).isoformat()

    fake_bigquery.jobs.append({"job_id": "bquxjob_new", "creation_time": NOW + dt.timedelta(hours=1),
                               "user_email": "ana@acme.com", "query": "select segment from marts.dim_customers",
                               "project_id": "acme-prod", "referenced_tables": [], "job_type": "QUERY",
                               "statement_type": "SELECT", "state": "DONE"})
    again, found = await run(tmp_path, source, now=NOW + dt.timedelta(days=1))
    assert again.counts.rows == 1
    assert found["ana@acme.com", "acme-prod.marts.dim_customers"]["queries"] > 0
    assert (await state_of(tmp_path, source))["newest"] == (NOW + dt.timedelta(days=1) - bigquery.LATENCY).isoformat()


async def test_a_service_account_google_does_not_know_is_refused_plainly(
    fake_bigquery: FakeBigQuery, keys: Any, tmp_path: Path
) -> None:
    source = (f"bigquery://acme-prod/us?credentials={service_account(tmp_path, fake_bigquery, keys[1])}"
              f"&endpoint={fake_bigquery.url}")
    with pytest.raises(DiscoveryError) as refused:
        await run(tmp_path, source)
    assert f"Google refused the service account {ACCOUNT} (HTTP 400 invalid_grant: Invalid JWT Signature.)" in str(
        refused.value)
    assert await state_of(tmp_path, source) == {}


async def test_a_project_the_account_may_not_read_names_the_roles_it_needs(
    fake_bigquery: FakeBigQuery, keys: Any, tmp_path: Path
) -> None:
    source = (f"bigquery://acme-staging/eu?credentials={service_account(tmp_path, fake_bigquery, keys[0])}"
              f"&endpoint={fake_bigquery.url}")
    with pytest.raises(DiscoveryError, match="BigQuery refused tessera-discovery@acme-prod.iam.gserviceaccount.com"
                       " \\(HTTP 403 Access Denied: Project acme-staging"):
        await run(tmp_path, source)


async def test_a_bigquery_page_lost_half_way_records_nothing(
    fake_bigquery: FakeBigQuery, keys: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bigquery, "PAGE_ROWS", 100)
    fake_bigquery.running_polls = 0
    fake_bigquery.script("GET", "/bigquery/v2/projects/*/queries/*", error_answer(500, "backendError", "INTERNAL",
                                                                             "An internal error occurred."))
    source = (f"bigquery://acme-prod/us?credentials={service_account(tmp_path, fake_bigquery, keys[0])}"
              f"&endpoint={fake_bigquery.url}")
    with pytest.raises(DiscoveryError) as lost:
        await run(tmp_path, source)
    assert "jobs.getQueryResults (page 2): HTTP 500 INTERNAL An internal error occurred. after 100 rows" in str(lost.value)
    assert await state_of(tmp_path, source) == {}
    async with Store(tmp_path / "t.db") as store:
        assert await store.read(lambda db: observed_sql.list_observed(db, today=NOW.date())) == []


async def test_the_apps_schedule_reads_bigquery_live_and_keeps_a_refused_snowflake_keys_error(
    fake_bigquery: FakeBigQuery, fake_snowflake: FakeSnowflake, keys: Any, tmp_path: Path, store: Any
) -> None:
    other = tmp_path / "other.p8"
    other.write_bytes(pem(keys[1]))
    refused = snowflake_url(fake_snowflake, other)
    live = (f"bigquery://acme-prod/us?credentials={service_account(tmp_path, fake_bigquery, keys[0])}"
            f"&endpoint={fake_bigquery.url}")
    outcome = await run_round(store, [refused, live], now=NOW)
    assert outcome[source_key(live)] is None
    assert "Snowflake refused the key-pair JWT of tessera_svc" in (outcome[source_key(refused)] or "")
    runs = {r["source"]: r for r in await store.read(observed_sql.last_runs)}
    assert "refused the key-pair JWT" in runs[source_key(refused)]["error"]
    assert runs[source_key(live)]["rows"] > 0 and runs[source_key(live)]["malformed"] == 0
    # the refused log was not read: it cannot vouch that nobody reads a column
    assert [c.kind for c in await store.read(observed_sql.coverage)] == ["bigquery"]
    rows = await store.read(lambda db: observed_sql.list_observed(db, today=NOW.date(), team=None))
    assert {r["reader"]["name"] for r in rows} >= {BOT, "ana@acme.com"}


def test_a_snowflake_url_names_the_user_and_account_as_the_jwt_needs_them(keys: Any, tmp_path: Path) -> None:
    key_file = tmp_path / "k.p8"
    key_file.write_bytes(pem(keys[0]))
    named = snowflake.parse_url(f"snowflake://ana%40acme.com@myorg-analytics?private_key_file={key_file}")
    assert (named.user, named.jwt_account, named.base_url) == (
        "ana@acme.com", "MYORG-ANALYTICS", "https://myorg-analytics.snowflakecomputing.com")
    located = snowflake.parse_url(f"snowflake://svc@xy12345.us-east-1?private_key_file={key_file}&days=7")
    assert (located.jwt_account, located.days) == ("XY12345", 7)
    claims = jwt.decode(snowflake.key_pair_jwt(located, now=1_700_000_000), options={"verify_signature": False})
    assert claims == {"iss": f"XY12345.SVC.{snowflake.fingerprint(keys[0])}", "sub": "XY12345.SVC",
                      "iat": 1_700_000_000, "exp": 1_700_000_000 + snowflake.JWT_LIFETIME}


async def test_a_bigquery_answer_short_of_the_rows_it_announced_records_nothing(
    fake_bigquery: FakeBigQuery, keys: Any, tmp_path: Path
) -> None:
    one_row = {"f": [{"v": "j1"}, {"v": str(int(NOW.timestamp() * 1e6) - 3_600_000_000)}, {"v": "ana@acme.com"},
                     {"v": "select segment from marts.dim_customers"}, {"v": "acme-prod"}, {"v": []},
                     {"v": "QUERY"}, {"v": "SELECT"}]}
    fake_bigquery.script("POST", "/bigquery/v2/projects/*/queries", web.json_response({
        "kind": "bigquery#queryResponse", "schema": {"fields": FIELDS}, "totalRows": "120", "rows": [one_row],
        "jobReference": {"projectId": "acme-prod", "jobId": "job_short", "location": "US"}, "jobComplete": True}))
    source = (f"bigquery://acme-prod/us?credentials={service_account(tmp_path, fake_bigquery, keys[0])}"
              f"&endpoint={fake_bigquery.url}")
    with pytest.raises(DiscoveryError, match="BigQuery gave 1 of the 120 rows it announced; nothing recorded"):
        await run(tmp_path, source)
    assert await state_of(tmp_path, source) == {}
