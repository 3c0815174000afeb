"""Who owns an asset or exposure: raw owners found in the project, mapped to teams or people.

Ownership is resolved most specific first (DESIGN.md): ``meta.tessera.owner`` → dbt group owner →
``meta.owner`` → CODEOWNERS for the file. A raw owner (slug, name, e-mail, ``@org/team``) becomes a
:class:`TeamRef` through ``.tessera.yml``'s ``teams:``. When no candidate is a team, the owner is a
person (:class:`PersonRef`: a CODEOWNERS ``@user``, an e-mail, else a name) who acks for themself.

A reading model that declares no owner at all is owned by whoever last changed its file (the
most recent commit's author, not the author of the change being checked, not a bot): the
person most likely to know what it needs, found through :class:`FileHistory` where the caller
has the repository's history (``tessera check`` reads it from git).

A consumer whose owner resolves to nobody is never a silent green: it is held for a fallback
(:func:`fallback_holder`: ``fallback:`` in ``.tessera.yml``, else the CODEOWNERS of the consumer's
file, else the repository's maintainers), unless ``on_unowned: warn``. The App finds a person's
GitHub login; :func:`settle_people` then hands a person it could not find to the fallback.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from rules.markdown import code, mention
from rules.model import MAINTAINERS, Asset, Config, Exposure, RequiredAck, Snapshot, person_key

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
LOGIN = re.compile(r"^@[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
"""A GitHub login as CODEOWNERS writes it: ``@`` and up to 39 letters, digits and hyphens."""


@dataclass(frozen=True)
class TeamRef:
    """A resolved owner: the team slug used in acks, and the GitHub team that speaks for it."""

    slug: str
    github_team: str | None = None

    @property
    def key(self) -> str:
        return self.slug


@dataclass(frozen=True)
class PersonRef:
    """An owner who is a person: a GitHub login (``@user``), an e-mail, or a name."""

    identity: str
    """The login without ``@``, the e-mail (lower-case), or the name as written."""
    kind: str
    """``login``, ``email`` or ``name``."""

    @property
    def key(self) -> str:
        return person_key(self.identity)

    @property
    def login(self) -> str | None:
        return self.identity if self.kind == "login" else None


Owner = TeamRef | PersonRef


class FileHistory(Protocol):
    """Who changed the repository's files, as the caller's history tells (the engine reads no git)."""

    def recent_authors(self, path: str) -> tuple[str, ...]:
        """E-mails (or ``@logins``) of the authors of the last commits that changed ``path`` before
        the change being checked, most recent first; empty when unknown."""
        ...

    def change_authors(self) -> frozenset[str]:
        """Lower-case e-mails and logins of who wrote the change being checked."""
        ...


BOT = re.compile(r"\[bot\]|dependabot|renovate|github-actions|pre-commit-ci|^noreply@github\.com$", re.I)
NOREPLY = re.compile(r"^(?:\d+\+)?([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))@users\.noreply\.github\.com$", re.I)
"""GitHub's private commit e-mail, which names the login itself."""


def history_holder(path: str | None, history: FileHistory | None) -> PersonRef | None:
    """The person who last changed ``path``, other than the change's own authors and bots: who
    owns a reading model nothing else names an owner for. None without history or such a person."""
    if history is None or not path:
        return None
    authors = {a.lower().lstrip("@") for a in history.change_authors()}
    for raw in history.recent_authors(path):
        identity = raw.strip().lower()
        if not identity or identity.lstrip("@") in authors or BOT.search(identity):
            continue
        noreply = NOREPLY.match(identity)
        if noreply is not None:
            if noreply.group(1) in authors:
                continue
            return PersonRef(noreply.group(1), "login")
        person = as_person(raw.strip())
        if person is not None and person.kind != "name":
            return person
    return None


def as_person(raw: str | None) -> PersonRef | None:
    """A raw owner that names no team, read as a person (None for an empty one)."""
    text = " ".join(str(raw or "").split())
    if not text:
        return None
    if LOGIN.match(text):
        return PersonRef(text[1:], "login")
    if EMAIL.match(text):
        return PersonRef(text.lower(), "email")
    if text.startswith("@"):
        return None  # ``@org/team`` is a team, and anything else after ``@`` names nobody
    return PersonRef(text, "name")


@dataclass(frozen=True)
class CodeOwnersRule:
    pattern: str
    owners: tuple[str, ...]
    regex: re.Pattern[str]


def parse_codeowners(text: str | None) -> tuple[CodeOwnersRule, ...]:
    """Parse a CODEOWNERS file (gitignore-style patterns; later rules win). Bad lines are skipped."""
    rules: list[CodeOwnersRule] = []
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith("["):
            continue
        if " #" in line:
            line = line.split(" #", 1)[0].strip()
        parts = line.split()
        pattern, owners = parts[0], tuple(parts[1:])
        try:
            regex = _codeowners_regex(pattern)
        except re.error:
            continue
        rules.append(CodeOwnersRule(pattern, owners, regex))
    return tuple(rules)


