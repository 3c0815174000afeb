"""Running the engine: in warm worker processes, with a time and a memory limit that really hold.

Why processes. The engine is pure Python over user input, and some input never lets go of the
GIL: ``{% set x = (n ** (n ** 7 * 4)) %}`` is one big-integer power computed in C, so no interrupt
lands and nothing else in the process runs until it ends (the server's event loop stalled ~50 s
per attempt); ``{{ 'a' * 10**9 }}`` takes gigabytes. So no engine code runs in the server's
process. An :class:`AnalysisPool` keeps ``workers`` processes, started from a fork server that has
already imported the engine (an analysis pays neither Python's start-up nor the imports); each
worker has ``RLIMIT_AS`` set to the memory limit, and the time budget is enforced by killing it.
Several pull requests are analysed at once, one per worker.

A job is a module-level function (it pickles by name) and its arguments; the function gets a
:class:`WorkerContext` first (the App's jobs are in :mod:`app.workflow.jobs`). Files are still read lazily: blobs the server already holds go with
the job, and for any other the worker asks the server, which fetches it (store or GitHub) and
answers. A job that ends its worker (over time, over memory, crashed) raises :class:`WorkerKilled`
naming the limit; the worker is replaced.

Also here, because they belong to the process that owns them rather than to the pure engine: the
parse cache on disk (:class:`DiskParseCache`), the garbage-collector switches around a build
(:func:`collector_paused`, :func:`collected_map`), inference shared with forked processes
(:class:`ForkMap`, for ``tessera check``) and :func:`run_limited`, which runs one function in a
child process under the same limits (``tessera check --timeout --memory-mb``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import gc
import logging
import multiprocessing
import os
import pickle
import resource
import signal
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, TypeVar

from app.config import Settings
from rules import analyze as _engine  # noqa: F401 - imported so that the fork server preloads the engine
from rules.build import InferenceJob, ParseCache

log = logging.getLogger(__name__)

T = TypeVar("T")

RETIRE_SHARE = 0.5
"""A worker whose resident memory passed this share of the limit after a job is replaced (its
caches would otherwise grow into the limit and fail a harmless analysis)."""


@dataclass(frozen=True)
class Limits:
    """What one analysis may use: wall-clock seconds and address space in MB."""

    seconds: float
    memory_mb: int


class WorkerKilled(Exception):  # noqa: N818 - it names what happened to the worker
    """The analysis ended its worker process: over the time limit, over the memory limit, or a
    crash. ``limit`` is ``time``, ``memory`` or ``crash``; ``str()`` is one line for a person."""

    def __init__(self, limit: str, limits: Limits, detail: str = "") -> None:
        self.limit = limit
        self.limits = limits
        self.detail = detail
        super().__init__(self.describe())

    def describe(self) -> str:
        if self.limit == "time":
            text = f"over the {self.limits.seconds:g} s time limit"
        elif self.limit == "memory":
            text = f"over the {self.limits.memory_mb} MB memory limit"
        else:
            text = "the analysis process crashed"
        return f"{text} ({self.detail})" if self.detail else text


class EngineFailed(Exception):
    """The job raised in the worker (an engine bug); the worker itself is fine."""


# --- the parse cache on disk ----------------------------------------------------------------------


class DiskParseCache(ParseCache):
    """:class:`rules.build.ParseCache` kept on disk as well, so a new process (the next
    ``tessera check``, a replaced worker, the server after a restart) starts warm.

    Entries are written in packs: :meth:`flush` (at the end of each build) writes every new entry as
    one pack file and records its keys in ``index.pkl``. One file per build rather than one per
    entry: on a slow filesystem an ``open`` costs milliseconds, and a cold build makes a thousand
    entries. Several processes share a directory: every pack has its own name (one writer each) and
    is written atomically, and the index is read, merged and replaced under an exclusive ``flock``,
    so concurrent writers never lose each other's keys nor corrupt a file. The directory holds only
    what this code wrote, so reading it back trusts nothing from a repository.
    """

    MAX_PACKS_IN_MEMORY = 8

    def __init__(self, directory: str | os.PathLike[str], *, max_entries: int = 100_000, max_packs: int = 64) -> None:
        """``max_packs`` bounds the disk (oldest packs go first)."""
        super().__init__(max_entries=max_entries)
        self._directory = Path(directory)
        self._max_packs = max_packs
        self._index: dict[str, str] | None = None
        self._packs: dict[str, dict[str, bytes]] = {}
        self._pending: dict[str, Any] = {}

    def put(self, key: str, value: Any) -> None:
        super().put(key, value)
        self._pending[key] = value

    def flush(self) -> None:
        """Write the entries put since the last flush to disk."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        try:
            self._write_pack(pending)
        except (OSError, pickle.PicklingError, TypeError, AttributeError):
            return  # a cache that cannot be written is only slower

    def _write_pack(self, pending: dict[str, Any]) -> None:
        packs = self._directory / "packs"
        packs.mkdir(parents=True, exist_ok=True)
        blobs = {k: pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL) for k, v in pending.items()}
        name = f"{_next_pack_number(packs):010d}-{os.getpid()}-{os.urandom(4).hex()}.pkl"
        _write_atomically(packs / name, pickle.dumps(blobs, protocol=pickle.HIGHEST_PROTOCOL))
        with _locked(self._directory / "index.lock"):
            index = self._prune(packs, {**self._read_index(), **dict.fromkeys(blobs, name)})
            _write_atomically(self._directory / "index.pkl", pickle.dumps(index, protocol=pickle.HIGHEST_PROTOCOL))
        self._index = index
        self._keep_pack(name, blobs)

    def _prune(self, packs: Path, index: dict[str, str]) -> dict[str, str]:
        """Delete the oldest packs beyond ``max_packs`` and forget their keys."""
        files = sorted(packs.glob("*.pkl"), key=lambda p: (_pack_number(p.name), p.name))
        stale = {p.name for p in files[: max(0, len(files) - self._max_packs)]}
        for name in stale:
            with contextlib.suppress(OSError):
                (packs / name).unlink()
            self._packs.pop(name, None)
        return {k: v for k, v in index.items() if v not in stale} if stale else index

    def _read_index(self) -> dict[str, str]:
        try:
            index = pickle.loads((self._directory / "index.pkl").read_bytes())  # noqa: S301 (our own file)
        except (OSError, pickle.PickleError, EOFError, AttributeError, ImportError, TypeError, ValueError):
            return {}
        return index if isinstance(index, dict) else {}

    def _keep_pack(self, name: str, pack: dict[str, bytes]) -> None:
        self._packs[name] = pack
        while len(self._packs) > self.MAX_PACKS_IN_MEMORY:
            del self._packs[next(iter(self._packs))]

    def _missing(self, key: str) -> Any | None:
        if self._index is None:
            self._index = self._read_index()
        name = self._index.get(key)
        if name is None:
            return None
        pack = self._packs.get(name)
        try:
            if pack is None:
                pack = pickle.loads((self._directory / "packs" / name).read_bytes())  # noqa: S301
                if not isinstance(pack, dict):
                    return None
                self._keep_pack(name, pack)
            blob = pack.get(key)
            return None if blob is None else pickle.loads(blob)  # noqa: S301
        except (OSError, pickle.PickleError, EOFError, AttributeError, ImportError, TypeError, ValueError):
            return None

    def __contains__(self, key: str) -> bool:
        if super().__contains__(key):
            return True
        if self._index is None:
            self._index = self._read_index()
        return key in self._index


