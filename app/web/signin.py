"""Sign in with GitHub: the App's own user authorization (OAuth web flow with ``state`` and PKCE).

``/auth/github/login`` keeps a random ``state`` and PKCE verifier in a short-lived signed cookie
and sends the browser to GitHub; ``/auth/github/callback`` accepts only the same ``state`` back,
trades the code (with the verifier, so a stolen code is useless) for a user token, asks
``GET /user`` who that is, and starts the session. The user token is used once and not kept: what a
person may do is asked later with the App's installation token, by the same rules as the PR
commands.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time

import aiohttp
from aiohttp import web
from yarl import URL

from app.github import SignInFailed, oauth_login
from app.web.core import checked_form, problem, redirect, settings_of, sign_in_enabled, signer_of
from app.web.session import SIGNIN_COOKIE, SIGNIN_SECONDS, end_session, set_cookie, start_session

log = logging.getLogger(__name__)

def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site only (never ``//evil.test`` or a URL)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _secure(request: web.Request) -> bool:
    return settings_of(request).base_url.startswith("https://")


def _callback_url(request: web.Request) -> str:
    return f"{settings_of(request).base_url}/auth/github/callback"


async def login(request: web.Request) -> web.StreamResponse:
    settings = settings_of(request)
    if not sign_in_enabled(settings):
        return problem(
            request, 503, "Sign-in is not set up",
            "Set TESSERA_GITHUB_CLIENT_ID and TESSERA_GITHUB_CLIENT_SECRET (run `tessera setup`, which records them).",
        )
    state, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    target = URL(f"{settings.github_web_url}/login/oauth/authorize").with_query(
        client_id=settings.github_client_id or "",
        redirect_uri=_callback_url(request),
        state=state,
        code_challenge=pkce_challenge(verifier),
        code_challenge_method="S256",
        allow_signup="false",
    )
    response = redirect(str(target))
    flight = {"state": state, "verifier": verifier, "next": safe_next(request.query.get("next")),
              "exp": int(time.time()) + SIGNIN_SECONDS}
    set_cookie(response, SIGNIN_COOKIE, signer_of(request).sign("signin", flight), max_age=SIGNIN_SECONDS,
               secure=_secure(request))
    return response


async def callback(request: web.Request) -> web.StreamResponse:
    settings = settings_of(request)
    flight = signer_of(request).unsign("signin", request.cookies.get(SIGNIN_COOKIE))
    state = request.query.get("state", "")
    if flight is None or not hmac.compare_digest(str(flight.get("state", "")).encode(), state.encode()):
        return problem(
            request, 400, "Sign-in did not match",
            "This answer from GitHub does not belong to a sign-in started here (or it took more than ten"
            " minutes). Start again from the Sign in link.",
        )
    if "error" in request.query:
        return problem(request, 400, "GitHub did not sign you in", f"GitHub answered: {request.query['error']}.")
    code = request.query.get("code", "")
    if not code:
        return problem(request, 400, "Sign-in failed", "GitHub sent no code back.")
    try:
        login_name = await oauth_login(settings.github_web_url, settings.github_api_url, {
            "client_id": settings.github_client_id or "",
            "client_secret": settings.github_client_secret or "",
            "code": code,
            "redirect_uri": _callback_url(request),
            "code_verifier": str(flight.get("verifier", "")),
        })
    except SignInFailed as exc:
        return problem(request, 400, "Sign-in failed", str(exc))
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("sign-in: GitHub unreachable: %s", exc)
        return problem(request, 502, "GitHub did not answer", "GitHub could not be reached to finish signing in; try again.")
    response = redirect(safe_next(str(flight.get("next", "/"))))
    response.del_cookie(SIGNIN_COOKIE, path="/")
    start_session(signer_of(request), response, login_name, secure=_secure(request))
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    checked = await checked_form(request)
    if isinstance(checked, web.Response):
        return checked
    response = redirect("/", status=303)
    end_session(response)
    return response


def routes() -> list[web.RouteDef]:
    return [
        web.get("/auth/github/login", login),
        web.get("/auth/github/callback", callback),
        web.post("/auth/logout", logout),
    ]
