"""QVHighlights metrics (the official standalone_eval definitions, SPEC 7), pure numpy.

Highlight detection: per query a (n_clips x 3) matrix of annotator scores 0..4; for each
threshold (Fair >= 2, Good >= 3, VeryGood >= 4) the binary labels are compared with one
predicted saliency score per clip: HIT@1 and mAP with the official AP (not sklearn's).
Moment retrieval, when `pred_relevant_windows` are given: mAP over tIoU 0.50:0.05:0.95 with
greedy matching of the first 10 windows, R1@0.5/0.7, and short/middle/long length buckets.

NumPro answers list frame numbers and scores; `saliency_from_frames` turns them into per-clip
scores through numpro.timeline. The ground truth goes through numpro.datasets.qvhighlights, the
one reader every tool validates it with.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from numpro.datasets import qvhighlights
from numpro.jsonio import JsonInputError, read_records
from numpro.parsing import parse_highlight
from numpro.protocol import CLIP_SECONDS, NUMPRO_FT_FPS
from numpro.timeline import frame_to_clip, num_clips

HL_THRESHOLDS = {"Fair": 2, "Good": 3, "VeryGood": 4}
MR_IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # 0.50 .. 0.95
MR_R1_THRESHOLDS = (0.5, 0.7)
MR_MAX_PRED_WINDOWS = 10
# (low, high]: a ground-truth window of length l is in the bucket when low < l <= high.
# "full" keeps every window, whatever its length, as the official scorer does.
MR_LENGTH_BUCKETS = {"short": (0, 10), "middle": (10, 30), "long": (30, 150)}


def _fmt(value: float) -> float:
    return float(f"{value:.2f}")


# Ground truth and predictions per clip ------------------------------------------------------


def gt_saliency_matrix(
    gt: Mapping, clip_seconds: float = CLIP_SECONDS, annotators: int = qvhighlights.NUM_ANNOTATORS
) -> np.ndarray:
    """(n_clips x annotators) scores: saliency_scores at relevant_clip_ids, 0 elsewhere."""
    n = num_clips(float(gt["duration"]), clip_seconds)
    ids = list(gt.get("relevant_clip_ids") or [])
    rows = list(gt.get("saliency_scores") or [])
    if len(rows) != len(ids):
        raise ValueError(f"{len(ids)} relevant_clip_ids but {len(rows)} saliency_scores rows")
    matrix = np.zeros((n, len(rows[0]) if rows else annotators))
    for clip, row in zip(ids, rows):
        if not 0 <= clip < n:
            raise ValueError(f"relevant clip {clip} outside the video's {n} clips")
        matrix[clip] = row
    return matrix


def saliency_from_frames(
    frames: Sequence[int], scores: Sequence[float], n_clips: int, fps: float
) -> np.ndarray:
    """One score per clip from (frame number, score) pairs.

    Frame numbers map to clips through numpro.timeline (at 0.5 FPS frame k is clip k); a clip
    named more than once gets the mean of its scores; unnamed clips 0.0; clips past the end of
    the video are dropped.
    """
    sums = np.zeros(n_clips)
    counts = np.zeros(n_clips)
    for frame, score in zip(frames, scores):
        clip = frame_to_clip(int(frame), fps)
        if 0 <= clip < n_clips:
            sums[clip] += float(score)
            counts[clip] += 1
    return np.divide(sums, counts, out=np.zeros(n_clips), where=counts > 0)


def fit_length(scores: Sequence[float], n: int) -> np.ndarray:
    """Truncate or zero-pad a score list to n entries (as the official AP does)."""
    scores = np.asarray(scores, dtype=np.float64).ravel()[:n]
    return np.concatenate([scores, np.zeros(n - scores.size)])


# Highlight detection --------------------------------------------------------------------------


def average_precision(labels: Sequence[float], scores: Sequence[float]) -> float:
    """The official highlight AP (video2gif / vl_feat style), not sklearn's.

    A column with no positive scores 0 and one of all positives 1. Otherwise, over distinct
    score thresholds (positive when score >= threshold) take the precision/recall points; AP is
    the mean, over each distinct recall level > 0 reached, of the best precision at that recall
    or higher.
    """
    labels = np.asarray(labels, dtype=np.float64).ravel() > 0
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.size != scores.size:
        raise ValueError(f"{labels.size} labels but {scores.size} scores")
    if not labels.any():
        return 0.0
    if labels.all():
        return 1.0
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    # One point per distinct threshold: the last position of each run of equal scores.
    ends = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_scores.size - 1]
    tp = np.cumsum(sorted_labels)[ends]
    precision = tp / (ends + 1.0)
    recall = tp / tp[-1]
    best = np.maximum.accumulate(precision[::-1])[::-1]  # best precision at recall >= this point's
    new_level = np.diff(np.r_[0.0, recall]) > 0
    return float(best[new_level].mean())


def hit_at_one(scores: Sequence[float], labels: np.ndarray) -> float:
    """1.0 when the top-scored clip (first on ties) is positive for any annotator.

    The argmax is over the prediction as given: a top clip past the video's clips is a miss.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.size == 0:
        return 0.0
    top = int(np.argmax(scores))
    return float(top < labels.shape[0] and labels[top].any())


