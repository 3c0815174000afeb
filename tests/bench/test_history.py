"""bench/history.py replays a real repository's history through ``tessera check`` and scores it.

The tool is run end to end on a three-commit repository (a harmless pair, then a breaking one),
so it cannot silently rot as the engine and its report change; the scoring arithmetic is checked
on made-up rows where every outcome occurs.
"""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.app.test_check import commit, git

ROOT = Path(__file__).resolve().parents[2]

SCHEMA = """version: 2
models:
  - name: orders
    meta: {owner: "@acme/sales"}
exposures:
  - name: revenue_dashboard
    type: dashboard
    owner: {name: "@acme/growth"}
    depends_on: ["ref('orders')"]
"""


def _load_history() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_history", ROOT / "bench" / "history.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_history"] = module
    spec.loader.exec_module(module)
    return module


history = _load_history()


@pytest.fixture
def tiny_repo(tmp_path: Path) -> tuple[Path, list[str]]:
    """One model read by another team's dashboard: a column is added, then one is dropped."""
    repo = tmp_path / "tiny"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    files = {
        "dbt_project.yml": "name: tiny\nversion: '1.0'\nprofile: tiny\n",
        "models/schema.yml": SCHEMA,
        "models/orders.sql": "select id, amount, status from raw.orders\n",
        "README.md": "not a model\n",
    }
    first = commit(repo, files, "orders")
    files["models/orders.sql"] = "select id, amount, status, region from raw.orders\n"
    second = commit(repo, files, "add region")
    files["README.md"] = "still not a model\n"
    commit(repo, files, "docs only")
    files["models/orders.sql"] = "select id, status, region from raw.orders\n"
    third = commit(repo, files, "drop amount")
    return repo, [first, second, third]


def _labels(path: Path, pairs: list[tuple[str, str, str]]) -> Path:
    rows = "\n".join(
        f"      - {{base: {base}, head: {head}, verdict: {verdict}, reason: test}}" for base, head, verdict in pairs
    )
    path.write_text(f"repos:\n  - repo: acme/tiny\n    project: .\n    dialect: duckdb\n    pairs:\n{rows}\n")
    return path


def _run(*argv: str) -> tuple[int, dict[str, object], str]:
    out, err = io.StringIO(), io.StringIO()
    code = history.main(list(argv), out=out, err=err)
    return code, json.loads(out.getvalue()) if out.getvalue().startswith("{") else {}, err.getvalue()


def _repo_state(repo: Path) -> tuple[str, str]:
    refs = git(repo, "for-each-ref")
    objects = subprocess.run(["git", "-C", str(repo), "count-objects", "-v"], capture_output=True, text=True).stdout
    return refs, objects


def test_last_n_lists_only_first_parent_pairs_that_touch_models_newest_first(
    tiny_repo: tuple[Path, list[str]],
) -> None:
    repo, (first, second, third) = tiny_repo
    folders = history.model_paths(repo, third, ".")
    pairs = history.list_pairs(repo, third, folders, 5)
    docs_only = git(repo, "rev-parse", f"{third}^")
    assert [(p.base, p.head) for p in pairs] == [(docs_only, third), (first, second)]
    assert [p.model_files for p in pairs] == [1, 1]


def test_labelled_pairs_are_replayed_and_scored_against_their_verdicts(
    tiny_repo: tuple[Path, list[str]], tmp_path: Path
) -> None:
    repo, (first, second, third) = tiny_repo
    docs_only = git(repo, "rev-parse", f"{third}^")
    labels = _labels(tmp_path / "labels.yml", [(first, second, "harmless"), (docs_only, third, "breaking")])
    before = _repo_state(repo)

    code, report, _ = _run("--repo", str(repo), "--labels", str(labels), "--format", "json")

    assert code == 0
    rows = {row["head"]: row for row in report["pairs"]}
    assert rows[second]["status"] == "clear" and rows[second]["outcome"] == "TN"
    assert rows[second]["acks"] == "-"
    assert rows[third]["status"] == "needs_ack" and rows[third]["outcome"] == "TP"
    assert rows[third]["breaking_rules"] == ["COLUMN_REMOVED"]
    assert rows[third]["breaking"] == ["COLUMN_REMOVED orders.amount"]
    assert rows[third]["acks"] == "declared"
    assert rows[third]["unparsed"] == 0 and rows[third]["model_files"] == 1
    (totals,) = report["totals"]
    assert (totals["tp"], totals["fp"], totals["fn"], totals["tn"]) == (1, 0, 0, 1)
    assert totals["precision"] == 1.0 and totals["recall"] == 1.0 and totals["false_alarm_rate"] == 0.0
    assert totals["friction"] == 0.5 and totals["acks_to_owner"] == 1.0
    assert _repo_state(repo) == before, "the replayed repository must not be written"


