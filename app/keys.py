"""``tessera keys create --team T --scope read|write|admin``: an API key from the command line.

The same key as ``POST /api/v1/teams/{slug}/keys`` (the team must exist; ``--create-team`` makes
it first), printed once: only its hash is stored. ``tessera keys list`` shows every key (never the
secret), ``tessera keys revoke ID`` ends one. All three work on the server's existing database
(``TESSERA_DB``) and refuse to create one.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time

import orjson
import sqlite_utils

from app.api import auth
from app.api.errors import ApiError
from app.api.openapi import GITHUB_TEAM, SLUG
from app.config import Settings, require_database
from app.store import Store
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
    listing = sub.add_parser("list", help="list every key: id, prefix, team, scopes, state (never the secret)")
    listing.add_argument("--team", default=None, help="only this team's keys")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        return asyncio.run(_run(args, settings))
    except ApiError as exc:
        print(f"tessera: {exc.message}", file=sys.stderr)
        return 2


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    require_database(settings)
    async with Store(settings.database) as store:
        if args.keys_command == "list":
            keys = await store.read(reg_sql.list_all_keys)
            _print_keys([k for k in keys if args.team in (None, k.team)], as_json=args.json, now=time.time())
            return 0
        if args.keys_command == "revoke":
            revoked = await store.write(lambda db: _revoke(db, args.id))
            if not revoked:
                print(f"tessera: no active key {args.id}", file=sys.stderr)
                return 2
            print(f"revoked key {args.id}")
            return 0
        if args.create_team:
            _check_new_team(args.team, args.github_team)
        expires_at = auth.expiry(args.expires_at)
        scopes = auth.normalise_scopes(args.scope)
        made = auth.new_key()

        def write(db: sqlite_utils.Database) -> reg_sql.ApiKey | None:
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


def _revoke(db: sqlite_utils.Database, key_id: int) -> bool:
    revoked = reg_sql.revoke_key(db, key_id)
    if revoked:
        log_sql.audit(db, actor="cli", action="key_revoked", detail={"key_id": key_id})
    return revoked


def _check_new_team(slug: str, github_team: str | None) -> None:
    """The API's own rules for a new team (its published patterns), worded for the command line."""
    if not re.fullmatch(SLUG["pattern"], slug):
        raise ApiError(400, "invalid_request", f"--team {slug!r} is not a team slug: lowercase letters, digits,"
                       " - and _, starting with a letter or digit, at most 64 characters")
    if github_team is not None and not re.fullmatch(GITHUB_TEAM["pattern"], github_team):
        raise ApiError(400, "invalid_request", f"--github-team {github_team!r} is not org/team-slug")


def _state(key: reg_sql.ApiKey, now: float) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


def _print_keys(keys: list[reg_sql.ApiKey], *, as_json: bool, now: float) -> None:
    if as_json:
        for key in keys:
            print(orjson.dumps({**key.to_dict(), "state": _state(key, now)}).decode())
        return
    if not keys:
        print("no keys (create one with: tessera keys create --team T --scope read)")
        return
    print(f"{'ID':>5}  {'PREFIX':<14} {'TEAM':<20} {'SCOPES':<18} {'STATE':<8} {'CREATED':<21} LAST USED")
    for key in keys:
        shown = key.to_dict()
        print(f"{key.id:>5}  {key.prefix:<14} {key.team:<20} {','.join(key.scopes):<18} {_state(key, now):<8}"
              f" {shown['created_at'] or '':<21} {shown['last_used_at'] or 'never'}")
