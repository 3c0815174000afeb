"""Leases on scheduled work that one replica at a time should do (discovery's rounds).

Several replicas share one PostgreSQL database, and each runs the same schedules; a schedule's
round is run by whichever replica takes its lease first. The lease is held while the round runs
(renewed, like a job's, every third of its length) and, once the round is done, until the next
round is due: the other replicas try again then. A replica that dies mid-round stops renewing, and
another takes the lease once it has run out. On SQLite (one process per file) the lease is always
free for its one process.

Table (migration ``0070_schedule_leases``): ``schedule_leases``, one row per schedule: who holds
it and until when, how many rounds were started, when the last one started and finished.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.store.db import Database


def m0070_schedule_leases(db: Database) -> None:
    """One row per schedule run by one replica at a time."""
    db.execute(
        "CREATE TABLE schedule_leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, lease_until REAL NOT NULL,"
        " rounds INTEGER NOT NULL DEFAULT 0, started_at REAL, finished_at REAL)"
    )


@dataclass(frozen=True)
class ScheduleLease:
    """A schedule's lease as stored: who ran (or runs) it, until when, and how often it ran."""

    name: str
    holder: str
    lease_until: float
    rounds: int
    started_at: float | None
    finished_at: float | None


def take(db: Database, name: str, holder: str, now: float, until: float) -> bool:
    """Start a round under ``holder`` if the lease is free (never taken, or run out by ``now``);
    False when another replica holds it. One statement: two replicas taking it at once cannot
    both succeed (PostgreSQL locks the conflicting row; SQLite has one writer)."""
    row = db.execute(
        "INSERT INTO schedule_leases (name, holder, lease_until, rounds, started_at) VALUES (?, ?, ?, 1, ?)"
        " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until,"
        " rounds = schedule_leases.rounds + 1, started_at = excluded.started_at"
        " WHERE schedule_leases.lease_until <= excluded.started_at RETURNING rounds",
        (name, holder, until, now),
    ).fetchone()
    return row is not None


def renew(db: Database, name: str, holder: str, until: float) -> bool:
    """Extend a lease ``holder`` still holds for a round still running; False when it lost it (it
    ran out, another took it) or the round is done (a renewal that arrives after :func:`finish`,
    e.g. from a thread the cancelled renewer had started, must not cut the wait for the next
    round short)."""
    row = db.execute(
        "UPDATE schedule_leases SET lease_until = ? WHERE name = ? AND holder = ?"
        " AND (finished_at IS NULL OR finished_at < started_at) RETURNING name",
        (until, name, holder),
    ).fetchone()
    return row is not None


def finish(db: Database, name: str, holder: str, now: float, next_round_at: float) -> None:
    """A round done: keep the lease until the next round is due, so no replica repeats this one."""
    db.execute(
        "UPDATE schedule_leases SET lease_until = ?, finished_at = ? WHERE name = ? AND holder = ?",
        (next_round_at, now, name, holder),
    )


def release(db: Database, name: str, holder: str) -> None:
    """A round stopped before its end (the replica shuts down): free the lease for another now."""
    db.execute("UPDATE schedule_leases SET lease_until = 0 WHERE name = ? AND holder = ?", (name, holder))


def get(db: Database, name: str) -> ScheduleLease | None:
    row = db.execute(
        "SELECT name, holder, lease_until, rounds, started_at, finished_at FROM schedule_leases WHERE name = ?",
        (name,),
    ).fetchone()
    return None if row is None else ScheduleLease(*row)
