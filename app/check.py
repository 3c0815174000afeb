"""``tessera check``: the analysis a pull request gets, on a local git checkout, no GitHub needed.

The revisions are read straight from git (``git ls-tree`` for the file list, one long-lived
``git cat-file --batch`` for contents), so the working tree is never touched and uncommitted edits
never leak in. Like a pull request, the base side is the merge base of ``--base`` and ``--head``
(changes that landed on the base branch meanwhile are not this change's), ``.tessera.yml`` and
CODEOWNERS come from the base, and parse results are cached on disk under the repository's git
directory (never in the work tree), keyed by content. ``--manifest FILE`` supplies the head's dbt
manifest from disk (see its help).

The analysis runs in a child process under the same limits as the App's analysis workers
(``--timeout``, ``--memory-mb``; :func:`app.engine.run_limited`): a template that never ends or
expands to gigabytes stops the check with exit code 2 and one line naming the limit.

Exit codes (DESIGN.md): 0 nothing needs an acknowledgement, 1 acknowledgements required, 2 usage
or internal error.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, NoReturn

from app.config import DEFAULT_ANALYSIS_MEMORY_MB, Settings
from app.engine import (
    DiskParseCache,
    ForkMap,
    Limits,
    WorkerKilled,
    collector_paused,
    raise_if_out_of_memory,
    run_limited,
)
from app.errors import ConfigError
from rules.analyze import CONFIG_PATH, analyze, likely_reads, may_change_schemas
from rules.build import ParseCache
from rules.config import parse_config
from rules.dbt_deps import dependency_paths
from rules.dbt_manifest import looks_like_manifest
from rules.dialect import display_name, project_folders
from rules.model import Config
from rules.report import to_json, to_markdown
from rules.sources import git_blob_sha

if TYPE_CHECKING:
    from app.check_store import StoreReads

EXIT_CLEAR = 0
EXIT_NEEDS_ACK = 1
EXIT_ERROR = 2


class GitError(Exception):
    """A git command failed (not a repository, unknown revision): a usage error for the user."""


def _git(repo: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    except FileNotFoundError as error:
        raise GitError("git is not installed or not on PATH") from error
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(message[-1] if message else f"git {' '.join(args)} failed")
    return done.stdout


def _require_repository(repo: Path) -> None:
    """A clear message for a folder that is not a checkout, or one without a commit yet (git's
    own "unknown revision 'HEAD'" told a new user nothing)."""
    try:
        _git(repo, "rev-parse", "--git-dir")
    except GitError:
        raise GitError(
            f"{repo.absolute()} is not a git repository: run tessera check inside a checkout, or pass --repo DIR"
        ) from None
    try:
        _git(repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    except GitError:
        raise GitError(f"the repository {repo.absolute()} has no commit yet: commit the base version first") from None


def resolve_commit(repo: Path, rev: str) -> str:
    """The full SHA of ``rev``, or a :class:`GitError` saying the revision is unknown."""
    try:
        return (
            _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
            .decode()
            .strip()
        )
    except GitError:
        raise GitError(f"unknown revision {rev!r} in {repo}") from None


class GitSource:
    """A :class:`rules.sources.FileSource` over one commit of a local repository.

    ``texts`` (by blob SHA) may be shared between sources of one repository: the two sides of a
    change hold mostly the same blobs, and each is then read and decoded once."""

    def __init__(self, repo: Path | str, rev: str, *, texts: dict[str, str | None] | None = None) -> None:
        self.repo = Path(repo)
        self.commit = resolve_commit(self.repo, rev)
        self._shared: dict[str, str | None] = texts if texts is not None else {}
        self._blobs: dict[str, str] = {}
        listing = _git(self.repo, "ls-tree", "-r", "-z", "--full-tree", self.commit)
        for entry in listing.split(b"\0"):
            if not entry:
                continue
            meta, _, path = entry.partition(b"\t")
            mode, kind, sha = meta.split(b" ")
            if kind == b"blob" and mode != b"120000":
                self._blobs[path.decode("utf-8", "surrogateescape")] = sha.decode()
        self._texts: dict[str, str | None] = {}
        self._batch: subprocess.Popen[bytes] | None = None

    def paths(self) -> Iterable[str]:
        return sorted(self._blobs)

    def blob_id(self, path: str) -> str | None:
        return self._blobs.get(path)

    def read(self, path: str) -> str | None:
        if path in self._texts:
            return self._texts[path]
        sha = self._blobs.get(path)
        if sha is None:
            text = None
        elif sha in self._shared:
            text = self._shared[sha]
        else:
            text = self._shared[sha] = _decode(self._cat(sha))
        self._texts[path] = text
        return text

    def prefetch(self, paths: Iterable[str]) -> int:
        """Read these files' blobs in one ``git cat-file --batch`` run (one round trip for all,
        rather than one per file as the engine asks); returns how many were read."""
        shas = list(dict.fromkeys(sha for p in paths if (sha := self._blobs.get(p)) and sha not in self._shared))
        if not shas:
            return 0
        try:
            done = subprocess.run(
                ["git", "-C", str(self.repo), "cat-file", "--batch"],
                input=("\n".join(shas) + "\n").encode(),
                capture_output=True,
                check=False,
            )
        except OSError:
            return 0  # the files are still read one by one
        if done.returncode != 0:
            return 0
        out, at = done.stdout, 0
        for sha in shas:
            end = out.find(b"\n", at)
            if end < 0:
                break
            header = out[at:end].split()
            at = end + 1
            if len(header) < 3 or header[1] == b"missing":
                continue
            size = int(header[2])
            self._shared[sha] = _decode(out[at : at + size])
            at += size + 1  # the object, then a newline
        return len(shas)

    def _cat(self, sha: str) -> bytes | None:
        if self._batch is None:
            self._batch = subprocess.Popen(
                ["git", "-C", str(self.repo), "cat-file", "--batch"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        assert self._batch.stdin is not None and self._batch.stdout is not None
        self._batch.stdin.write(sha.encode() + b"\n")
        self._batch.stdin.flush()
        header = self._batch.stdout.readline().split()
        if len(header) < 3 or header[1] == b"missing":
            return None
        size = int(header[2])
        data = self._batch.stdout.read(size)
        self._batch.stdout.read(1)  # the newline after the object
        return data

    def close(self) -> None:
        """End the ``git cat-file`` process (idempotent)."""
        if self._batch is not None:
            if self._batch.stdin is not None:
                self._batch.stdin.close()
            self._batch.wait(timeout=10)
            if self._batch.stdout is not None:
                self._batch.stdout.close()
            self._batch = None

    def __enter__(self) -> GitSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OverlaySource:
    """A source with some files replaced, added or (``None``) deleted: ``--manifest`` from outside
    the commit, or the work tree's uncommitted edits (``--head WORKTREE``)."""

    def __init__(self, inner: GitSource, files: Mapping[str, str | None]) -> None:
        self.inner = inner
        self.files = dict(files)

    def paths(self) -> Iterable[str]:
        deleted = {p for p, text in self.files.items() if text is None}
        return sorted((set(self.inner.paths()) | set(self.files)) - deleted)

    def read(self, path: str) -> str | None:
        return self.files[path] if path in self.files else self.inner.read(path)

    def blob_id(self, path: str) -> str | None:
        if path in self.files:
            text = self.files[path]
            return None if text is None else git_blob_sha(text)
        return self.inner.blob_id(path)


