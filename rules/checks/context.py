"""What every check gets: the pair of assets it judges, the diff run it is part of, and the finding
it yields.

A check never decides severity: it yields :class:`Finding` values naming a rule, and the diff
resolves each one through the catalog for the asset's compatibility mode and the repository's
overrides (``cap`` and ``floor`` say how sure the check is). The context holds what several checks
look up: the snapshots, the lineage (who still reads a column, what fed it), the dialect, where a
finding is best shown, and the cache of query comparisons.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from rules.catalog import RuleId
from rules.lineage import LineageIndex
from rules.model import (
    NOT_PRODUCED,
    PRODUCED_EXTRA,
    PRODUCED_TYPE,
    PROPERTIES_AT,
    UNKNOWN,
    Asset,
    Column,
    Config,
    Snapshot,
    column_key,
)
from rules.sources import matches_any
from rules.types import display_type


class ResultCache(Protocol):
    """Where query comparisons are kept between runs (``build.ParseCache`` fits; its ``flush``,
    when it has one, is called once the diff is done)."""

    def get(self, key: str) -> Any | None: ...

    def put(self, key: str, value: Any) -> None: ...


@dataclass(frozen=True)
class Finding:
    """One change a check found, before the catalog says how much it matters."""

    rule: RuleId
    asset: str
    message: str
    column: str | None = None
    path: str | None = None
    line: int | None = None
    before: str | None = None
    after: str | None = None
    cap: str | None = None
    """At most this severe (``review`` when the check could not confirm it)."""
    floor: str | None = None
    """At least this severe (UNKNOWN types, a reader that fails to build)."""
    escalate: bool = False
    """``breaking`` unless the repository overrides the rule or the mode is ``none`` (a relation
    disappearing)."""
    judged_by: tuple[Asset | None, ...] = ()
    """The assets whose compatibility mode applies, first set wins; empty: the pair's."""


@dataclass
class Pair:
    """One base asset and what became of it in head, as the checks see it.

    ``head`` is None when the asset was removed (or disabled); ``renamed_to`` names the head asset
    of a rename. Both sides None stands for the change as a whole (files no check could read).
    ``fqn`` is the name findings are reported under: the base name, which readers know.
    The sets at the end are what earlier checks said, so later ones do not say it again.
    """

    fqn: str
    base: Asset | None
    head: Asset | None
    renamed_to: str | None = None
    retyped: set[str] = field(default_factory=set)
    """Column keys a type finding was made for (a cast alone is then no new column logic)."""
    grain_said: bool = False
    """The unique key already said the grain changed."""
    nested: set[str] = field(default_factory=set)
    """Column keys whose struct fields were said one by one (no column-level type or logic finding)."""

    @property
    def both(self) -> tuple[Asset, Asset] | None:
        """(base, head) when the asset is on both sides."""
        if self.base is None or self.head is None:
            return None
        return self.base, self.head

    @cached_property
    def base_columns(self) -> dict[str, Column]:
        return {c.key: c for c in self.base.columns} if self.base is not None else {}

    @cached_property
    def head_columns(self) -> dict[str, Column]:
        return {c.key: c for c in self.head.columns} if self.head is not None else {}

    def kept_columns(self) -> Iterator[tuple[Column, Column]]:
        """The columns on both sides, in base order: (base column, head column)."""
        for key, bc in self.base_columns.items():
            hc = self.head_columns.get(key)
            if hc is not None:
                yield bc, hc

    @cached_property
    def removed_keys(self) -> list[str]:
        return [k for k in self.base_columns if k not in self.head_columns]

    @cached_property
    def added_keys(self) -> list[str]:
        return [k for k in self.head_columns if k not in self.base_columns]

    @cached_property
    def renames(self) -> dict[str, str]:
        """Column renames, old key → new key."""
        return column_renames(self.base_columns, self.head_columns, self.removed_keys, self.added_keys)

    @cached_property
    def gone(self) -> set[str]:
        """Column keys that are gone: removed (not renamed), or no longer produced by the SQL of an
        enforced contract that still declares them."""
        gone = {k for k in self.removed_keys if k not in self.renames}
        for key, hc in self.head_columns.items():
            bc = self.base_columns.get(key)
            if bc is not None and hc.meta.get(NOT_PRODUCED) and not bc.meta.get(NOT_PRODUCED):
                gone.add(key)
        return gone


