"""A whole run: the plan's jobs in worker processes that may crash, the report, clean stops.

A worker that dies (a decoder crashing on a broken file) takes its pool down; the videos it held
are retried one per fresh process, so the culprit is named and the rest still done. SIGINT and
SIGTERM stop the workers, then the clips found finished on disk are counted, so the report
always matches the folder.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from ..cli_args import EXIT_INCOMPLETE, EXIT_OK
from ..jsonio import JsonInputError, read_json, write_json
from ..parallel import run_parallel
from .layout import is_done, manifest_path, report_path
from .plan import Job, Plan
from .settings import Settings
from .worker import describe, process_video


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGINT, SIGTERM) to the main process, raised like Ctrl-C so that one path
    stops the workers and writes the report."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def signals_stop_the_run() -> Iterator[None]:
    """SIGINT and SIGTERM raise Interrupted in this process; the ones after it are ignored, so
    that stopping the workers and writing the report is not cut short."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in stops}

    def stop(signum, frame):
        for sig in stops:
            signal.signal(sig, signal.SIG_IGN)
        raise Interrupted(signum)

    for sig in stops:
        signal.signal(sig, stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass
class Report:
    plan: Plan
    settings: Settings
    shard: tuple[int, int]
    done: int = 0
    failed: list[dict] = field(default_factory=list)
    source_frames: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    stopped_by: str | None = None  # the signal that interrupted the run
    finished: set[str] = field(default_factory=set)  # names of the jobs done or failed in this run

    @property
    def exit_code(self) -> int:
        return EXIT_INCOMPLETE if self.failed else EXIT_OK

    @property
    def left(self) -> int:
        """Planned videos neither done nor failed: the work a rerun will pick up."""
        return sum(1 for job in self.plan.jobs if job.name not in self.finished)

    def add_done(self, name: str, source_frames: int) -> None:
        self.done += 1
        self.source_frames += source_frames
        self.finished.add(name)

    def add_failed(self, job: Job, error: str) -> None:
        self.failed.append({"source": job.source, "error": error})
        self.finished.add(job.name)

    def as_dict(self) -> dict:
        p = self.plan
        return {
            "done": self.done,
            "skipped": len(p.skipped),
            "failed": self.failed,
            "left": self.left,
            "duplicates": p.duplicates,
            "missing_inputs": p.missing_inputs,
            "not_found": p.not_found,
            "found": p.found,
            "ignored_files": p.ignored,
            "unlisted": p.unlisted,
            "other_shards": p.other_shards,
            "over_limit": p.over_limit,
            "stale_removed": p.stale_removed,
            "shard": f"{self.shard[0]}/{self.shard[1]}",
            "settings": self.settings.recorded(),
            "source_frames": self.source_frames,
            "seconds": round(self.seconds, 3),
            "interrupted": self.interrupted,
            "signal": self.stopped_by,
        }


def _largest_first(jobs: list[Job]) -> list[Job]:
    # Long videos first keeps all workers busy to the end instead of waiting on one big file.
    def size(job: Job) -> int:
        try:
            return os.path.getsize(job.source)
        except OSError:
            return 0

    return sorted(jobs, key=lambda job: (-size(job), job.name))


def execute(
    plan: Plan,
    output: str | Path,
    settings: Settings,
    *,
    shard: tuple[int, int] = (0, 1),
    workers: int = 1,
    desc: str = "videos",
    progress: bool = True,
    worker_fn: Callable[[Job], dict] = process_video,
) -> Report:
    """Run the plan's jobs in worker processes and write the report (also when interrupted).

    A worker that dies (a decoder crashing on a broken file) takes its pool down; the videos it
    held are then retried one per fresh process, so the culprit is named and the rest still done.
    On KeyboardInterrupt (Interrupted for SIGTERM) or any other exception the workers are
    stopped first, then the clips they finished are counted from the disk, so the report matches
    the folder; the exception is re-raised with the report attached (`exc.report`).
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    report = Report(plan, settings, shard, failed=list(plan.failed))
    start = time.perf_counter()
    try:
        suspects = _run_all(plan.jobs, report, workers, desc, progress, worker_fn)
        _retry_alone(suspects, report, desc, worker_fn)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            report.interrupted = True
            report.stopped_by = signal.Signals(exc.signum).name if isinstance(exc, Interrupted) else "SIGINT"
        _count_finished_on_disk(report, output)
        exc.report = report  # for the caller's summary
        raise
    finally:
        report.seconds = time.perf_counter() - start
        write_json(report_path(output, shard), report.as_dict())
    return report


def _run_all(jobs: list[Job], report: Report, workers: int, desc: str, progress: bool, worker_fn) -> list[Job]:
    """Every job, in rounds until each is reported; returns the jobs held by workers that died."""
    pending = _largest_first(jobs) if workers > 1 else list(jobs)
    suspects: list[Job] = []
    while pending:
        reported, crashed = _run_round(pending, report, min(workers, len(pending)), desc, progress, worker_fn)
        if not reported:  # the pool broke before a single video came back: it cannot start
            for job in pending:
                report.add_failed(job, f"{job.source}: worker processes could not start (see the messages "
                                       "above); --workers 1 runs in this process")
            break
        suspects += crashed
        pending = [job for job in pending if job.name not in reported]
    return suspects


def _retry_alone(suspects: list[Job], report: Report, desc: str, worker_fn) -> None:
    """Each job a dead worker held, alone in a fresh process (processes=2 never runs in this
    one): the one that kills its process again is the culprit."""
    for job in suspects:
        _, crashed = _run_round([job], report, 2, desc, False, worker_fn)
        for culprit in crashed:
            report.add_failed(culprit, f"{culprit.source}: the worker process died while making this clip "
                                       "(decoder crash?); try another --backend")


def _count_finished_on_disk(report: Report, output: Path) -> None:
    """Count the clips the workers finished but could not report before they were stopped.

    Only valid once no worker is left (run_parallel stops them before it returns). A job was
    not done when the run was planned, so a finished clip of it now is this run's work.
    """
    wanted = report.settings.recorded()
    for job in report.plan.jobs:
        if job.name in report.finished:
            continue
        try:
            if not is_done(output, job.name, report.settings.format, wanted):
                continue
            source_frames = read_json(manifest_path(output, job.name)).get("source_frames", 0)
        except (ValueError, JsonInputError):
            continue
        report.add_done(job.name, int(source_frames or 0))


def _run_round(jobs, report, processes, desc, progress, worker_fn) -> tuple[set[str], list[Job]]:
    """One pass over `jobs`; returns the names reported and the jobs lost to a dead worker.

    processes=1 runs in this process (run_parallel's choice: plain tracebacks, no start-up cost).
    """
    from concurrent.futures.process import BrokenProcessPool

    reported: set[str] = set()
    crashed: list[Job] = []
    outcomes = run_parallel(worker_fn, jobs, workers=processes, desc=desc, unit="video", progress=progress)
    try:
        # closing(): an interrupt while this loop body runs still stops the workers at once.
        with closing(outcomes):
            for outcome in outcomes:
                job = outcome.item
                reported.add(job.name)
                if outcome.ok:
                    report.add_done(job.name, outcome.result["source_frames"])
                elif isinstance(outcome.error, BrokenProcessPool):
                    crashed.append(job)
                else:
                    report.add_failed(job, describe(outcome.error, job.source))
    except BrokenProcessPool:
        pass  # the pool refused further work: the caller retries what was not reported
    return reported, crashed
