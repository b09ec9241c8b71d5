"""Timelines: ground-truth vs predicted span per query, in seconds with the frame numbers on
top, and optionally the numbered frames above them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import timeline
from ..video import SampledVideo
from .rows import TimelineRow
from .style import FAIL_COLOR, GT_COLOR, PRED_COLOR, format_seconds, printable

STRIP_MAX_FRAMES = 40  # thumbnails above a timeline; more would be too small to see


@dataclass
class Strip:
    """Numbered frames shown above a timeline, each centred on its time."""

    times: np.ndarray  # seconds
    numbers: list[int]
    thumbs: np.ndarray  # (n, h, w, 3) uint8


def strip_from(sampled: SampledVideo, max_frames: int = STRIP_MAX_FRAMES, thumb: int = 112) -> Strip:
    """Thumbnails of numbered frames (at most `max_frames`, evenly spread)."""
    from PIL import Image

    keep = timeline.cap_frames(len(sampled.frames), max_frames)
    thumbs = np.stack([np.asarray(Image.fromarray(sampled.pixels[i]).resize((thumb, thumb), Image.BILINEAR))
                       for i in keep])
    return Strip(np.asarray([sampled.frames[i].time for i in keep]), [sampled.frames[i].number for i in keep], thumbs)


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