def _pack_number(name: str) -> int:
    """Packs are numbered in the order they were written (``0000000007-<pid>-<rand>.pkl``)."""
    head = name.split("-", 1)[0]
    return int(head) if head.isdigit() else -1


def _next_pack_number(packs: Path) -> int:
    return 1 + max((_pack_number(p.name) for p in packs.glob("*.pkl")), default=0)


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created if missing) for the block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


# --- the collector and inference in forked processes ----------------------------------------------


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's automatic collector off for a build, in a process that runs one build at a time.

    A build allocates millions of objects (YAML, sqlglot trees), so the collector keeps running
    full collections over the whole heap: measured, a quarter of a cold build's CPU. The garbage it
    would find is each inference's syntax tree (parent links make cycles), which
    :func:`collected_map` frees with a young-generation collection costing only that tree. Forked
    processes inherit the paused collector, so they neither walk nor copy the parent's heap."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _collected(function: Callable[[InferenceJob], Any], job: InferenceJob) -> Any:
    """One inference, then (while the automatic collector is paused) a young collection: it frees
    the inference's syntax tree and costs no more than that tree."""
    result = function(job)
    if not gc.isenabled():
        gc.collect(0)
    return result


def collected_map(function: Callable[[InferenceJob], Any], jobs: list[InferenceJob]) -> list[Any]:
    """A ``rules.build.JobMap``: every job here, each followed by a young collection."""
    return [_collected(function, job) for job in jobs]


