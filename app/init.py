"""``tessera init``: a commented starter ``.tessera.yml`` from what the repository already says.

A new user should not have to learn the file's keys before the first useful check: the dbt
projects, their dialects (``rules.dialect``) and the owners named in exposures, groups, model
``meta`` and CODEOWNERS are all in the repository. ``init`` reads them from the work tree, prints
what it found, and writes ``.tessera.yml`` with a suggested ``teams:`` mapping, leaving every guess
visible as a comment to review. It never overwrites an existing file without ``--force``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from app.config import Settings
from rules.analyze import CONFIG_PATH, read_codeowners
from rules.config import parse_config
from rules.dbt_project import SKIPPED_FOLDERS, read_project
from rules.dialect import DEFAULT, detect_projects, display_name
from rules.model import Config, Project
from rules.owners import parse_codeowners
from rules.sources import CODEOWNERS_PATHS, FileSource

EXIT_OK = 0
EXIT_ERROR = 2

WALK_SKIPPED = frozenset({*SKIPPED_FOLDERS, ".git", "venv", "__pycache__", ".tox", ".mypy_cache", ".ruff_cache"})
"""Folders of a work tree that hold no project files (installed packages, build output, tools)."""

MAX_READ_BYTES = 8 * 1024 * 1024
"""Larger files are treated as absent: nothing ``init`` needs is that big."""


class FolderSource:
    """A :class:`rules.sources.FileSource` over a work tree on disk (``init`` reads what the user
    has, committed or not)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        found: list[str] = []
        for folder, subfolders, files in os.walk(root):
            subfolders[:] = sorted(d for d in subfolders if d not in WALK_SKIPPED)
            rel = Path(folder).relative_to(root).as_posix()
            for name in files:
                found.append(name if rel == "." else f"{rel}/{name}")
        self._paths = sorted(found)
        self._known = set(found)

    def paths(self) -> Iterable[str]:
        return self._paths

    def read(self, path: str) -> str | None:
        if path not in self._known:
            return None
        full = self.root / path
        try:
            if full.is_symlink() or full.stat().st_size > MAX_READ_BYTES:
                return None
            data = full.read_bytes()
        except OSError:
            return None
        if b"\0" in data[:8000]:
            return None
        return data.decode("utf-8", errors="replace")

    def blob_id(self, path: str) -> str | None:
        return None  # nothing is cached across runs of init


@dataclass(frozen=True)
class FoundOwner:
    """An owner named somewhere in the repository, and where."""

    raw: str
    """As written: ``@org/team``, ``@user``, an e-mail or a name."""
    where: str
    """``exposure revenue_dashboard``, ``group finance``, ``meta.owner of fct_orders``, ``CODEOWNERS``."""
    email: str | None = None
    """The e-mail beside a name (exposure and group owners have both)."""


@dataclass
class TeamSuggestion:
    """One entry of the suggested ``teams:`` mapping."""

    slug: str
    github: str | None = None
    emails: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    found_in: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Survey:
    """Everything ``init`` found."""

    projects: tuple[Project, ...]
    owners: tuple[FoundOwner, ...]
    teams: tuple[TeamSuggestion, ...]
    people: tuple[FoundOwner, ...]
    """Owners that are GitHub users (``@alice``), not teams: listed for the reader to map."""
    codeowners: str | None
    """Where CODEOWNERS is, when there is one."""


def survey(source: FileSource) -> Survey:
    """Read the projects, their dialects and every owner named in the repository."""
    config = Config()
    projects = detect_projects(source, config)
    owners: list[FoundOwner] = []
    for project in projects:
        dbt = read_project(source, project.path, dialect=project.dialect.name)
        for exposure in dbt.exposures.values():
            raw = exposure.owner_name or exposure.owner_email or exposure.owner
            if raw:
                owners.append(FoundOwner(raw, f"exposure {exposure.name}", exposure.owner_email))
        for group in dbt.groups.values():
            raw = group.owner_name or group.owner_email or group.owner
            if raw:
                owners.append(FoundOwner(raw, f"group {group.name}", group.owner_email))
        for fqn in sorted(dbt.models):
            meta = dbt.asset(fqn).meta
            for raw in _meta_owners(meta):
                owners.append(FoundOwner(raw, f"meta.owner of {fqn}"))
    codeowners_path = next((p for p in CODEOWNERS_PATHS if source.read(p) is not None), None)
    for rule in parse_codeowners(read_codeowners(source)):
        for raw in rule.owners:
            owners.append(FoundOwner(raw, f"CODEOWNERS {rule.pattern}"))
    teams, people = suggest_teams(owners)
    return Survey(projects, tuple(owners), teams, people, codeowners_path)


