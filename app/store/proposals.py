"""The PR workflow's tables: proposals, their analyses (one per check run), acks, caches, audit log.

A *proposal* is one pull request seen by Tessera (unique per repository and number); each analysis
of it is stored with the check run it completed, so ``/checks/{id}`` shows exactly what that check
said. Acks hold each team's latest response. ``blob_cache`` and ``tree_cache`` hold git objects by
SHA: they never change, so no file is fetched from GitHub twice. ``handled_comments`` makes a
re-delivered comment harmless. Every function takes a ``Database`` and is meant to run
through ``Store.read`` / ``Store.write``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app.store.db import Database
from app.workflow.acks import AckRecord

# --- proposals ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    id: int
    installation_id: int | None
    repo_id: int
    repo: str
    pr_number: int
    title: str | None
    author: str | None
    base_ref: str | None
    base_sha: str | None
    head_sha: str | None
    status: str
    analysed_base_sha: str | None
    analysed_head_sha: str | None
    analysis: str | None
    analysis_status: str | None
    conclusion: str | None
    check_run_id: int | None
    comment_id: int | None

    @property
    def owner_and_name(self) -> tuple[str, str]:
        owner, _, name = self.repo.partition("/")
        return owner, name


_PROPOSAL_COLUMNS = (
    "id, installation_id, repo_id, repo, pr_number, title, author, base_ref, base_sha, head_sha, status,"
    " analysed_base_sha, analysed_head_sha, analysis, analysis_status, conclusion, check_run_id, comment_id"
)


def _proposal(row: tuple[Any, ...] | None) -> Proposal | None:
    return None if row is None else Proposal(*row)


def get_proposal(db: Database, repo_id: int, pr_number: int) -> Proposal | None:
    row = db.execute(
        f"SELECT {_PROPOSAL_COLUMNS} FROM proposals WHERE repo_id = ? AND pr_number = ?", (repo_id, pr_number)
    ).fetchone()
    return _proposal(row)


def get_proposal_by_id(db: Database, proposal_id: int) -> Proposal | None:
    row = db.execute(f"SELECT {_PROPOSAL_COLUMNS} FROM proposals WHERE id = ?", (proposal_id,)).fetchone()
    return _proposal(row)


def upsert_proposal(db: Database, *, repo_id: int, pr_number: int, fields: Mapping[str, Any]) -> Proposal:
    """Create the pull request's proposal or update the given fields; returns the stored row."""
    now = time.time()
    existing = db.execute(
        "SELECT id FROM proposals WHERE repo_id = ? AND pr_number = ?", (repo_id, pr_number)
    ).fetchone()
    if existing is None:
        columns = {"repo_id": repo_id, "pr_number": pr_number, "created_at": now, "updated_at": now, **fields}
        names = ", ".join(columns)
        marks = ", ".join("?" for _ in columns)
        db.execute(f"INSERT INTO proposals ({names}) VALUES ({marks})", tuple(columns.values()))
    elif fields:
        sets = ", ".join(f"{name} = ?" for name in fields)
        db.execute(
            f"UPDATE proposals SET {sets}, updated_at = ? WHERE id = ?", (*fields.values(), now, existing[0])
        )
    found = get_proposal(db, repo_id, pr_number)
    assert found is not None
    return found


def update_proposal(db: Database, proposal_id: int, **fields: Any) -> None:
    if not fields:
        return
    sets = ", ".join(f"{name} = ?" for name in fields)
    db.execute(f"UPDATE proposals SET {sets}, updated_at = ? WHERE id = ?", (*fields.values(), time.time(), proposal_id))


def list_proposals(db: Database, *, status: str | None = None, limit: int = 100) -> list[Proposal]:
    where, args = ("WHERE status = ?", (status,)) if status else ("", ())
    rows = db.execute(
        f"SELECT {_PROPOSAL_COLUMNS} FROM proposals {where} ORDER BY updated_at DESC LIMIT ?", (*args, limit)
    ).fetchall()
    return [Proposal(*row) for row in rows]


# --- analyses (one per check run) -----------------------------------------------------------------


@dataclass(frozen=True)
class CheckRecord:
    check_run_id: int
    proposal_id: int
    base_sha: str
    head_sha: str
    analysis: str | None
    conclusion: str | None
    title: str | None
    summary: str | None
    report: str | None


def start_analysis(
    db: Database, *, check_run_id: int, proposal_id: int, base_sha: str, head_sha: str
) -> None:
    db.execute(
        "INSERT INTO analyses (check_run_id, proposal_id, base_sha, head_sha, created_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (check_run_id) DO UPDATE SET proposal_id = excluded.proposal_id, base_sha = excluded.base_sha,"
        " head_sha = excluded.head_sha, created_at = excluded.created_at, analysis = NULL, conclusion = NULL,"
        " title = NULL, summary = NULL, report = NULL, completed_at = NULL",
        (check_run_id, proposal_id, base_sha, head_sha, time.time()),
    )
    update_proposal(db, proposal_id, check_run_id=check_run_id)