def test_the_minimal_configuration_reaches_the_base_side_without_touching_the_repository(
    tiny_repo: tuple[Path, list[str]],
) -> None:
    repo, (first, second, _) = tiny_repo
    config = history.minimal_config("analytics", "snowflake")
    before = _repo_state(repo)
    with history.scratch_repository(repo) as scratch:
        base, head = history.with_config(scratch, first, second, config)
        assert git(scratch, "show", f"{base}:.tessera.yml") + "\n" == config
        assert git(scratch, "rev-parse", f"{head}^") == base
        # the real history stays behind both: who changed what before, and who wrote the change
        assert git(scratch, "rev-parse", f"{base}^", f"{head}^2").split() == [first, second]
        assert git(scratch, "diff", "--name-only", base, head) == "models/orders.sql"
        assert git(scratch, "show", f"{head}:models/orders.sql") == git(repo, "show", f"{second}:models/orders.sql")
        none_base, _ = history.with_config(scratch, first, second, None)
        assert ".tessera.yml" not in git(scratch, "ls-tree", "--name-only", none_base).split()
    assert _repo_state(repo) == before
    assert history.minimal_config("analytics", "snowflake").startswith("dbt:\n  projects:\n  - analytics\n")


def test_scoring_counts_every_outcome_and_leaves_failed_checks_out() -> None:
    def row(status: str, label: str | None, acks: str = "-", *, detected: bool = False) -> object:
        return history.PairResult(
            config="none", base="b", head="h", status=status, breaking_rules=(), breaking=(), unparsed=1, model_files=4,
            seconds=2.0 if status != "error" else 99.0, cpu_seconds=1.5, acks=acks, label=label,
            outcome=history.outcome(label, status == "needs_ack") if status != "error" else None,
            detected=detected, error="boom" if status == "error" else None,
        )  # fmt: skip

    results = [
        row("needs_ack", "breaking", "declared", detected=True),  # TP
        row("needs_ack", "breaking", "history", detected=True),  # TP
        row("needs_ack", "harmless", "fallback", detected=True),  # FP
        row("clear", "breaking", "nobody", detected=True),  # FN, but the rule fired
        row("clear", "breaking"),  # FN
        row("clear", "harmless"),  # TN
        row("clear", None),  # unlabelled
        row("error", "breaking"),  # not scored
    ]
    totals = history.totals("none", results)
    assert (totals.tp, totals.fp, totals.fn, totals.tn) == (2, 1, 2, 1)
    assert totals.pairs == 8 and totals.errors == 1 and totals.labelled == 6
    assert totals.precision == pytest.approx(2 / 3, abs=1e-4) and totals.recall == 0.5
    assert totals.false_alarm_rate == 0.5 and totals.detection_recall == 0.75
    assert totals.detection_false_alarm_rate == 0.5
    assert totals.friction == pytest.approx(3 / 7, abs=1e-4)
    assert totals.unparsed_share == 0.25 and totals.median_seconds == 2.0 and totals.median_cpu_seconds == 1.5
    assert totals.with_breaking == 4 and totals.acks_to_owner == 0.5 and totals.acks_to_history == 0.25
    assert (totals.asked_owner, totals.asked_history, totals.asked_fallback, totals.asked_nobody) == (2, 1, 1, 1)
    assert totals.recall_declared_only == 0.25 and totals.false_alarm_rate_declared_only == 0.5


def test_a_labels_file_naming_several_repositories_needs_a_name(tmp_path: Path) -> None:
    labels = tmp_path / "labels.yml"
    labels.write_text("repos:\n  - {repo: a/one, pairs: []}\n  - {repo: b/two, pairs: []}\n")
    code, _, err = _run("--repo", str(tmp_path), "--labels", str(labels))
    assert code == 2 and "--name" in err
