"""Run a function over many items in worker processes, with a progress bar.

Decoding, stamping and encoding are CPU-bound, so work goes to processes, not threads. Each
item's exception is caught and handed back with the item, so one bad video never stops a run.

Stopping is the parent's decision, and nothing runs on after it:
- workers ignore SIGINT: a Ctrl-C reaches the whole process group, and the parent, not each
  worker, decides what an interrupt means;
- when the parent leaves run_parallel early (an exception, KeyboardInterrupt, the consumer
  closing the generator) it sends SIGTERM to its workers and waits until they are gone (SIGKILL
  after a few seconds), so no worker writes anything once run_parallel has returned;
- SIGTERM in a worker raises WorkerStopped inside the running item, so its `finally` blocks
  remove half-written files, and then the worker exits;
- when the parent dies without cleaning up (kill -9), the kernel sends the workers SIGTERM
  (Linux PR_SET_PDEATHSIG); elsewhere a watcher thread notices the new parent within half a
  second. `check_parent()` lets an item refuse to commit its output once the parent is gone.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, TypeVar

from tqdm import tqdm

T = TypeVar("T")
STOP_TIMEOUT = 5.0  # seconds a worker gets to clean up after SIGTERM before SIGKILL
_STOPPED_EXIT = 128 + signal.SIGTERM  # the shell's code for "ended by SIGTERM"
_WATCH_INTERVAL = 0.5


@dataclass
class Outcome:
    item: Any
    result: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class WorkerStopped(BaseException):
    """Raised inside a worker's running item when it must stop: SIGTERM, or its parent is gone.

    A BaseException, so `except Exception` in the item does not swallow it.
    """


# ------------------------------------------------------------------ the worker side
_parent_pid: int | None = None  # set in worker processes only
_busy = False  # an item is running: SIGTERM raises inside it instead of exiting at once
_stopping = False


def check_parent() -> None:
    """In a worker: raise WorkerStopped when the run is stopping or the parent process is gone.

    Call it right before committing an output (a rename that makes a result visible), so a
    worker never finishes work for a parent that no longer exists. Outside workers it does nothing.
    """
    if _parent_pid is not None and (_stopping or os.getppid() != _parent_pid):
        raise WorkerStopped("the parent process is gone" if os.getppid() != _parent_pid else "stopping")


def _on_sigterm(signum, frame) -> None:
    global _stopping
    if _stopping:
        return  # already unwinding: let the cleanup finish
    _stopping = True
    if _busy:
        raise WorkerStopped(f"signal {signum}")
    os._exit(_STOPPED_EXIT)  # idle (waiting for work or sending a result): nothing to clean up


def _die_with_parent() -> None:
    """Linux: ask the kernel to send SIGTERM to this process when its parent dies.

    Strictly, when the parent's thread that started this process ends: that is the thread
    iterating run_parallel, which outlives the pool.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        pass  # no prctl: the watcher thread still notices


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_WATCH_INTERVAL)
    if hasattr(signal, "pthread_kill"):
        # Aimed at the main thread: a signal taken by this thread would not wake a blocked read there.
        signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)
        time.sleep(STOP_TIMEOUT)  # time to clean up; a main thread stuck in a C call gets no more
    os._exit(_STOPPED_EXIT)


def _init_worker(parent_pid: int) -> None:
    global _parent_pid
    _parent_pid = parent_pid
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    _die_with_parent()
    if os.getppid() != parent_pid:  # the parent died before the kernel was asked to tell us
        os._exit(_STOPPED_EXIT)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="parent-watch", daemon=True).start()


def _run_item(fn: Callable[[T], Any], item: T) -> Any:
    global _busy
    try:
        _busy = True
        try:
            return fn(item)
        finally:
            _busy = False
    except WorkerStopped:
        # The item's cleanup has run; returning to the pool would take the next item.
        os._exit(_STOPPED_EXIT)


# ------------------------------------------------------------------ the parent side
def _stop_workers(pool: ProcessPoolExecutor, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM every worker, wait until each is gone (SIGKILL after `timeout`), drop the queued items."""
    from multiprocessing.connection import wait as wait_ready

    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        process.terminate()
    # A process's sentinel is ready once it has exited; another thread may reap it, so
    # is_alive() is not reliable here.
    alive = {process.sentinel: process for process in processes}
    deadline = time.monotonic() + timeout
    while alive and time.monotonic() < deadline:
        for sentinel in wait_ready(list(alive), deadline - time.monotonic()):
            alive.pop(sentinel)
    for process in alive.values():
        process.kill()
    if alive:
        wait_ready(list(alive), timeout)
    # With every worker gone the pool's manager thread ends at once; joining it frees the queues
    # (otherwise their semaphores can outlive this process and draw a resource_tracker warning).
    pool.shutdown(wait=True, cancel_futures=True)


def run_parallel(
    fn: Callable[[T], Any],
    items: Iterable[T],
    workers: int = 1,
    desc: str = "",
    unit: str = "it",
    progress: bool = True,
) -> Iterator[Outcome]:
    """Yield an Outcome per item as items finish (completion order, not input order).

    `fn` must be a module-level function (it is sent to spawned processes). With workers <= 1
    everything runs in this process, which keeps tracebacks simple for debugging. Leaving the
    loop early (break, an exception, Ctrl-C) stops the workers before control returns; use
    `contextlib.closing` around the generator when the loop body itself may raise.
    """
    items = list(items)
    bar = tqdm(total=len(items), desc=desc, unit=unit, disable=not progress, dynamic_ncols=True)
    try:
        if workers <= 1:
            for item in items:
                try:
                    yield Outcome(item, fn(item))
                except Exception as exc:  # reported per item by the caller
                    yield Outcome(item, error=exc)
                bar.update(1)
            return
        yield from _in_processes(fn, items, workers, bar)
    finally:
        bar.close()


def _in_processes(fn, items, workers, bar) -> Iterator[Outcome]:
    # spawn: workers start clean, without state (decoders, threads) copied from this process
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                               initargs=(os.getpid(),))
    finished = False
    try:
        pending = {}
        queue = iter(items)
        # Keep a bounded number of tasks in flight so huge item lists do not pile up in memory.
        for item in queue:
            pending[pool.submit(_run_item, fn, item)] = item
            if len(pending) >= 2 * workers:
                break
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                item = pending.pop(future)
                error = future.exception()
                yield Outcome(item, None if error else future.result(), error)
                bar.update(1)
                next_item = next(queue, _END)
                if next_item is not _END:
                    pending[pool.submit(_run_item, fn, next_item)] = next_item
        finished = True
    finally:
        if finished:
            try:
                pool.shutdown(wait=True)
            except BaseException:  # interrupted while the idle workers exit
                _stop_workers(pool)
                raise
        else:
            _stop_workers(pool)


_END = object()
