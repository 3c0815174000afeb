"""``tessera keys create --team T --scope read|write|admin``: an API key from the command line.

The same key as ``POST /api/v1/teams/{slug}/keys`` (the team must exist; ``--create-team`` makes
it first), printed once: only its hash is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from app.api import auth
from app.store import proposals as log_sql
from app.store import registry as reg_sql


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--team", required=True, help="team slug")
    create.add_argument("--scope", action="append", choices=list(reg_sql.SCOPES), required=True,
                        help="read, write or admin (repeatable; admin implies the others)")
    create.add_argument("--expires-at", default=None, help="ISO 8601 date-time after which the key stops working")
    create.add_argument("--create-team", action="store_true", help="create the team first when it does not exist")
    create.add_argument("--github-team", default=None, help="org/team, with --create-team")
    revoke = sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id", type=int)


def run(args: argparse.Namespace, settings: Any) -> int:
    from app.api.errors import ApiError

    try:
        return asyncio.run(_run(args, settings))
    except ApiError as exc:
        print(f"tessera: {exc.message}", file=sys.stderr)
        return 2


async def _run(args: argparse.Namespace, settings: Any) -> int:
    from app.store import Store

    async with Store(settings.db_path) as store:
        if args.keys_command == "revoke":
            revoked = await store.write(lambda db: _revoke(db, args.id))
            if not revoked:
                print(f"tessera: no active key {args.id}", file=sys.stderr)
                return 2
            print(f"revoked key {args.id}")
            return 0
        expires_at = auth.expiry(args.expires_at)
        scopes = auth.normalise_scopes(args.scope)
        made = auth.new_key()

        def write(db: Any) -> reg_sql.ApiKey | None:
            if reg_sql.get_team(db, args.team) is None:
                if not args.create_team:
                    return None
                reg_sql.create_team(db, args.team, args.team, args.github_team)
            key = reg_sql.insert_key(db, prefix=made.prefix, secret_hash=made.secret_hash, team=args.team,
                                     scopes=scopes, expires_at=expires_at, created_by="cli")
            log_sql.audit(db, actor="cli", action="key_created", team=args.team,
                          detail={"key_id": key.id, "prefix": key.prefix, "scopes": list(scopes)})
            return key

        key = await store.write(write)
    if key is None:
        print(f"tessera: no team {args.team!r} (add --create-team, or POST /api/v1/teams)", file=sys.stderr)
        return 2
    print(made.key)
    print(f"key {key.id} for team {args.team}, scopes {', '.join(scopes)}; shown once, store it now", file=sys.stderr)
    return 0


def _revoke(db: Any, key_id: int) -> bool:
    revoked = reg_sql.revoke_key(db, key_id)
    if revoked:
        log_sql.audit(db, actor="cli", action="key_revoked", detail={"key_id": key_id})
    return revoked
