"""The `/tessera …` slash commands, parsed out of a pull-request comment as GitHub renders it.

A command counts only where a reader sees it as one: at the start of a line of a top-level
paragraph, in plain ASCII. The comment is read by a CommonMark parser (``markdown-it-py``, with
GitHub's tables and strikethrough), so a command never counts inside a ``>`` quote (quoting
someone's command must not repeat it), a list item, a heading, a table, a code block of any fence
(```` ``` ````, ``~~~``, longer fences, indented code), an inline code span, an HTML block or
comment, or the middle of a sentence. Lines end where CommonMark says they do (``\n``, ``\r\n``,
``\r``, or a hard break); ``\u2028``, NEL and form feed are not line ends. The command word is
compared after NFKC normalisation: ``/teſſera`` or a full-width ``／ｔｅｓｓｅｒａ`` is answered as
"not a command" instead of being carried out. Which words are team names is only known once the
pull request's required teams are known, so :func:`parse_commands` keeps the words and
:func:`select_teams` / :func:`split_block` interpret them later.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.token import Token

from rules.markdown import code

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

_MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])
"""CommonMark plus the GitHub extensions that change which lines are paragraphs."""
_MARKDOWN_WITHOUT_LINKS = MarkdownIt("commonmark").enable(["table", "strikethrough"]).disable(["link", "image"])
MAX_BRACKETS = 1000
"""Above this many ``[`` a comment is read without link syntax: the parser looks for the end of
every unclosed ``[`` (65,536 of them cost ~3 s idle, 15 s on a busy machine; read without links,
~0.3 s). Only a link title spanning lines reads differently, and no real comment has that many."""
_FIRST_WORD = re.compile(r"(?P<word>\S+)\s*(?P<rest>.*)", re.DOTALL)
_NEAR_PREFIX = re.compile(r"^/(?P<word>t\w{3,9})\b(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", re.ASCII)
_CANDIDATE = re.compile(r"/\s*t", re.IGNORECASE)
"""A line that could hold a command (or a typo of one): the cheap test before the parser runs."""


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
    if not body or not _CANDIDATE.search(unicodedata.normalize("NFKC", body)):
        return []  # most comments: no parse at all
    commands: list[Command] = []
    parser = _MARKDOWN if body.count("[") <= MAX_BRACKETS else _MARKDOWN_WITHOUT_LINKS
    for line in _paragraph_lines(parser.parse(body)):
        command = _command_on(line)
        if command is not None:
            commands.append(command)
    return commands


def _paragraph_lines(tokens: Sequence[Token]) -> Iterator[str]:
    """The rendered lines of top-level paragraphs that start with plain text.

    A line that starts with a code span, inline HTML, a link or emphasis is not a command line.
    The rest of a line is written back as typed (code spans, emphasis, links and HTML with their
    markup) so a reason keeps its punctuation.
    """
    for index, token in enumerate(tokens):
        if token.type != "inline" or index == 0:
            continue
        opener = tokens[index - 1]
        if opener.type != "paragraph_open" or opener.level != 0:
            continue
        line: list[str] = []
        starts_plain = True
        links: list[Token] = []
        for child in token.children or ():
            if child.type in ("softbreak", "hardbreak"):
                if line and starts_plain:
                    yield "".join(line)
                line, starts_plain = [], True
                continue
            if not line and child.type != "text":
                starts_plain = False
            if child.type == "link_open":
                links.append(child)
            line.append(_as_typed(child, links.pop() if child.type == "link_close" and links else None))
        if line and starts_plain:
            yield "".join(line)


def _as_typed(token: Token, opened_by: Token | None) -> str:
    """A token as its source reads (near enough: entities and escapes come back resolved)."""
    if token.type == "code_inline":
        return f"{token.markup}{token.content}{token.markup}"
    if token.type == "link_open":
        return "<" if token.markup == "autolink" else "["
    if token.type == "link_close":
        if opened_by is not None and opened_by.markup == "autolink":
            return ">"
        return f"]({opened_by.attrGet('href') if opened_by is not None else ''})"
    if token.type == "image":
        return f"![{token.content}]({token.attrGet('src') or ''})"
    if token.type.endswith(("_open", "_close")):
        return token.markup
    return token.content


def _command_on(line: str) -> Command | None:
    """The command a rendered line starts with, a refusal for a near miss, or None."""
    line = line.strip()
    first = _FIRST_WORD.match(line)
    if first is None:
        return None
    word, rest = first.group("word"), first.group("rest")
    if unicodedata.normalize("NFKC", word).casefold() == PREFIX:
        if not word.isascii():
            return Command(
                verb=word,
                text=rest.strip(),
                problem=f"{code(word, limit=100)} is not {code(PREFIX)}: commands are written in plain ASCII.",
            )
        return _parse_line(rest.strip())
    near = _NEAR_PREFIX.match(line)
    if near and _is_prefix_typo(near.group("word")):
        return Command(
            verb="/" + near.group("word"),
            text=near.group("rest").strip(),
            problem=f"{code('/' + near.group('word'), limit=100)} is not a Tessera command: commands start with `/tessera`.",
        )
    return None


def _is_prefix_typo(word: str) -> bool:
    """``/tesera``, ``/tessra``, ``/Tesserra``: close to the prefix but not it."""
    lowered = word.lower()
    return lowered != "tessera" and difflib.SequenceMatcher(None, lowered, "tessera").ratio() >= 0.8


def _parse_line(rest: str) -> Command:
    if not rest:
        return Command(verb="help")
    first = _FIRST_WORD.match(rest)
    assert first is not None  # ``rest`` is stripped and not empty
    verb_word, text = first.group("word"), first.group("rest").strip()
    verb = verb_word.lower() if verb_word.isascii() else verb_word  # "\u212a".lower() == "k"
    words = tuple(text.split())
    if verb not in VERBS:
        folded = unicodedata.normalize("NFKC", verb_word).casefold()
        if folded in VERBS:
            return Command(
                verb=verb_word,
                words=words,
                text=text,
                problem=f"{code(verb_word, limit=100)} is not {code(folded)}: commands are written in plain ASCII.",
            )
        close = difflib.get_close_matches(verb, VERBS, n=1, cutoff=0.6)
        hint = f" Did you mean `/tessera {close[0]}`?" if close else ""
        return Command(
            verb=verb_word,
            words=words,
            text=text,
            problem=f"{code(verb_word, limit=100)} is not a Tessera command.{hint}",
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
            verb="migrating", words=words, text=text, problem=f"{code(date_words[0], limit=100)} is not a real date."
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
    if key.isascii() and not word.isascii():
        return None  # a look-alike letter that lower-cases to ASCII ("\u212a" is "k") names no team
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
