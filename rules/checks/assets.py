"""Checks on whole assets: removed, renamed or moved, access, contract, materialization, versions,
unique key, descriptions, and files that could not be read at all."""

from __future__ import annotations

import re
from collections.abc import Iterator

from rules.catalog import RuleId
from rules.checks.context import DiffContext, Finding, Pair, emits, names, plain_meta
from rules.model import Asset, Snapshot, column_key

_ACCESS_RANK = {"private": 0, "protected": 1, "public": 2}
_RELATION_GONE = frozenset({"ephemeral"})
"""Materializations under which no relation exists in the warehouse any more."""
_ENFORCES_CONSTRAINTS = frozenset({"table", "incremental"})
"""Materializations on which dbt has the warehouse enforce a contract's constraints."""


@emits(RuleId.ASSET_REMOVED)
def removed(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    """A base asset with nothing in head (or only a disabled one): everyone reading it breaks."""
    b = pair.base
    if b is None or pair.head is not None:
        return
    h = ctx.head.assets.get(b.fqn)
    if h is not None and not h.enabled:
        how = "was disabled (enabled: false)"
        path, line = h.path, h.line
    else:
        how = f"was removed{' (' + b.path + ')' if b.path else ''}"
        path, line = b.path, b.line
    readers = sorted(
        a.fqn for a in ctx.head.assets.values()
        if b.fqn in a.depends_on and a.enabled and a.fqn != b.fqn and a.fqn not in ctx.ignored_fqns
    )
    if readers:
        fail = "fail to build" if b.kind == "model" else "fail"
        said = (f" {names(readers)} still {'reads' if len(readers) == 1 else 'read'} it and will "
                f"{fail} unless {'it changes' if len(readers) == 1 else 'they change'} too.")
    else:
        said = ""
    if b.kind == "source":
        # a source is a declaration of a table dbt reads, not one it builds: deleting the
        # declaration drops nothing in the warehouse, so only this project's own readers notice
        yield Finding(
            RuleId.ASSET_REMOVED, asset=b.fqn, path=path, line=line,
            message=f"The declaration of source `{b.fqn}` {how}; the table itself is not dropped by dbt."
            + (f" {names(readers)} still {'reads' if len(readers) == 1 else 'read'} it and will fail to compile."
               if readers else " Nothing here reads it any more."),
            before=b.fqn, after=None, judged_by=(h, b),
            cap="review" if not ctx.overridden(RuleId.ASSET_REMOVED) else None,
        )
        return
    yield Finding(
        RuleId.ASSET_REMOVED, asset=b.fqn, path=path, line=line,
        message=f"{b.kind.capitalize()} `{b.fqn}` {how}: everything reading it breaks.{said}",
        before=b.fqn, after=None, judged_by=(h, b),
    )


@emits(RuleId.ASSET_RENAMED)
def renamed(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    """The same definition under a new name (or ``renamed_from``): readers of the old name break."""
    if pair.renamed_to is None or pair.head is None:
        return
    old, new, h = pair.fqn, pair.renamed_to, pair.head
    yield Finding(
        RuleId.ASSET_RENAMED, asset=old, path=h.path, line=h.line,
        message=f"`{old}` is now `{new}`: readers of `{old}` break.", before=old, after=new,
    )


@emits(RuleId.ASSET_RENAMED)
def relation_moved(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    """A dbt ``alias`` or ``schema`` change moves the warehouse relation: refs follow it, but
    dashboards and outside SQL reading the old name break. Breaking for public or exposed
    models, a review otherwise."""
    both = pair.both
    if both is None or pair.renamed_to is not None:
        return
    b, h = both
    fqn = pair.fqn
    if b.kind not in ("model", "snapshot") or h.kind != b.kind or b.version != h.version:
        return
    before, after = _plain_relation(b.relation), _plain_relation(h.relation)
    if not before or not after or before == after:
        return
    exposed = (h.access or "").lower() == "public" or any(
        fqn in e.depends_on or h.fqn in e.depends_on for e in ctx.head.exposures.values()
    ) or any(r.asset.lower() in (fqn, h.fqn) for r in ctx.config.consumers)
    yield Finding(
        RuleId.ASSET_RENAMED, asset=fqn, path=h.path, line=h.line,
        message=f"The warehouse relation of `{fqn}` moves: `{before}` → `{after}` (alias/schema "
        "config). dbt refs follow it, but dashboards and SQL outside dbt reading "
        f"`{before}` break.",
        before=before, after=after, cap=None if exposed else "review",
    )


@emits(RuleId.ACCESS_NARROWED)
def access(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    both = pair.both
    if both is None:
        return
    b, h = both
    if b.kind != "model" and h.kind != "model":
        return
    before = (b.access or "protected").lower()
    after = (h.access or "protected").lower()
    if _ACCESS_RANK.get(after, 1) < _ACCESS_RANK.get(before, 1):
        path, line = ctx.properties_at(h)
        yield Finding(
            RuleId.ACCESS_NARROWED, asset=pair.fqn, path=path, line=line,
            message=f"Access of `{pair.fqn}` narrowed from {before} to {after}: refs from outside "
            f"{'its group' if after == 'private' else 'its project'} will fail.",
            before=before, after=after,
        )


@emits(RuleId.CONTRACT_UNENFORCED)
def contract(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    both = pair.both
    if both is None:
        return
    b, h = both
    if b.contract_enforced and not h.contract_enforced:
        path, line = ctx.properties_at(h)
        yield Finding(
            RuleId.CONTRACT_UNENFORCED, asset=pair.fqn, path=path, line=line,
            message=f"The contract of `{pair.fqn}` is no longer enforced: its declared columns and "
            "types are not guaranteed any more.",
            before="enforced", after="not enforced",
        )


@emits(RuleId.MATERIALIZATION_CHANGED)
def materialization(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    both = pair.both
    if both is None:
        return
    b, h = both
    before, after = b.materialized, h.materialized
    if before is None or after is None or before.lower() == after.lower():
        return
    gone = after.lower() in _RELATION_GONE and before.lower() not in _RELATION_GONE
    message = f"`{pair.fqn}` is now materialized as {after} (was {before})"
    if gone:
        message += ": no relation will exist in the warehouse, so direct readers break."
    elif (
        before.lower() in _ENFORCES_CONSTRAINTS and after.lower() not in _ENFORCES_CONSTRAINTS
        and (b.constraints or any(c.constraints for c in b.columns))
    ):
        message += ": its constraints are no longer enforced by the warehouse."
    else:
        message += "."
    yield Finding(
        RuleId.MATERIALIZATION_CHANGED, asset=pair.fqn, path=h.path, line=h.line,
        message=message, before=before, after=after, escalate=gone,
    )


@emits(RuleId.VERSION_DEPRECATED)
def version(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    both = pair.both
    if both is None:
        return
    b, h = both
    fqn = pair.fqn
    parts = []
    if str(b.latest_version or "") != str(h.latest_version or "") and _was_latest(b):
        parts.append(("latest_version", b.latest_version, h.latest_version))
    if str(b.deprecation_date or "") != str(h.deprecation_date or ""):
        parts.append(("deprecation_date", b.deprecation_date, h.deprecation_date))
    if not parts:
        return
    said = []
    for name, old, new in parts:
        if name == "deprecation_date":
            said.append(f"`{fqn}` is deprecated from {new}: its readers must move before then"
                        if new else f"`{fqn}` is no longer deprecated (was {old})")
        else:
            model = h.name or fqn.split(".v")[0]
            if not old:
                said.append(f"`{model}` is now versioned: `ref('{model}')` means version {new}")
            elif not new:
                said.append(f"`{model}` no longer names a latest version (was {old})")
            else:
                said.append(f"`ref('{model}')` now means version {new} instead of {old}: readers "
                            "that do not pin a version will switch")
    path, line = ctx.properties_at(h)
    yield Finding(
        RuleId.VERSION_DEPRECATED, asset=fqn, path=path, line=line,
        message="; ".join(said) + ".",
        before=", ".join(f"{n}={o}" for n, o, _ in parts),
        after=", ".join(f"{n}={v}" for n, _, v in parts),
    )


@emits(RuleId.GRAIN_CHANGED)
def unique_key(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    """A new unique key is a new grain (the query comparison then does not say it again)."""
    both = pair.both
    if both is None:
        return
    b, h = both
    before, after = _key_columns(b.unique_key), _key_columns(h.unique_key)
    if before and before != after:
        pair.grain_said = True
        yield Finding(
            RuleId.GRAIN_CHANGED, asset=pair.fqn, path=h.path, line=h.line,
            message=f"The unique key of `{pair.fqn}` changed from ({', '.join(before)}) to "
            f"({', '.join(after) or 'none'}): one row now means something else.",
            before=", ".join(before), after=", ".join(after) or None,
        )


@emits(RuleId.METADATA_CHANGED)
def metadata(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    """Description, tags or meta of the asset itself."""
    both = pair.both
    if both is None:
        return
    b, h = both
    changed = [
        name for name, old, new in (
            ("description", b.description, h.description),
            ("tags", tuple(sorted(b.tags)), tuple(sorted(h.tags))),
            ("meta", plain_meta(b.meta), plain_meta(h.meta)),
        ) if old != new
    ]
    if changed:
        path, line = ctx.properties_at(h)  # a description lives in YAML: point there, not at the SQL
        yield Finding(
            RuleId.METADATA_CHANGED, asset=pair.fqn, path=path, line=line,
            message=f"The {' and '.join(changed)} of `{pair.fqn}` changed.",
            before=b.description or None if changed == ["description"] else None,
            after=h.description or None if changed == ["description"] else None,
        )


@emits(RuleId.UNPARSED)
def unparsed(pair: Pair, ctx: DiffContext) -> Iterator[Finding]:
    """Each new problem in a changed file, once (on the pair that stands for the whole change).

    A file that was readable in the base and is not in the head (or a new file that cannot be
    read) fails closed under ``on_unparsed: regressions``: its asset's readers are asked as for a
    breaking change, because whatever else the change did to that asset can no longer be seen."""
    if pair.base is not None or pair.head is not None:
        return
    known = {(p.path, p.message) for p in ctx.base.problems}
    unreadable_before = {p.path for p in ctx.base.problems}
    seen: set[tuple[str, str, int | None]] = set()
    for problem in ctx.head.problems:
        if ctx.ignored_path(problem.path):
            continue
        if ctx.changed_paths is not None:
            if problem.path not in ctx.changed_paths:
                continue
        elif (problem.path, problem.message) in known:
            continue
        ident = (problem.path, problem.message, problem.line)
        if ident in seen:
            continue
        seen.add(ident)
        asset = _asset_at(ctx.head, problem.path, problem.line) or _asset_at(ctx.base, problem.path, problem.line)
        regression = (
            ctx.config.on_unparsed == "regressions" and asset is not None and problem.path not in unreadable_before
        )
        where = f"{problem.path}{f' (line {problem.line})' if problem.line else ''}"
        message = (
            f"`{asset.fqn}` can no longer be analysed, so what else this change does to it cannot be seen: "
            f"{where}: {problem.message}"
            if regression and asset is not None
            else f"Tessera could not analyse {where}: {problem.message}"
        )
        yield Finding(
            RuleId.UNPARSED, asset=asset.fqn if asset is not None else problem.path,
            path=problem.path, line=problem.line, message=message,
            judged_by=(asset,), escalate=regression,
        )


def _asset_at(snapshot: Snapshot, path: str, line: int | None) -> Asset | None:
    """The asset a problem is about: the model of a model file, or the statement at that line.

    A SQL file holds many statements; naming an asset that merely lives in the same file would
    send the finding to the wrong readers, so the path itself is named instead."""
    here = [a for a in snapshot.assets.values() if a.path == path]
    models = [a for a in here if a.kind == "model"]
    if len(models) == 1:
        return models[0]
    at_line = [a for a in here if line is not None and a.line == line]
    return at_line[0] if len(at_line) == 1 else None


def _was_latest(b: Asset) -> bool:
    """A new latest_version concerns the version readers got by default until now, not the rest."""
    return b.version is None or b.latest_version is None or str(b.version) == str(b.latest_version)


def _plain_relation(relation: str | None) -> str:
    """A relation name without quotes, lower-case, for comparing and showing."""
    return ".".join(p.strip().strip('"`[]') for p in (relation or "").split(".") if p.strip()).lower()


def _key_columns(keys: tuple[str, ...]) -> tuple[str, ...]:
    """A unique key as column names, however it was written (older manifests keep a list as the
    text ``"['id', 'order_date']"``)."""
    out: list[str] = []
    for key in keys:
        for part in re.split(r"[,\[\]]", key):
            name = column_key(part.strip().strip("'\"").strip())
            if name:
                out.append(name)
    return tuple(out)