def idle_cores() -> int:
    """Cores besides this process's own that nothing else is using now: the cores less the
    last minute's load average (which counts the processes running or waiting for a core), less
    one for this process. 0 when the load cannot be read."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return 0
    return max(0, int((os.cpu_count() or 1) - 1 - load + 0.5))


class ForkMap:
    """A ``rules.build.JobMap`` that shares each wave with forked processes: for a process with a
    single thread (``tessera check``'s child), where forking is safe.

    This process is one of the ``workers``: it infers its share of a wave while ``workers - 1``
    forked processes infer the rest (one process fewer to fork, and a share never pickled). Forking
    pays from :attr:`MIN_JOBS` jobs on; once the processes exist, even a small wave is shared.

    Without a ``workers`` count, one process per core, but only when the machine has a core to
    spare (:func:`idle_cores`): on one whose cores are all taken, a forked helper gains no time and
    costs its own CPU (measured on a shared 2-core machine: +15 % CPU and a slower check)."""

    MIN_JOBS = 8

    def __init__(self, workers: int | None = None) -> None:
        if workers is None:
            workers = 1 + idle_cores() if threading.active_count() == 1 else 1
        self.workers = max(1, workers)
        self._pool: Any = None  # multiprocessing.pool.Pool, typed loosely by the standard library

    def __enter__(self) -> ForkMap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None

    def __call__(self, function: Callable[[InferenceJob], Any], jobs: list[InferenceJob]) -> list[Any]:
        if self.workers == 1 or len(jobs) < (self.MIN_JOBS if self._pool is None else 2):
            return collected_map(function, jobs)
        if self._pool is None:
            try:
                self._pool = multiprocessing.get_context("fork").Pool(self.workers - 1)
            except (OSError, ValueError):
                self.workers = 1
                return collected_map(function, jobs)
        here = len(jobs) // self.workers
        remote = jobs[here:]
        pending = self._pool.map_async(
            functools.partial(_collected, function), remote, chunksize=max(1, len(remote) // (self.workers * 4))
        )
        local = collected_map(function, jobs[:here])
        return local + list(pending.get())


# --- limits in a child process --------------------------------------------------------------------


def limit_memory(memory_mb: int) -> None:
    """Cap this process's address space at what it has now plus ``memory_mb``: an allocation past
    it fails with ``MemoryError`` here instead of taking the machine's memory.

    Relative, because a forked child starts with its parent's whole address space: a parent with a
    few threads has reserved a malloc arena (64 MB of address space) for each, and a child of such a
    process could fail its first allocation under an absolute cap it never used."""
    size = address_space_bytes() + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size, size))


def address_space_bytes() -> int:
    """This process's address space now (Linux; 0 where unknown)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def resident_mb() -> float:
    """This process's resident memory now (Linux; 0 where unknown)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1_048_576


def over_memory(exc: BaseException) -> bool:
    """Whether an exception raised under the memory limit is the limit's doing: ``MemoryError``,
    or ``SystemError`` ("error return without exception set"), which C code that failed to
    allocate can leave instead."""
    return isinstance(exc, MemoryError | SystemError)


def _crash_detail(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        if -exitcode == signal.SIGKILL:
            return f"{name}: killed from outside, usually the system running out of memory"
        return name
    return f"exit code {exitcode}"


def _limited_main(conn: Connection, memory_mb: int, task: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """The child of :func:`run_limited`: its own process group (so its helpers go with it when it
    is killed), the memory limit, the task, the answer, and out at once.

    The automatic collector stays off for the child's whole life: it runs one task and leaves
    through ``os._exit``, so no garbage outlives it, while the first collection after a build
    (with :func:`collector_paused` switched back on) walked every object the build had made:
    measured, 0.35 s of a 4.5 s check."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    gc.disable()
    try:
        limit_memory(memory_mb)
        result: tuple[str, Any] = ("done", task(*args))
    except BaseException as exc:  # noqa: BLE001 - handed to the parent, which raises it
        result = ("memory", "") if over_memory(exc) else ("raised", exc)
    try:
        conn.send(result)
    except MemoryError:
        with contextlib.suppress(BaseException):
            conn.send(("memory", ""))
    except BaseException:  # noqa: BLE001 - an exception that does not pickle
        with contextlib.suppress(BaseException):
            conn.send(("raised", EngineFailed(f"{type(result[1]).__name__}: {result[1]}")))
    conn.close()
    os._exit(0)


def run_limited(task: Callable[..., T], *args: Any, limits: Limits) -> T:
    """``task(*args)`` in a child process under ``limits``; its exception is raised here, and
    :class:`WorkerKilled` when it ran over a limit or crashed.

    The child is forked when this process has one thread (no imports, nothing to start), else
    started from the fork server."""
    method = "fork" if threading.active_count() == 1 else "forkserver"
    context = multiprocessing.get_context(method)
    ours, theirs = context.Pipe(duplex=False)
    child = context.Process(target=_limited_main, args=(theirs, limits.memory_mb, task, args), daemon=False)
    child.start()
    theirs.close()
    try:
        if not ours.poll(limits.seconds):
            _kill_group(child)
            raise WorkerKilled("time", limits)
        try:
            kind, value = ours.recv()
        except (EOFError, OSError):
            child.join(5)
            raise WorkerKilled("crash", limits, _crash_detail(child.exitcode)) from None
    finally:
        ours.close()
    child.join(5)
    if kind == "memory":
        raise WorkerKilled("memory", limits)
    if kind == "raised":
        raise value
    return value  # type: ignore[no-any-return]


def _kill_group(process: BaseProcess) -> None:
    """SIGKILL the process and the processes it started (it leads its own group)."""
    if process.pid is not None:
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(process.pid, signal.SIGKILL)
    process.join(5)


# --- the worker pool ------------------------------------------------------------------------------


class WorkerContext:
    """What a job gets in its worker: blobs by SHA (asked from the server when not sent with the
    job; the ``BlobReader`` of ``app.workflow.github_source``) and the worker's parse cache."""

    def __init__(self, conn: Connection, blobs: dict[str, bytes], cache: ParseCache) -> None:
        self._conn = conn
        self._blobs = blobs
        self.cache = cache
        self.asked = 0
        """Blobs asked from the server during this job."""

    def fetch_from_thread(self, sha: str) -> bytes | None:
        """The blob; None when the server could not get it (it re-raises why after the job)."""
        if sha in self._blobs:
            return self._blobs[sha]
        self._conn.send(("read", sha))
        kind, answered, data = self._conn.recv()
        if kind != "blob" or answered != sha:
            raise EngineFailed(f"the server answered {kind} {answered} to a read of {sha}")
        self.asked += 1
        if data is not None:
            self._blobs[sha] = data
        return data  # type: ignore[no-any-return]


def _worker_main(conn: Connection, memory_mb: int) -> None:
    """A pool worker: jobs one at a time until the server closes the pipe or the worker retires.

    Ctrl-C in a terminal reaches the whole process group: the server, not each worker, decides
    what it means (it stops, then closes the workers), so a worker ignores it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_memory(memory_mb)
    caches: dict[str, DiskParseCache] = {}
    memory = ParseCache()
    while True:
        try:
            _kind, task, args, blobs, cache_dir = conn.recv()
        except (EOFError, OSError):
            return
        cache = memory
        if cache_dir is not None:
            cache = caches.get(cache_dir) or caches.setdefault(cache_dir, DiskParseCache(cache_dir))
        try:
            with collector_paused():
                value = task(WorkerContext(conn, blobs, cache), *args)
            del blobs
            retiring = resident_mb() > memory_mb * RETIRE_SHARE
            conn.send(("done", value, retiring))
        except Exception as exc:  # noqa: BLE001 - an engine bug is the job's result, not the worker's end
            if over_memory(exc):
                with contextlib.suppress(BaseException):
                    conn.send(("memory", "", True))
                return
            with contextlib.suppress(BaseException):
                conn.send(("failed", f"{type(exc).__name__}: {exc}", False))
            continue
        if retiring:
            return
        gc.collect(1)  # the young garbage a job left; a full pass over the caches would cost the next job


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection


class AnalysisPool:
    """``workers`` warm worker processes, each limited to ``memory_mb`` of address space."""

    def __init__(self, *, workers: int, memory_mb: int) -> None:
        self.workers = max(1, workers)
        self.memory_mb = memory_mb
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._lock = threading.Lock()
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self.started = 0
        """Worker processes started so far (the first ones, and replacements)."""

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(self.workers)
        return slots

    def _start_worker(self) -> _Worker:
        context = _context()
        ours, theirs = context.Pipe(duplex=True)
        process = context.Process(
            target=_worker_main, args=(theirs, self.memory_mb), daemon=True, name="tessera-analysis"
        )
        process.start()
        theirs.close()
        self.started += 1
        return _Worker(process, ours)

    async def warm(self) -> None:
        """Start the worker processes now rather than at the first analysis."""
        missing = self.workers - len(self._idle) - len(self._busy)
        if missing > 0:
            started = await asyncio.gather(*(asyncio.to_thread(self._start_worker) for _ in range(missing)))
            with self._lock:
                self._idle.extend(started)

    async def run(
        self,
        task: Callable[..., T],
        *args: Any,
        seconds: float,
        blobs: Mapping[str, bytes] | None = None,
        reader: Callable[[str], bytes | None] | None = None,
        cache_dir: str | None = None,
    ) -> T:
        """``task(WorkerContext, *args)`` in a worker, within ``seconds`` of its own time (time spent
        fetching a blob it asked for is not its fault, and is added back).

        ``blobs`` go with the job; ``reader`` answers the worker's other reads (it is called on a
        thread, off the event loop). Raises :class:`WorkerKilled` (the worker is replaced),
        :class:`EngineFailed` (the job raised), or the cancellation (the worker is killed)."""
        limits = Limits(seconds, self.memory_mb)
        message = ("job", task, args, dict(blobs or {}), cache_dir)
        async with self._semaphore():
            worker = await self._take()
            talk = asyncio.ensure_future(asyncio.to_thread(self._converse, worker, message, limits, reader))
            try:
                value, healthy = await asyncio.shield(talk)
            except asyncio.CancelledError:
                # the job timed out or the server stops: the worker must not run on. Its thread
                # still holds the pipe; it sees the end of it and lets go, then the worker is reaped.
                worker.process.kill()
                talk.add_done_callback(lambda done: (done.cancelled() or done.exception(), self._discard(worker)))
                raise
            except EngineFailed:
                self._give_back(worker)
                raise
            except BaseException:
                self._discard(worker)
                raise
            if healthy:
                self._give_back(worker)
            else:
                self._discard(worker)
            return value  # type: ignore[no-any-return]

    async def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.process.is_alive():
                    self._busy.add(worker)
                    return worker
                worker.conn.close()
        worker = await asyncio.to_thread(self._start_worker)
        with self._lock:
            self._busy.add(worker)
        return worker

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            self._idle.append(worker)

    def _discard(self, worker: _Worker) -> None:
        """Kill the worker (if it still runs) and forget it; the next job starts a new one."""
        with self._lock:
            self._busy.discard(worker)
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(5)
        worker.conn.close()

    def _converse(
        self,
        worker: _Worker,
        message: tuple[Any, ...],
        limits: Limits,
        reader: Callable[[str], bytes | None] | None,
    ) -> tuple[Any, bool]:
        """(On a thread.) Send the job, answer its reads, and return (its value, worker healthy)."""
        deadline = time.monotonic() + limits.seconds
        try:
            worker.conn.send(message)
        except (OSError, ValueError) as exc:
            raise WorkerKilled("crash", limits, f"could not hand it the job: {exc}") from None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not worker.conn.poll(remaining):
                worker.process.kill()
                raise WorkerKilled("time", limits)
            try:
                reply = worker.conn.recv()
            except (EOFError, OSError):
                worker.process.join(5)
                raise WorkerKilled("crash", limits, _crash_detail(worker.process.exitcode)) from None
            kind = reply[0]
            if kind == "read":
                asked = time.monotonic()
                data = reader(reply[1]) if reader is not None else None
                deadline += time.monotonic() - asked
                worker.conn.send(("blob", reply[1], data))
            elif kind == "done":
                return reply[1], not reply[2]
            elif kind == "memory":
                worker.process.join(5)
                raise WorkerKilled("memory", limits)
            else:
                raise EngineFailed(str(reply[1]))

    def close(self) -> None:
        """Stop every worker (running jobs end as crashed)."""
        with self._lock:
            workers = [*self._idle, *self._busy]
            self._idle.clear()
        for worker in workers:
            worker.conn.close()
            if worker.process.is_alive():
                worker.process.kill()
            worker.process.join(5)


def _context() -> multiprocessing.context.BaseContext:
    """Workers come from the fork server, which imports the engine once: the server has threads
    (forking it could deadlock) and a start from scratch would pay ~1 s of imports per worker."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["app.engine", "app.workflow.jobs"])
    return context


