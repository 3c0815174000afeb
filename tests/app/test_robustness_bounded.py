"""run_bounded: engine work past its budget is really stopped, not just no longer waited for."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from app.workflow.bounded import OverBudget, run_bounded
from tests.fixtures_app import wait_until


def spin_and_swallow() -> str:
    """Like the engine: a loop inside an ``except Exception`` that turns failures into findings."""
    try:
        while True:
            pass
    except Exception:  # noqa: BLE001 - the point: this must not catch the interrupt
        return "swallowed"


async def test_work_past_its_budget_is_interrupted_even_inside_except_exception() -> None:
    started = time.monotonic()
    with pytest.raises(OverBudget):
        await run_bounded(spin_and_swallow, 0.3)
    assert time.monotonic() - started < 3


async def test_work_within_its_budget_returns_its_result() -> None:
    assert await run_bounded(lambda: 6 * 7, 5) == 42


async def test_the_budget_starts_once_the_lock_is_held() -> None:
    lock = threading.Lock()
    lock.acquire()
    task = asyncio.ensure_future(run_bounded(lambda: time.sleep(0.2) or "ran", 0.5, lock=lock))
    await asyncio.sleep(0.8)  # longer than the budget, spent waiting for the lock
    lock.release()
    assert await task == "ran"


async def test_a_cancelled_caller_stops_the_thread_and_frees_the_lock() -> None:
    lock = threading.Lock()
    task = asyncio.ensure_future(run_bounded(spin_and_swallow, 100, lock=lock))
    await wait_until(lock.locked, timeout=3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until(lambda: not lock.locked(), timeout=3)
