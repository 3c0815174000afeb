"""SQL for webhook deliveries, which double as the durable job queue.

Plain functions over a :class:`~app.store.db.Database` (either engine); :class:`app.store.Store`
runs them on the writer or a reader thread (SQLite) or a pooled connection (PostgreSQL).
A delivery's life: ``queued`` → ``running`` → ``done``, or back to ``queued``
with a later ``run_after`` (retry), or ``failed`` with ``last_error`` (kept for replay, never
dropped), or ``quarantined`` when its analysis ended its worker process twice (kept like a failed
one, never run again until replayed; ``worker_kills`` counts). ``seq`` orders jobs: arrival order, and a replayed delivery goes to the back.

Several replicas (PostgreSQL): a claim takes the job's row with ``FOR UPDATE SKIP LOCKED`` (two
replicas claiming at once take different jobs, neither waits for the other) and writes
``claimed_by`` and ``lease_until``; the replica renews the lease while the job runs. A job whose
lease ran out (its replica died) is queued again by :func:`recover_running`, then claimed like any
other. A pull request's jobs keep their order across replicas: a job is claimable only while no
job of its ordering key is ``running`` (whatever replica, live lease or not yet recovered) and none
is queued ahead of it. An outcome is recorded only by the replica holding the job, so a replica
that lost its lease cannot free the key while the job runs elsewhere.

Payloads are stored zlib-compressed (level 1) as BLOBs: GitHub's JSON shrinks about 5-7 times,
and at hundreds of 25 KB deliveries a second the bytes written (WAL, then checkpoint) are what
limits intake on an ordinary disk. Read them through :func:`decode_payload` (older rows stored as
TEXT read back unchanged).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.store.db import POSTGRESQL, Database, dialect_of

STATUSES = ("queued", "running", "done", "failed", "quarantined")
_COLUMNS = (
    "id, delivery_id, event, action, ordering_key, installation_id, repository, status, seq,"
    " attempts, last_error, received_at, run_after, started_at, finished_at, worker_kills, claimed_by, lease_until"
)
LEGACY_LEASE_SECONDS = 900
"""How long a job claimed without a lease (by a replica of an older version, during an upgrade) is
left to it: longer than an attempt may run (``TESSERA_JOB_TIMEOUT``, 300 s by default)."""
_ROWS_PER_INSERT = 400  # 10 parameters a row, well under SQLite's 32,766 variables


@dataclass(frozen=True)
class NewDelivery:
    """A verified webhook delivery about to be stored."""

    delivery_id: str
    event: str
    action: str | None
    ordering_key: str
    installation_id: int | None
    repository: str | None
    payload: str
    received_at: float


@dataclass(frozen=True)
class Delivery:
    """A stored delivery (a job). ``payload`` is filled only when asked for."""

    id: int
    delivery_id: str
    event: str
    action: str | None
    ordering_key: str
    installation_id: int | None
    repository: str | None
    status: str
    seq: int
    attempts: int
    last_error: str | None
    received_at: float
    run_after: float
    started_at: float | None
    finished_at: float | None
    worker_kills: int = 0
    """Analyses of this delivery that ended their worker process (see ``count_kill``)."""
    claimed_by: str | None = None
    """The replica running it (or that ran it last)."""
    lease_until: float | None = None
    """While running: when another replica may take it over unless the lease is renewed."""
    payload: str | None = None
    compressed: bytes | None = field(default=None, repr=False, compare=False)
    """The payload as stored, when a claim left decompressing it to the worker."""

    def payload_text(self) -> str | None:
        """The payload's JSON text, decompressed here if the claim did not."""
        return self.payload if self.compressed is None else decode_payload(self.compressed)

    @property
    def event_action(self) -> str:
        return f"{self.event}.{self.action}" if self.action else self.event


def encode_payload(text: str) -> bytes:
    """How a payload is stored: UTF-8, zlib level 1 (fast; most of the gain of higher levels)."""
    return zlib.compress(text.encode(), 1)


