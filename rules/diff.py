"""Diff two snapshots into findings: which rule fired where, and how much it matters here.

The diff only *finds* changes and names them by a catalog rule; severities come from
:func:`rules.catalog.severity` for the asset's compatibility mode (``meta.tessera.compatibility``,
else ``.tessera.yml``'s) and the repository's overrides. Renames are detected before removals, so a
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

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import sqlglot
from sqlglot import exp

from rules import catalog
from rules.lineage import LineageIndex
from rules.model import (
    NOT_PRODUCED,
    PRODUCED_EXTRA,
    PRODUCED_TYPE,
    PROPERTIES_AT,
    UNKNOWN,
    Asset,
    Change,
    Column,
    Config,
    Snapshot,
    column_key,
)
from rules.semantic import SemanticDiff, compare_queries, normalize_sql
from rules.sources import matches_any
from rules.types import compare_types, display_type

_ACCESS_RANK = {"private": 0, "protected": 1, "public": 2}
_RELATION_GONE = frozenset({"ephemeral"})
"""Materializations under which no relation exists in the warehouse any more."""
_ENFORCES_CONSTRAINTS = frozenset({"table", "incremental"})
"""Materializations on which dbt has the warehouse enforce a contract's constraints."""


class ResultCache(Protocol):
    """Where query comparisons are kept between runs (``build.ParseCache`` fits; its ``flush``,
    when it has one, is called once the diff is done)."""

    def get(self, key: str) -> Any | None: ...

    def put(self, key: str, value: Any) -> None: ...


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
    changes = _Differ(base, head, config, changed_paths, cache).run()
    flush = getattr(cache, "flush", None)
    if callable(flush):
        flush()  # a cache that writes to disk in batches (build.ParseCache) keeps what we added
    return changes


# --- plumbing ---------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _normalize_sql(sql: str, dialect: str | None) -> str:
    """``semantic.normalize_sql``: two queries equal after it differ only in form, never meaning.

    Cached: rename detection compares every removed asset with every added one."""
    try:
        return normalize_sql(sql, dialect or "")
    except Exception:  # noqa: BLE001 - bad SQL must not stop the diff; compare roughly instead
        return _rough_normalize(sql)


def _rough_normalize(sql: str) -> str:
    text = re.sub(r"--[^\n]*", " ", sql)
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return " ".join(text.lower().split())


_CLAUSES_OF_A_PLAIN_SELECT_STAR = (
    "joins", "where", "group", "having", "qualify", "order", "limit", "offset", "distinct",
    "laterals", "pivots", "windows", "sample",
)


def _unwrap_final_select_star(sql: str, dialect: str | None) -> str:
    """``with ..., final as (<q>) select * from final`` → ``with ... <q>``: the same query.

    dbt style guides end models with ``select * from final``; moving a query into such a CTE
    changes nothing a reader sees, so both sides are compared in this form. Returns ``sql``
    unchanged when it is not of that shape (or cannot be parsed)."""
    if "*" not in sql:
        return sql
    try:
        tree = sqlglot.parse_one(sql, read=dialect or None)
    except Exception:  # noqa: BLE001 - the comparison reports unreadable SQL itself
        return sql
    changed = False
    for _ in range(8):  # a chain of select * from final CTEs
        with_ = tree.args.get("with_") if isinstance(tree, exp.Select) else None
        source = tree.args.get("from_") if with_ is not None else None
        table = source.this if isinstance(source, exp.From) else None
        if (
            with_ is None or with_.args.get("recursive")
            or len(tree.expressions) != 1 or not isinstance(tree.expressions[0], exp.Star)
            or any(tree.args.get(k) for k in _CLAUSES_OF_A_PLAIN_SELECT_STAR)
            or not isinstance(table, exp.Table) or table.db or table.catalog
        ):
            break
        name = table.name.lower()
        target = next((c for c in with_.expressions if c.alias_or_name.lower() == name), None)
        if target is None or not isinstance(target.this, exp.Select) or target.this.args.get("with_"):
            break
        rest = [c for c in with_.expressions if c is not target]
        if any(t.name.lower() == name and not t.db for c in rest for t in c.find_all(exp.Table)):
            break  # another CTE reads it too: it must stay a CTE
        body = target.this.copy()
        if rest:
            body.set("with_", exp.With(expressions=[c.copy() for c in rest]))
        tree, changed = body, True
    return tree.sql(dialect=dialect or None) if changed else sql


@lru_cache(maxsize=1024)
def _compare_queries(before: str, after: str, dialect: str | None) -> tuple[SemanticDiff, ...] | None:
    """``semantic.compare_queries``, or None when it fails (then per-column expressions decide).

    Cached: the service re-analyses a PR on every push, mostly with the same model pairs, and
    a comparison costs tens of milliseconds."""
    try:
        before, after = _unwrap_final_select_star(before, dialect), _unwrap_final_select_star(after, dialect)
        return tuple(compare_queries(before, after, dialect=dialect or ""))
    except Exception:  # noqa: BLE001 - a comparison failure must not stop the diff
        return None


@dataclass(frozen=True)
class _Constraint:
    """A constraint in one comparable form, whether declared on the column or the table."""

    kind: str
    columns: tuple[str, ...]
    detail: str = ""

    def text(self) -> str:
        cols = ",".join(self.columns)
        return f"{self.kind}({cols}){self.detail}" if cols else f"{self.kind}{self.detail}"


_TABLE_CONSTRAINT = re.compile(r"^\s*([a-z_]+)\s*\(([^)]*)\)\s*(.*)$", re.S)


def _constraints(asset: Asset) -> dict[_Constraint, str | None]:
    """Every key/check/accepted-values constraint of ``asset`` → the column it is about (if one)."""
    out: dict[_Constraint, str | None] = {}
    for col in asset.columns:
        for raw in col.constraints:
            kind, _, detail = raw.partition(":")
            kind = kind.strip().lower()
            if kind in ("not_null", "null", ""):
                continue  # nullability has its own rules
            if kind == "accepted_values":
                continue  # compared as a set, see _accepted_values
            norm_detail = ("->" + _squash(detail)) if kind == "foreign_key" and detail else (
                (":" + _squash(detail)) if detail else "")
            out[_Constraint(kind, (col.key,), norm_detail)] = col.name
    for raw in asset.constraints:
        match = _TABLE_CONSTRAINT.match(raw.strip().lower())
        if match is None:
            out[_Constraint(_squash(raw), ())] = None
            continue
        kind, cols_text, rest = match.groups()
        if kind == "check":
            out[_Constraint("check", (), ":" + _squash(cols_text + rest))] = None
            continue
        cols = tuple(column_key(c) for c in cols_text.split(",") if c.strip())
        detail = _squash(rest)
        if detail.startswith("->"):
            pass
        elif detail.startswith("references"):
            detail = "->" + detail[len("references"):]
        out[_Constraint(kind, cols, detail)] = cols[0] if len(cols) == 1 else None
    return out


