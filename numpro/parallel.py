"""Run a function over many items in worker processes, with a progress bar.

Decoding, stamping and encoding are CPU-bound, so work goes to processes, not threads. Each
item's exception is caught and handed back with the item, so one bad video never stops a run.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, TypeVar

from tqdm import tqdm

T = TypeVar("T")


@dataclass
class Outcome:
    item: Any
    result: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


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
    everything runs in this process, which keeps tracebacks simple for debugging.
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
        # spawn: workers start clean, without state (decoders, threads) copied from this process
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            pending = {}
            queue = iter(items)
            # Keep a bounded number of tasks in flight so huge item lists do not pile up in memory.
            for item in queue:
                pending[pool.submit(fn, item)] = item
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
                        pending[pool.submit(fn, next_item)] = next_item
    finally:
        bar.close()


_END = object()
