"""The words a busy reader sees: the PR comment (Markdown) and the ``tessera check`` JSON.

The comment answers, in this order: does this PR need anything from me, what broke and for whom,
what each team must do (and the command to do it), how to migrate, and a picture of who is
reached. Safe and informational findings are folded away. The comment starts with a hidden
marker so the App finds and edits its own comment instead of adding new ones, and it stays under
GitHub's 65,536-character limit by dropping the least useful parts first and linking to the full
report.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rules.dialect import display_name
from rules.markdown import code, fence, mention, mermaid_label, prose, text
from rules.model import (
    UNKNOWN_READERS,
    Analysis,
    Change,
    Impact,
    Migration,
    Project,
    RequiredAck,
    person_identity,
)
from rules.owners import holder_text

MARKER = "<!-- tessera:impact -->"
"""The hidden marker the App looks for to find its own comment."""

GITHUB_COMMENT_LIMIT = 65536

SEVERITY_ORDER = {"breaking": 0, "review": 1, "safe": 2, "info": 3}
SEVERITY_ICON = {"breaking": "🔴", "review": "🟡", "safe": "🟢", "info": "⚪"}
MAX_DIAGRAM_NODES = 40


@dataclass(frozen=True)
class AckState:
    """What a team has answered on the PR (the App keeps these; the report only shows them)."""

    response: str
    """``ack``, ``migrating`` or ``block``."""
    user: str | None = None
    deadline: str | None = None
    """``YYYY-MM-DD`` for ``migrating ... by``."""
    reason: str | None = None
    stale: bool = False
    """True when the team answered an earlier push whose breaking changes differ from these."""


def to_json(analysis: Analysis) -> str:
    """The ``tessera check --format json`` object of DESIGN.md, pretty-printed."""
    return json.dumps(analysis.to_dict(), indent=2, ensure_ascii=False)


def needs_comment(analysis: Analysis) -> bool:
    """True when the PR deserves a comment: anything breaking or to review, or an error.

    Safe and info-only PRs pass silently (the friction budget).
    """
    return bool(analysis.errors) or any(c.severity in ("breaking", "review") for c in analysis.changes)


# --- Markdown -----------------------------------------------------------------------------------


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _join(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


_LINE_PREFIX = re.compile(r"^line \d+:\s*")


def _said_as_unparsed(path: str | None, message: str, changes: Sequence[Change]) -> bool:
    """An error an UNPARSED finding on the same file already shows: listing it twice reads as two
    problems."""
    if not path:
        return False
    said = _LINE_PREFIX.sub("", message.strip())
    return any(c.rule == "UNPARSED" and c.path == path and said in c.message for c in changes)


def _acked(ack: AckState | None) -> bool:
    return ack is not None and ack.response == "ack" and not ack.stale


def _ack_status(ack: AckState | None) -> str:
    if ack is None:
        return "⏳ waiting"
    who = f" by {mention(ack.user)}" if ack.user else ""
    if ack.stale:
        return f"⏳ waiting (the earlier {ack.response}{who} was for different changes)"
    if ack.response == "ack":
        return f"✅ acknowledged{who}"
    if ack.response == "migrating":
        until = f" until {text(ack.deadline)}" if ack.deadline else ""
        return f"🕓 migrating{until}{who}"
    if ack.response == "block":
        why = f": {text(ack.reason)}" if ack.reason else ""
        return f"⛔ blocked{who}{why}"
    return f"{text(ack.response)}{who}"


def breaking_consumers(analysis: Analysis) -> list[Impact]:
    """Consumers a breaking change reaches (one row per consumer)."""
    breaking = {(c.rule, c.asset) for c in analysis.changes if c.severity == "breaking"}
    found: dict[tuple[str, str], Impact] = {}
    for impact in analysis.impacts:
        if any((rule, impact.asset) in breaking for rule in impact.rules):
            found.setdefault((impact.consumer, impact.consumer_type), impact)
    return list(found.values())


def ownerless_consumers(analysis: Analysis) -> list[Impact]:
    """Consumers a breaking change reaches whose owner nobody asked answers for: no owner at all,
    or a person Tessera could not find (held for a fallback, or only noted with ``on_unowned: warn``)."""
    asked = {r.team for r in analysis.required_acks}
    return [
        i for i in breaking_consumers(analysis)
        if i.consumer_type != UNKNOWN_READERS and (i.team is None or i.team not in asked)
    ]


def unknown_readers(analysis: Analysis) -> list[Impact]:
    """Published relations a breaking change reaches whose readers nobody knows (one row each)."""
    return [i for i in breaking_consumers(analysis) if i.consumer_type == UNKNOWN_READERS]


def _unknown_holders(analysis: Analysis) -> list[RequiredAck]:
    return [r for r in analysis.required_acks if "unknown_readers" in r.held_for]


def _unknown_note(analysis: Analysis) -> str:
    """The headline's word on published relations nobody is known to read, and who holds."""
    unknown = unknown_readers(analysis)
    if not unknown:
        return ""
    holders = _unknown_holders(analysis)
    who = _join([holder_text(r) for r in holders]) if holders else "nobody (on_unknown_readers: warn)"
    return f" · readers of {_join([code(i.asset) for i in unknown[:3]])}{' and more' if len(unknown) > 3 else ''} unknown: held for {who}"