def finish_analysis(
    db: Database,
    *,
    check_run_id: int,
    proposal_id: int,
    analysis_json: str | None,
    analysis_status: str,
    conclusion: str,
    title: str,
    summary: str,
    report: str | None,
    base_sha: str,
    head_sha: str,
) -> None:
    """Record what the check said, and make it the proposal's current analysis."""
    db.execute(
        "UPDATE analyses SET analysis = ?, conclusion = ?, title = ?, summary = ?, report = ?, completed_at = ?"
        " WHERE check_run_id = ?",
        (analysis_json, conclusion, title, summary, report, time.time(), check_run_id),
    )
    fields: dict[str, Any] = {"conclusion": conclusion, "analysis_status": analysis_status}
    if analysis_json is not None:
        fields.update(analysis=analysis_json, analysed_base_sha=base_sha, analysed_head_sha=head_sha)
    update_proposal(db, proposal_id, **fields)


def get_check(db: Database, check_run_id: int) -> CheckRecord | None:
    row = db.execute(
        "SELECT check_run_id, proposal_id, base_sha, head_sha, analysis, conclusion, title, summary, report"
        " FROM analyses WHERE check_run_id = ?",
        (check_run_id,),
    ).fetchone()
    return None if row is None else CheckRecord(*row)


def update_check_verdict(
    db: Database, *, check_run_id: int, conclusion: str, title: str, summary: str, report: str | None
) -> None:
    """After a command: same analysis, new verdict."""
    db.execute(
        "UPDATE analyses SET conclusion = ?, title = ?, summary = ?, report = COALESCE(?, report)"
        " WHERE check_run_id = ?",
        (conclusion, title, summary, report, check_run_id),
    )


# --- acks -----------------------------------------------------------------------------------------


def list_acks(db: Database, proposal_id: int) -> dict[str, AckRecord]:
    rows = db.execute(
        "SELECT team, response, \"user\", fingerprint, deadline, reason, created_at, github_team FROM acks"
        " WHERE proposal_id = ?",
        (proposal_id,),
    ).fetchall()
    return {
        row[0]: AckRecord(
            team=row[0],
            response=row[1],
            user=row[2],
            fingerprint=row[3],
            deadline=dt.date.fromisoformat(row[4]) if row[4] else None,
            reason=row[5],
            created_at=row[6],
            github_team=row[7],
        )
        for row in rows
    }


def put_ack(db: Database, proposal_id: int, record: AckRecord, *, comment_id: int | None = None) -> None:
    """The team's response replaces its previous one."""
    db.execute(
        "INSERT INTO acks (proposal_id, team, response, \"user\", fingerprint, deadline, reason, comment_id, created_at,"
        " github_team) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (proposal_id, team) DO UPDATE SET response = excluded.response, \"user\" = excluded.\"user\","
        " fingerprint = excluded.fingerprint, deadline = excluded.deadline, reason = excluded.reason,"
        " comment_id = excluded.comment_id, created_at = excluded.created_at, github_team = excluded.github_team",
        (
            proposal_id,
            record.team,
            record.response,
            record.user,
            record.fingerprint,
            record.deadline.isoformat() if record.deadline else None,
            record.reason,
            comment_id,
            record.created_at or time.time(),
            record.github_team,
        ),
    )


def delete_ack(db: Database, proposal_id: int, team: str) -> bool:
    cursor = db.execute("DELETE FROM acks WHERE proposal_id = ? AND team = ?", (proposal_id, team))
    return bool(cursor.rowcount)


# --- idempotency and caches -----------------------------------------------------------------------


def claim_comment(db: Database, comment_id: int, proposal_id: int | None) -> bool:
    """True the first time a comment is handled; False for a re-delivery."""
    cursor = db.execute(
        "INSERT INTO handled_comments (comment_id, proposal_id, handled_at) VALUES (?, ?, ?)"
        " ON CONFLICT (comment_id) DO NOTHING",
        (comment_id, proposal_id, time.time()),
    )
    return bool(cursor.rowcount)


def comment_handled(db: Database, comment_id: int) -> bool:
    return db.execute("SELECT 1 FROM handled_comments WHERE comment_id = ?", (comment_id,)).fetchone() is not None


def get_blob(db: Database, sha: str) -> bytes | None:
    row = db.execute("SELECT content FROM blob_cache WHERE sha = ?", (sha,)).fetchone()
    return None if row is None else bytes(row[0])


