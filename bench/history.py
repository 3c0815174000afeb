"""Replay a dbt repository's real history through ``tessera check`` and score it against labels.

    .venv/bin/python bench/history.py --repo CLONE --project DIR --last 30
    .venv/bin/python bench/history.py --repo CLONE --labels bench/history-labels.yml --name owner/repo
    .venv/bin/python bench/history.py --repo CLONE --labels FILE --name owner/repo --config both --format json

CLONE is a local clone or a bare git directory; it is only read. Pairs are first-parent pairs
(``commit^1``, ``commit``) of ``--rev`` (default HEAD) whose diff touches a model file (``.sql``
or ``.py`` under the project's model paths, or a ``.yml``/``.yaml`` there). ``--last N`` takes
the N most recent such pairs (and scores those that carry a label); ``--labels FILE`` alone
replays exactly the labelled pairs of the repository named by ``--name`` (or the only one in
the file).

Each pair is one ``tessera check --format json --no-cache`` in a fresh process, so every check is
cold (no parse cache, nothing memoised from the pair before); ``seconds`` is that process's wall
time, interpreter start and imports included, as a user running the command would wait, and
``cpu_seconds`` its CPU time (user + system), steadier than the wall clock on a busy machine.

Configuration (``--config``):

- ``none``: no ``.tessera.yml`` at all (one the repository carries is hidden too);
- ``minimal``: what a new user writes in a minute, knowing only their warehouse::

      dbt: {projects: [DIR], dialect: D}
      fallback: example/data-platform

  the project folder, the warehouse dialect (``--dialect``, or the labels file's), and one
  fallback GitHub team (``org/team``, so no ``teams:`` entry is needed) that holds acks for
  consumers nobody owns. No teams, no owners, no consumers;
- ``both``: each pair under both, reported side by side.

The configuration is never written into the replayed repository: a scratch bare repository in
a temporary folder borrows its objects (``objects/info/alternates``) and holds two synthetic
commits, the base and head trees with ``.tessera.yml`` added (head's parent is base), so the
check reads it from the base side exactly as a pull request would.

Per pair it prints the short SHAs, the status, the breaking rules that fired, UNPARSED files /
changed model files, seconds, the label and the outcome (TP: labelled breaking and the check
asked for an ack; FP: labelled harmless and it asked; FN, TN likewise), and who the acks went to:
``declared`` (a team or person the project names as an owner), ``history`` (only people who
last changed a reader nobody declares an owner for), ``fallback`` (only the fallback team or the
maintainers), ``nobody`` (breaking changes fired but no reader of them is known), ``-`` (nothing
breaking).
Totals: friction (pairs needing an ack / pairs checked), precision, recall, false-alarm rate
among harmless pairs; detection recall and detection false alarms (the same over pairs where any
breaking rule fired, whether or not anyone was asked: what a fallback team would turn into
acks); UNPARSED share of changed model files; median and slowest seconds (and median CPU
seconds); and asking: of the pairs where a breaking rule fired, the share whose required acks
were *resolved* to a team or a person (declared, or who last changed the reader), the share held
only by the fallback team or the maintainers, and the share where no reader was known at all;
and recall and false alarms as they would be if only declared owners were asked (a pair whose
acks all went to people found through history counted as not asked).

Exit code 0 when every pair was checked, 1 when some check failed (shown as ``error``), 2 on a
usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_PATH = ".tessera.yml"
MODEL_SUFFIXES = (".sql", ".py")
PROPERTY_SUFFIXES = (".yml", ".yaml")
VERDICTS = ("breaking", "harmless")
CONFIG_MODES = ("none", "minimal")
FALLBACK_TEAM = "example/data-platform"
SCRATCH_IDENTITY = {
    "GIT_AUTHOR_NAME": "history replay",
    "GIT_AUTHOR_EMAIL": "replay@example.invalid",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z",
    "GIT_COMMITTER_NAME": "history replay",
    "GIT_COMMITTER_EMAIL": "replay@example.invalid",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z",
}


class UsageError(Exception):
    """Bad arguments or an unreadable labels file: a message for the user, exit code 2."""


@dataclass(frozen=True)
class Label:
    """A hand-made verdict on one pair: would this change break a reader downstream?"""

    base: str
    head: str
    verdict: str
    reason: str


@dataclass(frozen=True)
class RepoLabels:
    """One repository's entry in the labels file."""

    repo: str
    project: str
    dialect: str | None
    labels: tuple[Label, ...]


