"""`python -m numpro viz manga|timeline`: flags, checks and messages (the only viz module that prints)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..argtypes import positive_int
from ..cli_args import EXIT_OK, EXIT_USAGE, OMIT, add_flag, add_sampling, add_stamp_style, stamp_style
from ..frames import numbered_frames
from ..jsonio import JsonInputError, read_records
from ..protocol import FRAME_SIZE, NUMPRO_FT_FPS, TRAINING_FREE_MR_FPS
from ..stamp import FontNotFoundError
from ..video import VideoError
from .manga import MANGA_COLS, MANGA_MAX_FRAMES, draw_manga
from .rows import TIMELINE_FIRST, TimelineRow, select_rows, timeline_rows, timeline_title
from .style import format_seconds
from .timelines import STRIP_MAX_FRAMES, Strip, draw_timelines, strip_from


def register(subparsers, name: str, help_text: str) -> None:
    """The `viz` group of `python -m numpro` (numpro.cli), described by the package's docstring."""
    from .. import viz

    parser = subparsers.add_parser(name, help=help_text, description=viz.__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    pictures = parser.add_subparsers(dest="picture", metavar="PICTURE", required=True)
    _add_manga(pictures)
    _add_timeline(pictures)


def _picture(pictures, name: str, help_text: str, description: str, source: str, source_help: str):
    """A picture's sub-command: what it is drawn from, and --output."""
    parser = pictures.add_parser(name, help=help_text, description=description)
    parser.add_argument(source.lower(), metavar=source, help=source_help)
    add_flag(parser, "--output", required=True, metavar="PNG", help="picture to write")
    return parser


def _add_manga(pictures) -> None:
    manga = _picture(pictures, "manga", "numbered frames of a video in a grid (what the model sees)",
                     "A manga page: the numbered frames of VIDEO in a grid, exactly as the model sees them.",
                     "VIDEO", "any video file")
    add_sampling(manga, fps=TRAINING_FREE_MR_FPS, size=FRAME_SIZE, max_frames=MANGA_MAX_FRAMES,
                 fps_help="frames sampled per second (1: training-free MR; 0.5: NumPro-FT and highlights; "
                          "default %(default)s)",
                 max_frames_help="draw at most N frames, evenly spread, each with its own number (0: all; "
                                 "default %(default)s)")
    add_flag(manga, "--cols", type=positive_int, default=MANGA_COLS, help="panels per row (default %(default)s)")
    add_stamp_style(manga)
    manga.set_defaults(func=_manga_command)


def _add_timeline(pictures) -> None:
    line = _picture(pictures, "timeline", "ground truth vs predicted span for queries of a predictions file",
                    "Ground truth vs predicted span, in seconds with frame numbers on top, for queries of a "
                    "moment-retrieval predictions file.",
                    "PRED", "moment-retrieval predictions: our JSONL or upstream's JSON list")
    which = line.add_mutually_exclusive_group()
    which.add_argument("--ids", nargs="+", metavar="ID", help="these queries, in this order")
    which.add_argument("--worst", type=positive_int, metavar="N", help="the N queries with the lowest IoU")
    which.add_argument("--best", type=positive_int, metavar="N", help="the N queries with the highest IoU")
    which.add_argument("--first", type=positive_int, metavar="N", help=f"the first N queries (default {TIMELINE_FIRST})")
    add_sampling(line, fps=NUMPRO_FT_FPS, size=OMIT, title="numbering",
                 fps_help="frame rate of the numbering for records without their own 'fps' (upstream's files; "
                          "default %(default)s)")
    add_flag(line, "--videos", metavar="DIR", default=None,
             help="folder of the videos: draw each query's numbered frames above its timeline")
    add_stamp_style(line, title="number style of the frames drawn with --videos")
    line.set_defaults(func=_timeline_command)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _manga_command(args) -> int:
    try:
        style = stamp_style(args)
        page = draw_manga(args.video, args.output, args.fps, args.max_frames or None, args.cols, style,
                          args.stamp_text)
    except (VideoError, ValueError, FontNotFoundError) as err:
        return _fail(str(err))
    print(f"wrote {args.output}: {len(page.numbers)} numbered frames (numbers {page.numbers[0]}..{page.numbers[-1]} "
          f"at {format_seconds(args.fps)} FPS)")
    return EXIT_OK


def _strips_for(rows: list[TimelineRow], videos: Path, args) -> dict[str, Strip]:
    from ..evaluation.runner import find_video

    style = stamp_style(args)
    strips = {}
    for row in rows:
        path = find_video(videos, row.video) if row.video else None
        if path is None:
            print(f"note: no video for query {row.id} in {videos}; drawn without frames", file=sys.stderr)
            continue
        try:
            sampled = numbered_frames(path, row.fps, max_frames=STRIP_MAX_FRAMES, style=style,
                                      stamp_text=args.stamp_text)
            strips[str(row.id)] = strip_from(sampled)
        except VideoError as err:
            print(f"note: {err}; query {row.id} drawn without frames", file=sys.stderr)
    return strips


def _selection_label(args) -> str:
    if args.ids:
        return "selected ids"
    if args.worst:
        return f"worst {args.worst} by IoU"
    if args.best:
        return f"best {args.best} by IoU"
    return "first queries"


def _timeline_command(args) -> int:
    if args.videos and not Path(args.videos).is_dir():
        return _fail(f"video folder not found: {args.videos}")
    try:
        records = read_records(args.pred)
        if not records:
            raise JsonInputError(f"{args.pred}: no records")
        rows = timeline_rows(records, args.fps, source=str(args.pred))
        shown = select_rows(rows, args.ids, args.worst, args.best, args.first)
        how = _selection_label(args)
        strips = _strips_for(shown, Path(args.videos), args) if args.videos else None
        draw_timelines(shown, args.output, strips, timeline_title(args.pred, rows, shown, how))
    except (JsonInputError, ValueError, FontNotFoundError) as err:
        return _fail(str(err))
    print(f"wrote {args.output}: {len(shown)} of {len(rows)} queries ({how})")
    return EXIT_OK
