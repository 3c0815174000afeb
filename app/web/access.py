"""Who may see what: a signed-in person's access to a repository, asked of GitHub with the App's
installation token (the same question the PR commands ask); a yes is remembered for a minute."""

from __future__ import annotations

import aiohttp
import cachetools
import gidgethub
from aiohttp import web

from app.appkeys import QUEUE_KEY
from app.errors import PermanentError, TesseraError
from app.github import InstallationClient

GITHUB_TROUBLE: tuple[type[BaseException], ...] = (
    gidgethub.GitHubException, TesseraError, aiohttp.ClientError, TimeoutError,
)
"""What asking GitHub can fail with (refused, unreachable, uninstalled, not configured): a page
says so instead of failing."""

ACCESS_TTL = 60.0
READ_ROLES = frozenset({"read", "triage", "write", "maintain", "admin"})
_readers: cachetools.TTLCache[tuple[int, str, str], bool] = cachetools.TTLCache(maxsize=8192, ttl=ACCESS_TTL)


async def installation(request: web.Request, installation_id: int) -> InstallationClient:
    github = request.app[QUEUE_KEY].github
    if github is None:
        raise PermanentError("the GitHub App is not configured")
    return await github.for_installation(installation_id)


async def may_read(request: web.Request, installation_id: int | None, repo: str, login: str) -> bool:
    """True when ``login`` can read ``repo`` on GitHub. Without an installation (or an App) nobody
    can be checked, so nobody may read."""
    if installation_id is None or request.app[QUEUE_KEY].github is None:
        return False
    key = (installation_id, repo.lower(), login.lower())
    if key in _readers:
        return _readers[key]
    owner, _, name = repo.partition("/")
    try:
        gh = await installation(request, installation_id)
        role = await gh.collaborator_role(owner, name, login)
    except GITHUB_TROUBLE:
        return False  # not remembered: a hiccup must not lock someone out for a minute
    if role not in READ_ROLES:
        return False  # not remembered: someone just given access can look at once
    _readers[key] = True
    return True