def _ownerless_note(analysis: Analysis) -> str:
    """The headline's word on consumers with no owner: how many, and who holds for them."""
    ownerless = ownerless_consumers(analysis)
    if not ownerless:
        return ""
    holders = [r for r in analysis.required_acks if r.fallback]
    who = _join([holder_text(r) for r in holders]) if holders else "nobody (on_unowned: warn)"
    verb = "has" if len(ownerless) == 1 else "have"
    return f" · {_plural(len(ownerless), 'consumer')} {verb} no owner: held for {who}"


def _headline(analysis: Analysis, acks: Mapping[str, AckState]) -> str:
    breaking = [c for c in analysis.changes if c.severity == "breaking"]
    review = [c for c in analysis.changes if c.severity == "review"]
    required = analysis.required_acks
    note = _ownerless_note(analysis) + _unknown_note(analysis)
    if required:
        blocked = [r for r in required if _answered(acks.get(r.team), "block")]
        waiting = [r for r in required if not _answered(acks.get(r.team), "ack")]
        if blocked:
            teams = _join([holder_text(r) for r in blocked])
            return f"## ⛔ Tessera: blocked by {teams}{note}"
        if not waiting:
            return (
                f"## ✅ Tessera: everyone asked about the {_plural(len(breaking), 'breaking change')}"
                f" has acknowledged{note}"
            )
        teams = _join([holder_text(r) for r in waiting])
        verb = "needs" if len(breaking) == 1 else "need"
        return f"## ⏳ Tessera: {_plural(len(breaking), 'breaking change')} {verb} an acknowledgement from {teams}{note}"
    if breaking and note:
        return f"## ⚠️ Tessera: {_plural(len(breaking), 'breaking change')}, nobody asked{note}"
    if breaking and analysis.unread:
        return f"## 🟢 Tessera: {_plural(len(breaking), 'breaking change')}, and query logs show nobody reads what changed"
    if breaking:
        return f"## 🟢 Tessera: {_plural(len(breaking), 'breaking change')}, but no other team reads what changed"
    if review:
        return f"## 🟡 Tessera: {_plural(len(review), 'change')} worth a look, nothing to acknowledge"
    if analysis.errors:
        return "## ⚠️ Tessera: some things could not be analysed"
    return "## 🟢 Tessera: no breaking changes"


def _answered(ack: AckState | None, response: str) -> bool:
    return ack is not None and not ack.stale and ack.response == response


def _summary_line(analysis: Analysis) -> str:
    counts: dict[str, int] = {}
    for change in analysis.changes:
        counts[change.severity] = counts.get(change.severity, 0) + 1
    parts = [f"{counts[s]} {s}" for s in ("breaking", "review", "safe", "info") if counts.get(s)]
    consumers = {(i.consumer, i.consumer_type) for i in analysis.impacts if i.consumer_type != UNKNOWN_READERS}
    line = f"Changes: {', '.join(parts) if parts else 'none'}"
    unknown = len(unknown_readers(analysis))
    if unknown:
        line += f" · {_plural(unknown, 'published relation')} whose readers Tessera does not know"
    if consumers:
        line += f" · {_plural(len(consumers), 'consumer')} reached"
        hit = len(breaking_consumers(analysis)) - unknown
        line += f" ({hit} by a breaking change" if hit else " (none by a breaking change"
        ownerless = len(ownerless_consumers(analysis))
        line += f", {ownerless} with no owner)" if ownerless else ")"
    return line + "."


