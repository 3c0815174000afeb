"""Snowflake, live, over the SQL API v2 (``POST /api/v2/statements``): no driver needed.

``snowflake://USER@ACCOUNT?private_key_file=PATH[&warehouse=WH][&role=ROLE][&days=30]``: USER is
a Snowflake user with an RSA public key set (``ALTER USER … SET RSA_PUBLIC_KEY``) and a role that
can read the ``SNOWFLAKE`` database's ``ACCOUNT_USAGE`` (``IMPORTED PRIVILEGES``); ACCOUNT is the
account identifier (``myorg-myaccount``, or a locator ``xy12345.us-east-1``).

Each request carries a key-pair JWT (RS256; issuer ``ACCOUNT.USER.SHA256:<public key
fingerprint>``, subject ``ACCOUNT.USER``, an hour at most). The statement joins
``QUERY_HISTORY`` to ``ACCESS_HISTORY`` (whose column lists are used as recorded, the text parsed
otherwise) for the queries that started after the watermark and at least
:data:`LATENCY` ago (``ACCESS_HISTORY`` is filled up to three hours late, so a newer window would
miss rows that arrive later). A statement still running answers 202 and is polled; a result in
several partitions is fetched one partition at a time (``?partition=N``) and streamed into the
aggregator, so memory holds one partition.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import aiohttp
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.discovery import logs
from app.discovery.aggregate import Malformed, QueryRow
from app.discovery.warehouse_api import (
    SourceError,
    call,
    days_option,
    endpoint,
    iso,
    option,
    read_file,
    rsa_key,
    short,
)

SCHEME = "snowflake://"
LATENCY = dt.timedelta(hours=3)
"""``ACCESS_HISTORY``'s documented latency: queries newer than this are read by a later run."""
STATEMENT_TIMEOUT = 600
"""Seconds Snowflake may run the statement (the body's ``timeout``)."""
MAX_WAIT = 900.0
"""Seconds a run polls a statement still running before it gives up."""
JWT_LIFETIME = 3540

STATEMENT = """
SELECT q.QUERY_ID, q.QUERY_TEXT, q.USER_NAME, q.ROLE_NAME, q.START_TIME, q.DATABASE_NAME, q.SCHEMA_NAME,
       a.DIRECT_OBJECTS_ACCESSED
FROM SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY q
LEFT JOIN SNOWFLAKE.ACCOUNT_USAGE.ACCESS_HISTORY a ON a.QUERY_ID = q.QUERY_ID
WHERE q.START_TIME > TO_TIMESTAMP_LTZ(?) AND q.START_TIME <= TO_TIMESTAMP_LTZ(?)
  AND q.EXECUTION_STATUS = 'SUCCESS'
ORDER BY q.START_TIME
"""


@dataclass(frozen=True)
class Account:
    """Where and as whom the SQL API is called."""

    account: str
    user: str
    key: rsa.RSAPrivateKey
    base_url: str
    warehouse: str | None
    role: str | None
    days: int

    @property
    def jwt_account(self) -> str:
        """The account as the JWT names it: upper case, without a locator's region."""
        return self.account.split(".", 1)[0].upper()


def is_snowflake_url(source: str) -> bool:
    return source.startswith(SCHEME)


def parse_url(url: str) -> Account:
    parts = urlsplit(url)
    options = parse_qs(parts.query)
    if not parts.hostname or not parts.username:
        raise SourceError("a Snowflake source is snowflake://USER@ACCOUNT?private_key_file=PATH"
                          " (optional: warehouse, role, days)")
    account = parts.hostname
    path = option(options, "private_key_file")
    pem = read_file(path, "private key file",
                    "add ?private_key_file=PATH, the PEM key whose public half is the user's RSA_PUBLIC_KEY")
    return Account(
        account=account,
        user=unquote(parts.username),
        key=rsa_key(pem, str(path)),
        base_url=endpoint(options, f"https://{quote(account, safe='.-_')}.snowflakecomputing.com"),
        warehouse=option(options, "warehouse"),
        role=option(options, "role"),
        days=days_option(options),
    )


def fingerprint(key: rsa.RSAPrivateKey) -> str:
    """``SHA256:`` and the base64 SHA-256 of the public key's DER, as ``DESC USER`` shows it."""
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def key_pair_jwt(account: Account, *, now: float) -> str:
    qualified = f"{account.jwt_account}.{account.user.upper()}"
    claims = {"iss": f"{qualified}.{fingerprint(account.key)}", "sub": qualified,
              "iat": int(now), "exp": int(now) + JWT_LIFETIME}
    return jwt.encode(claims, account.key, algorithm="RS256")


def _headers(account: Account) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {key_pair_jwt(account, now=time.time())}",
        "X-Snowflake-Authorization-Token-Type": "KEYPAIR_JWT",
        "Accept": "application/json",
        "User-Agent": "tessera-discovery/1",
    }