WORKTREE = "WORKTREE"
"""``--head WORKTREE``: the checked-out commit plus every uncommitted edit (staged or not) and
untracked file, so a change can be checked before it is committed."""


def uncommitted_paths(repo: Path) -> list[str]:
    """Files whose work-tree content differs from HEAD: edited, staged, deleted or untracked."""
    tracked = _git(repo, "diff", "--name-only", "--no-renames", "-z", "HEAD")
    untracked = _git(repo, "ls-files", "--others", "--exclude-standard", "-z")
    found = {p.decode("utf-8", "surrogateescape") for p in (tracked + b"\0" + untracked).split(b"\0") if p}
    return sorted(found)


def worktree_files(repo: Path, paths: Iterable[str]) -> dict[str, str | None]:
    """The work tree's text of each path (``None``: deleted, or not text)."""
    root = Path(_git(repo, "rev-parse", "--show-toplevel").decode().strip())
    files: dict[str, str | None] = {}
    for path in paths:
        try:
            files[path] = _decode((root / path).read_bytes())
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            files[path] = None
    return files


def _decode(data: bytes | None) -> str | None:
    if data is None or b"\0" in data[:8000]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def changed_paths(repo: Path, base: str, head: str) -> list[str]:
    """Paths that differ between two commits, both sides of a rename included."""
    out = _git(repo, "diff", "--name-only", "--no-renames", "-z", base, head)
    return [p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p]


