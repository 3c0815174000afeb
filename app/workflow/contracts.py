"""What a merged pull request publishes: a new contract version for every asset it changed.

The schema published is the asset as the merge leaves it: the base branch's tree with the pull
request's files applied (the same view the analysis used), built by the engine for just the
changed paths. The bump follows the changes the last analysis found for the asset: major for a
breaking one, minor for any other schema change, patch when only metadata moved. Each version is
also an audit-log entry, and a re-delivered ``closed`` publishes nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import sqlite_utils

from app import engine
from app.errors import PermanentError
from app.queue import JobContext
from app.store import contracts as contract_sql
from app.store import proposals as sql
from app.store.proposals import Proposal
from app.workflow import jobs
from app.workflow.analysis import run_engine
from app.workflow.checkout import PullRef, checkout, installation_client, raise_fetch_failure
from app.workflow.serialize import analysis_from_json
from rules.model import Asset, Change

log = logging.getLogger(__name__)


def bump_for(changes: Iterable[Change]) -> str | None:
    """``major`` | ``minor`` | ``patch`` for one asset's changes; None when there are none."""
    severities = {c.severity for c in changes}
    if not severities:
        return None
    if "breaking" in severities:
        return "major"
    if severities & {"review", "safe"}:
        return "minor"
    return "patch"


def schema_of(asset: Asset | None) -> dict[str, Any] | None:
    if asset is None:
        return None
    return {
        "fqn": asset.fqn,
        "kind": asset.kind,
        "path": asset.path,
        "materialized": asset.materialized,
        "columns_known": asset.columns_known,
        "columns": [
            {"name": c.name, "type": c.type, "nullable": c.nullable, "description": c.description}
            for c in asset.columns
        ],
    }


async def publish_merged(ctx: JobContext, proposal: Proposal, ref: PullRef) -> list[tuple[str, str]]:
    """Publish the versions; returns (asset, version) pairs written now."""
    gh = await installation_client(ctx, ref.installation_id)
    if proposal.analysis and proposal.analysed_head_sha == ref.head_sha:
        analysis = analysis_from_json(proposal.analysis)
    else:
        analysis, _ = await run_engine(ctx, gh, ref)
    by_asset: dict[str, list[Change]] = {}
    for change in analysis.changes:
        by_asset.setdefault(change.asset, []).append(change)
    if not by_asset:
        return []
    source = await checkout(ctx, gh, ref)
    try:
        head = await engine.pool_for(ctx.settings).run(
            jobs.build_side,
            source.head.entries,
            source.config,
            frozenset(source.changed),
            seconds=engine.analysis_budget(ctx.settings),
            blobs=source.fetcher.held(e.sha for e in source.head.entries.values()),
            reader=source.fetcher.fetch_from_thread,
            cache_dir=engine.cache_dir(ctx.settings),
        )
    except (engine.WorkerKilled, engine.EngineFailed) as exc:
        raise_fetch_failure(source.fetcher)
        raise PermanentError(
            f"{ref.repo}#{ref.number}: the merged head could not be read to publish its contracts: {exc}"
        ) from None
    finally:
        await source.fetcher.flush()
    raise_fetch_failure(source.fetcher)

    def write(db: sqlite_utils.Database) -> list[tuple[str, str]]:
        published: list[tuple[str, str]] = []
        for asset, changes in sorted(by_asset.items()):
            bump = bump_for(changes)
            if bump is None:
                continue
            version = contract_sql.publish(
                db,
                repo_id=ref.repo_id,
                repo=ref.repo,
                asset=asset,
                bump=bump,
                schema=schema_of(head.assets.get(asset)),
                changes=[asdict(c) for c in changes],
                pr_number=ref.number,
                head_sha=ref.head_sha,
            )
            if version is None:
                continue
            published.append((asset, version))
            sql.audit(
                db,
                actor=None,
                action="contract_published",
                repo=ref.repo,
                pr_number=ref.number,
                detail={"asset": asset, "version": version, "bump": bump},
            )
        return published

    published = await ctx.store.write(write)
    log.info("%s#%s merged: published %s", ref.repo, ref.number, published)
    return published