def _codeowners_regex(pattern: str) -> re.Pattern[str]:
    """Translate one CODEOWNERS pattern to a regex over repository-relative paths."""
    anchored = pattern.startswith("/") or "/" in pattern.rstrip("/")
    body = pattern.strip("/")
    directory = pattern.endswith("/")
    out: list[str] = []
    i = 0
    while i < len(body):
        if body.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif body.startswith("**", i):
            out.append(".*")
            i += 2
        elif body[i] == "*":
            out.append("[^/]*")
            i += 1
        elif body[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(body[i]))
            i += 1
    core = "".join(out)
    prefix = "" if anchored else "(?:.*/)?"
    # A plain name may be a folder, which owns everything below it; ``docs/*`` stops at one level.
    if directory:
        suffix = "/.*"
    elif "*" in body.rsplit("/", 1)[-1] and anchored:
        suffix = ""
    else:
        suffix = "(?:/.*)?"
    return re.compile(prefix + core + suffix + r"\Z")


def codeowners_for(path: str | None, rules: Sequence[CodeOwnersRule]) -> tuple[str, ...]:
    """The owners of ``path``: the last matching rule wins (an empty owner list un-owns)."""
    if not path:
        return ()
    owners: tuple[str, ...] = ()
    for rule in rules:
        if rule.regex.match(path):
            owners = rule.owners
    return owners


def match_team(raw: str | None, config: Config) -> TeamRef | None:
    """Map a raw owner (slug, name, e-mail, ``@org/team``) to a team, or None when unmapped."""
    if not raw or not str(raw).strip():
        return None
    owner = str(raw).strip()
    lowered = owner.lower()
    if lowered.startswith("@") and "/" in lowered:
        github = lowered[1:]
        for slug, spec in config.teams.items():
            if spec.github and spec.github.lower().lstrip("@") == github:
                return TeamRef(slug, spec.github)
        return TeamRef(github.split("/", 1)[1], github)
    bare = lowered.lstrip("@")
    for slug, spec in config.teams.items():
        if slug.lower() == bare:
            return TeamRef(slug, spec.github)
    for slug, spec in config.teams.items():
        if any(e.lower() == lowered for e in spec.emails):
            return TeamRef(slug, spec.github)
        if any(n.strip().lower() == lowered for n in spec.names):
            return TeamRef(slug, spec.github)
    if "/" in bare and "@" not in bare and " " not in bare:
        # ``org/team`` written without the ``@``: still a GitHub team.
        return TeamRef(bare.split("/", 1)[1], bare)
    return None


def _meta_owner(meta: Mapping[str, object] | None, *, tessera: bool) -> str | None:
    if not isinstance(meta, Mapping):
        return None
    if tessera:
        inner = meta.get("tessera")
        value = inner.get("owner") if isinstance(inner, Mapping) else None
    else:
        value = meta.get("owner")
    return str(value) if isinstance(value, str) and value.strip() else None


def owner_candidates(
    thing: Asset | Exposure, snapshot: Snapshot, codeowners: Sequence[CodeOwnersRule] = ()
) -> list[str]:
    """Raw owners of an asset or exposure, most specific first (DESIGN.md's order)."""
    found: list[str] = []
    if isinstance(thing, Asset):
        found.append(_meta_owner(thing.meta, tessera=True) or "")
        group = snapshot.groups.get(thing.group) if thing.group else None
        if group is not None:
            found += [group.owner or "", group.owner_email or "", group.owner_name or ""]
        found.append(_meta_owner(thing.meta, tessera=False) or "")
        found.append(thing.owner or "")
    else:
        found.append(thing.owner or "")
        found.append(thing.owner_email or "")
        found.append(thing.owner_name or "")
    found.extend(codeowners_for(thing.path, codeowners))
    return [f for f in found if f]


def resolve_owner(
    thing: Asset | Exposure,
    snapshot: Snapshot,
    config: Config,
    *,
    codeowners: str | Sequence[CodeOwnersRule] | None = None,
) -> TeamRef | None:
    """The team that owns an asset or exposure: the first candidate that maps to a team."""
    rules = parse_codeowners(codeowners) if isinstance(codeowners, str) or codeowners is None else codeowners
    for raw in owner_candidates(thing, snapshot, rules):
        team = match_team(raw, config)
        if team is not None:
            return team
    return None


def resolve_holder(
    thing: Asset | Exposure,
    snapshot: Snapshot,
    config: Config,
    *,
    codeowners: Sequence[CodeOwnersRule] = (),
) -> Owner | None:
    """Who acks for an asset or exposure: a team when any candidate is one, else a person (a
    login or e-mail before a name, which no GitHub user can be found for), else nobody."""
    team = resolve_owner(thing, snapshot, config, codeowners=codeowners)
    if team is not None:
        return team
    people = [p for p in map(as_person, owner_candidates(thing, snapshot, codeowners)) if p is not None]
    askable = [p for p in people if p.kind != "name"]
    return (askable or people or [None])[0]


