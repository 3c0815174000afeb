"""People who must acknowledge: the GitHub login behind an owner's e-mail, found once and kept.

The engine names a person as the project does (a CODEOWNERS ``@user``, an e-mail, a name). Only a
login can answer on GitHub, so before acks are evaluated the App asks the repository's commits
who commits under each e-mail (``GET /repos/{owner}/{repo}/commits?author=EMAIL&per_page=1``,
the latest commit's ``author.login``) and remembers a login found for an hour (an e-mail not
found yet is asked again next time: its owner may have just made their first commit). The logins are stored
on the proposal's required acks, so a command compares the commenter against them without asking
again. Whoever cannot be found (a name, an e-mail no commit carries) or wrote the pull request is
held for the fallback (:func:`rules.owners.settle_people`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import cachetools

from app.github import InstallationClient
from rules.analyze import CONFIG_PATH
from rules.model import Analysis, AnalysisError, Config
from rules.owners import EMAIL, settle_people

LOGIN_TTL = 3600.0
MAX_LOOKUPS = 50
"""E-mails looked up per analysis: more owners than this on one pull request are held for the
fallback instead of costing hundreds of API calls."""

_logins: cachetools.TTLCache[tuple[str, str, str], str] = cachetools.TTLCache(maxsize=8192, ttl=LOGIN_TTL)


async def find_logins(
    github: InstallationClient, owner: str, repo: str, identities: Iterable[str]
) -> dict[str, str | None]:
    """Each e-mail's GitHub login (None when no commit of the repository carries it); a name has none."""
    found: dict[str, str | None] = {}
    asked = 0
    for identity in dict.fromkeys(identities):
        if not EMAIL.match(identity):
            found[identity] = None
            continue
        key = (str(github.base_url), f"{owner}/{repo}".lower(), identity.lower())
        if key not in _logins and asked < MAX_LOOKUPS:
            asked += 1
            login = await github.commit_author_login(owner, repo, identity)
            if login:
                _logins[key] = login
        found[identity] = _logins.get(key)
    return found


async def settle(
    github: InstallationClient, owner: str, repo: str, analysis: Analysis, config: Config, *, author: str
) -> Analysis:
    """The analysis with every person's login found, or the person held for the fallback."""
    people = [r.user for r in analysis.required_acks if r.kind == "user" and not r.login and r.user]
    if not any(r.kind == "user" for r in analysis.required_acks):
        return analysis
    logins = await find_logins(github, owner, repo, people)
    required, notes = settle_people(analysis.required_acks, logins, config, author=author or None)
    return replace(
        analysis,
        required_acks=required,
        status="needs_ack" if required else "clear",
        errors=(*analysis.errors, *(AnalysisError(CONFIG_PATH, note) for note in notes)),
    )