def _teams_section(analysis: Analysis, acks: Mapping[str, AckState]) -> list[str]:
    if not analysis.required_acks:
        return []
    lines = ["### What each team must do", "", "| Who | Why you are asked | Status |", "|---|---|---|"]
    for req in analysis.required_acks:
        reasons = "<br>".join(prose(r, table=True) for r in req.reasons[:6])
        if len(req.reasons) > 6:
            reasons += f"<br>…and {len(req.reasons) - 6} more"
        who = holder_text(req, table=True) + _holding_for(req)
        if req.owner_source == "history":
            who += " (last changed a reader no one declares an owner for)"
        lines.append(f"| {who} | {reasons} | {_ack_status(acks.get(req.team))} |")
    if all(_acked(acks.get(req.team)) for req in analysis.required_acks):
        # The how-to-answer instructions are noise once nobody is left to answer.
        return [*lines, "", "Every team above has acknowledged: nothing more is needed here.", ""]
    lines += [
        "",
        "A member of each team above (a person named above for themself; for the maintainers, anyone with"
        " maintain or admin permission here other than the author) answers with a comment starting with one of:",
        "- `/tessera ack` — we are ready for this change (or `/tessera ack <team>` when you are in several).",
        "- `/tessera migrating by YYYY-MM-DD` — we need time; the check stays red until someone acks.",
        "- `/tessera block <reason>` — this must not merge as it is.",
        "",
    ]
    return lines


def _holding_for(req: RequiredAck) -> str:
    """Why a fallback is asked, after its name in the table."""
    if not req.fallback:
        return ""
    if req.held_for == ("unknown_readers",):
        return " (holding for readers Tessera does not know)"
    if "unknown_readers" in req.held_for:
        return " (holding for consumers with no owner and readers Tessera does not know)"
    return " (holding for consumers with no owner)"


def _unknown_section(analysis: Analysis) -> list[str]:
    """Published relations whose readers nobody knows, who confirms for them, how to make it
    precise; and those fresh query logs show nobody reads."""
    unknown = unknown_readers(analysis)
    if not unknown and not analysis.unread:
        return []
    holders = _unknown_holders(analysis)
    who = _join([holder_text(r) for r in holders])
    lines = ["### Readers outside the repository", ""]
    for row in unknown:
        what = ", ".join(code(c) for c in row.columns) if row.columns else "the whole relation"
        rules = ", ".join(row.rules)
        head = (
            f"- Tessera knows no reader of {code(row.asset)} (no exposure, registration or observed query),"
            f" and {rules} changes {what}: "
        )
        if holders:
            verb = "confirm" if len(holders) > 1 or holders[0].maintainers else "confirms"
            lines.append(head + f"{who} {verb} nobody outside the repository depends on it.")
        else:
            lines.append(head + "nobody was asked to confirm that nobody outside the repository depends on it"
                         " (on_unknown_readers: warn).")
    if unknown:
        lines.append(
            "- To make this precise, say who reads it: an exposure or a `consumers:` entry in `.tessera.yml`,"
            " a registration through the API (`POST /api/v1/registrations`), or `tessera discover` on the"
            " warehouse's query log. If only the repository builds on it, declare it `access: private` or"
            " name its folder or prefix under `internal:` in `.tessera.yml`."
        )
    lines += [
        f"- Query logs show no reads of {code(u.target)} in the last {u.days} days"
        f" ({text(', '.join(u.logs))} query logs): nobody is asked."
        for u in analysis.unread
    ]
    lines.append("")
    return lines