@dataclass(frozen=True)
class Pair:
    """A first-parent pair of commits and the model files its diff touches."""

    base: str
    head: str
    model_files: int


@dataclass(frozen=True)
class PairResult:
    """What ``tessera check`` said about one pair under one configuration."""

    config: str
    base: str
    head: str
    status: str  # clear | needs_ack | error
    breaking_rules: tuple[str, ...]
    breaking: tuple[str, ...]  # "RULE asset[.column]" of each breaking change, to see what fired
    unparsed: int
    model_files: int
    seconds: float  # wall
    cpu_seconds: float
    acks: str  # declared | history | fallback | nobody | -
    label: str | None
    outcome: str | None  # TP | FP | FN | TN, or None without a label
    detected: bool
    error: str | None  # why the check itself failed
    problems: tuple[str, ...] = ()  # the report's errors[]: config problems, unreadable files


@dataclass(frozen=True)
class Totals:
    """The scores of one configuration over the pairs replayed."""

    config: str
    pairs: int
    errors: int
    needs_ack: int
    friction: float | None
    labelled: int
    breaking_labels: int
    harmless_labels: int
    tp: int
    fp: int
    fn: int
    tn: int
    precision: float | None
    recall: float | None
    false_alarm_rate: float | None
    detection_recall: float | None
    detection_false_alarm_rate: float | None
    unparsed_files: int
    model_files: int
    unparsed_share: float | None
    median_seconds: float | None
    max_seconds: float | None
    median_cpu_seconds: float | None
    with_breaking: int
    acks_to_owner: float | None
    acks_to_history: float | None
    acks_to_fallback: float | None
    acks_to_nobody: float | None
    asked_owner: int
    asked_history: int
    asked_fallback: int
    asked_nobody: int
    recall_declared_only: float | None
    false_alarm_rate_declared_only: float | None


# --- git ------------------------------------------------------------------------------------------


def git(repo: Path, *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None) -> str:
    """Run git against ``repo`` (a clone or a bare directory); a failure is a :class:`UsageError`."""
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "core.quotePath=false", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env} if env else None,
        input=stdin,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise UsageError(f"git {args[0]} failed in {repo}: {lines[-1] if lines else done.returncode}")
    return done.stdout


def model_paths(repo: Path, rev: str, project: str) -> tuple[str, ...]:
    """The project's model folders (``model-paths`` of its ``dbt_project.yml``, default ``models``),
    relative to the repository root."""
    prefix = "" if project in ("", ".") else project.strip("/") + "/"
    try:
        text = git(repo, "show", f"{rev}:{prefix}dbt_project.yml")
    except UsageError:
        text = ""
    try:
        data = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        data = None
    folders = data.get("model-paths") if isinstance(data, Mapping) else None
    if not isinstance(folders, list) or not all(isinstance(f, str) for f in folders):
        folders = ["models"]
    return tuple(prefix + f.strip("/") + "/" for f in folders)


def is_model_file(path: str, folders: Sequence[str]) -> bool:
    """A model's SQL/Python or a properties file under the model folders."""
    return path.startswith(tuple(folders)) and path.lower().endswith(MODEL_SUFFIXES + PROPERTY_SUFFIXES)


def list_pairs(repo: Path, rev: str, folders: Sequence[str], last: int) -> list[Pair]:
    """The ``last`` most recent first-parent pairs whose diff touches a model file, newest first.

    Merges are compared with their first parent (the whole pull request, as it landed)."""
    out = git(
        repo, "log", "--first-parent", "--no-renames", "--diff-merges=first-parent", "--name-only", "--format=@@%H %P", rev
    )
    pairs: list[Pair] = []
    for chunk in out.split("@@")[1:]:
        lines = [line for line in chunk.splitlines() if line.strip()]
        shas = lines[0].split()
        if len(shas) < 2:
            continue  # the root commit has no parent to compare with
        changed = sum(1 for p in lines[1:] if p.lower().endswith(MODEL_SUFFIXES) and is_model_file(p, folders))
        if any(is_model_file(p, folders) for p in lines[1:]):
            pairs.append(Pair(base=shas[1], head=shas[0], model_files=changed))
            if len(pairs) >= last:
                break
    return pairs


