"""The evaluation loop shared by every model family and both tasks.

Per video: decode only the sampled frames once, stamp them in memory, and reuse them for all of
the video's queries (a DataLoader item is a unit of whole videos). DataLoader worker processes do the decoding, stamping and the model's CPU
preprocessing for the next batches while the model generates. Records are appended and flushed
per batch; a rerun skips queries already answered. Under torchrun each rank takes a disjoint
set of videos and appends to its own part file; rank 0 merges everything in input order.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tqdm import tqdm

from .. import jsonio, protocol, timeline
from ..metrics.report import default_out_path as metrics_path
from ..frames import numbered_frames
from ..stamp import StampStyle
from ..video import VIDEO_EXTENSIONS, VideoError
from ..models.base import Answer
from . import run_record as run_records
from .tasks import Query

OK = "ok"
BARRIER_HOURS = 48  # torchrun: how long a rank waits for the others at a barrier
log = logging.getLogger(__name__)  # the eval CLI shows its INFO lines on stdout (console_logging)


class RunError(Exception):
    """A run that produced nothing useful (or cannot start); the message says why in one line."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class RunOptions:
    annotations: Path
    videos: Path
    save_path: Path
    fps: float
    size: int = protocol.FRAME_SIZE
    max_frames: int | None = None
    numbers: bool = True
    style: StampStyle = field(default_factory=StampStyle)
    batch_size: int = 1
    max_new_tokens: int = 128
    limit: int | None = None
    workers: int = 2
    backend: str = "auto"
    dump_frames: Path | None = None
    progress: bool = True
    video_io: str = "exact"  # "upstream": the mp4v write-and-decode detour of upstream's scripts
    stamp_text: str = "number"  # "seconds": each frame shows its time k/fps (paper Tab. 9)
    number_fraction: float = 1.0  # only this fraction of the sampled frames carries its number (Fig. 7)
    number_sampling: str = "uniform"
    number_seed: int = 0
    overwrite: bool = False  # discard what the save path holds instead of resuming it
    usage_summary: Callable[[list[dict]], tuple[str, dict]] | None = None  # API runs: tokens and cost


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "Dist":
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                   int(os.environ.get("LOCAL_RANK", 0)))


def find_video(videos: Path, name: str) -> Path | None:
    """The video file for an annotation's name; also tries the other common extensions."""
    path = videos / name
    if path.is_file():
        return path
    stem = Path(name).stem
    for ext in VIDEO_EXTENSIONS:
        candidate = videos / (stem + ext)
        if candidate.is_file():
            return candidate
    return None


def group_by_video(queries: list[Query]) -> list[list[Query]]:
    """Queries grouped by video, videos in order of first appearance."""
    groups: dict[str, list[Query]] = {}
    for query in queries:
        groups.setdefault(query.video, []).append(query)
    return list(groups.values())


def make_units(groups: list[list[Query]], batch_size: int) -> list[list[list[Query]]]:
    """Units of work for the DataLoader: whole videos packed together, split into generation
    batches of at most `batch_size` queries. A unit holds every query of its videos, so each
    video is decoded exactly once; a batch may mix videos of the same unit."""
    units: list[list[Query]] = []
    current: list[Query] = []
    for group in groups:
        if current and len(current) + len(group) > batch_size:
            units.append(current)
            current = []
        current = current + group
    if current:
        units.append(current)
    return [[unit[i : i + batch_size] for i in range(0, len(unit), batch_size)] for unit in units]


@dataclass
class PreparedWork:
    queries: list[Query]
    statuses: list[str]
    errors: list[str | None]
    batch: object | None  # the model's PreparedBatch for the queries whose status is ok
    extras: list[dict] = field(default_factory=list)  # per query: fields for its record


