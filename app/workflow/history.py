"""Who last changed a reader, as GitHub tells it: the App's :class:`rules.owners.FileHistory`.

``tessera check`` reads the owners of readers nobody declares an owner for from git; the App has
a tarball and blobs, so it asks GitHub, and only about the readers that need it, in two passes:

1. The worker analyses with :class:`PendingHistory`, which answers every reader it is asked about
   with a stand-in person of its own. The stand-ins left holding a required ack are exactly the
   readers a breaking change reaches that no one declares an owner for (:meth:`needed`): readers
   of review changes or of the producing team's own models are never looked up.
2. The App asks GitHub who last changed each of those files before the base
   (``GET /repos/{owner}/{repo}/commits?path=FILE&sha=BASE&per_page=10``; at most
   :data:`MAX_PATHS` readers per analysis, the nearest to the change first, said in the comment
   when there are more) and who wrote
   the pull request (``GET /repos/{owner}/{repo}/pulls/{n}/commits``), then the worker analyses
   again with :class:`KnownHistory`: every parse and inference is a cache hit by then.

Which commit author counts (not the change's authors, not a bot) is
:func:`rules.owners.history_holder`'s rule, the same the CLI applies; GitHub adds what git cannot
say, a commit by a user of type Bot. A file's history before a commit never changes, so each
(repository, path, base commit) is asked once, ever: the answers are kept in the store
(:mod:`app.store.history_cache`), shared by every replica and kept across restarts.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import cachetools

from app.github import InstallationClient
from app.store import Store, history_cache
from app.workflow.checkout import PullRef
from rules.model import Analysis, AnalysisError, person_identity, person_key

MAX_PATHS = 20
"""Readers whose history is looked up per analysis: one API call each."""
COMMITS_PER_PATH = 10
"""Commits read per reader: enough to step over the change's own authors and bots."""
STAND_IN_DOMAIN = "pending-history.invalid"
"""The stand-ins' e-mail domain (``.invalid`` is reserved: no real address ever has it)."""

_change_authors: cachetools.TTLCache[tuple[str, str, int, str], frozenset[str]] = cachetools.TTLCache(
    maxsize=2048, ttl=3600.0
)


@dataclass(frozen=True)
class KnownHistory:
    """The history the App fetched: authors of each looked-up reader's latest commits (``@login``
    when GitHub knows the user, else the commit's e-mail), and who wrote the change. A path not
    looked up has no history, as in a repository without it."""

    recent: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    authors: frozenset[str] = frozenset()

    def recent_authors(self, path: str) -> tuple[str, ...]:
        return self.recent.get(path, ())

    def change_authors(self) -> frozenset[str]:
        return self.authors


class PendingHistory:
    """(In a worker, first pass.) A history that names a stand-in for every reader it is asked
    about, so that the analysis says which readers' history would decide who is asked."""

    def __init__(self) -> None:
        self.asked: dict[str, str] = {}
        """Stand-in e-mail → the reader's path."""

    def recent_authors(self, path: str) -> tuple[str, ...]:
        stand_in = f"{hashlib.sha256(path.encode('utf-8', 'surrogateescape')).hexdigest()[:20]}@{STAND_IN_DOMAIN}"
        self.asked[stand_in] = path
        return (stand_in,)

    def change_authors(self) -> frozenset[str]:
        return frozenset()

    def named_in(self, analysis: Analysis) -> bool:
        """Whether a stand-in holds an ack or owns a consumer: then this analysis is provisional."""
        keys = {person_key(s) for s in self.asked}
        return any(i.team in keys for i in analysis.impacts) or bool(self.needed(analysis))

    def needed(self, analysis: Analysis) -> tuple[str, ...]:
        """The readers a breaking change reaches whose owner only history can name, nearest to the
        change first (a direct reader breaks for certain), then by path: under the cap, those
        are the ones looked up."""
        paths = {self.asked[r.user] for r in analysis.required_acks if r.user in self.asked}
        hops: dict[str, int] = {}
        for impact in analysis.impacts:
            stand_in = person_identity(impact.team)
            if stand_in in self.asked:
                path = self.asked[stand_in]
                hops[path] = min(hops.get(path, len(impact.path)), len(impact.path))
        return tuple(sorted(paths, key=lambda p: (hops.get(p, 0), p)))


