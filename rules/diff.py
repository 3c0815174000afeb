"""Diff two snapshots into findings: which rule fired where, and how much it matters here.

This module pairs base and head assets (same name, a new version of the same model, a rename,
a removal) and runs every check of :data:`rules.checks.CHECKS` on each pair; the checks live by
subject in :mod:`rules.checks`. They only *find* changes and name them by a catalog rule;
severities come from :func:`rules.catalog.severity` for the asset's compatibility mode
(``meta.tessera.compatibility``, else ``.tessera.yml``'s) and the repository's overrides. Renames are detected before removals, so a
rename reads as one ``*_RENAMED`` finding rather than a removal plus an addition. What cannot be
known is never called safe: a type change involving ``UNKNOWN`` is ``review`` (never ``safe``, and
never a block on a guess), and a column loss that cannot be confirmed is ``review`` too. One root
cause gives one finding: a removed or renamed column names the models and views that still read it
("will fail to build unless it changes too") instead of a TEXT → UNKNOWN finding on each of them;
a downstream column that only lost its type because its input did is not reported again; a cast
that changes a type is one type finding; and a file that could not be read is one UNPARSED finding,
not a list of guesses. Findings point where the change is: a dropped column at its ``ALTER ... DROP``
or, in a model, at the surviving column next to where it was.

dbt specifics: an enforced contract declaring a column the SQL no longer produces (or now produces
with an incompatible type) is said, since ``dbt build`` fails on it; an unpinned ``ref`` moving to a
new latest version and a query moved into ``select * from final`` are not new query logic; a column
a snapshot stops selecting stays in its table, so it is ``review``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from rules import catalog
from rules.checks import CHECKS
from rules.checks.context import DiffContext, Finding, Pair, ResultCache
from rules.checks.semantics import normalized_sql
from rules.model import Asset, Change, Config, Snapshot

__all__ = ["ResultCache", "diff_snapshots"]


def diff_snapshots(
    base: Snapshot,
    head: Snapshot,
    config: Config,
    *,
    changed_paths: Collection[str] | None = None,
    cache: ResultCache | None = None,
) -> list[Change]:
    """Every finding between ``base`` and ``head``, severities resolved, ignored ones dropped.

    ``changed_paths`` limits UNPARSED findings to files the PR touched (a file that was already
    unparsable before the PR is not news); None means "report head problems that base did not have".
    ``cache`` keeps the semantic comparison of each (before, after) query pair, the costliest step
    of the diff, so a warm ``tessera check`` compares nothing twice.
    """
    ctx = DiffContext(base, head, config, changed_paths, cache)
    changes: list[Change] = []
    for pair in _pairs(ctx):
        for check in CHECKS:
            for finding in check(pair, ctx):
                change = _resolve(finding, pair, ctx)
                if change is not None:
                    changes.append(change)
    changes.sort(key=lambda c: (catalog.severity_rank(c.severity), c.asset, c.rule, c.column or ""))
    flush = getattr(cache, "flush", None)
    if callable(flush):
        flush()  # a cache that writes to disk in batches (build.ParseCache) keeps what we added
    return changes


def _resolve(finding: Finding, pair: Pair, ctx: DiffContext) -> Change | None:
    """The finding as a Change with its severity, or None when the repository ignores its rule.

    The catalog gives the default for the mode and applies overrides; then the check's own
    certainty: ``escalate`` makes it breaking (unless overridden, or mode ``none``), ``floor``
    makes it at least, ``cap`` at most that severe.
    """
    rule = finding.rule
    mode = ctx.mode(*(finding.judged_by or (pair.head, pair.base)))
    level = catalog.severity(rule, mode, overrides=ctx.config.rules, on_unparsed=ctx.config.on_unparsed)
    if level is None:
        return None
    if finding.escalate and not ctx.overridden(rule) and mode != "none":
        level = "breaking"
    if finding.floor is not None and catalog.severity_rank(level) > catalog.severity_rank(finding.floor):
        level = finding.floor
    if finding.cap is not None and catalog.severity_rank(level) < catalog.severity_rank(finding.cap):
        level = finding.cap
    return Change(
        rule=rule.value, severity=level, asset=finding.asset, column=finding.column, path=finding.path,
        line=finding.line, message=finding.message, before=finding.before, after=finding.after,
    )


# --- pairing base and head assets ----------------------------------------------------------------


def _pairs(ctx: DiffContext) -> Iterable[Pair]:
    """Removed assets, renamed ones, the rest by name (or version), then the change as a whole."""
    base_assets = _live(ctx, ctx.base.assets)
    head_assets = _live(ctx, ctx.head.assets)
    kept, removed, renamed = _Matcher(ctx).match(base_assets, head_assets)
    for fqn in removed:
        yield Pair(fqn, base_assets[fqn], None)
    for old, new in renamed:
        yield Pair(old, base_assets[old], head_assets[new], renamed_to=new)
    for old, new in kept:
        # a model that became versioned is still read by its old name in the base graph
        if base_assets[old] != head_assets[new]:
            yield Pair(old, base_assets[old], head_assets[new])
    yield Pair("", None, None)


def _live(ctx: DiffContext, assets: Mapping[str, Asset]) -> dict[str, Asset]:
    """Enabled assets outside ``ignore:``; an asset ignored on either side (e.g. moved into a
    sandbox folder) is left out on both, so moving it is not a removal."""
    return {fqn: a for fqn, a in assets.items() if a.enabled and fqn not in ctx.ignored_fqns}


class _Matcher:
    """Pairs base and head assets of one diff run."""

    def __init__(self, ctx: DiffContext) -> None:
        self._dialect = ctx.dialect

    def match(
        self, base: dict[str, Asset], head: dict[str, Asset]
    ) -> tuple[list[tuple[str, str]], list[str], list[tuple[str, str]]]:
        """Pair base and head assets: same name, a version continuing an unversioned model, or a
        rename (recorded by the SQL, or the same definition under a new name)."""
        pairs = [(fqn, fqn) for fqn in base if fqn in head]
        removed = [fqn for fqn in base if fqn not in head]
        added = [fqn for fqn in head if fqn not in base]
        taken: set[str] = set()

        # an unversioned model that became versioned (or back): ref('x') still resolves to latest
        for fqn in list(removed):
            partner = self._version_partner(fqn, base[fqn], [head[a] for a in added if a not in taken])
            if partner is not None:
                pairs.append((fqn, partner))
                taken.add(partner)
                removed.remove(fqn)

        removed_set = set(removed)
        renamed = self._recorded_renames(head, added, taken, removed_set)
        renamed += self._renames_by_definition(base, head, added, taken, removed_set)
        for old, _ in renamed:
            removed_set.discard(old)
        return pairs, [fqn for fqn in removed if fqn in removed_set], renamed

    def _recorded_renames(
        self, head: dict[str, Asset], added: list[str], taken: set[str], removed: set[str]
    ) -> list[tuple[str, str]]:
        """Renames the SQL or YAML records (``renamed_from``); takes them out of ``removed``."""
        renamed: list[tuple[str, str]] = []
        for new in added:
            if new in taken:
                continue
            source = head[new].meta.get("renamed_from") if head[new].meta else None
            if not isinstance(source, str):
                continue
            old = self._resolve_rename_source(source, new, removed)
            if old is not None:
                renamed.append((old, new))
                taken.add(new)
                removed.discard(old)
        return renamed

    def _renames_by_definition(
        self, base: dict[str, Asset], head: dict[str, Asset], added: list[str], taken: set[str],
        removed: set[str],
    ) -> list[tuple[str, str]]:
        """A removed asset whose definition one added asset, and no other removed one, shares."""
        renamed: list[tuple[str, str]] = []
        for old in sorted(removed):
            dialect = self._dialect(base[old], None)
            candidates = [
                new for new in added
                if new not in taken and _same_definition(base[old], head[new], dialect)
            ]
            if len(candidates) == 1:
                others = [o for o in removed if o != old
                          and _same_definition(base[o], head[candidates[0]], dialect)]
                if not others:
                    renamed.append((old, candidates[0]))
                    taken.add(candidates[0])
        return renamed

    @staticmethod
    def _version_partner(fqn: str, asset: Asset, candidates: Iterable[Asset]) -> str | None:
        for cand in candidates:
            if cand.kind != asset.kind:
                continue
            if asset.version is None and cand.version is not None and cand.fqn.startswith(fqn + ".v"):
                latest = cand.latest_version
                if latest is None or str(latest) == _version_of(cand):
                    return cand.fqn
            if asset.version is not None and cand.version is None and fqn.startswith(cand.fqn + ".v"):
                latest = asset.latest_version
                if latest is None or str(latest) == _version_of(asset):
                    return cand.fqn
        return None

    @staticmethod
    def _resolve_rename_source(source: str, new: str, removed: set[str]) -> str | None:
        source = source.lower()
        if source in removed:
            return source
        prefix = new.rsplit(".", 1)[0] + "." if "." in new else ""
        if prefix and prefix + source.rsplit(".", 1)[-1] in removed:
            return prefix + source.rsplit(".", 1)[-1]
        return None


def _version_of(asset: Asset) -> str | None:
    return None if asset.version is None else str(asset.version)


def _same_definition(a: Asset, b: Asset, dialect: str | None) -> bool:
    """Whether two differently named assets are the same thing (a rename, not a drop and an add)."""
    if a.kind != b.kind:
        return False
    if a.sql is not None and b.sql is not None:
        if normalized_sql(a.sql, dialect) != normalized_sql(b.sql, dialect):
            return False
        return not (a.columns_known and b.columns_known) or _signature(a) == _signature(b)
    if a.sql is not None or b.sql is not None:
        return False
    # a table has only its columns to go by: one shared column (``id``) is no evidence of a rename
    return len(a.columns) >= 2 and _signature(a) == _signature(b)


def _signature(asset: Asset) -> tuple[tuple[str, str], ...]:
    return tuple((c.key, c.type) for c in asset.columns)
