"""The schema, as an append-only ordered list of named migrations.

Each migration is a function ``(db: Database) -> None``. :func:`apply_migrations` runs, in
order and each in its own transaction, the ones whose name is not yet in the ``_migrations`` table,
and records them there. So the database says which schema it has, and opening an old file upgrades it.

To add a table (or change one): write a new function at the end of this module and append it to
:data:`MIGRATIONS` under a new, never reused name such as ``"0004_teams"``. Never edit, reorder or
remove a migration that has shipped: write another one. Keep SQL in ``app/store/``; expose your
queries as methods or functions there and call them through ``Store.read`` / ``Store.write``.

Both engines run the same migrations (SQLite's type words are translated for PostgreSQL, see
:mod:`app.store.db`). They are applied at start under a lock: on PostgreSQL an advisory lock, so
replicas starting together apply each migration once; SQLite has one process per file.

**Migrations are additive**, because during a rolling upgrade a replica one version older keeps
running against the newer schema for a moment. So a migration may add a table, a nullable column
or a column with a default, an index, a sequence; it must not drop or rename a table or column the
previous version reads or writes, nor add a constraint its writes would break. Drop things one
release after the code stopped using them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from app.store.contracts import m0020_contracts
from app.store.db import POSTGRESQL, Database, dialect_of
from app.store.history_cache import m0071_history_cache
from app.store.notify import m0041_notify
from app.store.observed import m0040_observed
from app.store.registry import m0030_registry, m0035_repo_teams, m0045_column_names
from app.store.schedules import m0070_schedule_leases

Migration = Callable[[Database], None]


def m0001_deliveries(db: Database) -> None:
    """Webhook deliveries, which are also the queue's jobs (one row each, keyed by GitHub's id)."""
    db.execute(
        """
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            delivery_id TEXT NOT NULL UNIQUE,
            event TEXT NOT NULL,
            action TEXT,
            ordering_key TEXT NOT NULL,
            installation_id INTEGER,
            repository TEXT,
            payload TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'done', 'failed')),
            seq INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            received_at REAL NOT NULL,
            run_after REAL NOT NULL,
            started_at REAL,
            finished_at REAL
        )
        """
    )
    # The worker's claim query: queued jobs by arrival, and "is anything ahead of me on this key?".
    db.execute("CREATE INDEX deliveries_status_seq ON deliveries (status, seq)")
    db.execute("CREATE INDEX deliveries_key_status ON deliveries (ordering_key, status, seq)")


def m0010_pr_workflow(db: Database) -> None:
    """The PR workflow (issue 4): proposals, analyses per check run, acks, git object caches, audit log.

    Queries live in :mod:`app.store.proposals`."""
    db.execute(
        """
        CREATE TABLE proposals (
            id INTEGER PRIMARY KEY,
            installation_id INTEGER,
            repo_id INTEGER NOT NULL,
            repo TEXT NOT NULL,
            pr_number INTEGER NOT NULL,
            title TEXT,
            author TEXT,
            base_ref TEXT,
            base_sha TEXT,
            head_sha TEXT,
            status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed', 'merged')),
            analysed_base_sha TEXT,
            analysed_head_sha TEXT,
            analysis TEXT,
            analysis_status TEXT,
            conclusion TEXT,
            check_run_id INTEGER,
            comment_id INTEGER,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            UNIQUE (repo_id, pr_number)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE analyses (
            check_run_id INTEGER PRIMARY KEY,
            proposal_id INTEGER NOT NULL REFERENCES proposals(id),
            base_sha TEXT NOT NULL,
            head_sha TEXT NOT NULL,
            analysis TEXT,
            conclusion TEXT,
            title TEXT,
            summary TEXT,
            report TEXT,
            created_at REAL NOT NULL,
            completed_at REAL
        )
        """
    )
    db.execute("CREATE INDEX analyses_proposal ON analyses (proposal_id, created_at)")
    db.execute(
        """
        CREATE TABLE acks (
            id INTEGER PRIMARY KEY,
            proposal_id INTEGER NOT NULL REFERENCES proposals(id),
            team TEXT NOT NULL,
            github_team TEXT,
            response TEXT NOT NULL CHECK (response IN ('ack', 'migrating', 'block', 'override')),
            "user" TEXT NOT NULL,
            fingerprint TEXT NOT NULL DEFAULT '',
            deadline TEXT,
            reason TEXT NOT NULL DEFAULT '',
            comment_id INTEGER,
            created_at REAL NOT NULL,
            UNIQUE (proposal_id, team)
        )
        """
    )
    db.execute(
        "CREATE TABLE blob_cache (sha TEXT PRIMARY KEY, content BLOB NOT NULL, size INTEGER NOT NULL,"
        " fetched_at REAL NOT NULL)"
    )
    db.execute(
        "CREATE TABLE tree_cache (repo_id INTEGER NOT NULL, sha TEXT NOT NULL, entries TEXT NOT NULL,"
        " fetched_at REAL NOT NULL, PRIMARY KEY (repo_id, sha))"
    )
    db.execute(
        "CREATE TABLE handled_comments (comment_id INTEGER PRIMARY KEY, proposal_id INTEGER,"
        " handled_at REAL NOT NULL)"
    )
    db.execute(
        """
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            actor TEXT,
            action TEXT NOT NULL,
            repo TEXT,
            pr_number INTEGER,
            team TEXT,
            detail TEXT NOT NULL DEFAULT '{}'
        )
        """
    )
    db.execute("CREATE INDEX audit_log_at ON audit_log (at)")


def m0011_deliveries_seq(db: Database) -> None:
    """``max(seq)`` (every insert batch, replay) and newest-first listings need their own index:
    without it each batch scanned the whole table."""
    db.execute("CREATE INDEX deliveries_seq ON deliveries (seq)")


def m0050_delivery_quarantine(db: Database) -> None:
    """A ``quarantined`` status (a job whose analysis ended its worker process twice: set aside,
    never run again until replayed) and ``worker_kills``, the count. SQLite cannot change a CHECK
    constraint in place, so the table is rebuilt: same rows, ids and indexes."""
    columns = (
        "id, delivery_id, event, action, ordering_key, installation_id, repository, payload, status, seq,"
        " attempts, last_error, received_at, run_after, started_at, finished_at"
    )
    db.execute(
        """
        CREATE TABLE deliveries_rebuilt (
            id INTEGER PRIMARY KEY,
            delivery_id TEXT NOT NULL UNIQUE,
            event TEXT NOT NULL,
            action TEXT,
            ordering_key TEXT NOT NULL,
            installation_id INTEGER,
            repository TEXT,
            payload TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'done', 'failed', 'quarantined')),
            seq INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            received_at REAL NOT NULL,
            run_after REAL NOT NULL,
            started_at REAL,
            finished_at REAL,
            worker_kills INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    db.execute(f"INSERT INTO deliveries_rebuilt ({columns}) SELECT {columns} FROM deliveries")
    db.execute("DROP TABLE deliveries")
    db.execute("ALTER TABLE deliveries_rebuilt RENAME TO deliveries")
    db.execute("CREATE INDEX deliveries_status_seq ON deliveries (status, seq)")
    db.execute("CREATE INDEX deliveries_key_status ON deliveries (ordering_key, status, seq)")
    db.execute("CREATE INDEX deliveries_seq ON deliveries (seq)")