def labelled_pair(repo: Path, label: Label, folders: Sequence[str]) -> Pair:
    """The pair a label names, with its changed model files counted."""
    changed = git(repo, "diff", "--name-only", "--no-renames", label.base, label.head).splitlines()
    count = sum(1 for p in changed if p.lower().endswith(MODEL_SUFFIXES) and is_model_file(p, folders))
    return Pair(base=label.base, head=label.head, model_files=count)


@contextmanager
def scratch_repository(repo: Path) -> Iterator[Path]:
    """A temporary bare repository that reads ``repo``'s objects and writes only its own."""
    objects = Path(git(repo, "rev-parse", "--git-path", "objects").strip())
    if not objects.is_absolute():
        objects = (repo / objects).resolve()
    with tempfile.TemporaryDirectory(prefix="tessera-history-") as folder:
        scratch = Path(folder) / "replay.git"
        subprocess.run(["git", "init", "-q", "--bare", str(scratch)], check=True)
        (scratch / "objects" / "info" / "alternates").write_text(f"{objects}\n")
        yield scratch


def with_config(scratch: Path, base: str, head: str, config: str | None) -> tuple[str, str]:
    """Commits in ``scratch`` holding the trees of ``base`` and ``head`` with ``.tessera.yml``
    set to ``config`` (None: removed). The base commit's parent is the real ``base`` and the head
    commit's parents are that base commit and the real ``head``, so the history before the change
    (who last changed each reader) and who wrote the change are those of the real pair."""
    blob = git(scratch, "hash-object", "-w", "--stdin", stdin=config).strip() if config is not None else None
    commits: list[str] = []
    for rev in (base, head):
        entries = [
            line for line in git(scratch, "ls-tree", rev).splitlines() if line.split("\t", 1)[-1] != CONFIG_PATH
        ]
        if blob is not None:
            entries.append(f"100644 blob {blob}\t{CONFIG_PATH}")
        tree = git(scratch, "mktree", stdin="\n".join(entries) + "\n").strip()
        parents = ["-p", commits[0], "-p", head] if commits else ["-p", base]
        commits.append(
            git(scratch, "commit-tree", tree, *parents, "-m", f"replay of {rev}", env=SCRATCH_IDENTITY).strip()
        )
    git(scratch, "update-ref", "HEAD", commits[1])  # tessera check refuses a repository with no commit
    return commits[0], commits[1]


def minimal_config(project: str, dialect: str | None) -> str:
    """The ``minimal`` ``.tessera.yml`` (see the module docstring)."""
    dbt: dict[str, object] = {"projects": [project.strip("/") or "."]}
    if dialect:
        dbt["dialect"] = dialect
    return yaml.safe_dump({"dbt": dbt, "fallback": FALLBACK_TEAM}, sort_keys=False)


