"""Where each required team stands, and what the check concludes from it.

Responses are stored one per (pull request, team): the latest wins. Only an ``ack`` lets the
merge through; ``migrating`` asks for time (its deadline is shown, the check keeps waiting). Both
hold only while their fingerprint equals the team's current :class:`rules.model.RequiredAck`
fingerprint, so a push that keeps a team's breaking changes keeps the ack and one that changes
them turns it into ``invalidated`` (the comment says so). A ``block`` holds until ``unblock``,
whatever is pushed. An admin's ``override`` (stored under the team :data:`OVERRIDE_TEAM`) is bound
to the fingerprint of all required acks together: new breaking changes need a new decision.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from rules.model import RequiredAck
from rules.owners import holder_text

OVERRIDE_TEAM = "*"
"""The team column of an override: it speaks for every team at once."""

RESPONSES = ("ack", "migrating", "block", "override")


@dataclass(frozen=True)
class AckRecord:
    """A team's stored response on a pull request."""

    team: str
    response: str
    """``ack``, ``migrating``, ``block`` or ``override``."""
    user: str
    fingerprint: str = ""
    deadline: dt.date | None = None
    reason: str = ""
    created_at: float = 0.0
    github_team: str | None = None


@dataclass(frozen=True)
class TeamStatus:
    """One team's position on the current analysis."""

    team: str
    github_team: str | None
    state: str
    """``missing`` (no answer yet), ``acked``, ``migrating``, ``blocked``, or ``invalidated`` (acked
    changes that a later push altered: a new ack is needed)."""
    required: bool = True
    """False for a team that blocked but whose acknowledgement is no longer needed."""
    user: str | None = None
    deadline: dt.date | None = None
    reason: str = ""
    reasons: tuple[str, ...] = ()
    """Why the team must respond (from the analysis)."""
    who: str = ""
    """How the team, person or maintainers are named (``@acme/growth``, ``@dana``)."""

    @property
    def satisfied(self) -> bool:
        """Only an ack lets the merge through: ``migrating`` asks for time, so the check keeps
        waiting (as the comment tells the team) while the deadline is on record."""
        return self.state == "acked"


@dataclass(frozen=True)
class Verdict:
    """What the check run says."""

    conclusion: str
    """``success``, ``action_required`` or ``failure``; never neutral/skipped (GitHub counts those
    as passing)."""
    title: str
    statuses: tuple[TeamStatus, ...]
    override: AckRecord | None = None


def overall_fingerprint(required: Sequence[RequiredAck]) -> str:
    """One hash over every team's fingerprint: what an override was given for."""
    joined = "\n".join(sorted(f"{r.team}:{r.fingerprint}" for r in required))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:16]


def team_statuses(required: Sequence[RequiredAck], records: Mapping[str, AckRecord]) -> list[TeamStatus]:
    """Each required team's state, then any other team that still blocks."""
    statuses: list[TeamStatus] = []
    for need in required:
        record = records.get(need.team)
        base = TeamStatus(
            team=need.team, github_team=need.github_team, state="missing", reasons=need.reasons,
            who=holder_text(need) if need.kind == "user" or need.maintainers else "",
        )
        if record is None:
            statuses.append(base)
            continue
        extra = {"user": record.user, "deadline": record.deadline, "reason": record.reason}
        if record.response == "block":
            statuses.append(_replace(base, state="blocked", **extra))
        elif record.response in ("ack", "migrating"):
            if record.fingerprint == need.fingerprint:
                state = "acked" if record.response == "ack" else "migrating"
            else:
                state = "invalidated"
            statuses.append(_replace(base, state=state, **extra))
        else:
            statuses.append(base)
    known = {need.team for need in required}
    for team, record in sorted(records.items()):
        if team not in known and team != OVERRIDE_TEAM and record.response == "block":
            statuses.append(
                TeamStatus(
                    team=team,
                    github_team=record.github_team,
                    state="blocked",
                    required=False,
                    user=record.user,
                    reason=record.reason,
                )
            )
    return statuses


def _replace(status: TeamStatus, **changes: object) -> TeamStatus:
    return replace(status, **changes)  # type: ignore[arg-type]


def verdict(required: Sequence[RequiredAck], records: Mapping[str, AckRecord]) -> Verdict:
    """The check's conclusion: override, else failure on a block, else missing acks, else success."""
    statuses = tuple(team_statuses(required, records))
    override = records.get(OVERRIDE_TEAM)
    if override is not None and override.response == "override" and (
        override.fingerprint == overall_fingerprint(required)
    ):
        return Verdict("success", f"Overridden by @{override.user}", statuses, override)
    blocked = [s for s in statuses if s.state == "blocked"]
    if blocked:
        names = ", ".join(_display(s) for s in blocked)
        return Verdict("failure", f"Blocked by {names}", statuses)
    waiting = [s for s in statuses if s.required and not s.satisfied]
    if waiting:
        names = ", ".join(_display(s) for s in waiting)
        return Verdict("action_required", f"Acknowledgement needed from {names}", statuses)
    if statuses:
        return Verdict("success", "All impacted teams acknowledged", statuses)
    return Verdict("success", "No acknowledgement needed", statuses)


def _display(status: TeamStatus) -> str:
    return status.who or (f"@{status.github_team}" if status.github_team else status.team)
