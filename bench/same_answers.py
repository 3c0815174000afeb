"""Speed work must not change an answer: ``tessera check`` of this checkout against another's.

Runs ``tessera check`` (``--format json`` and ``--format markdown``, cold and then warm) from two
checkouts of the code on the same pull requests and compares the outputs byte for byte. The pull
requests are given as ``REPO:BASE:HEAD`` (a local git repository and two revisions), or generated:
``--generated`` makes ``bench/engine.py``'s two projects (its three scenarios).

    .venv/bin/python bench/same_answers.py --before CHECKOUT [--seeds A,B] [--generated] [REPO:BASE:HEAD ...]

``CHECKOUT`` is a folder holding another commit's code (``git archive REV | tar -x -C DIR``), or
this checkout itself with ``--seeds 1,2``: the two sides then run under different string-hash
seeds, and any difference is output that depends on the process rather than the input.
Exit code 0 when every output is identical; 1 with the first differing lines otherwise.
"""

from __future__ import annotations

import argparse
import difflib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from engine import CHECK_ENV, ROOT, _generate, cache_folder  # type: ignore[import-not-found]


def check(code: Path, repo: Path, base: str, head: str, output: str, *, cold: bool, seed: str = "0") -> str:
    """One check's stdout (and its exit code) as run from the checkout ``code``."""
    if cold:
        shutil.rmtree(cache_folder(repo), ignore_errors=True)
    command = [sys.executable, "-m", "app.check", "--repo", str(repo), "--base", base, "--head", head,
               "--format", output, "--timeout", "900"]  # answers, not limits: a loaded machine is slow
    env = {**CHECK_ENV, "PYTHONHASHSEED": seed}
    done = subprocess.run(command, cwd=code, env=env, capture_output=True, text=True, check=False)
    return f"exit {done.returncode}\n{done.stdout}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the code to compare with")
    parser.add_argument("--generated", action="store_true", help="also bench/engine.py's generated projects")
    parser.add_argument("--seeds", default="0,0", help="PYTHONHASHSEED of the before and after runs")
    parser.add_argument("pulls", nargs="*", help="REPO:BASE:HEAD")
    args = parser.parse_args(argv)
    seeds = dict(zip(("before", "after"), args.seeds.split(","), strict=False))
    if len(seeds) != 2 or not all(s.isdigit() for s in seeds.values()):
        parser.error("--seeds takes two numbers: A,B")
    workdir = Path(tempfile.mkdtemp(prefix="tessera-same-"))
    try:
        pulls = [tuple(p.rsplit(":", 2)) for p in args.pulls]
        if args.generated:
            for project in ("layers", "wide"):
                repo = workdir / project / "repo"
                scenarios, _described = _generate(project, repo, 1000, 20)
                pulls += [(str(repo), "main", s.name) for s in scenarios]
        differences = 0
        for repo, base, head in pulls:
            for output in ("json", "markdown"):
                # each side runs cold, then warm on the cache it wrote itself
                runs = {}
                for side, code in (("before", args.before), ("after", ROOT)):
                    runs[side, "cold"] = check(code, Path(repo), base, head, output, cold=True, seed=seeds[side])
                    runs[side, "warm"] = check(code, Path(repo), base, head, output, cold=False, seed=seeds[side])
                for state in ("cold", "warm"):
                    before, after = runs["before", state], runs["after", state]
                    label = f"{repo} {base}..{head} {output} {state}"
                    if before == after:
                        print(f"same  {label} ({len(after)} bytes)", flush=True)
                        continue
                    differences += 1
                    print(f"DIFF  {label}")
                    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), "before", "after", lineterm="")
                    print("\n".join(list(diff)[:40]))
        return 1 if differences else 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
