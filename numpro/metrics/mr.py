"""Moment-retrieval metrics as upstream's eval/metrics_mr.py (TimeChat style), SPEC 7.

Per query: the first parsed span of the answer, in frame numbers, becomes seconds through
numpro.timeline at the record's own frame rate; IoU with the ground truth; an answer that does
not parse scores IoU 0 and stays in the denominator. R@m is the percentage of queries with
IoU >= m, mIoU is 100 * mean IoU, both rounded to 2 decimals.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from numpro.jsonio import JsonInputError, read_records
from numpro.parsing import SpanAnswer, parse_span
from numpro.protocol import NUMPRO_FT_FPS
from numpro.timeline import answer_to_seconds

RECALL_THRESHOLDS = (0.3, 0.5, 0.7)
UPSTREAM_FPS = NUMPRO_FT_FPS  # upstream's result files number frames at 0.5 FPS (SPEC 7)


def temporal_iou(pred: Sequence[float], gt: Sequence[float]) -> float:
    """IoU of two spans (start, end), exactly as SPEC 7 (upstream's cal_iou).

    The "union" is the hull max(ends) - min(starts), equal to the true union whenever the spans
    overlap; a reversed span therefore never overlaps and scores 0; a zero union scores 0.
    """
    (a0, a1), (b0, b1) = pred, gt
    intersection = max(min(a1, b1) - max(a0, b0), 0.0)
    union = max(a1, b1) - min(a0, b0)
    return intersection / union if union > 0 else 0.0


def _fmt(value: float) -> float:
    return float(f"{value:.2f}")


def summarize_ious(ious: Sequence[float], thresholds: Sequence[float] = RECALL_THRESHOLDS) -> dict:
    """R@m for each threshold and mIoU, in percent with 2 decimals, plus n."""
    n = len(ious)
    metrics = {}
    for m in thresholds:
        metrics[f"R@{m}"] = _fmt(100.0 * sum(iou >= m for iou in ious) / n) if n else 0.0
    metrics["mIoU"] = _fmt(100.0 * sum(ious) / n) if n else 0.0
    metrics["n"] = n
    return metrics


@dataclass
class MRQuery:
    """One scored query: the parse, the predicted span in seconds, the ground truth, the IoU.

    `answer`/`iou` follow upstream's regex (the paper's numbers); `tolerant`/`tolerant_iou` add
    the fallback rules of numpro.parsing.
    """

    id: object
    answer: SpanAnswer
    fps: float
    gt: tuple[float, float]
    pred_seconds: tuple[float, float] | None
    iou: float
    status: str | None = None
    tolerant: SpanAnswer | None = None
    tolerant_iou: float = 0.0

    @property
    def answered(self) -> bool:
        """The model gave an answer (upstream's files carry no status: every record is an answer)."""
        return self.status in (None, "ok")


@dataclass
class MRReport:
    metrics: dict
    queries: list[MRQuery] = field(default_factory=list)

    @property
    def unparsed(self) -> list[MRQuery]:
        """Answers upstream's regex does not parse (queries without an answer are not among them)."""
        return [q for q in self.queries if q.answered and not q.answer.ok]


def _number(record: dict, key: str, where: str) -> float:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise JsonInputError(f"{where}: field '{key}' must be a number, got {value!r}")
    return float(value)


def newest_per_id(records: Sequence[dict]) -> tuple[list[dict], int]:
    """One record per id, the newest (last written) winning, in order of first appearance; and the
    number of older records dropped. Records without an id are all kept."""
    latest: dict[str, int] = {}
    for index, record in enumerate(records):
        if "id" in record:
            latest[str(record["id"])] = index
    kept, seen = [], set()
    for index, record in enumerate(records):
        if "id" not in record:
            kept.append(record)
            continue
        key = str(record["id"])
        if key not in seen:
            seen.add(key)
            kept.append(records[latest[key]])
    return kept, len(records) - len(kept)


def _score_one(record: dict, where: str, default_fps: float, swap_reversed: bool) -> MRQuery:
    gt = (_number(record, "gt_start", where), _number(record, "gt_end", where))
    fps = _number(record, "fps", where) if record.get("fps") is not None else float(default_fps)
    if fps <= 0:
        raise JsonInputError(f"{where}: fps must be positive, got {fps}")

    units = "seconds" if record.get("answer_units") == "seconds" else "frames"

    def scored(strict: bool) -> tuple[SpanAnswer, tuple[float, float] | None, float]:
        answer = parse_span(record.get("response"), swap_reversed=swap_reversed, strict=strict, units=units)
        pred = answer_to_seconds(answer.start, answer.end, fps, units) if answer.ok else None
        return answer, pred, temporal_iou(pred, gt) if pred is not None else 0.0

    answer, pred, iou = scored(strict=True)
    tolerant, _, tolerant_iou = scored(strict=False)
    return MRQuery(record.get("id"), answer, fps, gt, pred, iou, record.get("status"), tolerant, tolerant_iou)


def score_mr_records(
    records: Iterable[dict],
    *,
    default_fps: float = UPSTREAM_FPS,
    swap_reversed: bool = False,
    source: str = "records",
) -> MRReport:
    """Score moment-retrieval records (ours or upstream's) against their own ground truth.

    Each record needs `response`, `gt_start`, `gt_end` (seconds). A record's own `fps` field
    says how its frames are numbered; records without one (upstream's files) use `default_fps`.
    The top-level R@m/mIoU parse with upstream's regex, comparable to the paper (answers of
    --stamp_text seconds runs, `answer_units: "seconds"`, with the seconds rule); `tolerant`
    holds the same with the fallback rules. A repeated id counts once: its newest record.
    """
    records, n_duplicates = newest_per_id(list(records))
    queries = []
    for index, record in enumerate(records, start=1):
        where = f"{source}: record {index}" + (f" (id {record['id']!r})" if "id" in record else "")
        queries.append(_score_one(record, where, default_fps, swap_reversed))

    answered = [q for q in queries if q.answered]
    metrics = summarize_ious([q.iou for q in queries])
    metrics["n_answered"] = len(answered)
    metrics["n_parsed"] = sum(q.answer.ok for q in answered)
    metrics["n_unparsed"] = len(answered) - metrics["n_parsed"]
    metrics["n_empty_answers"] = sum(not q.answer.raw.strip() for q in answered)
    metrics["n_reversed"] = sum(q.answer.reversed for q in answered)
    tolerant = summarize_ious([q.tolerant_iou for q in queries])
    del tolerant["n"]
    tolerant["n_parsed"] = sum(q.tolerant.ok for q in answered)
    tolerant["n_fallback"] = sum(q.tolerant.ok and not q.answer.ok for q in answered)
    metrics["tolerant"] = tolerant
    metrics["n_duplicate_ids"] = n_duplicates
    statuses = Counter(q.status for q in queries if q.status is not None)
    if statuses:
        metrics["status"] = dict(sorted(statuses.items()))
    seconds = any(q.answer.rule == "seconds" or (q.tolerant and q.tolerant.rule == "seconds") for q in queries) or \
        any(r.get("answer_units") == "seconds" for r in records)
    metrics["parser"] = ("seconds rule (--stamp_text seconds answers)" if seconds else "upstream regex (SPEC 4)") + \
        "; tolerant: + fallback rules"
    metrics["swap_reversed"] = swap_reversed
    return MRReport(metrics, queries)


def evaluate_mr_file(
    path: str | os.PathLike,
    *,
    default_fps: float = UPSTREAM_FPS,
    swap_reversed: bool = False,
) -> MRReport:
    """Score a prediction file: our JSON Lines records or upstream's JSON list."""
    records = read_records(path)
    if not records:
        raise JsonInputError(f"{path}: no records")
    return score_mr_records(records, default_fps=default_fps, swap_reversed=swap_reversed, source=str(path))