def _changes_section(changes: Sequence[Change]) -> tuple[list[str], list[str]]:
    """The changes by asset, breaking first: (what matters, the folded safe/info list)."""
    by_asset: dict[str, list[Change]] = {}
    for change in changes:
        by_asset.setdefault(change.asset, []).append(change)

    def asset_rank(item: tuple[str, list[Change]]) -> tuple[int, str]:
        return (min(SEVERITY_ORDER.get(c.severity, 9) for c in item[1]), item[0])

    main: list[str] = []
    quiet: list[str] = []
    for asset, items in sorted(by_asset.items(), key=asset_rank):
        items.sort(key=lambda c: (SEVERITY_ORDER.get(c.severity, 9), c.column or "", c.rule))
        loud = [c for c in items if c.severity in ("breaking", "review")]
        soft = [c for c in items if c not in loud]
        path = next((c.path for c in items if c.path), None)
        title = f"**{code(asset)}**" + (f" — {code(path)}" if path else "")
        if loud:
            main.append(title)
            main += [_change_line(c) for c in loud]
            main.append("")
        if soft:
            quiet.append(title)
            quiet += [_change_line(c) for c in soft]
            quiet.append("")
    return main, quiet


def _change_line(change: Change) -> str:
    icon = SEVERITY_ICON.get(change.severity, "•")
    where = f"{code(change.column)}: " if change.column else ""
    message = change.message or change.rule.replace("_", " ").lower()
    detail = ""
    if change.before and change.after:
        # a before/after pair says what the message may not; a lone "was" repeats it
        if change.before not in message or change.after not in message:
            detail = f" ({code(change.before, limit=120)} → {code(change.after, limit=120)})"
    line = f" · line {change.line}" if change.line else ""
    names = (change.column, change.asset, change.before, change.after)
    return f"- {icon} {change.severity} · {change.rule} · {where}{prose(message, names=names)}{detail}{line}"


MAX_NAMED_CONSUMERS = 6
CONSUMER_ORDER = {"exposure": 0, "registration": 1, "query": 2, "view": 3, "model": 4}


def _impacts_section(impacts: Sequence[Impact], required: Sequence[RequiredAck]) -> list[str]:
    """Consumers grouped by changed asset and team: what a team reads, exposures first.

    A team's models downstream of its own first model are only named when there are few: the
    first ones it owns on each path are where the team has to look.
    """
    if not impacts:
        return []
    asked = {r.team: r for r in required}
    groups: dict[tuple[str, str | None], list[Impact]] = {}
    for impact in impacts:
        groups.setdefault((impact.asset, impact.team), []).append(impact)
    lines = [
        "### Who reads what changed",
        "",
        "| Changed | Team | Consumers | Columns | Rules |",
        "|---|---|---|---|---|",
    ]
    for (asset, team_slug), items in groups.items():
        if team_slug in asked:
            team = holder_text(asked[team_slug], table=True)
        elif person_identity(team_slug):
            team = f"{code(str(person_identity(team_slug)), table=True)} (not found on GitHub)"
        else:
            team = code(team_slug, table=True) if team_slug else (
                "_unknown_" if all(i.consumer_type == UNKNOWN_READERS for i in items) else "_no owner_"
            )
        names = {i.consumer for i in items}
        # entry points: consumers with no other consumer of this team earlier on their path
        entry = [i for i in items if not any(p in names for p in i.path[:-1])] or items
        entry.sort(key=lambda i: (CONSUMER_ORDER.get(i.consumer_type, 9), len(i.path), i.consumer))
        exposures = [i for i in items if i.consumer_type == "exposure" and i not in entry]
        shown = (entry + exposures)[:MAX_NAMED_CONSUMERS]
        consumers = ", ".join(_consumer_text(i) for i in shown)
        hidden = len(items) - len(shown)
        if hidden > 0:
            consumers += f" and {_plural(hidden, 'more downstream model')}"
        columns = sorted({c for i in items for c in i.columns})
        rules = sorted({r for i in items for r in i.rules})
        column_text = ", ".join(code(c, table=True) for c in columns) or "all"
        lines.append(f"| {code(asset, table=True)} | {team} | {consumers} | {column_text} | {', '.join(rules)} |")
    lines.append("")
    return lines


def _consumer_text(impact: Impact) -> str:
    if impact.consumer_type == UNKNOWN_READERS:
        return "readers Tessera does not know"
    via = f" (via {' → '.join(code(p, table=True) for p in impact.path[1:-1])})" if len(impact.path) > 2 else ""
    return f"{text(impact.consumer_type)} {code(impact.consumer, table=True)}{via}"


OPEN_MIGRATIONS = 3
"""Migrations shown open; the rest are folded so the comment stays readable."""


