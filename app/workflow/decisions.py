"""A team's response recorded outside a comment (the registry API): the same rules, the same outcome.

The slash commands check who is speaking through GitHub team membership; a caller of
:func:`respond` has already established that (e.g. an API key of that team). What stays the same
is everything else: only a team asked to respond can ack, ask for time or block; an ack is bound
to the fingerprint of the changes it covers; a block needs a reason; every response is in the
audit log; and the pull request's comment and check are brought up to date at once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.store import proposals as sql
from app.workflow import acks as ack_rules
from app.workflow.acks import AckRecord
from app.workflow.serialize import analysis_from_json

RESPONSES = ("ack", "migrating", "block", "unack", "unblock")


class DecisionRefused(Exception):
    """The response cannot be recorded; the message says why, for the person who asked."""


async def respond(
    ctx: Any,
    *,
    repo_id: int,
    pr_number: int,
    team: str,
    response: str,
    user: str,
    deadline: dt.date | None = None,
    reason: str = "",
    source: str = "api",
) -> ack_rules.Verdict:
    """Record ``team``'s ``response`` on the pull request and publish the new verdict."""
    from app.workflow.pulls import installation_client, publish_outcome

    if response not in RESPONSES:
        raise DecisionRefused(f"unknown response {response!r}: use one of {', '.join(RESPONSES)}")
    proposal = await ctx.store.read(lambda db: sql.get_proposal(db, repo_id, pr_number))
    if proposal is None or not proposal.analysis or proposal.check_run_id is None:
        raise DecisionRefused("this pull request has not been analysed yet")
    if proposal.status != "open":
        raise DecisionRefused(f"this pull request is {proposal.status}: there is nothing left to decide")
    analysis = analysis_from_json(proposal.analysis)
    required = {r.team: r for r in analysis.required_acks}
    records = await ctx.store.read(lambda db: sql.list_acks(db, proposal.id))

    if response in ("ack", "migrating", "block"):
        if team not in required:
            asked = ", ".join(sorted(required)) or "no team"
            raise DecisionRefused(f"team {team!r} is not asked to respond on this pull request (asked: {asked})")
        if response == "block" and not reason.strip():
            raise DecisionRefused("a block needs a reason")
        need = required[team]
        record = AckRecord(
            team=team,
            response=response,
            user=user,
            fingerprint=need.fingerprint if response != "block" else "",
            deadline=deadline if response == "migrating" else None,
            reason=reason.strip(),
            github_team=need.github_team,
        )

        def write(db: Any) -> None:
            sql.put_ack(db, proposal.id, record)
            sql.audit(
                db,
                actor=user,
                action=response,
                repo=proposal.repo,
                pr_number=proposal.pr_number,
                team=team,
                detail={"source": source, "fingerprint": record.fingerprint, "deadline": deadline, "reason": reason},
            )

    else:
        kinds = ("block",) if response == "unblock" else ("ack", "migrating")
        current = records.get(team)
        if current is None or current.response not in kinds:
            what = "block" if response == "unblock" else "acknowledgement"
            raise DecisionRefused(f"team {team!r} has no {what} to withdraw on this pull request")

        def write(db: Any) -> None:
            sql.delete_ack(db, proposal.id, team)
            sql.audit(
                db,
                actor=user,
                action=response,
                repo=proposal.repo,
                pr_number=proposal.pr_number,
                team=team,
                detail={"source": source},
            )

    await ctx.store.write(write)
    gh = await installation_client(ctx, proposal.installation_id or 0)
    fresh = await ctx.store.read(lambda db: sql.get_proposal_by_id(db, proposal.id))
    return await publish_outcome(ctx, gh, fresh or proposal, analysis, check_run_id=proposal.check_run_id)
