"""Assets, their contract versions and their impact (``/assets...``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web

from app.api import auth
from app.api.common import id_cursor, iso_time, json_response, page, page_params, principal, store
from app.api.errors import ApiError, not_found
from app.api.graph import Graph, impact
from app.store import contracts as contract_sql
from app.store import registry as reg_sql
from rules.diff import diff_snapshots
from rules.model import Asset, Column, Config, Snapshot

GRAPH_KEY: web.AppKey[Graph] = web.AppKey("registry_graph", Graph)


def fqn_of(request: web.Request) -> str:
    fqn = request.match_info["fqn"].strip().lower()
    if not fqn or len(fqn) > 300:
        raise ApiError(400, "invalid_request", "an asset name is 1 to 300 characters")
    return fqn


async def search_assets(request: web.Request) -> web.Response:
    auth.require(principal(request), "read")
    limit, cursor = page_params(request)
    after = id_cursor(cursor)
    q, owner, repo = request.query.get("q"), request.query.get("owner"), request.query.get("repo")
    rows = await store(request).read(
        lambda db: reg_sql.search_assets(db, q=q, owner=owner, repo=repo, after_id=after, limit=limit + 1)
    )
    last = rows[limit - 1]["id"] if len(rows) > limit else None
    return page(request, rows, limit, last)


async def get_asset(request: web.Request) -> web.Response:
    """The asset with its columns, owner, contract versions and consumers (readers, exposures, registrations)."""
    auth.require(principal(request), "read")
    fqn = fqn_of(request)
    repo = request.query.get("repo")

    def read(db: Any) -> dict[str, Any] | None:
        asset = reg_sql.get_asset(db, fqn, repo=repo)
        if asset is None:
            return None
        asset["contracts"] = [
            {"version": c.version, "breaking": c.breaking, "pr_number": c.pr_number, "published_at": iso_time(c.published_at)}
            for c in contract_sql.list_contracts(db, fqn, repo=asset["repo"])
        ]
        asset["consumers"] = {
            "assets": reg_sql.direct_readers(db, fqn),
            "exposures": [
                {"name": e["name"], "type": e["type"], "url": e["url"], "team": e["owner_team"], "repo": e["repo"]}
                for e in reg_sql.exposures_of(db, fqn)
            ],
            "registrations": reg_sql.registrations_for(db, [fqn]).get(fqn, []),
        }
        return asset

    asset = await store(request).read(read)
    if asset is None:
        raise not_found(f"no asset {fqn!r} in the registry: search with GET /api/v1/assets?q=")
    return json_response(asset)


def _contract_dict(contract: contract_sql.Contract) -> dict[str, Any]:
    return {
        "asset": contract.asset,
        "repo": contract.repo,
        "version": contract.version,
        "breaking": contract.breaking,
        "pr_number": contract.pr_number,
        "head_sha": contract.head_sha,
        "published_at": iso_time(contract.published_at),
        "schema": contract.schema,
        "changes": list(contract.changes),
    }


async def list_contracts(request: web.Request) -> web.Response:
    auth.require(principal(request), "read")
    fqn = fqn_of(request)
    repo = request.query.get("repo")
    contracts = await store(request).read(lambda db: contract_sql.list_contracts(db, fqn, repo=repo))
    return json_response({"asset": fqn, "items": [_contract_dict(c) for c in contracts]})


def _asset_from_schema(fqn: str, schema: dict[str, Any] | None) -> Asset | None:
    if schema is None:
        return None
    columns = tuple(
        Column(name=str(c.get("name")), type=str(c.get("type") or "UNKNOWN"), nullable=c.get("nullable"),
               description=str(c.get("description") or ""), position=i)
        for i, c in enumerate(schema.get("columns") or [])
    )
    return Asset(fqn=fqn, kind=schema.get("kind") or "model", path=schema.get("path"), columns=columns,
                 columns_known=bool(schema.get("columns_known", True)), materialized=schema.get("materialized"))


def contract_diff(fqn: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The engine's findings between two published schemas of one asset."""
    base, head = Snapshot(), Snapshot()
    old, new = _asset_from_schema(fqn, before), _asset_from_schema(fqn, after)
    if old is not None:
        base.assets[fqn] = old
    if new is not None:
        head.assets[fqn] = new
    return [asdict(c) for c in diff_snapshots(base, head, Config())]


async def get_contract(request: web.Request) -> web.Response:
    auth.require(principal(request), "read")
    fqn = fqn_of(request)
    version = request.match_info["version"]
    repo = request.query.get("repo")
    diff_from = request.query.get("diff_from")
    contracts = await store(request).read(lambda db: contract_sql.list_contracts(db, fqn, repo=repo))
    by_version = {c.version: c for c in contracts}
    contract = by_version.get(version)
    if contract is None:
        known = ", ".join(sorted(by_version)) or "none yet"
        raise not_found(f"{fqn} has no contract version {version!r} (versions: {known})")
    answer = _contract_dict(contract)
    if diff_from is not None:
        other = by_version.get(diff_from)
        if other is None:
            known = ", ".join(sorted(by_version))
            raise ApiError(400, "invalid_request", f"diff_from={diff_from!r} is not a version of {fqn} (versions: {known})")
        answer["diff_from"] = diff_from
        answer["diff"] = contract_diff(fqn, dict(other.schema) if other.schema else None,
                                       dict(contract.schema) if contract.schema else None)
    return json_response(answer)


async def get_impact(request: web.Request) -> web.Response:
    """Who is downstream of the asset (or one column of it), transitively, and which teams."""
    auth.require(principal(request), "read")
    fqn = fqn_of(request)
    column = request.query.get("column") or None
    if column is not None and len(column) > 200:
        raise ApiError(400, "invalid_request", "column names are at most 200 characters")
    graph = request.config_dict[GRAPH_KEY]
    index = await graph.current(store(request))
    if not index.knows(fqn):
        raise not_found(f"no asset {fqn!r} in the registry graph: sync its repository or upload its manifest first")
    return json_response(impact(index, fqn, column))


def routes() -> list[web.RouteDef]:
    return [
        web.get("/assets", search_assets),
        web.get("/assets/{fqn}", get_asset),
        web.get("/assets/{fqn}/contracts", list_contracts),
        web.get("/assets/{fqn}/contracts/{version}", get_contract),
        web.get("/assets/{fqn}/impact", get_impact),
    ]