def _migrations_section(migrations: Sequence[Migration], *, with_sql: bool = True) -> list[str]:
    if not migrations:
        return []
    lines = ["### Suggested migrations", ""]
    for n, m in enumerate(migrations):
        if n == OPEN_MIGRATIONS:
            lines += [f"<details><summary>{_plural(len(migrations) - n, 'more suggestion')}</summary>", ""]
        target = code(f"{m.asset}.{m.column}" if m.column else m.asset)
        lines.append(f"**{m.rule} {target}** — {prose(m.steps.strip(), names=(m.column, m.asset))}")
        if with_sql and m.sql:
            ticks = fence(m.sql)
            lines += ["", f"{ticks}{_language(m.sql)}", m.sql.strip(), ticks]
        lines.append("")
    if len(migrations) > OPEN_MIGRATIONS:
        lines += ["</details>", ""]
    return lines


def _language(code: str) -> str:
    """``yaml`` for dbt property snippets (a new model version), ``sql`` otherwise."""
    return "yaml" if re.match(r"\s*(models|version|sources|exposures|groups)\s*:", code) else "sql"


def _node_id(name: str, ids: dict[str, str]) -> str:
    if name not in ids:
        ids[name] = f"n{len(ids)}"
    return ids[name]


def mermaid(analysis: Analysis, *, max_nodes: int = MAX_DIAGRAM_NODES) -> tuple[str, bool]:
    """A ``graph LR`` from each changed asset to the consumers it reaches; True when shortened."""
    breaking_assets = {c.asset for c in analysis.changes if c.severity == "breaking"}
    ids: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    consumers: dict[str, str] = {}
    shortened = False
    for impact in analysis.impacts:
        path = impact.path or (impact.asset, impact.consumer)
        if path[0] != impact.asset:
            path = (impact.asset, *path)
        if path[-1] != impact.consumer:
            path = (*path, impact.consumer)
        new_nodes = {p for p in path if p not in ids}
        if len(ids) + len(new_nodes) > max_nodes:
            shortened = True
            continue
        for name in path:
            _node_id(name, ids)
        consumers[path[-1]] = impact.consumer_type
        for a, b in zip(path, path[1:], strict=False):
            if (a, b) not in edges:
                edges.append((a, b))
    if not edges:
        return "", shortened
    lines = ["```mermaid", "graph LR"]
    for name, node in ids.items():
        label = mermaid_label(name)
        if consumers.get(name) == "exposure":
            lines.append(f'  {node}(["{label}"])')
        elif name in consumers and consumers[name] in ("registration", "query"):
            lines.append(f'  {node}[/"{label}"/]')
        else:
            lines.append(f'  {node}["{label}"]')
    for a, b in edges:
        lines.append(f"  {ids[a]} --> {ids[b]}")
    lines.append("  classDef changed fill:#ffe3e3,stroke:#c92a2a")
    lines.append("  classDef consumer fill:#e7f5ff,stroke:#1971c2")
    changed = [ids[a] for a in ids if a in breaking_assets or a in {i.asset for i in analysis.impacts}]
    if changed:
        lines.append(f"  class {','.join(changed)} changed")
    reached = [ids[c] for c in consumers if c in ids and ids[c] not in changed]
    if reached:
        lines.append(f"  class {','.join(reached)} consumer")
    lines.append("```")
    return "\n".join(lines), shortened


