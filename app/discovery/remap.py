"""Mapping an observed reader to a team, and what follows: the open pull requests it reads are
analysed again, so their check waits for that team from now on.

The API (``POST /api/v1/discovery/mappings``) and the discovery page both map through
:func:`map_reader` (stored and logged in one transaction) and then :func:`queue_rechecks`. A
recheck is a job on the durable queue under the pull request's own ordering key, like a
delivery: it never races the pull request's events, survives a restart and retries when GitHub
hiccups. Only pull requests whose last analysis lists the reader as a consumer are queued.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gidgethub.routing import Router
from gidgethub.sansio import Event

from app.queue import JobContext
from app.store import Store
from app.store import observed as observed_sql
from app.store import proposals as proposal_sql
from app.store import registry as reg_sql
from app.store.db import Database
from app.store.deliveries import NewDelivery
from app.store.proposals import Proposal
from app.workflow.pulls import recheck
from app.workflow.serialize import analysis_from_json
from rules.observed import safe_name

RECHECK_EVENT = "tessera_discovery_recheck"
"""The queued job that analyses an open pull request again after one of its readers was mapped."""
KINDS = ("role", "user", "folder")
MAX_RECHECKS = 500
"""Open pull requests queued again for one mapping at most (the busiest installations have fewer)."""

router = Router()


def map_reader(
    db: Database, *, kind: str, name: str, team: str, actor: str
) -> tuple[dict[str, Any], list[Proposal]] | str:
    """Map a warehouse role or user, or a BI folder, to ``team`` and log it: the mapping and the
    open pull requests that read through that reader, or why it was refused."""
    name = name.strip()
    if kind not in KINDS:
        return f"kind is one of {', '.join(KINDS)}"
    if not name or len(name) > 300:
        return "name the reader: 1 to 300 characters"
    if reg_sql.get_team(db, team) is None:
        return f"no team {team!r}: an admin creates it with POST /api/v1/teams"
    mapping = observed_sql.set_mapping(db, kind=kind, name=name, team=team, created_by=actor)
    proposal_sql.audit(db, actor=actor, action="discovery_mapped", team=team,
                       detail={"kind": mapping["kind"], "name": mapping["name"]})
    return mapping, touched_proposals(db, kind, name)


def reader_labels(db: Database, kind: str, name: str) -> set[str]:
    """How the analysis names the consumers this reader (or, for a folder, its BI objects) is:
    ``role LOOKER_FINANCE``, ``bi looker explore finance.revenue``; lower-cased."""
    if kind != "folder":
        return {f"{kind} {safe_name(name)}".lower()}
    rows = db.execute(
        "SELECT DISTINCT reader FROM observed_consumers WHERE reader_kind = 'bi' AND lower(folder) = ?",
        (name.strip().lower(),),
    ).fetchall()
    return {f"bi {safe_name(reader)}".lower() for (reader,) in rows}


def _names_reader(consumer: str, labels: set[str]) -> bool:
    text = consumer.lower()
    return text in labels or text.split(" (not seen since", 1)[0] in labels


def touched_proposals(db: Database, kind: str, name: str) -> list[Proposal]:
    """Open pull requests whose last analysis lists this reader among the consumers it reaches."""
    labels = reader_labels(db, kind, name)
    if not labels:
        return []

    def reads_through(proposal: Proposal) -> bool:
        if not proposal.analysis or proposal.check_run_id is None or not proposal.installation_id:
            return False
        impacts = analysis_from_json(proposal.analysis).impacts
        return any(i.consumer_type == "query" and _names_reader(i.consumer, labels) for i in impacts)

    return proposal_sql.list_proposals_page(db, status="open", limit=MAX_RECHECKS, keep=reads_through)


async def queue_rechecks(
    store: Store, proposals: Iterable[Proposal], *, wake: Callable[[], None] | None = None
) -> int:
    """One recheck job per pull request (``wake``: the queue's ``notify``); how many were queued."""
    count = 0
    for proposal in proposals:
        payload = {"installation": {"id": proposal.installation_id},
                   "repository": {"id": proposal.repo_id, "full_name": proposal.repo},
                   "number": proposal.pr_number}
        await store.insert_delivery(NewDelivery(
            delivery_id=f"discovery-{uuid.uuid4()}",
            event=RECHECK_EVENT,
            action=None,
            ordering_key=f"pr:{proposal.repo_id}#{proposal.pr_number}",
            installation_id=proposal.installation_id,
            repository=proposal.repo,
            payload=json.dumps(payload),
            received_at=time.time(),
        ))
        count += 1
    if count and wake is not None:
        wake()
    return count


@router.register(RECHECK_EVENT)
async def recheck_after_mapping(event: Event, ctx: JobContext) -> None:
    """Analyse the pull request again (its reader now has a team); a closed one is left alone."""
    data: Mapping[str, Any] = event.data
    await recheck(ctx, installation_id=int(data["installation"]["id"]), repository=data["repository"],
                  number=int(data["number"]))