def _squash(text: str) -> str:
    return "".join(text.lower().split())


def _accepted_values(col: Column) -> frozenset[str] | None:
    for raw in col.constraints:
        kind, _, detail = raw.partition(":")
        if kind.strip().lower() == "accepted_values":
            return frozenset(v.strip() for v in detail.split(",") if v.strip())
    return None


def _version_of(asset: Asset) -> str | None:
    return None if asset.version is None else str(asset.version)


def _same_definition(a: Asset, b: Asset, dialect: str | None) -> bool:
    """Whether two differently named assets are the same thing (a rename, not a drop and an add)."""
    if a.kind != b.kind:
        return False
    if a.sql is not None and b.sql is not None:
        if _normalize_sql(a.sql, dialect) != _normalize_sql(b.sql, dialect):
            return False
        return not (a.columns_known and b.columns_known) or _signature(a) == _signature(b)
    if a.sql is not None or b.sql is not None:
        return False
    # a table has only its columns to go by: one shared column (``id``) is no evidence of a rename
    return len(a.columns) >= 2 and _signature(a) == _signature(b)


def _signature(asset: Asset) -> tuple[tuple[str, str], ...]:
    return tuple((c.key, c.type) for c in asset.columns)


# --- the differ -------------------------------------------------------------------------------