def merge_base(repo: Path, base: str, head: str) -> str:
    """Where ``head`` forked from ``base`` (``base`` itself when the histories are unrelated)."""
    try:
        return _git(repo, "merge-base", base, head).decode().strip() or base
    except GitError:
        return base


HISTORY_DEPTH = 2000
"""Commits before the base read for who last changed each file: a reader untouched for longer
has no history owner (the fallback holds for it)."""


class GitHistory:
    """:class:`rules.owners.FileHistory` over a local repository: who last changed each file
    before ``base``, and who wrote the commits from ``base`` to ``head``. Read on first use, in
    one ``git log`` each, so a check that asks nobody reads no history."""

    def __init__(self, repo: Path, base: str, head: str, *, depth: int = HISTORY_DEPTH) -> None:
        self.repo, self.base, self.head, self.depth = repo, base, head, depth
        self._recent: dict[str, tuple[str, ...]] | None = None
        self._authors: frozenset[str] | None = None
        self._aliases: dict[str, set[str]] = {}

    def recent_authors(self, path: str) -> tuple[str, ...]:
        if self._recent is None:
            self._recent = self._read_recent()
        return self._recent.get(path, ())

    def change_authors(self) -> frozenset[str]:
        """The change's authors' e-mails, and every other e-mail their names committed under
        here (one person often commits from a work address and GitHub's noreply one)."""
        if self._authors is None:
            if self._recent is None:
                self._recent = self._read_recent()
            out = _git(self.repo, "log", "--format=%ae%x00%an", f"{self.base}..{self.head}")
            emails: set[str] = set()
            for line in out.decode("utf-8", "replace").splitlines():
                email, _, name = line.partition("\0")
                emails.add(email.strip().lower())
                emails.update(self._aliases.get(name.strip().lower(), ()))
            self._authors = frozenset(e for e in emails if e)
        return self._authors

    def _read_recent(self) -> dict[str, tuple[str, ...]]:
        out = _git(
            self.repo, "log", "--no-merges", "--no-renames", f"-n{self.depth}", "--format=%x01%ae%x02%an",
            "--name-only", "-z", self.base,
        )
        recent: dict[str, list[str]] = {}
        for chunk in out.decode("utf-8", "surrogateescape").split("\x01")[1:]:
            who, *names = chunk.split("\0")  # -z: "<e-mail>\x02<name>\0\n<path>\0<path>\0"
            email, _, author = who.partition("\x02")
            email = email.strip().lower()
            self._aliases.setdefault(author.strip().lower(), set()).add(email)
            for name in names:
                path = name.strip("\n")
                if path:
                    seen = recent.setdefault(path, [])
                    if email not in seen and len(seen) < 5:
                        seen.append(email)
        return {path: tuple(emails) for path, emails in recent.items()}


def cache_dir(repo: Path) -> Path:
    """``<git dir>/tessera-cache``: shared by worktrees, invisible to the work tree."""
    common = _git(repo, "rev-parse", "--git-common-dir").decode().strip()
    path = Path(common)
    if not path.is_absolute():
        path = (repo / path).resolve()
    return path / "tessera-cache"