def _refusal(account: Account, status: int, data: Mapping[str, Any], what: str) -> SourceError:
    code, message = data.get("code", ""), short(data.get("message") or "")
    if status in (401, 403):
        return SourceError(
            f"{what}: Snowflake refused the key-pair JWT of {account.user} on {account.account} (HTTP {status}"
            f" {code} {message}): check that the user's RSA_PUBLIC_KEY is the public half of private_key_file"
            f" (fingerprint {fingerprint(account.key)}) and the account identifier")
    if status == 422:
        hint = (" (the role needs IMPORTED PRIVILEGES on the SNOWFLAKE database)"
                if "not exist or not authorized" in message else "")
        return SourceError(f"{what}: the statement failed: {code} {message}{hint}")
    if status in (429, 503):
        return SourceError(f"{what}: Snowflake is busy (HTTP {status} {message}); the next run tries again")
    return SourceError(f"{what}: HTTP {status} {code} {message}".rstrip())


async def _result(session: aiohttp.ClientSession, account: Account, body: Mapping[str, Any]) -> dict[str, Any]:
    """The statement's first answer with its result (polled while Snowflake says 202)."""
    url = f"{account.base_url}/api/v2/statements?requestId={uuid.uuid4()}"
    status, data = await call(session, "POST", url, what="the SQL API", json=dict(body), headers=_headers(account))
    deadline, pause = time.monotonic() + MAX_WAIT, 0.5
    while status == 202:
        handle = data.get("statementHandle")
        if not isinstance(handle, str) or not handle:
            raise SourceError("the SQL API: a 202 answer without a statementHandle")
        if time.monotonic() > deadline:
            raise SourceError(f"the SQL API: statement {handle} still running after {MAX_WAIT:.0f} s; nothing recorded")
        await asyncio.sleep(pause)
        pause = min(pause * 2, 5.0)
        status, data = await call(session, "GET", f"{account.base_url}/api/v2/statements/{quote(handle)}",
                                  what="the SQL API (polling)", headers=_headers(account))
    if status != 200:
        raise _refusal(account, status, data, "the SQL API")
    return data


async def history(
    account: Account, *, since: dt.datetime | None, now: dt.datetime
) -> AsyncIterator[list[QueryRow | Malformed]]:
    """The queries of the window ``(since, now - LATENCY]`` (``since`` defaults to ``days`` ago),
    one partition at a time."""
    until = now - LATENCY
    start = since or now - dt.timedelta(days=account.days)
    body: dict[str, Any] = {
        "statement": STATEMENT, "timeout": STATEMENT_TIMEOUT,
        "bindings": {"1": {"type": "TEXT", "value": iso(start)}, "2": {"type": "TEXT", "value": iso(until)}},
    }
    if account.warehouse:
        body["warehouse"] = account.warehouse
    if account.role:
        body["role"] = account.role
    async with aiohttp.ClientSession() as session:
        data = await _result(session, account, body)
        meta = data.get("resultSetMetaData")
        if not isinstance(meta, dict) or not isinstance(meta.get("rowType"), list):
            raise SourceError("the SQL API: a result without resultSetMetaData.rowType")
        names = [str(column.get("name", "")).lower() for column in meta["rowType"] if isinstance(column, dict)]
        partitions = meta.get("partitionInfo") or [{}]
        handle = str(data.get("statementHandle") or "")
        expected, received = meta.get("numRows"), 0
        for index in range(len(partitions)):
            if index:
                url = f"{account.base_url}/api/v2/statements/{quote(handle)}?partition={index}"
                status, data = await call(session, "GET", url, what=f"partition {index + 1} of {len(partitions)}",
                                          headers=_headers(account))
                if status != 200:
                    error = _refusal(account, status, data, f"partition {index + 1} of {len(partitions)}")
                    raise SourceError(f"{error} after {received} rows; nothing recorded, the next run reads"
                                      " the same window again")
            rows = data.get("data") or []
            if not isinstance(rows, list):
                raise SourceError(f"the SQL API: partition {index + 1} has no data list")
            received += len(rows)
            yield [_row(row, names, f"statement {handle} partition {index + 1} row {n}", now=now)
                   for n, row in enumerate(rows, start=1)]
        if isinstance(expected, int) and received != expected:
            raise SourceError(f"the SQL API gave {received} of the {expected} rows it announced; nothing recorded,"
                              " the next run reads the same window again")


def _row(values: object, names: Sequence[str], where: str, *, now: dt.datetime) -> QueryRow | Malformed:
    if not isinstance(values, list) or len(values) != len(names):
        return Malformed(where, f"expected {len(names)} values (rowType), got {values!r:.80}")
    record = dict(zip(names, values, strict=True))
    record["start_time"] = epoch_text(record.get("start_time"))
    return logs.row_of(record, logs.LAYOUTS["snowflake"], where, now=now)


def epoch_text(value: object) -> object:
    """A timestamp as the SQL API's JSON gives it (``"1700000000.123000000"``, with `` 1440``
    after it for TIMESTAMP_TZ) as ISO text; anything else is left as it is (and read as text)."""
    if not isinstance(value, str):
        return value
    head = value.split(" ", 1)[0]
    try:
        seconds = float(head)
    except ValueError:
        return value
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()
