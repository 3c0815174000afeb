"""app.engine: analysis in worker processes whose time and memory limits hold, the parse cache on
disk shared by several processes, and inference shared with forked processes."""

from __future__ import annotations

import asyncio
import gc
import mmap
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from app.engine import (
    AnalysisPool,
    DiskParseCache,
    EngineFailed,
    ForkMap,
    Limits,
    WorkerContext,
    WorkerKilled,
    collector_paused,
    run_limited,
)
from rules.build import build_snapshot
from rules.config import parse_config
from rules.sources import DictSource
from tests.rules.dbt_data import project_files

CONFIG = parse_config("dbt: {dialect: postgres}\n")
FREEZE = "{% set n = 10 %}{% set x = (n ** (n ** 7 * 4)) %}{{ 1 }}"
"""One big-integer power computed in C: it never lets go of the GIL."""
MEMORY_BOMB = "{{ 'a' * 10**9 }}"


@pytest.fixture(scope="module")
def harbor_files() -> dict[str, str]:
    return project_files("harbor")


# --- jobs run in the workers (module level: they go to the worker by name) -----------------------


def render(worker: WorkerContext, template: str) -> str:
    from jinja2 import Environment

    return Environment().from_string(template).render()


def read_blobs(worker: WorkerContext, shas: list[str]) -> list[bytes | None]:
    return [worker.fetch_from_thread(sha) for sha in shas]


def pid(worker: WorkerContext) -> int:
    return os.getpid()


def segfault(worker: WorkerContext) -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def broken(worker: WorkerContext) -> None:
    raise ValueError("an engine bug")


def snapshot_columns(worker: WorkerContext, files: dict[str, str]) -> list[str]:
    snapshot = build_snapshot(DictSource(files), CONFIG, cache=worker.cache)
    return [c.name for c in snapshot.assets["b"].columns]


def spin(seconds: float) -> str:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return "done"


def allocate(megabytes: int) -> int:
    return len(bytearray(megabytes * 1024 * 1024))


def raise_lookup() -> None:
    raise LookupError("no such revision")


def collector_after_a_build() -> tuple[bool, bool]:
    """(whether the automatic collector runs during a build, and after it) in this process."""
    with collector_paused():
        during = gc.isenabled()
        build_snapshot(DictSource({"dbt_project.yml": "name: p\n", "models/a.sql": "select 1 as id"}), CONFIG)
    return during, gc.isenabled()


# --- the pool -------------------------------------------------------------------------------------


@pytest.fixture
async def pool() -> AnalysisPool:
    pool = AnalysisPool(workers=1, memory_mb=512)
    yield pool
    pool.close()


async def test_a_job_runs_in_a_worker_process_and_its_value_comes_back(pool: AnalysisPool) -> None:
    assert await pool.run(render, "{{ 6 * 7 }}", seconds=30) == "42"
    assert await pool.run(pid, seconds=30) != os.getpid()


async def test_the_worker_stays_warm_between_jobs(pool: AnalysisPool) -> None:
    first = await pool.run(pid, seconds=30)
    started = time.monotonic()
    assert await pool.run(pid, seconds=30) == first
    assert time.monotonic() - started < 1.0
    assert pool.started == 1


async def test_a_template_that_never_lets_go_of_the_gil_is_killed_at_the_time_limit_and_the_loop_runs_on(
    pool: AnalysisPool,
) -> None:
    await pool.run(pid, seconds=30)  # warm
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.ensure_future(tick())
    started = time.monotonic()
    with pytest.raises(WorkerKilled) as killed:
        await pool.run(render, FREEZE, seconds=1.5)
    took = time.monotonic() - started
    ticker.cancel()
    assert killed.value.limit == "time"
    assert str(killed.value) == "over the 1.5 s time limit"
    assert 1.4 < took < 5
    assert ticks > 50  # the event loop kept running all along
    assert await pool.run(render, "{{ 1 + 1 }}", seconds=30) == "2"  # a new worker took its place
    assert pool.started == 2


async def test_a_memory_bomb_ends_as_over_memory_without_growing_this_process(pool: AnalysisPool) -> None:
    with pytest.raises(WorkerKilled) as killed:
        await pool.run(render, MEMORY_BOMB, seconds=30)
    assert killed.value.limit == "memory"
    assert str(killed.value) == "over the 512 MB memory limit"
    assert await pool.run(render, "ok", seconds=30) == "ok"


async def test_a_crashing_worker_is_a_crash_named_by_its_signal(pool: AnalysisPool) -> None:
    with pytest.raises(WorkerKilled) as killed:
        await pool.run(segfault, seconds=30)
    assert killed.value.limit == "crash"
    assert "SIGSEGV" in str(killed.value)
    assert await pool.run(render, "again", seconds=30) == "again"


async def test_an_engine_bug_fails_the_job_and_keeps_the_worker(pool: AnalysisPool) -> None:
    first = await pool.run(pid, seconds=30)
    with pytest.raises(EngineFailed, match="ValueError: an engine bug"):
        await pool.run(broken, seconds=30)
    assert await pool.run(pid, seconds=30) == first