DESCRIPTION = "Analyse the schema change between two git revisions, as a pull request would be."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``tessera check`` (also used by ``app/cli.py``)."""
    parser.add_argument("--repo", default=".", help="the git checkout (default: the current folder)")
    parser.add_argument("--base", required=True, help="the revision the change is compared against")
    parser.add_argument(
        "--head", default="HEAD",
        help=f"the changed revision (default: HEAD; {WORKTREE}: HEAD plus the uncommitted edits in the work tree)",
    )
    parser.add_argument("--format", choices=("json", "markdown"), default="markdown")
    parser.add_argument(
        "--manifest",
        help="a dbt manifest.json describing the head revision (e.g. from a fresh dbt compile); it stands in"
        " for the manifest at dbt.manifest in .tessera.yml (default target/manifest.json), which the base"
        " side reads from its own revision when committed",
    )
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the parse cache")
    parser.add_argument(
        "--offline",
        action="store_true",
        help="never fetch dbt packages (also TESSERA_PACKAGES_OFFLINE=1); a committed dbt_packages/ is"
        " still read, and built-in renderings of common macros stand in for the rest",
    )
    parser.add_argument(
        "--db",
        help="a Tessera store (SQLite file) whose registrations and observed consumers join the analysis"
        " (default: TESSERA_DB when that file exists)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive(float),
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"stop the analysis after this many seconds (default {DEFAULT_TIMEOUT:g}); exit 2 when it does",
    )
    parser.add_argument(
        "--memory-mb",
        type=_positive(int),
        default=None,
        metavar="N",
        help="address space the analysis may use, in MB (default TESSERA_ANALYSIS_MEMORY_MB or "
        f"{DEFAULT_ANALYSIS_MEMORY_MB}); exit 2 when it needs more",
    )


DEFAULT_TIMEOUT = 300.0


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    """An argparse type: a number above zero."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above zero, got {text}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tessera check", description=DESCRIPTION)
    add_arguments(parser)
    return parser


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that raises on a usage error instead of exiting the process."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def _usage(parser: argparse.ArgumentParser, argv: Sequence[str], err: IO[str]) -> argparse.Namespace | None:
    """Parse arguments; a usage error prints the usage and the message and gives None."""
    try:
        return parser.parse_args(list(argv))
    except _UsageError as error:
        err.write(parser.format_usage())
        err.write(f"tessera check: error: {error}\n")
        return None


def run(args: argparse.Namespace, out: IO[str], err: IO[str], *, today: datetime.date) -> int:
    """Run one check in a child process under the time and memory limits; raises
    :class:`GitError` for bad repositories or revisions and :class:`~app.engine.WorkerKilled`
    when the analysis went over a limit."""
    limits = Limits(seconds=args.timeout, memory_mb=args.memory_mb)
    # The store is trusted and read here, outside the child's memory cap: SQLite maps its
    # shared-memory file, which fails as "disk I/O error" in a child already near its cap.
    store = _store_reads(getattr(args, "db", None), today=today)
    text, notes, code = run_limited(analyse_revisions, args, today, store, limits=limits)
    out.write(text)
    out.flush()
    err.write(notes)
    return code