# --- one check ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """How long one check took: wall seconds, and CPU seconds of its process (user + system),
    which a busy shared machine disturbs far less than the wall clock."""

    wall: float
    cpu: float


def run_check(scratch: Path, base: str, head: str, *, timeout: float) -> tuple[dict[str, object] | str, Timing]:
    """``tessera check`` on one pair in a fresh process: its JSON report (or an error message)
    and how long it took."""
    command = [sys.executable, "-m", "app.cli", "check", "--repo", str(scratch), "--base", base, "--head", head]
    command += ["--format", "json", "--no-cache"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, cwd=REPO_ROOT)
    except subprocess.TimeoutExpired:
        done = None
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    timing = Timing(wall=wall, cpu=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    if done is None:
        return f"timed out after {timeout:g} s", timing
    if done.returncode not in (0, 1):
        lines = done.stderr.strip().splitlines()
        return (lines[-1] if lines else f"exit code {done.returncode}"), timing
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError as error:
        return f"unreadable report: {error}", timing
    if not isinstance(report, dict):
        return "unreadable report: not an object", timing
    return report, timing


def _dicts(value: object) -> list[Mapping[str, object]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def acks_reached(report: Mapping[str, object]) -> str:
    """Who the required acks went to, ``-`` when nothing breaking fired: ``declared`` (a team or
    person the project names as an owner: exposure, group, meta, CODEOWNERS), ``history`` (only
    people asked because they last changed a reader nobody declares an owner for), ``fallback``
    (only the fallback team or the maintainers, holding for readers with no owner), ``nobody``
    (breaking changes fired but no reader of them is known). Older reports without
    ``kind``/``fallback`` count a named team as declared."""
    if not any(change.get("severity") == "breaking" for change in _dicts(report.get("changes"))):
        return "-"
    acks = _dicts(report.get("required_acks"))
    owned = [ack for ack in acks if (ack.get("team") or ack.get("user")) and not ack.get("fallback")]
    if any(ack.get("owner_source") != "history" for ack in owned):
        return "declared"
    if owned:
        return "history"
    if acks:
        return "fallback"
    return "nobody"


def outcome(label: str | None, flagged: bool) -> str | None:
    if label is None:
        return None
    if label == "breaking":
        return "TP" if flagged else "FN"
    return "FP" if flagged else "TN"


def score_pair(
    config: str, pair: Pair, report: Mapping[str, object] | str, timing: Timing, label: str | None
) -> PairResult:
    """One row of the table from a check's JSON report (or its error message)."""
    if isinstance(report, str):
        return PairResult(
            config=config, base=pair.base, head=pair.head, status="error", breaking_rules=(), breaking=(), unparsed=0,
            model_files=pair.model_files, seconds=round(timing.wall, 2), cpu_seconds=round(timing.cpu, 2),
            acks="-", label=label, outcome=None, detected=False, error=report,
        )  # fmt: skip
    changes = _dicts(report.get("changes"))
    breaking_changes = [c for c in changes if c.get("severity") == "breaking"]
    breaking = tuple(sorted({str(c.get("rule")) for c in breaking_changes}))
    findings = tuple(
        f"{c.get('rule')} {c.get('asset')}" + (f".{c.get('column')}" if c.get("column") else "") for c in breaking_changes
    )
    unparsed = len({str(c.get("path")) for c in changes if c.get("rule") == "UNPARSED"})
    status = str(report.get("status") or "error")
    problems = tuple(f"{e.get('path')}: {e.get('message')}" for e in _dicts(report.get("errors")))
    return PairResult(
        config=config,
        base=pair.base,
        head=pair.head,
        status=status,
        breaking_rules=breaking,
        breaking=findings,
        unparsed=unparsed,
        model_files=pair.model_files,
        seconds=round(timing.wall, 2),
        cpu_seconds=round(timing.cpu, 2),
        acks=acks_reached(report),
        label=label,
        outcome=outcome(label, status == "needs_ack"),
        detected=bool(breaking),
        error=None,
        problems=problems,
    )


# --- totals ---------------------------------------------------------------------------------------


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def totals(config: str, results: Sequence[PairResult]) -> Totals:
    """Friction, precision, recall and the rest over the pairs checked without error."""
    ok = [r for r in results if r.status != "error"]
    count = {name: sum(1 for r in ok if r.outcome == name) for name in ("TP", "FP", "FN", "TN")}
    breaking_labels = [r for r in ok if r.label == "breaking"]
    harmless_labels = [r for r in ok if r.label == "harmless"]
    harmless = len(harmless_labels)
    with_breaking = [r for r in ok if r.acks != "-"]
    asked = {name: sum(1 for r in with_breaking if r.acks == name) for name in ("declared", "history", "fallback", "nobody")}
    seconds = [r.seconds for r in ok]
    unparsed = sum(r.unparsed for r in ok)
    model_files = sum(r.model_files for r in ok)
    return Totals(
        config=config,
        pairs=len(results),
        errors=len(results) - len(ok),
        needs_ack=sum(1 for r in ok if r.status == "needs_ack"),
        friction=_ratio(sum(1 for r in ok if r.status == "needs_ack"), len(ok)),
        labelled=len(breaking_labels) + harmless,
        breaking_labels=len(breaking_labels),
        harmless_labels=harmless,
        tp=count["TP"],
        fp=count["FP"],
        fn=count["FN"],
        tn=count["TN"],
        precision=_ratio(count["TP"], count["TP"] + count["FP"]),
        recall=_ratio(count["TP"], count["TP"] + count["FN"]),
        false_alarm_rate=_ratio(count["FP"], count["FP"] + count["TN"]),
        detection_recall=_ratio(sum(1 for r in breaking_labels if r.detected), len(breaking_labels)),
        detection_false_alarm_rate=_ratio(sum(1 for r in harmless_labels if r.detected), harmless),
        unparsed_files=unparsed,
        model_files=model_files,
        unparsed_share=_ratio(unparsed, model_files),
        median_seconds=round(statistics.median(seconds), 2) if seconds else None,
        max_seconds=round(max(seconds), 2) if seconds else None,
        median_cpu_seconds=round(statistics.median(r.cpu_seconds for r in ok), 2) if ok else None,
        with_breaking=len(with_breaking),
        acks_to_owner=_ratio(asked["declared"] + asked["history"], len(with_breaking)),
        acks_to_history=_ratio(asked["history"], len(with_breaking)),
        acks_to_fallback=_ratio(asked["fallback"], len(with_breaking)),
        acks_to_nobody=_ratio(asked["nobody"], len(with_breaking)),
        asked_owner=asked["declared"] + asked["history"],
        asked_history=asked["history"],
        asked_fallback=asked["fallback"],
        asked_nobody=asked["nobody"],
        recall_declared_only=_ratio(
            sum(1 for r in breaking_labels if r.status == "needs_ack" and r.acks != "history"), len(breaking_labels)
        ),
        false_alarm_rate_declared_only=_ratio(
            sum(1 for r in harmless_labels if r.status == "needs_ack" and r.acks != "history"), harmless
        ),
    )


