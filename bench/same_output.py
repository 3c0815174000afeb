"""Same answers: ``tessera check`` output of two versions of the code, compared byte for byte.

A refactor must not change what Tessera says. This builds one set of inputs (git repositories with
a base and one head per change) and runs ``tessera check --format json`` and ``--format markdown``
on each with the code in this checkout and with the code in ``--before`` (another checkout, e.g.
``git worktree add /tmp/before main``; default this checkout too), then lists every output that
differs. ``--seeds A,B`` runs the two sides under string-hash seeds A and B (default 0,0): the
same checkout under two seeds must say the same thing byte for byte.

Inputs: the generated 1,000-model project of ``bench/engine.py`` with its focused and scattered
20-model changes; each named edit of ``tests/shop.py``; every SQL or YAML file of the shop project
and of ``tests/data/repos/*`` losing its middle line.

    .venv/bin/python bench/same_output.py [--before PATH] [--seeds A,B] [--models 1000] [--keep]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine import change_models, generate, git  # noqa: E402
from tests import shop  # noqa: E402

FORMATS = ("json", "markdown")

DRIVER = """
import io, json, sys
from app.check import main
cases = json.loads(sys.argv[1])
out_dir = sys.argv[2]
for name, repo, base, head in cases:
    for fmt in ("json", "markdown"):
        out, err = io.StringIO(), io.StringIO()
        code = main(["--repo", repo, "--base", base, "--head", head, "--format", fmt, "--no-cache"], out=out, err=err)
        with open(f"{out_dir}/{name}.{fmt}", "w") as handle:
            handle.write(f"exit {code}\\n{out.getvalue()}\\n--- stderr\\n{err.getvalue()}")
"""
"""Runs in a fresh interpreter whose working folder is the code under test, so ``app`` is that code."""


def _write(root: Path, files: Mapping[str, str]) -> None:
    for path in root.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            path.unlink()
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def _read(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def _middle_line_gone(files: Mapping[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    for path, text in sorted(files.items()):
        if not path.endswith((".sql", ".yml", ".yaml")):
            continue
        lines = text.splitlines(keepends=True)
        if len(lines) < 3:
            continue
        middle = len(lines) // 2
        yield path, {**files, path: "".join(lines[:middle] + lines[middle + 1 :])}


def _shop_edits() -> Iterator[tuple[str, Callable[[dict[str, str]], dict[str, str]]]]:
    for name, function in inspect.getmembers(shop, inspect.isfunction):
        if function.__module__ != shop.__name__ or name.startswith("_") or name in ("shop_files", "without_line"):
            continue
        yield name, function


def _project_cases(workdir: Path, label: str, base_files: dict[str, str],
                   heads: list[tuple[str, dict[str, str]]]) -> list[tuple[str, str, str, str]]:
    """A repository with the base commit and one branch per head; the (name, repo, base, head) cases."""
    repo = workdir / label
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    _write(repo, base_files)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    base = git(repo, "rev-parse", "HEAD")
    cases = []
    for n, (name, files) in enumerate(heads):
        branch = f"edit-{n}"
        git(repo, "checkout", "-q", "-b", branch, base)
        _write(repo, files)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "--allow-empty", "-m", name)
        cases.append((f"{label}--{n:02d}-{name.replace('/', '_')}", str(repo), base, branch))
    git(repo, "checkout", "-q", base)
    return cases


def _case_config(case: Mapping[str, object]) -> str:
    """The case's ``.tessera.yml`` with its dialect where the engine reads it (as the case tests do)."""
    config = yaml.safe_load(str(case.get("config") or "")) or {}
    section = config.setdefault("sql" if case["kind"] == "sql" else "dbt", {})
    section.setdefault("dialect", case["dialect"])
    return yaml.safe_dump(config, sort_keys=True)


def _rule_cases(workdir: Path) -> list[tuple[str, str, str, str]]:
    cases: list[tuple[str, str, str, str]] = []
    for path in sorted((ROOT / "tests" / "rules" / "cases").glob("*.yml")):
        for n, case in enumerate(yaml.safe_load(path.read_text()).get("cases", [])):
            config = {".tessera.yml": _case_config(case)}
            base = {**(case.get("base") or {}), **config}
            head = {**(case.get("head") or {}), **config}
            cases += _project_cases(workdir, f"case-{path.stem}-{n:02d}", base, [("head", head)])
    return cases


def build_inputs(workdir: Path, models: int) -> list[tuple[str, str, str, str]]:
    cases: list[tuple[str, str, str, str]] = []
    generated = workdir / "generated"
    project = generate(generated, models=models)
    git(generated, "init", "-q", "-b", "main")
    git(generated, "add", "-A")
    git(generated, "commit", "-q", "-m", "generated project")
    base = git(generated, "rev-parse", "HEAD")
    for scenario, focused in (("focused", True), ("scattered", False)):
        git(generated, "checkout", "-q", "-b", scenario, base)
        change_models(generated, project, 20, focused=focused)
        git(generated, "commit", "-q", "-am", scenario)
        cases.append((f"generated--{scenario}", str(generated), base, scenario))
    git(generated, "checkout", "-q", base)

    files = shop.shop_files()
    heads = [(name, edit(files)) for name, edit in _shop_edits()] + list(_middle_line_gone(files))
    cases += _project_cases(workdir, "shop", files, heads)
    for folder in sorted((ROOT / "tests" / "data" / "repos").iterdir()):
        files = _read(folder)
        cases += _project_cases(workdir, folder.name, files, list(_middle_line_gone(files)))
    return cases + _rule_cases(workdir)


def run_version(code: Path, cases: list[tuple[str, str, str, str]], out: Path, seed: str = "0") -> None:
    out.mkdir(parents=True)
    env = {**os.environ, "PYTHONHASHSEED": seed}
    subprocess.run([sys.executable, "-c", DRIVER, json.dumps(cases), str(out)], cwd=code, env=env, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, default=ROOT, help="a checkout of the code to compare against")
    parser.add_argument("--seeds", default="0,0", help="PYTHONHASHSEED of the before and after runs")
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--keep", action="store_true", help="keep the inputs and outputs")
    args = parser.parse_args(argv)
    seeds = args.seeds.split(",")
    if len(seeds) != 2 or not all(s.isdigit() for s in seeds):
        parser.error("--seeds takes two numbers: A,B")
    workdir = Path(tempfile.mkdtemp(prefix="tessera-same-"))
    try:
        (workdir / "inputs").mkdir()
        cases = build_inputs(workdir / "inputs", args.models)
        run_version(args.before.resolve(), cases, workdir / "before", seeds[0])
        run_version(ROOT, cases, workdir / "after", seeds[1])
        different = []
        for name, *_ in cases:
            for fmt in FORMATS:
                before = (workdir / "before" / f"{name}.{fmt}").read_bytes()
                after = (workdir / "after" / f"{name}.{fmt}").read_bytes()
                if before != after:
                    different.append(f"{name}.{fmt}")
        print(f"{len(cases)} changes, {len(cases) * len(FORMATS)} outputs compared: "
              f"{len(different)} differ" + (f" ({', '.join(different)})" if different else ""))
        if args.keep:
            print(f"kept in {workdir}")
        return 1 if different else 0
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