def highlight_metrics(preds: Mapping[object, Sequence[float]], gts: Mapping[object, np.ndarray]) -> dict:
    """Official HL-min-{Fair,Good,VeryGood}-{mAP,Hit1} over the queries in `preds`.

    `gts` maps each query to its (n_clips x annotators) score matrix; every query of `preds`
    must be there. AP columns are scored on the prediction truncated/zero-padded to n_clips.
    """
    metrics = {}
    for name, threshold in HL_THRESHOLDS.items():
        aps, hits = [], []
        for qid, pred in preds.items():
            labels = gts[qid] >= threshold
            fitted = fit_length(pred, labels.shape[0])
            aps.extend(average_precision(labels[:, k], fitted) for k in range(labels.shape[1]))
            hits.append(hit_at_one(pred, labels))
        metrics[f"HL-min-{name}-mAP"] = _fmt(100.0 * np.mean(aps)) if aps else 0.0
        metrics[f"HL-min-{name}-Hit1"] = _fmt(100.0 * np.mean(hits)) if hits else 0.0
    return metrics


# Moment retrieval -------------------------------------------------------------------------------


def _cross_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(P x G) IoU of windows (start, end); a zero union scores 0."""
    inter = np.clip(np.minimum(pred[:, None, 1], gt[None, :, 1]) - np.maximum(pred[:, None, 0], gt[None, :, 0]), 0, None)
    union = (pred[:, 1] - pred[:, 0])[:, None] + (gt[:, 1] - gt[:, 0])[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """Area under the precision envelope (VOC 2011 style), as the official detection AP."""
    mprec = np.r_[0.0, precision, 0.0]
    mrec = np.r_[0.0, recall, 1.0]
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mprec[steps]))


def detection_ap(
    gt_windows: Sequence[Sequence[float]],
    pred_windows: Sequence[Sequence[float]],
    thresholds: Sequence[float] = MR_IOU_THRESHOLDS,
) -> np.ndarray:
    """AP of one query's scored windows [start, end, score] at each tIoU threshold.

    Predictions go by descending score (stable); each takes the unmatched ground-truth window
    of highest IoU (ties: the later window, as the official argsort()[::-1]) if that IoU
    reaches the threshold, else it is a false positive. No predictions (or no ground truth)
    scores 0.
    """
    ap = np.zeros(len(thresholds))
    if len(pred_windows) == 0 or len(gt_windows) == 0:
        return ap
    pred = np.asarray(pred_windows, dtype=np.float64)
    pred = pred[np.argsort(-pred[:, 2], kind="stable")]
    gt = np.asarray(gt_windows, dtype=np.float64)[:, :2]
    ious = _cross_iou(pred[:, :2], gt)
    for t, threshold in enumerate(thresholds):
        taken = np.zeros(len(gt), dtype=bool)
        tp = np.zeros(len(pred))
        for i, row in enumerate(ious):
            for j in np.argsort(row, kind="stable")[::-1]:
                if row[j] < threshold:
                    break
                if not taken[j]:
                    taken[j] = True
                    tp[i] = 1.0
                    break
        tp_cum = np.cumsum(tp)
        precision = tp_cum / np.arange(1, len(pred) + 1)
        ap[t] = _interpolated_ap(precision, tp_cum / len(gt))
    return ap


def r1_iou(gt_windows: Sequence[Sequence[float]], top_window: Sequence[float]) -> float:
    """IoU of the top window with the ground-truth window it overlaps most (first on ties)."""
    if len(gt_windows) == 0:
        return 0.0
    ious = _cross_iou(np.asarray([top_window[:2]], dtype=np.float64), np.asarray(gt_windows, dtype=np.float64)[:, :2])[0]
    return float(ious.max())


def _windows_in_bucket(windows: Sequence[Sequence[float]], bucket: tuple[float, float] | None) -> list:
    if bucket is None:
        return list(windows)
    low, high = bucket
    return [w for w in windows if low < w[1] - w[0] <= high]


def moment_metrics(
    preds: Mapping[object, Sequence[Sequence[float]]], gts: Mapping[object, Sequence[Sequence[float]]]
) -> dict:
    """Official MR metrics for the queries in `gts` (ground-truth windows per query).

    A query with no predicted windows (missing, or an empty list) scores AP 0 and misses R1;
    the official scorer cannot take such a query at all.
    """
    metrics = {}
    buckets = {"full": None, **MR_LENGTH_BUCKETS}
    for name, bucket in buckets.items():
        aps, r1 = [], []
        for qid, windows in gts.items():
            gt = _windows_in_bucket(windows, bucket)
            if not gt:
                continue
            pred = list(preds.get(qid) or [])[:MR_MAX_PRED_WINDOWS]
            aps.append(detection_ap(gt, pred))
            r1.append(r1_iou(gt, pred[0]) if pred else 0.0)
        if aps:
            per_threshold = np.mean(aps, axis=0)
            metrics[f"MR-{name}-mAP"] = _fmt(100.0 * per_threshold.mean())
        else:
            per_threshold = np.zeros(len(MR_IOU_THRESHOLDS))
            metrics[f"MR-{name}-mAP"] = 0.0
        if name == "full":
            for threshold, value in zip(MR_IOU_THRESHOLDS, per_threshold):
                if threshold in (0.5, 0.75):
                    metrics[f"MR-full-mAP@{threshold}"] = _fmt(100.0 * value)
            r1 = np.asarray(r1)
            for threshold in MR_R1_THRESHOLDS:
                metrics[f"MR-full-R1@{threshold}"] = _fmt(100.0 * np.mean(r1 >= threshold)) if r1.size else 0.0
        metrics[f"MR-{name}-n"] = len(aps)
    return metrics


# Records -> metrics ------------------------------------------------------------------------------


@dataclass
class HDReport:
    metrics: dict
    unparsed: list[tuple[object, str]] = field(default_factory=list)  # (qid, raw answer)
    missing: list[object] = field(default_factory=list)  # ground-truth qids with no prediction


def _record_saliency(record: dict, n: int, fps: float, where: str) -> tuple[np.ndarray | list, bool | None]:
    """A prediction record's per-clip scores, and whether its answer parsed (None: no answer).

    Priority: pred_saliency_scores as given; else pred_frames + pred_scores; else the answer
    (`response`, or upstream's `pred`) parsed here. The parse flag always comes from the answer
    when the record has one, so "failed to parse" counts answers whichever field the scores came
    from; an empty or null answer (a failed run) is a failed parse and scores all-zero.
    """
    answer_key = next((key for key in ("response", "pred") if key in record), None)
    parsed = parse_highlight(record[answer_key]) if answer_key else None
    ok = parsed.ok if parsed is not None else None
    given = record.get("pred_saliency_scores")
    if given is not None:
        return _numbers(given, "pred_saliency_scores", where), ok
    frames, scores = record.get("pred_frames"), record.get("pred_scores")
    if frames is not None and scores is not None:
        frames = _numbers(frames, "pred_frames", where)
        return saliency_from_frames(frames, _numbers(scores, "pred_scores", where), n, fps), ok
    if parsed is not None:
        return saliency_from_frames(parsed.frames, parsed.scores, n, fps), ok
    raise JsonInputError(f"{where}: no pred_saliency_scores, pred_frames/pred_scores or response")


def _numbers(values: object, key: str, where: str) -> np.ndarray:
    """A list of finite numbers as a float array, or an error naming the record and field."""
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__len__"):
        raise JsonInputError(f"{where}: {key} must be a list of numbers")
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise JsonInputError(f"{where}: {key} must be a list of numbers") from None
    if array.ndim != 1 or not np.isfinite(array).all():
        raise JsonInputError(f"{where}: {key} must be a list of finite numbers")
    return array


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _record_fps(record: dict, default_fps: float, where: str) -> float:
    """The frame rate of a record's frame numbers: its own 'fps' field, else `default_fps`. A bad
    value is an error, as in the MR metrics, never a silent fall back to the default."""
    if record.get("fps") is None:
        return float(default_fps)
    fps = record["fps"]
    if not _is_number(fps):
        raise JsonInputError(f"{where}: field 'fps' must be a number, got {fps!r}")
    if fps <= 0:
        raise JsonInputError(f"{where}: fps must be positive, got {fps}")
    return float(fps)


def _ground_truth(located: Iterable[tuple[str, dict]]) -> tuple[dict[object, np.ndarray], dict[object, list]]:
    """Per-query score matrices and windows of (position, QVHighlights record) pairs, validated by
    the one ground-truth reader (datasets.qvhighlights: fields, scores 0..4, unique qids)."""
    located = list(located)
    qvhighlights.validate_all(located)
    matrices: dict[object, np.ndarray] = {}
    windows: dict[object, list] = {}
    for where, gt in located:
        try:
            matrices[gt["qid"]] = gt_saliency_matrix(gt)
        except ValueError as err:  # a relevant clip the video does not have: nothing to score it against
            raise JsonInputError(f"{where}: {err}") from None
        windows[gt["qid"]] = list(gt.get("relevant_windows") or [])
    return matrices, windows


def _newest_predictions(pred_records: Iterable[dict], pred_source: str) -> tuple[dict[object, tuple[int, dict]], int]:
    """qid -> (record number, record), the last record of a qid winning as in the official
    scorer; and how many records a later one replaced."""
    preds: dict[object, tuple[int, dict]] = {}
    replaced = 0
    for index, record in enumerate(pred_records, start=1):
        if "qid" not in record:
            raise JsonInputError(f"{pred_source}: record {index}: missing 'qid'")
        replaced += record["qid"] in preds
        preds[record["qid"]] = (index, record)
    return preds, replaced


@dataclass
class _AnswerCounts:
    """What the answers of the scored records looked like."""

    answers: int = 0  # records that carry an answer of a run that reached the model
    parsed: int = 0
    empty: int = 0
    unparsed: list[tuple[object, str]] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)

    def add(self, qid: object, record: dict, ok: bool | None) -> None:
        answered = record.get("status") in (None, "ok")  # a missing video or failed run is no answer
        if ok is not None and answered:
            raw = str(record.get("response", record.get("pred")))
            self.answers += 1
            self.parsed += ok
            self.empty += not raw.strip()
            if not ok:
                self.unparsed.append((qid, raw))
        if record.get("status") is not None:
            self.statuses[str(record["status"])] += 1


def _score(
    pred_records: Iterable[dict],
    located_gts: Iterable[tuple[str, dict]],
    default_fps: float,
    pred_source: str,
) -> HDReport:
    gts, gt_windows = _ground_truth(located_gts)
    preds, duplicates = _newest_predictions(pred_records, pred_source)
    saliency: dict[object, object] = {}
    windows: dict[object, list] = {}
    missing = []
    counts = _AnswerCounts()
    has_windows = any("pred_relevant_windows" in record for _, record in preds.values())
    for qid, matrix in gts.items():
        if qid not in preds:
            missing.append(qid)
            saliency[qid] = np.zeros(matrix.shape[0])
            continue
        index, record = preds[qid]
        where = f"{pred_source}: record {index} (qid {qid!r})"
        saliency[qid], ok = _record_saliency(record, matrix.shape[0], _record_fps(record, default_fps, where), where)
        counts.add(qid, record, ok)
        if has_windows:
            windows[qid] = _checked_windows(record.get("pred_relevant_windows") or [], where)

    metrics = highlight_metrics(saliency, gts)
    if has_windows:
        metrics.update(moment_metrics(windows, gt_windows))
    metrics.update(
        n=len(gts),
        n_scored=len(gts) - len(missing),
        n_missing=len(missing),
        n_extra=sum(qid not in gts for qid in preds),
        n_duplicate_qids=duplicates,
        n_answers=counts.answers,
        n_parsed=counts.parsed,
        n_unparsed=counts.answers - counts.parsed,
        n_empty_answers=counts.empty,
    )
    if counts.statuses:
        metrics["status"] = dict(sorted(counts.statuses.items()))
    return HDReport(metrics, counts.unparsed, missing)


def evaluate_hd_records(
    pred_records: Iterable[dict],
    gt_records: Iterable[dict],
    *,
    default_fps: float = NUMPRO_FT_FPS,
    pred_source: str = "predictions",
    gt_source: str = "ground truth",
) -> HDReport:
    """Score highlight (and, when windows are given, moment) predictions against QVHighlights.

    The ground truth is validated by the one QVHighlights reader (a malformed record, a score
    outside 0..4 or a repeated qid is a JsonInputError). Every ground-truth query is scored: one
    missing from the predictions, or whose answer did not parse, gets all-zero saliency (and no
    windows) and is counted. Predictions for queries not in the ground truth are ignored and
    counted. For duplicated prediction qids the last record wins, as in the official scorer.
    """
    located = [(f"{gt_source}: record {index}", gt) for index, gt in enumerate(gt_records, start=1)]
    return _score(pred_records, located, default_fps, pred_source)


def _checked_windows(windows: object, where: str) -> list:
    if not isinstance(windows, list) or not all(
        isinstance(w, list) and len(w) >= 3 and all(_is_number(x) for x in w[:3]) for w in windows
    ):
        raise JsonInputError(f"{where}: pred_relevant_windows must be a list of [start, end, score]")
    return windows


def evaluate_hd_file(
    pred_path: str | os.PathLike, gt_path: str | os.PathLike, *, default_fps: float = NUMPRO_FT_FPS
) -> HDReport:
    """Score a prediction file (our HD records, upstream's HD results or an official
    QVHighlights submission; JSON Lines or a JSON list) against a QVHighlights JSONL file."""
    preds = read_records(pred_path)
    if not preds:
        raise JsonInputError(f"{pred_path}: no prediction records")
    gts = qvhighlights.located(gt_path)
    if not gts:
        raise JsonInputError(f"{gt_path}: no ground-truth records")
    return _score(preds, gts, default_fps, str(pred_path))
