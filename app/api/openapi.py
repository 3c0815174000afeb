"""The OpenAPI 3.1 description of ``/api/v1``, and the request-body validation that uses it.

Request bodies are validated against the very schemas published here (``components.schemas``),
so the document and the implementation cannot drift: a field the document does not list is
refused (``additionalProperties: false``), strings and arrays are bounded. A test walks the
document and the app's routes and fails on any difference.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from app.api.errors import ApiError
from app.audits import ALERT_RULES
from app.store.deliveries import STATUSES as DELIVERY_STATUSES

SLUG = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"}
NAME = {"type": "string", "minLength": 1, "maxLength": 200}
FQN = {"type": "string", "minLength": 1, "maxLength": 300}
COLUMN = {"type": "string", "minLength": 1, "maxLength": 200}
REPO = {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$"}
DATETIME = {"type": "string", "format": "date-time", "maxLength": 40}
TEXT = {"type": "string", "maxLength": 2000}
GITHUB_TEAM = {"type": ["string", "null"], "pattern": "^@?[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$"}

EVENT_NAMES = ["proposal.opened", "proposal.ack_required", "proposal.acked", "proposal.resolved",
               "contract.published", "audit.alert"]
HOOK_URL = {"type": "string", "pattern": "^https?://", "minLength": 8, "maxLength": 2000}
SECRET = {"type": "string", "minLength": 16, "maxLength": 200}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "TeamCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["slug", "name"],
        "properties": {
            "slug": SLUG,
            "name": NAME,
            "github_team": GITHUB_TEAM,
        },
    },
    "TeamUpdate": {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            "name": NAME,
            "github_team": GITHUB_TEAM,
        },
    },
    "KeyCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["scopes"],
        "properties": {
            "scopes": {
                "type": "array",
                "minItems": 1,
                "maxItems": 3,
                "uniqueItems": True,
                "items": {"enum": ["read", "write", "admin"]},
            },
            "expires_at": {"anyOf": [DATETIME, {"type": "null"}]},
        },
    },
    "RegistrationCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["team", "asset"],
        "properties": {
            "team": SLUG,
            "asset": FQN,
            "columns": {"type": "array", "maxItems": 500, "uniqueItems": True, "items": COLUMN},
            "version": {"type": ["string", "null"], "pattern": r"^\d+(\.\d+){0,2}$"},
            "note": {"type": "string", "maxLength": 500},
        },
    },
    "DiscoveryMapping": {
        "type": "object",
        "additionalProperties": False,
        "required": ["kind", "name", "team"],
        "properties": {
            "kind": {"enum": ["role", "user", "folder"]},
            "name": {"type": "string", "minLength": 1, "maxLength": 300},
            "team": SLUG,
        },
    },
    "AckCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["team", "response"],
        "properties": {
            "team": SLUG,
            "response": {"enum": ["ack", "migrating", "block"]},
            "reason": TEXT,
            "deadline": {"type": ["string", "null"], "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
        },
    },
    "SubscriptionCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["team", "url", "events"],
        "properties": {
            "team": SLUG,
            "url": HOOK_URL,
            "events": {"type": "array", "minItems": 1, "maxItems": 6, "uniqueItems": True, "items": {"enum": EVENT_NAMES}},
            "secret": {**SECRET, "description": "omit it and Tessera makes one, shown once in the answer"},
            "description": {"type": "string", "maxLength": 500},
        },
    },
    "SubscriptionUpdate": {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            "url": HOOK_URL,
            "events": {"type": "array", "minItems": 1, "maxItems": 6, "uniqueItems": True, "items": {"enum": EVENT_NAMES}},
            "secret": {"anyOf": [SECRET, {"type": "null"}], "description": "null: rotate (the new one is shown once)"},
            "active": {"type": "boolean", "description": "true re-enables a subscription disabled after failures"},
            "description": {"type": "string", "maxLength": 500},
        },
    },
    "Subscription": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"}, "team": {"type": "string"}, "url": {"type": "string"},
            "events": {"type": "array", "items": {"enum": EVENT_NAMES}}, "active": {"type": "boolean"},
            "description": {"type": "string"}, "consecutive_failures": {"type": "integer"},
            "disabled_reason": {"type": ["string", "null"]}, "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "secret": {"type": "string", "description": "only in the answer that made (or rotated) it"},
        },
    },
    "SubscriptionDelivery": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"}, "event": {"enum": EVENT_NAMES},
            "status": {"enum": ["queued", "running", "done", "failed"]}, "attempts": {"type": "integer"},
            "last_status": {"type": ["integer", "null"]}, "last_error": {"type": ["string", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
            "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"}, "body": {"type": "object"},
        },
    },
    "SlackChannelSet": {
        "type": "object",
        "additionalProperties": False,
        "required": ["team", "channel"],
        "properties": {
            "team": SLUG,
            "channel": {"anyOf": [{"type": "string", "pattern": "^[#A-Za-z0-9][A-Za-z0-9_.#-]{0,79}$"},
                                  {"type": "string", "pattern": "^https?://[^\\s]{8,500}$",
                                   "description": "an incoming webhook (https://hooks.slack.com/services/...)"},
                                  {"type": "null"}]},
            "quiet_hours": {"anyOf": [{"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$"},
                                      {"type": "null"}],
                            "description": "UTC HH:MM-HH:MM: new messages and reminders wait until it ends"},
            "digest_at": {"anyOf": [{"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}, {"type": "null"}],
                          "description": "UTC HH:MM: one daily digest instead of a message per pull request"},
        },
    },
    "SlackLinkCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["slack_user", "github_login"],
        "properties": {
            "slack_user": {"type": "string", "pattern": "^[UW][A-Z0-9]{2,30}$"},
            "github_login": {"type": "string", "pattern": "^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$"},
        },
    },
    "DbtSync": {
        "type": "object",
        "additionalProperties": False,
        "required": ["repo", "commit", "manifest"],
        "properties": {
            "repo": REPO,
            "commit": {"type": "string", "pattern": "^[0-9a-fA-F]{7,64}$"},
            "manifest": {"type": "object", "description": "dbt's target/manifest.json (v10-v12)"},
            "project_dir": {"type": ["string", "null"], "maxLength": 300},
            "lineage": {
                "enum": ["models", "columns"],
                "description": "models (default, fast): edges from depends_on; columns: inferred from the"
                " compiled SQL by the engine (about a second per hundred models)",
            },
        },
    },
    "GuaranteeResult": {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "passed"],
        "properties": {
            "id": {"type": "string", "minLength": 1, "maxLength": 300},
            "passed": {"type": "boolean"},
            "rows_checked": {"type": ["integer", "null"], "minimum": 0, "maximum": 2**53},
            "rows_failed": {"type": ["integer", "null"], "minimum": 0, "maximum": 2**53},
            "message": TEXT,
        },
    },
    "AuditRunCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["run_id"],
        "properties": {
            "run_id": {"type": "string", "minLength": 1, "maxLength": 200},
            "status": {"enum": ["passed", "failed", "error", "warned"]},
            "triggered_by": {"type": ["string", "null"], "maxLength": 200},
            "run_at": DATETIME,
            "results": {"type": "array", "maxItems": 5000, "items": {"$ref": "#/components/schemas/GuaranteeResult"}},
        },
    },
    "DbtRunResults": {
        "type": "object",
        "description": "dbt's target/run_results.json, sent as is; its tests are mapped to the asset.",
        "required": ["metadata", "results"],
        "properties": {
            "metadata": {"type": "object"},
            "results": {"type": "array", "maxItems": 100000, "items": {"type": "object"}},
            "run_id": {"type": "string", "maxLength": 200},
            "triggered_by": {"type": ["string", "null"], "maxLength": 200},
        },
    },
}



def _obj(properties: dict[str, Any], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """An answer object: every property listed is present unless named ``optional``."""
    return {"type": "object", "required": [k for k in properties if k not in optional], "properties": properties}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
OBJ = {"type": "object"}
STRS = _array(STR)
TIME = {"type": "string", "format": "date-time"}
"""Every time in an answer: ISO 8601 text, UTC."""


def _maybe(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


CHANGE = _obj({"rule": STR, "severity": STR, "asset": STR, "column": _maybe(STR), "path": _maybe(STR),
               "line": _maybe(INT), "message": STR, "before": _maybe(STR), "after": _maybe(STR)})
VERDICT = _obj({"conclusion": STR, "title": STR, "teams": _array(OBJ)})

RESPONSE_SCHEMAS: dict[str, dict[str, Any]] = {
    "Team": _obj({"slug": STR, "name": STR, "github_team": _maybe(STR), "created_at": TIME}),
    "KeyOut": _obj({"id": INT, "prefix": STR, "team": STR, "scopes": STRS, "expires_at": _maybe(TIME),
                    "revoked_at": _maybe(TIME), "created_at": TIME, "created_by": _maybe(STR),
                    "last_used_at": _maybe(TIME)}),
    "KeyCreated": _obj({"id": INT, "key": STR, "prefix": STR, "team": STR, "scopes": STRS,
                           "expires_at": _maybe(TIME)}),
    "AssetSummary": _obj({"id": INT, "repo": STR, "fqn": STR, "kind": STR, "path": _maybe(STR),
                          "compatibility": _maybe(STR), "materialized": _maybe(STR), "description": _maybe(STR),
                          "columns_known": BOOL, "relation": _maybe(STR), "source": _maybe(STR),
                          "synced_at": _maybe(TIME), "commit": _maybe(STR), "owner": _maybe(OBJ)}),
    "AssetOut": {"allOf": [_ref("AssetSummary"), _obj({
        "columns": _array(_obj({"name": STR, "type": _maybe(STR)}, optional=())),
        "contracts": _array(OBJ),
        "consumers": _obj({"assets": _array(OBJ), "exposures": _array(OBJ), "registrations": _array(OBJ),
                           "observed": _array(_ref("ObservedReader"))}),
    })]},
    "ObservedReader": _obj({
        "origin": {"enum": ["observed"]}, "source": STR,
        "reader": _obj({"kind": {"enum": ["role", "user", "bi"]}, "name": STR}), "folder": _maybe(STR),
        "team": _maybe(STR), "columns": STRS, "every_column": BOOL, "queries": INT, "first_seen": STR,
        "last_seen": STR, "stale": BOOL,
    }),
    "ContractOut": _obj({"asset": STR, "repo": STR, "version": STR, "breaking": BOOL, "pr_number": _maybe(INT),
                         "head_sha": _maybe(STR), "published_at": TIME, "schema": OBJ, "changes": _array(OBJ),
                         "diff_from": STR, "diff": _array(CHANGE)}, optional=("diff_from", "diff")),
    "ContractList": _obj({"asset": STR, "items": _array(_ref("ContractOut"))}),
    "ImpactOut": _obj({
        "asset": STR, "column": _maybe(STR),
        "downstream": _array(_obj({"asset": STR, "team": _maybe(STR), "columns": STRS, "depth": INT, "path": STRS})),
        "exposures": _array(OBJ), "registrations": _array(OBJ),
        "teams": _array(_obj({"team": STR, "github_team": _maybe(STR), "via": STRS})),
    }),
    "AuditRunOut": _obj({"asset": STR, "id": INT, "run_id": STR, "status": STR, "run_at": TIME,
                         "triggered_by": _maybe(STR), "results": _array(OBJ)}, optional=("asset",)),
    "TrendsOut": _obj({
        "asset": STR, "as_of": TIME,
        "windows": _array(_obj({"window": STR, "runs": INT, "failed": INT, "failure_rate": _maybe({"type": "number"})})),
        "top_failing": _array(_obj({"guarantee": STR, "failures": INT})),
        "per_guarantee": {"type": "object", "additionalProperties": _obj({"runs": INT, "failed": INT})},
        "alerts": _array(_obj({
            "code": {"enum": [code for code, _ in ALERT_RULES],
                     "description": "; ".join(f"`{code}`: {meaning}" for code, meaning in ALERT_RULES)},
            "message": STR,
        })),
    }),
    "RegistrationOut": _obj({"id": INT, "team": STR, "asset": STR, "columns": STRS, "version": _maybe(STR),
                             "note": _maybe(STR), "source": STR, "created_by": _maybe(STR), "created_at": TIME,
                             "asset_known": BOOL}, optional=("asset_known",)),
    "ProposalSummary": _obj({"id": INT, "repo": STR, "pr_number": INT, "title": _maybe(STR), "author": _maybe(STR),
                             "status": STR, "head_sha": _maybe(STR), "base_ref": _maybe(STR),
                             "analysis_status": _maybe(STR), "conclusion": _maybe(STR), "required_teams": STRS}),
    "ProposalOut": {"allOf": [_ref("ProposalSummary"), _obj({
        "changes": _array(CHANGE), "impacts": _array(OBJ), "required_acks": _array(OBJ),
        "migrations": _array(OBJ), "acks": _array(OBJ), "verdict": _maybe(VERDICT),
    })]},
    "AckOut": _obj({"ack": _obj({"team": STR, "response": {"enum": ["ack", "migrating", "block"]}, "user": _maybe(STR),
                                 "deadline": _maybe(STR), "reason": _maybe(STR)}),
                    "verdict": VERDICT}),
    "AuditEntry": _obj({"id": INT, "at": TIME, "actor": STR, "action": STR, "repo": _maybe(STR),
                        "pr_number": _maybe(INT), "team": _maybe(STR), "detail": OBJ}),
    "DeliveryOut": _obj({"id": INT, "delivery_id": STR, "event": STR, "action": _maybe(STR),
                         "repository": _maybe(STR), "status": {"enum": list(DELIVERY_STATUSES)},
                         "attempts": INT, "last_error": _maybe(STR), "received_at": TIME,
                         "finished_at": _maybe(TIME), "worker_kills": INT}),
    "ReplayOut": _obj({"delivery_id": STR, "status": STR, "was": STR}),
    "SyncSummaryOut": _obj({"repo": STR, "commit": _maybe(STR), "source": STR, "assets": INT, "edges": INT,
                            "exposures": INT, "registrations": INT, "problems": STRS, "seconds": {"type": "number"}}),
    "ObservedConsumer": _obj({
        "id": INT, "asset": STR, "columns": STRS, "every_column": BOOL,
        "reader": _obj({"kind": {"enum": ["role", "user", "bi"]}, "name": STR}), "folder": _maybe(STR),
        "source": STR, "team": _maybe(STR), "queries": INT, "first_seen": STR, "last_seen": STR, "stale": BOOL,
    }),
    "MappingOut": _obj({"kind": STR, "name": STR, "team": STR, "created_by": _maybe(STR), "created_at": TIME,
                        "rechecks": {"type": "integer", "description": "open pull requests reading through this"
                                     " reader, queued to be analysed again (in the answer to a new mapping)"}},
                       optional=("rechecks",)),
    "MappingList": _obj({
        "items": _array(_ref("MappingOut")),
        "unmapped": _array(_obj({"kind": STR, "name": STR, "assets": INT, "assets_read": STRS, "queries": INT,
                                 "last_seen": STR})),
    }),
    "SlackChannelList": _obj({"items": _array(_obj({"team": STR, "channel": STR}))}),
    "SlackChannelOut": _obj({"team": STR, "channel": _maybe(STR), "quiet_hours": _maybe(STR),
                             "digest_at": _maybe(STR)}),
    "SlackLinkList": _obj({"items": _array(_obj({"slack_user": STR, "github_login": STR, "linked_by": _maybe(STR),
                                                  "linked_at": _maybe(TIME)}))}),
    "SlackLinkOut": _obj({"slack_user": STR, "github_login": STR}),
    "OpenApiDocument": _obj({"openapi": STR, "info": OBJ, "paths": OBJ, "components": OBJ}),
}
"""What each operation answers on success (``components.schemas``, beside the request bodies);
every answer the test suite receives is validated against these."""


def _listing(item: str) -> dict[str, Any]:
    return _obj({"items": _array(_ref(item)), "next_cursor": _maybe(STR)})


ERRORS = ("400", "401", "403", "404")
"""What any operation may answer besides success; writes add 503 (the store cannot write now)."""


def _op(summary: str, scope: str | None, *, body: str | None = None, params: list[dict[str, Any]] | None = None,
        status: int = 200, result: str | None = None, listing: str | None = None,
        errors: tuple[int, ...] = (), also: tuple[int, ...] = ()) -> dict[str, Any]:
    """One operation; ``result`` (or ``listing``, a page of that item) names its answer's schema, and
    ``also`` lists other success statuses with the same answer (200 for "already there")."""
    if status == 204:
        responses: dict[str, Any] = {"204": {"description": "done, no body"}}
    else:
        assert result or listing, f"{summary}: every answer has a schema"
        schema = _listing(listing) if listing else _ref(result or "")
        responses = {
            str(code): {"description": "success", "content": {"application/json": {"schema": schema}}}
            for code in (status, *also)
        }
    for code in (*ERRORS, *(str(e) for e in errors)):
        responses[code] = {"$ref": "#/components/responses/Error"}
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if scope is None:
        op["security"] = []
    else:
        op["description"] = f"Scope: `{scope}`."
    parameters = list(params or [])
    if listing:
        parameters += [
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
            {"name": "cursor", "in": "query", "schema": {"type": "string"},
             "description": "`next_cursor` of the previous page (also in the `Link: rel=\"next\"` header)"},
        ]
    if parameters:
        op["parameters"] = parameters
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    return op


def _path(name: str, description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": description}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema or {"type": "string"}, "description": description}


SLUG_P = _path("slug", "team slug")
FQN_P = _path("fqn", "asset name: schema.name for SQL, the model name for dbt")
REPO_Q = _query("repo", "owner/name of the repository, when several define the asset")


@cache
def document() -> dict[str, Any]:
    """The OpenAPI document (built once)."""
    paths: dict[str, Any] = {
        "/openapi.json": {"get": _op("This document", None, result="OpenApiDocument")},
        "/teams": {
            "get": _op("List teams", "read", listing="Team"),
            "post": _op("Create a team", "admin", body="TeamCreate", status=201, result="Team",
                        errors=(409, 503)),
        },
        "/teams/{slug}": {
            "parameters": [SLUG_P],
            "get": _op("One team", "read", result="Team"),
            "patch": _op("Change a team's name or GitHub team", "admin", body="TeamUpdate", result="Team", errors=(503,)),
            "delete": _op("Delete a team (revokes its keys, drops its API registrations)", "admin", status=204,
                          errors=(503,)),
        },
        "/teams/{slug}/keys": {
            "parameters": [SLUG_P],
            "get": _op("The team's keys (never their secrets)", "admin, or the team's own write key", listing="KeyOut"),
            "post": _op("Create a key (the secret is shown once)", "admin", body="KeyCreate", status=201,
                        result="KeyCreated", errors=(503,)),
        },
        "/keys/{id}": {
            "parameters": [_path("id", "key id")],
            "delete": _op("Revoke a key", "admin, or the team's own write key for keys no wider than itself", status=204,
                          errors=(503,)),
        },
        "/assets": {
            "get": _op("Search assets", "read", listing="AssetSummary", params=[
                _query("q", "part of the asset name"), _query("owner", "owning team slug"), REPO_Q]),
        },
        "/assets/{fqn}": {
            "parameters": [FQN_P],
            "get": _op("One asset: columns, owner, contracts, consumers (and the readers discovery observed)", "read",
                       result="AssetOut", params=[REPO_Q]),
        },
        "/assets/{fqn}/contracts": {
            "parameters": [FQN_P],
            "get": _op("Contract versions, newest first", "read", result="ContractList", params=[REPO_Q]),
        },
        "/assets/{fqn}/contracts/{version}": {
            "parameters": [FQN_P, _path("version", "semver, e.g. 2.0.0")],
            "get": _op("One contract version; with diff_from, the changes from that version", "read", result="ContractOut",
                       params=[REPO_Q, _query("diff_from", "another version of this asset")]),
        },
        "/assets/{fqn}/impact": {
            "parameters": [FQN_P],
            "get": _op("Downstream assets, exposures, registrations and teams (transitive, column-level)", "read", result="ImpactOut",
                       params=[_query("column", "only what reads this column")]),
        },
        "/assets/{fqn}/audits": {
            "parameters": [FQN_P],
            "get": _op("WAP audit runs, newest first", "read", listing="AuditRunOut"),
            "post": _op("Report a WAP audit run (or a dbt run_results.json); the same run_id again is 200 when"
                        " it is the same run, 409 when not", "write, of the asset's owning team; or admin",
                        body="AuditRunBody", status=201, result="AuditRunOut", also=(200,),
                        errors=(409, 413, 503)),
        },
        "/assets/{fqn}/audits/trends": {
            "parameters": [FQN_P],
            "get": _op("Failure rates (24h/7d/30d), most failing guarantees, alerts", "read", result="TrendsOut"),
        },
        "/registrations": {
            "get": _op("Registrations", "read", listing="RegistrationOut", params=[
                _query("team", "team slug"), _query("asset", "asset fqn")]),
            "post": _op("Register what your team reads", "write (own team) or admin", body="RegistrationCreate", status=201,
                        result="RegistrationOut", also=(200,), errors=(413, 503)),
        },
        "/registrations/{id}": {
            "parameters": [_path("id", "registration id")],
            "get": _op("One registration", "read", result="RegistrationOut"),
            "delete": _op("Remove a registration", "write (own team) or admin", status=204, errors=(503,)),
        },
        "/consumers/observed": {
            "get": _op("Consumers found in query logs and BI tools: reader, columns, team, queries, last seen",
                       "read", listing="ObservedConsumer", params=[
                           _query("asset", "asset fqn"), _query("team", "team slug"),
                           _query("unmapped", "true: only readers no mapping gives a team"),
                           _query("days", "the window queries are counted in (default 30)")]),
        },
        "/discovery/mappings": {
            "get": _op("Reader mappings (warehouse role, user, BI folder → team) and the unmapped readers", "read",
                       result="MappingList", params=[_query("days", "the window queries are counted in (default 30)")]),
            "post": _op("Map a warehouse role, user or BI folder to a team", "write (own team) or admin",
                        body="DiscoveryMapping", status=201, result="MappingOut"),
        },
        "/proposals": {
            "get": _op("Proposals (pull requests Tessera analysed)", "read", listing="ProposalSummary", params=[
                _query("status", "open | closed | merged", {"enum": ["open", "closed", "merged"]}),
                _query("team", "a team asked to respond"), _query("repo", "owner/name")]),
        },
        "/proposals/{id}": {
            "parameters": [_path("id", "proposal id")],
            "get": _op("One proposal: changes, impacts, required acks, responses, verdict", "read", result="ProposalOut"),
        },
        "/proposals/{id}/acks": {
            "parameters": [_path("id", "proposal id")],
            "post": _op("Respond for your team: ack, migrating (with a deadline) or block (with a reason)",
                        "write (own team) or admin; recorded as the team's, never a person's", body="AckCreate",
                        status=201, result="AckOut", errors=(409, 503)),
        },
        "/sync/dbt": {
            "post": _op("Sync a dbt manifest for a repository and commit into the registry", "write, for a repository"
                        " the team owns (or admin); 409 when it would take over another team's asset", body="DbtSync",
                        result="SyncSummaryOut", errors=(409, 413, 422, 503)),
        },
        "/audit-log": {
            "get": _op("Who did what", "admin", listing="AuditEntry", params=[
                _query("repo", "owner/name"), _query("team", "team slug"), _query("actor", "who"),
                _query("action", "e.g. ack, key_created")]),
        },
        "/deliveries": {
            "get": _op("Webhook deliveries, newest first", "admin", listing="DeliveryOut", params=[
                _query("status", " | ".join(DELIVERY_STATUSES), {"enum": list(DELIVERY_STATUSES)})]),
        },
        "/subscriptions": {
            "get": _op("Outbound webhook subscriptions (your team's; every team's for an admin)", "read", listing="Subscription",
                       params=[_query("team", "team slug")]),
            "post": _op("Subscribe a URL to events; signed with the secret (generated and shown once unless given)",
                        "write (own team) or admin", body="SubscriptionCreate", status=201,
                        result="Subscription", errors=(503,)),
        },
        "/subscriptions/{id}": {
            "parameters": [_path("id", "subscription id")],
            "get": _op("One subscription", "read (own team) or admin", result="Subscription"),
            "patch": _op("Change URL, events or description; rotate the secret; re-enable", "write (own team) or admin",
                         body="SubscriptionUpdate", result="Subscription", errors=(503,)),
            "delete": _op("Delete a subscription (its waiting deliveries are dropped)", "write (own team) or admin",
                          status=204, errors=(503,)),
        },
        "/subscriptions/{id}/deliveries": {
            "parameters": [_path("id", "subscription id")],
            "get": _op("The subscription's delivery log, newest first (items: SubscriptionDelivery)",
                       "read (own team) or admin", listing="SubscriptionDelivery"),
        },
        "/subscriptions/{id}/deliveries/{delivery_id}/redeliver": {
            "parameters": [_path("id", "subscription id"), _path("delivery_id", "delivery id")],
            "post": _op("Send a finished delivery again (same X-Tessera-Delivery id, freshly signed)",
                        "write (own team) or admin", status=202,
                        result="SubscriptionDelivery", errors=(409, 503)),
        },
        "/slack/channels": {
            "get": _op("Each team's Slack channel (from .tessera.yml or set here)", "read", result="SlackChannelList"),
            "post": _op("Set (or with null clear) a team's Slack channel", "write (own team) or admin",
                        body="SlackChannelSet", result="SlackChannelOut", errors=(503,)),
        },
        "/slack/links": {
            "get": _op("Slack users linked to GitHub logins (who may press Acknowledge)", "admin",
                       result="SlackLinkList"),
            "post": _op("Link a Slack user id to a GitHub login", "admin", body="SlackLinkCreate", status=201,
                        result="SlackLinkOut", errors=(503,)),
        },
        "/slack/links/{slack_user}": {
            "parameters": [_path("slack_user", "Slack user id, e.g. U012ABCDEF")],
            "delete": _op("Unlink a Slack user", "admin", status=204, errors=(503,)),
        },
        "/deliveries/{id}/replay": {
            "parameters": [_path("id", "X-GitHub-Delivery id")],
            "post": _op("Queue a delivery again", "admin", status=202, result="ReplayOut", errors=(409, 503)),
        },
    }
    schemas = {**SCHEMAS, **RESPONSE_SCHEMAS}
    schemas["AuditRunBody"] = {
        "oneOf": [{"$ref": "#/components/schemas/AuditRunCreate"}, {"$ref": "#/components/schemas/DbtRunResults"}]
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tessera registry API",
            "version": "1",
            "description": (
                "Teams, keys, assets, contracts, impact, registrations, proposals and WAP audits. Errors are"
                ' `{"error": {"code", "message"}}`. Lists take `?limit=` (default 50, at most 500) and `?cursor=`'
                " and answer `{items, next_cursor}` with a `Link: <...>; rel=\"next\"` header while more remain."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "webhooks": webhooks(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "tsk_<prefix>_<secret>"}},
            "schemas": schemas,
            "responses": {
                "Error": {
                    "description": "an error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
            },
        },
    }


def webhooks() -> dict[str, Any]:
    """What subscribers receive: one POST per event, signed (see ``X-Tessera-Signature-256``)."""
    headers = {
        "X-Tessera-Event": "the event name",
        "X-Tessera-Delivery": "the delivery id: the same on every retry and redelivery (deduplicate on it)",
        "X-Tessera-Timestamp": "Unix seconds when this attempt was signed",
        "X-Tessera-Signature-256": 'sha256=<hex HMAC-SHA256 of "<X-Tessera-Timestamp>.<raw body>", keyed with the'
                                   " subscription's secret>",
    }
    proposal = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"}, "repo": {"type": "string"}, "pr_number": {"type": "integer"},
            "title": {"type": ["string", "null"]}, "author": {"type": ["string", "null"]},
            "status": {"enum": ["open", "closed", "merged"]}, "head_sha": {"type": ["string", "null"]},
            "url": {"type": "string"}, "page_url": {"type": ["string", "null"]},
        },
    }
    proposal_data = {
        "type": "object",
        "required": ["proposal"],
        "properties": {
            "proposal": proposal,
            "required_acks": {"type": "array", "items": {"type": "object"}},
            "changes": {"type": "array", "items": {"type": "object"}, "description": "the breaking changes"},
            "impacts": {"type": "array", "items": {"type": "object"}},
            "team": {"type": "string"}, "state": {"type": "string"}, "user": {"type": ["string", "null"]},
            "resolution": {"enum": ["merged", "closed", "overridden"]},
        },
    }
    data = {
        "proposal.opened": ("A pull request needs acknowledgements", proposal_data),
        "proposal.ack_required": ("A team is asked to acknowledge (again, after a push that changed what it acked)",
                                  proposal_data),
        "proposal.acked": ("A team acknowledged", proposal_data),
        "proposal.resolved": ("Merged, closed or overridden (`resolution`)", proposal_data),
        "contract.published": ("A merge published a new contract version", {
            "type": "object", "properties": {"asset": {"type": "string"}, "version": {"type": "string"},
                                             "repo": {"type": "string"}, "pr_number": {"type": "integer"},
                                             "url": {"type": "string"}}}),
        "audit.alert": ("A WAP run left alerts firing on an asset", {
            "type": "object", "properties": {"asset": {"type": "string"}, "team": {"type": ["string", "null"]},
                                             "run_id": {"type": "string"},
                                             "alerts": {"type": "array", "items": {"type": "object"}}}}),
    }
    hooks: dict[str, Any] = {}
    for event, (summary, schema) in data.items():
        hooks[event] = {"post": {
            "summary": summary,
            "parameters": [{"name": name, "in": "header", "required": True, "schema": {"type": "string"},
                            "description": text} for name, text in headers.items()],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["id", "event", "created_at", "data"],
                "properties": {"id": {"type": "string"}, "event": {"const": event}, "created_at": {"type": "number"},
                               "data": schema}}}}},
            "responses": {"2XX": {"description": "received; any other answer is retried (3xx and 4xx but 408/429"
                                                 " fail at once), with back-off honouring Retry-After"}},
        }}
    return hooks


@cache
def _validator(name: str) -> Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": document()["components"]}
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def validate(body: Any, schema: str) -> None:
    """400 with the first problem, named by where it is in the body, when ``body`` breaks ``schema``."""
    errors = sorted(_validator(schema).iter_errors(body), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if not errors:
        return
    error = errors[0]
    where = "body" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted((error.schema.get("properties") or {}).keys()))
        message = f"{where}: {error.message} (allowed: {allowed})"
    elif error.validator == "pattern":
        message = f"{where}: {str(error.instance)[:80]!r} is not in the expected form"
    else:
        message = f"{where}: {error.message[:300]}"
    raise ApiError(400, "invalid_body", message)
