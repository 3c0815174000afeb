"""Markdown that stays inert: how every name, path, reason and message reaches the bot's words.

Everything Tessera writes into a comment, a reply or a check summary that came from somebody else
(column and asset names, paths, team names, block and override reasons, notes, the messages of
findings) goes through one of these functions, so it can neither leave its code span, nor mention
anyone, nor link, nor turn into HTML, a table cell or a heading:

- :func:`code` puts a value in a code span fenced by more backticks than any run inside it (the
  CommonMark rule), on one line, with pipes escaped for tables;
- :func:`text` backslash-escapes Markdown punctuation and breaks ``@mentions``, ``#123``
  references and ``http://`` / ``www.`` autolinks with an invisible word joiner (GitHub links those
  after rendering, so a backslash alone would not stop them);
- :func:`prose` renders a finding's message, written by the engine as text with `` `names` ``:
  each code span is re-fenced with :func:`code` and everything between goes through :func:`text`;
- :func:`mention` writes ``@org/team`` only for a well-formed GitHub name, a code span otherwise;
- :func:`fence` and :func:`mermaid_label` do the same for code blocks and Mermaid node labels.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable

WORD_JOINER = "\u2060"
"""Invisible, and enough to stop GitHub's mention, reference and autolink filters."""

_LINE_BREAKS = re.compile(r"[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
_UNSAFE_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Control characters and the bidirectional overrides that make text read differently from what
it is ("Trojan source"): shown as U+FFFD."""
_PUNCTUATION = re.compile(r"([\\`*\[\]<>&|~$]|(?<![^\W_])_|_(?![^\W_]))")
"""Markdown punctuation; ``_`` only where it could open or close emphasis (not in ``plan_code``)."""
_LEADING_BLOCK = re.compile(r"^(\s*)(?:([#>+=-])|([0-9]{1,9})([.)]))")
_LINKISH = re.compile(r"@|#(?=[0-9])|:(?=//)|(?<![A-Za-z0-9])(?i:www)(?=\.)")
_TICKS = re.compile(r"`+")
_GITHUB_NAME = re.compile(r"^@?[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:/[A-Za-z0-9][A-Za-z0-9_.-]{0,99})?$")
_MERMAID_SAFE = re.compile(r"[^\W_]|[ ._\-/:,+=()]")


def one_line(value: str) -> str:
    """``value`` on one line, without control characters or bidirectional overrides."""
    return _UNSAFE_CONTROLS.sub("\ufffd", _LINE_BREAKS.sub(" ", value))


def code(value: str | None, *, table: bool = False, limit: int | None = None) -> str:
    """``value`` as an inline code span nothing inside can close; ``table`` for a table cell."""
    content = one_line(value or "")
    if limit is not None and len(content) > limit:
        content = content[: max(limit - 3, 0)] + "..."
    if table:
        # GitHub splits table cells before reading code spans: a pipe must be "\|" even in code
        # (the backslash is taken off again; one before a pipe is never read as escaping another).
        content = content.replace("|", "\\|")
    if not content:
        return "` `"
    longest = max((len(run) for run in _TICKS.findall(content)), default=0)
    ticks = "`" * (longest + 1)
    pad = content[0] == "`" or content[-1] == "`" or (content[0] == content[-1] == " " and content.strip(" ") != "")
    space = " " if pad else ""
    return f"{ticks}{space}{content}{space}{ticks}"


def text(value: str | None, *, line_start: bool = True) -> str:
    """``value`` as plain text: no formatting, HTML, mention, reference or link survives.

    ``line_start``: the text may begin a block (after a list marker, in a table cell), so a
    leading ``#``, ``>``, ``-`` or ``1.`` is escaped too.
    """
    escaped = _PUNCTUATION.sub(r"\\\1", one_line(value or ""))
    if line_start:
        escaped = _LEADING_BLOCK.sub(_escape_leading, escaped, count=1)
    return _LINKISH.sub(lambda m: m.group() + WORD_JOINER, escaped)


def _escape_leading(match: re.Match[str]) -> str:
    space, mark, number, dot = match.groups()
    return f"{space}\\{mark}" if mark else f"{space}{number}\\{dot}"


def prose(message: str | None, *, table: bool = False, names: Iterable[str | None] = ()) -> str:
    """A message written as text with `` `code spans` `` (how the engine names things), made inert.

    ``names`` are the values the message quotes (a finding's column, asset, before and after):
    each `` `name` `` is shown as one code span, whatever the name holds. Other code spans are
    found by the CommonMark rule (a run of backticks closed by a run of the same length; an
    unmatched run is literal) and re-fenced, so a name holding backticks cannot end its span early
    and let what follows run as Markdown; the text between is escaped by :func:`text`.
    """
    message = message or ""
    known = sorted({name for name in names if name and "`" in name}, key=len, reverse=True)
    if not known:
        return _spans(message, table=table, line_start=True)
    quoted = re.compile("|".join(re.escape(f"`{name}`") for name in known))
    parts: list[str] = []
    plain_from = 0
    for match in quoted.finditer(message):
        parts.append(_spans(message[plain_from : match.start()], table=table, line_start=not parts))
        parts.append(code(match.group()[1:-1], table=table))
        plain_from = match.end()
    parts.append(_spans(message[plain_from:], table=table, line_start=not parts))
    return "".join(parts)


def _spans(message: str, *, table: bool, line_start: bool) -> str:
    runs = [(m.start(), m.end()) for m in _TICKS.finditer(message)]
    by_length: dict[int, list[int]] = {}
    for index, (start, end) in enumerate(runs):
        by_length.setdefault(end - start, []).append(index)
    parts: list[str] = []
    plain_from = 0
    index = 0
    while index < len(runs):
        start, end = runs[index]
        same = by_length[end - start]
        at = bisect.bisect_right(same, index)
        if at == len(same):
            index += 1  # never closed: literal backticks, escaped with the text around them
            continue
        closing = same[at]
        parts.append(text(message[plain_from:start], line_start=line_start and not parts))
        parts.append(code(_span_content(message[end : runs[closing][0]]), table=table))
        plain_from = runs[closing][1]
        index = closing + 1
    parts.append(text(message[plain_from:], line_start=line_start and not parts))
    return "".join(parts)


def _span_content(raw: str) -> str:
    """What CommonMark shows for a code span's raw content: one surrounding space stripped."""
    raw = _LINE_BREAKS.sub(" ", raw)
    if len(raw) >= 2 and raw[0] == " " and raw[-1] == " " and raw.strip(" "):
        return raw[1:-1]
    return raw


def mention(name: str | None, *, fallback: str | None = None, table: bool = False) -> str:
    """``@login`` or ``@org/team`` for a well-formed GitHub name; anything else as code.

    A team named in a dbt owner or a configuration may be anything; only a real GitHub name
    becomes a mention (``@org/everyone`` is well-formed: who may be named is configuration's job).
    """
    if name and _GITHUB_NAME.match(name):
        return "@" + name.lstrip("@")
    shown = name or fallback
    return code(shown, table=table) if shown else "_no team_"


def fence(body: str, *, minimum: int = 3) -> str:
    """A backtick fence longer than any backtick run in ``body``: nothing inside can close it."""
    longest = max((len(run) for run in _TICKS.findall(body)), default=0)
    return "`" * max(minimum, longest + 1)


def mermaid_label(name: str) -> str:
    """A Mermaid node label from any name: everything but letters, digits and plain punctuation
    becomes a ``#code;`` entity, so no quote, bracket, newline or ``;`` can end the label or start
    a statement (``click … href``), and no backtick can end the fenced block."""
    return "".join(ch if _MERMAID_SAFE.fullmatch(ch) else f"#{ord(ch)};" for ch in name)


def clip(markdown: str, limit: int) -> str:
    """``markdown`` cut to at most ``limit`` characters at a line end, with "…" after the cut.

    Cutting inside a line could leave a code span without its closing fence, and then what it
    held would render as live Markdown; no line is built to span two lines, so a line end is safe.
    """
    if len(markdown) <= limit:
        return markdown
    cut = markdown.rfind("\n", 0, max(limit - 2, 0))
    return (markdown[:cut] if cut > 0 else "") + "\n…"