async def test_blobs_go_with_the_job_and_others_are_asked_from_the_server(pool: AnalysisPool) -> None:
    asked: list[str] = []

    def reader(sha: str) -> bytes | None:
        asked.append(sha)
        return None if sha == "gone" else f"fetched {sha}".encode()

    values = await pool.run(read_blobs, ["a", "b", "gone"], seconds=30, blobs={"a": b"sent"}, reader=reader)
    assert values == [b"sent", b"fetched b", None]
    assert asked == ["b", "gone"]


async def test_a_cancelled_job_kills_its_worker(pool: AnalysisPool) -> None:
    worker_pid = await pool.run(pid, seconds=30)
    task = asyncio.ensure_future(pool.run(render, FREEZE, seconds=60))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(worker_pid, 0)  # reaped, not left computing
    assert await pool.run(render, "next", seconds=30) == "next"


async def test_two_jobs_run_at_once_on_two_workers(tmp_path: Path) -> None:
    pool = AnalysisPool(workers=2, memory_mb=512)
    try:
        await pool.warm()
        pids = await asyncio.gather(pool.run(pid, seconds=30), pool.run(pid, seconds=30))
        assert len(set(pids)) == 2
    finally:
        pool.close()


async def test_workers_share_the_parse_cache_on_disk(tmp_path: Path) -> None:
    files = {"dbt_project.yml": "name: p\n", "models/a.sql": "select 1 as id", "models/b.sql": "select id from {{ ref('a') }}"}
    pool = AnalysisPool(workers=1, memory_mb=512)
    try:
        assert await pool.run(snapshot_columns, files, seconds=60, cache_dir=str(tmp_path)) == ["id"]
    finally:
        pool.close()
    assert list((tmp_path / "packs").iterdir())  # a new worker (or tessera check) starts warm
    fresh = DiskParseCache(tmp_path)
    build_snapshot(DictSource(files), CONFIG, cache=fresh)
    assert fresh.misses == 0


# --- run_limited (tessera check) -----------------------------------------------------------------


def test_run_limited_returns_the_value_and_raises_what_the_task_raised() -> None:
    assert run_limited(spin, 0.01, limits=Limits(30, 512)) == "done"
    with pytest.raises(LookupError, match="no such revision"):
        run_limited(raise_lookup, limits=Limits(30, 512))


def test_run_limited_stops_a_task_at_the_time_limit() -> None:
    started = time.monotonic()
    with pytest.raises(WorkerKilled) as killed:
        run_limited(spin, 60, limits=Limits(1, 512))
    assert killed.value.limit == "time" and time.monotonic() - started < 10


def test_run_limited_stops_a_task_at_the_memory_limit() -> None:
    assert run_limited(allocate, 50, limits=Limits(30, 512)) == 50 * 1024 * 1024
    with pytest.raises(WorkerKilled) as killed:
        run_limited(allocate, 800, limits=Limits(30, 512))
    assert killed.value.limit == "memory"


def test_a_limited_check_keeps_the_collector_off_after_its_build_and_leaves_this_process_alone() -> None:
    # the child leaves through os._exit: a collection after the build would only walk its heap
    assert run_limited(collector_after_a_build, limits=Limits(30, 512)) == (False, False)
    assert gc.isenabled()


def test_the_memory_limit_counts_what_the_task_adds_not_what_a_big_parent_had_reserved() -> None:
    """A forked child starts with its parent's address space (a server's threads reserve 64 MB of
    malloc arena each): the analysis still gets its 512 MB, and no more."""
    reserved = mmap.mmap(-1, 1024 * 1024 * 1024)  # address space only: never touched
    try:
        assert run_limited(allocate, 50, limits=Limits(30, 512)) == 50 * 1024 * 1024
        with pytest.raises(WorkerKilled) as killed:
            run_limited(allocate, 800, limits=Limits(30, 512))
        assert killed.value.limit == "memory"
    finally:
        reserved.close()


# --- the parse cache on disk ---------------------------------------------------------------------


def test_the_cache_on_disk_serves_a_new_process(tmp_path: Path, harbor_files: dict[str, str]) -> None:
    first = build_snapshot(DictSource(harbor_files), CONFIG, cache=DiskParseCache(tmp_path))
    fresh = DiskParseCache(tmp_path)
    second = build_snapshot(DictSource(harbor_files), CONFIG, cache=fresh)
    assert fresh.misses == 0 and fresh.hits > 0
    assert second.assets == first.assets


def test_a_corrupt_cache_file_is_a_miss_not_a_crash(tmp_path: Path) -> None:
    cache = DiskParseCache(tmp_path)
    cache.put("k1", {"x": 1})
    cache.flush()
    assert DiskParseCache(tmp_path).get("k1") == {"x": 1}
    for pack in (tmp_path / "packs").iterdir():
        pack.write_bytes(b"not a pickle")
    assert DiskParseCache(tmp_path).get("k1") is None
    (tmp_path / "index.pkl").write_bytes(b"\x80garbage")
    fresh = DiskParseCache(tmp_path)
    assert fresh.get("k1") is None
    fresh.put("k2", 2)
    fresh.flush()
    assert DiskParseCache(tmp_path).get("k2") == 2


