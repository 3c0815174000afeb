"""The check run "Tessera": what its output says and how it reaches GitHub.

The building is pure (summary, annotations, action) so it is tested without a network; the two
small coroutines at the end send it. GitHub takes at most 50 annotations per request, so the
completing update carries the first 50 and further updates append the rest (GitHub adds
annotations up, it does not replace them). ``action_required`` needs a ``details_url``: the
``/checks/{id}`` page.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from app.workflow.acks import TeamStatus, Verdict
from rules.markdown import clip, code, mention, prose, text
from rules.model import Analysis, Change
from rules.report import zero_config_line

CHECK_NAME = "Tessera"
RECHECK_ACTION = {
    "label": "Re-check",
    "description": "Analyse this pull request again",
    "identifier": "recheck",
}
"""The button GitHub shows on the check; it comes back as a ``requested_action`` event."""

ANNOTATIONS_PER_REQUEST = 50
MAX_ANNOTATIONS = 500
"""More than this many findings helps nobody in the diff view; the page has them all."""
SUMMARY_LIMIT = 65535
TITLE_LIMIT = 255
REASON_LIMIT = 2000
"""A block or override reason is shown up to this many characters (the audit log keeps all of it)."""

LEVELS = {"breaking": "failure", "review": "warning"}
"""Annotation level per severity. Safe and informational findings get no annotation: they are
the friction the product promises not to add."""

STATE_WORDS = {
    "missing": "waiting for an acknowledgement",
    "acked": "acknowledged",
    "migrating": "migrating",
    "blocked": "blocked",
    "invalidated": "acknowledged earlier changes; the new push changed them, so a new ack is needed",
}


@dataclass(frozen=True)
class CheckOutput:
    """Everything a completed check run carries."""

    conclusion: str
    title: str
    summary: str
    annotation_batches: tuple[tuple[dict[str, Any], ...], ...]


def annotations(changes: Iterable[Change], changed_paths: Collection[str]) -> list[dict[str, Any]]:
    """Annotations on the changed lines: breaking as failures, review as warnings.

    GitHub rejects annotations on files outside the pull request's diff, so only changed paths
    are annotated; a finding without a line points at line 1 of its file.
    """
    found: list[dict[str, Any]] = []
    order = {"breaking": 0, "review": 1}
    for change in sorted(changes, key=lambda c: (order.get(c.severity, 9), c.path or "", c.line or 0)):
        level = LEVELS.get(change.severity)
        if level is None or not change.path or change.path not in changed_paths:
            continue
        line = change.line if change.line and change.line > 0 else 1
        where = f"{change.asset}.{change.column}" if change.column else change.asset
        found.append(
            {
                "path": change.path,
                "start_line": line,
                "end_line": line,
                "annotation_level": level,
                "title": _clip(f"{change.rule} ({change.severity}): {where}", TITLE_LIMIT),
                "message": _clip(change.message or change.rule, 60000),
            }
        )
        if len(found) >= MAX_ANNOTATIONS:
            break
    return found


def batches(items: Sequence[dict[str, Any]], size: int = ANNOTATIONS_PER_REQUEST) -> list[tuple[dict[str, Any], ...]]:
    return [tuple(items[i : i + size]) for i in range(0, len(items), size)]


def summary(analysis: Analysis, verdict: Verdict, *, details_url: str | None) -> str:
    """The check's summary: the verdict first, then what each team must do, then counts."""
    lines: list[str] = []
    breaking = [c for c in analysis.changes if c.severity == "breaking"]
    review = [c for c in analysis.changes if c.severity == "review"]
    safe = [c for c in analysis.changes if c.severity in ("safe", "info")]
    if verdict.override is not None:
        lines.append(f"Overridden by {mention(verdict.override.user)}: {text(_clip(verdict.override.reason, REASON_LIMIT))}")
        lines.append("")
    if verdict.statuses:
        lines.append("| who | state | why |")
        lines.append("|---|---|---|")
        for status in verdict.statuses:
            lines.append(f"| {_team(status)} | {_state(status)} | {'; '.join(prose(r, table=True) for r in status.reasons)} |")
        lines.append("")
        waiting = [s for s in verdict.statuses if s.required and not s.satisfied and s.state != "blocked"]
        if waiting and verdict.conclusion != "success":
            lines.append(
                "Members of the teams above comment `/tessera ack` (or `/tessera migrating by YYYY-MM-DD`, "
                "or `/tessera block <reason>`) on the pull request."
            )
            lines.append("")
    elif not breaking:
        lines.append("No breaking change: nothing to acknowledge.")
        lines.append("")
    lines.append(
        f"{len(breaking)} breaking, {len(review)} to review, {len(safe)} safe or informational change(s)."
    )
    for error in analysis.errors:
        lines.append(f"- Could not analyse {code(error.path)}: {prose(error.message)}")
    if analysis.notes:
        lines.append("")
        lines.extend(f"Note: {prose(note)}" for note in analysis.notes)
    setup = zero_config_line(analysis)
    if setup is not None:
        lines.append("")
        lines.append(setup)
    if details_url:
        lines.append("")
        lines.append(f"The whole report: {details_url}")
    return clip("\n".join(lines), SUMMARY_LIMIT)


