"""`python -m numpro data TOOL ...`: the annotation tools' command line.

    charades      charades_sta_test.txt + Charades_v1_test.csv -> NumPro test file
    anet          ActivityNet Captions val_1/val_2/train.json -> NumPro test file
    didemo        DiDeMo {train,val,test}_data.json + yfcc100m_hash.txt -> NumPro test file
    qvhighlights  validate an official QVHighlights jsonl (optionally write a validated copy)
    vtimellm      VTimeLLM stage-2/3 json -> NumPro-FT training samples (frame numbers)
    check         what is missing or wrong in an annotation file and its video folders

Malformed input stops with exit status 2 and a message naming the file, line or record and field.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from .. import jsonio, protocol
from ..argtypes import nonnegative_float, nonnegative_int, positive_int
from ..cli_args import add_flag, add_progress, add_workers
from . import didemo



def _guarded(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Report malformed input as one clear line and exit status 2, not a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except jsonio.JsonInputError as exc:  # records.DataError is the same error
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return run


def _existing(path: str, flag: str) -> str:
    from .records import DataError

    if not Path(path).is_file():
        raise DataError(f"{path}: no such file ({flag})")
    return path


def _print_reported(tally, heading: str = "reported (kept as they are unless the line says otherwise):") -> None:
    lines = tally.lines()
    if lines:
        print(heading)
        for line in lines:
            print(f"  {line}")


def _print_conversion(conversion, output: str | None, what: str = "records") -> None:
    from .records import write_records

    records = conversion.records
    if output:
        write_records(output, records)
        print(f"wrote {output}: {len(records)} {what} over {conversion.videos} videos")
    else:
        print(f"{len(records)} {what} over {conversion.videos} videos")
    _print_reported(conversion.tally)
    for note in conversion.notes:
        print(f"note: {note}")


# ------------------------------------------------------------------ handlers
def _charades(args: argparse.Namespace) -> int:
    from . import charades

    lengths = charades.read_lengths(_existing(args.video_info, "--video_info"))
    _print_conversion(charades.convert(args.annotations, lengths), args.output)
    return 0


def _anet(args: argparse.Namespace) -> int:
    from . import anet

    _print_conversion(anet.convert(args.annotations, strip_v_prefix=args.strip_v_prefix), args.output)
    return 0


def _didemo_durations(args: argparse.Namespace, hashes: dict[str, str]) -> dict[str, float]:
    """Real lengths of the annotation's videos found in --videos (hash or original names)."""
    from .videofolder import VideoIndex, probe_all

    index = VideoIndex(args.videos)
    if not index.exists:
        from .records import DataError

        raise DataError(f"{args.videos}: no such folder (--videos)")
    originals = didemo.convert(args.annotations, None).records
    renamed = didemo.convert(args.annotations, hashes).records
    paths: dict[str, Path] = {}
    for original, named in zip(originals, renamed):
        hit = index.find(named["video"]) or index.find(original["video"])
        if hit is not None:
            paths[original["video"]] = hit.path
    lengths, failures = probe_all(paths.values(), args.workers)
    for path, reason in sorted(failures.items()):
        print(f"unreadable, duration bound used: {reason}")
    # Milliseconds: the container's timestamps give nothing finer, only float noise.
    return {name: round(lengths[str(path)].duration, 3) for name, path in paths.items() if str(path) in lengths}


def _didemo(args: argparse.Namespace) -> int:

    hashes = didemo.read_hash_file(_existing(args.hash_file, "--hash_file"))
    durations = _didemo_durations(args, hashes) if args.videos else None
    _print_conversion(didemo.convert(args.annotations, hashes, durations), args.output)
    return 0


def _qvhighlights(args: argparse.Namespace) -> int:
    from . import qvhighlights

    conversion = qvhighlights.read(args.annotations)
    videos = len({r["vid"] for r in conversion.records})
    print(f"{args.annotations}: valid, {len(conversion.records)} queries over {videos} videos")
    if args.output:
        print(f"wrote {jsonio.write_jsonl(args.output, conversion.records)}")
    _print_reported(conversion.tally, "reported (kept as they are):")
    return 0


def _vtimellm(args: argparse.Namespace) -> int:
    from . import vtimellm

    hashes = didemo.read_hash_file(_existing(args.hash_file, "--hash_file")) if args.hash_file else None
    conversion = vtimellm.convert(args.annotations, hashes, split_mode=args.split_mode)
    _print_conversion(conversion, args.output, "samples")
    return 0


def _check(args: argparse.Namespace) -> int:
    from . import check

    options = check.Options(
        video_folder=args.video_folder,
        source_folders={
            "anet": args.anet_video_folder,
            "didemo": args.didemo_video_folder,
            "internvid": args.internvid_video_folder,
        },
        video_info=args.video_info and _existing(args.video_info, "--video_info"),
        hash_file=args.hash_file and _existing(args.hash_file, "--hash_file"),
        model_max_length=args.model_max_length,
        max_frames=args.max_frames,
        tokenizer=_tokenizer(args.tokenizer) if args.tokenizer else None,
        duration_tolerance=args.duration_tolerance,
        workers=args.workers,
        probe=not args.no_probe,
        progress=not args.no_progress,
        examples=args.examples,
    )
    report = check.check(args.annotations, args.format, options)
    print(check.render(report, options))
    if args.missing_list:
        names = [name for column in report.columns for name in report.missing[column]]
        Path(args.missing_list).write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
        print(f"wrote {args.missing_list}: {len(names)} missing videos")
    return 1 if args.strict and report.problems else 0


