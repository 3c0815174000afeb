"""A fake BigQuery REST API and Google OAuth token endpoint: a real aiohttp server on 127.0.0.1
answering as Google's documentation describes (cloud.google.com: "Using OAuth 2.0 for server to
server applications", BigQuery REST reference ``jobs.query``, ``jobs.getQueryResults``,
``QueryResponse``, the error format).

- ``POST /token``: form ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` and an
  RS256 ``assertion`` whose ``iss`` is a known service account, ``aud`` this URL, with a
  BigQuery scope, at most an hour long: ``{"access_token", "expires_in", "token_type":
  "Bearer"}``; otherwise 400 ``{"error": "invalid_grant", "error_description": …}``.
- ``POST /bigquery/v2/projects/{project}/queries`` (``QueryRequest``): a Bearer access token
  (401 ``UNAUTHENTICATED`` otherwise) of an account allowed on the project (403
  ``PERMISSION_DENIED`` otherwise). The query must read ``region-R.INFORMATION_SCHEMA.JOBS`` in
  the request's ``location`` with the named TIMESTAMP parameters ``since`` and ``until`` (400
  ``INVALID_ARGUMENT`` otherwise). The answer is a ``QueryResponse``: ``jobComplete`` false
  while the job "runs" (:attr:`FakeBigQuery.running_polls`), then ``schema``, ``rows`` of
  ``{"f": [{"v": …}]}`` cells (``referenced_tables`` a repeated record), ``totalRows`` and a
  ``pageToken`` when ``maxResults`` cut the result.
- ``GET /bigquery/v2/projects/{project}/queries/{jobId}`` (``getQueryResults``): the same
  shape from ``pageToken``. TIMESTAMP cells are int64 microseconds when
  ``formatOptions.useInt64Timestamp`` is asked, else float seconds in E notation.

The jobs are :attr:`FakeBigQuery.jobs`, rows of ``INFORMATION_SCHEMA.JOBS`` loaded from an
export with :meth:`load_jsonl`. Faults are scripted per method and path glob, consumed in order.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import re
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

FIELDS: list[dict[str, Any]] = [
    {"name": "job_id", "type": "STRING", "mode": "NULLABLE"},
    {"name": "creation_time", "type": "TIMESTAMP", "mode": "NULLABLE"},
    {"name": "user_email", "type": "STRING", "mode": "NULLABLE"},
    {"name": "query", "type": "STRING", "mode": "NULLABLE"},
    {"name": "project_id", "type": "STRING", "mode": "NULLABLE"},
    {"name": "referenced_tables", "type": "RECORD", "mode": "REPEATED", "fields": [
        {"name": "project_id", "type": "STRING", "mode": "NULLABLE"},
        {"name": "dataset_id", "type": "STRING", "mode": "NULLABLE"},
        {"name": "table_id", "type": "STRING", "mode": "NULLABLE"},
    ]},
    {"name": "job_type", "type": "STRING", "mode": "NULLABLE"},
    {"name": "statement_type", "type": "STRING", "mode": "NULLABLE"},
]
_VIEW = re.compile(r"`region-([a-z0-9-]+)`\.INFORMATION_SCHEMA\.JOBS\b")


def error_answer(status: int, reason: str, state: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": status, "message": message, "status": state,
                                        "errors": [{"message": message, "domain": "global", "reason": reason}]}},
                             status=status)


@dataclass
class Job:
    job_id: str
    location: str
    rows: list[dict[str, Any]]
    polls_left: int
    int64_times: bool


@dataclass
class FakeBigQuery:
    running_polls: int = 0
    jobs: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    url: str = ""
    _accounts: dict[str, tuple[rsa.RSAPublicKey, set[str]]] = field(default_factory=dict)
    _tokens: dict[str, str] = field(default_factory=dict)
    _jobs: dict[str, Job] = field(default_factory=dict)
    _faults: list[tuple[str, str, web.Response]] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def add_service_account(self, email: str, public_key: rsa.RSAPublicKey, *, projects: set[str]) -> None:
        self._accounts[email] = (public_key, projects)

    def load_jsonl(self, path: Path) -> None:
        """An ``INFORMATION_SCHEMA.JOBS`` export as the jobs; lines that are not a job with a
        creation time cannot exist in the view and are left out."""
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                job = json.loads(line)
                created = dt.datetime.strptime(job["creation_time"], "%Y-%m-%d %H:%M:%S.%f UTC").replace(tzinfo=dt.UTC)
            except (ValueError, KeyError, TypeError):
                continue
            self.jobs.append({**job, "creation_time": created})

    def script(self, method: str, path: str, *answers: web.Response) -> None:
        self._faults += [(method, path, answer) for answer in answers]

    async def start(self) -> FakeBigQuery:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_post("/bigquery/v2/projects/{project}/queries", self._query)
        app.router.add_get("/bigquery/v2/projects/{project}/queries/{job}", self._results)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _fault(self, request: web.Request) -> web.Response | None:
        for n, (method, path, answer) in enumerate(self._faults):
            if method == request.method and fnmatch.fnmatch(request.path, path):
                del self._faults[n]
                return answer
        return None

    # -- OAuth

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.requests.append((request.method, request.path, dict(request.query), dict(form)))
        refused = web.json_response({"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
                                    status=400)
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return web.json_response({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"},
                                     status=400)
        assertion = str(form.get("assertion", ""))
        try:
            email = str(jwt.decode(assertion, options={"verify_signature": False}).get("iss", ""))
            known = self._accounts.get(email)
            if known is None:
                return refused
            claims = jwt.decode(assertion, known[0], algorithms=["RS256"], audience=self.token_uri,
                                options={"require": ["exp", "iat", "iss", "aud"]})
        except jwt.PyJWTError:
            return refused
        if "bigquery" not in str(claims.get("scope", "")) or claims["exp"] - claims["iat"] > 3600:
            return web.json_response({"error": "invalid_scope", "error_description": "Invalid OAuth scope."},
                                     status=400)
        token = "ya29." + secrets.token_urlsafe(24)
        self._tokens[token] = email
        return web.json_response({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _caller(self, request: web.Request) -> str | web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        email = self._tokens.get(token) if scheme == "Bearer" else None
        if email is None:
            return error_answer(401, "authError", "UNAUTHENTICATED", "Request had invalid authentication credentials."
                          " Expected OAuth 2 access token, login cookie or other valid authentication credential.")
        project = request.match_info["project"]
        if project not in self._accounts[email][1]:
            return error_answer(403, "accessDenied", "PERMISSION_DENIED",
                          f"Access Denied: Project {project}: User does not have bigquery.jobs.create permission"
                          f" in project {project}.")
        return email

    # -- jobs.query / jobs.getQueryResults

    async def _query(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append((request.method, request.path, dict(request.query), body))
        caller = self._caller(request)
        if isinstance(caller, web.Response):
            return caller
        fault = self._fault(request)
        if fault is not None:
            return fault
        view = _VIEW.search(str(body.get("query", "")))
        params = {p["name"]: p for p in body.get("queryParameters") or []}
        if body.get("useLegacySql") is not False or view is None or body.get("parameterMode") != "NAMED":
            return error_answer(400, "invalidQuery", "INVALID_ARGUMENT", "Unrecognized name or table: the query must read"
                          " `region-R`.INFORMATION_SCHEMA.JOBS in standard SQL with named parameters")
        if str(body.get("location", "")).lower() != view.group(1):
            return error_answer(404, "notFound", "NOT_FOUND", f"Not found: Dataset was not found in location"
                          f" {body.get('location')}")
        if any(params.get(name, {}).get("parameterType", {}).get("type") != "TIMESTAMP" for name in ("since", "until")):
            return error_answer(400, "invalidQuery", "INVALID_ARGUMENT", "Query parameter 'since' not found")
        since, until = (dt.datetime.fromisoformat(params[n]["parameterValue"]["value"]) for n in ("since", "until"))
        rows = sorted((j for j in self.jobs if since < j["creation_time"] <= until and j.get("job_type") == "QUERY"
                       and j.get("state") == "DONE" and not j.get("error_result")
                       and j.get("statement_type") != "SCRIPT"), key=lambda j: j["creation_time"])
        job = Job(f"job_{uuid.uuid4().hex[:12]}", str(body["location"]), rows, self.running_polls,
                  bool((body.get("formatOptions") or {}).get("useInt64Timestamp")))
        self._jobs[job.job_id] = job
        return self._page(job, request.match_info["project"], 0, int(body.get("maxResults") or 10_000),
                          "bigquery#queryResponse")

    async def _results(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path, dict(request.query), None))
        caller = self._caller(request)
        if isinstance(caller, web.Response):
            return caller
        fault = self._fault(request)
        if fault is not None:
            return fault
        job = self._jobs.get(request.match_info["job"])
        if job is None or request.query.get("location", "").lower() != job.location.lower():
            return error_answer(404, "notFound", "NOT_FOUND", f"Not found: Job {request.match_info['project']}:"
                          f"{request.match_info['job']}")
        token = request.query.get("pageToken", "0")
        job.int64_times = request.query.get("formatOptions.useInt64Timestamp") == "true"
        return self._page(job, request.match_info["project"], int(token), int(request.query.get("maxResults") or 10_000),
                          "bigquery#getQueryResultsResponse")

    def _page(self, job: Job, project: str, offset: int, size: int, kind: str) -> web.Response:
        reference = {"projectId": project, "jobId": job.job_id, "location": job.location}
        if job.polls_left > 0:
            job.polls_left -= 1
            return web.json_response({"kind": kind, "jobReference": reference, "jobComplete": False})
        page = job.rows[offset:offset + size]
        answer: dict[str, Any] = {
            "kind": kind, "schema": {"fields": FIELDS}, "jobReference": reference, "totalRows": str(len(job.rows)),
            "rows": [{"f": self._cells(row, job.int64_times)} for row in page], "totalBytesProcessed": "10485760",
            "jobComplete": True, "cacheHit": False,
        }
        if offset + size < len(job.rows):
            answer["pageToken"] = str(offset + size)
        if not page:
            del answer["rows"]  # BigQuery leaves out an empty page's rows
        return web.json_response(answer)

    @staticmethod
    def _cells(row: dict[str, Any], int64_times: bool) -> list[dict[str, Any]]:
        cells: list[dict[str, Any]] = []
        for spec in FIELDS:
            value = row.get(spec["name"])
            if spec["name"] == "creation_time":
                micros = int(value.timestamp() * 1_000_000)
                cells.append({"v": str(micros) if int64_times else f"{micros / 1e6:.6E}"})
            elif spec["name"] == "referenced_tables":
                cells.append({"v": [{"v": {"f": [{"v": t.get(k)} for k in ("project_id", "dataset_id", "table_id")]}}
                                    for t in value or []]})
            else:
                cells.append({"v": None if value is None else str(value)})
        return cells
