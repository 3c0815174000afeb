"""Outbound messages (Slack, subscriber webhooks), subscriptions, Slack message state and links.

The ``outbound`` table is a queue of its own, beside the webhook deliveries: a Slack or subscriber
outage retries here for hours without ever holding a worker that runs pull-request jobs. Every row
has an idempotency key (``idem_key``, unique): enqueueing the same event twice (a job re-run after
a crash, a re-delivered webhook) stores it once. Rows with the same ``ordering_key`` are sent one at
a time in order (a team's Slack message is posted before it is updated).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.store.db import POSTGRESQL, Database, dialect_of

OUTBOUND_STATUSES = ("queued", "running", "done", "failed")


def m0041_notify(db: Database) -> None:
    """Outbound queue, webhook subscriptions, Slack messages per team and PR, channels, user links."""
    db.execute(
        """
        CREATE TABLE outbound (
            id INTEGER PRIMARY KEY,
            idem_key TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL CHECK (kind IN ('slack', 'webhook')),
            event TEXT NOT NULL,
            ordering_key TEXT NOT NULL,
            subscription_id INTEGER,
            body TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_status INTEGER,
            last_error TEXT,
            created_at REAL NOT NULL,
            run_after REAL NOT NULL,
            finished_at REAL
        )
        """
    )
    db.execute("CREATE INDEX outbound_due ON outbound (status, run_after, id)")
    db.execute("CREATE INDEX outbound_key ON outbound (ordering_key, status, id)")
    db.execute("CREATE INDEX outbound_subscription ON outbound (subscription_id, id)")
    db.execute(
        """
        CREATE TABLE subscriptions (
            id INTEGER PRIMARY KEY,
            team TEXT NOT NULL,
            url TEXT NOT NULL,
            events TEXT NOT NULL,
            secret TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 1,
            description TEXT NOT NULL DEFAULT '',
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            disabled_reason TEXT,
            created_by TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE slack_messages (
            proposal_id INTEGER NOT NULL,
            team TEXT NOT NULL,
            channel TEXT NOT NULL,
            ts TEXT,
            digest TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL DEFAULT 'asked',
            updated_at REAL NOT NULL,
            PRIMARY KEY (proposal_id, team)
        )
        """
    )
    db.execute(
        "CREATE TABLE team_channels (team TEXT PRIMARY KEY, channel TEXT NOT NULL, source TEXT NOT NULL,"
        " quiet_hours TEXT, digest_at TEXT, updated_at REAL NOT NULL)"
    )
    db.execute(
        "CREATE TABLE slack_links (slack_user TEXT PRIMARY KEY, github_login TEXT NOT NULL, linked_by TEXT,"
        " linked_at REAL NOT NULL)"
    )


# --- the outbound queue ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Outbound:
    """One message to send: a Slack call or a subscriber delivery."""

    id: int
    idem_key: str
    kind: str
    event: str
    ordering_key: str
    subscription_id: int | None
    body: Mapping[str, Any]
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: float
    run_after: float
    finished_at: float | None

    def to_dict(self) -> dict[str, Any]:
        """How the API shows a subscriber's delivery."""
        return {
            "id": self.id,
            "event": self.event,
            "status": self.status,
            "attempts": self.attempts,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "next_attempt_at": self.run_after if self.status == "queued" else None,
            "finished_at": self.finished_at,
            "body": dict(self.body),
        }


@dataclass(frozen=True)
class NewOutbound:
    idem_key: str
    kind: str
    event: str
    ordering_key: str
    body: Mapping[str, Any]
    subscription_id: int | None = None
    run_after: float | None = None


def _outbound(row: Mapping[str, Any]) -> Outbound:
    return Outbound(
        id=row["id"],
        idem_key=row["idem_key"],
        kind=row["kind"],
        event=row["event"],
        ordering_key=row["ordering_key"],
        subscription_id=row["subscription_id"],
        body=json.loads(row["body"]),
        status=row["status"],
        attempts=row["attempts"],
        last_status=row["last_status"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        run_after=row["run_after"],
        finished_at=row["finished_at"],
    )


def enqueue(db: Database, items: Sequence[NewOutbound], now: float) -> int:
    """Store messages not stored before (by idempotency key); return how many were new."""
    added = 0
    for item in items:
        cursor = db.execute(
            "INSERT INTO outbound (idem_key, kind, event, ordering_key, subscription_id, body, created_at,"
            " run_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (idem_key) DO NOTHING",
            (item.idem_key, item.kind, item.event, item.ordering_key, item.subscription_id,
             json.dumps(dict(item.body), default=str), now, item.run_after if item.run_after is not None else now),
        )
        added += cursor.rowcount
    return added


def replace_queued_body(db: Database, ordering_key: str, event: str, body: Mapping[str, Any]) -> bool:
    """Give a message still waiting its newest content (a Slack message changed again while Slack
    was away): the channel then sees one post of the latest state, not every state in between."""
    cursor = db.execute(
        "UPDATE outbound SET body = ? WHERE id = (SELECT max(id) FROM outbound WHERE ordering_key = ? AND event = ?"
        " AND status = 'queued')",
        (json.dumps(dict(body), default=str), ordering_key, event),
    )
    return bool(cursor.rowcount)


OUTBOUND_LEASE_SECONDS = 600.0
"""How long a claimed message is its replica's: far past any send's time-out, so a message is
taken over (on PostgreSQL, by another replica) only when the replica that claimed it is gone."""


def claim_next(
    db: Database, now: float, replica: str | None = None
) -> tuple[Outbound | None, float | None]:
    """Mark the next due message running (one per ordering key, oldest first) and return it; when
    none is due, say when the next one will be. On PostgreSQL the row is locked ``SKIP LOCKED``: two
    replicas claiming at once take different messages, and neither sends the other's."""
    lock = " FOR UPDATE OF o SKIP LOCKED" if dialect_of(db) == POSTGRESQL else ""
    rows = list(db.query(
        "SELECT * FROM outbound o WHERE o.status = 'queued' AND o.run_after <= ? AND NOT EXISTS ("
        " SELECT 1 FROM outbound p WHERE p.ordering_key = o.ordering_key AND p.status IN ('queued', 'running')"
        " AND p.id < o.id) AND NOT EXISTS (SELECT 1 FROM outbound r WHERE r.ordering_key = o.ordering_key"
        " AND r.status = 'running') ORDER BY o.run_after, o.id LIMIT 1" + lock,
        [now],
    ))
    if not rows:
        due = db.execute("SELECT min(run_after) FROM outbound WHERE status = 'queued'").fetchone()[0]
        return None, due
    record = dict(rows[0])
    db.execute(
        "UPDATE outbound SET status = 'running', attempts = attempts + 1, claimed_by = ?, lease_until = ? WHERE id = ?",
        (replica, now + OUTBOUND_LEASE_SECONDS, record["id"]),
    )
    record["status"] = "running"
    record["attempts"] += 1
    return _outbound(record), None


def settle(
    db: Database, id: int, status: str, now: float, *, http_status: int | None = None,
    error: str | None = None, run_after: float | None = None,
) -> None:
    """Record how an attempt ended: ``done``, ``failed`` or ``queued`` again (at ``run_after``)."""
    db.execute(
        "UPDATE outbound SET status = ?, last_status = ?, last_error = ?, run_after = coalesce(?, run_after),"
        " finished_at = CASE WHEN ? IN ('done', 'failed') THEN ? ELSE NULL END WHERE id = ?",
        (status, http_status, error, run_after, status, now, id),
    )


def recover_running(
    db: Database, now: float, *, replica: str | None = None, expired_only: bool = False
) -> int:
    """Messages a stop left running go back to the queue (their attempt stays counted): only
    ``replica``'s when given (a replica stopping), only those whose lease ran out with
    ``expired_only`` (a replica starting beside others on PostgreSQL), else all (SQLite's one process)."""
    where, params = ["status = 'running'"], [now]
    if replica is not None:
        where.append("claimed_by = ?")
        params.append(replica)
    if expired_only:
        where.append("coalesce(lease_until, 0) < ?")
        params.append(now)
    return db.execute(
        f"UPDATE outbound SET status = 'queued', run_after = ?, claimed_by = NULL, lease_until = NULL"
        f" WHERE {' AND '.join(where)}",
        params,
    ).rowcount


def requeue(db: Database, id: int, now: float) -> Outbound | None:
    """Send a finished message again, from a fresh attempt count (redelivery)."""
    db.execute(
        "UPDATE outbound SET status = 'queued', attempts = 0, run_after = ?, finished_at = NULL, last_error = NULL"
        " WHERE id = ? AND status IN ('done', 'failed')",
        (now, id),
    )
    return get_outbound(db, id)


def get_outbound(db: Database, id: int) -> Outbound | None:
    rows = list(db.query("SELECT * FROM outbound WHERE id = ?", [id]))
    return _outbound(rows[0]) if rows else None


def list_outbound(
    db: Database, *, subscription_id: int | None = None, kind: str | None = None,
    before: int | None = None, limit: int = 50,
) -> list[Outbound]:
    """Newest first."""
    where: list[str] = ["1 = 1"]
    params: list[object] = []
    if subscription_id is not None:
        where.append("subscription_id = ?")
        params.append(subscription_id)
    if kind is not None:
        where.append("kind = ?")
        params.append(kind)
    if before:
        where.append("id < ?")
        params.append(before)
    sql = f"SELECT * FROM outbound WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
    return [_outbound(r) for r in db.query(sql, [*params, limit])]


def count_outbound(db: Database) -> dict[str, int]:
    counts = {status: 0 for status in OUTBOUND_STATUSES}
    for status, count in db.execute("SELECT status, count(*) FROM outbound GROUP BY status"):
        counts[status] = count
    return counts


def fail_pending(db: Database, subscription_id: int, reason: str, now: float) -> int:
    """A disabled subscriber's waiting deliveries end failed (redeliverable once it is enabled)."""
    return db.execute(
        "UPDATE outbound SET status = 'failed', last_error = ?, finished_at = ? WHERE subscription_id = ?"
        " AND status = 'queued'",
        (reason, now, subscription_id),
    ).rowcount


# --- subscriptions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subscription:
    """A team's outbound webhook: where, which events, and the secret that signs each delivery."""

    id: int
    team: str
    url: str
    events: tuple[str, ...]
    secret: str
    active: bool
    description: str
    consecutive_failures: int
    disabled_reason: str | None
    created_at: float
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        """The API's view: never the secret."""
        return {
            "id": self.id,
            "team": self.team,
            "url": self.url,
            "events": list(self.events),
            "active": self.active,
            "description": self.description,
            "consecutive_failures": self.consecutive_failures,
            "disabled_reason": self.disabled_reason,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def _subscription(row: Mapping[str, Any]) -> Subscription:
    return Subscription(
        id=row["id"], team=row["team"], url=row["url"], events=tuple(json.loads(row["events"])), secret=row["secret"],
        active=bool(row["active"]), description=row["description"], consecutive_failures=row["consecutive_failures"],
        disabled_reason=row["disabled_reason"], created_at=row["created_at"], updated_at=row["updated_at"],
    )


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def create_subscription(
    db: Database, *, team: str, url: str, events: Sequence[str], secret: str, description: str,
    created_by: str, now: float,
) -> Subscription:
    cursor = db.execute(
        "INSERT INTO subscriptions (team, url, events, secret, description, created_by, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (team, url, json.dumps(sorted(set(events))), secret, description, created_by, now, now),
    )
    found = get_subscription(db, int(cursor.fetchone()[0]))
    assert found is not None
    return found


def get_subscription(db: Database, id: int) -> Subscription | None:
    rows = list(db.query("SELECT * FROM subscriptions WHERE id = ?", [id]))
    return _subscription(rows[0]) if rows else None


def list_subscriptions(
    db: Database, *, team: str | None = None, after: int = 0, limit: int = 50
) -> list[Subscription]:
    if team is None:
        rows = db.query("SELECT * FROM subscriptions WHERE id > ? ORDER BY id LIMIT ?", [after, limit])
    else:
        rows = db.query("SELECT * FROM subscriptions WHERE team = ? AND id > ? ORDER BY id LIMIT ?", [team, after, limit])
    return [_subscription(r) for r in rows]


def subscribers_for(db: Database, event: str) -> list[Subscription]:
    """Active subscriptions that asked for ``event``."""
    return [s for s in list_subscriptions(db, limit=1_000_000) if s.active and event in s.events]


def update_subscription(db: Database, id: int, changes: Mapping[str, Any], now: float) -> Subscription | None:
    fields = dict(changes)
    if "events" in fields:
        fields["events"] = json.dumps(sorted(set(fields["events"])))
    if "active" in fields:
        fields["active"] = 1 if fields["active"] else 0
        if fields["active"]:
            fields["consecutive_failures"] = 0
            fields["disabled_reason"] = None
    if fields:
        assignments = ", ".join(f"{name} = ?" for name in fields)
        db.execute(f"UPDATE subscriptions SET {assignments}, updated_at = ? WHERE id = ?", [*fields.values(), now, id])
    return get_subscription(db, id)


def delete_subscription(db: Database, id: int) -> bool:
    db.execute("DELETE FROM outbound WHERE subscription_id = ? AND status = 'queued'", (id,))
    return bool(db.execute("DELETE FROM subscriptions WHERE id = ?", (id,)).rowcount)


def record_result(db: Database, id: int, *, ok: bool) -> int:
    """Count a delivery's final outcome; return the consecutive failures now."""
    if ok:
        db.execute("UPDATE subscriptions SET consecutive_failures = 0 WHERE id = ?", (id,))
        return 0
    db.execute("UPDATE subscriptions SET consecutive_failures = consecutive_failures + 1 WHERE id = ?", (id,))
    row = db.execute("SELECT consecutive_failures FROM subscriptions WHERE id = ?", (id,)).fetchone()
    return int(row[0]) if row else 0


def disable_subscription(db: Database, id: int, reason: str, now: float) -> None:
    db.execute(
        "UPDATE subscriptions SET active = 0, disabled_reason = ?, updated_at = ? WHERE id = ?", (reason, now, id)
    )


# --- Slack state ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlackMessage:
    """The one message a team has about a pull request: ``ts`` once Slack has it."""

    proposal_id: int
    team: str
    channel: str
    ts: str | None
    digest: str
    state: str


def get_slack_message(db: Database, proposal_id: int, team: str) -> SlackMessage | None:
    rows = list(db.query("SELECT * FROM slack_messages WHERE proposal_id = ? AND team = ?", [proposal_id, team]))
    if not rows:
        return None
    row = rows[0]
    return SlackMessage(row["proposal_id"], row["team"], row["channel"], row["ts"], row["digest"], row["state"])


def slack_messages_for(db: Database, proposal_id: int) -> list[SlackMessage]:
    rows = db.query("SELECT * FROM slack_messages WHERE proposal_id = ? ORDER BY team", [proposal_id])
    return [SlackMessage(r["proposal_id"], r["team"], r["channel"], r["ts"], r["digest"], r["state"]) for r in rows]


def note_slack_state(
    db: Database, proposal_id: int, team: str, channel: str, digest: str, state: str, now: float
) -> bool:
    """Remember what the team's message should say now; False when it already says that."""
    current = get_slack_message(db, proposal_id, team)
    if current is not None and current.digest == digest and current.channel == channel:
        return False
    db.execute(
        "INSERT INTO slack_messages (proposal_id, team, channel, digest, state, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (proposal_id, team) DO UPDATE SET channel = excluded.channel, digest = excluded.digest,"
        " state = excluded.state, updated_at = excluded.updated_at",
        (proposal_id, team, channel, digest, state, now),
    )
    return True


def set_slack_ts(db: Database, proposal_id: int, team: str, channel: str, ts: str) -> None:
    db.execute(
        "UPDATE slack_messages SET ts = ?, channel = ? WHERE proposal_id = ? AND team = ?", (ts, channel, proposal_id, team)
    )


def set_team_channel(db: Database, team: str, channel: str, source: str, now: float) -> None:
    db.execute(
        "INSERT INTO team_channels (team, channel, source, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (team)"
        " DO UPDATE SET channel = excluded.channel, source = excluded.source, updated_at = excluded.updated_at",
        (team, channel, source, now),
    )


@dataclass(frozen=True)
class TeamPrefs:
    """How a team wants to hear: its channel, hours to keep quiet (UTC ``HH:MM-HH:MM``), and the
    time (UTC ``HH:MM``) of a daily digest that replaces one message per pull request."""

    team: str
    channel: str
    quiet_hours: str | None = None
    digest_at: str | None = None


def team_prefs(db: Database, team: str) -> TeamPrefs | None:
    row = db.execute("SELECT team, channel, quiet_hours, digest_at FROM team_channels WHERE team = ?", (team,)).fetchone()
    return TeamPrefs(*row) if row else None


def digest_teams(db: Database) -> list[TeamPrefs]:
    rows = db.execute("SELECT team, channel, quiet_hours, digest_at FROM team_channels WHERE digest_at IS NOT NULL")
    return [TeamPrefs(*row) for row in rows]


def set_team_options(db: Database, team: str, *, quiet_hours: str | None, digest_at: str | None) -> None:
    db.execute("UPDATE team_channels SET quiet_hours = ?, digest_at = ? WHERE team = ?", (quiet_hours, digest_at, team))


def open_asks(db: Database, team: str) -> list[dict[str, Any]]:
    """The team's asks still waiting on open pull requests (for its digest)."""
    return [dict(r) for r in db.query(
        "SELECT m.proposal_id, m.state, p.repo, p.pr_number, p.title FROM slack_messages m JOIN proposals p"
        " ON p.id = m.proposal_id WHERE m.team = ? AND p.status = 'open' AND m.state IN ('asked', 'invalidated',"
        " 'migrating') ORDER BY p.repo, p.pr_number", [team])]


def delete_team_channel(db: Database, team: str) -> bool:
    return bool(db.execute("DELETE FROM team_channels WHERE team = ?", (team,)).rowcount)


def team_channels(db: Database) -> dict[str, str]:
    return {row[0]: row[1] for row in db.execute("SELECT team, channel FROM team_channels")}


def link_slack_user(db: Database, slack_user: str, github_login: str, linked_by: str, now: float) -> None:
    db.execute(
        "INSERT INTO slack_links (slack_user, github_login, linked_by, linked_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (slack_user) DO UPDATE SET github_login = excluded.github_login,"
        " linked_by = excluded.linked_by, linked_at = excluded.linked_at",
        (slack_user, github_login, linked_by, now),
    )


def unlink_slack_user(db: Database, slack_user: str) -> bool:
    return bool(db.execute("DELETE FROM slack_links WHERE slack_user = ?", (slack_user,)).rowcount)


def github_login_for(db: Database, slack_user: str) -> str | None:
    row = db.execute("SELECT github_login FROM slack_links WHERE slack_user = ?", (slack_user,)).fetchone()
    return str(row[0]) if row else None


def list_slack_links(db: Database) -> list[dict[str, Any]]:
    return [dict(r) for r in db.query("SELECT slack_user, github_login, linked_by, linked_at FROM slack_links ORDER BY slack_user")]


def open_migrating_acks(db: Database) -> list[dict[str, Any]]:
    """Open proposals' ``migrating by DATE`` responses (for deadline reminders)."""
    return [
        dict(r)
        for r in db.query(
            "SELECT a.proposal_id, a.team, a.deadline, p.repo, p.pr_number, p.title FROM acks a JOIN proposals p"
            " ON p.id = a.proposal_id WHERE a.response = 'migrating' AND a.deadline IS NOT NULL AND p.status = 'open'"
        )
    ]