def to_markdown(
    analysis: Analysis,
    *,
    details_url: str | None = None,
    acks: Mapping[str, AckState] | None = None,
    limit: int = GITHUB_COMMENT_LIMIT,
) -> str:
    """The PR comment: marker, headline, teams and commands, changes, consumers, migrations, graph.

    When the text would exceed ``limit``, the least useful parts go first (the diagram, the folded
    safe changes, migration SQL, then the consumer table), with a link to ``details_url``.
    """
    acks = acks or {}
    head = [MARKER, _headline(analysis, acks), "", _summary_line(analysis), ""]
    teams = _teams_section(analysis, acks)
    main, quiet = _changes_section(analysis.changes)
    changes = (["### Changes", ""] + main) if main else []
    folded: list[str] = []
    if quiet:
        n = sum(1 for line in quiet if line.startswith("- "))
        folded = ["<details><summary>" + _plural(n, "safe or informational change") + "</summary>", ""]
        folded += quiet + ["</details>", ""]
    errors: list[str] = []
    unsaid = [e for e in analysis.errors if not _said_as_unparsed(e.path, e.message, analysis.changes)]
    if unsaid:
        errors = ["### Needs a look", ""]
        errors += [
            f"- {code(e.path)}: {prose(e.message)}" if e.path else f"- {prose(e.message)}"
            for e in unsaid
        ]
        errors.append("")
    impacts = _impacts_section(analysis.impacts, analysis.required_acks)
    acked_assets = {i.asset for i in analysis.impacts if i.team in {r.team for r in analysis.required_acks}}
    ordered_migrations = sorted(analysis.migrations, key=lambda m: m.asset not in acked_assets)
    migrations = _migrations_section(ordered_migrations)
    diagram_text, diagram_short = mermaid(analysis)
    diagram: list[str] = []
    if diagram_text:
        diagram = ["### Impact graph", "", diagram_text]
        if diagram_short:
            more = f" — [see the full graph]({details_url})" if details_url else ""
            diagram.append(f"_Shortened to {MAX_DIAGRAM_NODES} nodes{more}._")
        diagram.append("")
    footer = [f"<sub>Tessera · base {code(analysis.base[:12])} → head {code(analysis.head[:12])}"]
    if analysis.projects:
        footer[0] += f" · read {projects_text(analysis.projects)}"
    if details_url:
        footer[0] += f" · [full report]({details_url})"
    footer[0] += "</sub>"
    footer[:0] = [f"<sub>{prose(note)}</sub>\n" for note in analysis.notes]  # how packages were read

    sections = {
        "head": head,
        "teams": teams,
        "unknown": _unknown_section(analysis),
        "changes": changes,
        "errors": errors,
        "impacts": impacts,
        "migrations": migrations,
        "diagram": diagram,
        "folded": folded,
    }
    order = ("head", "teams", "unknown", "changes", "errors", "impacts", "migrations", "diagram", "folded")

    def render(note: str | None = None) -> str:
        parts = [line for key in order for line in sections[key]]
        if note:
            parts += [note, ""]
        return "\n".join(parts + footer) + "\n"

    body = render()
    if len(body) <= limit:
        return body
    link = f"[the full report]({details_url})" if details_url else "`tessera check` locally"
    note = f"_This comment was shortened to fit; see {link} for everything._"
    for drop in ("diagram", "folded", "migrations-sql", "impacts", "migrations", "errors"):
        if drop == "migrations-sql":
            sections["migrations"] = _migrations_section(ordered_migrations, with_sql=False)
        else:
            sections[drop] = []
        body = render(note)
        if len(body) <= limit:
            return body
    # Still too long (thousands of changes): cut the change list itself.
    budget = limit - len(note) - len("\n".join(footer)) - 16
    body = "\n".join(line for key in order for line in sections[key])
    cut = body[: max(0, budget - len(MARKER))]
    cut = cut[: cut.rfind("\n")] if "\n" in cut else cut
    if not cut.startswith(MARKER):
        cut = MARKER + "\n" + cut
    return cut + "\n…\n\n" + note + "\n\n" + "\n".join(footer) + "\n"


# --- what was read, and how ---------------------------------------------------------------------

MAX_PROJECTS_SHOWN = 5


def projects_text(projects: Sequence[Project], *, limit: int = MAX_PROJECTS_SHOWN) -> str:
    """Which dialect each dbt project was read in and why: ``analytics/`` as BigQuery
    (``requirements.txt: dbt-bigquery``)."""
    parts = []
    for project in projects[:limit]:
        where = "the root project" if project.path in ("", ".") else code(project.path.rstrip("/") + "/", limit=120)
        parts.append(f"{where} as {display_name(project.dialect.name)} ({code(project.dialect.source, limit=120)})")
    if len(projects) > limit:
        parts.append(_plural(len(projects) - limit, "more project"))
    return _join(parts)


def zero_config_line(analysis: Analysis) -> str | None:
    """One line for a repository without ``.tessera.yml``: what was detected and how to refine it
    (None when the repository has one, or nothing was read)."""
    if analysis.detected is None or not analysis.projects:
        return None
    sources = list(analysis.detected.owner_sources)
    owners = f"owners from {_join(sources)}" if sources else "no owners found in dbt or CODEOWNERS"
    return (
        f"No `.tessera.yml`: read {projects_text(analysis.projects)}; {owners}. "
        "Run `tessera init` to refine."
    )