_shared: AnalysisPool | None = None
_shared_lock = threading.Lock()


def shared_pool(workers: int, memory_mb: int) -> AnalysisPool:
    """The process's pool (one, whatever the caller): a different size or limit replaces it."""
    global _shared
    with _shared_lock:
        if _shared is None or (_shared.workers, _shared.memory_mb) != (max(1, workers), memory_mb):
            if _shared is not None:
                _shared.close()
            _shared = AnalysisPool(workers=workers, memory_mb=memory_mb)
        return _shared


# --- what the App runs in its workers -------------------------------------------------------------


def pool_for(settings: Settings) -> AnalysisPool:
    """The App's pool, sized and limited by ``TESSERA_ANALYSIS_WORKERS`` / ``_MEMORY_MB``."""
    return shared_pool(settings.analysis_workers, settings.analysis_memory_mb)


def analysis_budget(settings: Settings) -> float:
    """How long one engine run may take: well inside the job's time-out, so there is time left
    to complete the check with the reason."""
    return max(1.0, settings.job_timeout * 0.6)


def cache_dir(settings: Settings) -> str:
    """The parse cache beside the database (keyed by content): a push re-parses only what
    changed, and so does the first analysis after a restart or in a replaced worker."""
    return f"{settings.db_path}.parse-cache"


def raise_if_out_of_memory(messages: Iterable[str]) -> None:
    """The engine turns a file it cannot read into a finding and carries on, even when the reason
    was ``MemoryError``. In a worker that can only mean the memory limit: the analysis is over
    memory as a whole (and the worker retires), not "one file could not be rendered"."""
    for message in messages:
        if "MemoryError" in message:
            raise MemoryError(message)


__all__ = [
    "AnalysisPool",
    "DiskParseCache",
    "EngineFailed",
    "ForkMap",
    "Limits",
    "WorkerContext",
    "WorkerKilled",
    "analysis_budget",
    "cache_dir",
    "collected_map",
    "collector_paused",
    "limit_memory",
    "over_memory",
    "pool_for",
    "raise_if_out_of_memory",
    "run_limited",
    "shared_pool",
]