class _Differ:
    """One diff run: holds the inputs and the findings collected so far."""

    def __init__(
        self, base: Snapshot, head: Snapshot, config: Config, changed_paths: Collection[str] | None,
        cache: ResultCache | None = None,
    ) -> None:
        self.cache = cache
        self.base = base
        self.head = head
        self.config = config
        self.changed_paths = None if changed_paths is None else set(changed_paths)
        self.changes: list[Change] = []
        self._problem_paths = {p.path for p in head.problems}
        self._lineages: dict[str, LineageIndex] = {}
        self._version_relations: dict[str, str] | None = None
        self._retyped: set[tuple[str, str]] = set()
        self._grain_said: set[str] = set()
        self._ignored_fqns = {
            fqn for snapshot in (base, head) for fqn, a in snapshot.assets.items()
            if self._ignored_path(a.path)
        }

    # -- entry

    def run(self) -> list[Change]:
        base_assets = self._live(self.base.assets)
        head_assets = self._live(self.head.assets)
        pairs, removed, renamed = self._match(base_assets, head_assets)
        for fqn in removed:
            self._removed_asset(base_assets[fqn], head_assets_all=self.head.assets)
        for old, new in renamed:
            b, h = base_assets[old], head_assets[new]
            self._emit(
                "ASSET_RENAMED", b, h, asset=old, path=h.path, line=h.line,
                message=f"`{old}` is now `{new}`: readers of `{old}` break.", before=old, after=new,
            )
            self._diff_pair(b, h, report_as=old, renamed=True)
        for old, new in pairs:
            # a model that became versioned is still read by its old name in the base graph
            self._diff_pair(base_assets[old], head_assets[new], report_as=old)
        self._unparsed()
        self.changes.sort(
            key=lambda c: (catalog.severity_rank(c.severity), c.asset, c.rule, c.column or "")
        )
        return self.changes

    def _live(self, assets: Mapping[str, Asset]) -> dict[str, Asset]:
        """Enabled assets outside ``ignore:``; an asset ignored on either side (e.g. moved into a
        sandbox folder) is left out on both, so moving it is not a removal."""
        return {
            fqn: a for fqn, a in assets.items() if a.enabled and fqn not in self._ignored_fqns
        }

    def _ignored_path(self, path: str | None) -> bool:
        return bool(path and self.config.ignore and matches_any(path, self.config.ignore))

    # -- asset matching

    def _match(
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

        renamed: list[tuple[str, str]] = []
        removed_set = set(removed)
        for new in added:
            if new in taken:
                continue
            source = head[new].meta.get("renamed_from") if head[new].meta else None
            if not isinstance(source, str):
                continue
            old = self._resolve_rename_source(source, new, removed_set)
            if old is not None:
                renamed.append((old, new))
                taken.add(new)
                removed_set.discard(old)

        for old in sorted(removed_set):
            dialect = self._dialect(base[old], None)
            candidates = [
                new for new in added
                if new not in taken and _same_definition(base[old], head[new], dialect)
            ]
            if len(candidates) == 1:
                others = [o for o in removed_set if o != old
                          and _same_definition(base[o], head[candidates[0]], dialect)]
                if not others:
                    renamed.append((old, candidates[0]))
                    taken.add(candidates[0])
        for old, _ in renamed:
            removed_set.discard(old)
        return pairs, [fqn for fqn in removed if fqn in removed_set], renamed

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

    # -- severity and emitting

    def _mode(self, *assets: Asset | None) -> str:
        for asset in assets:
            if asset is not None and asset.compatibility in ("backward", "forward", "full", "none"):
                return asset.compatibility
        return self.config.compatibility

    def _dialect(self, *assets: Asset | None) -> str | None:
        for asset in assets:
            if asset is not None and asset.dialect:
                return asset.dialect
        return self.config.sql.dialect or self.config.dbt.dialect

    def _emit(
        self,
        rule: str,
        b: Asset | None,
        h: Asset | None,
        *,
        asset: str,
        column: str | None = None,
        path: str | None = None,
        line: int | None = None,
        message: str,
        before: str | None = None,
        after: str | None = None,
        cap: str | None = None,
        floor: str | None = None,
        escalate: bool = False,
    ) -> None:
        """Record a finding unless the repository ignores its rule.

        ``cap`` limits how severe an uncertain finding may be (``review`` when we could not confirm
        it); ``floor`` makes an uncertain one at least that severe (UNKNOWN types);
        ``escalate`` turns the default into ``breaking`` (a relation disappearing) unless the
        repository overrides the rule or the mode is ``none``.
        """
        mode = self._mode(h, b)
        level = catalog.severity(
            rule, mode, overrides=self.config.rules, on_unparsed=self.config.on_unparsed
        )
        if level is None:
            return
        if escalate and rule not in self.config.rules and mode != "none":
            level = "breaking"
        if floor is not None and catalog.severity_rank(level) > catalog.severity_rank(floor):
            level = floor
        if cap is not None and catalog.severity_rank(level) < catalog.severity_rank(cap):
            level = cap
        self.changes.append(
            Change(rule=rule, severity=level, asset=asset, column=column, path=path, line=line,
                   message=message, before=before, after=after)
        )

    # -- whole assets

    def _removed_asset(self, b: Asset, head_assets_all: Mapping[str, Asset]) -> None:
        h = head_assets_all.get(b.fqn)
        if h is not None and not h.enabled:
            how = "was disabled (enabled: false)"
            path, line = h.path, h.line
        else:
            how = f"was removed{' (' + b.path + ')' if b.path else ''}"
            path, line = b.path, b.line
        readers = sorted(
            a.fqn for a in self.head.assets.values()
            if b.fqn in a.depends_on and a.enabled and a.fqn != b.fqn and a.fqn not in self._ignored_fqns
        )
        if readers:
            fail = "fail to build" if b.kind == "model" else "fail"
            said = (f" {_names(readers)} still {'reads' if len(readers) == 1 else 'read'} it and will "
                    f"{fail} unless {'it changes' if len(readers) == 1 else 'they change'} too.")
        else:
            said = ""
        self._emit(
            "ASSET_REMOVED", b, h, asset=b.fqn, path=path, line=line,
            message=f"{b.kind.capitalize()} `{b.fqn}` {how}: everything reading it breaks.{said}",
            before=b.fqn, after=None,
        )

    def _diff_pair(self, b: Asset, h: Asset, *, report_as: str, renamed: bool = False) -> None:
        if b == h:
            return
        fqn = report_as
        if not renamed:
            self._relation_moved(b, h, fqn)
        self._access(b, h, fqn)
        self._contract(b, h, fqn)
        self._materialization(b, h, fqn)
        self._version(b, h, fqn)
        self._unique_key(b, h, fqn)
        col_renames, gone = self._columns(b, h, fqn)
        self._constraints(b, h, fqn, col_renames, gone)
        self._query(b, h, fqn, col_renames, gone, renamed=renamed)
        self._metadata(b, h, fqn)

    def _properties_at(self, h: Asset) -> dict[str, Any]:
        """``path``/``line`` for a finding about YAML properties: the model's YAML entry when the
        loader knows it (and it changed, or nothing says what did), else the SQL file."""
        at = (h.meta or {}).get(PROPERTIES_AT)
        if isinstance(at, (list, tuple)) and len(at) == 2 and isinstance(at[0], str):
            if self.changed_paths is None or at[0] in self.changed_paths or h.path not in self.changed_paths:
                return {"path": at[0], "line": at[1] if isinstance(at[1], int) else None}
        return {"path": h.path, "line": h.line}

    def _relation_moved(self, b: Asset, h: Asset, fqn: str) -> None:
        """A dbt ``alias`` or ``schema`` change moves the warehouse relation: refs follow it, but
        dashboards and outside SQL reading the old name break. Breaking for public or exposed
        models, a review otherwise."""
        if b.kind not in ("model", "snapshot") or h.kind != b.kind or b.version != h.version:
            return
        before, after = _plain_relation(b.relation), _plain_relation(h.relation)
        if not before or not after or before == after:
            return
        exposed = (h.access or "").lower() == "public" or any(
            fqn in e.depends_on or h.fqn in e.depends_on for e in self.head.exposures.values()
        ) or any(r.asset.lower() in (fqn, h.fqn) for r in self.config.consumers)
        self._emit(
            "ASSET_RENAMED", b, h, asset=fqn, path=h.path, line=h.line,
            message=f"The warehouse relation of `{fqn}` moves: `{before}` → `{after}` (alias/schema "
            "config). dbt refs follow it, but dashboards and SQL outside dbt reading "
            f"`{before}` break.",
            before=before, after=after, cap=None if exposed else "review",
        )

    def _access(self, b: Asset, h: Asset, fqn: str) -> None:
        if b.kind != "model" and h.kind != "model":
            return
        before = (b.access or "protected").lower()
        after = (h.access or "protected").lower()
        if _ACCESS_RANK.get(after, 1) < _ACCESS_RANK.get(before, 1):
            self._emit(
                "ACCESS_NARROWED", b, h, asset=fqn, **self._properties_at(h),
                message=f"Access of `{fqn}` narrowed from {before} to {after}: refs from outside "
                f"{'its group' if after == 'private' else 'its project'} will fail.",
                before=before, after=after,
            )

    def _contract(self, b: Asset, h: Asset, fqn: str) -> None:
        if b.contract_enforced and not h.contract_enforced:
            self._emit(
                "CONTRACT_UNENFORCED", b, h, asset=fqn, **self._properties_at(h),
                message=f"The contract of `{fqn}` is no longer enforced: its declared columns and "
                "types are not guaranteed any more.",
                before="enforced", after="not enforced",
            )

    def _materialization(self, b: Asset, h: Asset, fqn: str) -> None:
        before, after = b.materialized, h.materialized
        if before is None or after is None or before.lower() == after.lower():
            return
        gone = after.lower() in _RELATION_GONE and before.lower() not in _RELATION_GONE
        message = f"`{fqn}` is now materialized as {after} (was {before})"
        if gone:
            message += ": no relation will exist in the warehouse, so direct readers break."
        elif (
            before.lower() in _ENFORCES_CONSTRAINTS and after.lower() not in _ENFORCES_CONSTRAINTS
            and (b.constraints or any(c.constraints for c in b.columns))
        ):
            message += ": its constraints are no longer enforced by the warehouse."
        else:
            message += "."
        self._emit(
            "MATERIALIZATION_CHANGED", b, h, asset=fqn, path=h.path, line=h.line,
            message=message, before=before, after=after, escalate=gone,
        )

    def _version(self, b: Asset, h: Asset, fqn: str) -> None:
        parts = []
        if str(b.latest_version or "") != str(h.latest_version or "") and self._was_latest(b):
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
        self._emit(
            "VERSION_DEPRECATED", b, h, asset=fqn, **self._properties_at(h),
            message="; ".join(said) + ".",
            before=", ".join(f"{n}={o}" for n, o, _ in parts),
            after=", ".join(f"{n}={v}" for n, _, v in parts),
        )

    @staticmethod
    def _was_latest(b: Asset) -> bool:
        """A new latest_version concerns the version readers got by default until now, not the rest."""
        return b.version is None or b.latest_version is None or str(b.version) == str(b.latest_version)

    def _unique_key(self, b: Asset, h: Asset, fqn: str) -> None:
        before, after = _key_columns(b.unique_key), _key_columns(h.unique_key)
        if before and before != after:
            self._grain_said.add(fqn)
            self._emit(
                "GRAIN_CHANGED", b, h, asset=fqn, path=h.path, line=h.line,
                message=f"The unique key of `{fqn}` changed from ({', '.join(before)}) to "
                f"({', '.join(after) or 'none'}): one row now means something else.",
                before=", ".join(before), after=", ".join(after) or None,
            )

    # -- columns

    def _columns(self, b: Asset, h: Asset, fqn: str) -> tuple[dict[str, str], set[str]]:
        """Column findings; returns the renames (old key → new key) and the removed keys."""
        bcols = {c.key: c for c in b.columns}
        hcols = {c.key: c for c in h.columns}
        removed = [k for k in bcols if k not in hcols]
        added = [k for k in hcols if k not in bcols]
        renames = self._column_renames(bcols, hcols, removed, added)
        dialect = self._dialect(h, b)

        for old, new in renames.items():
            bc, hc = bcols[old], hcols[new]
            self._emit(
                "COLUMN_RENAMED", b, h, asset=fqn, column=bc.name, path=h.path, line=hc.line or h.line,
                message=f"Column `{bc.name}` of `{fqn}` is now called `{hc.name}`: readers of "
                f"`{bc.name}` break." + self._still_read(h, bc),
                before=bc.name, after=hc.name,
            )
        gone = {k for k in removed if k not in renames}
        for key, hc in hcols.items():
            bc = bcols.get(key)
            if bc is not None and hc.meta.get(NOT_PRODUCED) and not bc.meta.get(NOT_PRODUCED):
                gone.add(key)
                self._contract_gap(b, h, fqn, bc)
        for key in removed:
            if key in renames:
                continue
            bc = bcols[key]
            uncertain = not h.columns_known
            still_read = ""
            if uncertain and h.path in self._problem_paths:
                continue  # the file could not be analysed: UNPARSED says so, once
            if uncertain and _same_query(b, h):
                continue  # same query, columns just not worked out this time: nothing was removed
            if uncertain:
                message = (f"Column `{bc.name}` may have been removed from `{fqn}`: its columns could "
                           "not be worked out, so please check.")
            elif h.kind == "snapshot":
                uncertain = True  # dbt never drops a snapshot table's columns: nulls, not errors
                message = (f"Column `{bc.name}` is no longer selected by snapshot `{fqn}`: dbt keeps it in "
                           "the snapshot table, but new rows get null in it, so its readers see gaps."
                           + self._still_read(h, bc))
            elif h.kind == "source":
                uncertain = True  # the source's YAML documents a table this repository does not build
                base_readers = sorted({
                    e.downstream for e in self.base.edges
                    if e.upstream == b.fqn and e.upstream_column is not None
                    and column_key(e.upstream_column) == bc.key and e.downstream in self.head.assets
                })
                message = (f"Column `{bc.name}` is no longer declared on source `{fqn}`: if the table "
                           "really lost it, models selecting it will fail"
                           + (f" ({_names(base_readers)} read it until now)." if base_readers else "."))
            else:
                still_read = self._still_read(h, bc)
                gone_upstream = self._gone_upstream(b.fqn, bc.key) if _same_query(b, h) else []
                message = (
                    f"Column `{bc.name}` is gone from `{fqn}` because {_names(gone_upstream)} "
                    f"no longer {'has' if len(gone_upstream) == 1 else 'have'} it "
                    f"(`{fqn}` itself did not change)."
                    if gone_upstream else f"Column `{bc.name}` was removed from `{fqn}`."
                ) + still_read
            path, line = self._removed_at(b, h, bc)
            self._emit(
                "COLUMN_REMOVED", b, h, asset=fqn, column=bc.name, path=path, line=line,
                message=message, before=self._column_text(bc), after=None,
                cap="review" if uncertain else None,
                # a reader that fails to build is never safe, whatever the mode protects
                floor="review" if still_read and "COLUMN_REMOVED" not in self.config.rules else None,
            )
        if b.columns_known:
            new_keys = set(renames.values())
            for key in added:
                if key in new_keys:
                    continue
                hc = hcols[key]
                required = (
                    h.kind == "table" and (h.materialized in (None, "table"))
                    and hc.nullable is False and hc.default is None and not _self_filling(hc)
                )
                if required:
                    self._emit(
                        "COLUMN_ADDED_REQUIRED", b, h, asset=fqn, column=hc.name, path=h.path,
                        line=hc.line or h.line,
                        message=f"Column `{hc.name}` was added to table `{fqn}` as NOT NULL without "
                        "a default: adding it fails on a table that has rows, and writers that do not "
                        "name it are refused.",
                        before=None, after=self._column_text(hc),
                        # the migration itself fails on a table with rows: worth a look in any mode
                        floor=None if "COLUMN_ADDED_REQUIRED" in self.config.rules else "review",
                    )
                elif hc.meta.get(NOT_PRODUCED):
                    self._emit(
                        "COLUMN_ADDED", b, h, asset=fqn, column=hc.name, path=h.path, line=h.line,
                        message=f"Column `{hc.name}` was added to the enforced contract of `{fqn}`, "
                        "but its SQL does not produce it: `dbt build` fails on this contract.",
                        before=None, after=self._column_text(hc), floor="review",
                    )
                else:
                    self._emit(
                        "COLUMN_ADDED", b, h, asset=fqn, column=hc.name, path=h.path,
                        line=hc.line or h.line,
                        message=f"Column `{hc.name}` was added to `{fqn}`.",
                        before=None, after=self._column_text(hc),
                    )
        for key, bc in bcols.items():
            hc = hcols.get(key)
            if hc is not None:
                self._recreated(b, h, fqn, bc, hc)
                self._column_pair(b, h, fqn, bc, hc, dialect)
        self._reordered(b, h, fqn, bcols, hcols, renames)
        self._undeclared(b, h, fqn)
        return renames, gone

    def _undeclared(self, b: Asset, h: Asset, fqn: str) -> None:
        """The SQL of an enforced contract now produces columns its YAML does not declare: dbt
        refuses the build ("contract mismatch") until the contract lists them."""
        before = {column_key(n) for n in (b.meta or {}).get(PRODUCED_EXTRA) or ()}
        for name in (h.meta or {}).get(PRODUCED_EXTRA) or ():
            if column_key(name) in before:
                continue
            self._emit(
                "COLUMN_ADDED", b, h, asset=fqn, column=name, path=h.path, line=h.line,
                message=f"The SQL of `{fqn}` produces `{name}`, which its enforced contract does not "
                "declare: `dbt build` fails with a contract mismatch until the YAML lists it (or the "
                "SQL drops it).",
                before=None, after=name, floor="review",
            )

    def _recreated(self, b: Asset, h: Asset, fqn: str, bc: Column, hc: Column) -> None:
        """A column this change drops and adds again (the "change its type" shortcut): the name
        survives, every existing row's value does not."""
        where = _dropped_at(h, hc.key)
        if where is None or where == _dropped_at(b, bc.key):
            return
        path, line = where
        if self.changed_paths is not None and path not in self.changed_paths:
            return
        self._emit(
            "COLUMN_REMOVED", b, h, asset=fqn, column=hc.name, path=path, line=line,
            message=f"Column `{hc.name}` of `{fqn}` is dropped and added again: every existing row "
            f"loses its value (null{'' if hc.default is None else ' or the default'} from now on), "
            "though the name survives." + self._still_read(h, bc),
            before=self._column_text(bc), after=self._column_text(hc),
        )

    def _contract_gap(self, b: Asset, h: Asset, fqn: str, bc: Column) -> None:
        """The query stopped producing a column the enforced contract still declares."""
        readers = self._reader_phrase(h, bc)
        message = (
            f"The SQL of `{fqn}` no longer produces `{bc.name}`, which its enforced contract "
            "declares: `dbt build` fails on this contract."
        )
        if readers:
            message += f" Dropping `{bc.name}` from the contract too would break {readers}."
        path, line = self._removed_at(b, h, bc)
        self._emit(
            "COLUMN_REMOVED", b, h, asset=fqn, column=bc.name, path=path, line=line,
            message=message, before=self._column_text(bc), after=None,
        )

    def _lineage(self, side: str) -> LineageIndex:
        """The lineage of the base or head snapshot, built on first use."""
        index = self._lineages.get(side)
        if index is None:
            index = self._lineages[side] = LineageIndex.of(self.head if side == "head" else self.base)
        return index

    def _readers(self, fqn: str, column: str) -> dict[str, list[str]]:
        """Head models and views still reading ``fqn.column``, each with how (select, join...)."""
        found: dict[str, list[str]] = {}
        for edge in self._lineage("head").column_readers(fqn, column):
            if edge.downstream == edge.upstream:
                continue
            usages = found.setdefault(edge.downstream, [])
            word = _USAGE_WORDS.get(edge.usage, edge.usage)
            if word not in usages:
                usages.append(word)
        return {
            reader: usages for reader, usages in sorted(found.items())
            if reader in self.head.assets and self.head.assets[reader].enabled
            and reader not in self._ignored_fqns
        }

    def _reader_phrase(self, h: Asset, bc: Column) -> str:
        """``model `x`, which reads it (select, group by)`` / ```x` and `y`, which read it`` or ""."""
        readers = self._readers(h.fqn, bc.key)
        if not readers:
            return ""
        if len(readers) == 1:
            reader, usages = next(iter(readers.items()))
            return f"{self.head.assets[reader].kind} `{reader}`, which reads it ({', '.join(usages)})"
        return f"{_names(list(readers))}, which read it"

    def _still_read(self, h: Asset, bc: Column) -> str:
        """`` Model `x` still reads it (select, group by) and will fail ...`` or "" when nothing does."""
        readers = self._readers(h.fqn, bc.key)
        if not readers:
            return ""
        fail = "fail to build" if all(self.head.assets[r].kind == "model" for r in readers) else "fail"
        if len(readers) == 1:
            reader, usages = next(iter(readers.items()))
            kind = self.head.assets[reader].kind
            said = (f" {kind.capitalize()} `{reader}` still reads it ({', '.join(usages)}) "
                    f"and will {fail} unless it changes too.")
        else:
            said = f" {_names(list(readers))} still read it and will {fail} unless they change too."
        views = [r for r in readers if self.head.assets[r].kind == "view"]
        engine = {"postgres": "PostgreSQL", "redshift": "Redshift (unless the view is late-binding)"}.get(
            (h.dialect or "").lower())
        if h.kind == "table" and views and engine:
            said += (f" {engine} refuses to drop a column a view depends on; with CASCADE the "
                     f"{'view is' if len(views) == 1 else 'views are'} dropped too.")
        return said

    def _removed_at(self, b: Asset, h: Asset, bc: Column) -> tuple[str | None, int | None]:
        """Where a removal is best shown in head: the DROP that removed it, else the line of the
        nearest surviving column in the same file (where the removed one used to be)."""
        where = _dropped_at(h, bc.key)
        if where is not None:
            return where
        if b.path == h.path:
            order = sorted(b.columns, key=lambda c: c.position)
            index = next((i for i, c in enumerate(order) if c.key == bc.key), 0)
            for neighbour in (*reversed(order[:index]), *order[index + 1:]):
                hc = h.column(neighbour.name)
                if hc is not None and hc.line and not hc.meta.get(NOT_PRODUCED):
                    return h.path, hc.line
        return h.path, h.line

    def _head_inputs(self, fqn: str, column: str) -> list[tuple[str, str]]:
        """(upstream fqn, column) pairs feeding ``fqn.column`` in head, from head's lineage."""
        return [(e.upstream, e.upstream_column or "") for e in self._lineage("head").inputs(fqn, column)]

    def _lost_upstream(self, fqn: str, column: str) -> bool:
        """Whether an input of ``fqn.column`` had a known type in base and lost it in head."""
        for upstream, upstream_column in self._head_inputs(fqn, column):
            before = self.base.assets.get(upstream)
            after = self.head.assets.get(upstream)
            bc = before.column(upstream_column) if before is not None else None
            hc = after.column(upstream_column) if after is not None else None
            if bc is not None and hc is not None and bc.type != UNKNOWN and hc.type == UNKNOWN:
                return True
        return False

    def _gone_upstream(self, fqn: str, column: str) -> list[str]:
        """Base inputs of ``fqn.column`` whose feeding column head no longer has (their fqns)."""
        out = []
        for edge in self._lineage("base").inputs(fqn, column):
            parent = self.head.assets.get(edge.upstream)
            if parent is None or (parent.columns_known and parent.column(edge.upstream_column or "") is None):
                out.append(edge.upstream)
        return sorted(set(out))

    def _removed_in_base(self, qualified: str) -> bool:
        """Whether ``asset.column`` existed in base (so this diff reports its removal)."""
        fqn, _, column = qualified.rpartition(".")
        asset = self.base.assets.get(fqn)
        return asset is not None and asset.column(column) is not None

    def _missing_inputs(self, fqn: str, column: str) -> list[str]:
        """Upstream columns feeding ``fqn.column`` in head that head no longer has (``a.b``)."""
        missing = []
        for upstream, upstream_column in self._head_inputs(fqn, column):
            parent = self.head.assets.get(upstream)
            if parent is not None and parent.columns_known and parent.column(upstream_column) is None:
                missing.append(f"{upstream}.{upstream_column}")
        return sorted(set(missing))

    @staticmethod
    def _column_renames(
        bcols: Mapping[str, Column], hcols: Mapping[str, Column], removed: list[str], added: list[str]
    ) -> dict[str, str]:
        """Renames recorded by the SQL (``renamed_from``), then same expression and type, new name."""
        renames: dict[str, str] = {}
        removed_left = set(removed)
        for new in added:
            source = hcols[new].meta.get("renamed_from") if hcols[new].meta else None
            if isinstance(source, str) and column_key(source) in removed_left:
                renames[column_key(source)] = new
                removed_left.discard(column_key(source))
        added_left = [k for k in added if k not in renames.values()]

        def same(bc: Column, hc: Column) -> bool:
            return (
                bc.expression is not None and hc.expression is not None
                and bc.expression == hc.expression and bc.type == hc.type
            )

        for old in sorted(removed_left, key=lambda k: bcols[k].position):
            matches = [new for new in added_left if same(bcols[old], hcols[new])]
            if len(matches) != 1:
                continue
            rivals = [o for o in removed_left if o != old and same(bcols[o], hcols[matches[0]])]
            if rivals:
                continue
            renames[old] = matches[0]
            added_left.remove(matches[0])
        return renames

    def _column_pair(
        self, b: Asset, h: Asset, fqn: str, bc: Column, hc: Column, dialect: str | None
    ) -> None:
        line = hc.line or h.line
        self._contract_type(b, h, fqn, bc, hc, dialect, line)
        if bc.type != hc.type:
            self._type_change(b, h, fqn, bc, hc, dialect, line)
        if bc.nullable is False and hc.nullable is not False:
            self._emit(
                "COLUMN_NULLABILITY_LOOSENED", b, h, asset=fqn, column=hc.name, path=h.path, line=line,
                message=f"`{hc.name}` in `{fqn}` is no longer NOT NULL: readers may now see nulls.",
                before="not null", after="nullable",
            )
        elif bc.nullable is not False and hc.nullable is False:
            self._emit(
                "COLUMN_NULLABILITY_TIGHTENED", b, h, asset=fqn, column=hc.name, path=h.path, line=line,
                message=f"`{hc.name}` in `{fqn}` is now NOT NULL: existing nulls and writers sending "
                "them will fail.",
                before="nullable", after="not null",
            )
        before_values, after_values = _accepted_values(bc), _accepted_values(hc)
        if before_values is not None and (after_values is None or not after_values <= before_values):
            extra = sorted(after_values - before_values) if after_values is not None else []
            self._emit(
                "CONSTRAINT_REMOVED", b, h, asset=fqn, column=hc.name, path=h.path, line=line,
                message=(
                    f"`{hc.name}` in `{fqn}` accepts new values: {', '.join(extra)}. Readers that "
                    "map or filter its values (CASE, dashboards' filters) may want to handle them."
                    if after_values is not None else
                    f"The accepted values of `{hc.name}` in `{fqn}` are no longer checked."
                ),
                before=",".join(sorted(before_values)),
                after=None if after_values is None else ",".join(sorted(after_values)),
                # more accepted values is a widening: worth a look, not an ack (unless configured)
                cap="review" if after_values is not None and "CONSTRAINT_REMOVED" not in self.config.rules else None,
            )
        changed_meta = [
            name for name, old, new in (
                ("description", bc.description, hc.description),
                ("tags", tuple(sorted(bc.tags)), tuple(sorted(hc.tags))),
                ("meta", _plain_meta(bc.meta), _plain_meta(hc.meta)),
            ) if old != new
        ]
        if changed_meta:
            self._emit(
                "METADATA_CHANGED", b, h, asset=fqn, column=hc.name, path=h.path, line=line,
                message=f"The {' and '.join(changed_meta)} of `{hc.name}` in `{fqn}` changed.",
                before=bc.description or None if "description" in changed_meta else None,
                after=hc.description or None if "description" in changed_meta else None,
            )

    def _contract_type(
        self, b: Asset, h: Asset, fqn: str, bc: Column, hc: Column, dialect: str | None, line: int | None
    ) -> None:
        """The query now produces a type the enforced contract does not declare: dbt fails the build.

        Only an incompatible type (``compare_types`` says ``changed``) is said, and only when new:
        inference is close but not exact, and a widening may be what the warehouse casts anyway."""
        produced = hc.meta.get(PRODUCED_TYPE)
        if not isinstance(produced, str) or not h.contract_enforced:
            return
        if compare_types(hc.type, produced, dialect) != "changed":
            return
        was = bc.meta.get(PRODUCED_TYPE)
        if isinstance(was, str) and compare_types(bc.type, was, dialect) == "changed":
            return  # already so before this change
        self._emit(
            "COLUMN_TYPE_CHANGED", b, h, asset=fqn, column=hc.name, path=h.path, line=line,
            message=f"The SQL of `{fqn}` now produces `{hc.name}` as {display_type(produced, dialect)}, "
            f"but its enforced contract declares {display_type(hc.type, dialect)}: `dbt build` fails "
            "on this contract.",
            before=display_type(hc.type, dialect), after=display_type(produced, dialect), cap="review",
        )

    def _type_change(
        self, b: Asset, h: Asset, fqn: str, bc: Column, hc: Column, dialect: str | None, line: int | None
    ) -> None:
        verdict = compare_types(bc.type, hc.type, dialect)
        rule = {
            "widened": "COLUMN_TYPE_WIDENED",
            "narrowed": "COLUMN_TYPE_NARROWED",
            "changed": "COLUMN_TYPE_CHANGED",
            "unknown": "COLUMN_TYPE_CHANGED",
        }.get(verdict)
        if rule is None:
            return
        # a type declared on one side only (YAML data_type added or dropped) is compared with an
        # inferred one: inference is close but not exact, so that is worth a look, never a block
        guessed = bc.declared_type != hc.declared_type
        uncertain = verdict == "unknown"
        shown_b, shown_h = display_type(bc.type, dialect), display_type(hc.type, dialect)
        missing = self._missing_inputs(h.fqn, hc.key) if hc.type == UNKNOWN else []
        if uncertain and missing and all(self._removed_in_base(m) for m in missing):
            return  # the input's COLUMN_REMOVED names this model as a reader that will fail
        if uncertain and missing:
            message = (
                f"`{hc.name}` in `{fqn}` reads {', '.join(f'`{m}`' for m in missing)}, which no "
                f"longer exists: `{fqn}` will fail to build unless it changes too."
            )
        elif uncertain and hc.type == UNKNOWN and self._lost_upstream(h.fqn, hc.key):
            return  # an input lost its type first and has its own finding: one cause, one finding
        elif uncertain and _same_query(b, h) and not (bc.declared_type or hc.declared_type):
            return  # same query: the type was only inferred on one side; an input's change says why
        elif uncertain:
            message = (
                f"The type of `{hc.name}` in `{fqn}` can no longer be worked out (was {shown_b})."
                if hc.type == UNKNOWN else
                f"The type of `{hc.name}` in `{fqn}` is now known as {shown_h} (was not inferred): "
                "please check it did not change."
            )
        elif guessed:
            message = (
                f"`{hc.name}` in `{fqn}` is {'declared' if hc.declared_type else 'inferred'} as "
                f"{shown_h} now, and was {'declared' if bc.declared_type else 'inferred'} as "
                f"{shown_b}: one side is a guess, so check the declaration matches the data."
            )
        else:
            message = f"Type of `{hc.name}` in `{fqn}` {verdict}: {shown_b} → {shown_h}."
        self._retyped.add((fqn, hc.key))
        self._emit(
            rule, b, h, asset=fqn, column=hc.name, path=h.path, line=line, message=message,
            before=shown_b, after=shown_h,
            cap="review" if uncertain or guessed else None, floor="review" if uncertain else None,
        )

    def _reordered(
        self, b: Asset, h: Asset, fqn: str, bcols: Mapping[str, Column], hcols: Mapping[str, Column],
        renames: Mapping[str, str],
    ) -> None:
        if not (b.columns_known and h.columns_known):
            return
        order_before = [renames.get(c.key, c.key) for c in sorted(b.columns, key=lambda c: c.position)]
        order_after = [c.key for c in sorted(h.columns, key=lambda c: c.position)]
        common = set(order_before) & set(order_after)
        seq_before = [k for k in order_before if k in common]
        seq_after = [k for k in order_after if k in common]
        if seq_before == seq_after:
            return
        display = {c.key: c.name for c in h.columns}
        self._emit(
            "COLUMN_REORDERED", b, h, asset=fqn, path=h.path, line=h.line,
            message=f"The columns of `{fqn}` are in a new order: positional readers (INSERT … SELECT, "
            "UNION, SELECT *) may mix values up.",
            before=", ".join(display.get(k, k) for k in seq_before),
            after=", ".join(display.get(k, k) for k in seq_after),
        )

    @staticmethod
    def _column_text(col: Column) -> str:
        text = f"{col.name} {display_type(col.type, None)}"
        if col.nullable is False:
            text += " not null"
        if col.default is not None:
            text += f" default {col.default}"
        return text

    # -- constraints

    def _constraints(
        self, b: Asset, h: Asset, fqn: str, renames: Mapping[str, str], gone: set[str]
    ) -> None:
        before = _constraints(b)
        after = set(_constraints(h))
        for con, column in before.items():
            if any(c in gone for c in con.columns):
                continue  # the column itself is gone: COLUMN_REMOVED says it
            moved = _Constraint(con.kind, tuple(renames.get(c, c) for c in con.columns), con.detail)
            if moved in after:
                continue
            hc = h.column(renames.get(column_key(column), column_key(column))) if column else None
            self._emit(
                "CONSTRAINT_REMOVED", b, h, asset=fqn,
                column=(hc.name if hc is not None else column),
                path=h.path, line=(hc.line if hc is not None and hc.line else h.line),
                message=f"Constraint {con.text()} on `{fqn}` was removed: readers relying on it "
                "(joins on a key, uniqueness) may get duplicates or orphans.",
                before=con.text(), after=None,
            )

    # -- the query: semantic rules and formatting

    def _cache_key(self, kind: str, dialect: str | None, *texts: str) -> str:
        digest = hashlib.sha256()
        for part in (kind, dialect or "", *texts):
            digest.update(part.encode("utf-8", "surrogatepass"))
            digest.update(b"\0")
        return f"diff-{kind}-{digest.hexdigest()}"

    def _normalized(self, sql: str, dialect: str | None) -> str:
        if self.cache is None:
            return _normalize_sql(sql, dialect)
        key = self._cache_key("normalized", dialect, sql)
        hit = self.cache.get(key)
        if isinstance(hit, str):
            return hit
        value = _normalize_sql(sql, dialect)
        self.cache.put(key, value)
        return value

    def _compared(self, before: str, after: str, dialect: str | None) -> tuple[SemanticDiff, ...] | None:
        if self.cache is None:
            return _compare_queries(before, after, dialect)
        key = self._cache_key("semantic", dialect, before, after)
        hit = self.cache.get(key)
        if isinstance(hit, dict) and "diffs" in hit:
            return hit["diffs"]
        value = _compare_queries(before, after, dialect)
        self.cache.put(key, {"diffs": value})
        return value

    def _query(
        self, b: Asset, h: Asset, fqn: str, renames: Mapping[str, str], gone: set[str], *,
        renamed: bool = False,
    ) -> None:
        if not b.sql or not h.sql or b.sql == h.sql:
            return
        if not h.columns_known and h.path in self._problem_paths:
            return  # the new query could not be read: UNPARSED says so, a comparison would be noise
        dialect = self._dialect(h, b)
        before_sql, after_sql = self._unversioned(b.sql, dialect), self._unversioned(h.sql, dialect)
        if self._normalized(before_sql, dialect) == self._normalized(after_sql, dialect):
            if renamed or before_sql != b.sql or after_sql != h.sql:
                return  # ASSET_RENAMED / VERSION_DEPRECATED already say why the SQL changed
            self._emit(
                "METADATA_CHANGED", b, h, asset=fqn, path=h.path, line=h.line,
                message=f"The SQL of `{fqn}` changed only in form (formatting, comments, case).",
            )
            return
        diffs = self._compared(before_sql, after_sql, dialect)
        skip = gone | set(renames) | set(renames.values())
        if diffs is None:
            self._expression_changes(b, h, fqn, skip)
            return
        for d in diffs:
            rule = d.rule
            if rule not in catalog.RULES_BY_ID:
                continue
            column = d.column
            if column is not None and column_key(column) in skip:
                continue
            hc = h.column(column) if column else None
            bc = b.column(column) if column else None
            if (
                rule == "COLUMN_LOGIC_CHANGED" and hc is not None and bc is not None
                and ((fqn, hc.key) in self._retyped or (bc.type == hc.type != UNKNOWN))
                and _without_casts(d.before, dialect) == _without_casts(d.after, dialect)
            ):
                continue  # only a cast changed: the type finding says it, or the type is the same
            if rule == "GRAIN_CHANGED" and fqn in self._grain_said:
                continue  # the new unique key already says the grain changed: one finding
            self._emit(
                rule, b, h, asset=fqn, column=(hc.name if hc is not None else column), path=h.path,
                line=(hc.line if hc is not None and hc.line else h.line),
                message=d.message or f"{rule} in `{fqn}`.",
                before=d.before, after=d.after,
            )

    def _unversioned(self, sql: str, dialect: str | None) -> str:
        """``sql`` with every versioned model's relation (``dim_customers_v2``) read as the model
        (``dim_customers``): an unpinned ``ref`` switching to a new latest version is said once, by
        VERSION_DEPRECATED, not as a new grain, join and column logic in every reader."""
        if self._version_relations is None:
            self._version_relations = {}
            for snapshot in (self.base, self.head):
                for asset in snapshot.assets.values():
                    if asset.version is None or not asset.name:
                        continue
                    relation = (asset.relation or asset.fqn.replace(".v", "_v")).replace('"', "").replace("`", "")
                    self._version_relations[relation.rsplit(".", 1)[-1].lower()] = asset.name.lower()
        names = self._version_relations
        lowered = sql.lower()
        if not names or not any(n in lowered for n in names):
            return sql
        try:
            tree = sqlglot.parse_one(sql, read=dialect or None)
        except Exception:  # noqa: BLE001 - the comparison reports unreadable SQL itself
            return sql
        touched = False
        for table in tree.find_all(exp.Table):
            model = names.get(table.name.lower())
            if model is not None:
                table.set("this", exp.to_identifier(model))
                touched = True
        for column in tree.find_all(exp.Column):  # ``dim_customers_v2.id`` qualifiers too
            model = names.get(column.table.lower()) if column.table else None
            if model is not None:
                column.set("table", exp.to_identifier(model))
        return tree.sql(dialect=dialect or None) if touched else sql

    def _expression_changes(self, b: Asset, h: Asset, fqn: str, skip: set[str]) -> None:
        """Without the semantic comparison, a column's normalised expression still tells."""
        for bc in b.columns:
            hc = h.column(bc.name)
            if hc is None or bc.key in skip or bc.expression is None or hc.expression is None:
                continue
            if bc.expression != hc.expression:
                self._emit(
                    "COLUMN_LOGIC_CHANGED", b, h, asset=fqn, column=hc.name, path=h.path,
                    line=hc.line or h.line,
                    message=f"`{hc.name}` in `{fqn}` is computed differently.",
                    before=bc.expression, after=hc.expression,
                )

    def _metadata(self, b: Asset, h: Asset, fqn: str) -> None:
        changed = [
            name for name, old, new in (
                ("description", b.description, h.description),
                ("tags", tuple(sorted(b.tags)), tuple(sorted(h.tags))),
                ("meta", _plain_meta(b.meta), _plain_meta(h.meta)),
            ) if old != new
        ]
        if changed:
            self._emit(
                "METADATA_CHANGED", b, h, asset=fqn, path=h.path, line=h.line,
                message=f"The {' and '.join(changed)} of `{fqn}` changed.",
                before=b.description or None if changed == ["description"] else None,
                after=h.description or None if changed == ["description"] else None,
            )

    # -- files that could not be analysed

    def _asset_at(self, path: str, line: int | None) -> Asset | None:
        """The asset a problem is about: the model of a model file, or the statement at that line.

        A SQL file holds many statements; naming an asset that merely lives in the same file would
        send the finding to the wrong readers, so the path itself is named instead."""
        here = [a for a in self.head.assets.values() if a.path == path]
        models = [a for a in here if a.kind == "model"]
        if len(models) == 1:
            return models[0]
        at_line = [a for a in here if line is not None and a.line == line]
        return at_line[0] if len(at_line) == 1 else None

    def _unparsed(self) -> None:
        known = {(p.path, p.message) for p in self.base.problems}
        seen: set[tuple[str, str, int | None]] = set()
        for problem in self.head.problems:
            if self._ignored_path(problem.path):
                continue
            if self.changed_paths is not None:
                if problem.path not in self.changed_paths:
                    continue
            elif (problem.path, problem.message) in known:
                continue
            ident = (problem.path, problem.message, problem.line)
            if ident in seen:
                continue
            seen.add(ident)
            asset = self._asset_at(problem.path, problem.line)
            self._emit(
                "UNPARSED", None, asset, asset=asset.fqn if asset is not None else problem.path,
                path=problem.path, line=problem.line,
                message=f"Tessera could not analyse {problem.path}"
                f"{f' (line {problem.line})' if problem.line else ''}: {problem.message}",
            )


def _dropped_at(asset: Asset, key: str) -> tuple[str, int | None] | None:
    """Where the SQL dropped column ``key`` of ``asset`` (``sql_schema`` records it), if it did."""
    dropped = (asset.meta or {}).get("dropped_columns")
    where = dropped.get(key) if isinstance(dropped, Mapping) else None
    if isinstance(where, (list, tuple)) and len(where) == 2 and where[0]:
        return str(where[0]), where[1] if isinstance(where[1], int) else None
    return None


def _without_casts(expression: str | None, dialect: str | None) -> str | None:
    """An expression with every CAST/TRY_CAST/``::`` unwrapped and ``count(1)`` read as
    ``count(*)``: equal texts differ only in casts or in how rows are counted."""
    if expression is None:
        return None
    try:
        tree = sqlglot.parse_one(expression, read=dialect or None)
    except Exception:  # noqa: BLE001 - not comparable: keep the finding
        return expression
    tree = tree.transform(lambda n: n.this if isinstance(n, (exp.Cast, exp.TryCast)) else n)
    for count in tree.find_all(exp.Count):  # count(1) counts rows exactly as count(*) does
        if isinstance(count.this, exp.Literal) and not count.args.get("distinct"):
            count.set("this", exp.Star())
    return tree.sql(dialect=dialect or None).lower()


def _plain_relation(relation: str | None) -> str:
    """A relation name without quotes, lower-case, for comparing and showing."""
    return ".".join(p.strip().strip('"`[]') for p in (relation or "").split(".") if p.strip()).lower()


def _same_query(b: Asset, h: Asset) -> bool:
    """The asset's own definition did not change (its columns can then change only through inputs).

    The checksum covers assets a scoped build left unrendered (no SQL on one side)."""
    if b.checksum is not None and b.checksum == h.checksum:
        return True
    return b.sql is not None and b.sql == h.sql


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


_ENGINE_META = frozenset(
    {"renamed_from", "dropped_columns", NOT_PRODUCED, PRODUCED_EXTRA, PRODUCED_TYPE, PROPERTIES_AT}
)
"""Keys the engine itself records in ``meta`` (renames, drops, contract gaps): never a change."""

_USAGE_WORDS = {"select": "select", "filter": "filter", "join": "join", "group": "group by",
                "order": "order by", "star": "select *", "unknown": "read"}


def _plain_meta(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """Meta as people wrote it, without what the engine records there (``renamed_from``...)."""
    return {k: v for k, v in (meta or {}).items() if k not in _ENGINE_META}


def _names(items: list[str], limit: int = 3) -> str:
    """```a`, `b` and `c``` (and "N more" past ``limit``) for a sentence."""
    shown = [f"`{i}`" for i in items[:limit]]
    if len(items) > limit:
        shown.append(f"{len(items) - limit} more")
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def _self_filling(col: Column) -> bool:
    """Identity/serial/auto-increment columns fill themselves, so NOT NULL without default is fine."""
    text = f"{col.type} {' '.join(col.constraints)}".lower()
    return any(word in text for word in ("serial", "identity", "autoincrement", "auto_increment", "generated"))
