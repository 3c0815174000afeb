"""What a reader of the bot's Markdown would see: text, code, links, HTML and live mentions.

The bot's comments, replies and check summaries are rendered here with the same CommonMark parser
(and GitHub's tables) the command parser uses, so tests can say what is *live* in them rather than
search the source text: a mention only counts in rendered text outside code, a link only when it
renders as one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.token import Token

GITHUB = MarkdownIt("commonmark").enable(["table", "strikethrough"])
MENTION = re.compile(r"(?<![A-Za-z0-9`])@[A-Za-z0-9][A-Za-z0-9-]*(?:/[A-Za-z0-9_.-]+)?")
"""How GitHub finds ``@user`` and ``@org/team`` in rendered text."""
REFERENCE = re.compile(r"(?<![A-Za-z0-9])#[0-9]+")
AUTOLINK = re.compile(r"(?i)(?:https?|ftp)://|(?<![A-Za-z0-9])www\.")
ALLOWED_HTML = re.compile(r"^(?:<!-- tessera:impact -->|</?details>|</?summary>|</?sub>|<br>)$")
"""The only tags the bot writes itself."""
_TAG = re.compile(r"<!--.*?-->|<[^>]*>", re.DOTALL)


@dataclass
class Rendered:
    text: list[str] = field(default_factory=list)
    """Text a reader sees outside code (where GitHub links mentions, references and URLs)."""
    code: list[str] = field(default_factory=list)
    """Contents of code spans and code blocks."""
    fences: list[tuple[str, str]] = field(default_factory=list)
    """(info string, content) of each fenced block."""
    links: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)

    @property
    def mentions(self) -> list[str]:
        return [m for chunk in self.text for m in MENTION.findall(chunk)]

    @property
    def autolinks(self) -> list[str]:
        return [m for chunk in self.text for m in AUTOLINK.findall(chunk) + REFERENCE.findall(chunk)]

    @property
    def unexpected_html(self) -> list[str]:
        return [tag for chunk in self.html for tag in _TAG.findall(chunk) if not ALLOWED_HTML.match(tag)]


def render(markdown: str) -> Rendered:
    seen = Rendered()
    _walk(GITHUB.parse(markdown), seen)
    return seen


def _walk(tokens: Iterable[Token], seen: Rendered) -> None:
    for token in tokens:
        if token.type in ("fence", "code_block"):
            seen.code.append(token.content)
            seen.fences.append((token.info, token.content))
        elif token.type == "code_inline":
            seen.code.append(token.content)
        elif token.type in ("html_block", "html_inline"):
            seen.html.append(token.content)
        elif token.type == "text":
            seen.text.append(token.content)
        elif token.type in ("link_open", "image"):
            seen.links.append(str(token.attrs.get("href") or token.attrs.get("src") or ""))
        if token.children:
            _walk(token.children, seen)
