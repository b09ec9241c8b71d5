"""DiDeMo: `{train,val,test}_data.json` -> NumPro moment-retrieval records.

Videos are named by a hash of their Flickr id (yfcc100m_hash.txt: id<TAB>hash): NumPro's numbered
clips are `<hash>.mp4`, so each record's video is `<hash>.mp4`. A video whose Flickr id is not in
the mapping keeps its original file name and is reported.

Times are 5-second segment indices, inclusive: [s, e] covers seconds [5 s, 5 (e + 1)].
Several annotators (usually 4) marked each query. The consensus span is the one marked most often
(the DiDeMo / TimeChat-style convention); ties go to the earliest span (smallest start, then
smallest end), so the result does not depend on the annotators' order. Reversed annotator spans
(end < start, a few in train) take no part in the vote and are counted; a query whose spans are
all reversed keeps its most frequent one as it is, reported.

Durations: DiDeMo videos last at most 30 s and `num_segments * 5` bounds a video's length from
above (the last segment may be partial). Without the videos that bound is the record's duration;
given the real durations (`durations`, e.g. probed from the videos) the duration is the real one
and the consensus end is clamped to it.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, NamedTuple

from .records import Conversion, DataError, Tally, check_type, load_list, moment, need, text, where

_FLICKR_NAME = re.compile(r"^\d+@N\d+_(\d+)(?:_[0-9a-f]+)?$")  # owner@N0x_<id>_<secret>
SEGMENT_SECONDS = 5.0
MAX_SECONDS = 30.0  # DiDeMo keeps at most the first 30 s of a video
DEFAULT_SEGMENTS = 6
# The DiDeMo id -> hash mapping ships in the checkout's preprocess/ folder (the data tools' and the
# preprocessing scripts' default, wherever they are run from).
HASH_FILE = Path(__file__).resolve().parents[2] / "preprocess" / "yfcc100m_hash.txt"


def read_hash_file(path: str | Path) -> dict[str, str]:
    """Flickr video id -> hash, from the public yfcc100m_hash.txt mapping."""
    mapping: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2:
                raise DataError(f"{path}:{line_no}: expected 'id<TAB>hash', got {line!r}")
            mapping[parts[0]] = parts[1]
    return mapping


def flickr_id(video_name: str) -> str:
    """The Flickr id in a DiDeMo video name: '26292851@N04_4253489686_265c3c8051.m4v' -> '4253489686'.

    A bare id ('4253489686.mp4') is returned as it is. Some names in the annotation end in a bare
    dot ('58792004@N06_8544469262_fd25eddb2e.'); the dot is ignored.
    """
    stem = Path(video_name.rstrip(".")).stem
    match = _FLICKR_NAME.match(stem)
    return match.group(1) if match else stem


class Consensus(NamedTuple):
    span: tuple[int, int]  # segment indices, inclusive
    left_out: int  # reversed annotator spans that did not vote
    tied: bool  # another span had as many votes


def consensus(times: list[tuple[int, int]]) -> Consensus:
    """The annotators' most frequent segment span; ties go to the earliest (start, then end)."""
    valid = [t for t in times if t[1] >= t[0]]
    votes = Counter(valid or times)
    best = max(votes.values())
    leaders = sorted(t for t, n in votes.items() if n == best)
    return Consensus(leaders[0], len(times) - len(valid), len(leaders) > 1)


def to_seconds(span: tuple[int, int], segment_seconds: float = SEGMENT_SECONDS) -> tuple[float, float]:
    """Inclusive segment indices [s, e] -> seconds [5 s, 5 (e + 1)]."""
    return span[0] * segment_seconds, (span[1] + 1) * segment_seconds


def _times(entry: dict, at: str) -> list[tuple[int, int]]:
    times = need(entry, "times", list, at)
    if not times:
        raise DataError(f"{at}: field 'times' is empty")
    spans = []
    for span in times:
        if not isinstance(span, list) or len(span) != 2:
            raise DataError(f"{at}: field 'times' must hold [start, end] segment pairs, got {span!r}")
        s, e = (check_type(v, "times", int, at) for v in span)
        spans.append((s, e))
    return spans


