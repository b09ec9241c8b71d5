"""QVHighlights: read and validate the official JSON Lines annotation (`highlight_val_release.jsonl`).

The one reader of the ground truth: the evaluation runner, eval/metrics_hd.py and `numpro data
qvhighlights` all validate through it, so a file one rejects every one rejects. The records are
used as they are; this module only checks them. Each line
holds `qid, query, duration, vid` and, except in the test split, `relevant_clip_ids`,
`saliency_scores` (three annotators' 0..4 scores per relevant clip) and `relevant_windows`.
Videos are `<vid>.mp4`; clip k covers seconds [2k, 2k + 2).

Structural faults (a missing field, scores not one triple per clip, a score outside 0..4) stop
with an error naming the line; odd values (a window past the duration, a clip id past
int(duration / 2), clip ids that do not match the windows) are counted and kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from .. import jsonio, protocol, timeline
from .records import NUMBER, Conversion, DataError, Tally, check_type, need, text, where

LABELLED = ("relevant_clip_ids", "saliency_scores", "relevant_windows")
NUM_ANNOTATORS = 3
MAX_SCORE = 4


def video_name(record: dict, extension: str = ".mp4") -> str:
    return record["vid"] + extension


def _windows(record: dict, at: str) -> list[tuple[float, float]]:
    windows = need(record, "relevant_windows", list, at)
    spans = []
    for window in windows:
        if not isinstance(window, list) or len(window) != 2:
            raise DataError(f"{at}: field 'relevant_windows' must hold [start, end] pairs, got {window!r}")
        spans.append(tuple(float(check_type(v, "relevant_windows", NUMBER, at)) for v in window))
    return spans


def _scores(record: dict, clip_ids: list[int], at: str) -> None:
    scores = need(record, "saliency_scores", list, at)
    if len(scores) != len(clip_ids):
        raise DataError(f"{at}: field 'saliency_scores' has {len(scores)} entries for {len(clip_ids)} relevant_clip_ids")
    for triple in scores:
        if not isinstance(triple, list) or len(triple) != NUM_ANNOTATORS:
            raise DataError(f"{at}: field 'saliency_scores' must hold one [a1, a2, a3] per clip, got {triple!r}")
        for score in triple:
            check_type(score, "saliency_scores", int, at)
            if not 0 <= score <= MAX_SCORE:
                raise DataError(f"{at}: field 'saliency_scores' holds {score}, outside 0..{MAX_SCORE}")


def validate(record: dict, at: str, tally: Tally) -> dict:
    """Check one line's fields; count value anomalies in `tally`."""
    qid = need(record, "qid", (int, str), at)
    at = f"{at} (qid {qid})"
    text(record, "query", at)
    text(record, "vid", at)
    duration = float(need(record, "duration", NUMBER, at))
    if duration <= 0:
        raise DataError(f"{at}: field 'duration' must be positive, got {duration!r}")
    present = [name for name in LABELLED if name in record]
    if not present:  # the test split carries no labels
        return record
    if len(present) != len(LABELLED):
        missing = next(name for name in LABELLED if name not in record)
        raise DataError(f"{at}: missing field '{missing}'")
    clip_ids = need(record, "relevant_clip_ids", list, at)
    for clip in clip_ids:
        check_type(clip, "relevant_clip_ids", int, at)
    _scores(record, clip_ids, at)
    windows = _windows(record, at)
    clips = timeline.num_clips(duration)
    if any(c < 0 or c >= clips for c in clip_ids):
        tally.add("clip ids past int(duration / 2)", f"qid {qid}: {max(clip_ids)} >= {clips}")
    covered: set[int] = set()
    for start, end in windows:
        if end <= start:
            tally.add("windows with end <= start", f"qid {qid} [{start:g}, {end:g}]")
        if start < 0 or end > duration:
            tally.add("windows outside the video", f"qid {qid} [{start:g}, {end:g}] of {duration:g} s")
        covered.update(range(int(start / protocol.CLIP_SECONDS), int(end / protocol.CLIP_SECONDS)))
    if covered != set(clip_ids):
        tally.add("clip ids that do not match the windows", f"qid {qid}")
    return record


def validate_all(located: Iterable[tuple[str, Any]]) -> Conversion:
    """Validate (position, record) pairs, the position naming the record in errors
    ('val.jsonl: line 3'); qids must be unique. Every reader of the ground truth comes here: the
    evaluation runner, the metric script and `numpro data qvhighlights`."""
    tally = Tally()
    records = []
    seen: dict[str, str] = {}
    for at, record in located:
        if not isinstance(record, dict):
            raise DataError(f"{at}: expected a JSON object, got {type(record).__name__}")
        validate(record, at, tally)
        key = str(record["qid"])
        if key in seen:
            raise DataError(f"{at}: duplicate qid {key!r} (first at {seen[key]})")
        seen[key] = at
        records.append(record)
    return Conversion(records, tally)


def located(path: str | Path) -> list[tuple[str, dict]]:
    """The file's records, each with the position errors name ('val.jsonl: line 3'); JSON Lines
    as released, or a JSON list."""
    return [(where(path, position), record) for position, record in jsonio.located_records(path)]


def read(path: str | Path) -> Conversion:
    """All records of a QVHighlights annotation file, validated; qids must be unique."""
    return validate_all(located(path))