def get_blobs(db: Database, shas: list[str]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for start in range(0, len(shas), 500):
        chunk = shas[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        for sha, content in db.execute(f"SELECT sha, content FROM blob_cache WHERE sha IN ({marks})", chunk):
            found[sha] = bytes(content)
    return found


def put_blobs(db: Database, blobs: Mapping[str, bytes]) -> None:
    now = time.time()
    db.executemany(
        "INSERT INTO blob_cache (sha, content, size, fetched_at) VALUES (?, ?, ?, ?) ON CONFLICT (sha) DO NOTHING",
        [(sha, content, len(content), now) for sha, content in blobs.items()],
    )


def get_tree(db: Database, repo_id: int, sha: str) -> list[dict[str, Any]] | None:
    row = db.execute("SELECT entries FROM tree_cache WHERE repo_id = ? AND sha = ?", (repo_id, sha)).fetchone()
    return None if row is None else json.loads(row[0])


def put_tree(db: Database, repo_id: int, sha: str, entries: list[dict[str, Any]]) -> None:
    db.execute(
        "INSERT INTO tree_cache (repo_id, sha, entries, fetched_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (repo_id, sha) DO UPDATE SET entries = excluded.entries, fetched_at = excluded.fetched_at",
        (repo_id, sha, json.dumps(entries, separators=(",", ":")), time.time()),
    )


# --- audit log ------------------------------------------------------------------------------------


def audit(
    db: Database,
    *,
    actor: str | None,
    action: str,
    repo: str | None = None,
    pr_number: int | None = None,
    team: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    db.execute(
        "INSERT INTO audit_log (at, actor, action, repo, pr_number, team, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (time.time(), actor, action, repo, pr_number, team, json.dumps(dict(detail or {}), default=str)),
    )


def list_audit(
    db: Database,
    *,
    repo: str | None = None,
    team: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Audit entries, newest first, filtered by any of repo/team/actor/action, ids below ``before``."""
    filters = {"repo": repo, "team": team, "actor": actor, "action": action}
    where = [f"{column} = ?" for column, value in filters.items() if value]
    args: list[Any] = [value for value in filters.values() if value]
    if before:
        where.append("id < ?")
        args.append(before)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = db.execute(
        f"SELECT id, at, actor, action, repo, pr_number, team, detail FROM audit_log {clause}"
        " ORDER BY id DESC LIMIT ?",
        (*args, limit),
    ).fetchall()
    keys = ("id", "at", "actor", "action", "repo", "pr_number", "team", "detail")
    out = []
    for row in rows:
        item = dict(zip(keys, row, strict=True))
        item["detail"] = json.loads(item["detail"] or "{}")
        out.append(item)
    return out


def list_proposals_page(
    db: Database,
    *,
    status: str | None = None,
    repo: str | None = None,
    team: str | None = None,
    after: int = 0,
    limit: int = 50,
    keep: Callable[[Proposal], bool] | None = None,
) -> list[Proposal]:
    """Proposals in id order after ``after``. ``team`` narrows the scan to analyses that mention
    it; ``keep`` (the caller's exact test, e.g. "asks this team to respond") decides."""
    where, args = ["id > ?"], [after]
    if status:
        where.append("status = ?")
        args.append(status)
    if repo:
        where.append("repo = ?")
        args.append(repo)
    if team:
        where.append("analysis LIKE ?")
        args.append(f'%"team":"{team}"%')
    found: list[Proposal] = []
    while len(found) < limit:
        rows = db.execute(
            f"SELECT {_PROPOSAL_COLUMNS} FROM proposals WHERE {' AND '.join(where)} ORDER BY id LIMIT ?",
            (*args, limit),
        ).fetchall()
        if not rows:
            break
        batch = [Proposal(*r) for r in rows]
        found += [p for p in batch if keep is None or keep(p)]
        args[0] = batch[-1].id
    return found[:limit]



def analysed_since(db: Database, since: float) -> list[tuple[str, float, bool]]:
    """(repository, when last analysed, passed untouched) for every pull request analysed since
    ``since``: untouched means its check passed and Tessera never had to comment (the friction budget)."""
    rows = db.execute(
        "SELECT p.repo, MAX(a.completed_at), p.conclusion = 'success' AND p.comment_id IS NULL"
        " FROM proposals p JOIN analyses a ON a.proposal_id = p.id"
        " WHERE a.completed_at >= ? GROUP BY p.id",
        (since,),
    ).fetchall()
    return [(repo, at, bool(untouched)) for repo, at, untouched in rows]


def installation_for_owner(db: Database, owner: str) -> int | None:
    """The App's installation on an organisation (or user), as its pull requests recorded it."""
    row = db.execute(
        "SELECT installation_id FROM proposals WHERE lower(repo) LIKE ? ESCAPE '\\' AND installation_id IS NOT NULL"
        " ORDER BY id DESC LIMIT 1",
        (owner.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%",),
    ).fetchone()
    return None if row is None else int(row[0])


def installed_owners(db: Database) -> list[tuple[str, int]]:
    """(organisation or user, installation id) of every installation a pull request came through."""
    rows = db.execute(
        "SELECT DISTINCT repo, installation_id FROM proposals WHERE installation_id IS NOT NULL"
    ).fetchall()
    return list(dict.fromkeys((repo.partition("/")[0], int(installation_id)) for repo, installation_id in rows))
