"""BigQuery, live, over the REST API (``jobs.query`` and ``jobs.getQueryResults``): no driver needed.

``bigquery://PROJECT/REGION?credentials=KEY.json[&days=30]``: PROJECT runs the query and is the
project whose jobs are read; REGION is where they ran (``us``, ``eu``, ``europe-west2``): the
view read is ``region-REGION.INFORMATION_SCHEMA.JOBS``. KEY.json is a service account's key file
(``type: service_account``); the account needs ``bigquery.jobs.listAll`` on the project
(``roles/bigquery.resourceViewer``) to see every user's jobs.

The key signs a JWT (RS256, ``iss`` the account's e-mail, ``aud`` its ``token_uri``, scope
``bigquery.readonly``) exchanged at Google's OAuth endpoint for an access token. The query reads
the finished query jobs created after the watermark and at least :data:`LATENCY` ago, as named
parameters; when the job is not complete in time, or the result has more pages, it is read on
with ``getQueryResults`` page by page (``pageToken``), each page streamed into the aggregator.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import aiohttp
import jwt
import orjson

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

SCHEME = "bigquery://"
API = "https://bigquery.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/bigquery.readonly"
LATENCY = dt.timedelta(minutes=15)
"""Jobs created more recently than this may still be running: a later run reads them."""
PAGE_ROWS = 5000
WAIT_MS = 10_000
MAX_WAIT = 900.0

QUERY = """
SELECT job_id, creation_time, user_email, query, project_id, referenced_tables, job_type, statement_type
FROM `region-{region}`.INFORMATION_SCHEMA.JOBS
WHERE creation_time > @since AND creation_time <= @until
  AND job_type = 'QUERY' AND state = 'DONE' AND error_result IS NULL
  AND (statement_type IS NULL OR statement_type != 'SCRIPT')