def decode_payload(value: object) -> str | None:
    """A stored payload back to JSON text."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return zlib.decompress(value).decode()
    return str(value)


def _row_to_delivery(row: Sequence[object], payload: object = None) -> Delivery:
    return Delivery(*row, payload=decode_payload(payload))  # type: ignore[arg-type]


def insert_many(
    db: Database, deliveries: Sequence[NewDelivery], encoded: Sequence[bytes] | None = None
) -> set[str]:
    """Insert new deliveries as queued jobs in one statement per chunk; return the ids inserted.

    ``encoded`` are the payloads already passed through :func:`encode_payload` (the store does that
    on the caller's thread, so the single writer spends its time writing)."""
    if encoded is None:
        encoded = [encode_payload(d.payload) for d in deliveries]
    inserted: set[str] = set()
    for start in range(0, len(deliveries), _ROWS_PER_INSERT):
        chunk = deliveries[start : start + _ROWS_PER_INSERT]
        params: list[object] = []
        for offset, d in enumerate(chunk, start=1):
            params.extend(
                (
                    d.delivery_id, d.event, d.action, d.ordering_key, d.installation_id,
                    d.repository, encoded[start + offset - 1], offset, d.received_at, d.received_at,
                )
            )
        # SQLite: seq continues from the table's highest, read inside the statement (one round trip
        # from the writer thread fewer per batch: each costs a GIL hand-over while the event loop is
        # busy); the single writer makes that safe. PostgreSQL: from a sequence, as replicas insert
        # at once (the offset parameter is then unused, but kept so both spellings take the same rows)
        seq = (
            "nextval('delivery_order') + 0 * ?" if dialect_of(db) == POSTGRESQL
            else "(SELECT coalesce(max(seq), 0) FROM deliveries) + ?"
        )
        values = ",".join([f"(?, ?, ?, ?, ?, ?, ?, {seq}, ?, ?, 'queued', 0)"] * len(chunk))
        sql = (
            "INSERT INTO deliveries (delivery_id, event, action, ordering_key, installation_id,"
            " repository, payload, seq, received_at, run_after, status, attempts) VALUES "
            + values
            + " ON CONFLICT(delivery_id) DO NOTHING RETURNING delivery_id"
        )
        inserted.update(row[0] for row in db.execute(sql, params).fetchall())
    return inserted


@dataclass(frozen=True)
class Claim:
    """Who claims a job, when, and until when the lease holds."""

    now: float
    replica: str
    lease_until: float


def claim_next(db: Database, claim: Claim) -> Delivery | None:
    """The oldest due job whose ordering key has nothing running and nothing queued before it,
    marked running under ``claim``'s lease.

    One statement, and the payload left compressed for the worker to open: on SQLite this runs on
    the store's single writer, where every extra call to SQLite or zlib is one more hand-over of the
    GIL, and the writer is what limits intake under load. On PostgreSQL the chosen row is locked
    with ``SKIP LOCKED``: a job another replica is claiming right now is passed over, not waited for."""
    lock = "FOR UPDATE OF d SKIP LOCKED" if dialect_of(db) == POSTGRESQL else ""
    row = db.execute(
        f"""
        UPDATE deliveries SET status = 'running', attempts = attempts + 1, started_at = ?,
          claimed_by = ?, lease_until = ?
        WHERE id = (
          SELECT d.id FROM deliveries AS d
          WHERE d.status = 'queued' AND d.run_after <= ?
            AND NOT EXISTS (
              SELECT 1 FROM deliveries AS e
              WHERE e.ordering_key = d.ordering_key
                AND (e.status = 'running' OR (e.status = 'queued' AND e.seq < d.seq))
            )
          ORDER BY d.seq
          LIMIT 1
          {lock}
        )
        RETURNING {_COLUMNS}, payload
        """,
        (claim.now, claim.replica, claim.lease_until, claim.now),
    ).fetchone()
    if row is None:
        return None
    stored = row[-1]
    if isinstance(stored, bytes):
        return Delivery(*row[:-1], compressed=stored)  # type: ignore[arg-type]
    return _row_to_delivery(row[:-1], payload=stored)


@dataclass(frozen=True)
class JobOutcome:
    """How a job's attempt ended; the worker records it together with its next claim."""

    id: int
    status: str
    """``done``, ``queued`` (a retry at ``run_after``), ``failed``, ``quarantined``, or ``lost``
    (another replica took the job over; nothing is recorded)."""
    at: float
    error: str | None = None
    run_after: float | None = None


def settle(db: Database, outcome: JobOutcome, replica: str | None = None) -> None:
    """Record an attempt's outcome (one UPDATE; applying it twice changes nothing). With ``replica``,
    only while that replica still holds the job."""
    if outcome.status == "done":
        mark_done(db, outcome.id, outcome.at, replica)
    elif outcome.status == "queued":
        run_after = outcome.run_after if outcome.run_after is not None else outcome.at
        mark_retry(db, outcome.id, run_after, outcome.error or "", replica)
    elif outcome.status in ("failed", "quarantined"):
        mark_failed(db, outcome.id, outcome.error or "", outcome.at, replica, status=outcome.status)
    elif outcome.status == "lost":
        return  # another replica took the job over: its run records the outcome
    else:
        raise ValueError(f"unknown outcome {outcome.status!r}")


def settle_and_claim(db: Database, outcome: JobOutcome | None, claim: Claim) -> tuple[Delivery | None, float | None]:
    """A worker's one trip to the writer between jobs: record the last outcome, claim the next."""
    if outcome is not None:
        settle(db, outcome, claim.replica)
    return claim_next_or_due(db, claim)


def claim_next_or_due(db: Database, claim: Claim) -> tuple[Delivery | None, float | None]:
    """The claimed job, or None and when the earliest queued job is due (None when none is queued)."""
    job = claim_next(db, claim)
    return (job, None) if job is not None else (None, next_due_at(db, after=claim.now))


_HELD = "(CAST(? AS TEXT) IS NULL OR claimed_by IS NULL OR claimed_by = ?)"
"""An outcome is recorded by the replica holding the job (the two parameters: that replica twice).
Without a replica (an operator's tool, a test) the row is changed whoever holds it."""


def mark_done(db: Database, id: int, now: float, replica: str | None = None) -> None:
    db.execute(
        f"UPDATE deliveries SET status = 'done', finished_at = ?, last_error = NULL, lease_until = NULL"
        f" WHERE id = ? AND {_HELD}",
        (now, id, replica, replica),
    )


def mark_retry(db: Database, id: int, run_after: float, error: str, replica: str | None = None) -> None:
    db.execute(
        "UPDATE deliveries SET status = 'queued', run_after = ?, last_error = ?, claimed_by = NULL,"
        f" lease_until = NULL WHERE id = ? AND {_HELD}",
        (run_after, error, id, replica, replica),
    )


def mark_failed(
    db: Database, id: int, error: str, now: float, replica: str | None = None, *, status: str = "failed"
) -> None:
    """Failed (or ``quarantined``): kept with its error until replayed."""
    db.execute(
        f"UPDATE deliveries SET status = ?, last_error = ?, finished_at = ?, lease_until = NULL WHERE id = ? AND {_HELD}",
        (status, error, now, id, replica, replica),
    )


def renew_leases(db: Database, ids: Sequence[int], replica: str, until: float) -> list[int]:
    """Extend ``replica``'s lease on these running jobs; return the ids it no longer holds."""
    if not ids:
        return []
    marks = ", ".join("?" * len(ids))
    held = {
        row[0]
        for row in db.execute(
            f"UPDATE deliveries SET lease_until = ? WHERE id IN ({marks}) AND status = 'running'"
            " AND claimed_by = ? RETURNING id",
            (until, *ids, replica),
        ).fetchall()
    }
    return [i for i in ids if i not in held]


LATER_CANDIDATES = 50
"""Deliveries of one pull request read to find a later head: its recent ones."""


def newest_later_head(db: Database, delivery_id: str, actions: Sequence[str]) -> str | None:
    """The head SHA of the newest ``pull_request`` delivery (of these ``actions``) of the same pull
    request that is newer than ``delivery_id`` and queued, running or done: the head its
    analyses will reach, or reached. A job about an older head reads this to know it was
    superseded by a push, without asking GitHub.

    Newer is by the pull request's ``updated_at`` in the payloads, GitHub's own order of the
    events (webhooks can arrive out of order: a push delivered late is older than the one
    analysed already), then by when they were received (an old delivery an operator replays,
    queued again behind everything, is older than the pushes that came after it)."""
    marks = ", ".join("?" * len(actions))
    mine = db.execute("SELECT id, received_at, payload FROM deliveries WHERE delivery_id = ?", (delivery_id,)).fetchone()
    if mine is None:
        return None
    rows = db.execute(
        "SELECT d.id, d.received_at, d.payload FROM deliveries AS d JOIN deliveries AS me ON me.delivery_id = ?"
        " WHERE d.ordering_key = me.ordering_key AND d.event = 'pull_request' AND d.id != me.id"
        f" AND d.status IN ('queued', 'running', 'done') AND d.action IN ({marks})"
        " ORDER BY d.received_at DESC, d.id DESC LIMIT ?",
        (delivery_id, *actions, LATER_CANDIDATES),
    ).fetchall()
    my_id, my_received, my_payload = mine
    my_updated, _my_head = _pull_update(my_payload)
    if my_updated is None:
        # a job whose head came from GitHub's API (a recheck, a re-run): the newest pull_request
        # event of all is the head GitHub has now; it supersedes this job only if it came after
        newest_of_all: tuple[tuple[str, float, int], str] | None = None
        for id, received, stored in rows:
            updated, head = _pull_update(stored)
            order = (updated or "", received, id)
            if head is not None and (newest_of_all is None or order > newest_of_all[0]):
                newest_of_all = (order, head)
        if newest_of_all is None or newest_of_all[0][1:] < (my_received, my_id):
            return None
        return newest_of_all[1]
    newest: tuple[tuple[str, float, int], str] | None = None
    for id, received, stored in rows:
        updated, head = _pull_update(stored)
        if head is None:
            continue  # a malformed delivery fails on its own; it supersedes nothing
        if updated and updated != my_updated:
            later = updated > my_updated
        else:
            later = (received, id) > (my_received, my_id)
        order = (updated or "", received, id)
        if later and (newest is None or order > newest[0]):
            newest = (order, head)
    return newest[1] if newest is not None else None


def _pull_update(stored: object) -> tuple[str | None, str | None]:
    """A stored ``pull_request`` payload's ``updated_at`` (ISO 8601 in UTC, so it sorts as text)
    and head SHA."""
    try:
        payload = json.loads(decode_payload(stored) or "")
    except ValueError:
        return None, None
    pull = payload.get("pull_request") if isinstance(payload, dict) else None
    if not isinstance(pull, dict):
        return None, None
    head = pull.get("head")
    sha = head.get("sha") if isinstance(head, dict) else None
    updated = pull.get("updated_at")
    return (
        updated if isinstance(updated, str) and updated else None,
        sha if isinstance(sha, str) and sha else None,
    )


def holds(db: Database, id: int, replica: str, attempt: int, *, lock: bool = False) -> bool:
    """Whether ``replica`` still runs attempt ``attempt`` of job ``id``: the fencing token a job
    checks before each side effect. A takeover claims the job again, which changes the holder or
    the attempt, so a stalled replica that wakes up finds it no longer holds the job.

    ``lock`` (in a write transaction): the job's row stays locked until the transaction ends, so a
    takeover cannot land between this check and the transaction's own writes (PostgreSQL; SQLite
    has one writer at a time)."""
    row = db.execute(
        "SELECT 1 FROM deliveries WHERE id = ? AND status = 'running' AND claimed_by = ? AND attempts = ?"
        + (" FOR UPDATE" if lock and dialect_of(db) == POSTGRESQL else ""),
        (id, replica, attempt),
    ).fetchone()
    return row is not None


def count_kill(db: Database, delivery_id: str) -> int:
    """One more analysis of this delivery ended its worker; returns how many have (0 for an
    unknown delivery: work not started by a delivery, e.g. an API call, has nothing to count)."""
    row = db.execute(
        "UPDATE deliveries SET worker_kills = worker_kills + 1 WHERE delivery_id = ? RETURNING worker_kills",
        (delivery_id,),
    ).fetchone()
    return int(row[0]) if row else 0


def requeue(db: Database, ids: Sequence[int], now: float, replica: str | None = None) -> None:
    """Back to queued without spending an attempt (the shutdown interrupted it, the job did not fail)."""
    db.executemany(
        "UPDATE deliveries SET status = 'queued', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,"
        f" run_after = ?, claimed_by = NULL, lease_until = NULL WHERE id = ? AND status = 'running' AND {_HELD}",
        [(now, i, replica, replica) for i in ids],
    )


def recover_running(db: Database, max_attempts: int, now: float, *, every: bool = True) -> tuple[int, int]:
    """Jobs whose replica stopped while they ran: queue them again, or fail them if that used their
    last attempt. ``every``: all jobs left running (one process per SQLite file, at its start);
    otherwise only those whose lease ran out before ``now``."""
    # a running job without a lease was claimed by a replica older than leases: it is its until the
    # longest an attempt of that version could run
    which = (
        "status = 'running'" if every
        else f"status = 'running' AND coalesce(lease_until, started_at + {LEGACY_LEASE_SECONDS}, 0) < ?"
    )
    params: tuple[object, ...] = () if every else (now,)
    failed = db.execute(
        "UPDATE deliveries SET status = 'failed', finished_at = ?, lease_until = NULL,"
        " last_error = 'interrupted: the process stopped while this job ran, ' || attempts || ' time(s)'"
        f" WHERE {which} AND attempts >= ?",
        (now, *params, max_attempts),
    ).rowcount
    requeued = db.execute(
        "UPDATE deliveries SET status = 'queued', run_after = ?, claimed_by = NULL, lease_until = NULL,"
        " last_error = 'interrupted: the process stopped while this job ran'"
        f" WHERE {which}",
        (now, *params),
    ).rowcount
    return requeued, failed


def next_due_at(db: Database, after: float | None = None) -> float | None:
    """When the earliest queued job becomes due; with ``after``, only jobs not yet due by then count
    (a job already due but held back by its key is started by the notification its key sends when free)."""
    if after is None:
        (value,) = db.execute("SELECT min(run_after) FROM deliveries WHERE status = 'queued'").fetchone()
    else:
        (value,) = db.execute(
            "SELECT min(run_after) FROM deliveries WHERE status = 'queued' AND run_after > ?", (after,)
        ).fetchone()
    return value


def get(db: Database, delivery_id: str, *, with_payload: bool = False) -> Delivery | None:
    row = db.execute(
        f"SELECT {_COLUMNS}, {'payload' if with_payload else 'NULL'} FROM deliveries WHERE delivery_id = ?",
        (delivery_id,),
    ).fetchone()
    return None if row is None else _row_to_delivery(row[:-1], payload=row[-1])


def list_recent(db: Database, *, status: str | None = None, limit: int = 50) -> list[Delivery]:
    """Newest first."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
    where = "WHERE status = ?" if status else ""
    params: tuple[object, ...] = (status, limit) if status else (limit,)
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM deliveries {where} ORDER BY seq DESC LIMIT ?", params
    ).fetchall()
    return [_row_to_delivery(row) for row in rows]


def replay(db: Database, delivery_id: str, now: float) -> bool:
    """Queue a delivery again behind everything queued now, with fresh attempts (and, for a
    quarantined one, a fresh count of worker kills: the operator decided to try again)."""
    cursor = db.execute(
        "UPDATE deliveries SET status = 'queued', attempts = 0, last_error = NULL, run_after = ?,"
        " started_at = NULL, finished_at = NULL, worker_kills = 0, claimed_by = NULL, lease_until = NULL,"
        f" seq = {next_seq(db)} WHERE delivery_id = ? AND status != 'running'",
        (now, delivery_id),
    )
    return cursor.rowcount == 1


def next_seq(db: Database) -> str:
    """SQL for the next ``seq`` (see :func:`insert_many` for why the engines differ)."""
    return "nextval('delivery_order')" if dialect_of(db) == POSTGRESQL else "(SELECT coalesce(max(seq), 0) + 1 FROM deliveries)"


def prune(db: Database, finished_before: float) -> int:
    """Delete deliveries done before ``finished_before``; failed ones stay until replayed or pruned by hand."""
    return db.execute(
        "DELETE FROM deliveries WHERE status = 'done' AND finished_at < ?", (finished_before,)
    ).rowcount


def count_by_status(db: Database) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for status, n in db.execute("SELECT status, count(*) FROM deliveries GROUP BY status"):
        counts[status] = n
    return counts


def list_page(
    db: Database, *, status: str | None = None, before: int | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Deliveries newest first (without payloads), for the admin API; ids below ``before``."""
    where, args = [], []
    if status:
        where.append("status = ?")
        args.append(status)
    if before:
        where.append("id < ?")
        args.append(before)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = db.execute(
        "SELECT id, delivery_id, event, action, repository, status, attempts, last_error, received_at, finished_at,"
        f" worker_kills FROM deliveries {clause} ORDER BY id DESC LIMIT ?",
        (*args, limit),
    ).fetchall()
    keys = ("id", "delivery_id", "event", "action", "repository", "status", "attempts", "last_error",
            "received_at", "finished_at", "worker_kills")
    return [dict(zip(keys, row, strict=True)) for row in rows]
