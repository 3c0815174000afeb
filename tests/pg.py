"""A throwaway real PostgreSQL server for tests.

``postgres_server`` (session-scoped) runs Debian's ``initdb`` and ``postgres`` binaries on a
temporary folder, listening on a free loopback port with ``pg_stat_statements`` preloaded, and
stops the server at the end of the session. Tests that need a database of their own call
``server.create_database(name)``; ``server.url(database, user=...)`` gives a ``postgresql://``
URL. Skipped, with the reason, only when the binaries are not installed (``.ci/run`` installs
them). ``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` system
user in a folder owned by it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVICE_USER = "postgres"
SUPERUSER = "tessera"
START_TIMEOUT = 30.0


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``postgres``: Debian's versioned folder, newest first,
    else wherever ``initdb`` is on PATH."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "postgres").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found and (Path(found).resolve().parent / "postgres").exists():
        return Path(found).resolve().parent
    return None


def _version(path: str) -> int:
    part = Path(path).parent.name
    return int(part) if part.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """A running server: where it listens and how to reach it."""

    bindir: Path
    datadir: Path
    port: int
    process: subprocess.Popen[bytes]
    run_as: list[str]

    host: str = "127.0.0.1"

    def url(self, database: str = "postgres", *, user: str = SUPERUSER, password: str | None = None) -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@{self.host}:{self.port}/{database}"

    def psql(self, sql: str, *, database: str = "postgres", user: str = SUPERUSER) -> str:
        """Run SQL through ``psql`` (as the given role); the output, tuples only."""
        result = subprocess.run(
            [str(self.bindir / "psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
             "-h", self.host, "-p", str(self.port), "-U", user, "-d", database, "-c", sql],
            capture_output=True, text=True, timeout=60, check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    def create_database(self, name: str) -> str:
        """A fresh database (dropped first when it exists); its URL for the superuser."""
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(
            [*self.run_as, str(self.bindir / "pg_ctl"), "stop", "-D", str(self.datadir), "-m", "immediate", "-s"],
            capture_output=True, timeout=60, check=False,
        )
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_server(root: Path, *, settings: dict[str, str] | None = None) -> PostgresServer:
    """initdb in ``root`` and start ``postgres`` on a free loopback port; waits until it answers."""
    bindir = find_bindir()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL server binaries (initdb, postgres) are not installed")
    run_as: list[str] = []
    if os.geteuid() == 0:
        pwd.getpwnam(SERVICE_USER)  # KeyError when the package did not create the user
        run_as = ["runuser", "-u", SERVICE_USER, "--"]
        os.chmod(root, 0o755)
        shutil.chown(root, user=SERVICE_USER)
    datadir = root / "data"
    subprocess.run(
        [*run_as, str(bindir / "initdb"), "-D", str(datadir), "-U", SUPERUSER, "--auth=trust",
         "-E", "UTF8", "--no-sync", "-N"],
        capture_output=True, timeout=120, check=True,
    )
    options = {
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": str(root),
        "shared_preload_libraries": "pg_stat_statements",
        "pg_stat_statements.track": "all",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "40",
        "shared_buffers": "32MB",
        **(settings or {}),
    }
    port = _free_port()
    args = [*run_as, str(bindir / "postgres"), "-D", str(datadir), "-p", str(port)]
    for key, value in options.items():
        args += ["-c", f"{key}={value}"]
    with open(root / "server.log", "wb") as log:  # the server keeps its own descriptor
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    server = PostgresServer(bindir, datadir, port, process, run_as)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"postgres exited: {(root / 'server.log').read_text(errors='replace')[-2000:]}")
        ready = subprocess.run(
            [str(bindir / "pg_isready"), "-q", "-h", server.host, "-p", str(port)], check=False, timeout=10
        )
        if ready.returncode == 0:
            return server
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError("postgres did not start in time")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the test session (skipped when it is not installed)."""
    if find_bindir() is None:
        pytest.skip("PostgreSQL is not installed (initdb/postgres not found); .ci/run installs it")
    root = Path(tempfile.mkdtemp(prefix="tessera-pg-"))
    server = start_server(root)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
