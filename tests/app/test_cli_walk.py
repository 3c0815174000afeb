"""Walk the ``tessera`` CLI as a new user would: every ``--help``, then every subcommand run in an
empty folder with no configuration. Subcommands come from the CLI's own registry
(:func:`app.cli.commands`), so a command added later is walked without editing this file."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.cli import build_parser, commands, main

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Expected:
    """What a bare run of one subcommand in an empty folder does, as the README documents it."""

    args: tuple[str, ...] = ()
    exit_codes: frozenset[int] = frozenset({2})
    files: frozenset[str] = frozenset()
    """Files the user asked for by running the command (``init`` writes the config it is named for)."""
    serves: bool = False
    """Runs until stopped: stopped with SIGTERM once it says where it listens."""
    ready_within: float = 30.0
    """Seconds to wait for that line (the demo seeds its story first: ~12 s alone, more on a busy CI)."""
    stops_within: float = 60.0
    """Seconds to wait for the exit after SIGTERM: in-flight requests get aiohttp's 60 s to finish,
    and a demo stopped while seeding may have one (seen twice in busy full runs; never alone)."""


EXPECTED = {
    "serve": Expected(args=("--port", "0"), exit_codes=frozenset({0}), files=frozenset({"tessera.db"}), serves=True),
    "deliveries": Expected(),  # no database here: refuses rather than make one
    "setup": Expected(),  # no public URL: says how to give one
    "check": Expected(),  # --base is required
    "init": Expected(exit_codes=frozenset({0}), files=frozenset({".tessera.yml"})),
    "keys": Expected(),  # an action is required
    "sync-dbt": Expected(),  # a manifest is required
    # its database lives in a temporary folder of its own, removed when it stops
    "demo": Expected(args=("--port", "0"), exit_codes=frozenset({0}), serves=True, ready_within=120.0,
                     stops_within=120.0),
}
"""Commands not listed (added later) must exit 0 or 2 and create nothing."""
DEFAULT = Expected(exit_codes=frozenset({0, 2}))


def _command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every (sub)command path under ``parser``: ("keys",), ("keys", "create"), ..."""
    found: list[tuple[str, ...]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((*prefix, name))
                found += _command_paths(sub, (*prefix, name))
    return found


ALL_PATHS = _command_paths(build_parser(commands()))
TOP = [c.name for c in commands()]


def test_the_walk_covers_every_registered_command() -> None:
    assert {"serve", "deliveries", "setup", "check", "init", "keys", "sync-dbt"} <= set(TOP)
    assert ("keys", "list") in ALL_PATHS


@pytest.mark.parametrize("path", [(), *ALL_PATHS], ids=lambda p: " ".join(p) or "tessera")
def test_every_help_exits_0_with_a_usage_and_a_description(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*path, "--help"])
    out, err = capsys.readouterr()
    assert exited.value.code == 0
    assert out.startswith(f"usage: tessera{''.join(' ' + p for p in path)}"), out[:200]
    assert err == ""
    assert len(out.splitlines()) >= 3  # usage, a description, options
    if not path:
        assert "exit codes: 0 done; 1 `check`" in out  # the codes the walk below holds each command to


def _environment(home: Path) -> dict[str, str]:
    """No Tessera configuration at all, and a home folder of its own."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("TESSERA_", "GIT_"))}
    return {**kept, "HOME": str(home), "PYTHONPATH": str(REPO_ROOT), "BROWSER": "true"}


async def _run(name: str, expected: Expected, folder: Path, home: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", name, *expected.args,
        cwd=folder, env=_environment(home),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    if expected.serves:
        line = await asyncio.wait_for(process.stdout.readline(), expected.ready_within)
        assert line.startswith(b"Tessera listening on "), line
        process.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(process.communicate(), expected.stops_within)
    code = process.returncode
    assert code is not None
    return code, out.decode(), err.decode()


@pytest.mark.parametrize("name", TOP)
async def test_each_command_in_an_empty_folder_gives_one_line_error_or_a_result_and_creates_nothing_unasked(
    name: str, tmp_path: Path
) -> None:
    folder, home = tmp_path / "empty", tmp_path / "home"
    folder.mkdir()
    home.mkdir()
    expected = EXPECTED.get(name, DEFAULT)
    code, out, err = await _run(name, expected, folder, home)
    assert "Traceback" not in out + err, err
    assert code in expected.exit_codes, (code, out, err)
    if code != 0:
        message = err.strip().splitlines()[-1]
        assert message.startswith("tessera"), err
        assert len(message) < 300
    created = {p.name for p in folder.iterdir()} - {"tessera.db-wal", "tessera.db-shm"}
    assert created <= expected.files, created
    assert list(home.iterdir()) == []