def _meta_owners(meta: Mapping[str, object]) -> list[str]:
    found = []
    tessera = meta.get("tessera")
    if isinstance(tessera, Mapping) and isinstance(tessera.get("owner"), str):
        found.append(str(tessera["owner"]))
    if isinstance(meta.get("owner"), str):
        found.append(str(meta["owner"]))
    return [f.strip() for f in found if f.strip()]


def slug(text: str) -> str:
    """A team slug from a name or an e-mail's local part: ``Finance Data`` → ``finance-data``."""
    return re.sub(r"[^a-z0-9]+", "-", text.strip().lower()).strip("-")


def suggest_teams(owners: Sequence[FoundOwner]) -> tuple[tuple[TeamSuggestion, ...], tuple[FoundOwner, ...]]:
    """Group owners into teams: a GitHub team (``@org/team``) is a team of its own; a name or
    e-mail joins the GitHub team whose slug it matches (``growth@acme.com`` → ``@acme/growth``),
    else becomes a team named after it. GitHub users are returned apart."""
    teams: dict[str, TeamSuggestion] = {}
    people: dict[str, FoundOwner] = {}
    for owner in owners:
        raw = owner.raw.strip()
        if raw.startswith("@") and "/" in raw:
            github = raw[1:].lower()
            key = slug(github.split("/", 1)[1])
            if key in teams and teams[key].github != github:  # the same slug in another org
                key = slug(github)
            team = teams.setdefault(key, TeamSuggestion(key, github))
            _add(team.found_in, owner.where)
        elif raw.startswith("@"):
            people.setdefault(raw.lower(), owner)
    for owner in owners:
        raw = owner.raw.strip()
        if raw.startswith("@") or not slug(raw):
            continue
        email = owner.email or (raw if "@" in raw else None)
        name = None if "@" in raw else raw
        candidates = [slug(name)] if name else []
        if email:
            candidates.append(slug(email.split("@", 1)[0]))
        candidates = [c for c in candidates if c]
        if not candidates:
            continue
        chosen = next((c for c in candidates if c in teams), candidates[0])
        team = teams.setdefault(chosen, TeamSuggestion(chosen))
        if email:
            _add(team.emails, email.lower())
        if name:
            _add(team.names, name)
        _add(team.found_in, owner.where)
    return tuple(teams[k] for k in sorted(teams)), tuple(people[k] for k in sorted(people))


def _add(items: list[str], value: str) -> None:
    if value not in items:
        items.append(value)


# --- the file ------------------------------------------------------------------------------------


def _q(text: str) -> str:
    """A YAML scalar that reads back as exactly ``text`` (JSON strings are YAML)."""
    return json.dumps(text, ensure_ascii=False)


def _comment(text: str) -> str:
    """Text safe inside a YAML comment (one line)."""
    return " ".join(text.split())


def starter_config(found: Survey) -> str:
    """The commented ``.tessera.yml`` text for what was found (valid for ``rules.config``)."""
    lines = [
        "# Tessera's configuration, started by `tessera init` from what it found in this repository.",
        "# Review it, then commit it to the default branch: pull requests are judged by the base",
        "# branch's copy. Every key is optional; see the README's `.tessera.yml` section.",
        "",
        "# backward protects downstream readers (the default); forward, full or none.",
        "compatibility: backward",
        "",
    ]
    lines += _dbt_lines(found.projects)
    lines += _team_lines(found)
    lines += [
        "",
        "# Teams that read an asset without Tessera seeing it (a dashboard outside dbt):",
        "# consumers:",
        "#   - {team: growth, asset: fct_revenue, columns: [revenue], note: revenue dashboard}",
        "",
        "# SQL outside dbt (migrations, views) and its dialect:",
        "# sql:",
        '#   paths: ["migrations/**/*.sql"]',
        "#   dialect: postgres",
        "",
        "# What a file Tessera cannot analyse does: regressions (default: a model that was readable",
        "# and no longer is asks its readers, like a breaking change), warn (always review) or block.",
        "on_unparsed: regressions",
    ]
    return "\n".join(lines) + "\n"


