"""`python -m numpro viz`: the two pictures that show what NumPro does, for any data.

manga     the numbered frames of a video in a grid, like manga panels: exactly the pixels the
          model is given (decoded by numpro.video, stamped by numpro.stamp), each panel
          captioned with the time its number stands for.
timeline  ground-truth span vs predicted span for queries of a moment-retrieval predictions
          file (our JSON Lines or upstream's JSON list): spans in seconds, frame numbers on
          top, IoU in the title, answers that did not parse shown as such.

Examples:
    python -m numpro viz manga data/charades/videos/3MSZA.mp4 --output manga.png
    python -m numpro viz timeline results/charades_test_Qwen2-VL-7B-Instruct_numpro_1fps.jsonl --output worst.png --worst 6
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from . import prompts, timeline
from .jsonio import JsonInputError, read_records
from .metrics.mr import UPSTREAM_FPS, score_mr_records, summarize_ious
from .stamp import POSITIONS, Stamper, StampStyle, find_font
from .video import SampledVideo, VideoError, read_sampled

GT_COLOR = "#1a9641"  # ground truth: green
PRED_COLOR = "#e66101"  # prediction: orange
FAIL_COLOR = "#b2182b"  # unparsed / reversed answers
MANGA_COLS = 6
MANGA_MAX_FRAMES = 24
TIMELINE_FIRST = 8  # queries drawn when none are selected
STRIP_MAX_FRAMES = 40  # thumbnails above a timeline; more would be too small to see


# ------------------------------------------------------------------------------ manga page
@dataclass
class MangaPage:
    image: "Image.Image"  # noqa: F821  (PIL, imported lazily)
    boxes: list[tuple[int, int, int, int]]  # (x0, y0, x1, y1) of each panel, in frame order
    numbers: list[int]


_GAP = 16  # gutter between panels; wide enough for a highlight outline
_MARGIN = 28
_CAPTION = 30  # caption strip under each panel
_OUTLINE = 6


def numbered_frames(video: str | Path, fps: float, max_frames: int | None = None, size: int = 336,
                    style: StampStyle | None = None) -> SampledVideo:
    """The frames the model sees: sampled by the timeline, resized, stamped with their numbers."""
    sampled = read_sampled(video, fps, size, max_frames=max_frames)
    Stamper(style).stamp_all(sampled.pixels, sampled.numbers, inplace=True)
    return sampled


@lru_cache(maxsize=8)
def _fonts(size: int):
    """(regular, bold) DejaVu Sans at `size` pixels, from matplotlib's copy beside the stamp font."""
    from PIL import ImageFont

    bold = find_font()
    return ImageFont.truetype(str(bold.with_name("DejaVuSans.ttf")), size), ImageFont.truetype(str(bold), size)


def _wrap(text: str, font, width: float) -> list[str]:
    """Greedy word wrap to `width` pixels."""
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and font.getlength(trial) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + ([line] if line else [])


def format_seconds(seconds: float) -> str:
    return f"{seconds:.2f}".rstrip("0").rstrip(".")


def _header_lines(header: Sequence[tuple[str, str]], width: int) -> list[tuple[str, object, str]]:
    """(text, font, colour) of each wrapped header line; the first paragraph is the title."""
    lines = []
    for i, (text, color) in enumerate(header):
        font = _fonts(38)[1] if i == 0 else _fonts(26)[0]
        lines.extend((line, font, color) for line in _wrap(text, font, width))
    return lines


def _draw_panel(page, draw, frame: np.ndarray, number: int, x0: int, y0: int, fps: float, marked: bool) -> None:
    """One frame pasted as is, outlined when marked, captioned with the time its number means."""
    from PIL import Image

    height, width = frame.shape[:2]
    page.paste(Image.fromarray(frame), (x0, y0))
    regular, bold = _fonts(22)
    color, font = (GT_COLOR, bold) if marked else ("#444444", regular)
    if marked:  # drawn in the gutter only: the panel's pixels stay the model's input
        draw.rectangle((x0 - _OUTLINE, y0 - _OUTLINE, x0 + width + _OUTLINE - 1, y0 + height + _OUTLINE - 1),
                       outline=GT_COLOR, width=_OUTLINE)
    caption = f"frame {number} = {format_seconds(timeline.frame_to_seconds(number, fps))} s"
    draw.text((x0 + width / 2, y0 + height + _OUTLINE + 2), caption, font=font, fill=color, anchor="mt")