def analyse_revisions(
    args: argparse.Namespace, today: datetime.date, store: StoreReads | None = None
) -> tuple[str, str, int]:
    """(In the limited child.) The report's text, the notes for stderr (uncommitted edits left out,
    the dialect each dbt project was read in) and the exit code."""
    repo = Path(args.repo)
    if not repo.is_dir():
        raise GitError(f"{repo} is not a folder")
    _require_repository(repo)
    worktree = args.head == WORKTREE
    head_commit = resolve_commit(repo, "HEAD" if worktree else args.head)
    base_commit = merge_base(repo, resolve_commit(repo, args.base), head_commit)
    edited = uncommitted_paths(repo) if worktree or args.head == "HEAD" else []
    warning = ""
    if edited and not worktree:
        shown = ", ".join(edited[:3]) + (f" and {len(edited) - 3} more" if len(edited) > 3 else "")
        warning = (
            f"tessera check: {len(edited)} uncommitted change(s) are not checked ({shown}): this compares"
            f" commits; commit them, or pass --head {WORKTREE} to check the work tree\n"
        )
    with contextlib.ExitStack() as stack:
        texts: dict[str, str | None] = {}
        base_source = stack.enter_context(GitSource(repo, base_commit, texts=texts))
        head_source = stack.enter_context(GitSource(repo, head_commit, texts=texts))
        config = parse_config(base_source.read(CONFIG_PATH))
        paths = changed_paths(repo, base_commit, head_commit)
        if any(may_change_schemas(p, config) for p in paths):
            for side in (base_source, head_source):
                side.prefetch(likely_reads(side.paths(), config))
        package_files, package_notes = _packages(args, repo, base_source, config, [*paths, *edited])
        base_view: GitSource | OverlaySource = OverlaySource(base_source, package_files) if package_files else base_source
        head_view: GitSource | OverlaySource = OverlaySource(head_source, package_files) if package_files else head_source
        if worktree and edited:
            head_view = OverlaySource(head_source, {**package_files, **worktree_files(repo, edited)})
            paths = sorted(set(paths) | set(edited))
        if args.manifest:
            manifest_path, manifest_text = _read_manifest(
                repo, Path(args.manifest), default=config.dbt.manifest or "target/manifest.json"
            )
            overlaid = head_view.files if isinstance(head_view, OverlaySource) else {}
            head_view = OverlaySource(head_source, {**overlaid, manifest_path: manifest_text})
            config = replace(config, dbt=replace(config.dbt, manifest=manifest_path))
            if manifest_path not in paths:
                paths.append(manifest_path)
        map_jobs = stack.enter_context(ForkMap())
        stack.enter_context(collector_paused())
        analysis = analyze(
            base_view,
            head_view,
            base_rev=base_commit,
            head_rev=head_commit,
            config=config,
            changed_paths=paths,
            cache=ParseCache() if args.no_cache else DiskParseCache(cache_dir(repo)),
            today=today,
            map_jobs=map_jobs,
            registrations=list(store.registrations) if store else [],
            coverage=store.coverage if store else (),
            history=GitHistory(repo, base_commit, head_commit),
        )
    raise_if_out_of_memory(e.message for e in analysis.errors)
    analysis = replace(analysis, notes=(*analysis.notes, *package_notes))
    text = to_json(analysis) + "\n" if args.format == "json" else to_markdown(analysis)
    notes = warning + "".join(  # on stderr, so the JSON on stdout stays one object
        f"tessera check: read {'the root project' if p.path in ('', '.') else f'{p.path}/'} as "
        f"{display_name(p.dialect.name)} ({p.dialect.source})\n"
        for p in analysis.projects
    ) + "".join(f"tessera check: {note}\n" for note in package_notes)
    return text, notes, EXIT_NEEDS_ACK if analysis.status == "needs_ack" else EXIT_CLEAR


def _store_reads(db: str | None, *, today: datetime.date) -> StoreReads | None:
    """:func:`app.check_store.store_registrations` for ``--db``; without it the store's modules
    (and their PostgreSQL and SQLite drivers) are never loaded: a check starts faster without them."""
    if not db:
        return None
    from app.check_store import StoreUnreadable, store_registrations  # lazy: only for --db

    try:
        return store_registrations(db, today=today)
    except StoreUnreadable as error:
        raise GitError(str(error)) from None


