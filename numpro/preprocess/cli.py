"""The command line of preprocess/*.py: flags, checks before any work, the summaries it prints.

Exit status as numpro.cli_args says: 0 every video is done, 1 some failed (listed in the
report), 2 bad usage or nothing to read or nowhere to write, 128+N stopped by signal N.
"""

from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .. import clip_writer, protocol
from ..argtypes import positive_int
from ..cli_args import (EXIT_USAGE, add_flag, add_progress, add_sampling, add_stamp_style, add_workers, int_range,
                        stamp_style)
from ..jsonio import JsonInputError
from ..stamp import FontNotFoundError
from ..video import BACKENDS
from .datasets import DATASETS, Dataset
from .discovery import Namer, hash_namer, listed_names, parse_shard, stem_name
from .layout import output_problem, report_path
from .plan import Plan, make_plan
from .pool import Interrupted, Report, execute, signals_stop_the_run
from .settings import Settings

Log = Callable[[str], None]


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
            "and skipped. Exit status: 0 when every video is done; 1 when some failed, each listed with the "
            "reason in OUTPUT/preprocess_report.json (preprocess_report.shardIofN.json per shard); 2 for a bad "
            "flag, no input at all or an output folder that cannot be written. Ctrl-C or SIGTERM stops the "
            "workers, keeps the finished clips and writes the report (exit status 130 or 143); rerun the same "
            "command to resume."
        ),
    )
    _add_work_flags(parser, dataset, default_out)
    add_sampling(parser, fps=protocol.NUMPRO_FT_FPS, size=protocol.FRAME_SIZE)
    style = add_stamp_style(parser)
    add_flag(style, "--no_numbers", action="store_true",
             help="write the same clips without numbers (the fine-tuning-without-numbers ablation); the default "
                  "output folder is then videos_<fps>FPS, and the other flags of this group are ignored")
    _add_encoding_flags(parser)
    add_progress(parser)
    return parser


def _add_work_flags(parser: argparse.ArgumentParser, dataset: Dataset, default_out: str) -> None:
    """Which videos, where the clips go, and how many processes make them."""
    add_flag(parser, "--input", "--inputs", nargs="+", default=list(dataset.inputs), metavar="DIR_OR_FILE",
             help=f"video folders (searched recursively) or video files (default: {' '.join(dataset.inputs)})")
    add_flag(parser, "--output", default=None, metavar="DIR",
             help=f"output folder (default: {default_out}; the name follows --fps, --stamp_text, --color, "
                  f"--font_size, --position, --size and --no_numbers)")
    add_workers(parser)
    add_flag(parser, "--shard", default="0/1", metavar="I/N",
             help="process only shard I of N, I from 0 (e.g. $SLURM_ARRAY_TASK_ID/N); shards split the videos "
                  "by a hash of their name: disjoint, together complete")
    add_flag(parser, "--limit", type=positive_int, default=None, metavar="N",
             help="only the first N videos (sorted by name) of the shard")
    add_flag(parser, "--only_listed", default=None, metavar="TRAIN_JSON",
             help=f"only videos a training or annotation file references (records with source {dataset.key!r} or "
                  "none; the name in 'video', 'vid' or 'id')")
    if dataset.hash_file is not None:
        add_flag(parser, "--hash_file", default=dataset.hash_file, metavar="TXT",
                 help=f"DiDeMo id<TAB>hash mapping; outputs are named by hash, as training files expect "
                      f"(default: {Path(dataset.hash_file).name} beside this script)")
        add_flag(parser, "--keep_names", action="store_true", help="name outputs like their sources, not by hash")


def _add_encoding_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("decoding and encoding")
    add_flag(group, "--format", choices=clip_writer.FORMATS, default="mp4",
             help="mp4: H.264 clip at the sampling rate; frames: lossless PNG files NAME/000000.png... "
                  "(default: %(default)s)")
    add_flag(group, "--backend", choices=BACKENDS, default="pyav",
             help="video decoder (default: %(default)s, measured fastest for 0.5-FPS sampling in BENCHMARKS.md; "
                  "auto: PyAV, decord when PyAV cannot read the file; opencv assumes a constant frame rate)")
    add_flag(group, "--crf", type=int_range(0, clip_writer.MAX_CRF), default=clip_writer.DEFAULT_CRF,
             help="H.264 quality of the mp4, lower is better (default: %(default)s)")
    add_flag(group, "--preset", choices=clip_writer.PRESETS, default=clip_writer.DEFAULT_PRESET, metavar="PRESET",
             help=f"x264 speed preset of the mp4: {', '.join(clip_writer.PRESETS)} (default: %(default)s)")


