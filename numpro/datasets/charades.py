"""Charades-STA: `charades_sta_test.txt` (+ Charades_v1_test.csv lengths) -> NumPro test records.

Each line reads `VID start end##sentence`. Durations come from the `length` column of the
Charades csv (seconds). Ids are `<VID>_<k>`, k counting that video's sentences from 0 in file
order: stable for a given annotation file, unique, and readable back to the line.

Known anomaly (SPEC 6): 562 test ends lie past the video's length. They are kept as they are and
reported; the metric scores them against the annotation as published.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .records import Conversion, DataError, Tally, moment, tally_span, where


def read_lengths(path: str | Path) -> dict[str, float]:
    """Video id -> length in seconds, from a Charades_v1_*.csv."""
    path = Path(path)
    try:
        handle = open(path, encoding="utf-8-sig", newline="")  # -sig: a spreadsheet may add a BOM
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    lengths: dict[str, float] = {}
    with handle:
        reader = csv.DictReader(handle)
        for column in ("id", "length"):
            if column not in (reader.fieldnames or []):
                raise DataError(where(path, f"line 1: missing column '{column}' (columns: {reader.fieldnames})"))
        for row in reader:
            at = where(path, f"line {reader.line_num}")
            video = (row["id"] or "").strip()
            if not video:
                raise DataError(f"{at}: field 'id' is empty")
            try:
                length = float(row["length"])
            except (TypeError, ValueError):
                raise DataError(f"{at}: field 'length' must be a number, got {row['length']!r}") from None
            if not length > 0:
                raise DataError(f"{at}: field 'length' must be positive, got {row['length']!r}")
            lengths[video] = length
    return lengths


def parse_line(line: str, at: str) -> tuple[str, float, float, str]:
    """'VID start end##sentence' -> (VID, start, end, sentence)."""
    head, sep, sentence = line.partition("##")
    parts = head.split()
    if not sep or len(parts) != 3:
        raise DataError(f"{at}: expected 'VID start end##sentence', got {line!r}")
    video, start, end = parts
    values = []
    for name, value in (("start", start), ("end", end)):
        try:
            values.append(float(value))
        except ValueError:
            raise DataError(f"{at}: field '{name}' must be a number, got {value!r}") from None
    sentence = sentence.strip()
    if not sentence:
        raise DataError(f"{at}: field 'sentence' is empty")
    return video, values[0], values[1], sentence


def convert(annotations: str | Path, lengths: dict[str, float] | None, extension: str = ".mp4") -> Conversion:
    """Records for every line of a Charades-STA annotation file.

    `lengths` (from read_lengths) gives each video's duration; a video missing from it is an
    error. With `lengths=None` durations are left out (null) and ends are not checked.
    """
    path = Path(annotations)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    tally = Tally()
    records = []
    per_video: dict[str, int] = {}
    for line_no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        at = where(path, f"line {line_no}")
        video, start, end, sentence = parse_line(line, at)
        duration = None
        if lengths is not None:
            if video not in lengths:
                raise DataError(f"{at}: video {video!r} has no length in the video info csv")
            duration = lengths[video]
        k = per_video.get(video, 0)
        per_video[video] = k + 1
        id_ = f"{video}_{k}"
        records.append(moment(id_, video + extension, sentence, start, end, duration))
        tally_span(tally, start, end, duration, f"{id_} (line {line_no})")
    return Conversion(records, tally)