def _tokenizer(folder: str):
    from ..training.eligibility import load_tokenizer
    from .records import DataError

    try:
        return load_tokenizer(folder)
    except FileNotFoundError as exc:
        raise DataError(f"{exc} (--tokenizer)") from None


# ------------------------------------------------------------------ parsers
def register(subparsers, name: str, help_text: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help_text, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tools = parser.add_subparsers(dest="tool", metavar="TOOL", required=True)
    _add_converters(tools)
    _add_check(tools)
    return parser


def _add_converters(tools) -> None:
    from .videofolder import PROBE_WORKERS_CAP

    p = tools.add_parser("charades", help="Charades-STA txt + csv -> NumPro test file")
    add_flag(p, "--annotations", required=True, help="charades_sta_test.txt ('VID start end##sentence' lines)")
    add_flag(p, "--video_info", required=True, help="Charades_v1_test.csv (its 'length' column gives durations)")
    add_flag(p, "--output", required=True, help="NumPro test file to write (JSON list)")
    p.set_defaults(func=_guarded(_charades))

    p = tools.add_parser("anet", help="ActivityNet Captions json -> NumPro test file")
    add_flag(p, "--annotations", required=True, help="val_2.json (or val_1.json, train.json)")
    add_flag(p, "--output", required=True, help="NumPro test file to write (JSON list)")
    add_flag(p, "--strip_v_prefix", action="store_true", help="name videos by the bare YouTube id (default: v_<id>.mp4)")
    p.set_defaults(func=_guarded(_anet))

    p = tools.add_parser("didemo", help="DiDeMo json -> NumPro test file (seconds, hashed names)")
    add_flag(p, "--annotations", required=True, nargs="+", help="{train,val,test}_data.json, one or more")
    add_flag(p, "--hash_file", default=str(didemo.HASH_FILE),
             help="yfcc100m_hash.txt (default: preprocess/yfcc100m_hash.txt of this checkout)")
    add_flag(p, "--output", required=True, help="NumPro test file to write (JSON list)")
    add_flag(p, "--videos", help="folder of the DiDeMo videos: probe their real durations (default: num_segments * 5 s)")
    add_workers(p, cap=PROBE_WORKERS_CAP, what="parallel probes")
    p.set_defaults(func=_guarded(_didemo))

    p = tools.add_parser("qvhighlights", help="validate a QVHighlights jsonl")
    add_flag(p, "--annotations", required=True, help="highlight_{train,val,test}_release.jsonl")
    add_flag(p, "--output", help="write the validated lines here (unchanged)")
    p.set_defaults(func=_guarded(_qvhighlights))

    p = tools.add_parser("vtimellm", help="VTimeLLM stage-2/3 json -> NumPro-FT training samples")
    add_flag(p, "--annotations", required=True, nargs="+", help="stage2.json and/or stage3.json")
    add_flag(p, "--output", required=True, help="training file to write (JSON list, train_sft.json format)")
    add_flag(p, "--hash_file", help="yfcc100m_hash.txt: rename DiDeMo sources to their hash, as NumPro's clips are")
    add_flag(p, "--split_mode", choices=("clip", "full"), default="clip",
          help="clip: a sample with meta.split is the cut segment <id>_<start>_<end>, numbered from its start "
               "(default); full: the whole video <id> is numbered")
    p.set_defaults(func=_guarded(_vtimellm))


def _add_check(tools) -> None:
    from .check import FORMATS
    from .videofolder import PROBE_WORKERS_CAP

    p = tools.add_parser("check", help="report missing/unreadable videos and annotation anomalies")
    add_flag(p, "--annotations", required=True, help="any supported annotation or training file")
    add_flag(p, "--format", choices=FORMATS, help="the file's format (default: detected from its content)")
    add_flag(p, "--videos", "--video_folder", dest="video_folder",
          help="video folder (training files: for samples without a source)")
    add_flag(p, "--anet_video_folder", help="numbered clips of source 'anet'")
    add_flag(p, "--didemo_video_folder", help="numbered clips of source 'didemo'")
    add_flag(p, "--internvid_video_folder", help="numbered clips of source 'internvid'")
    add_flag(p, "--video_info", help="Charades_v1_*.csv, for a raw Charades-STA txt")
    add_flag(p, "--hash_file", help="yfcc100m_hash.txt, for raw DiDeMo or VTimeLLM files")
    add_flag(p, "--model_max_length", type=positive_int, default=protocol.MODEL_MAX_LENGTH,
          help="training token cap (default %(default)s)")
    add_flag(p, "--max_frames", type=nonnegative_int, default=protocol.MAX_FRAMES,
          help="training's frame cap (default %(default)s; 0: none)")
    add_flag(p, "--tokenizer", help="LongVA checkpoint folder: count text tokens exactly, as training's pre-flight "
                                 "scan does (default: estimated from the characters)")
    add_flag(p, "--duration_tolerance", type=nonnegative_float, default=1 / protocol.NUMPRO_FT_FPS,
          help="seconds a video may differ from the file (default %(default)g)")
    add_workers(p, cap=PROBE_WORKERS_CAP, what="parallel probes")
    add_flag(p, "--no_probe", action="store_true", help="only look for the files, do not open them")
    add_progress(p)
    add_flag(p, "--examples", type=nonnegative_int, default=5, help="examples shown per kind of problem")
    add_flag(p, "--missing_list", help="write every missing video name here, one per line")
    add_flag(p, "--strict", action="store_true", help="exit with status 1 when any problem is found")
    p.set_defaults(func=_guarded(_check))
