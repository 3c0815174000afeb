"""The ``tessera`` console script: a thin argparse shell over the service and its operator tools.

Each subcommand is a :class:`Command` (name, help, ``add_arguments(parser)``, ``run(args, settings)
-> exit code``) and lives in its own module; :func:`commands` lists them all in one place. To add
one, define ``COMMAND = Command(...)`` in your module and add a line to :func:`commands`.
Exit codes: 0 ok, 1 "needs attention" where a command defines it (``check``), 2 usage or internal
error (argparse's own usage errors are 2 as well).

Only ``serve`` imports the server (the routes, the pages, the API): every other subcommand starts
without it, and a subcommand's own modules (the store's drivers, the REST API, the GitHub client)
load only when it is the one chosen, so ``tessera check`` does not wait for modules it never runs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import logging
import signal
import sqlite3
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from app import check, init
from app.config import Settings, environment_with_file, is_loopback, require_database
from app.engine import pool_for
from app.errors import ConfigError

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_CODES = (
    "exit codes: 0 done; 1 `check` found changes that need acknowledgements; 2 a usage, configuration"
    " or internal error (one line on stderr saying what to fix)"
)
DEFAULT_ENV_FILE = ".env"
"""What ``tessera setup`` writes and ``tessera serve`` reads from the folder it starts in."""
SWITCH_INTERVAL = 0.0002
"""Seconds a thread may hold the GIL while another waits, in ``tessera serve`` (default 0.005)."""


@dataclass(frozen=True)
class Command:
    """One ``tessera <name>`` subcommand."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Settings], int]


# -- tessera serve ----------------------------------------------------------------------------


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="bind address (default TESSERA_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default TESSERA_PORT or 8080; 0 picks a free one)")
    parser.add_argument("--env-file", type=Path, default=None,
                        help="read TESSERA_* settings from this file (default ./.env when it exists, as"
                        " `tessera setup` writes it); the real environment wins")


def _run_serve(args: argparse.Namespace, settings: Settings) -> int:
    env_file = args.env_file or Path(DEFAULT_ENV_FILE)
    environment = environment_with_file(env_file, required=args.env_file is not None)
    settings = Settings.from_env(environment)
    if env_file.is_file():
        print(f"tessera: read settings from {env_file}", file=sys.stderr)
    overrides: dict[str, object] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    settings = settings.with_overrides(**overrides)
    if settings.dev_mode and not is_loopback(settings.host):
        print(
            f"tessera: refusing dev mode (REST API without keys) on the non-loopback address {settings.host}",
            file=sys.stderr,
        )
        return EXIT_ERROR
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # one line per delivery is noise
    # The store's writer and compressor threads hand each result back through the GIL; at the
    # default 5 ms switch interval every sqlite or zlib call of theirs could wait that long for a
    # busy event loop to let go, which made the writer, not the disk, the limit on intake.
    sys.setswitchinterval(SWITCH_INTERVAL)
    asyncio.run(serve(settings))
    return EXIT_OK


