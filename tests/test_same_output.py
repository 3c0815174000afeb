"""The same pull request gives the same words, byte for byte, in every process.

Python salts string hashes per process, so anything that walks a set of names in the order the set
holds them says things in a different order from one run to the next; the App then rewrites its
comment with nothing changed. Each test runs ``tessera check`` in fresh interpreters with different
``PYTHONHASHSEED`` values on a small project where the order would show.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SEEDS = ("1", "2", "3")
"""Seeds under which set order over these names differs (each run differed before the fix)."""

READERS = ("ledger", "churn", "invoices", "margins", "cohorts", "payouts", "refunds", "forecast")
"""Growth's models reading ``orders`` directly, more than a required ack names (five)."""

TESSERA_YML = """\
teams:
  core: {github: acme/core}
  growth: {github: acme/growth}
"""


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=Test", "-c", "user.email=test@shop.test", *args],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def _commit(repo: Path, files: dict[str, str], message: str) -> str:
    for path, text in files.items():
        target = repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def _project(orders_sql: str) -> dict[str, str]:
    """Core's ``orders`` read by eight Growth models, each read again by a Growth report."""
    files = {
        ".tessera.yml": TESSERA_YML,
        "dbt_project.yml": "name: shop\nconfig-version: 2\n",
        "models/orders.sql": orders_sql,
        "models/schema.yml": "version: 2\nmodels:\n  - {name: orders, config: {meta: {owner: core}}}\n"
        + "".join(f"  - {{name: {r}, config: {{meta: {{owner: growth}}}}}}\n" for r in READERS)
        + "".join(f"  - {{name: {r}_report, config: {{meta: {{owner: growth}}}}}}\n" for r in READERS),
    }
    for reader in READERS:
        files[f"models/{reader}.sql"] = "select id, amount, placed_at from {{ ref('orders') }}\n"
        files[f"models/{reader}_report.sql"] = f"select id, amount from {{{{ ref('{reader}') }}}}\n"
    return files


def _check(repo: Path, base: str, head: str, output: str, seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-m", "app.check", "--repo", str(repo), "--base", base, "--head", head,
         "--format", output, "--no-cache"],
        capture_output=True, text=True, cwd=ROOT, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    return done.stdout


def test_a_change_read_by_many_models_is_reported_identically_under_every_hash_seed(tmp_path: Path) -> None:
    repo = tmp_path / "shop"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    base = _commit(repo, _project("select 1 as id, 2.5 as amount, current_date as placed_at\n"), "orders")
    head = _commit(repo, _project("select 1 as id, current_date as placed_at\n"), "drop amount")

    first, *others = (_check(repo, base, head, "json", seed) for seed in SEEDS)
    for other in others:
        assert other == first
    reasons = json.loads(first)["required_acks"][0]["reasons"]
    # nearest readers first, then by name: the direct readers in alphabetical order
    assert reasons == [
        "COLUMN_REMOVED on orders.amount: read by model churn, model cohorts, model forecast,"
        " model invoices, model ledger and 11 more"
    ]
    first, *others = (_check(repo, base, head, "markdown", seed) for seed in SEEDS)
    for other in others:
        assert other == first
