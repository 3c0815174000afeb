"""Who owns an asset or exposure: raw owners found in the project, mapped to teams.

Ownership is resolved most specific first (DESIGN.md): ``meta.tessera.owner`` → dbt group owner →
``meta.owner`` → CODEOWNERS for the file. A raw owner (slug, name, e-mail, ``@org/team``) becomes a
:class:`TeamRef` through ``.tessera.yml``'s ``teams:``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rules.model import Asset, Config, Exposure, Snapshot


@dataclass(frozen=True)
class TeamRef:
    """A resolved owner: the team slug used in acks, and the GitHub team that speaks for it."""

    slug: str
    github_team: str | None = None


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


def raw_owner(
    thing: Asset | Exposure, snapshot: Snapshot, codeowners: Sequence[CodeOwnersRule] = ()
) -> str | None:
    """The most specific raw owner text, for display when it maps to no team."""
    candidates = owner_candidates(thing, snapshot, codeowners)
    return candidates[0] if candidates else None
