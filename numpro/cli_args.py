"""Command-line conventions shared by every script: flag spellings, argument groups, exit status.

Flags are spelled as upstream spells them (underscores) and also accept the hyphen form:
`add_flag(parser, "--font_size", ...)` adds --font_size and --font-size. The groups below
declare each shared flag once, with its type, check and help; a script passes its own defaults
(the sampling rate differs between scripts, say) and reads the values back with
`stamp_style(args)`.

- stamp style: --font_size, --color, --position (top_left ... center, or tl tr bl br c), --font,
  --stamp_text number|seconds (seconds draws the frame's time k / fps, e.g. "12s", "7.5s")
- sampling: --fps, --size, --max_frames
- workers: --workers N. The default is the number of CPU cores this process may run on
  (os.sched_getaffinity: taskset and cpuset limits count), capped where a script sets a cap
  (default_workers(cap)); 0 runs the work in the main process.
- progress: --no_progress (no progress bar, for batch logs)

Exit status, the same for every command:
    0      done: what was asked is there (an evaluation counts queries whose video failed in
           its metrics, as records with a status, so they do not change its exit status)
    1      it ran, but what was asked is missing: nothing was measured (evaluation), or some
           clips could not be made (preprocessing); each failure is listed with its reason
    2      bad input or usage: a bad flag value, a missing or malformed file or folder, an
           output that cannot be written; one line on stderr names it, no traceback
    128+N  stopped by signal N (130: Ctrl-C, 143: SIGTERM); the same command resumes
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from . import protocol, timeline
from .argtypes import nonnegative_int, positive_float, positive_int
from .stamp import POSITION_ALIASES, POSITIONS, StampStyle, find_font, normalize_position

EXIT_OK = 0
EXIT_INCOMPLETE = 1
EXIT_USAGE = 2

OMIT = object()  # a group's default meaning "this script does not take the flag"


def flag_names(*names: str) -> list[str]:
    """Each long flag in both spellings: --font_size -> --font_size, --font-size."""
    spelled: list[str] = []
    for name in names:
        for form in (name, "--" + name[2:].replace("_", "-") if name.startswith("--") else name):
            if form not in spelled:
                spelled.append(form)
    return spelled


def add_flag(parser, *names: str, **kwargs) -> argparse.Action:
    """parser.add_argument with the hyphen alias of every underscored long flag."""
    return parser.add_argument(*flag_names(*names), **kwargs)


# ------------------------------------------------------------------ value types
def parse_position(text: str) -> str:
    """A stamp position or its short alias, as the canonical name (br -> bottom_right)."""
    try:
        return normalize_position(text)
    except ValueError:
        aliases = ", ".join(POSITION_ALIASES)
        raise argparse.ArgumentTypeError(f"choose one of {', '.join(POSITIONS)} (or {aliases}), got {text!r}") from None


def parse_color(text: str) -> str:
    """A PIL colour name or #rrggbb, kept as written (it names output folders and manifests)."""
    from PIL import ImageColor

    try:
        ImageColor.getrgb(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a colour: {text!r} (a name such as red, or #rrggbb)") from None
    return text


def parse_font(text: str) -> str:
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"font file not found: {text}")
    return text


def int_range(low: int, high: int):
    """An argparse type: an integer from `low` to `high`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer from {low} to {high}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {value}")
        return value

    return parse


# ------------------------------------------------------------------ groups
def add_stamp_style(parser, *, font_size: int = protocol.FONT_SIZE, color: str = protocol.COLOR,
                    position: str = protocol.POSITION, stamp_text: str = "number",
                    title: str = "number style") -> argparse._ArgumentGroup:
    """--font_size, --color, --position, --font, --stamp_text; read back with stamp_style(args)."""
    group = parser.add_argument_group(title)
    add_flag(group, "--font_size", type=positive_int, default=font_size, metavar="PX",
             help="height of the label's font in pixels (default: %(default)s)")
    add_flag(group, "--color", type=parse_color, default=color,
             help="PIL colour name or #rrggbb (default: %(default)s)")
    add_flag(group, "--position", type=parse_position, default=position, metavar="WHERE",
             help=f"{', '.join(POSITIONS)}; or {', '.join(POSITION_ALIASES)} (default: %(default)s)")
    add_flag(group, "--font", type=parse_font, default=None, metavar="TTF",
             help="TrueType font file (default: DejaVu Sans Bold shipped with matplotlib)")
    add_flag(group, "--stamp_text", choices=timeline.STAMP_TEXTS, default=stamp_text,
             help="what each frame carries: its number k, or its time k / fps written as 12s or 7.5s, "
                  "same font, size, colour and place (default: %(default)s)")
    return group


def stamp_style(args: argparse.Namespace) -> StampStyle:
    """The StampStyle of the parsed stamp flags. Looks for the font now, so that a missing one
    stops a run before any work (stamp.FontNotFoundError)."""
    style = StampStyle(font_size=args.font_size, color=args.color, position=args.position, font_path=args.font)
    find_font(style.font_path)
    return style


def add_sampling(parser, *, fps: float, size: Any = protocol.FRAME_SIZE, max_frames: Any = OMIT,
                 fps_help: str | None = None, max_frames_help: str | None = None,
                 title: str = "sampling") -> argparse._ArgumentGroup:
    """--fps, --size and --max_frames with this script's defaults; OMIT leaves a flag out."""
    group = parser.add_argument_group(title)
    add_flag(group, "--fps", type=positive_float, default=fps,
             help=fps_help or "frames sampled per second: frame k is the source frame nearest to k / fps seconds "
                              "(default: %(default)s)")
    if size is not OMIT:
        add_flag(group, "--size", type=positive_int, default=size,
                 help="frames are resized to SIZE x SIZE, aspect ratio not kept, as upstream (default: %(default)s)")
    if max_frames is not OMIT:
        add_flag(group, "--max_frames", type=nonnegative_int, default=max_frames, metavar="N",
                 help=max_frames_help or "keep at most N frames, linspace(0, K-1, N), each with its own number; "
                                         "0: all (default: %(default)s)")
    return group


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask: taskset and cpusets count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def default_workers(cap: int | None = None) -> int:
    """The --workers default: the available cores, at most `cap`."""
    cores = available_cores()
    return cores if cap is None else max(0, min(cap, cores))


def add_workers(parser, *, cap: int | None = None, what: str = "worker processes") -> argparse.Action:
    """--workers N (default: default_workers(cap)); 0 runs the work in the main process."""
    limit = "" if cap is None else f", at most {cap}"
    return add_flag(parser, "--workers", type=nonnegative_int, default=default_workers(cap), metavar="N",
                    help=f"{what} (default: the CPU cores available{limit}: %(default)s; 0 runs in this process)")


def add_progress(parser) -> argparse.Action:
    return add_flag(parser, "--no_progress", action="store_true", help="no progress bar (for batch logs)")
