"""The `/tessera …` slash commands, parsed out of a pull-request comment.

Parsing is pure and strict on purpose: a command counts only when ``/tessera`` starts a line (so
a sentence that mentions ``/tessera ack`` does nothing), never inside a fenced code block or a
``>`` quote (quoting someone's command must not repeat it). Which words are team names is only
known once the pull request's required teams are known, so :func:`parse_commands` keeps the words
and :func:`select_teams` / :func:`split_block` interpret them later.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

PREFIX = "/tessera"

VERBS: tuple[str, ...] = (
    "ack",
    "migrating",
    "block",
    "unblock",
    "unack",
    "status",
    "recheck",
    "override",
    "help",
)
"""Every verb, in the order the help text lists them."""

HELP_LINES: tuple[tuple[str, str], ...] = (
    ("/tessera ack [team…]", "acknowledge the breaking changes for your team(s)"),
    ("/tessera migrating [team…] [by YYYY-MM-DD]", "ask for time: records when you will have migrated (the check waits for an ack)"),
    ("/tessera block [team] <reason>", "block the merge until your team unblocks it"),
    ("/tessera unblock [team]", "lift your team's block"),
    ("/tessera unack [team]", "withdraw your team's acknowledgement"),
    ("/tessera status", "show who still needs to respond"),
    ("/tessera recheck", "analyse the pull request again"),
    ("/tessera override <reason>", "repository admins: let the merge through, with a recorded reason"),
    ("/tessera help", "show this list"),
)

_LINE = re.compile(r"^[ \t]{0,3}/tessera(?:[ \t]+(?P<rest>.*))?$", re.IGNORECASE)
_NEAR_PREFIX = re.compile(r"^[ \t]{0,3}/(?P<word>t\w{3,9})\b(?P<rest>.*)$", re.IGNORECASE)
_FENCE = re.compile(r"^[ \t]{0,3}(```|~~~)")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Command:
    """One command line. ``problem`` is set when it cannot be carried out as written."""

    verb: str
    """A verb from :data:`VERBS`, or the unknown word as typed (then ``problem`` says so)."""
    words: tuple[str, ...] = ()
    """The words after the verb (team names, reason words), ``by DATE`` removed for ``migrating``."""
    text: str = ""
    """Everything after the verb, as typed (reasons keep their spelling and punctuation)."""
    deadline: dt.date | None = None
    problem: str | None = None
    suggestion: str | None = None
    """For a mistyped verb, the closest real one."""


def parse_commands(body: str | None) -> list[Command]:
    """Every command in a comment body, in order; an empty list when there is none."""
    commands: list[Command] = []
    in_fence = False
    for raw in (body or "").splitlines():
        if _FENCE.match(raw):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        match = _LINE.match(raw.rstrip())
        if match is None:
            near = _NEAR_PREFIX.match(raw.rstrip())
            if near and _is_prefix_typo(near.group("word")):
                commands.append(
                    Command(
                        verb="/" + near.group("word"),
                        text=near.group("rest").strip(),
                        problem=f"`/{near.group('word')}` is not a Tessera command: commands start with `/tessera`.",
                    )
                )
            continue
        commands.append(_parse_line((match.group("rest") or "").strip()))
    return commands


def _is_prefix_typo(word: str) -> bool:
    """``/tesera``, ``/tessra``, ``/Tesserra``: close to the prefix but not it."""
    lowered = word.lower()
    return lowered != "tessera" and difflib.SequenceMatcher(None, lowered, "tessera").ratio() >= 0.8


def _parse_line(rest: str) -> Command:
    if not rest:
        return Command(verb="help")
    verb_word, _, text = rest.partition(" ")
    text = text.strip()
    verb = verb_word.lower()
    words = tuple(text.split())
    if verb not in VERBS:
        close = difflib.get_close_matches(verb, VERBS, n=1, cutoff=0.6)
        hint = f" Did you mean `/tessera {close[0]}`?" if close else ""
        return Command(
            verb=verb_word,
            words=words,
            text=text,
            problem=f"`{verb_word}` is not a Tessera command.{hint}",
            suggestion=close[0] if close else None,
        )
    if verb == "migrating":
        return _parse_migrating(words, text)
    if verb == "override" and not text:
        return Command(verb=verb, problem="An override needs a reason: `/tessera override <reason>`.")
    if verb in ("status", "recheck", "help") and words:
        # Extra words are harmless here; keep them so the reply can ignore them quietly.
        return Command(verb=verb, words=words, text=text)
    return Command(verb=verb, words=words, text=text)


def _parse_migrating(words: tuple[str, ...], text: str) -> Command:
    lowered = [w.lower() for w in words]
    if "by" not in lowered:
        return Command(verb="migrating", words=words, text=text)
    at = lowered.index("by")
    date_words = words[at + 1 :]
    if len(date_words) != 1 or not _DATE.match(date_words[0]):
        return Command(
            verb="migrating",
            words=words,
            text=text,
            problem="Give the date as `by YYYY-MM-DD`, e.g. `/tessera migrating by 2026-12-31`.",
        )
    try:
        deadline = dt.date.fromisoformat(date_words[0])
    except ValueError:
        return Command(
            verb="migrating", words=words, text=text, problem=f"`{date_words[0]}` is not a real date."
        )
    return Command(verb="migrating", words=words[:at], text=text, deadline=deadline)


def help_text(problem: str | None = None) -> str:
    """The reply to `/tessera help` and to a mistyped command."""
    lines = [problem, ""] if problem else []
    lines.append("Tessera understands these commands (each at the start of a line):")
    lines.append("")
    lines.extend(f"- `{usage}`: {what}" for usage, what in HELP_LINES)
    lines.append("")
    lines.append("With no team named, a command applies to every required team you are an active member of.")
    return "\n".join(lines)


# --- team names ---------------------------------------------------------------------------------


def team_aliases(slug: str, github_team: str | None) -> set[str]:
    """The spellings a commenter may use for a team: ``growth``, ``acme/growth``, ``@acme/growth``."""
    names = {slug.lower()}
    if github_team:
        gh = github_team.lower().lstrip("@")
        names.update({gh, "@" + gh, gh.rpartition("/")[2]})
    return names


def _resolve(word: str, teams: Mapping[str, str | None]) -> str | None:
    key = word.lower().rstrip(",.;")
    for slug, github_team in teams.items():
        if key in team_aliases(slug, github_team):
            return slug
    return None


def select_teams(words: Iterable[str], teams: Mapping[str, str | None]) -> tuple[list[str], list[str]]:
    """Split words into known team slugs (in order, once each) and words that name no team.

    ``teams`` maps each team slug that matters on this pull request to its GitHub team.
    """
    found: list[str] = []
    unknown: list[str] = []
    for word in words:
        slug = _resolve(word, teams)
        if slug is None:
            unknown.append(word)
        elif slug not in found:
            found.append(slug)
    return found, unknown


def split_block(command: Command, teams: Mapping[str, str | None]) -> tuple[list[str], str]:
    """For ``block [team] <reason>``: the leading team names, then the reason (possibly empty)."""
    found: list[str] = []
    rest = list(command.text.split())
    while rest:
        slug = _resolve(rest[0], teams)
        if slug is None:
            break
        if slug not in found:
            found.append(slug)
        rest.pop(0)
    # Keep the reason's own spacing: cut the matched words off the front of the raw text.
    reason = command.text
    for _ in range(len(command.text.split()) - len(rest)):
        reason = reason.lstrip().partition(" ")[2] if " " in reason.lstrip() else ""
    return found, reason.strip()