def build_output(
    analysis: Analysis,
    verdict: Verdict,
    *,
    changed_paths: Collection[str],
    details_url: str | None,
) -> CheckOutput:
    return CheckOutput(
        conclusion=verdict.conclusion,
        title=_clip(verdict.title, TITLE_LIMIT),
        summary=summary(analysis, verdict, details_url=details_url),
        annotation_batches=tuple(batches(annotations(analysis.changes, changed_paths))),
    )


def completion_requests(output: CheckOutput, *, details_url: str | None) -> list[dict[str, Any]]:
    """The PATCH bodies that complete the check: the first carries the conclusion, the rest add
    annotations (each repeating title and summary, which GitHub requires with ``output``)."""
    first: dict[str, Any] = {
        "status": "completed",
        "conclusion": output.conclusion,
        "output": {"title": output.title, "summary": output.summary},
        "actions": [RECHECK_ACTION],
    }
    if details_url:
        first["details_url"] = details_url
    bodies = [first]
    for index, batch in enumerate(output.annotation_batches):
        if index == 0:
            first["output"]["annotations"] = list(batch)
        else:
            bodies.append(
                {"output": {"title": output.title, "summary": output.summary, "annotations": list(batch)}}
            )
    return bodies


def error_output(message: str) -> dict[str, Any]:
    """A check completion for an analysis that could not run: never a silent pass.

    ``message`` may quote the pull request (a file name, a line of YAML): it is shown inert."""
    return {
        "status": "completed",
        "conclusion": "action_required",
        "output": {
            "title": "Tessera could not analyse this pull request",
            "summary": clip(prose(message), SUMMARY_LIMIT - 100)
            + "\n\nPress Re-check or comment `/tessera recheck` to try again.",
        },
        "actions": [RECHECK_ACTION],
    }


def superseded_output(newer_head: str) -> dict[str, Any]:
    """The completion of a check on a head a later push replaced before its analysis was shown:
    ``cancelled`` (GitHub shows it as not run, never as passing), saying where the result is.
    The pull request's result is the check on its newest head, which its own job analyses."""
    short = newer_head[:12]
    return {
        "status": "completed",
        "conclusion": "cancelled",
        "output": {
            "title": f"Superseded by a newer push ({short})",
            "summary": (
                f"This commit is no longer the pull request's head: {code(short)} was pushed after it. "
                f"Tessera analyses the newest head instead, and the pull request's result is the "
                f"{CHECK_NAME} check on {code(short)}."
            ),
        },
    }


def _team(status: TeamStatus) -> str:
    if status.who:
        return status.who.replace("|", "\\|")  # a pipe can only be inside the name's code span
    if status.github_team:
        return mention(status.github_team, fallback=status.team, table=True)
    return code(status.team, table=True)


def _state(status: TeamStatus) -> str:
    words = STATE_WORDS.get(status.state) or text(status.state)
    if status.user and status.state in ("acked", "migrating", "blocked"):
        words += f" by {mention(status.user)}"
    if status.deadline:
        words += f" (by {status.deadline.isoformat()})"
    if status.reason and status.state == "blocked":
        words += f": {text(_clip(status.reason, REASON_LIMIT), line_start=False)}"
    return words


def _clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"
