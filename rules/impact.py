"""Who a change hits, and which teams must acknowledge it.

The diff says *what* changed; this module says *who cares*. It follows each finding through the
lineage (:mod:`rules.lineage`) column by column and transitively, as far as its rule's row in
:mod:`rules.catalog` says it reaches (the column, the whole asset, direct readers, refused refs)
and in the graph the row names (base for what the head no longer has), and collects the consumers
it reaches: dbt exposures, downstream models owned by another team, and registrations ("I read
this"). A consumer whose team is the producing team never acks for itself; its own downstream
models just pass the impact on.

Owners come from :mod:`rules.owners`: a team, or a person who acks for themself. A breaking
change that reaches a consumer with no owner at all is held for the fallback
(:func:`rules.owners.fallback_holder`) unless ``on_unowned: warn``. So is one to a published
relation whose readers nobody knows (no exposure, registration or fresh observed reader), as if
those readers were a consumer with no owner, unless its readers are known, ``on_unknown_readers: warn``, or a fresh query log of its warehouse saw no read of what
changed. Every materialized relation is published except the repository's building blocks:
``access: private``, or dbt's documented structure (``internal:`` folders and name
prefixes, staging/intermediate/base by default).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from rules.catalog import RULES_BY_ID, Graph, Reach, Rule, RuleId
from rules.lineage import ALL, LineageIndex
from rules.lineage import Reach as Reached
from rules.model import (
    MAINTAINERS,
    UNKNOWN,
    UNKNOWN_READERS,
    Asset,
    Change,
    Config,
    Coverage,
    Edge,
    Exposure,
    Impact,
    InternalSettings,
    Observation,
    Registration,
    RequiredAck,
    Snapshot,
    Unread,
    column_key,
)
from rules.nested import field_named
from rules.observed import covers, describe, reader_label
from rules.owners import (
    CodeOwnersRule,
    FileHistory,
    Owner,
    PersonRef,
    TeamRef,
    fallback_holder,
    history_holder,
    match_team,
    parse_codeowners,
    required_ack,
    resolve_holder,
    stand_in_for,
)

PUBLISHED_KINDS = frozenset({"model", "snapshot", "seed", "table", "view"})
"""What a warehouse holds for readers outside the repository (a dbt source is an input)."""

IMPACT_SEVERITIES = frozenset({"breaking", "review"})
"""Only these are worth naming consumers for; safe and info changes reach no one."""


def _type_absorbed(base: Snapshot, head: Snapshot) -> Callable[[Edge], bool]:
    """Whether a select edge ends in a column whose known type is the same on both sides (the
    reader casts, counts or otherwise stops a type change from travelling further)."""

    def absorbs(edge: Edge) -> bool:
        if edge.downstream_column is None or edge.usage != "select":
            return False
        before, after = base.assets.get(edge.downstream), head.assets.get(edge.downstream)
        bc = before.column(edge.downstream_column) if before is not None else None
        hc = after.column(edge.downstream_column) if after is not None else None
        return bc is not None and hc is not None and bc.type == hc.type != UNKNOWN

    return absorbs


# --- impact -------------------------------------------------------------------------------------


@dataclass
class _ImpactAcc:
    asset: str
    consumer: str
    consumer_type: str
    team: str | None
    columns: set[str]
    rules: set[str]
    path: tuple[str, ...]


def _change_columns(change: Change, rule: Rule, asset: Asset | None) -> frozenset[str]:
    """The changed asset's columns a change touches (ALL for asset-wide changes)."""
    if rule.reach in (Reach.ASSET, Reach.REFS) or not change.column:
        return frozenset({ALL})
    names = {column_key(change.column)}
    if change.rule == RuleId.COLUMN_RENAMED and change.before:
        names.add(column_key(change.before))
    nested = _nested_field(change, asset)
    if nested is not None:
        return frozenset({column_key(nested[0])})  # readers of the struct; _reads_field narrows
    if asset is not None:
        known = {c.key for c in asset.columns}
        names = {n for n in names if n in known} or names
    return frozenset(names)