def _dbt_lines(projects: Sequence[Project]) -> list[str]:
    if not projects:
        return [
            "# No dbt project (dbt_project.yml) was found. For one, name its folder and dialect:",
            "# dbt:",
            "#   projects: [analytics]",
            "#   dialect: snowflake",
            "",
        ]
    lines = ["# dbt projects and the SQL dialect they are read in, as detected:"]
    for project in projects:
        lines.append(f"#   {_comment(project.path)}: {project.dialect.name} (from {_comment(project.dialect.source)})")
    lines += [
        "dbt:",
        "  # Without `projects:` every folder holding a dbt_project.yml is read.",
        f"  projects: [{', '.join(_q(p.path) for p in projects)}]",
    ]
    dialects = {p.dialect.name for p in projects}
    guessed = [p for p in projects if p.dialect.source == DEFAULT.source]
    if len(dialects) > 1:
        lines.append("  # The projects differ, so each keeps its detected dialect; `dialect:` here would set all.")
        lines.append(f"  # dialect: {projects[0].dialect.name}")
    elif guessed:
        lines.append("  # Nothing said which warehouse this is (no profiles.yml, adapter package or manifest).")
        lines.append(f"  # Set it: {', '.join(sorted({'snowflake', 'bigquery', 'databricks', 'redshift', 'postgres'}))} ...")
        lines.append(f"  # dialect: {DEFAULT.name}")
    else:
        lines.append(f"  dialect: {projects[0].dialect.name}")
    lines.append("")
    return lines


def _team_lines(found: Survey) -> list[str]:
    lines = [
        "# Teams: who acknowledges breaking changes. An owner in dbt (exposure, group, meta.owner)",
        "# or CODEOWNERS maps to a team by its slug, one of its e-mails or names, or its GitHub team.",
        "# `github:` is the GitHub team whose members may `/tessera ack` for the team.",
    ]
    if not found.teams:
        lines += [
            "# No owner was found; for example:",
            "# teams:",
            "#   growth: {github: acme/growth, emails: [growth@acme.com], names: [Growth]}",
            "teams: {}",
        ]
    else:
        lines.append("teams:")
        for team in found.teams:
            lines.append(f"  {_q(team.slug)}:")
            lines.append(f"    # found in: {_comment(', '.join(team.found_in[:6]))}" + (" ..." if len(team.found_in) > 6 else ""))
            if team.github:
                lines.append(f"    github: {_q(team.github)}")
            else:
                lines.append("    # github: your-org/team-slug   # fill in: until then nobody can ack for this team")
            if team.emails:
                lines.append(f"    emails: [{', '.join(_q(e) for e in team.emails)}]")
            if team.names:
                lines.append(f"    names: [{', '.join(_q(n) for n in team.names)}]")
    if found.people:
        lines.append("# People named as owners (not teams): each acknowledges as themselves unless added to a team above.")
        for person in found.people:
            lines.append(f"#   {_comment(person.raw)} ({_comment(person.where)})")
    return lines


# --- the command -------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", default=".", help="the repository's folder (default: the current folder)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing .tessera.yml")


def report(found: Survey, out: IO[str]) -> None:
    """What was found, for the person who ran ``init``."""
    if found.projects:
        out.write(f"dbt projects: {len(found.projects)}\n")
        for project in found.projects:
            where = "." if project.path in ("", ".") else f"{project.path}/"
            out.write(f"  {where}  {display_name(project.dialect.name)} ({project.dialect.source})\n")
    else:
        out.write("dbt projects: none found (no dbt_project.yml)\n")
    out.write(f"owners: {len(found.owners)} mention(s)\n")
    for team in found.teams:
        github = f"@{team.github}" if team.github else "no GitHub team yet"
        ids = ", ".join([*team.names, *team.emails])
        out.write(f"  team {team.slug}: {github}" + (f"; {ids}" if ids else "") + "\n")
    for person in found.people:
        out.write(f"  person {person.raw} ({person.where})\n")


def run(
    args: argparse.Namespace,
    settings: Settings | None = None,
    *,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> int:
    """``tessera init``: survey, print, write ``.tessera.yml`` (never over one without --force)."""
    out = out or sys.stdout
    err = err or sys.stderr
    root = Path(args.repo)
    if not root.is_dir():
        err.write(f"tessera init: {root} is not a folder\n")
        return EXIT_ERROR
    target = root / CONFIG_PATH
    if (target.exists() or target.is_symlink()) and not args.force:
        err.write(f"tessera init: {target} already exists; not overwritten (use --force to replace it)\n")
        return EXIT_ERROR
    found = survey(FolderSource(root))
    report(found, out)
    text = starter_config(found)
    problems = parse_config(text).problems
    if problems:  # a bug in the writer, never the user's fault: say it rather than write a bad file
        err.write(f"tessera init: internal error: the starter file would not read back: {problems[0]}\n")
        return EXIT_ERROR
    try:
        if target.is_symlink():
            target.unlink()
        target.write_text(text, encoding="utf-8")
    except OSError as error:
        err.write(f"tessera init: cannot write {target}: {error.strerror or error}\n")
        return EXIT_ERROR
    unmapped = [t.slug for t in found.teams if not t.github]
    out.write(f"wrote {target}")
    if unmapped:
        out.write(f"; fill in `github:` for {', '.join(unmapped)}")
    out.write(". Review it and commit it to the default branch.\n")
    return EXIT_OK
