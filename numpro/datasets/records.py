"""What the annotation tools share: the error for malformed input, field checks, anomaly tallies
and the NumPro moment-retrieval record (SPEC 6).

A moment-retrieval test file is a JSON list of
`{"id", "video", "query", "start_time", "end_time", "duration"}` with times in seconds and
`video` a file name relative to the video folder.

Policy: malformed input (bad JSON, a missing or mistyped field) stops with a `DataError` naming
the file, the line or record and the field; it is the package's one input error
(jsonio.JsonInputError), so every tool reports a bad file the same way. Odd but well-formed
data (an end past the video's length, a reversed span) is kept as it is and counted in a
`Tally`, so nothing is silently fixed or dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .. import jsonio

# Times are decimals written by people (113.26 s against a duration of 113.25999999999999):
# differences below this are float noise, not anomalies.
TIME_EPS = 1e-6
REVERSED = "spans with end < start"
BEFORE_ZERO = "spans starting before 0"
PAST_END = "ends past the video length"
SPAN_KINDS = (REVERSED, BEFORE_ZERO, PAST_END)


# Malformed annotation input; the message names the file, the line or record, and the field.
DataError = jsonio.JsonInputError


def where(path: str | Path, position: str) -> str:
    """'file: position', the prefix of every DataError message."""
    return f"{path}: {position}"


def need(obj: Any, name: str, kind: type | tuple[type, ...], at: str) -> Any:
    """obj[name], which must exist and be of `kind` (bool is never a number here)."""
    if not isinstance(obj, dict):
        raise DataError(f"{at}: expected a JSON object, got {type(obj).__name__}")
    if name not in obj:
        raise DataError(f"{at}: missing field '{name}'")
    return check_type(obj[name], name, kind, at)


def check_type(value: Any, name: str, kind: type | tuple[type, ...], at: str) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    numeric = any(k in (int, float) for k in kinds)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        wanted = " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds)
        raise DataError(f"{at}: field '{name}' must be {wanted}, got {value!r}")
    if numeric and isinstance(value, float) and not math.isfinite(value):
        raise DataError(f"{at}: field '{name}' must be a finite number, got {value!r}")
    return value


_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "an object"}
NUMBER = (int, float)


def number(obj: Any, name: str, at: str) -> float:
    return float(need(obj, name, NUMBER, at))


def text(obj: Any, name: str, at: str) -> str:
    """A non-empty string field, stripped of surrounding whitespace."""
    value = need(obj, name, str, at).strip()
    if not value:
        raise DataError(f"{at}: field '{name}' is empty")
    return value


@dataclass
class Tally:
    """Counts of anomalies by kind, each with its first few examples."""

    max_examples: int = 5
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, example: str = "", count: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + count
        shown = self.examples.setdefault(kind, [])
        if example and len(shown) < self.max_examples:
            shown.append(example)

    def merge(self, other: "Tally", skip: tuple[str, ...] = ()) -> None:
        """Add another tally's counts and examples, leaving out the kinds in `skip`."""
        for kind, count in other.counts.items():
            if kind in skip:
                continue
            self.counts[kind] = self.counts.get(kind, 0) + count
            shown = self.examples.setdefault(kind, [])
            shown += other.examples.get(kind, [])[: self.max_examples - len(shown)]

    def __getitem__(self, kind: str) -> int:
        return self.counts.get(kind, 0)

    def __bool__(self) -> bool:
        return any(self.counts.values())

    def lines(self) -> list[str]:
        """One line per kind: count, kind and examples."""
        out = []
        for kind, count in self.counts.items():
            shown = self.examples.get(kind, [])
            more = ", ..." if count > len(shown) else ""
            detail = f": {'; '.join(shown)}{more}" if shown else ""
            out.append(f"{count} {kind}{detail}")
        return out


def moment(id_: str, video: str, query: str, start: float, end: float, duration: float | None) -> dict:
    """A NumPro moment-retrieval record, fields in the file's order."""
    return {"id": id_, "video": video, "query": query, "start_time": start, "end_time": end, "duration": duration}


def tally_span(tally: Tally, start: float, end: float, duration: float | None, label: str) -> None:
    """Count the span anomalies the tools report: end < start, start < 0, end past the duration."""
    if end < start:
        tally.add(REVERSED, f"{label} [{start:g}, {end:g}]")
    if start < 0:
        tally.add(BEFORE_ZERO, f"{label} [{start:g}, {end:g}]")
    if duration is not None and end > duration + TIME_EPS:
        tally.add(PAST_END, f"{label} end {end:g} > {duration:g}")


def validate_moment(record: Any, at: str) -> dict:
    """Check one moment-retrieval record's fields and types; return it unchanged."""
    id_ = need(record, "id", (str, int), at)
    label = f"{at} (id {id_})"
    text(record, "video", label)
    need(record, "query", str, label)
    number(record, "start_time", label)
    number(record, "end_time", label)
    if record.get("duration") is not None:
        duration = number(record, "duration", label)
        if duration <= 0:
            raise DataError(f"{label}: field 'duration' must be positive, got {duration!r}")
    return record


def read_moments(path: str | Path) -> list[dict]:
    """A NumPro moment-retrieval file (JSON list or JSON Lines), validated; ids must be unique."""
    records = jsonio.read_records(path)
    seen: dict[str, int] = {}
    for number_, record in enumerate(records, 1):
        validate_moment(record, where(path, f"record {number_}"))
        key = str(record["id"])
        if key in seen:
            raise DataError(where(path, f"record {number_}: duplicate id {key!r} (first in record {seen[key]})"))
        seen[key] = number_
    return records


def write_records(path: str | Path, records: Iterable[dict]) -> Path:
    """Write records as one JSON list, atomically; parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    jsonio.write_json(path, list(records))
    return path


def load_json(path: str | Path) -> Any:
    """A whole JSON document; any reading problem is a DataError naming the file and line."""
    return jsonio.read_json(path)


def load_list(path: str | Path, what: str = "records") -> list:
    """A JSON document that must be a list (of `what`, named in the error)."""
    data = jsonio.read_json(path)
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of {what}, got {type(data).__name__}")
    return data


@dataclass
class Conversion:
    """What a converter produced: the records and the anomalies it saw (kept, not fixed)."""

    records: list[dict]
    tally: Tally
    notes: list[str] = field(default_factory=list)  # facts worth printing (rules applied, counts)

    @property
    def videos(self) -> int:
        return len({r["video"] for r in self.records})