def _lookup(durations: dict[str, float] | None, *names: str) -> float | None:
    if not durations:
        return None
    for name in names:
        if name in durations:
            return durations[name]
    return None


class _Query(NamedTuple):
    id: str
    video: str  # the name in the annotation
    query: str
    segments: int  # num_segments
    vote: Consensus


def _read_query(entry: Any, at: str) -> _Query:
    annotation_id = need(entry, "annotation_id", (int, str), at)
    at = f"{at} (annotation_id {annotation_id})"
    original = text(entry, "video", at)
    query = text(entry, "description", at)
    segments = entry.get("num_segments", DEFAULT_SEGMENTS)
    check_type(segments, "num_segments", int, at)
    if not 0 < segments <= MAX_SECONDS / SEGMENT_SECONDS:
        raise DataError(f"{at}: field 'num_segments' must be 1..6, got {segments!r}")
    return _Query(str(annotation_id), original, query, segments, consensus(_times(entry, at)))


def _video_name(original: str, hashes: dict[str, str] | None, extension: str, tally: Tally) -> str:
    """`<hash>.mp4`, or the original name when there is no mapping or the video is not in it."""
    if hashes is None:
        return original
    digest = hashes.get(flickr_id(original))
    if digest is None:
        tally.add("videos not in the hash file (original name kept)", original)
        return original
    return digest + extension


def _timed_record(q: _Query, video: str, known: float | None, tally: Tally) -> dict:
    """The record in seconds: the consensus span against the real duration, else num_segments * 5 s."""
    span = q.vote.span
    duration = known if known is not None else q.segments * SEGMENT_SECONDS
    start, end = to_seconds(span)
    if span[1] < span[0]:
        tally.add("consensus spans with end < start (kept)", f"{q.id} segments {list(span)}")
    elif span[1] >= q.segments:
        tally.add("spans past num_segments (end clamped)", f"{q.id} segments {list(span)} of {q.segments}")
    if end > duration:
        if known is not None and span[1] < q.segments:
            tally.add("ends clamped to the real video length", f"{q.id} {end:g} -> {duration:g}")
        end = duration
    if start >= duration:
        tally.add("starts at or past the video length (kept)", f"{q.id} start {start:g} >= {duration:g}")
    return moment(q.id, video, q.query, start, end, duration)


def convert(
    annotations: str | Path | Iterable[str | Path],
    hashes: dict[str, str] | None,
    durations: dict[str, float] | None = None,
    extension: str = ".mp4",
) -> Conversion:
    """Records for every query of one or more DiDeMo annotation files.

    `hashes` is read_hash_file's mapping; None keeps the original names (no renaming, no report).
    `durations` maps a video name (hash name, original name or either stem) to its real length.
    """
    paths = [Path(annotations)] if isinstance(annotations, (str, Path)) else [Path(p) for p in annotations]
    tally = Tally()
    records = []
    seen: dict[str, str] = {}
    real = 0  # queries whose video's real duration was known
    ties = 0
    for path in paths:
        for number, entry in enumerate(load_list(path, "queries"), 1):
            at = where(path, f"record {number}")
            q = _read_query(entry, at)
            if q.id in seen:
                raise DataError(f"{at} (annotation_id {q.id}): duplicate annotation_id (first in {seen[q.id]})")
            seen[q.id] = f"{at} (annotation_id {q.id})"
            ties += q.vote.tied
            video = _video_name(q.video, hashes, extension, tally)
            if q.vote.left_out:
                tally.add("annotator spans with end < start (left out of the vote)", f"{q.id} {q.video}",
                          q.vote.left_out)
            known = _lookup(durations, video, Path(video).stem, q.video, Path(q.video.rstrip(".")).stem)
            real += known is not None
            records.append(_timed_record(q, video, known, tally))
    notes = [f"consensus: the most frequent span; {ties} ties went to the earliest span"]
    if durations is None:
        notes += ["durations are num_segments * 5 s (an upper bound); pass the videos for real lengths"]
    else:
        notes += [f"real durations for {real} of {len(records)} queries; the rest use num_segments * 5 s"]
    return Conversion(records, tally, notes)