ORDER BY creation_time
"""


@dataclass(frozen=True)
class Project:
    project: str
    region: str
    client_email: str
    key_id: str | None
    key_pem: bytes
    token_uri: str
    base_url: str
    days: int

    @property
    def location(self) -> str:
        return self.region.upper() if self.region.lower() in ("us", "eu") else self.region.lower()


def is_bigquery_url(source: str) -> bool:
    return source.startswith(SCHEME)


def parse_url(url: str) -> Project:
    parts = urlsplit(url)
    options = parse_qs(parts.query)
    region = parts.path.strip("/")
    if not parts.hostname or not region or "/" in region:
        raise SourceError("a BigQuery source is bigquery://PROJECT/REGION?credentials=KEY.json (optional: days)")
    if not all(ch.isalnum() or ch == "-" for ch in region):
        raise SourceError(f"region {region!r}: letters, digits and hyphens only (us, eu, europe-west2)")
    path = option(options, "credentials")
    raw = read_file(path, "credentials file", "add ?credentials=KEY.json, a service account's JSON key file")
    try:
        key = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise SourceError(f"{path}: not a JSON key file ({error})") from None
    if not isinstance(key, dict) or key.get("type") != "service_account":
        raise SourceError(f"{path}: not a service account key file (\"type\": \"service_account\")")
    missing = [name for name in ("client_email", "private_key", "token_uri") if not isinstance(key.get(name), str)]
    if missing:
        raise SourceError(f"{path}: the key file has no {', '.join(missing)}")
    pem = key["private_key"].encode()
    rsa_key(pem, str(path))  # refused now, with its reason, rather than at the first call
    return Project(
        project=parts.hostname, region=region, client_email=key["client_email"], key_id=key.get("private_key_id"),
        key_pem=pem, token_uri=key["token_uri"], base_url=endpoint(options, API), days=days_option(options),
    )


async def access_token(session: aiohttp.ClientSession, project: Project, *, now: float) -> str:
    """An OAuth access token for the service account (the JWT-bearer grant)."""
    claims = {"iss": project.client_email, "scope": SCOPE, "aud": project.token_uri,
              "iat": int(now), "exp": int(now) + 3600}
    headers = {"kid": project.key_id} if project.key_id else None
    assertion = jwt.encode(claims, rsa_key(project.key_pem, "the key file"), algorithm="RS256", headers=headers)
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
    status, data = await call(session, "POST", project.token_uri, what="Google's OAuth token endpoint", data=form)
    token = data.get("access_token")
    if status != 200 or not isinstance(token, str):
        reason = short(f"{data.get('error', '')}: {data.get('error_description', '')}".strip(": "))
        raise SourceError(f"Google refused the service account {project.client_email} (HTTP {status} {reason}):"
                          " check the key file is current (not deleted or rotated)")
    return token


def _refusal(project: Project, status: int, data: Mapping[str, Any], what: str) -> SourceError:
    error = data.get("error") if isinstance(data.get("error"), dict) else {}
    message = short(error.get("message") or data)
    if status == 403:
        return SourceError(f"{what}: BigQuery refused {project.client_email} (HTTP 403 {message}): it needs"
                           f" bigquery.jobs.create and bigquery.jobs.listAll on {project.project}"
                           " (roles/bigquery.resourceViewer and roles/bigquery.jobUser)")
    if status == 401:
        return SourceError(f"{what}: BigQuery refused the access token (HTTP 401 {message})")
    return SourceError(f"{what}: HTTP {status} {error.get('status', '')} {message}".replace("  ", " "))


async def jobs(
    project: Project, *, since: dt.datetime | None, now: dt.datetime
) -> AsyncIterator[list[QueryRow | Malformed]]:
    """The finished query jobs of the window ``(since, now - LATENCY]`` (``since`` defaults to
    ``days`` ago), one page at a time."""
    until = now - LATENCY
    start = since or now - dt.timedelta(days=project.days)
    body = {
        "query": QUERY.format(region=project.region.lower()), "useLegacySql": False, "location": project.location,
        "parameterMode": "NAMED", "maxResults": PAGE_ROWS, "timeoutMs": WAIT_MS, "requestId": str(uuid.uuid4()),
        "formatOptions": {"useInt64Timestamp": True},
        "queryParameters": [
            {"name": "since", "parameterType": {"type": "TIMESTAMP"}, "parameterValue": {"value": iso(start)}},
            {"name": "until", "parameterType": {"type": "TIMESTAMP"}, "parameterValue": {"value": iso(until)}},
        ],
    }
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {await access_token(session, project, now=time.time())}"}
        base = f"{project.base_url}/bigquery/v2/projects/{quote(project.project)}/queries"
        status, data = await call(session, "POST", base, what="jobs.query", json=body, headers=headers)
        if status != 200:
            raise _refusal(project, status, data, "jobs.query")
        job = data.get("jobReference") if isinstance(data.get("jobReference"), dict) else {}
        job_id = job.get("jobId")
        deadline, page, received = time.monotonic() + MAX_WAIT, 0, 0
        while True:
            if data.get("jobComplete") is True:
                page += 1
                fields = (data.get("schema") or {}).get("fields") or []
                rows = data.get("rows") or []
                received += len(rows)
                yield [_row(row, fields, f"job {job_id} page {page} row {n}", now=now) for n, row in enumerate(rows, 1)]
                token = data.get("pageToken")
                if not token:
                    break
                params = {"pageToken": token}
            else:
                if time.monotonic() > deadline:
                    raise SourceError(f"jobs.query: job {job_id} still running after {MAX_WAIT:.0f} s; nothing recorded")
                params = {}
            if not isinstance(job_id, str):
                raise SourceError("jobs.query: an answer without jobReference.jobId to read on with")
            query = {"location": job.get("location") or project.location, "maxResults": str(PAGE_ROWS),
                     "timeoutMs": str(WAIT_MS), "formatOptions.useInt64Timestamp": "true", **params}
            status, data = await call(session, "GET", f"{base}/{quote(job_id)}", what="jobs.getQueryResults",
                                      params=query, headers=headers)
            if status != 200:
                error = _refusal(project, status, data, f"jobs.getQueryResults (page {page + 1})")
                raise SourceError(f"{error} after {received} rows; nothing recorded, the next run reads the same"
                                  " window again")
        total = data.get("totalRows")
        if isinstance(total, str) and total.isdigit() and int(total) != received:
            raise SourceError(f"BigQuery gave {received} of the {total} rows it announced; nothing recorded, the"
                              " next run reads the same window again")


def _row(row: object, fields: Sequence[Mapping[str, Any]], where: str, *, now: dt.datetime) -> QueryRow | Malformed:
    if not isinstance(row, dict) or not isinstance(row.get("f"), list) or len(row["f"]) != len(fields):
        return Malformed(where, f"expected a row of {len(fields)} cells (schema.fields)")
    record = _record(row, fields)
    record["creation_time"] = micros_text(record.get("creation_time"))
    return logs.row_of(record, logs.LAYOUTS["bigquery"], where, now=now)


def _record(row: Mapping[str, Any], fields: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A row of ``{"f": [{"v": …}]}`` cells as a dict by field name; records and repeated fields
    (``referenced_tables``) nested as the schema says."""
    return {str(field.get("name", "")).lower(): _value(cell.get("v") if isinstance(cell, dict) else None, field)
            for cell, field in zip(row.get("f") or [], fields, strict=False)}


def _value(value: Any, field: Mapping[str, Any]) -> Any:
    if field.get("mode") == "REPEATED":
        items = value if isinstance(value, list) else []
        return [_value(item.get("v") if isinstance(item, dict) else None, {**field, "mode": "NULLABLE"}) for item in items]
    if field.get("type") in ("RECORD", "STRUCT") and isinstance(value, dict):
        return _record(value, field.get("fields") or [])
    return value


def micros_text(value: object) -> object:
    """A TIMESTAMP cell (int64 microseconds with ``useInt64Timestamp``, else float seconds such
    as ``"1.7645E9"``) as ISO text; anything else as it is."""
    if not isinstance(value, str):
        return value
    try:
        seconds = int(value) / 1_000_000 if value.lstrip("-").isdigit() else float(value)
    except ValueError:
        return value
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()