@dataclass
class Setup:
    """What the flags ask for, checked: everything a run needs besides the videos."""

    settings: Settings
    shard: tuple[int, int]
    output: Path
    namer: Namer
    listed: set[str] | None


def _setup(dataset: Dataset, args: argparse.Namespace) -> Setup:
    """The checked flags; raises ValueError (or FontNotFoundError) with a one-line reason."""
    style = None if args.no_numbers else stamp_style(args)
    settings = Settings(args.fps, args.size, style, args.format, args.backend, args.crf, args.preset, args.stamp_text)
    shard = parse_shard(args.shard)
    namer: Namer = stem_name
    if dataset.hash_file is not None and not args.keep_names:
        if not Path(args.hash_file).is_file():
            raise ValueError(f"hash file not found: {args.hash_file} (give --hash_file, or --keep_names)")
        try:
            namer = hash_namer(args.hash_file)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read the hash file: {exc}") from None
    listed = None
    if args.only_listed:
        try:
            listed = listed_names(args.only_listed, dataset.key)
        except JsonInputError as exc:
            raise ValueError(str(exc)) from None
        if not listed:
            raise ValueError(f"{args.only_listed} references no videos of source {dataset.key!r}")
    output = Path(args.output or f"{dataset.root}/{settings.folder_name()}")
    return Setup(settings, shard, output, namer, listed)


def _error(parser: argparse.ArgumentParser, message: str) -> int:
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def main(dataset: Dataset, argv: Sequence[str] | None = None, log: Log = print) -> int:
    """Command-line entry of preprocess/*.py. Returns the exit status."""
    parser = build_parser(dataset)
    args = parser.parse_args(argv)
    try:
        setup = _setup(dataset, args)
    except (ValueError, FontNotFoundError) as exc:
        parser.error(str(exc))
    log(f"{dataset.title}: {setup.settings.kind()} ({setup.settings.describe()}) -> {setup.output}")
    missing = [entry for entry in args.input if not Path(entry).exists()]
    if len(missing) == len(args.input):
        return _error(parser, f"none of the inputs exist ({', '.join(missing)}): nothing done; give --input DIR, "
                              "or run from the folder that holds data/")
    problem = output_problem(setup.output)
    if problem:
        return _error(parser, problem)
    with signals_stop_the_run():
        try:
            return _run(dataset, args, setup, parser, log)
        except KeyboardInterrupt as exc:
            return _interrupted(exc, setup, log)


def _run(dataset: Dataset, args: argparse.Namespace, setup: Setup, parser: argparse.ArgumentParser, log: Log) -> int:
    try:
        plan = make_plan(args.input, setup.output, setup.settings, namer=setup.namer, listed=setup.listed,
                         shard=setup.shard, limit=args.limit)
    except ValueError as exc:
        return _error(parser, str(exc))
    _summarise_plan(plan, args, log)
    report = execute(plan, setup.output, setup.settings, shard=setup.shard, workers=args.workers, desc=dataset.key,
                     progress=not args.no_progress)
    _summarise_run(report, report_path(setup.output, setup.shard), log)
    return report.exit_code


def _interrupted(exc: KeyboardInterrupt, setup: Setup, log: Log) -> int:
    signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
    name = signal.Signals(signum).name
    report = getattr(exc, "report", None)
    if report is None:
        log(f"interrupted ({name}) before any clip was made")
    else:
        log(f"interrupted ({name}): {report.done} clips finished in this run, {report.left} left; finished clips "
            f"are kept, rerun the same command to resume ({report_path(setup.output, setup.shard)})")
    return 128 + signum


def _summarise_plan(plan: Plan, args: argparse.Namespace, log: Log) -> None:
    if plan.missing_inputs:
        log(f"missing input {'folder' if len(plan.missing_inputs) == 1 else 'folders'} (skipped): "
            + ", ".join(plan.missing_inputs))
    present = len(args.input) - len(plan.missing_inputs)
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


def _summarise_run(report: Report, path: Path, log: Log) -> None:
    rate = f" ({report.source_frames / report.seconds:.0f} source frames/s)" if report.done and report.seconds else ""
    log(f"done: {report.done} new, {len(report.plan.skipped)} already done, {len(report.failed)} failed"
        f" in {report.seconds:.1f} s{rate}")
    for failure in report.failed[:20]:  # each error names its file
        log(f"  FAILED {failure['error']}")
    if len(report.failed) > 20:
        log(f"  ... and {len(report.failed) - 20} more")
    log(f"report: {path}")


def script_main(key: str) -> None:
    """The body of preprocess/<key>.py: `script_main("anet")`."""
    sys.exit(main(DATASETS[key]))