@dataclass(frozen=True)
class ImpactResult:
    """What :func:`walk_impact` found: consumers, who must ack, and why some breaking changes to
    published relations reach nobody (fresh query logs saw no read)."""

    impacts: tuple[Impact, ...]
    required: tuple[RequiredAck, ...]
    unread: tuple[Unread, ...] = ()


def walk_impact(
    changes: Sequence[Change],
    base: Snapshot,
    head: Snapshot,
    config: Config,
    *,
    registrations: Sequence[Registration] = (),
    codeowners: str | None = None,
    history: FileHistory | None = None,
    coverage: Sequence[Coverage] = (),
    grow: Callable[[str], int] | None = None,
) -> ImpactResult:
    """Consumers reached by the breaking and review changes, the teams that must ack, and the
    unread sentences.

    Only breaking changes require acks; review changes still name their consumers so the reader
    knows who to tell. Each consumer's ``columns`` are the changed asset's columns that reach it.
    A reading model no one declares an owner for is owned by who last changed it (``history``).
    ``coverage``: the fresh query logs
    (:func:`rules.observed.fresh_coverage`). ``grow``: the snapshots' lineage is filled in as the
    walk reaches assets (``rules.build.SnapshotPair.grow``)."""
    walk = _ImpactWalk(base, head, config, registrations, parse_codeowners(codeowners), history, coverage, grow)
    for change in changes:
        if change.severity in IMPACT_SEVERITIES:
            walk.follow(change)
    return ImpactResult(tuple(walk.impacts.rows()), tuple(walk.impacts.acks()), tuple(walk.unread))


_Fingerprint = tuple[str, str, str, str, str]


class _Consumers:
    """What the walk found: each consumer once per (asset, consumer, type, team), and per holder
    the breaking changes they must acknowledge and the readers that make them hold it."""

    def __init__(self, config: Config, rules: tuple[CodeOwnersRule, ...]) -> None:
        self.config = config
        self.rules = rules
        self.found: dict[tuple[str, str, str, str | None], _ImpactAcc] = {}
        self.team_refs: dict[str, Owner | None] = {}
        self.from_history: set[str] = set()
        """Holders who own a reader only as the last person to change it."""
        self.stand_ins: dict[str, str | None] = {}
        self.unknown_readers: set[str] = set()
        """Holders who hold for the unknown readers of a published relation."""
        self.unowned: set[str] = set()
        """Holders who hold for a consumer with no owner."""
        self.breaking_by_team: dict[str, dict[_Fingerprint, Change]] = {}
        self.readers_by_team: dict[str, dict[_Fingerprint, dict[str, int]]] = {}
        """Per holder and breaking change, each reader and how many hops from the change it is."""

    def record(
        self,
        change: Change,
        consumer: str,
        consumer_type: str,
        team: Owner | None,
        columns: tuple[str, ...],
        path: tuple[str, ...],
        where: str | None = None,
        *,
        reader: str | None = None,
        required: bool = True,
        unknown: bool = False,
    ) -> None:
        slug = team.key if team else None
        key = (change.asset, consumer, consumer_type, slug)
        acc = self.found.get(key)
        if acc is None:
            acc = self.found[key] = _ImpactAcc(change.asset, consumer, consumer_type, slug, set(), set(), path)
        acc.columns.update(columns)
        acc.rules.add(change.rule)
        if change.severity != "breaking" or not required:
            return
        holder = team
        if holder is None:
            if (self.config.on_unknown_readers if unknown else self.config.on_unowned) != "block":
                return
            holder = fallback_holder(where, self.config, self.rules)
            slug = holder.key if holder else MAINTAINERS
            (self.unknown_readers if unknown else self.unowned).add(slug)
        self._hold(change, holder, where, reader or f"{consumer_type} {consumer}", len(path))

    def _hold(self, change: Change, holder: Owner | None, where: str | None, reader: str, hops: int) -> None:
        slug = holder.key if holder else MAINTAINERS
        self.team_refs.setdefault(slug, holder)
        if isinstance(holder, PersonRef) and slug not in self.stand_ins:
            self.stand_ins[slug] = stand_in_for(holder, where, self.config, self.rules)
        fp_key = _fingerprint_key(change)
        self.breaking_by_team.setdefault(slug, {})[fp_key] = change
        readers = self.readers_by_team.setdefault(slug, {}).setdefault(fp_key, {})
        readers[reader] = min(hops, readers.get(reader, hops))

    def rows(self) -> list[Impact]:
        impact_rows = [
            Impact(
                asset=a.asset,
                consumer=a.consumer,
                consumer_type=a.consumer_type,
                team=a.team,
                columns=tuple(sorted(a.columns)),
                rules=tuple(sorted(a.rules)),
                path=a.path,
            )
            for a in self.found.values()
        ]
        impact_rows.sort(key=lambda i: (i.asset, i.team or "~", i.consumer_type, i.consumer))
        return impact_rows

    def acks(self) -> list[RequiredAck]:
        held = self.unknown_readers | self.unowned  # holders who stand in for no owner (the fallback)
        return [
            required_ack(
                self.team_refs[slug],
                tuple(_reason(self.breaking_by_team[slug][key], _nearest_first(readers))
                      for key, readers in self.readers_by_team[slug].items()),
                fingerprint(self.breaking_by_team[slug].values()),
                fallback=slug in held,
                held_for=tuple(
                    why for why, holders in (("unknown_readers", self.unknown_readers), ("unowned", self.unowned))
                    if slug in holders
                ),
                stand_in=self.stand_ins.get(slug),
                from_history=slug in self.from_history and slug not in held,
            )
            for slug in sorted(self.breaking_by_team)
        ]


