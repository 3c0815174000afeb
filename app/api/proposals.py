"""Proposals (pull requests Tessera analysed) and team responses through the API.

A response through the API follows the rules of the PR commands (:mod:`app.workflow.slash`): only a
team the current analysis asks to respond may answer; an ``ack``/``migrating`` is bound to that
team's fingerprint (a push that changes its breaking changes invalidates it); a ``block`` needs a
reason. A key speaks only for its own team unless it is admin, and a response is recorded as that
team's, never in a person's name: a key cannot vouch for who holds it (a person answers with
``/tessera ack`` on the pull request, where GitHub says who they are); the audit log names the
key. The check run and the impact comment are then brought up to date by a queued job
(:mod:`app.api.republish`), so the request never waits on GitHub.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from dataclasses import asdict
from typing import Any

from aiohttp import web

from app.api import auth
from app.api.common import (
    id_cursor,
    int_param,
    json_response,
    page,
    page_params,
    parse_json,
    principal,
    read_body,
    store,
)
from app.api.errors import ApiError, not_found
from app.api.openapi import validate
from app.appkeys import QUEUE_KEY
from app.store import proposals as sql
from app.store.deliveries import NewDelivery
from app.store.proposals import Proposal
from app.workflow import acks as ack_rules
from app.workflow.acks import AckRecord
from app.workflow.serialize import analysis_from_json

REPUBLISH_EVENT = "tessera_republish"
"""The queued job that refreshes a pull request's check and comment after an API response."""


def _analysis(proposal: Proposal) -> Any:
    if not proposal.analysis:
        return None

    return analysis_from_json(proposal.analysis)


def _summary(p: Proposal) -> dict[str, Any]:
    required: list[str] = []
    if p.analysis:
        required = [r["team"] for r in json.loads(p.analysis).get("required_acks", [])]
    return {
        "id": p.id,
        "repo": p.repo,
        "pr_number": p.pr_number,
        "title": p.title,
        "author": p.author,
        "status": p.status,
        "head_sha": p.head_sha,
        "base_ref": p.base_ref,
        "analysis_status": p.analysis_status,
        "conclusion": p.conclusion,
        "required_teams": required,
    }


async def list_proposals(request: web.Request) -> web.Response:
    auth.require(principal(request), "read")
    limit, cursor = page_params(request)
    after = id_cursor(cursor)
    status = request.query.get("status")
    if status and status not in ("open", "closed", "merged"):
        raise ApiError(400, "invalid_request", "status is one of open, closed, merged")
    repo, team = request.query.get("repo"), request.query.get("team")
    found = await store(request).read(lambda db: sql.list_proposals_page(
            db, status=status, repo=repo, team=team, after=after, limit=limit + 1,
            keep=(lambda p: team in _summary(p)["required_teams"]) if team else None,
        ))
    last = found[limit - 1].id if len(found) > limit else None
    return page(request, [_summary(p) for p in found], limit, last)


def _ack_dict(record: AckRecord) -> dict[str, Any]:
    return {
        "team": record.team,
        "response": record.response,
        "user": record.user or None,
        "deadline": record.deadline.isoformat() if record.deadline else None,
        "reason": record.reason,
        "fingerprint": record.fingerprint,
        "github_team": record.github_team,
    }


def _detail(proposal: Proposal, records: dict[str, AckRecord]) -> dict[str, Any]:
    answer = _summary(proposal)
    analysis = _analysis(proposal)
    if analysis is None:
        answer.update(changes=[], impacts=[], required_acks=[], acks=[_ack_dict(r) for r in records.values()],
                      verdict=None)
        return answer
    verdict = ack_rules.verdict(analysis.required_acks, records)
    answer.update(
        changes=[asdict(c) for c in analysis.changes],
        impacts=analysis.to_dict()["impacts"],
        required_acks=analysis.to_dict()["required_acks"],
        migrations=[asdict(m) for m in analysis.migrations],
        acks=[_ack_dict(r) for r in records.values()],
        verdict={
            "conclusion": verdict.conclusion,
            "title": verdict.title,
            "teams": [{"team": s.team, "state": s.state, "required": s.required} for s in verdict.statuses],
        },
    )
    return answer


