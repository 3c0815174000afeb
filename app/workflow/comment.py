"""The single impact comment: written by the engine's report, found by its hidden marker.

A pull request gets at most one Tessera impact comment. It is created only when there is
something to say (a breaking or review finding, an error, or a response to show) and edited in
place after that, also when a later push makes the pull request clear (so nobody reads a stale
warning). The store remembers the comment's id, which saves listing comments; when the store has
no id, the comments are searched for the marker before a new one is created.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gidgethub

from app.github import InstallationClient
from app.workflow.acks import OVERRIDE_TEAM, AckRecord
from rules.markdown import code, mention, text
from rules.model import Analysis
from rules.report import MARKER, AckState, needs_comment, to_markdown

COMMENT_LIMIT = 65536


def ack_states(analysis: Analysis, records: Mapping[str, AckRecord]) -> dict[str, AckState]:
    """Stored responses as the report shows them; an ack for other changes is ``stale``."""
    fingerprints = {r.team: r.fingerprint for r in analysis.required_acks}
    states: dict[str, AckState] = {}
    for team, record in records.items():
        if team == OVERRIDE_TEAM:
            continue
        stale = record.response in ("ack", "migrating") and fingerprints.get(team) not in (None, record.fingerprint)
        states[team] = AckState(
            response=record.response,
            user=record.user,
            deadline=record.deadline.isoformat() if record.deadline else None,
            reason=_clipped(record.reason) if record.reason else None,
            stale=stale,
        )
    return states


def comment_body(
    analysis: Analysis,
    records: Mapping[str, AckRecord],
    *,
    details_url: str | None,
    override: AckRecord | None = None,
    audits: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """The comment text; an override and failing data-quality audits are said under the headline."""
    note = ""
    if override is not None:
        note = f"> **Overridden by {mention(override.user)}**: {text(_clipped(override.reason), line_start=False)}\n\n"
    note += audit_note(audits or {})
    body = to_markdown(
        analysis, details_url=details_url, acks=ack_states(analysis, records), limit=COMMENT_LIMIT - len(note)
    )
    if note:
        head, sep, rest = body.partition("\n\n")
        body = head + sep + note + rest if sep else body + "\n\n" + note
    return body


def audit_note(audits: Mapping[str, Mapping[str, Any]]) -> str:
    """Changed assets whose latest WAP audit run failed (from the registry): worth knowing before
    changing them further."""
    if not audits:
        return ""
    lines = ["> ⚠️ **Failing data-quality audits** on assets this pull request changes:"]
    for fqn, run in sorted(audits.items()):
        failed = ", ".join(code(str(g)) for g in list(run.get("failed") or [])[:10]) or "see the run"
        when = f" at {text(str(run['run_at']), line_start=False)}" if run.get("run_at") else ""
        lines.append(f"> - {code(fqn)}: run {code(str(run.get('run_id', '?')))} failed{when}: {failed}")
    return "\n".join(lines) + "\n\n"


def wants_comment(analysis: Analysis, records: Mapping[str, AckRecord]) -> bool:
    """A comment is due when the report has something to say or a team has answered."""
    return needs_comment(analysis) or bool(records)


def is_impact_comment(comment: Mapping[str, Any]) -> bool:
    """Tessera's own impact comment: the marker, written by a bot (a person quoting it does not count)."""
    body = comment.get("body") or ""
    user = comment.get("user") or {}
    return MARKER in body and user.get("type") == "Bot"


async def publish(
    github: InstallationClient, owner: str, repo: str, number: int, body: str, *, comment_id: int | None
) -> int:
    """Edit the impact comment in place (creating it the first time); returns its id."""
    if comment_id is not None:
        try:
            await github.update_issue_comment(owner, repo, comment_id, body)
            return comment_id
        except gidgethub.BadRequest as exc:
            if exc.status_code != 404:
                raise
            # Someone deleted it: fall through and look again, then create a new one.
    for comment in await github.list_issue_comments(owner, repo, number):
        if is_impact_comment(comment):
            await github.update_issue_comment(owner, repo, comment["id"], body)
            return int(comment["id"])
    created = await github.create_issue_comment(owner, repo, number, body)
    return int(created["id"])


REASON_LIMIT = 2000
"""A reason is shown up to this many characters (the audit log keeps all of it): a pasted log as
a reason must not push the comment past GitHub's limit."""


def _clipped(text: str) -> str:
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 1] + "…"