def m0060_job_leases(db: Database) -> None:
    """Several replicas on one database: a running job says which replica claimed it and until when
    its lease holds (renewed while it runs); a job whose lease ran out is taken over. On PostgreSQL
    ``seq`` comes from a sequence: ``max(seq) + 1`` read by two replicas at once gives the same
    number twice, and two jobs of one pull request with one ``seq`` could run at once."""
    db.execute("ALTER TABLE deliveries ADD COLUMN claimed_by TEXT")
    db.execute("ALTER TABLE deliveries ADD COLUMN lease_until REAL")
    if dialect_of(db) == POSTGRESQL:
        # Payloads are compressed bytes; SQLite keeps them in the TEXT column (its types are loose),
        # PostgreSQL needs BYTEA. No PostgreSQL store predates this migration, so nothing to convert.
        db.execute("ALTER TABLE deliveries ALTER COLUMN payload TYPE BYTEA USING convert_to(payload, 'UTF8')")
        db.execute("CREATE SEQUENCE IF NOT EXISTS delivery_order")
        db.execute("SELECT setval('delivery_order', (SELECT coalesce(max(seq), 0) + 1 FROM deliveries), false)")


def m0061_outbound_leases(db: Database) -> None:
    """The outbound queue (Slack, subscriber webhooks) across replicas: who claimed a message and
    until when, so a replica recovers only its own messages when it stops, and others' only once
    their lease ran out (a message sent twice is a duplicate Slack post or webhook)."""
    db.execute("ALTER TABLE outbound ADD COLUMN claimed_by TEXT")
    db.execute("ALTER TABLE outbound ADD COLUMN lease_until REAL")


MIGRATIONS: list[tuple[str, Migration]] = [
    ("0001_deliveries", m0001_deliveries),
    ("0010_pr_workflow", m0010_pr_workflow),
    ("0011_deliveries_seq", m0011_deliveries_seq),
    ("0020_contracts", m0020_contracts),
    ("0030_registry", m0030_registry),
    ("0035_repo_teams", m0035_repo_teams),
    ("0040_observed", m0040_observed),
    ("0041_notify", m0041_notify),
    ("0045_column_names", m0045_column_names),
    ("0050_delivery_quarantine", m0050_delivery_quarantine),
    ("0060_job_leases", m0060_job_leases),
    ("0061_outbound_leases", m0061_outbound_leases),
    ("0070_schedule_leases", m0070_schedule_leases),
    ("0071_history_cache", m0071_history_cache),
]
"""Applied in this order. Append only."""


def apply_migrations(db: Database, migrations: list[tuple[str, Migration]] | None = None) -> list[str]:
    """Apply the pending migrations in order; return the names applied now. The caller holds the
    migration lock (:meth:`app.store.Store.open` does)."""
    migrations = MIGRATIONS if migrations is None else migrations
    names = [name for name, _ in migrations]
    if len(set(names)) != len(names):
        raise RuntimeError(f"duplicate migration names in {names}")
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    done = {row[0] for row in db.execute("SELECT name FROM _migrations").fetchall()}
    applied: list[str] = []
    for name, migration in migrations:
        if name in done:
            continue
        with _migration_transaction(db):
            # asked again inside the lock: another process may have applied it meanwhile
            if db.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone() is not None:
                continue
            migration(db)
            db.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (name, time.time()))
        applied.append(name)
    return applied


@contextlib.contextmanager
def _migration_transaction(db: Database) -> Iterator[None]:
    """One migration's transaction. On SQLite it takes the write lock first (``BEGIN IMMEDIATE``),
    so a second process opening the file at the same moment waits, then finds the migration applied;
    on PostgreSQL the caller holds the advisory lock."""
    if dialect_of(db) == POSTGRESQL:
        with db.atomic():
            yield
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
