"""The column-level lineage picture: a neighbourhood of the graph, laid out in layers on the server
and drawn as inline SVG (readable with JavaScript off; a small script only highlights a column).

Layers: the asset in focus in the middle, what it reads to the left (one layer per hop), what reads
it to the right. Within a layer, assets are ordered by the mean position of their neighbours in the
layer before (the barycenter heuristic, a sweep each way), which keeps edges short and mostly
parallel. Each asset is a box listing the columns that lineage passes through; an edge joins a
column to the column it feeds, or box to box when the whole asset is read.

The walk itself is the engine's, through :func:`app.api.graph.impact` (which downstream columns a
selected column reaches); this module only indexes the registry's edges both ways to find the
neighbourhood, and lays it out.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import sqlite_utils

from app.api.graph import GraphIndex, impact
from app.store import registry as reg_sql
from app.store.registry import EdgeRow
from rules.lineage import ALL
from rules.model import column_key

NODE_WIDTH = 230
HEADER = 24
ROW = 17
MAX_ROWS = 8
GAP_X = 90
GAP_Y = 18
MARGIN = 12
MAX_NODES = 200


@dataclass
class EdgeIndex:
    """The registry's edges, by upstream and by downstream asset (built once per graph version)."""

    version: int
    out: dict[str, list[EdgeRow]] = field(default_factory=dict)
    into: dict[str, list[EdgeRow]] = field(default_factory=dict)


def edge_index(db: sqlite_utils.Database) -> EdgeIndex:
    """Every edge of the registry both ways, with the graph version it belongs to (one read)."""
    edges = EdgeIndex(reg_sql.graph_version(db))
    for edge in reg_sql.all_edges(db):
        edges.out.setdefault(edge.upstream, []).append(edge)
        edges.into.setdefault(edge.downstream, []).append(edge)
    return edges


@dataclass(frozen=True)
class Box:
    fqn: str
    x: int
    y: int
    height: int
    layer: int
    columns: tuple[str, ...]
    hidden: int
    """Columns not drawn (the box says "+N more")."""
    hot: bool
    hot_columns: frozenset[str]
    hits: dict[str, str]
    """column → the focus columns (space separated) whose change reaches it, for the script."""
    node_hits: str = ""
    """The focus columns whose change reaches this asset at all (space separated)."""


@dataclass(frozen=True)
class Line:
    path: str
    hot: bool
    hits: str


@dataclass(frozen=True)
class Picture:
    width: int
    height: int
    boxes: tuple[Box, ...]
    lines: tuple[Line, ...]
    truncated: bool
    """More assets were in reach than :data:`MAX_NODES` (or the depth): the page offers to expand."""


def neighbourhood(edges: EdgeIndex, focus: str, depth: int, limit: int = MAX_NODES) -> tuple[dict[str, int], bool]:
    """Asset → layer: upstream assets negative, downstream positive, breadth first to ``depth``
    hops each way, at most ``limit`` assets. True when something in reach was left out."""
    layers = {focus: 0}
    truncated = False
    for direction in (1, -1):
        frontier = [focus]
        for hop in range(1, depth + 1):
            nxt: list[str] = []
            for fqn in frontier:
                links = edges.out.get(fqn, []) if direction == 1 else edges.into.get(fqn, [])
                for edge in links:
                    other = edge.downstream if direction == 1 else edge.upstream
                    if other in layers:
                        continue
                    if len(layers) >= limit:
                        truncated = True
                        break
                    layers[other] = hop * direction
                    nxt.append(other)
            frontier = nxt
        if frontier and any(edges.out.get(f) if direction == 1 else edges.into.get(f) for f in frontier):
            truncated = True
    return layers, truncated


def reach(index: GraphIndex, focus: str, columns: list[str]) -> dict[tuple[str, str], set[str]]:
    """(asset, column key) → the focus columns whose change reaches it (``*``: every column)."""
    hits: dict[tuple[str, str], set[str]] = defaultdict(set)
    for column in columns:
        key = column_key(column)
        hits[(focus, key)].add(key)
        for item in impact(index, focus, column)["downstream"]:
            for reached in item["columns"]:
                hits[(item["asset"], reached)].add(key)
    return hits