async def serve(
    settings: Settings, *, ready: Callable[[str], None] | None = None, stop: asyncio.Event | None = None
) -> None:
    """Run the App until SIGINT/SIGTERM (or ``stop`` is set, which the signals set too); print where
    it listens (and warn about what is missing)."""
    import psycopg  # lazy: only the commands that open the store load its drivers
    import psycopg_pool  # lazy: only the commands that open the store load its drivers
    from aiohttp import web  # lazy: only `serve` loads the server

    from app.server import Runner, create_app  # lazy: only `serve` loads the server

    github = None
    if settings.github_app_id is not None and settings.github_private_key:
        from app.github import GitHubApp  # lazy: only `serve` loads the server

        github = GitHubApp.from_settings(settings)
    else:
        print(
            "tessera: the GitHub App is not configured (TESSERA_GITHUB_APP_ID and a private key): deliveries"
            " are stored but handlers cannot call GitHub",
            file=sys.stderr,
        )
    if not settings.webhook_secret:
        print(
            "tessera: TESSERA_WEBHOOK_SECRET is not set: POST /webhooks/github answers 503 until it is",
            file=sys.stderr,
        )
    if settings.dev_mode:
        print("tessera: dev mode: the REST API accepts requests without keys (loopback only)", file=sys.stderr)

    runner = Runner(create_app(settings, github=github), handle_signals=False)
    try:
        await runner.setup()  # opens the store: creates or migrates the database
    except (sqlite3.Error, OSError) as exc:
        if github is not None:
            await github.close()
        raise ConfigError(
            f"cannot open the database {settings.database_label}: {exc} (is it writable? set TESSERA_DB to a file"
            " this user can write)"
        ) from exc
    except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
        if github is not None:
            await github.close()
        raise ConfigError(
            f"cannot open the database {settings.database_label}: {str(exc).strip()} (check TESSERA_DATABASE_URL:"
            " host, port, database, user and password)"
        ) from exc
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        try:
            await site.start()
        except OSError as exc:  # port taken, address not on this machine, privileged port
            raise ConfigError(
                f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}"
                " (set TESSERA_HOST / TESSERA_PORT)"
            ) from exc
        # Stop cleanly from the moment anyone can know we listen: a supervisor's SIGTERM right after
        # the line below used to kill the process before the handlers were in place.
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        host, port = runner.addresses[0][:2]
        url = f"http://{host}:{port}"
        pool = pool_for(settings)
        await pool.warm()  # the first pull request does not wait for the workers to start
        print(f"Tessera listening on {url} (webhooks: {url}/webhooks/github, database: {settings.database_label};"
              f" {pool.workers} analysis worker(s), {pool.memory_mb} MB each)", flush=True)
        # Everything made so far (modules, routes, the App) lives as long as the process: moved
        # out of the collector's sight, a full collection no longer walks it, which was a ~25 ms
        # pause of the event loop (every delivery in flight waited) a few times a minute under load.
        gc.freeze()
        if ready is not None:
            ready(url)
        await stop.wait()
        print("tessera: stopping", flush=True)
    finally:
        gc.unfreeze()  # a process that serves again (the tests) starts from a collector that sees all
        await runner.cleanup()
        pool_for(settings).close()
        if github is not None:
            await github.close()


# -- tessera deliveries -----------------------------------------------------------------------


