"""A fake Snowflake SQL API v2: a real aiohttp server on 127.0.0.1 answering as Snowflake's
documentation describes (docs.snowflake.com, "Snowflake SQL API": submitting a request,
key-pair authentication, handling responses, retrieving partitions).

- ``POST /api/v2/statements?requestId=…``: the ``Authorization: Bearer <JWT>`` header with
  ``X-Snowflake-Authorization-Token-Type: KEYPAIR_JWT``; the JWT is RS256, ``sub`` is
  ``ACCOUNT.USER`` and ``iss`` is ``ACCOUNT.USER.SHA256:<fingerprint of the user's public key>``,
  at most an hour long. A bad token is 401 ``{"code": "390144", "message": "JWT token is
  invalid."}``. The statement must read ``SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY`` joined to
  ``ACCESS_HISTORY`` with two TEXT bindings (the window); otherwise 422 with a SQL compilation
  error. The answer is 200 with ``resultSetMetaData`` (``numRows``, ``format: jsonv2``,
  ``rowType``, ``partitionInfo``) and the first partition's ``data`` (every value a string or
  null; TIMESTAMP_LTZ as ``"<epoch seconds>.<nanoseconds>"``), or 202 with a
  ``statementHandle`` while it "runs" (:attr:`FakeSnowflake.running_polls`).
- ``GET /api/v2/statements/{handle}``: the statement's status (202 while running, then the
  answer); ``?partition=N``: ``{"data": [...]}`` of partition N, gzip-encoded.

The account's history is :attr:`FakeSnowflake.history`: rows of ``QUERY_HISTORY`` (with
``ACCESS_HISTORY``'s ``DIRECT_OBJECTS_ACCESSED``), loaded from an export with :meth:`load_csv`.
Faults are scripted per method and path (a glob), consumed in order: ``fake.script("GET",
"/api/v2/statements/*", (500, {...}))``. Every request is recorded in :attr:`requests`.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import fnmatch
import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

COLUMNS = ("QUERY_ID", "QUERY_TEXT", "USER_NAME", "ROLE_NAME", "START_TIME", "DATABASE_NAME", "SCHEMA_NAME",
           "DIRECT_OBJECTS_ACCESSED")
TYPES = {"START_TIME": "timestamp_ltz", "DIRECT_OBJECTS_ACCESSED": "array"}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Statement:
    handle: str
    rows: list[list[str | None]]
    polls_left: int


@dataclass
class FakeSnowflake:
    account: str = "ACME-PROD"
    partition_rows: int = 100
    running_polls: int = 0
    """How many times a new statement answers 202 (still running) before its result."""
    history: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""
    _users: dict[str, tuple[str, rsa.RSAPublicKey]] = field(default_factory=dict)
    _statements: dict[str, Statement] = field(default_factory=dict)
    _faults: list[tuple[str, str, int, dict[str, Any]]] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    # -- state

    def add_user(self, name: str, public_key: rsa.RSAPublicKey) -> None:
        """``ALTER USER name SET RSA_PUBLIC_KEY = …``: its fingerprint is what JWTs must name."""
        der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self._users[name.upper()] = ("SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode(), public_key)

    def load_csv(self, path: Path) -> None:
        """An ``ACCOUNT_USAGE.QUERY_HISTORY`` export (with ``DIRECT_OBJECTS_ACCESSED``) as the history;
        rows whose START_TIME is not a time cannot exist in the view and are left out."""
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                try:
                    started = dt.datetime.strptime(row["START_TIME"], "%Y-%m-%d %H:%M:%S.%f %z")
                except ValueError:
                    continue
                self.history.append({**row, "START_TIME": started})

    def script(self, method: str, path: str, *answers: tuple[int, dict[str, Any]]) -> None:
        self._faults += [(method, path, status, body) for status, body in answers]

    # -- lifecycle

    async def start(self) -> FakeSnowflake:
        app = web.Application()
        app.router.add_post("/api/v2/statements", self._submit)
        app.router.add_get("/api/v2/statements/{handle}", self._status)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- the API

    def _fault(self, request: web.Request) -> web.Response | None:
        for n, (method, path, status, body) in enumerate(self._faults):
            if method == request.method and fnmatch.fnmatch(request.path, path):
                del self._faults[n]
                return web.json_response(body, status=status)
        return None

    async def _record(self, request: web.Request) -> Any:
        body = await request.json() if request.can_read_body else None
        self.requests.append(Recorded(request.method, request.path, dict(request.query), dict(request.headers), body))
        return body

    def _refused(self, request: web.Request) -> web.Response | None:
        invalid = web.json_response({"code": "390144", "message": "JWT token is invalid."}, status=401)
        if request.headers.get("X-Snowflake-Authorization-Token-Type") != "KEYPAIR_JWT":
            return web.json_response({"code": "390101", "message": "Authorization token type is not supported."},
                                     status=401)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not token:
            return invalid
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return invalid
        sub = str(unverified.get("sub", ""))
        account, _, user = sub.partition(".")
        known = self._users.get(user)
        if account != self.account.upper() or known is None or unverified.get("iss") != f"{sub}.{known[0]}":
            return invalid
        try:
            claims = jwt.decode(token, known[1], algorithms=["RS256"], options={"require": ["exp", "iat", "iss", "sub"]})
        except jwt.PyJWTError:
            return invalid
        return invalid if claims["exp"] - claims["iat"] > 3600 else None

    async def _submit(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        refused = self._refused(request) or self._fault(request)
        if refused is not None:
            return refused
        statement = str((body or {}).get("statement", ""))
        bindings = (body or {}).get("bindings") or {}
        handle = str(uuid.uuid4())
        reads = "SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY" in statement and "ACCOUNT_USAGE.ACCESS_HISTORY" in statement
        window = [bindings.get(k, {}) for k in ("1", "2")]
        if not reads or any(b.get("type") != "TEXT" for b in window):
            return web.json_response({"code": "002003", "sqlState": "42S02", "statementHandle": handle,
                                      "message": "SQL compilation error:\nObject does not exist or not authorized."},
                                     status=422)
        since, until = (dt.datetime.fromisoformat(b["value"]) for b in window)
        only_success = "EXECUTION_STATUS = 'SUCCESS'" in statement
        rows = sorted((r for r in self.history if since < r["START_TIME"] <= until
                       and (not only_success or r.get("EXECUTION_STATUS") == "SUCCESS")), key=lambda r: r["START_TIME"])
        self._statements[handle] = Statement(handle, [self._values(r) for r in rows], self.running_polls)
        return self._answer(self._statements[handle], request.query.get("requestId", ""))

    def _answer(self, statement: Statement, request_id: str) -> web.Response:
        if statement.polls_left > 0:
            statement.polls_left -= 1
            return web.json_response({
                "code": "333334", "statementHandle": statement.handle,
                "message": "Asynchronous execution in progress. Use provided query id to perform query monitoring"
                           " and management.",
                "statementStatusUrl": f"/api/v2/statements/{statement.handle}?requestId={request_id}",
            }, status=202)
        parts = self._partitions(statement)
        return web.json_response({
            "resultSetMetaData": {
                "numRows": len(statement.rows), "format": "jsonv2",
                "partitionInfo": [{"rowCount": len(p), "uncompressedSize": len(str(p))} for p in parts],
                "rowType": [{"name": c, "database": "SNOWFLAKE", "schema": "ACCOUNT_USAGE", "table": "QUERY_HISTORY",
                             "type": TYPES.get(c, "text"), "nullable": True, "scale": None, "precision": None,
                             "length": 16777216, "byteLength": 16777216, "collation": None} for c in COLUMNS],
            },
            "data": parts[0],
            "code": "090001", "sqlState": "00000", "message": "Statement executed successfully.",
            "statementHandle": statement.handle, "requestId": request_id,
            "statementStatusUrl": f"/api/v2/statements/{statement.handle}?requestId={request_id}",
            "createdOn": 1764590400000,
        })

    def _partitions(self, statement: Statement) -> list[list[list[str | None]]]:
        rows, size = statement.rows, self.partition_rows
        return [rows[i:i + size] for i in range(0, len(rows), size)] or [[]]

    async def _status(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        refused = self._refused(request) or self._fault(request)
        if refused is not None:
            return refused
        statement = self._statements.get(request.match_info["handle"])
        if statement is None:
            return web.json_response({"code": "000709", "message": "Statement not found."}, status=404)
        if "partition" not in request.query:
            return self._answer(statement, request.query.get("requestId", ""))
        parts = self._partitions(statement)
        index = int(request.query["partition"])
        if not 0 <= index < len(parts):
            return web.json_response({"code": "000605", "message": "Partition number out of range."}, status=422)
        response = web.json_response({"data": parts[index]})
        response.enable_compression(web.ContentCoding.gzip)
        return response

    @staticmethod
    def _values(row: dict[str, Any]) -> list[str | None]:
        """A row as the jsonv2 format gives it: strings (or null), timestamps as epoch seconds."""
        out: list[str | None] = []
        for column in COLUMNS:
            value = row.get(column)
            if isinstance(value, dt.datetime):
                out.append(f"{value.timestamp():.9f}")
            else:
                out.append(value if value not in ("", None) else None)
        return out


def requests_to(fake: FakeSnowflake, method: str, path: str) -> Iterable[Recorded]:
    return (r for r in fake.requests if r.method == method and fnmatch.fnmatch(r.path, path))
