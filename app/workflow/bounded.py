"""Running small parsing work in a thread with a time budget that is really enforced.

Analyses run in worker processes (:mod:`app.engine`); what is left in the server's threads is small
and pre-checked (``.tessera.yml`` after its size and alias count, a manifest uploaded through the
API). It is still user input: ``asyncio.timeout`` around ``asyncio.to_thread`` only stops
*waiting*, and the thread would keep the CPU for hours. So when the budget is spent,
:func:`run_bounded` raises :class:`OverBudget` *inside* the thread (CPython's ``PyThreadState_SetAsyncExc``: delivered at the
thread's next bytecode), which unwinds the engine and frees the thread. ``OverBudget`` is a
``BaseException`` so that the engine's own ``except Exception`` (which turns a bad file into a
finding and carries on) cannot swallow it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

GRACE_SECONDS = 5.0
"""How long to wait for the interrupted thread to unwind before giving up on it."""


class OverBudget(BaseException):  # noqa: N818 - it is raised inside the engine's thread, not an error of it
    """The work ran past its time budget and was interrupted."""


class _Guard:
    """Which thread runs the work, and whether it still does (so a late interrupt hits nothing)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.thread_id: int | None = None
        self.running = False

    def enter(self) -> None:
        with self.lock:
            self.thread_id = threading.get_ident()
            self.running = True

    def leave(self) -> None:
        with self.lock:
            self.running = False

    def interrupt(self) -> bool:
        with self.lock:
            if not self.running or self.thread_id is None:
                return False
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread_id), ctypes.py_object(OverBudget))
            return True


async def run_bounded(work: Callable[[], T], seconds: float, *, lock: threading.Lock | None = None) -> T:
    """``work()`` in a thread; past ``seconds`` it is interrupted and :class:`OverBudget` raised here.

    With ``lock``, the thread holds it while working and the budget starts once it has it (waiting
    for another analysis to finish is not this one's fault)."""
    guard = _Guard()
    loop = asyncio.get_running_loop()
    started: asyncio.Future[None] = loop.create_future()

    def begin() -> None:
        if not started.done():
            started.set_result(None)

    def guarded() -> T:
        with lock if lock is not None else contextlib.nullcontext():
            guard.enter()
            loop.call_soon_threadsafe(begin)
            try:
                return work()
            finally:
                guard.leave()

    future = asyncio.ensure_future(asyncio.to_thread(guarded))
    try:
        await asyncio.wait({future, started}, return_when=asyncio.FIRST_COMPLETED)
        done, _ = await asyncio.wait({future}, timeout=seconds)
    except asyncio.CancelledError:
        guard.interrupt()  # the job timed out or the server stops: the thread must not run on
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved: nobody awaits it now
        raise
    if done:
        return future.result()
    guard.interrupt()
    try:
        async with asyncio.timeout(GRACE_SECONDS):
            return await asyncio.shield(future)
    except OverBudget:
        raise
    except TimeoutError:
        raise OverBudget(f"still running {GRACE_SECONDS:g}s after it was interrupted") from None
