"""The queued job behind an API response: bring the pull request's check and comment up to date.

Runs from the durable queue under the pull request's ordering key, so it never races the PR's own
events, and retries like any job when GitHub hiccups.
"""

from __future__ import annotations

import logging

from gidgethub.routing import Router
from gidgethub.sansio import Event

from app.api.proposals import REPUBLISH_EVENT
from app.queue import JobContext
from app.store import proposals as sql
from app.workflow.publishing import current_analysis, publish_outcome

log = logging.getLogger(__name__)

router = Router()


@router.register(REPUBLISH_EVENT)
async def republish(event: Event, ctx: JobContext) -> None:
    proposal_id = int(event.data["proposal_id"])
    proposal = await ctx.store.read(lambda db: sql.get_proposal_by_id(db, proposal_id))
    if proposal is None or proposal.check_run_id is None or ctx.github is None:
        return
    analysis = await current_analysis(ctx, proposal)
    if analysis is None:
        return
    gh = await ctx.github.for_installation(int(event.data["installation"]["id"]))
    verdict = await publish_outcome(ctx, gh, proposal, analysis, check_run_id=proposal.check_run_id)
    log.info("%s#%s: API response republished, check %s", proposal.repo, proposal.pr_number, verdict.conclusion)
