"""The PR workflow's tables through the real store: proposals, acks, idempotency, caches, audit."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.store import proposals as sql
from app.workflow.acks import AckRecord


async def test_a_proposal_is_one_row_per_pull_request_updated_in_place(store: Any) -> None:
    first = await store.write(
        lambda db: sql.upsert_proposal(db, repo_id=7, pr_number=3, fields={"repo": "acme/wh", "head_sha": "a"})
    )
    again = await store.write(
        lambda db: sql.upsert_proposal(db, repo_id=7, pr_number=3, fields={"repo": "acme/wh", "head_sha": "b"})
    )
    assert first.id == again.id and again.head_sha == "b"
    assert len(await store.read(lambda db: sql.list_proposals(db))) == 1


async def test_a_teams_latest_response_replaces_the_previous_and_unack_removes_it(store: Any) -> None:
    proposal = await store.write(
        lambda db: sql.upsert_proposal(db, repo_id=7, pr_number=3, fields={"repo": "acme/wh"})
    )
    deadline = dt.date(2026, 12, 31)
    await store.write(
        lambda db: sql.put_ack(db, proposal.id, AckRecord("growth", "migrating", "alice", "fp", deadline))
    )
    await store.write(lambda db: sql.put_ack(db, proposal.id, AckRecord("growth", "ack", "bob", "fp")))
    acks = await store.read(lambda db: sql.list_acks(db, proposal.id))
    assert acks["growth"].response == "ack" and acks["growth"].user == "bob" and acks["growth"].deadline is None
    assert await store.write(lambda db: sql.delete_ack(db, proposal.id, "growth"))
    assert await store.read(lambda db: sql.list_acks(db, proposal.id)) == {}


async def test_a_comment_is_handled_once(store: Any) -> None:
    assert await store.write(lambda db: sql.claim_comment(db, 99, None))
    assert not await store.write(lambda db: sql.claim_comment(db, 99, None))


async def test_blobs_and_trees_are_cached_by_sha(store: Any) -> None:
    await store.write(lambda db: sql.put_blobs(db, {"abc": b"select 1", "def": b"select 2"}))
    assert await store.read(lambda db: sql.get_blobs(db, ["abc", "def", "zzz"])) == {
        "abc": b"select 1",
        "def": b"select 2",
    }
    await store.write(lambda db: sql.put_tree(db, 7, "c0ffee", [{"path": "a.sql", "sha": "abc", "size": 8}]))
    assert await store.read(lambda db: sql.get_tree(db, 7, "c0ffee")) == [{"path": "a.sql", "sha": "abc", "size": 8}]
    assert await store.read(lambda db: sql.get_tree(db, 8, "c0ffee")) is None


async def test_the_audit_log_keeps_who_did_what(store: Any) -> None:
    await store.write(
        lambda db: sql.audit(db, actor="root", action="override", repo="acme/wh", pr_number=3, detail={"reason": "r"})
    )
    [entry] = await store.read(lambda db: sql.list_audit(db, repo="acme/wh"))
    assert entry["actor"] == "root" and entry["action"] == "override" and entry["detail"] == {"reason": "r"}