@dataclass(frozen=True)
class _Followed:
    """One change being followed: where its readers are looked up and who produces it."""

    change: Change
    rule: Rule
    side: str
    snapshot: Snapshot
    producers: set[str]
    start_cols: frozenset[str]


class _ImpactWalk:
    """Follows each change through the lineage of the side its rule is judged on, recording the
    consumers it reaches in :class:`_Consumers`."""

    def __init__(
        self, base: Snapshot, head: Snapshot, config: Config, registrations: Sequence[Registration],
        rules: tuple[CodeOwnersRule, ...], history: FileHistory | None = None, coverage: Sequence[Coverage] = (),
        grow: Callable[[str], int] | None = None,
    ) -> None:
        self.base, self.head, self.config, self.rules, self.history = base, head, config, rules, history
        self.coverage = tuple(coverage)
        self.unread: list[Unread] = []
        self.indexes = {"base": LineageIndex.of(base, grow), "head": LineageIndex.of(head, grow)}
        self.exposures_by_side = {"base": _exposures_by_asset(base), "head": _exposures_by_asset(head)}
        self.regs_by_asset: dict[str, list[Registration]] = {}
        for reg in (*config.consumers, *registrations):
            self.regs_by_asset.setdefault(reg.asset.lower(), []).append(reg)
        self.team_cache: dict[tuple[str, str, bool], Owner | None] = {}
        self.impacts = _Consumers(config, rules)

    def team_of(self, thing: Asset | Exposure, snapshot: Snapshot, side: str, *, reader: bool = True) -> Owner | None:
        """The declared owner; for a reading model that has none, who last changed its file (a
        producer's own history never makes its editors "the producing team")."""
        key = (side, f"{type(thing).__name__}:{getattr(thing, 'fqn', None) or getattr(thing, 'name', '')}", reader)
        if key not in self.team_cache:
            owner = resolve_holder(thing, snapshot, self.config, codeowners=self.rules)
            if owner is None and reader and isinstance(thing, Asset) and thing.kind != "source":
                owner = history_holder(thing.path, self.history)
                if owner is not None:
                    self.impacts.from_history.add(owner.key)
            self.team_cache[key] = owner
        return self.team_cache[key]

    def follow(self, change: Change) -> None:
        base, head = self.base, self.head
        rule = RULES_BY_ID[change.rule]
        side = "base" if rule.judged_on == Graph.BASE or change.asset not in head.assets else "head"
        if side == "base" and change.asset in head.assets and _never_had(base, change):
            side = "head"  # gone from what readers now get (a new latest version): its readers are in head
        snapshot = base if side == "base" else head
        changed = snapshot.assets.get(change.asset) or base.assets.get(change.asset)
        if changed is None:
            return
        at = _Followed(change, rule, side, snapshot, self._producers(change, changed, snapshot, side),
                       _change_columns(change, rule, changed))
        keep = None
        fixed_exposure: Callable[[Exposure], bool] | None = None
        if side == "base" and rule.judged_on == Graph.BASE:
            # gone in head: its readers are in base, but only those that still read it in head
            gone = None if rule.reach == Reach.COLUMN and change.column else ALL
            if gone is None or change.asset not in head.assets:
                keep = _still_reads(base, head, self.indexes["head"], change.asset, gone or change.column or ALL)
                fixed_exposure = _exposure_fixed(head, change.asset, gone or change.column or ALL)
        absorbs = _type_absorbed(base, head) if rule.travels_with_type else None
        reached = self.indexes[side].walk(change.asset, at.start_cols, keep, absorbs)
        nested = _nested_field(change, changed)
        if nested is not None:
            reached = {
                fqn: reach for fqn, reach in reached.items()
                if fqn == change.asset or _reads_field(snapshot.assets.get(fqn), reach.columns, *nested)
            }
        relation_moved = change.rule == RuleId.ASSET_RENAMED and change.asset in head.assets
        if rule.reach == Reach.DIRECT_READERS or relation_moved:
            # refs follow a moved relation (alias/schema): only readers of the relation break
            reached = {fqn: reach for fqn, reach in reached.items() if fqn == change.asset}
        if rule.reach == Reach.REFS:
            # dbt access only governs refs: other groups' (private) or other projects' models
            # referencing it break; exposures do not ref, registrations may be other projects
            reached = {
                fqn: reach for fqn, reach in reached.items()
                if fqn == change.asset or _refused_ref(snapshot.assets.get(fqn), changed, change.after)
            }
        for fqn, reach in reached.items():
            asset = snapshot.assets.get(fqn)
            self._model(at, fqn, asset, reach)
            self._exposures(at, fqn, reach, fixed_exposure)
            self._registrations(at, fqn, asset, reach)
        self._unknown_readers(at, changed)

    def _unknown_readers(self, at: _Followed, changed: Asset) -> None:
        """A breaking change to a published relation whose readers nobody knows (no exposure,
        registration or fresh observed reader) is held for the fallback like an unowned consumer,
        whoever else in the repository it asks (they are not the readers outside it);
        when fresh query logs of its warehouse saw no read, it is known to reach nobody."""
        change = at.change
        if change.severity != "breaking" or not self._published(changed):
            return
        regs = _registrations_for(change.asset, changed, self.regs_by_asset)
        declared = [reg for reg in regs if reg.observed is None]
        seen = [reg for reg in regs if reg.observed is not None and not reg.observed.stale]
        logs = sorted({c.kind for c in self.coverage if covers(c, changed.dialect)})
        if declared or self.exposures_by_side[at.side].get(change.asset):
            return  # its readers are known: they decide
        if seen and (not logs or any(_observed_reads(reg, at.start_cols) for reg in seen)):
            return  # observed readers decide: those reading the change are asked
        if logs:
            target = f"{change.asset}.{change.column}" if change.column and ALL not in at.start_cols else change.asset
            unread = Unread(target, self.config.discovery.stale_after_days, tuple(logs))
            if unread not in self.unread:
                self.unread.append(unread)
            return
        self.impacts.record(
            change, change.asset, UNKNOWN_READERS, None, _consumer_columns(change, at.start_cols), (change.asset,),
            reader="readers Tessera does not know (no exposure, registration or observed query)", unknown=True,
        )

    def _published(self, asset: Asset) -> bool:
        """In the warehouse before the change (not new, not ephemeral, not disabled, not a source)
        and not one of the repository's building blocks: ``access: public`` publishes, ``private``
        keeps it to its group (``protected`` is dbt's default and says nothing), and otherwise the ``internal:`` folders
        and name prefixes (dbt's staging/intermediate/base layers) say it is internal. Whether
        models in the repository read it says nothing about readers outside it."""
        if asset.kind not in PUBLISHED_KINDS or not asset.enabled or asset.fqn not in self.base.assets:
            return False  # a relation the change adds has had no chance to be read
        if (asset.materialized or "").lower() == "ephemeral":
            return False
        access = (asset.access or "").lower()
        if access == "public":
            return True
        if access == "private":
            return False  # only its own group may build on it
        return not building_block(asset, self.config.internal)

    def _producers(self, change: Change, changed: Asset, snapshot: Snapshot, side: str) -> set[str]:
        producer = self.team_of(changed, snapshot, side, reader=False)
        if producer is not None or changed.kind != "source":
            return {producer.key} if producer else set()
        # an unowned source is an input: the teams reading it directly bring it in and are not
        # its consumers; only someone else's source makes them one
        return {
            team.key for reader in snapshot.assets.values()
            if change.asset in reader.depends_on and reader.fqn != change.asset
            and (team := self.team_of(reader, snapshot, side)) is not None
        }

    def _model(self, at: _Followed, fqn: str, asset: Asset | None, reach: Reached) -> None:
        if fqn == at.change.asset or asset is None:
            return
        owner = self.team_of(asset, at.snapshot, at.side)
        if owner is not None and owner.key not in at.producers:
            consumer_type = "view" if asset.kind == "view" else "model"
            cols = _consumer_columns(at.change, at.start_cols)
            self.impacts.record(at.change, fqn, consumer_type, owner, cols, reach.path, asset.path)

    def _exposures(
        self, at: _Followed, fqn: str, reach: Reached, fixed_exposure: Callable[[Exposure], bool] | None
    ) -> None:
        for exposure in () if at.rule.reach == Reach.REFS else self.exposures_by_side[at.side].get(fqn, ()):
            if fqn == at.change.asset and fixed_exposure is not None and fixed_exposure(exposure):
                continue
            read = exposure.columns.get(fqn)  # absent: every column; empty: none (a count(*))
            if read is not None and ALL not in reach.columns and not ({column_key(c) for c in read} & reach.columns):
                continue
            owner = self.team_of(exposure, at.snapshot, at.side)
            if owner is not None and owner.key in at.producers:
                # the producer's team only through CODEOWNERS of the YAML (often a catch-all
                # line): the exposure's own owner block, when it names someone else, reads it
                owner = resolve_holder(exposure, at.snapshot, self.config)
                if owner is None or owner.key in at.producers:
                    continue
            cols = _consumer_columns(at.change, at.start_cols)
            self.impacts.record(at.change, exposure.name, "exposure", owner, cols, (*reach.path, exposure.name),
                                exposure.path)

    def _registrations(self, at: _Followed, fqn: str, asset: Asset | None, reach: Reached) -> None:
        for reg in _registrations_for(fqn, asset, self.regs_by_asset):
            if reg.columns and ALL not in reach.columns:
                if not ({column_key(c) for c in reg.columns} & reach.columns):
                    continue
            if reg.observed is not None:
                self._observed(at, reg, reg.observed, reach)
                continue
            team = match_team(reg.team, self.config) or TeamRef(reg.team, None)
            if team.slug in at.producers:
                continue
            consumer_type = "query" if reg.source.startswith("sql:") else "registration"
            name = reg.source[4:] if consumer_type == "query" else f"{reg.team}/{reg.asset}"
            cols = _consumer_columns(at.change, at.start_cols)
            self.impacts.record(at.change, name, consumer_type, team, cols, (*reach.path, name))

    def _observed(self, at: _Followed, reg: Registration, seen: Observation, reach: Reached) -> None:
        """A reader seen in a query log or BI tool: named by who reads, required while fresh and
        mapped to a team; an unmapped one is shown with how to map it, never held for the fallback
        (ad-hoc readers would otherwise hold every change)."""
        if not reg.columns and not seen.every_column and ALL not in reach.columns:
            return  # it read no column (count(*)): only asset-wide changes reach it
        team = (match_team(reg.team, self.config) or TeamRef(reg.team, None)) if reg.team else None
        if team is not None and team.key in at.producers:
            return
        name = reader_label(seen)
        self.impacts.record(at.change, name, "query", team, _consumer_columns(at.change, at.start_cols),
                            (*reach.path, name), reader=describe(seen, reg.team or None, self.config),
                            required=team is not None and not seen.stale)