class BatchDataset:
    """Map-style dataset over units: decoding, stamping and preprocessing (runs in workers)."""

    def __init__(self, units, task, options: RunOptions, preprocessor):
        self.units = units
        self.task = task
        self.options = options
        self.preprocessor = preprocessor

    def __len__(self) -> int:
        return len(self.units)

    def _frames(self, name: str) -> tuple[np.ndarray | None, str, str | None, dict]:
        options = self.options
        path = find_video(options.videos, name)
        if path is None:
            return None, "missing_video", f"{options.videos / name} not found", {}
        key = Path(name).stem  # --number_sampling random: the choice depends on the video, not on the order

        def positions(count: int):
            return timeline.numbered_positions(count, options.number_fraction, options.number_sampling,
                                               options.number_seed, key)

        try:
            video = numbered_frames(path, options.fps, options.size, options.max_frames, options.backend,
                                    options.style if options.numbers else None, options.stamp_text,
                                    positions=positions)
        except VideoError as err:
            return None, "decode_error", str(err), {}
        if not video.frames:
            return None, "empty_video", f"{path}: no frames to sample", {}
        pixels, numbers, extra = video.pixels, list(video.numbers), {}
        if options.video_io == "upstream":
            from ..upstream_io import mp4v_round_trip

            pixels = mp4v_round_trip(pixels, options.fps)
        select = getattr(self.preprocessor, "select_frames", None)
        if select is not None:  # a family that feeds a subset or resized frames (Qwen2-VL's upstream rule)
            pixels, numbers = select(pixels, numbers)
        if video.partial:  # partial numbering: the record says which of the frames the model gets are numbered
            fed = set(numbers)
            extra["numbered_frames"] = [n for n in video.stamped_numbers if n in fed]
        if options.dump_frames is not None:  # exactly what the model gets
            folder = options.dump_frames / Path(name).stem
            dump_frames(folder, pixels, numbers)
            if "numbered_frames" in extra:
                jsonio.write_json(folder / "numbered_frames.json", extra["numbered_frames"])
        return pixels, OK, None, extra

    def __getitem__(self, index: int) -> list[PreparedWork]:
        cache: dict[str, tuple] = {}  # this unit's videos, each decoded once
        work = []
        for queries in self.units[index]:
            statuses, errors, videos, texts, extras = [], [], [], [], []
            for query in queries:
                if query.video not in cache:
                    cache[query.video] = self._frames(query.video)
                frames, status, error, extra = cache[query.video]
                statuses.append(status)
                errors.append(error)
                extras.append(extra)
                if status == OK:
                    videos.append(frames)
                    texts.append(self.task.prompt(query))
            batch = self.preprocessor(videos, texts, self.options.fps) if videos else None
            work.append(PreparedWork(queries, statuses, errors, batch, extras))
        return work


