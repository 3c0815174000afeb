"""The fake GitHub's web pages for pull requests: what a person sees on github.com.

Why: the App's pages link to "the pull request on GitHub", and in the demo that is the fake; these
pages show what the App did there (its comment, its check run and the check's conclusion, every
comment and reaction) so a visitor sees the whole loop, and a test reads the check's state the way
a person would. Markdown is rendered with raw HTML off, so a comment cannot inject markup.
"""

from __future__ import annotations

import html
import re
from typing import Protocol

from markdown_it import MarkdownIt

_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
PULL_PAGE = re.compile(r"^/(?P<owner>[^/]+)/(?P<repo>[^/]+)/pull/(?P<number>[0-9]+)/?$")
PULLS_PAGE = re.compile(r"^/(?P<owner>[^/]+)/(?P<repo>[^/]+)/pulls/?$")
STYLE = """
body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1f2328;background:#fff}
header{background:#24292f;color:#fff;padding:.6rem 1rem}main{max-width:60rem;margin:0 auto;padding:1rem}
a{color:#0969da}.muted{color:#59636e}article{border:1px solid #d1d9e0;border-radius:6px;margin:1rem 0}
article h3{background:#f6f8fa;margin:0;padding:.4rem .8rem;font-size:.9rem;border-bottom:1px solid #d1d9e0}
article div{padding:0 .8rem;overflow-x:auto}table{border-collapse:collapse}td,th{border:1px solid #d1d9e0;padding:.2rem .4rem}
.check{padding:.4rem .8rem;border:1px solid #d1d9e0;border-radius:6px}.success{color:#1a7f37}.failure{color:#d1242f}
.action_required,.neutral,.in_progress,.queued{color:#9a6700}
"""


class Pull(Protocol):
    number: int
    title: str
    author: str
    base_ref: str
    head_ref: str
    head_sha: str
    body: str
    state: str
    merged: bool


class Comment(Protocol):
    body: str
    user: str
    created_at: str


class CheckRun(Protocol):
    name: str
    status: str
    conclusion: str | None
    details_url: str | None
    output: dict[str, object]


def _page(title: str, signed_in_as: str | None, body: str) -> str:
    who = f"Signed in as @{html.escape(signed_in_as)}" if signed_in_as else "Not signed in"
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><header>Fake GitHub (the demo's) · {who}</header>"
        f"<main>{body}</main></body></html>"
    )


def pull_page(
    repo: str, pull: Pull, checks: list[CheckRun], comments: list[Comment], signed_in_as: str | None
) -> str:
    """One pull request: its checks on the head commit, then the conversation."""
    state = "merged" if pull.merged else pull.state
    runs = "".join(
        f'<li class="check {html.escape(run.conclusion or run.status)}" data-name="{html.escape(run.name)}"'
        f' data-conclusion="{html.escape(run.conclusion or "")}"><strong>{html.escape(run.name)}</strong>:'
        f" {html.escape(run.conclusion or run.status)}"
        f"{' · ' + html.escape(str(run.output.get('title'))) if run.output.get('title') else ''}"
        f"{_details(run.details_url)}</li>"
        for run in checks
    ) or "<li>No checks yet.</li>"
    conversation = "".join(
        f'<article><h3>@{html.escape(c.user)} <span class="muted">commented {html.escape(c.created_at)}</span></h3>'
        f"<div>{_MARKDOWN.render(c.body)}</div></article>"
        for c in comments
    )
    description = _MARKDOWN.render(pull.body) if pull.body else '<p class="muted">No description.</p>'
    body = (
        f'<p><a href="/{html.escape(repo)}/pulls">{html.escape(repo)}</a></p>'
        f"<h1>{html.escape(pull.title)} <span class=muted>#{pull.number}</span></h1>"
        f'<p class="muted">{html.escape(state)} · @{html.escape(pull.author)} wants to merge'
        f" <code>{html.escape(pull.head_ref)}</code> into <code>{html.escape(pull.base_ref)}</code></p>"
        f"<article><h3>@{html.escape(pull.author)}</h3><div>{description}</div></article>"
        f'<h2 id="checks">Checks on {html.escape(pull.head_sha[:7])}</h2><ul>{runs}</ul>'
        f'<h2 id="conversation">Conversation</h2>{conversation or "<p>No comments.</p>"}'
    )
    return _page(f"{pull.title} · Pull Request #{pull.number} · {repo}", signed_in_as, body)


def _details(url: str | None) -> str:
    if not url or not url.startswith(("http://", "https://")):
        return ""
    return f' · <a href="{html.escape(url)}">Details</a>'


def pulls_page(repo: str, pulls: list[tuple[Pull, CheckRun | None]], signed_in_as: str | None) -> str:
    """A repository's pull requests, newest first, with the state of each one's Tessera check."""
    rows = "".join(
        f'<li><a href="/{html.escape(repo)}/pull/{p.number}">#{p.number} {html.escape(p.title)}</a>'
        f" by @{html.escape(p.author)}{_check_word(run)}</li>"
        for p, run in sorted(pulls, key=lambda item: -item[0].number)
    )
    return _page(f"Pull requests · {repo}", signed_in_as,
                 f"<h1>Pull requests of {html.escape(repo)}</h1><ul>{rows or '<li>None.</li>'}</ul>")


def _check_word(run: CheckRun | None) -> str:
    if run is None:
        return ""
    word = run.conclusion or run.status
    return f' · <span class="{html.escape(word)}">{html.escape(run.name)}: {html.escape(word)}</span>'
