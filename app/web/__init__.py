"""Tessera's web pages: server-rendered with Jinja2, one layout and one stylesheet, sign-in with
GitHub. One module per page family lists its routes; :func:`setup_web` mounts them all."""

from __future__ import annotations

import re

from aiohttp import web
from markupsafe import Markup, escape

from app.appkeys import SETTINGS_KEY
from app.web import admin, assets, audits, home, proposals, signin, slack_link, teams
from app.web.core import SIGNER_KEY, STATIC_DIR, TEMPLATES
from app.web.session import Signer

_BACKTICKS = re.compile(r"`([^`\n]{1,500})`")


def inline_code(text: object) -> Markup:
    """Text written for GitHub markdown, shown with its `code` spans as code (everything escaped)."""
    escaped = str(escape(str(text)))
    return Markup(_BACKTICKS.sub(lambda m: f"<code>{m.group(1)}</code>", escaped))


TEMPLATES.filters["inline_code"] = inline_code


def setup_web(app: web.Application) -> None:
    app[SIGNER_KEY] = Signer(app[SETTINGS_KEY].session_secret)
    assets.setup_state(app)
    app[audits.CACHE_KEY] = audits.AuditSummary()
    for module in (signin, home, proposals, assets, audits, teams, admin, slack_link):
        app.router.add_routes(module.routes())
    app.router.add_static("/static", STATIC_DIR, append_version=False, show_index=False)
