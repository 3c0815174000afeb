"""What every page shares: the templates, the signed-in person, CSRF checks and the response headers.

Pages are rendered on the server with Jinja2 (autoescaping on: everything shown may come from a
pull request or a registry sync). The Content-Security-Policy allows only this App's own styles
and scripts, so the page can reach nothing else, and a page reads fully with JavaScript off.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import jinja2
from aiohttp import web

from app.appkeys import GITHUB_KEY, SETTINGS_KEY, STORE_KEY
from app.config import Settings
from app.store import Store
from app.web.session import Session, Signer, read_session

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"

SIGNER_KEY: web.AppKey[Signer] = web.AppKey("web_signer", Signer)
SESSION_KEY = "tessera_web_session"

CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def settings_of(request: web.Request) -> Settings:
    return request.app[SETTINGS_KEY]


def store_of(request: web.Request) -> Store:
    return request.app[STORE_KEY]


def github_of(request: web.Request) -> object | None:
    return request.app[GITHUB_KEY]


def signer_of(request: web.Request) -> Signer:
    return request.app[SIGNER_KEY]


def session_of(request: web.Request) -> Session | None:
    """The signed-in person, read once per request."""
    if SESSION_KEY not in request:
        request[SESSION_KEY] = read_session(signer_of(request), request)
    return request[SESSION_KEY]


def sign_in_enabled(settings: Settings) -> bool:
    return bool(settings.github_client_id and settings.github_client_secret)


def render(
    request: web.Request, template: str, context: Mapping[str, object], *, status: int = 200, title: str
) -> web.Response:
    """A page in the one layout, with the person signed in (or a sign-in link) and their CSRF token."""
    session = session_of(request)
    settings = settings_of(request)
    html = TEMPLATES.get_template(template).render(
        **context,
        title=title,
        me=session.login if session else None,
        csrf=signer_of(request).csrf_token(session) if session else "",
        sign_in=sign_in_enabled(settings),
        here=request.path_qs,
        nav=request.path,
    )
    return web.Response(
        text=html, status=status, content_type="text/html", charset="utf-8", headers=page_headers()
    )


def page_headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": CSP,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }


def problem(request: web.Request, status: int, heading: str, message: str) -> web.Response:
    """A page saying what went wrong, in words, with the right status."""
    return render(request, "problem.html", {"heading": heading, "message": message}, status=status, title=heading)


def need_sign_in(request: web.Request) -> web.Response:
    """Private pages ask for sign-in (and come back here afterwards)."""
    if not sign_in_enabled(settings_of(request)):
        return problem(
            request, 403, "Sign-in is not set up",
            "This page shows private repository data, so it needs a signed-in GitHub user; sign-in needs"
            " TESSERA_GITHUB_CLIENT_ID and TESSERA_GITHUB_CLIENT_SECRET (the App's own client id and secret).",
        )
    return render(request, "signin.html", {}, status=401, title="Sign in")


async def checked_form(request: web.Request) -> tuple[Session, Mapping[str, str]] | web.Response:
    """The posted form of a signed-in person whose CSRF token matches, or the page refusing it."""
    session = session_of(request)
    if session is None:
        return problem(request, 401, "Sign in first", "Only a signed-in person can do this.")
    form = await request.post()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if not signer_of(request).csrf_ok(session, fields.get("csrf")):
        return problem(
            request, 403, "This form has expired",
            "The form's security token did not match your session (it may be older than your sign-in)."
            " Go back, reload the page and try again.",
        )
    return session, fields


def redirect(location: str, *, status: int = 302) -> web.Response:
    return web.Response(status=status, headers={"Location": location, "Cache-Control": "no-store"})