@dataclass(frozen=True)
class FoundHistory:
    """What the App found for one analysis, and what it says about the lookup."""

    history: KnownHistory
    requests: int
    """GitHub API requests made (cached answers cost none)."""
    notes: tuple[AnalysisError, ...] = ()


async def look_up(store: Store, github: InstallationClient, ref: PullRef, paths: Sequence[str]) -> FoundHistory:
    """Who last changed each of ``paths`` before the base, and who wrote the pull request: at most
    :data:`MAX_PATHS` readers, none uncached while the installation's API budget is low."""
    api = str(github.base_url)
    repo = ref.repo.lower()
    budget_low = github.budget_wait() is not None
    requests = 0
    wanted = list(paths[:MAX_PATHS])
    known = await store.read(lambda db: history_cache.recent_authors(db, ref.repo_id, ref.base_sha, wanted))
    asked: dict[str, tuple[str, ...]] = {}
    for path in wanted:
        if path in known or budget_low:
            continue
        commits = await github.file_commits(ref.owner, ref.name, path, ref.base_sha, per_page=COMMITS_PER_PATH)
        requests += 1
        asked[path] = commit_authors(commits)
    if asked:
        now = time.time()
        await store.write(lambda db: history_cache.put_recent_authors(db, ref.repo_id, ref.base_sha, asked, now=now))
    answered = {**known, **asked}
    recent = {path: answered[path] for path in wanted if path in answered}
    authors_key = (api, repo, ref.number, ref.head_sha)
    if not recent:
        authors = change_authors((), ref.author)  # no reader's history to step the authors over
    else:
        if authors_key not in _change_authors:
            commits = await github.pull_commits(ref.owner, ref.name, ref.number)
            requests += 1
            _change_authors[authors_key] = change_authors(commits, ref.author)
        authors = _change_authors[authors_key]
    notes = []
    if len(paths) > len(wanted):
        notes.append(AnalysisError("", (
            f"Who last changed the readers nobody declares an owner for was looked up for {len(wanted)} of "
            f"{len(paths)} (at most {MAX_PATHS} per pull request, to spare the GitHub API); the other "
            f"{len(paths) - len(wanted)} have no owner here (`tessera check` on a checkout looks them all up)"
        )))
    if budget_low and len(recent) < len(wanted):
        notes.append(AnalysisError("", (
            f"Who last changed {len(wanted) - len(recent)} reader(s) nobody declares an owner for was not looked "
            "up: this installation's GitHub API budget is low; `/tessera recheck` after the reset asks again"
        )))
    return FoundHistory(KnownHistory(recent, authors), requests, tuple(notes))


def commit_authors(commits: Iterable[Mapping[str, object]]) -> tuple[str, ...]:
    """Each commit's author, newest first and once each: ``@login`` for a GitHub user, else the
    commit's e-mail; a user of type Bot is left out (``[bot]`` logins and bot e-mails are left
    out by :func:`rules.owners.history_holder`, as for the CLI)."""
    found: list[str] = []
    for commit in commits:
        user = commit.get("author")
        detail = commit.get("commit")
        if isinstance(user, Mapping) and isinstance(user.get("login"), str) and user["login"]:
            if user.get("type") == "Bot":
                continue
            identity = f"@{user['login']}"
        else:
            written = detail.get("author") if isinstance(detail, Mapping) else None
            email = written.get("email") if isinstance(written, Mapping) else None
            if not isinstance(email, str) or not email.strip():
                continue
            identity = email.strip().lower()
        if identity not in found:
            found.append(identity)
    return tuple(found)


def change_authors(commits: Iterable[Mapping[str, object]], opener: str | None) -> frozenset[str]:
    """Who wrote the change, lower-case: the pull request's opener, and each commit's author's
    login and e-mail (someone committing under several addresses is still one author)."""
    found = {opener.lower()} if opener else set()
    for commit in commits:
        user = commit.get("author")
        if isinstance(user, Mapping) and isinstance(user.get("login"), str) and user["login"]:
            found.add(user["login"].lower())
        detail = commit.get("commit")
        written = detail.get("author") if isinstance(detail, Mapping) else None
        email = written.get("email") if isinstance(written, Mapping) else None
        if isinstance(email, str) and email.strip():
            found.add(email.strip().lower())
    return frozenset(found)
