"""The asset explorer (``/assets``: search by name, column, owner, repository) and each asset's
page (``/assets/{fqn}``): columns, owner, contract versions, consumers, the column-level lineage
picture, the audit trend and the open proposals that touch it.

The registry holds names, columns, owners and lineage, not data or SQL: its pages need a signed-in
person (any), while a proposal's page needs access to its repository.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlite_utils
from aiohttp import web

from app.api.assets import observed_readers
from app.api.graph import Graph, GraphIndex
from app.store import contracts as contract_sql
from app.store import registry as reg_sql
from app.web.core import need_sign_in, problem, render, session_of, store_of
from app.web.lineage import MAX_NODES, EdgeIndex, draw, edge_index

PAGE_SIZE = 50
MAX_DEPTH = 6
GRAPH_KEY: web.AppKey[Graph] = web.AppKey("web_graph", Graph)


@dataclass
class _Edges:
    current: EdgeIndex | None = None


EDGES_KEY: web.AppKey[_Edges] = web.AppKey("web_edges", _Edges)


async def lineage_indexes(request: web.Request) -> tuple[GraphIndex, EdgeIndex]:
    """The graph index (rebuilt when the registry changes) and its edges both ways."""
    index = await request.app[GRAPH_KEY].current(store_of(request))
    holder = request.app[EDGES_KEY]
    if holder.current is None or holder.current.version != index.version:
        holder.current = await store_of(request).read(edge_index)
    return index, holder.current


async def explorer(request: web.Request) -> web.Response:
    if session_of(request) is None:
        return need_sign_in(request)
    query = {k: request.query.get(k, "").strip()[:200] for k in ("q", "column", "owner", "repo")}
    after = request.query.get("after", "0")
    after_id = int(after) if after.isascii() and after.isdigit() and len(after) < 18 else 0
    found = await store_of(request).read(lambda db: reg_sql.search_assets(
        db, q=query["q"] or None, owner=query["owner"] or None, repo=query["repo"] or None,
        column=query["column"] or None, after_id=after_id, limit=PAGE_SIZE + 1,
    ))
    more = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    return render(request, "assets.html", {
        "query": query, "assets": found, "more": more, "next_after": found[-1]["id"] if found else 0,
        "searched": any(query.values()),
    }, title="Assets")


def _svg_bars(runs: list[tuple[str, bool]], width: int = 360, height: int = 60) -> list[dict[str, object]]:
    """Bars for the audit trend: one per run, oldest left, red when it failed."""
    if not runs:
        return []
    step = width / len(runs)
    return [{"x": round(i * step + 1, 1), "w": max(round(step - 2, 1), 1), "failed": failed, "label": when,
             "h": height - 8 if failed else (height - 8) / 2}
            for i, (when, failed) in enumerate(runs)]


async def asset_page(request: web.Request) -> web.Response:
    if session_of(request) is None:
        return need_sign_in(request)
    fqn = request.match_info["fqn"].lower()
    store = store_of(request)
    asset = await store.read(lambda db: reg_sql.get_asset(db, fqn))
    index, edges = await lineage_indexes(request)
    if asset is None and not index.knows(fqn):
        return problem(request, 404, "No such asset", f"The registry knows no asset named {fqn}. Search for it on the Assets page.")
    depth_text = request.query.get("depth", "2")
    depth = min(int(depth_text), MAX_DEPTH) if depth_text.isascii() and depth_text.isdigit() and len(depth_text) < 3 else 2
    depth = max(depth, 1)
    columns = [c["name"] for c in (asset or {}).get("columns", [])]
    selected = request.query.get("column") or None
    if selected is not None and selected.lower() not in {c.lower() for c in columns}:
        selected = None
    picture = draw(index, edges, fqn, columns, depth=depth, selected=selected)

    def read_rest(db: sqlite_utils.Database) -> tuple[object, ...]:
        contracts = contract_sql.list_contracts(db, fqn)
        runs = reg_sql.audit_runs(db, fqn, limit=30)
        readers = reg_sql.direct_readers(db, fqn)
        pattern = f'%"asset":"{fqn}"%'
        touching = db.execute(
            "SELECT id, repo, pr_number, title, conclusion FROM proposals WHERE status = 'open' AND analysis LIKE ?"
            " ORDER BY id DESC LIMIT 20", (pattern,),
        ).fetchall()
        observed = observed_readers(db, fqn, today=dt.datetime.now(dt.UTC).date())
        return contracts, runs, readers, touching, observed

    contracts, runs, readers, touching, observed = await store.read(read_rest)
    trend = [(run.run_at.strftime("%Y-%m-%d %H:%M"), run.failed) for _, run in reversed(runs)]
    return render(request, "asset.html", {
        "fqn": fqn, "asset": asset, "columns": (asset or {}).get("columns", []),
        "picture": picture, "depth": depth, "max_depth": MAX_DEPTH, "max_nodes": MAX_NODES, "selected": selected,
        "contracts": [
            {"version": c.version, "repo": c.repo, "breaking": c.breaking, "pr": c.pr_number,
             "at": dt.datetime.fromtimestamp(c.published_at, dt.UTC).strftime("%Y-%m-%d"),
             "changes": [ch.get("message") or ch.get("rule") for ch in c.changes]}
            for c in reversed(contracts)
        ],
        "readers": readers,
        "exposures": index.exposures.get(fqn, []),
        "registrations": index.registrations.get(fqn, []),
        "observed": observed,
        "runs": [run for _, run in runs[:10]],
        "bars": _svg_bars(trend),
        "failures": sum(1 for _, failed in trend if failed),
        "touching": [dict(zip(("id", "repo", "number", "title", "conclusion"), row, strict=True)) for row in touching],
    }, title=fqn)


def routes() -> list[web.RouteDef]:
    return [web.get("/assets", explorer), web.get("/assets/{fqn}", asset_page)]


def setup_state(app: web.Application) -> None:
    app[GRAPH_KEY] = Graph()
    app[EDGES_KEY] = _Edges()