def _positive(text: str) -> int:
    """A whole number of at least 1 (argparse turns the error into a usage message, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _deliveries_arguments(parser: argparse.ArgumentParser) -> None:
    from app.store.deliveries import STATUSES  # lazy: only the commands that open the store load it

    parser.add_argument("--failed", action="store_true", help="only deliveries whose job failed")
    parser.add_argument("--status", choices=list(STATUSES), help="only this status")
    parser.add_argument("--replay", metavar="ID", help="queue this delivery (by X-GitHub-Delivery) again")
    parser.add_argument("--limit", type=_positive, default=50, help="how many, newest first (default 50)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")


def _run_deliveries(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_deliveries(args, settings))


async def _deliveries(args: argparse.Namespace, settings: Settings) -> int:
    from app.store import Store  # lazy: only the commands that open the store load it

    require_database(settings)
    async with Store(settings.database) as store:
        if args.replay:
            existing = await store.get_delivery(args.replay)
            if existing is None:
                print(f"tessera: no delivery {args.replay!r} in {settings.database_label}", file=sys.stderr)
                return EXIT_ERROR
            if existing.status == "running":
                print(f"tessera: delivery {args.replay} is running now; replay it once it ends", file=sys.stderr)
                return EXIT_ERROR
            await store.replay_delivery(args.replay, time.time())
            print(f"queued {args.replay} ({existing.event_action}, was {existing.status}) again")
            return EXIT_OK
        status = "failed" if args.failed else args.status
        rows = await store.list_deliveries(status=status, limit=args.limit)
    if args.json:
        times = ("received_at", "run_after", "started_at", "finished_at", "lease_until")
        for d in rows:
            fields = {k: v for k, v in d.__dict__.items() if k not in ("payload", "compressed")}
            print(json.dumps({**fields, **{k: _iso(fields[k]) for k in times}}))
        return EXIT_OK
    if not rows:
        print("no deliveries" + (f" with status {status}" if status else ""))
        return EXIT_OK
    print(f"{'DELIVERY':<38} {'EVENT':<34} {'STATUS':<11} {'TRIES':>5}  RECEIVED              ERROR")
    for d in rows:
        received = dt.datetime.fromtimestamp(d.received_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        error = (d.last_error or "").splitlines()[0][:80] if d.last_error else ""
        print(f"{d.delivery_id:<38} {d.event_action:<34} {d.status:<11} {d.attempts:>5}  {received:<21} {error}")
    return EXIT_OK


def _iso(epoch: float | None) -> str | None:
    """ISO 8601 UTC, as the REST API gives every time."""
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


SERVE = Command("serve", "run the App: webhooks, REST API, pages and workers", _serve_arguments, _run_serve)
DELIVERIES = Command(
    "deliveries", "list webhook deliveries, or replay one", _deliveries_arguments, _run_deliveries
)


# -- tessera db copy ----------------------------------------------------------------------------


def _db_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    copy = sub.add_parser(
        "copy", help="copy the whole store between SQLite and PostgreSQL, verified by row counts and checksums",
        description="Copy every table of one store into another (either way between SQLite and PostgreSQL),"
        " then verify each table's row count and checksum on both sides. Stop `tessera serve` first.",
    )
    copy.add_argument("--from", dest="source", required=True, metavar="URL",
                      help="sqlite:///tessera.db (three slashes, then the path) or postgresql://USER@HOST:PORT/DB")
    copy.add_argument("--to", dest="target", required=True, metavar="URL", help="the same forms as --from")
    copy.add_argument("--force", action="store_true", help="replace what a non-empty target holds")


def _run_db(args: argparse.Namespace, settings: Settings) -> int:
    from app.store import copy as store_copy  # lazy: only the commands that open the store load it

    def progress(table: str, rows: int) -> None:
        print(f"  {table}: {rows} row(s) copied", file=sys.stderr, flush=True)

    try:
        report = store_copy.copy_database(args.source, args.target, force=args.force, progress=progress)
    except store_copy.CopyError as exc:
        print(f"tessera db copy: {exc}", file=sys.stderr)
        return EXIT_ERROR
    for table in report.tables:
        verdict = "ok" if table.ok else (
            f"MISMATCH: {table.target_rows} row(s) in the target, checksum {table.target_checksum[:12]}"
        )
        print(f"{table.name}: {table.source_rows} row(s), checksum {table.source_checksum[:12]} {verdict}")
    if not report.ok:
        print("tessera db copy: the copy does not match its source (see above)", file=sys.stderr)
        return EXIT_ERROR
    print(f"copied {sum(t.source_rows for t in report.tables)} row(s) in {len(report.tables)} table(s); verified")
    return EXIT_OK


DB = Command("db", "database tools: `tessera db copy --from URL --to URL`", _db_arguments, _run_db)


# -- tessera demo -----------------------------------------------------------------------------

DEMO_PORT = 8080


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=DEMO_PORT,
                        help=f"port for the App on 127.0.0.1 (default {DEMO_PORT}; 0 picks a free one)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="keep the database here (its demo files are replaced at start); default a"
                        " temporary folder, removed on exit")


def _run_demo(args: argparse.Namespace, settings: Settings) -> int:
    from app.demo.run import run  # lazy: the demo is the server (and its fake GitHub), like `serve`

    return run(args, settings)


DEMO = Command("demo", "run the App with a seeded demo and a fake GitHub, and print its URL", _demo_arguments, _run_demo)


# -- the operator tools that talk to GitHub or the registry (loaded when chosen) ----------------


def _setup_arguments(parser: argparse.ArgumentParser) -> None:
    import app.setup as setup  # lazy: its HTTP client is not `tessera check`'s

    setup.add_arguments(parser)


def _run_setup(args: argparse.Namespace, settings: Settings) -> int:
    import app.setup as setup  # lazy: its HTTP client is not `tessera check`'s

    return setup.run(args, api_url=settings.github_api_url, public_url=settings.public_url)


def _keys_arguments(parser: argparse.ArgumentParser) -> None:
    import app.keys as keys  # lazy: it loads the REST API and the store

    keys.add_arguments(parser)


def _run_keys(args: argparse.Namespace, settings: Settings) -> int:
    import app.keys as keys  # lazy: it loads the REST API and the store

    return keys.run(args, settings)


def _sync_arguments(parser: argparse.ArgumentParser) -> None:
    import app.registry_sync as registry_sync  # lazy: it loads the GitHub client and the store

    registry_sync.add_arguments(parser)


def _run_sync(args: argparse.Namespace, settings: Settings) -> int:
    import app.registry_sync as registry_sync  # lazy: it loads the GitHub client and the store

    return registry_sync.run(args, settings)


def _discover_arguments(parser: argparse.ArgumentParser) -> None:
    import app.discovery.run as discovery  # lazy: it loads the warehouse drivers and the store

    discovery.add_arguments(parser)


def _run_discover(args: argparse.Namespace, settings: Settings) -> int:
    import app.discovery.run as discovery  # lazy: it loads the warehouse drivers and the store

    return discovery.run(args, settings)


def commands() -> list[Command]:
    """Every subcommand, in one place. Add yours here."""
    found = [SERVE, DELIVERIES, DB]
    found.append(
        Command("setup", "create the GitHub App from the manifest (opens a browser)", _setup_arguments, _run_setup)
    )
    found.append(Command("check", "analyse a change between two git revisions", check.add_arguments, check.run_args))
    found.append(Command(
        "discover", "find consumers in warehouse query logs and BI tools", _discover_arguments, _run_discover
    ))
    found.append(
        Command("init", "write a starter .tessera.yml from what the repository holds", init.add_arguments, init.run)
    )
    found.append(DEMO)
    found.append(Command("keys", "create, list or revoke REST API keys", _keys_arguments, _run_keys))
    found.append(Command("sync-dbt", "sync a dbt manifest into the registry", _sync_arguments, _run_sync))
    return found


def build_parser(available: Sequence[Command], chosen: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``chosen`` (the subcommand the arguments name) only that one's
    options are added, so ``tessera check`` does not load the modules of the other commands."""
    parser = argparse.ArgumentParser(
        prog="tessera", description="Coordinates breaking changes to warehouse data, in the pull request.",
        epilog=EXIT_CODES,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in available:
        subparser = sub.add_parser(command.name, help=command.help, description=command.help)
        if chosen is None or command.name == chosen:
            command.add_arguments(subparser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tessera`` script; returns the exit code."""
    available = commands()
    words = list(sys.argv[1:] if argv is None else argv)
    named = words[0] if words and words[0] in {c.name for c in available} else None
    args = build_parser(available, named).parse_args(words)
    try:
        settings = Settings.from_env()
        chosen = next(c for c in available if c.name == args.command)
        return chosen.run(args, settings)
    except ConfigError as exc:
        print(f"tessera: configuration error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except sqlite3.DatabaseError as exc:  # not a database, read-only, locked, disk error: the setting, not a bug
        print(
            f"tessera: cannot use the database {settings.db_path}: {exc} (set TESSERA_DB to the server's"
            " database, writable by this user)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_ERROR
    except Exception as exc:  # an internal error: say so plainly, keep the traceback for a bug report
        traceback.print_exc()
        print(f"tessera: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR


def script() -> NoReturn:
    """The ``tessera`` console script: :func:`main`, then exit (at once after ``check``, see
    :func:`app.check.exit_now`; the other commands may leave threads or files to finish)."""
    argv = sys.argv[1:]
    code = main(argv)
    if argv[:1] == ["check"]:
        check.exit_now(code)
    sys.exit(code)


if __name__ == "__main__":
    script()