def dump_frames(folder: Path, pixels: np.ndarray, numbers: list[int]) -> None:
    """The exact frames fed to the model, as lossless PNGs named by their stamped number."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for frame, number in zip(pixels, numbers):
        Image.fromarray(frame).save(folder / f"{number:06d}.png")


def part_path(save_path: Path, rank: int, world: int) -> Path:
    return save_path.with_name(f"{save_path.name}.rank{rank}-of-{world}.part")


def _existing_records(save_path: Path) -> list[dict]:
    """Records already written by earlier (possibly killed or multi-process) runs."""
    _refuse_json_list(save_path)
    records = []
    for path in _prediction_files(save_path):
        records.extend(jsonio.read_records(path, allow_partial_tail=True))
    return records


def _refuse_json_list(save_path: Path) -> None:
    if save_path.is_file() and _first_byte(save_path) == b"[":
        raise RunError(f"{save_path} is a JSON list (upstream's result format); predictions are JSON Lines: "
                       "choose another --save_path (eval/metrics_mr.py scores upstream's files as they are)", 2)


def _prediction_files(save_path: Path) -> list[Path]:
    parts = sorted(save_path.parent.glob(save_path.name + ".rank*-of-*.part"))
    return [path for path in [save_path, *parts] if path.is_file()]


def discard_run(save_path: Path) -> None:
    """--overwrite: predictions, rank parts, metrics and run record go."""
    for path in [*_prediction_files(save_path), metrics_path(save_path), run_records.record_path(save_path)]:
        path.unlink(missing_ok=True)


def _first_byte(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(4096).lstrip()[:1]


def _identity(task, record: dict) -> str:
    return str(record.get(task.id_field))


def merge_records(task, save_path: Path, queries: list[Query]) -> list[dict]:
    """One record per query (the newest wins), in input order, written atomically to save_path;
    the rank part files are then removed. Ground truth comes from the annotations given now."""
    latest: dict[str, dict] = {}
    repeated = 0
    for record in _existing_records(save_path):
        repeated += _identity(task, record) in latest
        latest[_identity(task, record)] = record
    if repeated:  # a query answered again (it had failed, or its question changed): the newest counts
        log.warning(f"{repeated} older answers in {save_path.name} were superseded by newer ones of the same id; "
                    "the newest of each counts")
    current = {q.key: q for q in queries}
    for key, record in latest.items():
        if key in current:
            latest[key] = task.refresh_truth(record, current[key])
    order = {q.key: i for i, q in enumerate(queries)}
    keys = sorted(latest, key=lambda k: (order.get(k, len(order)), k))
    jsonio.write_jsonl(save_path, (latest[key] for key in keys))
    for part in save_path.parent.glob(save_path.name + ".rank*-of-*.part"):
        part.unlink()
    return [latest[k] for k in keys]


def _init_distributed(dist: Dist, device: str):
    if dist.world <= 1:
        return None
    import torch.distributed as td

    if not td.is_initialized():
        import datetime

        if device.startswith("cuda"):
            import torch

            torch.cuda.set_device(device)  # the barriers' device, not a guess
        # Ranks wait at the end for the slowest one: hours on long videos, not the 10-minute default.
        td.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo",
                              timeout=datetime.timedelta(hours=BARRIER_HOURS))
    return td


def default_device(dist: Dist) -> str:
    import torch

    return f"cuda:{dist.local_rank}" if torch.cuda.is_available() else "cpu"


def run(task, options: RunOptions, load_model: Callable[[str], object], device: str | None = None,
        run_record: dict | None = None) -> dict | None:
    """Evaluate every query of `options.annotations`; returns the metrics on rank 0.

    `run_record` (see run_record.py) is written beside the predictions before the first query;
    a save path holding answers of a run with other answer-changing settings stops the run
    (RunMismatch) before any model is loaded. RunError when nothing useful was produced.
    """
    dist = Dist.from_env()
    device = device or default_device(dist)
    save_path = Path(options.save_path)
    all_queries = _queries(task, options)
    _check_writable(save_path)
    _refuse_json_list(save_path)
    stored = None
    if run_record is not None and not options.overwrite:
        stored = run_records.check_resume(save_path, run_record, bool(_existing_records(save_path)))
    td = _init_distributed(dist, device)
    _barrier(td)  # every rank has compared before rank 0 rewrites anything
    if dist.rank == 0:
        _start(save_path, options, run_record, stored, len(all_queries))
    _barrier(td)

    todo = _todo(task, save_path, all_queries, dist)
    if todo:
        output = save_path if dist.world == 1 else part_path(save_path, dist.rank, dist.world)
        _generate(task, options, load_model(device), todo, output, dist)

    _barrier(td)
    metrics = _finish(task, options, save_path, all_queries) if dist.rank == 0 else None
    if td is not None:
        td.barrier()
        td.destroy_process_group()
    if dist.rank == 0:
        _raise_if_useless(metrics, options)
    return metrics


def _queries(task, options: RunOptions) -> list[Query]:
    queries = task.load(options.annotations)
    if not queries:
        raise RunError(f"{options.annotations}: no queries to evaluate")
    return queries[: options.limit] if options.limit else queries


def _start(save_path: Path, options: RunOptions, run_record: dict | None, stored: dict | None, n_queries: int) -> None:
    """--overwrite discards the old run; the run record is written before the first query.

    Part files a killed multi-process run left behind are folded into the predictions first, so
    that what this run appends is read after them and a newer answer always wins the merge."""
    if options.overwrite:
        discard_run(save_path)
    parts = _prediction_files(save_path)[1 if save_path.is_file() else 0:]
    if parts:
        jsonio.write_jsonl(save_path, _existing_records(save_path))
        for part in parts:
            part.unlink()
    if run_record is not None:
        annotations = dict(run_record.get("annotations", {}), n_queries=n_queries)
        run_records.write(save_path, dict(run_record, annotations=annotations), stored)


def _todo(task, save_path: Path, all_queries: list[Query], dist: "Dist") -> list[Query]:
    """This rank's queries still to answer: not answered yet, or asked differently since."""
    current = {q.key: q for q in all_queries}
    done = {_identity(task, r) for r in _existing_records(save_path)
            if r.get("status") == OK and _identity(task, r) in current
            and task.same_question(r, current[_identity(task, r)])}
    remaining = [q for q in all_queries if q.key not in done]
    _say(dist, f"{len(all_queries)} queries, {len(done)} already answered, {len(remaining)} to run"
               + (f" on {dist.world} processes" if dist.world > 1 else ""))
    # the remaining videos are dealt out, so a resumed run keeps every rank busy
    groups = [g for i, g in enumerate(group_by_video(remaining)) if i % dist.world == dist.rank]
    return [q for group in groups for q in group]


def _generate(task, options: RunOptions, model, todo: list[Query], output: Path, dist: "Dist") -> None:
    """Answer `todo`, appending each record to `output` as it comes; DataLoader workers decode ahead."""
    import torch

    dataset = BatchDataset(make_units(group_by_video(todo), options.batch_size), task, options, model.preprocessor)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, shuffle=False, num_workers=options.workers,
        collate_fn=lambda unit: unit, prefetch_factor=2 if options.workers else None,
    )
    bar = tqdm(total=len(todo), desc=f"rank {dist.rank}" if dist.world > 1 else "queries",
               unit="query", disable=not options.progress, dynamic_ncols=True, position=dist.rank)
    with jsonio.JsonlWriter(output) as writer:
        for unit in loader:
            for work in unit:
                for record in _answer(task, model, work, options):
                    writer.write(record)
                    bar.update(1)
    bar.close()


def _barrier(td) -> None:
    if td is not None:
        td.barrier()