def draw(
    index: GraphIndex,
    edges: EdgeIndex,
    focus: str,
    focus_columns: list[str],
    *,
    depth: int = 2,
    selected: str | None = None,
) -> Picture:
    layers, truncated = neighbourhood(edges, focus, depth)
    inside = [e for fqn in layers for e in edges.out.get(fqn, []) if e.downstream in layers and e.downstream != fqn]
    # the columns each box lists: the focus asset's own, and every column an edge in view touches
    shown: dict[str, list[str]] = {fqn: [] for fqn in layers}
    for column in focus_columns:
        shown[focus].append(column_key(column))
    for e in inside:
        for fqn, col in ((e.upstream, e.upstream_column), (e.downstream, e.downstream_column)):
            if col and column_key(col) not in shown[fqn]:
                shown[fqn].append(column_key(col))
    hits = reach(index, focus, focus_columns)
    reached_by: dict[str, set[str]] = defaultdict(set)
    for (fqn, _), by in hits.items():
        reached_by[fqn] |= by
    chosen = column_key(selected) if selected else None

    # order within layers: alphabetical first, then barycenter sweeps
    by_layer: dict[int, list[str]] = defaultdict(list)
    for fqn, layer in layers.items():
        by_layer[layer].append(fqn)
    for names in by_layer.values():
        names.sort()
    neighbours: dict[str, list[str]] = defaultdict(list)
    for e in inside:
        neighbours[e.downstream].append(e.upstream)
        neighbours[e.upstream].append(e.downstream)
    order = sorted(by_layer)
    for sweep in (order, list(reversed(order))):
        for i, layer in enumerate(sweep[1:], start=1):
            before = {fqn: pos for pos, fqn in enumerate(by_layer[sweep[i - 1]])}
            def centre(fqn: str, before: dict[str, int] = before) -> float:
                near = [before[n] for n in neighbours[fqn] if n in before]
                return sum(near) / len(near) if near else float(len(before))
            by_layer[layer].sort(key=centre)

    boxes: dict[str, Box] = {}
    height = 0
    for column_number, layer in enumerate(order):
        y = MARGIN
        for fqn in by_layer[layer]:
            listed = shown[fqn]
            rows = listed[:MAX_ROWS]
            hidden = len(listed) - len(rows)
            box_height = HEADER + ROW * (len(rows) + (1 if hidden else 0)) + 6
            col_hits = {c: " ".join(sorted(hits.get((fqn, c), set()) | hits.get((fqn, ALL), set()))) for c in rows}
            whole = hits.get((fqn, ALL), set())
            hot_columns = frozenset(
                c for c in rows if chosen and (chosen in hits.get((fqn, c), set()) or chosen in whole)
            )
            is_hot = bool(chosen) and chosen in reached_by.get(fqn, set())
            boxes[fqn] = Box(fqn, MARGIN + column_number * (NODE_WIDTH + GAP_X), y, box_height, layer,
                             tuple(rows), hidden, is_hot, hot_columns, col_hits,
                             " ".join(sorted(reached_by.get(fqn, set()))))
            y += box_height + GAP_Y
        height = max(height, y)

    def anchor(fqn: str, column: str | None, side: int) -> tuple[float, float]:
        box = boxes[fqn]
        x = box.x + (NODE_WIDTH if side > 0 else 0)
        key = column_key(column) if column else None
        if key in box.columns:
            return x, box.y + HEADER + ROW * box.columns.index(key) + ROW / 2
        return x, box.y + HEADER / 2

    lines = []
    for e in inside:
        if layers[e.downstream] <= layers[e.upstream]:
            continue  # an edge within a layer or backwards (a cycle): left out of the picture
        x1, y1 = anchor(e.upstream, e.upstream_column, 1)
        x2, y2 = anchor(e.downstream, e.downstream_column, -1)
        bend = (x2 - x1) / 2
        up_hits = hits.get((e.upstream, column_key(e.upstream_column)) if e.upstream_column else (e.upstream, ALL), set())
        up_hits = up_hits | hits.get((e.upstream, ALL), set())
        down_key = column_key(e.downstream_column) if e.downstream_column else ALL
        down_hits = hits.get((e.downstream, down_key), set()) | hits.get((e.downstream, ALL), set())
        both = up_hits & down_hits
        lines.append(Line(
            f"M{x1:.0f},{y1:.0f} C{x1 + bend:.0f},{y1:.0f} {x2 - bend:.0f},{y2:.0f} {x2:.0f},{y2:.0f}",
            bool(chosen) and chosen in both, " ".join(sorted(both)),
        ))
    width = MARGIN * 2 + len(order) * NODE_WIDTH + (len(order) - 1) * GAP_X
    return Picture(width, height + MARGIN, tuple(boxes.values()), tuple(lines), truncated)


def draw_paths(paths: list[tuple[str, ...]]) -> Picture:
    """A picture of impact paths (changed asset → … → consumer), for the proposal page."""
    layers: dict[str, int] = {}
    links: set[tuple[str, str]] = set()
    for path in paths:
        for i, fqn in enumerate(path):
            layers[fqn] = max(layers.get(fqn, 0), i)
        links.update(zip(path, path[1:], strict=False))
    by_layer: dict[int, list[str]] = defaultdict(list)
    for fqn, layer in sorted(layers.items()):
        by_layer[layer].append(fqn)
    boxes: dict[str, Box] = {}
    height = 0
    for layer in sorted(by_layer):
        y = MARGIN
        for fqn in by_layer[layer]:
            boxes[fqn] = Box(fqn, MARGIN + layer * (NODE_WIDTH + GAP_X), y, HEADER + 6, layer, (), 0,
                             layer == 0, frozenset(), {})
            y += HEADER + 6 + GAP_Y
        height = max(height, y)
    lines = []
    for up, down in sorted(links):
        a, b = boxes[up], boxes[down]
        if b.layer <= a.layer:
            continue
        x1, y1, x2, y2 = a.x + NODE_WIDTH, a.y + HEADER / 2 + 3, b.x, b.y + HEADER / 2 + 3
        bend = (x2 - x1) / 2
        lines.append(Line(f"M{x1:.0f},{y1:.0f} C{x1 + bend:.0f},{y1:.0f} {x2 - bend:.0f},{y2:.0f} {x2:.0f},{y2:.0f}",
                          False, ""))
    columns = (max(by_layer) + 1) if by_layer else 0
    width = MARGIN * 2 + columns * NODE_WIDTH + max(columns - 1, 0) * GAP_X
    return Picture(width, height + MARGIN, tuple(boxes.values()), tuple(lines), False)