def test_each_build_writes_one_pack_and_later_builds_add_to_the_index(tmp_path: Path) -> None:
    files = {
        "dbt_project.yml": "name: p\n",
        "models/a.sql": "select 1 as id",
        "models/b.sql": "select 2 as id",
    }
    build_snapshot(DictSource(files), CONFIG, cache=DiskParseCache(tmp_path))
    build_snapshot(DictSource({**files, "models/b.sql": "select 3 as id"}), CONFIG, cache=DiskParseCache(tmp_path))
    assert len(list((tmp_path / "packs").iterdir())) == 2
    warm = DiskParseCache(tmp_path)
    build_snapshot(DictSource(files), CONFIG, cache=warm)
    assert (warm.hits, warm.misses) == (1, 0)  # the whole first snapshot, from the first pack


def test_the_oldest_packs_are_deleted_beyond_the_limit(tmp_path: Path) -> None:
    disk = DiskParseCache(tmp_path, max_packs=2)
    for n in range(3):
        disk.put(f"k{n}", n)
        disk.flush()
    assert len(list((tmp_path / "packs").iterdir())) == 2
    fresh = DiskParseCache(tmp_path)
    assert (fresh.get("k0"), fresh.get("k1"), fresh.get("k2")) == (None, 1, 2)


def write_entries(directory: str, writer: int) -> None:
    cache = DiskParseCache(directory)
    for i in range(40):
        cache.put(f"{writer}-{i}", i)
        if i % 4 == 3:
            cache.flush()


def test_processes_writing_one_cache_directory_lose_none_of_each_others_entries(tmp_path: Path) -> None:
    context = multiprocessing.get_context("forkserver")
    writers = [context.Process(target=write_entries, args=(str(tmp_path), n)) for n in range(4)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(60)
    assert [p.exitcode for p in writers] == [0, 0, 0, 0]
    fresh = DiskParseCache(tmp_path, max_packs=1000)
    assert all(fresh.get(f"{n}-{i}") == i for n in range(4) for i in range(40))


# --- the collector and forked inference -----------------------------------------------------------


def test_a_build_under_collector_paused_runs_without_the_automatic_collector(harbor_files: dict[str, str]) -> None:
    seen: list[bool] = []
    source = DictSource(harbor_files)
    real_read = source.read

    def read(path: str) -> str | None:
        seen.append(gc.isenabled())
        return real_read(path)

    source.read = read  # type: ignore[method-assign]
    with collector_paused():
        build_snapshot(source, CONFIG)
    assert seen and not any(seen)
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # a caller that turned it off keeps it off
    finally:
        gc.enable()


def test_forked_processes_give_the_same_snapshot_as_one_process() -> None:
    files = {"dbt_project.yml": "name: p\n", "models/base.sql": "select 1 as id, 'x' as label, 2.5 as amount"}
    for i in range(24):
        files[f"models/m{i:02d}.sql"] = (
            f"select id, label || '{i}' as label, amount * {i} as amount_{i} from {{{{ ref('base') }}}}"
        )
        files[f"models/n{i:02d}.sql"] = (
            f"select m.id, sum(m.amount_{i}) as total from {{{{ ref('m{i:02d}') }}}} m group by m.id"
        )
    one = build_snapshot(DictSource(files), CONFIG)
    with ForkMap(2) as forked:
        two = build_snapshot(DictSource(files), CONFIG, map_jobs=forked)
        assert forked.workers == 2
    assert two.assets == one.assets
    assert two.edges == one.edges
    assert [c.name for c in two.assets["n07"].columns] == ["id", "total"]
    assert two.assets["n07"].column("id").type == "INT"  # type: ignore[union-attr]


def test_a_check_on_a_machine_whose_cores_are_all_busy_infers_in_its_own_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A forked helper on a machine with no core to spare gains no time and costs its own CPU."""
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (6.0, 5.0, 4.0))
    files = {"dbt_project.yml": "name: p\n", "models/base.sql": "select 1 as id, 2.5 as amount"}
    for i in range(12):
        files[f"models/m{i:02d}.sql"] = f"select id, amount * {i} as amount_{i} from {{{{ ref('base') }}}}"
    running = set(multiprocessing.active_children())  # other tests' servers may be up
    with ForkMap() as automatic:
        snapshot = build_snapshot(DictSource(files), CONFIG, map_jobs=automatic)
        assert automatic.workers == 1
        assert set(multiprocessing.active_children()) <= running  # no process was started
    assert [c.name for c in snapshot.assets["m07"].columns] == ["id", "amount_7"]
    assert snapshot.assets == build_snapshot(DictSource(files), CONFIG).assets


def test_a_check_on_an_idle_machine_shares_its_inferences_with_one_process_per_core(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.3, 0.4))
    assert ForkMap().workers == 4
    monkeypatch.setattr(os, "getloadavg", lambda: (2.0, 2.0, 2.0))
    assert ForkMap().workers == 2  # two cores taken: this process and one helper