Check = Callable[[Pair, "DiffContext"], Iterable[Finding]]
"""A check: a pair of assets in, the findings of its rules out."""


def emits(*rules: RuleId) -> Callable[[Check], Check]:
    """Declare the rules a check finds (the catalog test holds every rule to one check)."""

    def mark(check: Check) -> Check:
        check.rules = frozenset(rules)  # type: ignore[attr-defined]
        return check

    return mark


def rules_of(check: Check) -> frozenset[RuleId]:
    """The rules ``check`` declared with :func:`emits`."""
    found: frozenset[RuleId] = getattr(check, "rules", frozenset())
    return found


def column_renames(
    bcols: Mapping[str, Column], hcols: Mapping[str, Column], removed: list[str], added: list[str]
) -> dict[str, str]:
    """Renames recorded by the SQL (``renamed_from``), then the same expression under a new name
    (exactly, then without table qualifiers; among several, the name that keeps the old one)."""
    renames: dict[str, str] = {}
    removed_left = set(removed)
    for new in added:
        source = hcols[new].meta.get("renamed_from") if hcols[new].meta else None
        if isinstance(source, str) and column_key(source) in removed_left:
            renames[column_key(source)] = new
            removed_left.discard(column_key(source))
    added_left = [k for k in added if k not in renames.values()]
    for same in (_same_expression, _same_bare_expression):
        for old in sorted(removed_left - set(renames), key=lambda k: bcols[k].position):
            matches = [new for new in added_left if same(bcols[old], hcols[new])]
            if len(matches) > 1:
                # ``id as x`` → ``id as x_id, id as y``: the name that keeps the old one wins
                matches = [new for new in matches if old in new or new in old]
            if len(matches) != 1:
                continue
            rivals = [o for o in removed_left - set(renames) if o != old and same(bcols[o], hcols[matches[0]])]
            if rivals:
                continue
            renames[old] = matches[0]
            added_left.remove(matches[0])
    return renames


_QUALIFIER = re.compile(r"""(?<![\w."'])(?:[a-z_][\w$]*\.)+(?=[a-z_"])""", re.IGNORECASE)
"""Table qualifiers in a normalised expression (``o.id``, ``orders.id``), outside quoted names."""


def _same_type(bc: Column, hc: Column) -> bool:
    """Types that do not tell a rename apart: equal, unknown on a side, or declared in YAML on a
    side (a declaration documents the old name and is not yet written for the new one)."""
    return bc.type == hc.type or UNKNOWN in (bc.type, hc.type) or bc.declared_type or hc.declared_type


def _same_expression(bc: Column, hc: Column) -> bool:
    """The same normalised expression (same source columns, same transformation) under a new name."""
    return bc.expression is not None and bc.expression == hc.expression and _same_type(bc, hc)


def _same_bare_expression(bc: Column, hc: Column) -> bool:
    """The same expression once table qualifiers are dropped: a join added beside the rename
    qualifies ``id`` as ``orders.id`` without changing what it computes."""
    if bc.expression is None or hc.expression is None or not _same_type(bc, hc):
        return False
    return _QUALIFIER.sub("", bc.expression) == _QUALIFIER.sub("", hc.expression)


