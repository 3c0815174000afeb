"""Publishing an analysis: the verdict from the stored answers, then the comment, the check and the store.

Used after a new analysis (:mod:`app.workflow.pulls`), after an answer (slash commands, Slack,
the pages) and by a re-publish through the API: one path, so the comment and the check always say
the same thing.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

import sqlite_utils

from app.github import InstallationClient
from app.notify import events as notify
from app.queue import JobContext
from app.store import proposals as sql
from app.store.proposals import Proposal
from app.store.registry import failing_audits
from app.workflow import acks as ack_rules
from app.workflow import checkrun
from app.workflow.comment import comment_body, publish, wants_comment
from app.workflow.pages import page_id
from app.workflow.serialize import analysis_from_json, analysis_to_json
from rules.model import Analysis

log = logging.getLogger(__name__)


def details_url(ctx: JobContext, check_run_id: int) -> str:
    """The check's page (signed link: the report of a private repository is not public)."""
    return f"{ctx.settings.base_url}/checks/{page_id(check_run_id, ctx.settings.webhook_secret)}"


async def _failing_audits(ctx: JobContext, fqns: set[str]) -> dict[str, Any]:
    """The registry's failing WAP audits for the changed assets."""
    if not fqns:
        return {}
    try:
        return await ctx.store.read(lambda db: failing_audits(db, fqns))
    except Exception:  # noqa: BLE001 - a registry problem must not cost the PR its check
        log.exception("could not read failing audits for %s", sorted(fqns))
        return {}


async def publish_outcome(
    ctx: JobContext,
    gh: InstallationClient,
    proposal: Proposal,
    analysis: Analysis,
    *,
    check_run_id: int,
    changed: Collection[str] = (),
    annotate: bool = False,
    new_analysis: bool = False,
    quiet: bool = False,
) -> ack_rules.Verdict:
    """Work out the verdict from the stored responses, then update comment, check and store.

    ``quiet`` (a draft pull request): the check is complete as usual, but no comment is started,
    so teams are not mentioned about work its author has not asked anyone to look at yet."""
    owner, name = proposal.owner_and_name
    records = await ctx.store.read(lambda db: sql.list_acks(db, proposal.id))
    verdict = ack_rules.verdict(analysis.required_acks, records)
    url = details_url(ctx, check_run_id)
    audits = await _failing_audits(ctx, {c.asset for c in analysis.changes})
    report = comment_body(analysis, records, details_url=url, override=verdict.override, audits=audits)

    # Each write is fenced: a replica that stalled past its job's lease, while another took the
    # job over and published, stops here instead of writing the comment and the check again.
    comment_id = proposal.comment_id
    if comment_id is not None or (wants_comment(analysis, records) and not quiet):
        await ctx.fence()
        comment_id = await publish(gh, owner, name, proposal.pr_number, report, comment_id=comment_id)

    output = checkrun.build_output(analysis, verdict, changed_paths=changed if annotate else (), details_url=url)
    bodies = checkrun.completion_requests(output, details_url=url)
    await ctx.fence()
    for body in bodies:
        await gh.update_check_run(owner, name, check_run_id, **body)

    analysis_json = analysis_to_json(analysis)

    def save(db: sqlite_utils.Database) -> None:
        if new_analysis:
            sql.finish_analysis(
                db,
                check_run_id=check_run_id,
                proposal_id=proposal.id,
                analysis_json=analysis_json,
                analysis_status=analysis.status,
                conclusion=verdict.conclusion,
                title=output.title,
                summary=output.summary,
                report=report,
                base_sha=analysis.base,
                head_sha=analysis.head,
            )
        else:
            sql.update_check_verdict(
                db,
                check_run_id=check_run_id,
                conclusion=verdict.conclusion,
                title=output.title,
                summary=output.summary,
                report=report,
            )
            sql.update_proposal(db, proposal.id, conclusion=verdict.conclusion)
        if comment_id != proposal.comment_id:
            sql.update_proposal(db, proposal.id, comment_id=comment_id)

    await ctx.fenced_write(save)
    await notify.proposal_published(ctx, gh, proposal, analysis, verdict, page_url=url, quiet=quiet)
    return verdict


async def current_analysis(ctx: JobContext, proposal: Proposal) -> Analysis | None:
    if not proposal.analysis:
        return None
    return analysis_from_json(proposal.analysis)