def fallback_holder(path: str | None, config: Config, codeowners: Sequence[CodeOwnersRule] = ()) -> Owner | None:
    """Who holds for a consumer whose owner resolves to nobody: ``fallback:``, else the CODEOWNERS
    of the consumer's file, else None (the repository's maintainers)."""
    if config.fallback:
        return match_team(config.fallback, config) or TeamRef(config.fallback.lstrip("@"), None)
    for raw in codeowners_for(path, codeowners):
        holder = match_team(raw, config) or as_person(raw)
        if holder is not None and not (isinstance(holder, PersonRef) and holder.kind == "name"):
            return holder
    return None


def stand_in_for(person: PersonRef, path: str | None, config: Config, codeowners: Sequence[CodeOwnersRule]) -> str | None:
    """Who holds if the App cannot find ``person`` (an e-mail or a name): the fallback team or a
    team or ``@login`` of the consumer file's CODEOWNERS, as raw owner text; None: the maintainers."""
    if person.kind == "login":
        return None
    holder = fallback_holder(path, config, codeowners)
    if isinstance(holder, TeamRef):
        return f"@{holder.github_team}" if holder.github_team else holder.slug
    if isinstance(holder, PersonRef) and holder.login and holder.key != person.key:
        return f"@{holder.login}"
    return None


def holder_text(need: RequiredAck, *, table: bool = False) -> str:
    """How a comment names who must answer (Markdown, mentions where GitHub would notify; any
    other name inert in a code span). ``table``: for a table cell."""
    if need.maintainers:
        return "the repository's maintainers"
    if need.kind == "user":
        if need.login:
            return mention(need.login, fallback=need.user, table=table)
        return code(need.user, table=table)
    if need.github_team:
        return mention(need.github_team, fallback=need.team, table=table)
    return code(need.team, table=table)


def settle_people(
    required: Sequence[RequiredAck],
    logins: Mapping[str, str | None],
    config: Config,
    *,
    author: str | None = None,
) -> tuple[tuple[RequiredAck, ...], tuple[str, ...]]:
    """Required acks once the App has looked people up: each person gets their login, and one the
    App could not find (a name, an e-mail no commit carries) or who wrote the pull request is held
    for the fallback team, else the maintainers; with ``on_unowned: warn`` nobody holds and a note
    says so. Returns the acks and those notes."""
    settled: dict[str, RequiredAck] = {}
    notes: list[str] = []

    def add(need: RequiredAck) -> None:
        same = settled.get(need.team)
        if same is None:
            settled[need.team] = need
            return
        fingerprint = hashlib.sha256(f"{same.fingerprint}+{need.fingerprint}".encode()).hexdigest()[:16]
        reasons = tuple(dict.fromkeys((*same.reasons, *need.reasons)))
        settled[need.team] = replace(
            same, reasons=reasons, fingerprint=fingerprint, fallback=same.fallback or need.fallback
        )

    for need in required:
        if need.kind != "user":
            add(need)
            continue
        login = need.login or logins.get(need.user or "")
        if login and (author is None or login.lower() != author.lower()):
            add(replace(need, login=login))
            continue
        why = "wrote this pull request" if login else "has no GitHub user Tessera could find"
        if config.on_unowned == "warn":
            notes.append(f"{need.user} {why}: nobody was asked to acknowledge for them ({'; '.join(need.reasons)})")
            continue
        holder = (match_team(need.stand_in, config) or as_person(need.stand_in)) if need.stand_in else None
        if holder is None or (isinstance(holder, PersonRef) and not holder.login):
            holder = fallback_holder(None, config)
        if isinstance(holder, PersonRef) and author is not None and holder.identity.lower() == author.lower():
            holder = None
        reasons = tuple(f"{r} (owner {need.user} {why})" for r in need.reasons)
        add(required_ack(holder, reasons, need.fingerprint, fallback=True))
    return tuple(settled.values()), tuple(notes)


def required_ack(
    holder: Owner | None, reasons: tuple[str, ...], fingerprint: str, *, fallback: bool, stand_in: str | None = None,
    from_history: bool = False, held_for: tuple[str, ...] = (),
) -> RequiredAck:
    """The required ack of a team, a person, or (holder None) the repository's maintainers."""
    if isinstance(holder, PersonRef):
        return RequiredAck(
            team=holder.key, github_team=None, reasons=reasons, fingerprint=fingerprint,
            kind="user", user=holder.identity, login=holder.login, fallback=fallback, stand_in=stand_in,
            owner_source="history" if from_history else None, held_for=held_for,
        )
    if isinstance(holder, TeamRef):
        return RequiredAck(
            team=holder.slug, github_team=holder.github_team, reasons=reasons, fingerprint=fingerprint,
            fallback=fallback, held_for=held_for,
        )
    return RequiredAck(
        team=MAINTAINERS, github_team=None, reasons=reasons, fingerprint=fingerprint, fallback=True, held_for=held_for
    )


def raw_owner(
    thing: Asset | Exposure, snapshot: Snapshot, codeowners: Sequence[CodeOwnersRule] = ()
) -> str | None:
    """The most specific raw owner text, for display when it maps to no team."""
    candidates = owner_candidates(thing, snapshot, codeowners)
    return candidates[0] if candidates else None