def _packages(
    args: argparse.Namespace, repo: Path, base: GitSource, config: Config, changed: list[str]
) -> tuple[dict[str, str | None], tuple[str, ...]]:
    """The files the base's dbt packages add to both sides, and notes for the user. A project
    that declares no package needs none of the fetching machinery (an HTTP client and its TLS
    set-up), so it is loaded only for one that does."""
    paths = list(base.paths())
    folders = project_folders(paths, config)
    listed = set(paths)
    if not any(path in listed for folder in folders for path in dependency_paths(folder)):
        return {}, ()
    from app.workflow.packages import packages_for_check  # lazy: only for declared packages

    installed = packages_for_check(
        folders,
        paths,
        base.read,
        settings=getattr(args, "package_settings", None) or Settings(packages_offline=True),
        cache_folder=None if args.no_cache else str(cache_dir(repo) / "packages"),
        changed=changed,
    )
    return {p: d.decode("utf-8") for p, d in installed.files.items()}, installed.notes


def _read_manifest(repo: Path, path: Path, *, default: str) -> tuple[str, str]:
    """The manifest's repository-relative path and its text.

    A file outside the repository (a fresh ``dbt compile`` elsewhere) stands in for the head's
    manifest at the configured path (``default``), so the base side still reads the manifest
    committed there, if any.
    """
    full = path if path.is_absolute() else Path.cwd() / path
    try:
        text = full.read_text(encoding="utf-8")
    except OSError as error:
        raise GitError(f"cannot read the manifest {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise GitError(f"the manifest {path} is not UTF-8 text") from None
    try:
        document = json.loads(text)
    except ValueError as error:
        raise GitError(f"the manifest {path} is not valid JSON: {error}") from None
    if not looks_like_manifest(document):
        raise GitError(
            f"{path} is not a dbt manifest (expected dbt's target/manifest.json: a JSON object with"
            ' "nodes" and "metadata")'
        )
    try:
        relative = full.resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        relative = default
    return relative, text


def main(argv: Sequence[str] | None = None, *, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """Entry point for ``tessera check``; returns the exit code instead of exiting."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = _parser()
    args = _usage(parser, sys.argv[1:] if argv is None else argv, err)
    if args is None:
        return EXIT_ERROR
    return run_args(args, out=out, err=err)


def run_args(
    args: argparse.Namespace,
    settings: object = None,
    *,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> int:
    """Run a parsed ``tessera check`` and turn every failure into a message and exit code 2.

    ``settings`` (``app/cli.py`` passes it) gives ``--memory-mb``'s default.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    if not getattr(args, "db", None) and isinstance(settings, Settings) and Path(settings.db_path).is_file():
        args.db = settings.db_path
    if args.memory_mb is None:
        args = argparse.Namespace(**{**vars(args), "memory_mb": _memory_setting(settings)})
    try:
        package_settings = settings if isinstance(settings, Settings) else Settings.from_env()
    except ConfigError as error:
        err.write(f"tessera check: {error}\n")
        return EXIT_ERROR
    if getattr(args, "offline", False):
        package_settings = package_settings.with_overrides(packages_offline=True)
    args = argparse.Namespace(**{**vars(args), "package_settings": package_settings})
    try:
        return run(args, out, err, today=datetime.date.today())
    except GitError as error:
        err.write(f"tessera check: {error}\n")
        return EXIT_ERROR
    except WorkerKilled as killed:
        option = {"time": " (--timeout)", "memory": " (--memory-mb)"}.get(killed.limit, "")
        err.write(f"tessera check: the analysis was stopped: {killed}{option}\n")
        return EXIT_ERROR
    except Exception as error:  # noqa: BLE001 - the CLI reports, it never shows a traceback
        err.write(f"tessera check: internal error: {type(error).__name__}: {error}\n")
        return EXIT_ERROR


def _memory_setting(settings: object) -> int:
    """``TESSERA_ANALYSIS_MEMORY_MB`` from the settings given, else from the environment."""
    if isinstance(settings, Settings):
        return settings.analysis_memory_mb
    try:
        return Settings.from_env().analysis_memory_mb
    except ConfigError:
        return DEFAULT_ANALYSIS_MEMORY_MB


def exit_now(code: int) -> NoReturn:
    """Leave the process at once after a check: the output is flushed and the parse cache
    already written, and tearing the interpreter down (freeing a large parse heap object by
    object) costs a tenth of a second that the user would wait for."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