def _check_writable(save_path: Path) -> None:
    """Before any model loads: the predictions can be written where asked."""
    try:
        save_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunError(f"cannot create the folder of --save_path {save_path}: {err.strerror}", 2) from None
    if not os.access(save_path.parent, os.W_OK) or (save_path.exists() and not os.access(save_path, os.W_OK)):
        raise RunError(f"cannot write predictions to {save_path}: permission denied", 2)


def _finish(task, options: RunOptions, save_path: Path, all_queries: list[Query]) -> dict:
    """Merge, score against the current annotations, print and write the metrics (which carry the run
    record as it stands on disk: resumes and settings completed after loading included)."""
    records = merge_records(task, save_path, all_queries)
    wanted = {q.key for q in all_queries}
    scored = [r for r in records if _identity(task, r) in wanted]
    stale = [_identity(task, r) for r in records if _identity(task, r) not in wanted]
    summary, metrics = task.score(scored, all_queries, save_path, Path(options.annotations))
    if stale:
        # Queries of earlier runs that this run does not cover (dropped from the file, or past --limit).
        summary += (f"\n  note: {len(stale)} records in the predictions are not among the {len(all_queries)} queries "
                    f"evaluated now and are left out (ids {', '.join(stale[:5])}{', ...' if len(stale) > 5 else ''})")
        metrics["n_left_out"] = len(stale)
    if options.usage_summary is not None:
        line, usage = options.usage_summary(scored)
        summary += "\n" + line
        metrics["usage"] = usage
    reason = useless_reason(metrics, options)
    metrics["measured"] = reason is None
    if reason:
        metrics["not_measured_because"] = reason
    jsonio.write_json(metrics_path(save_path), metrics)
    log.info(summary)
    log.info(f"predictions: {save_path}\nmetrics:     {metrics_path(save_path)}\n"
             f"run record:  {run_records.record_path(save_path)}")
    return metrics


def _raise_if_useless(metrics: dict | None, options: RunOptions) -> None:
    """A non-zero exit, with the reason, when the metrics measure nothing."""
    reason = None if metrics is None else useless_reason(metrics, options)
    if reason:
        raise RunError(reason)


def useless_reason(metrics: dict, options: RunOptions) -> str | None:
    """Why these metrics measure nothing (None when they measure something)."""
    statuses = metrics.get("status", {})
    n = metrics.get("n", 0)
    if statuses.get("dry_run"):  # the API backend's --dry_run: requests written, nothing asked
        return None
    if n == 0:
        return "no query was evaluated"
    if statuses.get(OK, 0) == 0:
        if statuses.get("missing_video", 0) == n:
            return f"none of the {n} queries' videos was found in {options.videos}; is --videos right?"
        counts = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
        return f"no query was answered ({counts}); see the 'error' field of the records"
    if metrics.get("n_empty_answers", 0) == statuses.get(OK, 0):
        return f"every answer is empty; nothing to parse (is --max_new_tokens {options.max_new_tokens} too small?)"
    return None


def _answer(task, model, work: PreparedWork, options: RunOptions) -> Iterator[dict]:
    """Every query's record: first those without an answer to wait for, then each answer as it
    comes (a family with `generate_each`, the API backend, yields them as they arrive, so each
    is flushed at once), in the order they come."""
    ready = [i for i, status in enumerate(work.statuses) if status == OK]
    for index, status in enumerate(work.statuses):
        if status != OK:
            yield _record(task, work, index, None, status, work.errors[index], options)
    if work.batch is None:
        return
    answered: set[int] = set()
    each = getattr(model, "generate_each", None)
    try:
        answers = each(work.batch, options.max_new_tokens) if each else enumerate(
            model.generate(work.batch, options.max_new_tokens))
        for position, answer in answers:
            index = ready[position]
            answered.add(index)
            status, error, response, extra = OK, None, answer, {}
            if isinstance(answer, Answer):  # a family that reports more than text (the API backend)
                response, extra = answer.text, answer.extra
                if answer.status != OK:
                    status, error = answer.status, answer.error
            yield _record(task, work, index, response, status, error, options, extra)
    except Exception as err:  # e.g. out of memory on one huge video: record it, keep going
        failure = f"{type(err).__name__}: {err}"
        log.warning(f"generation failed for {[work.queries[i].key for i in ready if i not in answered]}: {failure}")
        for index in ready:
            if index not in answered:
                yield _record(task, work, index, None, "model_error", failure, options)


def _record(task, work: PreparedWork, index: int, response, status: str, error: str | None, options: RunOptions,
            extra: dict | None = None) -> dict:
    record = task.record(work.queries[index], response, options.fps, status)
    record.update(work.extras[index] if work.extras else {})
    record.update(extra or {})
    if error:
        record["error"] = error
    return record


def _say(dist: Dist, message: str) -> None:
    if dist.rank == 0:
        log.info(message)