class DiffContext:
    """One diff run: the snapshots, the configuration and the lookups checks share."""

    def __init__(
        self, base: Snapshot, head: Snapshot, config: Config, changed_paths: Collection[str] | None,
        cache: ResultCache | None = None,
    ) -> None:
        self.base = base
        self.head = head
        self.config = config
        self.changed_paths = None if changed_paths is None else set(changed_paths)
        self.cache = cache
        self.problem_paths = {p.path for p in head.problems}
        self._lineages: dict[str, LineageIndex] = {}
        self.ignored_fqns = {
            fqn for snapshot in (base, head) for fqn, a in snapshot.assets.items()
            if self.ignored_path(a.path)
        }

    # -- configuration

    def ignored_path(self, path: str | None) -> bool:
        return bool(path and self.config.ignore and matches_any(path, self.config.ignore))

    def mode(self, *assets: Asset | None) -> str:
        """The compatibility mode: the first asset's own, else the repository's."""
        for asset in assets:
            if asset is not None and asset.compatibility in ("backward", "forward", "full", "none"):
                return asset.compatibility
        return self.config.compatibility

    def dialect(self, *assets: Asset | None) -> str | None:
        for asset in assets:
            if asset is not None and asset.dialect:
                return asset.dialect
        return self.config.sql.dialect or self.config.dbt.dialect

    def overridden(self, rule: RuleId) -> bool:
        """Whether ``.tessera.yml`` sets this rule's severity itself (then checks do not adjust it)."""
        return rule in self.config.rules

    def properties_at(self, h: Asset) -> tuple[str | None, int | None]:
        """Where a finding about YAML properties is shown: the model's YAML entry when the loader
        knows it (and it changed, or nothing says what did), else the SQL file."""
        at = (h.meta or {}).get(PROPERTIES_AT)
        if isinstance(at, (list, tuple)) and len(at) == 2 and isinstance(at[0], str):
            if self.changed_paths is None or at[0] in self.changed_paths or h.path not in self.changed_paths:
                return at[0], at[1] if isinstance(at[1], int) else None
        return h.path, h.line

    @cached_property
    def version_relations(self) -> dict[str, str]:
        """The relation name of every versioned model (``dim_customers_v2``) → the model's name."""
        found: dict[str, str] = {}
        for snapshot in (self.base, self.head):
            for asset in snapshot.assets.values():
                if asset.version is None or not asset.name:
                    continue
                relation = (asset.relation or asset.fqn.replace(".v", "_v")).replace('"', "").replace("`", "")
                found[relation.rsplit(".", 1)[-1].lower()] = asset.name.lower()
        return found

    # -- lineage

    def lineage(self, side: str) -> LineageIndex:
        """The column lineage of the base or head snapshot, built on first use (checks ask only
        about named columns, so ``depends_on`` without lineage is left out)."""
        index = self._lineages.get(side)
        if index is None:
            index = self._lineages[side] = LineageIndex((self.head if side == "head" else self.base).edges)
        return index

    def readers(self, fqn: str, column: str) -> dict[str, list[str]]:
        """Head models and views still reading ``fqn.column``, each with how (select, join...)."""
        found: dict[str, list[str]] = {}
        for edge in self.lineage("head").column_readers(fqn, column):
            if edge.downstream == edge.upstream:
                continue
            usages = found.setdefault(edge.downstream, [])
            word = USAGE_WORDS.get(edge.usage, edge.usage)
            if word not in usages:
                usages.append(word)
        return {
            reader: usages for reader, usages in sorted(found.items())
            if reader in self.head.assets and self.head.assets[reader].enabled
            and reader not in self.ignored_fqns
        }

    def reader_phrase(self, h: Asset, bc: Column) -> str:
        """``model `x`, which reads it (select, group by)`` / ```x` and `y`, which read it`` or ""."""
        readers = self.readers(h.fqn, bc.key)
        if not readers:
            return ""
        if len(readers) == 1:
            reader, usages = next(iter(readers.items()))
            return f"{self.head.assets[reader].kind} `{reader}`, which reads it ({', '.join(usages)})"
        return f"{names(list(readers))}, which read it"

    def still_read(self, h: Asset, bc: Column) -> str:
        """`` Model `x` still reads it (select, group by) and will fail ...`` or "" when nothing does."""
        readers = self.readers(h.fqn, bc.key)
        if not readers:
            return ""
        fail = "fail to build" if all(self.head.assets[r].kind == "model" for r in readers) else "fail"
        if len(readers) == 1:
            reader, usages = next(iter(readers.items()))
            kind = self.head.assets[reader].kind
            said = (f" {kind.capitalize()} `{reader}` still reads it ({', '.join(usages)}) "
                    f"and will {fail} unless it changes too.")
        else:
            said = f" {names(list(readers))} still read it and will {fail} unless they change too."
        views = [r for r in readers if self.head.assets[r].kind == "view"]
        engine = {"postgres": "PostgreSQL", "redshift": "Redshift (unless the view is late-binding)"}.get(
            (h.dialect or "").lower())
        if h.kind == "table" and views and engine:
            said += (f" {engine} refuses to drop a column a view depends on; with CASCADE the "
                     f"{'view is' if len(views) == 1 else 'views are'} dropped too.")
        return said

    def removed_at(self, b: Asset, h: Asset, bc: Column) -> tuple[str | None, int | None]:
        """Where a removal is best shown in head: the DROP that removed it, else the line of the
        nearest surviving column in the same file (where the removed one used to be)."""
        where = dropped_at(h, bc.key)
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

    def lost_upstream(self, fqn: str, column: str) -> bool:
        """Whether an input of ``fqn.column`` had a known type in base and lost it in head."""
        for edge in self.lineage("head").inputs(fqn, column):
            before = self.base.assets.get(edge.upstream)
            after = self.head.assets.get(edge.upstream)
            bc = before.column(edge.upstream_column or "") if before is not None else None
            hc = after.column(edge.upstream_column or "") if after is not None else None
            if bc is not None and hc is not None and bc.type != UNKNOWN and hc.type == UNKNOWN:
                return True
        return False

    def gone_upstream(self, fqn: str, column: str) -> list[str]:
        """Base inputs of ``fqn.column`` whose feeding column head no longer has (their fqns)."""
        out = []
        for edge in self.lineage("base").inputs(fqn, column):
            parent = self.head.assets.get(edge.upstream)
            if parent is None or (parent.columns_known and parent.column(edge.upstream_column or "") is None):
                out.append(edge.upstream)
        return sorted(set(out))

    def missing_inputs(self, fqn: str, column: str) -> list[str]:
        """Upstream columns feeding ``fqn.column`` in head that head no longer has (``a.b``)."""
        missing = []
        for edge in self.lineage("head").inputs(fqn, column):
            parent = self.head.assets.get(edge.upstream)
            if parent is not None and parent.columns_known and parent.column(edge.upstream_column or "") is None:
                missing.append(f"{edge.upstream}.{edge.upstream_column}")
        return sorted(set(missing))

    def removed_in_base(self, qualified: str) -> bool:
        """Whether ``asset.column`` existed in base (so this diff reports its removal)."""
        fqn, _, column = qualified.rpartition(".")
        asset = self.base.assets.get(fqn)
        return asset is not None and asset.column(column) is not None

    # -- the cache of query comparisons

    def cache_key(self, kind: str, dialect: str | None, *texts: str) -> str:
        """The key a comparison of ``texts`` is kept under in the run's cache."""
        digest = hashlib.sha256()
        for part in (kind, dialect or "", *texts):
            digest.update(part.encode("utf-8", "surrogatepass"))
            digest.update(b"\0")
        return f"diff-{kind}-{digest.hexdigest()}"