_RESOURCE_FOLDERS = ("models", "snapshots", "seeds")


def building_block(asset: Asset, internal: InternalSettings) -> bool:
    """Whether ``asset`` sits in one of the ``internal`` folders or its name (the last dotted part)
    starts with one of the ``internal`` prefixes. Folders count below dbt's ``models``/``snapshots``/
    ``seeds`` folder when the path has one: a project that lives in a folder called ``base`` or
    ``staging`` is not a building block as a whole."""
    parts = [part.lower() for part in (asset.path or "").replace("\\", "/").split("/")[:-1]]
    for anchor in _RESOURCE_FOLDERS:
        if anchor in parts:
            parts = parts[parts.index(anchor) + 1:]
            break
    if set(parts) & set(internal.folders):
        return True
    name = (asset.name or asset.fqn).rsplit(".", 1)[-1].lower()
    return any(name.startswith(prefix) for prefix in internal.prefixes)


def _fingerprint_key(change: Change) -> _Fingerprint:
    return (change.rule, change.asset, change.column or "", change.before or "", change.after or "")


def _observed_reads(reg: Registration, columns: frozenset[str]) -> bool:
    """Whether an observed reader read any of ``columns`` (ALL: any column at all)."""
    if ALL in columns or (reg.observed is not None and reg.observed.every_column):
        return True  # an asset-wide change reaches even a reader that only counted rows
    return bool({column_key(c) for c in reg.columns} & columns)


