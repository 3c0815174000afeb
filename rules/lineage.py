"""Column-level lineage of one graph: who reads an asset's column, what feeds it, how far it reaches.

One index for every question lineage answers: the diff asks which models still read a removed
column and which inputs fed a column, the impact follows a change to every consumer downstream,
and the registry API's graph endpoints answer the same walk over the store's edges. Built once
per graph from its edges (plus, for a snapshot, ``depends_on`` where lineage is unknown: such a
reader reads every column), then only looked up.

The walk follows lineage column by column and transitively: a column used in a join, filter or
grouping makes every column of the reader affected (``ALL``); one read through ``SELECT *`` is
passed on under its own name, so a reader further down that lists its columns is judged by them
even where the star reader's own columns are unknown. Only a reader whose lineage is unknown, or
an asset-wide change, reaches every column.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from rules.model import Edge, Snapshot, column_key

ALL = "*"
"""Stands for "every column" in a set of affected columns."""

WHOLE_USAGES = frozenset({"filter", "join", "group", "star"})
"""Usages through which a column affects every column of its reader."""


@dataclass(frozen=True)
class Reach:
    """One asset reached by a walk: which of its columns are affected, and by what path."""

    asset: str
    columns: frozenset[str]
    path: tuple[str, ...]


class LineageIndex:
    """Readers and inputs of every (asset, column) of one graph."""

    def __init__(self, edges: Iterable[Edge], *, depends_on: Iterable[tuple[str, str]] = ()) -> None:
        """``edges`` as lineage found them; ``depends_on`` (upstream, downstream) pairs where only
        the dependency is known, added as whole-asset readers unless an edge links them already."""
        self._index(edges, depends_on)
        self._snapshot: Snapshot | None = None
        self._grow: Callable[[str], int] | None = None
        self._generation = 0

    def _index(self, edges: Iterable[Edge], depends_on: Iterable[tuple[str, str]]) -> None:
        self._by_column: dict[tuple[str, str], list[Edge]] = {}
        self._whole: dict[str, list[Edge]] = {}
        self._all: dict[str, list[Edge]] = {}
        self._inputs: dict[tuple[str, str], list[Edge]] | None = None
        """Built on first use: the impact walk never asks for inputs."""
        linked: set[tuple[str, str]] = set()
        for edge in edges:
            self._all.setdefault(edge.upstream, []).append(edge)
            linked.add((edge.upstream, edge.downstream))
            if edge.upstream_column is None:
                self._whole.setdefault(edge.upstream, []).append(edge)
            else:
                self._by_column.setdefault((edge.upstream, column_key(edge.upstream_column)), []).append(edge)
        for parent, child in depends_on:
            if (parent, child) not in linked:
                edge = Edge(parent, None, child, None, "unknown")
                self._whole.setdefault(parent, []).append(edge)
                self._all.setdefault(parent, []).append(edge)

    @classmethod
    def of(cls, snapshot: Snapshot, grow: Callable[[str], int] | None = None) -> LineageIndex:
        """The lineage of a snapshot: its edges, and ``depends_on`` where no edge says more.

        ``grow`` (``rules.build.SnapshotPair.grow``) is told each asset whose readers are asked
        for, before they are looked up; it may add their lineage to the snapshot, and returns a
        generation that changes when it did (the index is then built again)."""
        index = cls(snapshot.edges, depends_on=_depends_on(snapshot))
        index._snapshot, index._grow = snapshot, grow
        return index

    def _grown(self, asset: str) -> None:
        if self._grow is None or self._snapshot is None:
            return
        generation = self._grow(asset)
        if generation != self._generation:
            self._generation = generation
            self._index(self._snapshot.edges, _depends_on(self._snapshot))

    def readers(self, asset: str, column: str | None) -> list[Edge]:
        """Edges out of ``asset`` that read ``column`` (None or ``ALL``: any column)."""
        self._grown(asset)
        if column is None or column == ALL:
            return list(self._all.get(asset, ()))
        return self._by_column.get((asset, column_key(column)), []) + self._whole.get(asset, [])

    def column_readers(self, asset: str, column: str) -> list[Edge]:
        """Edges that name ``asset.column`` itself (not whole-asset readers)."""
        self._grown(asset)
        return self._by_column.get((asset, column_key(column)), [])

    def inputs(self, asset: str, column: str) -> list[Edge]:
        """Edges feeding ``asset.column`` from a known upstream column."""
        if self._inputs is None:
            self._inputs = {}
            for edges in self._by_column.values():
                for edge in edges:
                    if edge.downstream_column is not None:
                        key = (edge.downstream, column_key(edge.downstream_column))
                        self._inputs.setdefault(key, []).append(edge)
        return self._inputs.get((asset, column_key(column)), [])

    def has_readers(self, asset: str) -> bool:
        self._grown(asset)
        return asset in self._all

    def walk(
        self,
        start: str,
        columns: frozenset[str],
        keep: Callable[[Edge], bool] | None = None,
        absorbs: Callable[[Edge], bool] | None = None,
    ) -> dict[str, Reach]:
        """Follow lineage from ``start``'s affected columns to every asset it reaches (breadth first).

        ``keep`` filters the first hop (the readers of ``start`` itself); ``absorbs`` stops the walk
        at any hop whose reader column does not pass the change on (a cast back to the old type)."""
        reached: dict[str, Reach] = {start: Reach(start, columns, (start,))}
        queue: deque[tuple[str, frozenset[str]]] = deque([(start, columns)])
        while queue:
            fqn, affected = queue.popleft()
            path = reached[fqn].path
            grown: dict[str, set[str]] = {}
            for column in sorted(affected):  # set order varies per process: the paths would too
                for edge in self.readers(fqn, column):
                    if edge.downstream == fqn:
                        continue
                    if keep is not None and fqn == start and not keep(edge):
                        continue
                    if absorbs is not None and absorbs(edge):
                        continue
                    grown.setdefault(edge.downstream, set()).add(_affected(edge, column))
            for downstream, cols in grown.items():
                new = frozenset({ALL}) if ALL in cols else frozenset(cols)
                seen = reached.get(downstream)
                if seen is None:
                    reached[downstream] = Reach(downstream, new, (*path, downstream))
                    queue.append((downstream, new))
                    continue
                if ALL in seen.columns or new <= seen.columns:
                    continue
                merged = frozenset({ALL}) if ALL in new else seen.columns | new
                reached[downstream] = Reach(downstream, merged, seen.path)
                queue.append((downstream, merged - seen.columns if ALL not in merged else merged))
        return reached


def _depends_on(snapshot: Snapshot) -> Iterator[tuple[str, str]]:
    return ((parent, a.fqn) for a in snapshot.assets.values() for parent in a.depends_on)


def _affected(edge: Edge, column: str) -> str:
    """The reader's column ``edge`` passes a change of ``column`` on to (``ALL``: every one)."""
    if edge.usage == "star" and column != ALL:
        return column  # ``select *`` passes a column on under its own name
    if edge.downstream_column is None or edge.usage in WHOLE_USAGES:
        return ALL
    return column_key(edge.downstream_column)
