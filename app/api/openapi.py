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

SLUG = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"}
NAME = {"type": "string", "minLength": 1, "maxLength": 200}
FQN = {"type": "string", "minLength": 1, "maxLength": 300}
COLUMN = {"type": "string", "minLength": 1, "maxLength": 200}
REPO = {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$"}
DATETIME = {"type": "string", "format": "date-time", "maxLength": 40}
TEXT = {"type": "string", "maxLength": 2000}

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
            "github_team": {"type": ["string", "null"], "pattern": "^@?[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$"},
        },
    },
    "TeamUpdate": {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            "name": NAME,
            "github_team": {"type": ["string", "null"], "pattern": "^@?[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$"},
        },
    },
    "Team": {
        "type": "object",
        "properties": {
            "slug": {"type": "string"},
            "name": {"type": "string"},
            "github_team": {"type": ["string", "null"]},
            "created_at": {"type": "string"},
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
    "KeyCreated": {
        "type": "object",
        "description": "The only answer that ever shows `key`.",
        "properties": {
            "id": {"type": "integer"},
            "key": {"type": "string"},
            "prefix": {"type": "string"},
            "scopes": {"type": "array", "items": {"type": "string"}},
            "expires_at": {"type": ["string", "null"]},
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
            "disabled_reason": {"type": ["string", "null"]}, "created_at": {"type": "number"},
            "updated_at": {"type": "number"},
            "secret": {"type": "string", "description": "only in the answer that made (or rotated) it"},
        },
    },
    "SubscriptionDelivery": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"}, "event": {"enum": EVENT_NAMES},
            "status": {"enum": ["queued", "running", "done", "failed"]}, "attempts": {"type": "integer"},
            "last_status": {"type": ["integer", "null"]}, "last_error": {"type": ["string", "null"]},
            "created_at": {"type": "number"}, "next_attempt_at": {"type": ["number", "null"]},
            "finished_at": {"type": ["number", "null"]}, "body": {"type": "object"},
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

_LIST = {
    "type": "object",
    "properties": {"items": {"type": "array"}, "next_cursor": {"type": ["string", "null"]}},
}


ERRORS = ("400", "401", "403", "404")
"""What any operation may answer besides success; writes add 503 (the store cannot write now)."""


def _op(summary: str, scope: str | None, *, body: str | None = None, params: list[dict[str, Any]] | None = None,
        status: int = 200, result: dict[str, Any] | None = None, listing: bool = False,
        errors: tuple[int, ...] = ()) -> dict[str, Any]:
    responses: dict[str, Any] = {
        str(status): {
            "description": "success",
            "content": {"application/json": {"schema": _LIST if listing else (result or {"type": "object"})}},
        },
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
        "/openapi.json": {"get": _op("This document", None)},
        "/teams": {
            "get": _op("List teams", "read", listing=True),
            "post": _op("Create a team", "admin", body="TeamCreate", status=201, result={"$ref": "#/components/schemas/Team"},
                        errors=(409, 503)),
        },
        "/teams/{slug}": {
            "parameters": [SLUG_P],
            "get": _op("One team", "read", result={"$ref": "#/components/schemas/Team"}),
            "patch": _op("Change a team's name or GitHub team", "admin", body="TeamUpdate", errors=(503,)),
            "delete": _op("Delete a team (revokes its keys, drops its API registrations)", "admin", status=204,
                          errors=(503,)),
        },
        "/teams/{slug}/keys": {
            "parameters": [SLUG_P],
            "get": _op("The team's keys (never their secrets)", "admin, or the team's own write key", listing=True),
            "post": _op("Create a key (the secret is shown once)", "admin", body="KeyCreate", status=201,
                        result={"$ref": "#/components/schemas/KeyCreated"}, errors=(503,)),
        },
        "/keys/{id}": {
            "parameters": [_path("id", "key id")],
            "delete": _op("Revoke a key", "admin, or the team's own write key for keys no wider than itself", status=204,
                          errors=(503,)),
        },
        "/assets": {
            "get": _op("Search assets", "read", listing=True, params=[
                _query("q", "part of the asset name"), _query("owner", "owning team slug"), REPO_Q]),
        },
        "/assets/{fqn}": {
            "parameters": [FQN_P],
            "get": _op("One asset: columns, owner, contracts, consumers", "read", params=[REPO_Q]),
        },
        "/assets/{fqn}/contracts": {
            "parameters": [FQN_P],
            "get": _op("Contract versions, newest first", "read", params=[REPO_Q]),
        },
        "/assets/{fqn}/contracts/{version}": {
            "parameters": [FQN_P, _path("version", "semver, e.g. 2.0.0")],
            "get": _op("One contract version; with diff_from, the changes from that version", "read",
                       params=[REPO_Q, _query("diff_from", "another version of this asset")]),
        },
        "/assets/{fqn}/impact": {
            "parameters": [FQN_P],
            "get": _op("Downstream assets, exposures, registrations and teams (transitive, column-level)", "read",
                       params=[_query("column", "only what reads this column")]),
        },
        "/assets/{fqn}/audits": {
            "parameters": [FQN_P],
            "get": _op("WAP audit runs, newest first", "read", listing=True),
            "post": _op("Report a WAP audit run (or a dbt run_results.json); the same run_id again is 200 when"
                        " it is the same run, 409 when not", "write, of the asset's owning team; or admin",
                        body="AuditRunBody", status=201, errors=(409, 413, 503)),
        },
        "/assets/{fqn}/audits/trends": {
            "parameters": [FQN_P],
            "get": _op("Failure rates (24h/7d/30d), most failing guarantees, alerts", "read"),
        },
        "/registrations": {
            "get": _op("Registrations", "read", listing=True, params=[
                _query("team", "team slug"), _query("asset", "asset fqn")]),
            "post": _op("Register what your team reads", "write (own team) or admin", body="RegistrationCreate", status=201,
                        errors=(503,)),
        },
        "/registrations/{id}": {
            "parameters": [_path("id", "registration id")],
            "get": _op("One registration", "read"),
            "delete": _op("Remove a registration", "write (own team) or admin", status=204, errors=(503,)),
        },
        "/consumers/observed": {
            "get": _op("Consumers found in query logs and BI tools: reader, columns, team, queries, last seen",
                       "read", listing=True, params=[
                           _query("asset", "asset fqn"), _query("team", "team slug"),
                           _query("unmapped", "true: only readers no mapping gives a team"),
                           _query("days", "the window queries are counted in (default 30)")]),
        },
        "/discovery/mappings": {
            "get": _op("Reader mappings (warehouse role, user, BI folder → team) and the unmapped readers", "read",
                       params=[_query("days", "the window queries are counted in (default 30)")]),
            "post": _op("Map a warehouse role, user or BI folder to a team", "write (own team) or admin",
                        body="DiscoveryMapping", status=201),
        },
        "/proposals": {
            "get": _op("Proposals (pull requests Tessera analysed)", "read", listing=True, params=[
                _query("status", "open | closed | merged", {"enum": ["open", "closed", "merged"]}),
                _query("team", "a team asked to respond"), _query("repo", "owner/name")]),
        },
        "/proposals/{id}": {
            "parameters": [_path("id", "proposal id")],
            "get": _op("One proposal: changes, impacts, required acks, responses, verdict", "read"),
        },
        "/proposals/{id}/acks": {
            "parameters": [_path("id", "proposal id")],
            "post": _op("Respond for your team: ack, migrating (with a deadline) or block (with a reason)",
                        "write (own team) or admin; recorded as the team's, never a person's", body="AckCreate",
                        status=201, errors=(409, 503)),
        },
        "/sync/dbt": {
            "post": _op("Sync a dbt manifest for a repository and commit into the registry", "write, for a repository"
                        " the team owns (or admin); 409 when it would take over another team's asset", body="DbtSync",
                        errors=(409, 413, 422, 503)),
        },
        "/audit-log": {
            "get": _op("Who did what", "admin", listing=True, params=[
                _query("repo", "owner/name"), _query("team", "team slug"), _query("actor", "who"),
                _query("action", "e.g. ack, key_created")]),
        },
        "/deliveries": {
            "get": _op("Webhook deliveries, newest first", "admin", listing=True, params=[
                _query("status", "queued | running | done | failed", {"enum": ["queued", "running", "done", "failed"]})]),
        },
        "/subscriptions": {
            "get": _op("Outbound webhook subscriptions (your team's; every team's for an admin)", "read", listing=True,
                       params=[_query("team", "team slug")]),
            "post": _op("Subscribe a URL to events; signed with the secret (generated and shown once unless given)",
                        "write (own team) or admin", body="SubscriptionCreate", status=201,
                        result={"$ref": "#/components/schemas/Subscription"}, errors=(503,)),
        },
        "/subscriptions/{id}": {
            "parameters": [_path("id", "subscription id")],
            "get": _op("One subscription", "read (own team) or admin", result={"$ref": "#/components/schemas/Subscription"}),
            "patch": _op("Change URL, events or description; rotate the secret; re-enable", "write (own team) or admin",
                         body="SubscriptionUpdate", result={"$ref": "#/components/schemas/Subscription"}, errors=(503,)),
            "delete": _op("Delete a subscription (its waiting deliveries are dropped)", "write (own team) or admin",
                          status=204, errors=(503,)),
        },
        "/subscriptions/{id}/deliveries": {
            "parameters": [_path("id", "subscription id")],
            "get": _op("The subscription's delivery log, newest first (items: SubscriptionDelivery)",
                       "read (own team) or admin", listing=True),
        },
        "/subscriptions/{id}/deliveries/{delivery_id}/redeliver": {
            "parameters": [_path("id", "subscription id"), _path("delivery_id", "delivery id")],
            "post": _op("Send a finished delivery again (same X-Tessera-Delivery id, freshly signed)",
                        "write (own team) or admin", status=202,
                        result={"$ref": "#/components/schemas/SubscriptionDelivery"}, errors=(409, 503)),
        },
        "/slack/channels": {
            "get": _op("Each team's Slack channel (from .tessera.yml or set here)", "read"),
            "post": _op("Set (or with null clear) a team's Slack channel", "write (own team) or admin",
                        body="SlackChannelSet", errors=(503,)),
        },
        "/slack/links": {
            "get": _op("Slack users linked to GitHub logins (who may press Acknowledge)", "admin"),
            "post": _op("Link a Slack user id to a GitHub login", "admin", body="SlackLinkCreate", status=201,
                        errors=(503,)),
        },
        "/slack/links/{slack_user}": {
            "parameters": [_path("slack_user", "Slack user id, e.g. U012ABCDEF")],
            "delete": _op("Unlink a Slack user", "admin", status=204, errors=(503,)),
        },
        "/deliveries/{id}/replay": {
            "parameters": [_path("id", "X-GitHub-Delivery id")],
            "post": _op("Queue a delivery again", "admin", status=202, errors=(409, 503)),
        },
    }
    schemas = dict(SCHEMAS)
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