def _refused_ref(reader: Asset | None, changed: Asset, access: str | None) -> bool:
    """A direct reader whose ``ref`` the narrowed access refuses: another package for
    ``protected``; another group (or package) for ``private``."""
    if reader is None or changed.fqn not in reader.depends_on:
        return False
    if (reader.package or None) != (changed.package or None):
        return True
    return (access or "").lower() == "private" and (reader.group or None) != (changed.group or None)


def _registrations_for(
    fqn: str, asset: Asset | None, regs_by_asset: Mapping[str, list[Registration]]
) -> list[Registration]:
    """Registrations on this asset; one on an unversioned dbt name means its latest version."""
    found = list(regs_by_asset.get(fqn, ()))
    if asset is not None and asset.version is not None and "." in fqn:
        name = fqn.rsplit(".", 1)[0]
        if asset.latest_version is None or str(asset.latest_version) == str(asset.version):
            found += regs_by_asset.get(name, [])
    return found


def _exposures_by_asset(snapshot: Snapshot) -> dict[str, list[Exposure]]:
    out: dict[str, list[Exposure]] = {}
    for exposure in snapshot.exposures.values():
        for fqn in exposure.depends_on:
            out.setdefault(fqn, []).append(exposure)
    return out


def _nested_field(change: Change, asset: Asset | None) -> tuple[str, str] | None:
    """(struct column, field path) for a change to a nested field (``billing.tier``) of an asset
    whose column is ``billing``; None for a change to a column itself."""
    if not change.column or "." not in change.column or asset is None:
        return None
    known = {c.key for c in asset.columns}
    if column_key(change.column) in known:
        return None
    parent, path = change.column.split(".", 1)
    return (parent, path) if column_key(parent) in known else None


