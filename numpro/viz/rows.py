"""The queries of a moment-retrieval predictions file, scored by the metric code, and which of
them to draw."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..metrics.mr import score_mr_records, summarize_ious
from ..protocol import NUMPRO_FT_FPS

TIMELINE_FIRST = 8  # queries drawn when none are selected


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


def timeline_rows(records: list[dict], default_fps: float = NUMPRO_FT_FPS, source: str = "records") -> list[TimelineRow]:
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


def timeline_title(path: str | Path, rows: list[TimelineRow], shown: list[TimelineRow], how: str) -> str:
    mean = summarize_ious([r.iou for r in rows])["mIoU"]
    unparsed = sum(r.pred is None for r in rows)
    return (f"{Path(path).name}: {how} ({len(shown)} of {len(rows)} queries; all: mIoU {mean:.2f}, "
            f"{unparsed} unparsed). Green: ground truth, orange: predicted span.")