# --- small helpers several checks use --------------------------------------------------------

USAGE_WORDS = {"select": "select", "filter": "filter", "join": "join", "group": "group by",
               "order": "order by", "star": "select *", "unknown": "read"}

ENGINE_META = frozenset(
    {"renamed_from", "dropped_columns", NOT_PRODUCED, PRODUCED_EXTRA, PRODUCED_TYPE, PROPERTIES_AT}
)
"""Keys the engine itself records in ``meta`` (renames, drops, contract gaps): never a change."""


def plain_meta(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """Meta as people wrote it, without what the engine records there (``renamed_from``...)."""
    return {k: v for k, v in (meta or {}).items() if k not in ENGINE_META}


def names(items: list[str], limit: int = 3) -> str:
    """```a`, `b` and `c``` (and "N more" past ``limit``) for a sentence."""
    shown = [f"`{i}`" for i in items[:limit]]
    if len(items) > limit:
        shown.append(f"{len(items) - limit} more")
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def column_text(col: Column) -> str:
    """A column as a line of DDL would say it (``amount DECIMAL(18, 2) not null``)."""
    text = f"{col.name} {display_type(col.type, None)}"
    if col.nullable is False:
        text += " not null"
    if col.default is not None:
        text += f" default {col.default}"
    return text


def dropped_at(asset: Asset, key: str) -> tuple[str, int | None] | None:
    """Where the SQL dropped column ``key`` of ``asset`` (``sql_schema`` records it), if it did."""
    dropped = (asset.meta or {}).get("dropped_columns")
    where = dropped.get(key) if isinstance(dropped, Mapping) else None
    if isinstance(where, (list, tuple)) and len(where) == 2 and where[0]:
        return str(where[0]), where[1] if isinstance(where[1], int) else None
    return None


def same_query(b: Asset, h: Asset) -> bool:
    """The asset's own definition did not change (its columns can then change only through inputs).

    The checksum covers assets a scoped build left unrendered (no SQL on one side)."""
    if b.checksum is not None and b.checksum == h.checksum:
        return True
    return b.sql is not None and b.sql == h.sql