def _reads_field(reader: Asset | None, columns: Iterable[str], parent: str, path: str) -> bool:
    """Whether a reader of a struct column reads one of its fields: its SQL names the field, or
    it hands the whole struct on (then its own readers are judged the same way)."""
    if reader is None or column_key(parent) in set(columns):
        return True
    return field_named(reader.sql, parent, path)


def _never_had(base: Snapshot, change: Change) -> bool:
    """A removed column the asset never had in base: it went missing for readers that moved to
    the asset (``latest_version`` moved), so only head knows who reads it."""
    before = base.assets.get(change.asset)
    return (
        change.rule == RuleId.COLUMN_REMOVED and bool(change.column) and before is not None
        and column_key(change.column) not in {c.key for c in before.columns}
    )


def _still_reads(
    base: Snapshot, head: Snapshot, head_lineage: LineageIndex, upstream: str, column: str
) -> Callable[[Edge], bool]:
    """For a column (or, with ``ALL``, a whole asset) gone from ``upstream``: does a base reader
    still read it in the head?

    A reader the same PR removed reads nothing. A reader this same PR rewrote (its SQL differs)
    has stopped reading a column when its head lineage from ``upstream`` is known and no longer
    names it (it reads the new name, or nothing), and has stopped reading an asset when its head no
    longer depends on it (it refs the renamed model): the producer fixed their own downstream model,
    and what changed there is that model's own finding. An untouched reader still reads it (and
    will break), whatever its head lineage says.
    """
    key = column_key(column)

    def keep(edge: Edge) -> bool:
        before = base.assets.get(edge.downstream)
        after = head.assets.get(edge.downstream)
        if before is None:
            return True
        if after is None:
            return False
        if (before.sql or "") == (after.sql or "") and before.checksum == after.checksum:
            return True
        from_upstream = [e for e in head_lineage.readers(upstream, None) if e.downstream == edge.downstream]
        if upstream not in after.depends_on and not from_upstream:
            return False
        if column == ALL or not after.columns_known:
            return True
        return any(e.upstream_column is None or column_key(e.upstream_column) == key for e in from_upstream)

    return keep