def manga_page(
    pixels: np.ndarray,
    numbers: Sequence[int],
    fps: float,
    cols: int = MANGA_COLS,
    header: Sequence[tuple[str, str]] = (),
    highlight: Sequence[int] = (),
) -> MangaPage:
    """Numbered frames in a grid, with `header` paragraphs (text, colour) above them.

    Panels are pasted pixel for pixel (no resampling), so the page shows exactly what the model
    sees. Panels whose number is in `highlight` get a green outline in the gutter around them.
    """
    from PIL import Image, ImageDraw

    if len(pixels) == 0:
        raise ValueError("no frames to draw")
    cols = max(1, min(cols, len(pixels)))
    n_rows = -(-len(pixels) // cols)
    height, width = pixels.shape[1:3]
    page_width = 2 * _MARGIN + cols * width + (cols - 1) * _GAP
    lines = _header_lines(header, page_width - 2 * _MARGIN)
    line_heights = [int(font.size * 1.35) for _, font, _ in lines]
    top = _MARGIN + sum(line_heights) + (_MARGIN // 2 if lines else 0)
    page_height = top + n_rows * (height + _CAPTION) + (n_rows - 1) * _GAP + _MARGIN

    page = Image.new("RGB", (page_width, page_height), "white")
    draw = ImageDraw.Draw(page)
    y = _MARGIN
    for (text, font, color), line_height in zip(lines, line_heights):
        draw.text((_MARGIN, y), text, font=font, fill=color)
        y += line_height

    marked = set(highlight)
    boxes = []
    for i, (frame, number) in enumerate(zip(pixels, numbers)):
        row, col = divmod(i, cols)
        x0, y0 = _MARGIN + col * (width + _GAP), top + row * (height + _CAPTION + _GAP)
        _draw_panel(page, draw, frame, int(number), x0, y0, fps, number in marked)
        boxes.append((x0, y0, x0 + width, y0 + height))
    return MangaPage(page, boxes, [int(n) for n in numbers])


def manga_header(video_name: str, sampled: SampledVideo, query: str | None = None) -> list[tuple[str, str]]:
    """Title and explanation paragraphs for a manga page."""
    fps = format_seconds(sampled.fps)
    total = timeline.num_sampled_frames(sampled.info.duration, sampled.fps)
    kept = len(sampled.frames)
    size = f"{sampled.pixels.shape[2]}x{sampled.pixels.shape[1]}"
    count = f"{kept} frames" if kept == total else f"{kept} of its {total} frames (evenly spread)"
    question = prompts.INSTRUCTION + prompts.MR_QUESTION.format(query or "<query>")
    return [
        ("NumPro: number every frame, then ask the model for frame numbers", "black"),
        (f"{video_name} ({format_seconds(sampled.info.duration)} s) at {fps} FPS: {count}, resized to {size}, "
         f"each stamped with its number k (red, bottom-right); frame k is at k / {fps} s.", "#222222"),
        (f'The model reads the numbers like manga panels. Prompt: "{question}"', "#1f4e9c"),
    ]


def draw_manga(video: str | Path, output: str | Path, fps: float = 1.0, max_frames: int | None = MANGA_MAX_FRAMES,
               cols: int = MANGA_COLS, style: StampStyle | None = None) -> MangaPage:
    """Manga page of any video, written to `output`."""
    sampled = numbered_frames(video, fps, max_frames, style=style)
    if not sampled.frames:
        raise VideoError(video, f"too short to sample a frame at {fps} FPS")
    page = manga_page(sampled.pixels, sampled.numbers, fps, cols, manga_header(Path(video).name, sampled))
    save_image(page.image, output)
    return page


def save_image(image, output: str | Path) -> Path:
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        image.save(output)
    except (ValueError, KeyError) as err:  # PIL: unknown extension
        raise ValueError(f"cannot write {output}: unsupported image format (use .png)") from err
    return output


# ------------------------------------------------------------------------------ timelines
@dataclass
class TimelineRow:
    """One scored query, ready to draw: spans in seconds."""

    id: object
    query: str | None
    response: str
    fps: float
    gt: tuple[float, float]
    pred: tuple[float, float] | None  # None: the answer did not parse
    iou: float
    duration: float | None
    reversed: bool
    video: str | None


@dataclass
class Strip:
    """Numbered frames shown above a timeline, each centred on its time."""

    times: np.ndarray  # seconds
    numbers: list[int]
    thumbs: np.ndarray  # (n, h, w, 3) uint8


def timeline_rows(records: list[dict], default_fps: float = UPSTREAM_FPS, source: str = "records") -> list[TimelineRow]:
    """Score each record with the metric code (parse, frames -> seconds, IoU) for drawing."""
    report = score_mr_records(records, default_fps=default_fps, source=source)
    rows = []
    for record, query in zip(records, report.queries):
        duration = record.get("duration")
        rows.append(TimelineRow(
            id=query.id, query=record.get("query"), response=query.answer.raw, fps=query.fps, gt=query.gt,
            pred=query.pred_seconds, iou=query.iou,
            duration=float(duration) if isinstance(duration, (int, float)) and duration > 0 else None,
            reversed=query.answer.reversed, video=record.get("video"),
        ))
    return rows


def select_rows(rows: list[TimelineRow], ids: Sequence[str] | None = None, worst: int | None = None,
                best: int | None = None, first: int | None = None) -> list[TimelineRow]:
    """The queries to draw: given ids (in that order), the worst or best N by IoU, or the first N."""
    if ids:
        by_id = {str(row.id): row for row in rows}
        unknown = [i for i in ids if str(i) not in by_id]
        if unknown:
            raise ValueError(f"ids not in the predictions: {', '.join(unknown)}")
        return [by_id[str(i)] for i in ids]
    for name, n in (("--worst", worst), ("--best", best), ("--first", first)):
        if n is not None and n < 1:
            raise ValueError(f"{name} must be at least 1, got {n}")
    if worst is not None:
        return sorted(rows, key=lambda row: row.iou)[:worst]  # stable: ties keep file order
    if best is not None:
        return sorted(rows, key=lambda row: -row.iou)[:best]
    return rows[: first or TIMELINE_FIRST]


def strip_from(sampled: SampledVideo, max_frames: int = STRIP_MAX_FRAMES, thumb: int = 112) -> Strip:
    """Thumbnails of numbered frames (at most `max_frames`, evenly spread)."""
    from PIL import Image

    keep = timeline.cap_frames(len(sampled.frames), max_frames)
    thumbs = np.stack([np.asarray(Image.fromarray(sampled.pixels[i]).resize((thumb, thumb), Image.BILINEAR))
                       for i in keep])
    return Strip(np.asarray([sampled.frames[i].time for i in keep]), [sampled.frames[i].number for i in keep], thumbs)


def printable(text: str, limit: int = 90) -> str:
    """One line that the plot font can draw (no glyph-missing boxes): control and non-Latin
    characters become '·', which also keeps an untrained model's byte soup readable."""
    cleaned = "".join(c if c.isprintable() and ord(c) < 0x250 else "·" for c in " ".join(str(text).split()))
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def _x_range(row: TimelineRow, strip: Strip | None) -> tuple[float, float]:
    ends = [row.gt[1], row.duration or 0.0]
    if row.pred is not None:
        ends.extend(row.pred)
    lo = min(0.0, row.gt[0], *(row.pred or ()))
    hi = max(ends)
    if strip is not None and len(strip.times):
        half = _thumb_width(strip, row.fps) / 2
        lo, hi = min(lo, strip.times[0] - half), max(hi, strip.times[-1] + half)
    pad = 0.01 * (hi - lo or 1.0)
    return lo - pad, hi + pad


def _thumb_width(strip: Strip, fps: float) -> float:
    if len(strip.times) > 1:
        return float(np.min(np.diff(strip.times)))
    return timeline.frame_to_seconds(1, fps)


def _frame_axis(ax, fps: float) -> None:
    """Frame numbers along the top: the numbers the model read, at this record's rate."""
    from matplotlib.ticker import MaxNLocator

    per_frame = timeline.frame_to_seconds(1, fps)  # seconds between consecutive numbers
    top = ax.secondary_xaxis("top", functions=(lambda s: s / per_frame, lambda f: f * per_frame))
    top.xaxis.set_major_locator(MaxNLocator(nbins=31, integer=True, steps=[1, 2, 5, 10]))
    top.set_xlabel(f"frame number (numbered at {format_seconds(fps)} FPS)", fontsize=9, color="#555555")
    top.tick_params(labelsize=8, colors="#555555")


def _draw_strip(ax, strip: Strip, row: TimelineRow) -> None:
    width = _thumb_width(strip, row.fps) * 0.94
    for time, thumb in zip(strip.times, strip.thumbs):
        ax.imshow(thumb, extent=(time - width / 2, time + width / 2, 0, 1), aspect="auto", interpolation="bilinear")
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    for edge, color in ((row.gt, GT_COLOR), (row.pred, PRED_COLOR)):
        for x in edge or ():
            ax.axvline(x, color=color, lw=2, ls="--")
    ax.tick_params(axis="x", labelbottom=False, bottom=False)


def _label(ax, x: float, y: float, text: str, color: str, **kwargs) -> None:
    ax.text(x, y, text, color=color, fontsize=9, va="center", parse_math=False, **kwargs)


def _bar_label(ax, span: tuple[float, float], y: float, text: str, color: str, x_range: tuple[float, float]) -> None:
    """Label beside a bar, on the side with more room, so it stays inside the plot."""
    lo, hi = x_range
    if max(span) - lo > 0.55 * (hi - lo):
        _label(ax, min(span), y, text + "  ", color, ha="right")
    else:
        _label(ax, max(span), y, "  " + text, color, ha="left")


def _draw_bars(ax, row: TimelineRow, x_range: tuple[float, float]) -> None:
    """Ground truth (top row) and prediction (bottom row) over a seconds axis."""
    lo, hi = x_range
    ax.set_xlim(lo, hi)
    ax.set_ylim(-0.6, 1.6)
    ax.set_yticks([0, 1], ["prediction", "ground truth"])
    ax.grid(axis="x", color="#dddddd", lw=0.6)
    ax.set_axisbelow(True)
    latest = max([row.gt[1], *(row.pred or ())])
    if row.duration is not None and row.duration < latest:  # a span running past the video's end
        ax.axvspan(row.duration, hi, color="#e6e6e6", zorder=0)
        _label(ax, row.duration, 1.45, " past the end of the video", "#777777", ha="left")
    gt0, gt1 = row.gt
    ax.barh(1, gt1 - gt0, left=gt0, height=0.5, color=GT_COLOR, alpha=0.85)
    gt_frames = f"frames {timeline.seconds_to_frame(gt0, row.fps)}-{timeline.seconds_to_frame(gt1, row.fps)}"
    _bar_label(ax, row.gt, 1, f"{format_seconds(gt0)}-{format_seconds(gt1)} s ({gt_frames})", GT_COLOR, x_range)
    answer = f'"{printable(row.response)}"' if row.response.strip() else "(empty answer)"
    if row.pred is None:
        _label(ax, max(lo, 0.0), 0, f"  no span in the answer (scores IoU 0): {answer}", FAIL_COLOR, ha="left",
               style="italic")
        return
    p0, p1 = row.pred
    left, right = min(p0, p1), max(p0, p1)
    if row.reversed:
        ax.barh(0, right - left, left=left, height=0.5, facecolor="none", edgecolor=FAIL_COLOR, hatch="//")
        note = "reversed span (end before start), scores IoU 0"
    else:
        ax.barh(0, right - left, left=left, height=0.5, color=PRED_COLOR, alpha=0.85)
        ax.plot([left, right], [0, 0], "|", color=PRED_COLOR, ms=14, mew=2)  # visible even when zero-length
        note = f"{format_seconds(p0)}-{format_seconds(p1)} s"
        inter = (max(left, gt0), min(right, gt1))
        if inter[1] > inter[0]:
            ax.axvspan(*inter, ymin=0.05, ymax=0.95, color="#ffe08a", alpha=0.35, zorder=0)
    _bar_label(ax, (left, right), 0, f"{note}, answer {answer}", FAIL_COLOR if row.reversed else PRED_COLOR, x_range)


def _title(row: TimelineRow) -> str:
    query = f'"{printable(row.query, 110)}"' if row.query else "(no query text in the file)"
    return f"{row.id}: {query}"


def draw_timelines(rows: Sequence[TimelineRow], output: str | Path, strips: dict[str, Strip] | None = None,
                   title: str | None = None, width: float = 15.0) -> Path:
    """One panel per query: optional numbered frames, then ground truth vs prediction in seconds."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not rows:
        raise ValueError("no queries to draw")
    strips = strips or {}
    heights, panels = [], []  # panels: (kind, row, whether it is the query's first axes)
    for row in rows:
        if str(row.id) in strips:
            heights.append(0.9)
            panels.append(("strip", row, True))
        heights.append(1.6)
        panels.append(("bars", row, str(row.id) not in strips))
    fig = Figure(figsize=(width, sum(heights) + 0.9 * len(rows) + (0.5 if title else 0)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, gridspec_kw={"height_ratios": heights}, squeeze=False)[:, 0]
    if title:
        fig.suptitle(title, fontsize=13, parse_math=False)
    for ax, (kind, row, first) in zip(axes, panels):
        strip = strips.get(str(row.id))
        x_range = _x_range(row, strip)
        if kind == "strip":
            _draw_strip(ax, strip, row)
            ax.set_xlim(*x_range)
        else:
            _draw_bars(ax, row, x_range)
            ax.set_xlabel("seconds", fontsize=9)
        if first:  # the query's top axes carries its title and the frame numbers
            _frame_axis(ax, row.fps)
            ax.set_title(_title(row), loc="left", fontsize=11, fontweight="bold", parse_math=False)
            ax.set_title(f"IoU {row.iou:.2f}", loc="right", fontsize=11, fontweight="bold",
                         color=GT_COLOR if row.iou >= 0.5 else FAIL_COLOR)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(output, dpi=110)
    except ValueError as err:  # matplotlib: unknown format
        raise ValueError(f"cannot write {output}: {err}") from err
    return output


def timeline_title(path: str | Path, rows: list[TimelineRow], shown: list[TimelineRow], how: str) -> str:
    mean = summarize_ious([r.iou for r in rows])["mIoU"]
    unparsed = sum(r.pred is None for r in rows)
    return (f"{Path(path).name}: {how} ({len(shown)} of {len(rows)} queries; all: mIoU {mean:.2f}, "
            f"{unparsed} unparsed). Green: ground truth, orange: predicted span.")


# ------------------------------------------------------------------------------ command line
def register(subparsers, name: str, help_text: str) -> None:
    parser = subparsers.add_parser(name, help=help_text, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    pictures = parser.add_subparsers(dest="picture", metavar="PICTURE", required=True)
    _add_manga(pictures)
    _add_timeline(pictures)


def _add_manga(pictures) -> None:
    manga = pictures.add_parser("manga", help="numbered frames of a video in a grid (what the model sees)",
                                description="A manga page: the numbered frames of VIDEO in a grid, exactly as "
                                            "the model sees them.")
    manga.add_argument("video", metavar="VIDEO", help="any video file")
    manga.add_argument("--output", required=True, metavar="PNG", help="picture to write")
    manga.add_argument("--fps", type=float, default=1.0,
                       help="frames sampled per second (1: training-free MR; 0.5: NumPro-FT and highlights; "
                            "default %(default)s)")
    manga.add_argument("--max_frames", "--max-frames", type=int, default=MANGA_MAX_FRAMES,
                       help="draw at most N frames, evenly spread, each with its own number (0: all; "
                            "default %(default)s)")
    manga.add_argument("--cols", type=int, default=MANGA_COLS, help="panels per row (default %(default)s)")
    manga.add_argument("--font_size", "--font-size", type=int, default=40, help="default %(default)s")
    manga.add_argument("--color", default="red", help="default %(default)s")
    manga.add_argument("--position", default="bottom_right", choices=POSITIONS, help="default %(default)s")
    manga.set_defaults(func=_manga_command)


def _add_timeline(pictures) -> None:
    line = pictures.add_parser("timeline", help="ground truth vs predicted span for queries of a predictions file",
                               description="Ground truth vs predicted span, in seconds with frame numbers on top, "
                                           "for queries of a moment-retrieval predictions file.")
    line.add_argument("pred", metavar="PRED", help="moment-retrieval predictions: our JSONL or upstream's JSON list")
    line.add_argument("--output", required=True, metavar="PNG", help="picture to write")
    which = line.add_mutually_exclusive_group()
    which.add_argument("--ids", nargs="+", metavar="ID", help="these queries, in this order")
    which.add_argument("--worst", type=int, metavar="N", help="the N queries with the lowest IoU")
    which.add_argument("--best", type=int, metavar="N", help="the N queries with the highest IoU")
    which.add_argument("--first", type=int, metavar="N", help=f"the first N queries (default {TIMELINE_FIRST})")
    line.add_argument("--fps", type=float, default=UPSTREAM_FPS,
                      help="frame rate of the numbering for records without their own 'fps' (upstream's files; "
                           "default %(default)s)")
    line.add_argument("--videos", metavar="DIR", default=None,
                      help="folder of the videos: draw each query's numbered frames above its timeline")
    line.set_defaults(func=_timeline_command)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _manga_command(args) -> int:
    for bad, message in ((args.fps <= 0, "--fps must be positive"), (args.cols < 1, "--cols must be at least 1"),
                         (args.max_frames < 0, "--max_frames must be 0 (all) or more")):
        if bad:
            return _fail(message)
    try:
        style = StampStyle(args.font_size, args.color, args.position)
        page = draw_manga(args.video, args.output, args.fps, args.max_frames or None, args.cols, style)
    except (VideoError, ValueError) as err:
        return _fail(str(err))
    print(f"wrote {args.output}: {len(page.numbers)} numbered frames (numbers {page.numbers[0]}..{page.numbers[-1]} "
          f"at {format_seconds(args.fps)} FPS)")
    return 0


def _strips_for(rows: list[TimelineRow], videos: Path) -> dict[str, Strip]:
    from .evaluation.runner import find_video

    strips = {}
    for row in rows:
        path = find_video(videos, row.video) if row.video else None
        if path is None:
            print(f"note: no video for query {row.id} in {videos}; drawn without frames", file=sys.stderr)
            continue
        try:
            strips[str(row.id)] = strip_from(numbered_frames(path, row.fps, STRIP_MAX_FRAMES))
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
    if args.fps <= 0:
        return _fail("--fps must be positive")
    if args.videos and not Path(args.videos).is_dir():
        return _fail(f"video folder not found: {args.videos}")
    try:
        records = read_records(args.pred)
        if not records:
            raise JsonInputError(f"{args.pred}: no records")
        rows = timeline_rows(records, args.fps, source=str(args.pred))
        shown = select_rows(rows, args.ids, args.worst, args.best, args.first)
        how = _selection_label(args)
        strips = _strips_for(shown, Path(args.videos)) if args.videos else None
        draw_timelines(shown, args.output, strips, timeline_title(args.pred, rows, shown, how))
    except (JsonInputError, ValueError) as err:
        return _fail(str(err))
    print(f"wrote {args.output}: {len(shown)} of {len(rows)} queries ({how})")
    return 0