# --- labels ---------------------------------------------------------------------------------------


def load_labels(path: Path) -> tuple[RepoLabels, ...]:
    """Read the labels file (see ``bench/history-labels.yml`` for its shape)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise UsageError(f"cannot read the labels file {path}: {error}") from None
    entries = data.get("repos") if isinstance(data, Mapping) else None
    if not isinstance(entries, list):
        raise UsageError(f"{path}: expected a top-level 'repos:' list")
    repos: list[RepoLabels] = []
    for entry in entries:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("repo"), str):
            raise UsageError(f"{path}: every entry of 'repos' needs a 'repo: owner/name'")
        labels: list[Label] = []
        for item in entry.get("pairs") or []:
            verdict = item.get("verdict") if isinstance(item, Mapping) else None
            if verdict not in VERDICTS or not item.get("base") or not item.get("head"):
                raise UsageError(f"{path}: {entry['repo']}: each pair needs base, head and a verdict in {VERDICTS}")
            labels.append(
                Label(base=str(item["base"]), head=str(item["head"]), verdict=verdict, reason=str(item.get("reason", "")))
            )
        repos.append(
            RepoLabels(
                repo=entry["repo"],
                project=str(entry.get("project") or "."),
                dialect=str(entry["dialect"]) if entry.get("dialect") else None,
                labels=tuple(labels),
            )
        )
    return tuple(repos)


def pick_repo(repos: Sequence[RepoLabels], name: str | None) -> RepoLabels:
    if name is None:
        if len(repos) == 1:
            return repos[0]
        raise UsageError(f"the labels file holds {len(repos)} repositories: name one with --name")
    for entry in repos:
        if entry.repo.lower() == name.lower():
            return entry
    raise UsageError(f"no repository {name!r} in the labels file")


# --- output ---------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def print_table(results: Sequence[PairResult], all_totals: Sequence[Totals], out: IO[str]) -> None:
    header = f"{'config':8} {'base':8} {'head':8} {'status':9} {'unparsed':>8} {'secs':>6} {'cpu':>6} {'label':8} {'out':3} {'acks':8} breaking rules"
    out.write(header + "\n")
    for r in results:
        rules = ",".join(r.breaking_rules) or "-"
        if r.error:
            rules = f"error: {r.error}"
        elif r.problems:
            rules += f" ({len(r.problems)} errors, first: {r.problems[0][:100]})"
        out.write(
            f"{r.config:8} {r.base[:8]:8} {r.head[:8]:8} {r.status:9} {f'{r.unparsed}/{r.model_files}':>8}"
            f" {r.seconds:6.2f} {r.cpu_seconds:6.2f} {r.label or '-':8} {r.outcome or '-':3} {r.acks:8} {rules}\n"
        )
    for t in all_totals:
        out.write(
            f"\n[{t.config}] pairs {t.pairs} (errors {t.errors}); friction {t.needs_ack}/{t.pairs - t.errors}"
            f" = {_pct(t.friction)}\n"
            f"  labelled {t.labelled} ({t.breaking_labels} breaking, {t.harmless_labels} harmless):"
            f" TP {t.tp} FP {t.fp} FN {t.fn} TN {t.tn}; precision {_pct(t.precision)}, recall {_pct(t.recall)},"
            f" false alarms {_pct(t.false_alarm_rate)}; detection recall {_pct(t.detection_recall)},"
            f" detection false alarms {_pct(t.detection_false_alarm_rate)}\n"
            f"  UNPARSED {t.unparsed_files}/{t.model_files} changed model files = {_pct(t.unparsed_share)};"
            f" seconds median {t.median_seconds} wall ({t.median_cpu_seconds} CPU), max {t.max_seconds}\n"
            f"  asking, over the {t.with_breaking} pairs where a breaking rule fired: resolved to an owner"
            f" {t.asked_owner}/{t.with_breaking} = {_pct(t.acks_to_owner)} (of which {t.asked_history} only through"
            f" who last changed a reader); only the fallback or maintainers {t.asked_fallback}"
            f" = {_pct(t.acks_to_fallback)}; nobody (no known reader) {t.asked_nobody} = {_pct(t.acks_to_nobody)}\n"
            f"  asking only declared owners (no one found through history): recall {_pct(t.recall_declared_only)},"
            f" false alarms {_pct(t.false_alarm_rate_declared_only)}\n"
        )


# --- main -----------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench/history.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", required=True, help="a local clone or bare git directory (read only)")
    p.add_argument("--project", help="the dbt project folder in the repository (default: the labels file's, or .)")
    p.add_argument("--dialect", help="the warehouse dialect for --config minimal (default: the labels file's)")
    p.add_argument("--last", type=int, help="the N most recent first-parent pairs touching model files")
    p.add_argument("--labels", type=Path, help="a labels file; alone, replay exactly its pairs for this repository")
    p.add_argument("--name", help="the repository's owner/name in the labels file")
    p.add_argument("--rev", default="HEAD", help="where --last walks back from (default HEAD)")
    p.add_argument("--config", choices=(*CONFIG_MODES, "both"), default="none")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds before one check is given up")
    return p


def replay(
    repo: Path,
    pairs: Sequence[Pair],
    labels: Mapping[tuple[str, str], str],
    modes: Iterable[str],
    *,
    project: str,
    dialect: str | None,
    timeout: float,
    progress: IO[str] | None = None,
) -> list[PairResult]:
    """Check every pair under every configuration mode (pairs in the order given)."""
    results: list[PairResult] = []
    configs = {"none": None, "minimal": minimal_config(project, dialect)}
    with scratch_repository(repo) as scratch:
        for mode in modes:
            for pair in pairs:
                base, head = with_config(scratch, pair.base, pair.head, configs[mode])
                report, timing = run_check(scratch, base, head, timeout=timeout)
                result = score_pair(mode, pair, report, timing, labels.get((pair.base, pair.head)))
                results.append(result)
                if progress is not None:
                    progress.write(f"{mode} {pair.head[:8]} {result.status} {result.seconds:.1f}s\n")
                    progress.flush()
    return results


def main(argv: Sequence[str] | None = None, out: IO[str] = sys.stdout, err: IO[str] = sys.stderr) -> int:
    p = parser()
    args = p.parse_args(argv)
    try:
        repo = Path(args.repo)
        if not repo.is_dir():
            raise UsageError(f"{repo} is not a folder")
        entry = pick_repo(load_labels(args.labels), args.name) if args.labels else None
        if entry is None and args.last is None:
            raise UsageError("give --last N, or --labels FILE (with --name when it holds several repositories)")
        project = args.project or (entry.project if entry else ".")
        dialect = args.dialect or (entry.dialect if entry else None)
        labels = {(lab.base, lab.head): lab.verdict for lab in entry.labels} if entry else {}
        head = git(repo, "rev-parse", "--verify", f"{args.rev}^{{commit}}").strip()
        folders = model_paths(repo, head, project)
        if args.last is not None:
            pairs = list_pairs(repo, head, folders, args.last)
        else:
            assert entry is not None
            pairs = [labelled_pair(repo, label, folders) for label in entry.labels]
        modes = CONFIG_MODES if args.config == "both" else (args.config,)
        results = replay(
            repo, pairs, labels, modes, project=project, dialect=dialect, timeout=args.timeout,
            progress=err,
        )  # fmt: skip
    except UsageError as error:
        err.write(f"history: {error}\n")
        return 2
    all_totals = [totals(mode, [r for r in results if r.config == mode]) for mode in modes]
    if args.format == "json":
        document = {
            "repo": entry.repo if entry else str(repo),
            "project": project,
            "dialect": dialect,
            "pairs": [asdict(r) for r in results],
            "totals": [asdict(t) for t in all_totals],
        }
        out.write(json.dumps(document, indent=2) + "\n")
    else:
        print_table(results, all_totals, out)
    return 1 if any(r.status == "error" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