def _exposure_fixed(head: Snapshot, upstream: str, column: str) -> Callable[[Exposure], bool]:
    """For a column (or, with ``ALL``, an asset) gone from ``upstream``: has the same PR removed
    an exposure that read it, pointed it elsewhere, or narrowed its listed columns past it?"""
    key = column_key(column)

    def fixed(exposure: Exposure) -> bool:
        after = head.exposures.get(exposure.name)
        if after == exposure:
            return False
        if after is None or upstream not in after.depends_on:
            return True
        if column == ALL:
            return False
        listed = after.columns.get(upstream)
        return bool(listed) and key not in {column_key(c) for c in listed}

    return fixed


def _consumer_columns(change: Change, start_cols: frozenset[str]) -> tuple[str, ...]:
    """The changed asset's columns named for a consumer: the change's own column (and old name)."""
    if ALL in start_cols:
        return ()
    names: list[str] = [change.column] if change.column else []
    if change.rule == RuleId.COLUMN_RENAMED and change.before and change.before not in names:
        names.append(change.before)
    return tuple(names)


def _nearest_first(readers: Mapping[str, int]) -> list[str]:
    """Readers by how far they are from the change, then by name: the ones a team looks at first
    lead, and the list reads the same whatever order the walk met them in."""
    return sorted(readers, key=lambda reader: (readers[reader], reader))


def _reason(change: Change, readers: Sequence[str]) -> str:
    """One line per breaking change a team must acknowledge: what changed and what of theirs reads it."""
    target = f"{change.asset}.{change.column}" if change.column else change.asset
    shown = ", ".join(readers[:5]) + (f" and {len(readers) - 5} more" if len(readers) > 5 else "")
    return f"{change.rule} on {target}: read by {shown}"


def fingerprint(changes: Iterable[Change]) -> str:
    """A stable hash of what a team must acknowledge: same breaking changes, same fingerprint."""
    rows = sorted({(c.rule, c.asset, c.column or "", c.before or "", c.after or "") for c in changes})
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()[:16]
