"""Generated comments: only a paragraph line that starts with the ASCII command counts.

Each comment is built from CommonMark constructs (paragraphs, quotes, fences of any length and
either character, indented code, HTML comments and blocks, lists, code spans), with commands put
in all of them, joined by Unicode characters that are not line ends, and with look-alike prefixes.
Every command carries its own team word, so the test knows exactly which ones must count: those
at the start of a line of a top-level paragraph, written in ASCII.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from app.workflow.commands import parse_commands

WORDS = st.sampled_from(["looks", "fine", "to", "me", "thanks", "see", "the", "dashboard", "ok"])
NOT_LINE_ENDS = st.sampled_from(["\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\u00a0 "])
LOOK_ALIKES = st.sampled_from(["/teſſera", "／ｔｅｓｓｅｒａ", "/tеssera", "/tessera\u200b", "/te\u017fsera"])
LINE_ENDS = st.sampled_from(["\n", "\r\n"])


@dataclass(frozen=True)
class Piece:
    """Markdown source, and the team words of the commands in it that must count (in order)."""

    source: str
    counted: tuple[str, ...] = ()


class Teams:
    """Hands out a fresh team word per command, so each one is traceable."""

    def __init__(self) -> None:
        self.n = 0

    def next(self) -> str:
        self.n += 1
        return f"team{self.n}"


@st.composite
def sentence(draw: st.DrawFn) -> str:
    return " ".join(draw(st.lists(WORDS, min_size=1, max_size=4)))


@st.composite
def paragraph(draw: st.DrawFn, teams: Teams) -> Piece:
    """Lines of a top-level paragraph: plain lines, commands at the start, commands mid-sentence,
    commands after a non-line-end character, look-alike prefixes, code spans."""
    lines: list[str] = []
    counted: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["plain", "command", "mid", "joined", "look_alike", "code_span"]))
        team = teams.next()
        if kind == "plain":
            lines.append(draw(sentence()))
        elif kind == "command":
            lines.append(f"/tessera ack {team}")
            counted.append(team)
        elif kind == "mid":
            lines.append(f"{draw(sentence())} /tessera ack {team}")
        elif kind == "joined":
            lines.append(f"{draw(sentence())}{draw(NOT_LINE_ENDS)}/tessera ack {team}")
        elif kind == "look_alike":
            lines.append(f"{draw(LOOK_ALIKES)} ack {team}")
        else:
            lines.append(f"`/tessera ack {team}`")
    breaks = [draw(st.sampled_from(["\n", "\r\n", "  \n", "\\\n"])) for _ in lines[1:]]
    source = lines[0] + "".join(b + line for b, line in zip(breaks, lines[1:], strict=True))
    return Piece(source, tuple(counted))


@st.composite
def never_counted(draw: st.DrawFn, teams: Teams) -> Piece:
    """A construct whose commands GitHub never shows at the start of a paragraph line."""
    team = teams.next()
    command = f"/tessera ack {team}"
    kind = draw(
        st.sampled_from(
            ["quote", "lazy_quote", "fence", "tilde_fence", "indented", "html_comment", "html_block", "list", "heading"]
        )
    )
    if kind == "quote":
        return Piece(f"> {draw(sentence())}\n> {command}")
    if kind == "lazy_quote":
        return Piece(f"> {draw(sentence())}\n{command}")
    if kind == "fence":
        n = draw(st.integers(3, 6))
        inner = draw(st.sampled_from(["~~~", "`" * (n - 1), "~" * (n + 1)]))
        return Piece(f"{'`' * n}\n{inner}\n{command}\n{'`' * n}")
    if kind == "tilde_fence":
        n = draw(st.integers(3, 6))
        inner = draw(st.sampled_from(["```", "~" * (n - 1), "`" * (n + 1)]))
        return Piece(f"{'~' * n}sql\n{inner}\n{command}\n{'~' * n}")
    if kind == "indented":
        return Piece(f"    {command}")
    if kind == "html_comment":
        return Piece(f"<!-- {draw(sentence())}\n{command}\n-->")
    if kind == "html_block":
        return Piece(f"<div>\n{command}\n</div>")
    if kind == "list":
        return Piece(f"{draw(st.sampled_from(['-', '*', '+', '1.']))} {command}")
    return Piece(f"## {command}")


@st.composite
def comment(draw: st.DrawFn) -> tuple[str, tuple[str, ...]]:
    teams = Teams()
    pieces = draw(
        st.lists(st.one_of(paragraph(teams), never_counted(teams)), min_size=1, max_size=6)
    )
    end = draw(LINE_ENDS)
    body = "".join(piece.source + end + end for piece in pieces)
    return body, tuple(team for piece in pieces for team in piece.counted)


@settings(max_examples=300, deadline=None)
@given(comment())
def test_only_a_paragraph_line_starting_with_the_ascii_command_counts(case: tuple[str, tuple[str, ...]]) -> None:
    body, expected = case
    commands = parse_commands(body)
    carried_out = tuple(word for c in commands if c.problem is None for word in c.words)
    assert carried_out == expected, body
    assert all(c.verb == "ack" for c in commands if c.problem is None)