async def get_proposal(request: web.Request) -> web.Response:
    auth.require(principal(request), "read")
    proposal_id = int_param(request.match_info["id"], "proposal")

    def read(db: Any) -> dict[str, Any] | None:
        proposal = sql.get_proposal_by_id(db, proposal_id)
        return None if proposal is None else _detail(proposal, sql.list_acks(db, proposal_id))

    detail = await store(request).read(read)
    if detail is None:
        raise not_found(f"no proposal {proposal_id}: GET /api/v1/proposals lists them")
    return json_response(detail)


async def respond(request: web.Request) -> web.Response:
    """``ack`` / ``migrating`` / ``block`` for a team, with the PR commands' rules."""
    who = principal(request)
    proposal_id = int_param(request.match_info["id"], "proposal")
    body = parse_json(await read_body(request))
    if isinstance(body, dict) and "user" in body:
        raise ApiError(400, "invalid_body", "body.user: a response through the API is recorded as your key's team, not"
                       " a person; drop 'user' (a person answers with /tessera ack on the pull request)")
    validate(body, "AckCreate")
    team, response = body["team"], body["response"]
    auth.require_team(who, team, "write")
    reason = (body.get("reason") or "").strip()
    deadline = None
    if body.get("deadline"):
        try:
            deadline = dt.date.fromisoformat(body["deadline"])
        except ValueError:
            raise ApiError(400, "invalid_body", f"deadline {body['deadline']!r} is not a real date") from None
    if response == "block" and not reason:
        raise ApiError(400, "invalid_body", "a block needs a reason: say what must change before this can merge")

    def write(db: Any) -> tuple[Proposal, dict[str, AckRecord]] | ApiError:
        proposal = sql.get_proposal_by_id(db, proposal_id)
        if proposal is None:
            return not_found(f"no proposal {proposal_id}")
        if proposal.status != "open":
            return ApiError(409, "conflict", f"proposal {proposal_id} is {proposal.status}: responses are closed")
        analysis = _analysis(proposal)
        required = {r.team: r for r in (analysis.required_acks if analysis else ())}
        if team not in required:
            asked = ", ".join(sorted(required)) or "no team"
            return ApiError(409, "conflict", f"team {team!r} is not asked to respond on {proposal.repo}#{proposal.pr_number} (asked: {asked})")
        need = required[team]
        record = AckRecord(
            team=team,
            response=response,
            user="",  # a key is a team's, not a person's: the check and comment name the team alone
            fingerprint="" if response == "block" else need.fingerprint,
            deadline=deadline if response == "migrating" else None,
            reason=reason,
            created_at=time.time(),
            github_team=need.github_team,
        )
        sql.put_ack(db, proposal_id, record)
        sql.audit(db, actor=who.actor, action=response, repo=proposal.repo, pr_number=proposal.pr_number, team=team,
                  detail={"via": "api", "key": who.prefix, "reason": reason, "deadline": record.deadline,
                          "fingerprint": record.fingerprint})
        return proposal, sql.list_acks(db, proposal_id)

    outcome = await store(request).write(write)
    if isinstance(outcome, ApiError):
        raise outcome
    proposal, records = outcome
    await _queue_republish(request, proposal)
    answer = _detail(proposal, records)
    return json_response({"ack": _ack_dict(records[team]), "verdict": answer["verdict"]}, status=201)


async def _queue_republish(request: web.Request, proposal: Proposal) -> None:
    """A durable job, ordered with the pull request's own events, that refreshes check and comment."""
    if proposal.check_run_id is None or not proposal.installation_id:
        return
    payload = {"proposal_id": proposal.id, "installation": {"id": proposal.installation_id}}
    delivery = NewDelivery(
        delivery_id=f"api-{uuid.uuid4()}",
        event=REPUBLISH_EVENT,
        action=None,
        ordering_key=f"pr:{proposal.repo_id}#{proposal.pr_number}",
        installation_id=proposal.installation_id,
        repository=proposal.repo,
        payload=json.dumps(payload),
        received_at=time.time(),
    )
    await store(request).insert_delivery(delivery)
    queue = request.config_dict.get(QUEUE_KEY)
    if queue is not None:
        queue.notify()


def routes() -> list[web.RouteDef]:
    return [
        web.get("/proposals", list_proposals),
        web.get("/proposals/{id}", get_proposal),
        web.post("/proposals/{id}/acks", respond),
    ]
