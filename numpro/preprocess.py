"""Preprocessing: turn raw videos into numbered clips (the engine behind preprocess/*.py).

For each video NAME.* it writes NAME.mp4 (frames sampled by numpro.timeline, resized, stamped
with their numbers by numpro.stamp, written at the sampling rate) or a folder NAME/ of PNG
frames, then the manifest NAME.json. Guarantees:
- atomic outputs: clips are written under a hidden temporary name and renamed when complete;
  the manifest comes last, so "NAME.json exists" means "NAME is finished";
- resumable: a rerun skips finished videos, redoes unfinished ones and removes stale
  temporary files of the videos it owns;
- shards: `shard=(i, n)` takes the videos whose output name hashes to i (mod n), a partition
  that does not depend on which other files a machine sees;
- nothing is lost silently: missing inputs, duplicate names, unlisted and failed videos are
  counted, printed and written to the report file;
- a finished clip counts only when every setting that changes its bytes matches this run's
  (Settings.recorded); one made otherwise is reported, never taken nor overwritten;
- stopping is clean: SIGINT or SIGTERM stops the workers, then the report is written with
  `interrupted: true` and the clips found finished on disk; a worker whose parent was killed
  exits without finishing its clip (numpro.parallel);
- `--no_numbers` writes the same clips without numbers, into their own folder (videos_0.5FPS).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
import zlib
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from . import clip_writer
from .jsonio import JsonInputError, read_json, read_records, write_json
from .parallel import check_parent, run_parallel
from .stamp import FontNotFoundError, Stamper, StampStyle
from .video import BACKENDS, VIDEO_EXTENSIONS

REPORT_NAME = "preprocess_report"
POSITION_CODES = {"top_left": "tl", "top_right": "tr", "bottom_left": "bl", "bottom_right": "br", "center": "c"}
# Temporary outputs: ".NAME.mp4.partial-<pid>-<hex>" / ".NAME.frames.partial-..." (hidden, so
# `*.mp4` globs never see them) and jsonio's "NAME.json.tmp".
_TEMP = re.compile(r"^(?:\.(?P<clip>.+)\.(?:mp4|frames)\.partial-[0-9]+-[0-9a-f]+|(?P<manifest>.+)\.json\.tmp)$")


# ------------------------------------------------------------------ settings and names
@dataclass(frozen=True)
class Settings:
    """How every clip of a run is made; recorded in each manifest."""

    fps: float = 0.5
    size: int = 336
    # None: the frames are not numbered (--no_numbers, the "+ FT without numbers" ablation)
    style: StampStyle | None = field(default_factory=StampStyle)
    format: str = "mp4"
    backend: str = "pyav"  # decodes each file once, front to back: the fastest for sparse sampling
    crf: int = clip_writer.DEFAULT_CRF
    preset: str = clip_writer.DEFAULT_PRESET

    def __post_init__(self):
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f"fps must be a positive number, got {self.fps}")
        if self.size <= 0:
            raise ValueError(f"size must be positive, got {self.size}")
        if self.format not in clip_writer.FORMATS:
            raise ValueError(f"unknown format {self.format!r}; choose one of {', '.join(clip_writer.FORMATS)}")
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if self.preset not in clip_writer.PRESETS:
            raise ValueError(f"unknown x264 preset {self.preset!r}; choose one of {', '.join(clip_writer.PRESETS)}")
        if not 0 <= self.crf <= clip_writer.MAX_CRF:
            raise ValueError(f"crf must be in 0..{clip_writer.MAX_CRF}, got {self.crf}")

    @property
    def numbers(self) -> bool:
        return self.style is not None

    def recorded(self) -> dict:
        """Every setting that changes a clip's bytes: a finished clip must share them to count as done.

        The decoder is left out: every backend returns the frames the timeline picks.
        """
        fields = {"fps": self.fps, "size": self.size, "numbers": self.numbers,
                  "style": self.style.as_dict() if self.numbers else None, "format": self.format}
        if self.format == "mp4":  # PNG frames are lossless: the encoder settings do not touch them
            fields.update(crf=self.crf, preset=self.preset)
        return fields

    def folder_name(self) -> str:
        """Upstream's output folder name for these settings: videos_0.5FPS_number_red_40_br.

        Without numbers: videos_0.5FPS, beside the numbered folder, so the two never mix.
        """
        name = f"videos_{self.fps:g}FPS"
        if self.numbers:
            color = self.style.color
            color = color.lstrip("#") if isinstance(color, str) else "rgb" + "_".join(map(str, color))
            name += f"_number_{color}_{self.style.font_size}_{POSITION_CODES[self.style.position]}"
        return name if self.size == 336 else f"{name}_{self.size}px"

    def describe(self) -> str:
        s = self.style
        stamp = f"{s.color} {s.font_size} {s.position}" if s is not None else "no numbers"
        return f"{self.fps:g} fps, {self.size}x{self.size}, {stamp}, {self.format}"


# What a manifest written before a field was recorded implies: every clip then was numbered,
# and mp4 was the only format. Other missing fields are unknown, so they count as different.
_RECORDED_BEFORE = {"format": "mp4", "numbers": True}


def clip_path(output: Path, name: str, fmt: str) -> Path:
    return output / (f"{name}.mp4" if fmt == "mp4" else name)


def manifest_path(output: Path, name: str) -> Path:
    return output / f"{name}.json"


def report_path(output: Path, shard: tuple[int, int] = (0, 1)) -> Path:
    """OUTPUT/preprocess_report.json; one file per shard so shards never overwrite each other."""
    index, count = shard
    suffix = "" if count == 1 else f".shard{index}of{count}"
    return output / f"{REPORT_NAME}{suffix}.json"


class UnnamedVideo(Exception):
    """A video whose output name cannot be determined (e.g. no DiDeMo hash); reported as failed."""


Namer = Callable[[Path], str]


def stem_name(path: Path) -> str:
    return path.stem


def hash_namer(hash_file: str | Path) -> Namer:
    """DiDeMo: name each output by the hash of its Flickr id (yfcc100m_hash.txt), as upstream."""
    from .datasets.didemo import flickr_id, read_hash_file

    mapping = read_hash_file(hash_file)

    def name(path: Path) -> str:
        key = flickr_id(path.name)
        if key not in mapping:
            raise UnnamedVideo(f"no hash for Flickr id {key!r} in {hash_file}, so no output name")
        return mapping[key]

    return name


# ------------------------------------------------------------------ finding the work
@dataclass
class Found:
    videos: list[Path] = field(default_factory=list)  # input order, sorted within each folder
    missing: list[str] = field(default_factory=list)
    ignored: int = 0  # files without a video extension


def find_videos(inputs: Iterable[str | Path], exclude: str | Path | None = None) -> Found:
    """Video files under each input folder (recursively) or given directly, in input order.

    `exclude` (the output folder) is never searched: clips are not inputs, even when the output
    folder lies inside an input folder.
    """
    found = Found()
    skip = Path(exclude).resolve() if exclude is not None else None
    for entry in inputs:
        path = Path(entry)
        if path.is_file():
            found.videos.append(path)  # named explicitly: taken whatever its extension
        elif path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and Path(root, d).resolve() != skip)
                for file in sorted(files):
                    if file.startswith("."):
                        continue
                    if file.lower().endswith(VIDEO_EXTENSIONS):
                        found.videos.append(Path(root) / file)
                    else:
                        found.ignored += 1
        else:
            found.missing.append(str(path))
    return found


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' (I counted from 0) -> (I, N)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise ValueError(f"shard must look like I/N (e.g. 0/8), got {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard {text!r}: need 0 <= I < N (I counts from 0)")
    return index, count


def shard_of(name: str, count: int) -> int:
    """The shard owning output `name`: a stable hash, so every machine agrees without a shared list."""
    return zlib.crc32(name.encode("utf-8")) % count


def listed_names(path: str | Path, source: str | None = None) -> set[str]:
    """Video names referenced by a training or annotation file (JSON list or JSON Lines).

    A record names its video in "video" (training files, test files), "vid" (QVHighlights) or
    "id" (VTimeLLM); records whose "source" is another dataset are left out.
    """
    names = set()
    for record in read_records(path):
        if source is not None and record.get("source", source) != source:
            continue
        value = record.get("video", record.get("vid", record.get("id")))
        if value is None:
            continue
        name = Path(str(value)).name
        names.add(name[: -len(Path(name).suffix)] if name.lower().endswith(VIDEO_EXTENSIONS) else name)
    return names


@dataclass(frozen=True)
class Job:
    source: str
    name: str
    output: str
    settings: Settings


@dataclass
class Plan:
    """What a run will do; every video found is in one of its lists or counts."""

    jobs: list[Job] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # finished earlier (manifest present)
    failed: list[dict] = field(default_factory=list)  # cannot even be started
    duplicates: list[dict] = field(default_factory=list)  # same output name as an earlier input
    missing_inputs: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)  # listed but absent from the inputs
    found: int = 0
    ignored: int = 0
    unlisted: int = 0
    other_shards: int = 0
    over_limit: int = 0
    stale_removed: int = 0


def _is_done(output: Path, name: str, fmt: str, wanted: dict) -> bool:
    """True when NAME is finished (manifest and clip present) with the settings `wanted`.

    Raises ValueError when its manifest records other settings, even if its clip is gone or is
    of another format: never mix two kinds of clip in one folder.
    """
    manifest = manifest_path(output, name)
    if not manifest.is_file():
        return False
    try:
        recorded = read_json(manifest)
    except JsonInputError:
        return False  # unreadable manifest: redo the clip
    if not isinstance(recorded, dict):
        return False
    made = {key: recorded.get(key, _RECORDED_BEFORE.get(key)) for key in wanted}
    different = [key for key in wanted if made[key] != wanted[key]]
    if different:
        diffs = ", ".join(f"{key}={made[key]!r} (this run: {wanted[key]!r})" for key in different)
        raise ValueError(f"{manifest} was made with other settings: {diffs}; use another --output or delete it")
    return clip_path(output, name, fmt).exists()


def _sweep_stale(output: Path, owned: set[str]) -> int:
    """Remove temporary files left by killed runs, for the names this run owns only."""
    if not output.is_dir():
        return 0
    removed = 0
    for entry in output.iterdir():
        match = _TEMP.match(entry.name)
        if match and (match.group("clip") or match.group("manifest")) in owned:
            _remove(entry)
            removed += 1
    return removed


def make_plan(
    inputs: Sequence[str | Path],
    output: str | Path,
    settings: Settings,
    *,
    namer: Namer = stem_name,
    listed: set[str] | None = None,
    shard: tuple[int, int] = (0, 1),
    limit: int | None = None,
) -> Plan:
    """Find the videos, name them, filter (listed, shard, limit) and split done from to-do.

    Order: input order decides which of two same-named videos is kept; after that everything is
    sorted by output name, so a plan does not depend on the order folders were listed in.
    """
    output = Path(output)
    if any(Path(entry).resolve() == output.resolve() for entry in inputs):
        raise ValueError(f"the output folder {output} is also an input: choose another --output")
    index, count = shard
    found = find_videos(inputs, exclude=output)
    plan = Plan(missing_inputs=found.missing, found=len(found.videos), ignored=found.ignored)
    named: dict[str, Path] = {}
    duplicates: list[tuple[str, Path]] = []
    for path in found.videos:
        try:
            name = namer(path)
        except UnnamedVideo as exc:
            if shard_of(path.name, count) == index:  # each shard reports its own share
                plan.failed.append({"source": str(path), "error": f"{path}: {exc}"})
            continue
        if name in named:
            duplicates.append((name, path))
        else:
            named[name] = path
    if listed is not None:
        plan.not_found = sorted(listed - named.keys())
        plan.unlisted = sum(1 for name in named if name not in listed)
        named = {name: path for name, path in named.items() if name in listed}
    mine = sorted(name for name in named if shard_of(name, count) == index)
    plan.other_shards = len(named) - len(mine)
    plan.duplicates = [{"source": str(path), "kept": str(named[name])} for name, path in duplicates
                       if name in named and shard_of(name, count) == index]
    if limit is not None and len(mine) > limit:
        plan.over_limit = len(mine) - limit
        mine = mine[:limit]
    plan.stale_removed = _sweep_stale(output, set(mine))
    wanted = settings.recorded()
    for name in mine:
        source = named[name]
        if clip_path(output, name, settings.format).resolve() == source.resolve():
            plan.failed.append({"source": str(source), "error": f"{source}: the clip would replace its own "
                                "source; choose another --output"})
            continue
        try:
            done = _is_done(output, name, settings.format, wanted)
        except ValueError as exc:
            plan.failed.append({"source": str(source), "error": f"{source}: {exc}"})
            continue
        if done:
            plan.skipped.append(name)
        else:
            plan.jobs.append(Job(str(source), name, str(output), settings))
    return plan


# ------------------------------------------------------------------ one video
@lru_cache(maxsize=4)
def _stamper(style: StampStyle) -> Stamper:
    return Stamper(style)  # one per worker process: its glyph cache is reused across videos


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


class ClipError(Exception):
    """A video that could not be made into a clip. One message argument, so it crosses processes."""


def process_video(job: Job) -> dict:
    """Make one numbered clip and its manifest (runs in a worker); returns a summary.

    Any failure is raised as ClipError carrying a message that names the file: decoder
    exceptions are not all picklable, and one that is not would break the worker pool.
    """
    try:
        return _make_clip(job)
    except Exception as exc:
        raise ClipError(_describe(exc, job.source)) from None


def _describe(error: BaseException, source: str) -> str:
    """The error as one line that names the source file."""
    from .video import VideoError

    text = str(error) if isinstance(error, (VideoError, ClipError)) else f"{type(error).__name__}: {error}"
    return text if source in text else f"{source}: {text}"


def _make_clip(job: Job) -> dict:
    from . import video  # decoders load in the worker, not when the scripts parse arguments

    s = job.settings
    output = Path(job.output)
    final, manifest = clip_path(output, job.name, s.format), manifest_path(output, job.name)
    # No manifest means any clip present is from an unfinished run: neither may survive it.
    _remove(manifest)
    _remove(final)
    sampled = video.read_sampled(job.source, s.fps, s.size, s.backend)
    if s.numbers:
        _stamper(s.style).stamp_all(sampled.pixels, sampled.numbers, inplace=True)
    kind = "mp4" if s.format == "mp4" else "frames"
    temp = output / f".{job.name}.{kind}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    info = sampled.info
    try:
        if s.format == "mp4":
            clip_writer.write_mp4(temp, sampled.pixels, s.fps, crf=s.crf, preset=s.preset)
            written = clip_writer.count_mp4_frames(temp)
        else:
            written = clip_writer.write_pngs(temp, sampled.pixels)
        if written != len(sampled.frames):
            raise ClipError(f"{job.source}: wrote {written} frames instead of {len(sampled.frames)}")
        # Commit only for a live run: a worker whose parent was killed must not finish clips
        # that nobody will count (raises WorkerStopped, a BaseException, in that case).
        check_parent()
        os.replace(temp, final)
        check_parent()
        write_json(
            manifest,
            {
                "source": job.source,
                "source_fps": info.fps,
                "source_frames": info.num_frames,
                "duration": info.duration,
                **s.recorded(),
                "backend": s.backend,
                "file": final.name,
                "num_frames": len(sampled.frames),
                "frames": [frame.as_dict() for frame in sampled.frames],
            },
        )
    except BaseException:
        # Stopped or failed before the manifest: leave nothing that looks like a result.
        if not manifest.exists():
            _remove(final)
            _remove(manifest.with_name(manifest.name + ".tmp"))  # write_json's temporary file
        raise
    finally:
        _remove(temp)
    return {"name": job.name, "frames": len(sampled.frames), "source_frames": info.num_frames}


# ------------------------------------------------------------------ a whole run
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
        return 1 if self.failed else 0

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
    pending = _largest_first(plan.jobs) if workers > 1 else list(plan.jobs)
    suspects: list[Job] = []
    try:
        while pending:
            reported, crashed = _run_round(pending, report, min(workers, len(pending)), desc, progress, worker_fn)
            if not reported:  # the pool broke before a single video came back: it cannot start
                for job in pending:
                    report.add_failed(job, f"{job.source}: worker processes could not start (see the messages "
                                           "above); --workers 1 runs in this process")
                break
            suspects += crashed
            pending = [job for job in pending if job.name not in reported]
        for job in suspects:  # alone in a process each (processes=2 never runs in this one)
            _, crashed = _run_round([job], report, 2, desc, False, worker_fn)
            for culprit in crashed:
                report.add_failed(culprit, f"{culprit.source}: the worker process died while making this clip "
                                           "(decoder crash?); try another --backend")
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
            if not _is_done(output, job.name, report.settings.format, wanted):
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
                    report.add_failed(job, _describe(outcome.error, job.source))
    except BrokenProcessPool:
        pass  # the pool refused further work: the caller retries what was not reported
    return reported, crashed


# ------------------------------------------------------------------ command line
@dataclass(frozen=True)
class Dataset:
    """A preprocessing script's defaults: upstream's folders for one dataset."""

    key: str  # the "source" value of its records in training files
    title: str
    inputs: tuple[str, ...]
    root: str  # the default output folder is ROOT/<settings.folder_name()>
    hash_file: str | None = None  # DiDeMo: rename outputs to their hash
    notes: str = ""


def _bounded(kind: type, *, above: float | None = None, at_least: float | None = None,
             at_most: float | None = None) -> Callable[[str], float]:
    """An argparse type: `kind` parsed from the text, within the bounds (else a one-line usage error)."""
    if at_least is not None and at_most is not None:
        rule = f"from {at_least:g} to {at_most:g}"
    elif above is not None:
        rule = f"> {above:g}"
    else:
        rule = f">= {at_least:g}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'} "
                                             f"{rule}, got {text!r}") from None
        if (not math.isfinite(value) or (above is not None and not value > above)
                or (at_least is not None and value < at_least) or (at_most is not None and value > at_most)):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


def build_parser(dataset: Dataset) -> argparse.ArgumentParser:
    default_out = f"{dataset.root}/{Settings().folder_name()}"
    plain_out = f"{dataset.root}/{Settings(style=None).folder_name()}"
    parser = argparse.ArgumentParser(
        description=(
            f"Make numbered clips of {dataset.title} videos for NumPro: frames sampled at --fps "
            f"(frame k is the source frame nearest to k / fps seconds), resized to --size, stamped "
            f"with k, written as OUTPUT/NAME.mp4 (or OUTPUT/NAME/000000.png...) plus the manifest "
            f"OUTPUT/NAME.json. Finished videos are skipped, so rerunning resumes. {dataset.notes}"
        ),
        epilog=(
            f"Defaults read {' '.join(dataset.inputs)} and write {default_out} ({plain_out} with "
            "--no_numbers; paths relative to the current folder). Missing input folders are reported "
            "and skipped. Failures are listed in OUTPUT/preprocess_report.json "
            "(preprocess_report.shardIofN.json per shard) and make the exit status 1. Ctrl-C or SIGTERM "
            "stops the workers, keeps the finished clips and writes the report (exit status 130 or 143); "
            "rerun the same command to resume."
        ),
    )
    a = parser.add_argument
    a("--input", "--inputs", nargs="+", default=list(dataset.inputs), metavar="DIR_OR_FILE",
      help=f"video folders (searched recursively) or video files (default: {' '.join(dataset.inputs)})")
    a("--output", default=None, metavar="DIR",
      help=f"output folder (default: {default_out}; the name follows --fps, --color, --font_size, --position, "
           f"--size and --no_numbers)")
    a("--workers", type=_bounded(int, at_least=0), default=os.cpu_count() or 1, metavar="N",
      help="worker processes (default: all %(default)s cores; 0 or 1 runs in this process)")
    a("--shard", default="0/1", metavar="I/N",
      help="process only shard I of N, I from 0 (e.g. $SLURM_ARRAY_TASK_ID/N); shards split the videos "
           "by a hash of their name: disjoint, together complete")
    a("--limit", type=_bounded(int, at_least=1), default=None, metavar="N",
      help="only the first N videos (sorted by name) of the shard")
    a("--only_listed", "--only-listed", default=None, metavar="TRAIN_JSON",
      help=f"only videos a training or annotation file references (records with source {dataset.key!r} or "
           "none; the name in 'video', 'vid' or 'id')")
    a("--fps", type=_bounded(float, above=0), default=0.5,
      help="sampling rate: frame k is at k / fps seconds (default: %(default)s)")
    a("--size", type=_bounded(int, at_least=1), default=336,
      help="frames are resized to SIZE x SIZE, aspect ratio not kept, as upstream (default: %(default)s)")
    a("--no_numbers", "--no-numbers", action="store_true",
      help="write the same clips without numbers (the fine-tuning-without-numbers ablation); the default "
           "output folder is then videos_<fps>FPS, and the stamp flags below are ignored")
    a("--font_size", "--font-size", type=_bounded(int, at_least=1), default=40, metavar="PX",
      help="(default: %(default)s)")
    a("--color", default="red", help="PIL colour name or #rrggbb (default: %(default)s)")
    a("--position", default="bottom_right",
      help="top_left, top_right, bottom_left, bottom_right or center; or tl, tr, bl, br, c (default: %(default)s)")
    a("--font", default=None, metavar="TTF", help="font file (default: DejaVu Sans Bold shipped with matplotlib)")
    a("--format", choices=clip_writer.FORMATS, default="mp4",
      help="mp4: H.264 clip at the sampling rate; frames: lossless PNG files NAME/000000.png... "
           "(default: %(default)s)")
    a("--backend", choices=BACKENDS, default="pyav",
      help="video decoder (default: %(default)s, measured fastest for 0.5-FPS sampling in BENCHMARKS.md; "
           "auto: PyAV, decord when PyAV cannot read the file; opencv assumes a constant frame rate)")
    a("--crf", type=_bounded(int, at_least=0, at_most=clip_writer.MAX_CRF), default=clip_writer.DEFAULT_CRF,
      help="H.264 quality of the mp4, lower is better (default: %(default)s)")
    a("--preset", choices=clip_writer.PRESETS, default=clip_writer.DEFAULT_PRESET, metavar="PRESET",
      help=f"x264 speed preset of the mp4: {', '.join(clip_writer.PRESETS)} (default: %(default)s)")
    a("--no_progress", "--no-progress", action="store_true", help="no progress bar (for batch logs)")
    if dataset.hash_file is not None:
        a("--hash_file", "--hash-file", default=dataset.hash_file, metavar="TXT",
          help=f"DiDeMo id<TAB>hash mapping; outputs are named by hash, as training files expect "
               f"(default: {Path(dataset.hash_file).name} beside this script)")
        a("--keep_names", "--keep-names", action="store_true", help="name outputs like their sources, not by hash")
    return parser


def _settings_from(args: argparse.Namespace) -> Settings:
    style = None
    if not args.no_numbers:
        style = StampStyle(font_size=args.font_size, color=args.color, position=args.position, font_path=args.font)
        style.as_dict()  # finds the font now: a missing font stops the run before any work
    return Settings(args.fps, args.size, style, args.format, args.backend, args.crf, args.preset)


def output_problem(folder: Path) -> str | None:
    """Why clips cannot be written to `folder` (created when missing), or None when they can.

    Asked before any video is decoded: a run must not spend hours decoding for a folder it
    cannot write. A real file is created and removed, since permission bits alone do not tell
    (read-only mounts, ACLs, root).
    """
    if folder.exists() and not folder.is_dir():
        return f"the output folder {folder} is a file, not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create the output folder {folder}: {exc.strerror or exc}"
    try:
        handle, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        return f"cannot write to the output folder {folder}: {exc.strerror or exc}"
    return None


def _summarise_plan(plan: Plan, inputs: Sequence[str], args, log) -> None:
    if plan.missing_inputs:
        log(f"missing input {'folder' if len(plan.missing_inputs) == 1 else 'folders'} (skipped): "
            + ", ".join(plan.missing_inputs))
    present = len(inputs) - len(plan.missing_inputs)
    extras = []
    if plan.duplicates:
        extras.append(f"{len(plan.duplicates)} duplicate names left out: the copy in the earlier input is used")
    if plan.ignored:
        extras.append(f"{plan.ignored} non-video files ignored")
    log(f"found {plan.found} videos in {present} input{'s' if present != 1 else ''}"
        + (f" ({'; '.join(extras)})" if extras else ""))
    if args.only_listed:
        log(f"--only_listed {args.only_listed}: {plan.unlisted} videos not listed, left out; "
            f"{len(plan.not_found)} listed videos not found in the inputs")
    if plan.stale_removed:
        log(f"removed {plan.stale_removed} temporary files left by an interrupted run")
    scope = []
    if args.shard != "0/1":
        scope.append(f"shard {args.shard} ({plan.other_shards} videos belong to other shards)")
    if plan.over_limit:
        scope.append(f"--limit {args.limit} ({plan.over_limit} more left for later)")
    if scope:
        log("; ".join(scope))
    workers = min(args.workers, len(plan.jobs))
    how = f" with {workers} workers" if workers > 1 else " in this process"
    log(f"already done: {len(plan.skipped)}; to process: {len(plan.jobs)}" + (how if plan.jobs else "")
        + (f"; {len(plan.failed)} cannot be processed (listed at the end)" if plan.failed else ""))


def _summarise_run(report: Report, path: Path, log) -> None:
    rate = f" ({report.source_frames / report.seconds:.0f} source frames/s)" if report.done and report.seconds else ""
    log(f"done: {report.done} new, {len(report.plan.skipped)} already done, {len(report.failed)} failed"
        f" in {report.seconds:.1f} s{rate}")
    for failure in report.failed[:20]:  # each error names its file
        log(f"  FAILED {failure['error']}")
    if len(report.failed) > 20:
        log(f"  ... and {len(report.failed) - 20} more")
    log(f"report: {path}")


def main(dataset: Dataset, argv: Sequence[str] | None = None, log: Callable[[str], None] = print) -> int:
    """Command-line entry of preprocess/*.py. Returns the exit status."""
    parser = build_parser(dataset)
    args = parser.parse_args(argv)
    try:
        settings = _settings_from(args)
        shard = parse_shard(args.shard)
    except (ValueError, FontNotFoundError) as exc:
        parser.error(str(exc))
    output = Path(args.output or f"{dataset.root}/{settings.folder_name()}")
    namer: Namer = stem_name
    if dataset.hash_file is not None and not args.keep_names:
        if not Path(args.hash_file).is_file():
            parser.error(f"hash file not found: {args.hash_file} (give --hash_file, or --keep_names)")
        try:
            namer = hash_namer(args.hash_file)
        except (ValueError, UnicodeDecodeError) as exc:
            parser.error(f"cannot read the hash file: {exc}")
    listed = None
    if args.only_listed:
        try:
            listed = listed_names(args.only_listed, dataset.key)
        except JsonInputError as exc:
            parser.error(str(exc))
        if not listed:
            parser.error(f"{args.only_listed} references no videos of source {dataset.key!r}")

    kind = "numbered clips" if settings.numbers else "clips without numbers"
    log(f"{dataset.title}: {kind} ({settings.describe()}) -> {output}")
    missing = [entry for entry in args.input if not Path(entry).exists()]
    if len(missing) == len(args.input):
        log(f"missing input {'folder' if len(missing) == 1 else 'folders'}: {', '.join(missing)}")
        log("none of the inputs exist: nothing done (give --input DIR, or run from the folder that holds data/)")
        return 2
    problem = output_problem(output)
    if problem:
        print(f"{parser.prog}: error: {problem}", file=sys.stderr)
        return 2
    with signals_stop_the_run():
        try:
            return _run(dataset, args, settings, shard, output, namer, listed, parser, log)
        except KeyboardInterrupt as exc:
            signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
            report = getattr(exc, "report", None)
            if report is None:
                log(f"interrupted ({signal.Signals(signum).name}) before any clip was made")
            else:
                log(f"interrupted ({signal.Signals(signum).name}): {report.done} clips finished in this run, "
                    f"{report.left} left; finished clips are kept, rerun the same command to resume "
                    f"({report_path(output, shard)})")
            return 128 + signum


def _run(dataset, args, settings, shard, output, namer, listed, parser, log) -> int:
    try:
        plan = make_plan(args.input, output, settings, namer=namer, listed=listed, shard=shard, limit=args.limit)
    except ValueError as exc:
        parser.error(str(exc))
    _summarise_plan(plan, args.input, args, log)
    report = execute(plan, output, settings, shard=shard, workers=args.workers, desc=dataset.key,
                     progress=not args.no_progress)
    _summarise_run(report, report_path(output, shard), log)
    return report.exit_code


def script_main(dataset: Dataset) -> None:
    """`if __name__ == "__main__": script_main(DATASET)` in preprocess/*.py."""
    sys.exit(main(dataset))
