"""What finding history owners costs the App on real pairs, and whether it asks whom the CLI asks.

    .venv/bin/python bench/app_history.py --repo CLONE --labels bench/history-labels.yml --name owner/repo

For each labelled pair (no ``.tessera.yml``, packages offline, one process, one parse cache):

1. the App's first pass (:class:`app.workflow.history.PendingHistory`), cold: which readers a
   breaking change reaches that no one declares an owner for;
2. the App's second pass with those readers' history (at most ``MAX_PATHS``, read here from git
   where the App reads GitHub), warm as in the App's worker;
3. ``tessera check``'s own analysis with its git history, for comparison;
4. the second pass again with every such reader's history (no cap), to tell the cap's effect
   from any other difference.

It prints, per pair, the readers looked up, the GitHub API calls the App would make for them
(one per reader and one for the pull request's commits; e-mail-to-login lookups come on top and
are cached for an hour), both passes' CPU seconds, the people asked through history by each,
and whether the required acks (who, and ``owner_source``) equal the CLI's, capped and not.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from history import load_labels, pick_repo  # type: ignore[import-not-found]

from app.check import GitHistory, GitSource, changed_paths
from app.workflow.history import MAX_PATHS, KnownHistory, PendingHistory
from rules.analyze import CONFIG_PATH, analyze
from rules.build import ParseCache
from rules.config import parse_config
from rules.model import Analysis
from rules.owners import FileHistory
from rules.sources import FileSource

TODAY = datetime.date(2026, 12, 5)


def _asked(analysis: Analysis) -> list[tuple[str, str | None, str | None]]:
    return sorted((r.team, r.user, r.owner_source) for r in analysis.required_acks)


def _run(base: FileSource, head: FileSource, pair: tuple[str, str], paths: list[str], cache: ParseCache,
         history: FileHistory) -> Analysis:
    config = parse_config(base.read(CONFIG_PATH))
    return analyze(base, head, base_rev=pair[0], head_rev=pair[1], config=config, changed_paths=paths,
                   cache=cache, today=TODAY, history=history)


def measure(repo: Path, base: str, head: str) -> dict[str, object]:
    """One pair's figures (see the module's docstring)."""
    texts: dict[str, str | None] = {}
    with GitSource(repo, base, texts=texts) as base_source, GitSource(repo, head, texts=texts) as head_source:
        paths = changed_paths(repo, base, head)
        cache = ParseCache()
        pending = PendingHistory()
        started = time.process_time()
        first = _run(base_source, head_source, (base, head), paths, cache, pending)
        first_s = time.process_time() - started
        needed = pending.needed(first)
        git = GitHistory(repo, base, head)
        capped = KnownHistory({p: git.recent_authors(p) for p in needed[:MAX_PATHS]}, git.change_authors())
        started = time.process_time()
        second = _run(base_source, head_source, (base, head), paths, cache, capped) if needed else first
        second_s = time.process_time() - started if needed else 0.0
        cli = _run(base_source, head_source, (base, head), paths, cache, git)
        everyone = KnownHistory({p: git.recent_authors(p) for p in needed}, git.change_authors())
        uncapped = _run(base_source, head_source, (base, head), paths, cache, everyone) if needed else first
    return {
        "base": base[:8], "head": head[:8], "readers_needing_history": len(needed),
        "api_calls": min(len(needed), MAX_PATHS) + 1 if needed else 0,
        "first_pass_cpu_s": round(first_s, 2), "second_pass_cpu_s": round(second_s, 2),
        "cli_history_asks": _history_asks(cli), "app_history_asks": _history_asks(second),
        "same_as_cli": _asked(second) == _asked(cli), "same_as_cli_uncapped": _asked(uncapped) == _asked(cli),
    }


def _history_asks(analysis: Analysis) -> int:
    return sum(1 for r in analysis.required_acks if r.owner_source == "history")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/app_history.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", required=True, type=Path, help="a local clone or bare git directory")
    parser.add_argument("--labels", required=True, type=Path)
    parser.add_argument("--name", help="the repository's owner/name in the labels file")
    args = parser.parse_args(argv)
    entry = pick_repo(load_labels(args.labels), args.name)
    for label in entry.labels:
        print(json.dumps({"verdict": label.verdict, **measure(args.repo, label.base, label.head)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
