"""`numpro data check`: what is missing or wrong in an annotation file and its video folders.

Reads any annotation format the tools know (format detected from the content, or given), finds
each video in its folder (any common extension), probes the found ones in parallel, and counts:
videos missing or unreadable, durations that disagree with the file, spans with end < start or
past the duration, and for training files the samples whose answer the model_max_length cap
would cut (SPEC 5). Training samples go to their source's folder (`anet`, `didemo`,
`internvid`); samples without a source, and every other format, use the generic folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import anet, charades, didemo, qvhighlights, training, vtimellm
from .records import PAST_END, REVERSED, SPAN_KINDS, DataError, Tally, load_json, read_moments, tally_span
from .videofolder import VideoIndex, probe_all

FORMATS = ("moments", "training", "charades", "anet", "didemo", "qvhighlights", "vtimellm")
GENERIC = "(no source)"  # column of samples without a source, and of every non-training format
MISSING = "videos missing"
UNREADABLE = "videos unreadable"
MISMATCH = "durations disagreeing with the file"
CUT = "answers cut by the token cap"
# Rows always shown (zero included) so a clean report says what was checked.
STANDARD = (MISSING, UNREADABLE, MISMATCH, REVERSED, PAST_END)
UNKNOWN = "samples of unknown length (no video, no duration)"
INFO = ("samples without timestamps (kept as they are)", UNKNOWN)  # reported, never a problem


@dataclass
class Item:
    """One query or sample, reduced to what the check needs."""

    label: str  # names it in examples: its id, or its record number
    video: str  # the name in the file
    expected: str  # the file name a consumer opens
    source: str  # column: a training source, or GENERIC
    duration: float | None = None  # seconds, from the file
    spans: list[tuple[float, float]] = field(default_factory=list)  # seconds
    frame_spans: list[tuple[int, int]] = field(default_factory=list)  # 0.5-FPS frame numbers
    sample: dict | None = None  # training sample, for the token count


@dataclass
class Options:
    video_folder: str | None = None
    source_folders: dict[str, str | None] = field(default_factory=dict)  # source -> folder
    video_info: str | None = None  # Charades csv
    hash_file: str | None = None  # DiDeMo yfcc100m_hash.txt
    model_max_length: int = training.MODEL_MAX_LENGTH
    duration_tolerance: float = 2.0  # seconds; numbered 0.5-FPS clips run up to 2 s long
    workers: int = 1
    probe: bool = True
    progress: bool = True
    examples: int = 5


@dataclass
class Report:
    path: Path
    format: str
    columns: list[str]
    items: dict[str, int]  # column -> records
    videos: dict[str, int]  # column -> distinct videos
    found: dict[str, int | None]  # None: no folder to look in
    renamed: dict[str, int]  # found, but under another extension or prefix
    folders: dict[str, str]  # column -> description of its folder
    tallies: dict[str, Tally]  # column -> problems
    checked: set[str]  # kinds that were checked (shown even at zero)
    reader: Tally  # anomalies the format's reader reported (not per source)
    missing: dict[str, list[str]]  # column -> every missing video name
    notes: list[str] = field(default_factory=list)

    @property
    def problems(self) -> dict[str, int]:
        kinds: dict[str, int] = {}
        for tally in [*self.tallies.values(), self.reader]:
            for kind, count in tally.counts.items():
                if kind not in INFO and count:
                    kinds[kind] = kinds.get(kind, 0) + count
        return kinds


# ------------------------------------------------------------------ reading any format
def detect_format(path: str | Path) -> str:
    """Guess an annotation file's format from its content."""
    path = Path(path)
    try:
        head = path.read_text(encoding="utf-8")[:4096]
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    stripped = head.lstrip()
    first = stripped.splitlines()[0] if stripped else ""
    if "##" in first:
        return "charades"
    if stripped.startswith("{"):
        return "qvhighlights" if '"qid"' in first and '"vid"' in first else "anet"
    if stripped.startswith("["):
        data = load_json(path)
        sample = next((x for x in data[:50] if isinstance(x, dict)), {}) if isinstance(data, list) else {}
        if "conversations" in sample:
            vtime = any(isinstance(x, dict) and "meta" in x for x in data[:1000])
            return "vtimellm" if vtime else "training"
        if "times" in sample and "description" in sample:
            return "didemo"
        if "start_time" in sample or "query" in sample:
            return "moments"
    raise DataError(f"{path}: cannot tell the annotation format; pass --format ({', '.join(FORMATS)})")


def _moment_items(records: list[dict]) -> list[Item]:
    return [
        Item(
            str(r["id"]),
            r["video"],
            r["video"],
            GENERIC,
            r.get("duration"),
            spans=[(float(r["start_time"]), float(r["end_time"]))],
        )
        for r in records
    ]


def _training_items(records: list[dict]) -> list[Item]:
    items = []
    for number, sample in enumerate(records, 1):
        source = sample.get("source")
        items.append(
            Item(
                str(sample["id"]) if "id" in sample else f"record {number} ({sample['video']})",
                sample["video"],
                sample["video"] + ".mp4",  # the trainer opens <folder>/<video>.mp4
                source if source in training.SOURCES else GENERIC,
                sample.get("duration"),
                frame_spans=training.answer_spans(sample),
                sample=sample,
            )
        )
    return items


def load_items(path: str | Path, fmt: str, options: Options) -> tuple[list[Item], Tally, list[str]]:
    """Items of any format, plus the anomalies its reader reported beyond spans, and notes."""
    hashes = didemo.read_hash_file(options.hash_file) if options.hash_file else None
    if fmt == "moments":
        return _moment_items(read_moments(path)), Tally(), []
    if fmt == "training":
        return _training_items(training.read_training(path)), Tally(), []
    if fmt == "qvhighlights":
        conversion = qvhighlights.read(path)
        items = [
            Item(
                str(r["qid"]),
                qvhighlights.video_name(r),
                qvhighlights.video_name(r),
                GENERIC,
                float(r["duration"]),
                spans=[tuple(map(float, w)) for w in r.get("relevant_windows", [])],
            )
            for r in conversion.records
        ]
        return items, conversion.tally, conversion.notes
    notes = []
    if fmt == "charades":
        lengths = charades.read_lengths(options.video_info) if options.video_info else None
        conversion = charades.convert(path, lengths)
        if lengths is None:
            notes.append("no --video_info: durations unknown, ends not checked")
    elif fmt == "anet":
        conversion = anet.convert(path)
    elif fmt == "didemo":
        conversion = didemo.convert(path, hashes)
        notes.append("video names " + ("resolved through the hash file" if hashes else "as in the file (no --hash_file)"))
    elif fmt == "vtimellm":
        conversion = vtimellm.convert(path, hashes)
        return _training_items(conversion.records), _without_spans(conversion.tally), conversion.notes
    else:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return _moment_items(conversion.records), _without_spans(conversion.tally), conversion.notes + notes


def _without_spans(tally: Tally) -> Tally:
    """A reader's anomalies minus the span counts, which the check recomputes for every format."""
    kept = Tally(tally.max_examples)
    kept.merge(tally, skip=SPAN_KINDS)
    return kept


# ------------------------------------------------------------------ the checks
def _folder_for(column: str, options: Options) -> str | None:
    if column != GENERIC and options.source_folders.get(column):
        return options.source_folders[column]
    return options.video_folder


def _locate(items: list[Item], columns: list[str], options: Options, tallies: dict[str, Tally]):
    """Index each folder once and find every (column, video): ({column: folder description}, {key: Found | None})."""
    indexes: dict[str, VideoIndex] = {}
    folders: dict[str, str] = {}
    for column in columns:
        folder = _folder_for(column, options)
        if folder is None:
            folders[column] = "not given: videos not checked"
            continue
        index = indexes.setdefault(folder, VideoIndex(folder))
        folders[column] = f"{folder} ({len(index)} videos)" if index.exists else f"{folder} (folder does not exist)"
        if not index.exists:
            tallies[column].add("video folders missing", folder)
    located: dict[tuple[str, str], Any] = {}
    for item in items:
        folder = _folder_for(item.source, options)
        if folder is not None and (item.source, item.video) not in located:
            located[(item.source, item.video)] = indexes[folder].find(item.video, item.expected)
    return folders, located


def check(path: str | Path, fmt: str | None = None, options: Options | None = None) -> Report:
    """Run every check on one annotation file (format detected when not given)."""
    options = options or Options()
    path = Path(path)
    fmt = fmt or detect_format(path)
    items, reader_tally, notes = load_items(path, fmt, options)
    columns = sorted({i.source for i in items}, key=lambda c: (c == GENERIC, c)) or [GENERIC]
    tallies = {c: Tally(options.examples) for c in columns}
    folders, located = _locate(items, columns, options, tallies)

    durations, failures = {}, {}
    found_paths = [f.path for f in located.values() if f is not None]
    if options.probe and found_paths:
        durations, failures = probe_all(found_paths, options.workers, options.progress)

    videos = {c: 0 for c in columns}
    found = {c: (None if _folder_for(c, options) is None else 0) for c in columns}
    renamed = {c: 0 for c in columns}
    missing: dict[str, list[str]] = {c: [] for c in columns}
    for (column, name), hit in located.items():
        videos[column] += 1
        if hit is None:
            tallies[column].add(MISSING, name)
            missing[column].append(name)
            continue
        found[column] += 1
        renamed[column] += not hit.exact
        if str(hit.path) in failures:
            tallies[column].add(UNREADABLE, failures[str(hit.path)])
    for column in columns:
        if found[column] is None:
            videos[column] = len({i.video for i in items if i.source == column})

    counted: set[tuple[str, str]] = set()
    for item in items:
        hit = located.get((item.source, item.video))
        probed = durations.get(str(hit.path)) if hit is not None else None
        _check_item(item, probed, tallies[item.source], options, counted)

    checked = {REVERSED, PAST_END}
    if any(f is not None for f in found.values()):
        checked |= {MISSING}
        if options.probe:
            checked |= {UNREADABLE, MISMATCH}
    if fmt in ("training", "vtimellm"):
        checked.add(CUT)
    return Report(
        path,
        fmt,
        columns,
        {c: sum(1 for i in items if i.source == c) for c in columns},
        videos,
        found,
        renamed,
        folders,
        tallies,
        checked,
        reader_tally,
        missing,
        notes,
    )


def _check_item(item: Item, probed: float | None, tally: Tally, options: Options, counted: set) -> None:
    if probed is not None and item.duration is not None and (item.source, item.video) not in counted:
        counted.add((item.source, item.video))  # one disagreement per video, not per query
        if abs(probed - item.duration) > options.duration_tolerance:
            tally.add(MISMATCH, f"{item.video}: file {item.duration:g} s, video {probed:g} s")
    for start, end in item.spans:
        tally_span(tally, start, end, item.duration, item.label)
    if item.sample is None:
        return
    # Training: frames of the clip from the video itself, else from the file's duration.
    length = probed if probed is not None else item.duration
    numbered = training.clip_frames(length, max_frames=None) if length is not None else None  # frames 0..K-1
    for start, end in item.frame_spans:
        if end < start:
            tally.add(REVERSED, f"{item.label} frames {start}..{end}")
        if numbered is not None and end >= numbered:
            tally.add(PAST_END, f"{item.label} frame {end}, clip has frames 0..{numbered - 1}")
    if numbered is None:
        tally.add(UNKNOWN, item.label)
        return
    frames = training.clip_frames(length)
    if training.loses_answer(item.sample, frames, options.model_max_length):
        tokens = training.sequence_tokens(item.sample, frames)
        tally.add(CUT, f"{item.label}: {frames} frames, ~{tokens} tokens")


# ------------------------------------------------------------------ the table
def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def render(report: Report, options: Options | None = None) -> str:
    """The report as a readable table: one column per source (plus a total), one row per check."""
    options = options or Options()
    columns = report.columns
    show_total = len(columns) > 1
    heads = columns + ["total"] if show_total else ["count"]
    video_kinds = (MISSING, UNREADABLE, MISMATCH)

    kinds = list(STANDARD) + ([CUT] if CUT in report.checked else [])
    kinds += [k for t in report.tallies.values() for k in t.counts if k not in kinds]
    rows: list[tuple[str, list[int | None]]] = [
        ("records", [report.items[c] for c in columns]),
        ("videos referenced", [report.videos[c] for c in columns]),
        ("videos found", [report.found[c] for c in columns]),
    ]
    if any(report.renamed.values()):
        rows.append(("  under another extension or prefix", [report.renamed[c] for c in columns]))
    for kind in dict.fromkeys(kinds):
        label = kind
        if kind == CUT:
            label = f"{kind} ({options.model_max_length})"
        elif kind == MISMATCH:
            label = f"{kind} (>{options.duration_tolerance:g} s)"
        shown = kind in report.checked or any(t[kind] for t in report.tallies.values())
        values = [
            None if not shown or (kind in video_kinds and report.found[c] is None) else report.tallies[c][kind]
            for c in columns
        ]
        rows.append((label, values))

    width = max(len(label) for label, _ in rows) + 2
    lines = [f"{report.path} ({report.format}, {sum(report.items.values())} records)"]
    for column in columns:
        prefix = f"{column} folder" if column != GENERIC else "video folder"
        lines.append(f"  {prefix}: {report.folders[column]}")
    lines.append("  " + " " * width + "".join(f"{h:>12}" for h in heads))
    for label, values in rows:
        if show_total:
            numbers = [v for v in values if v is not None]
            values = values + [sum(numbers) if numbers else None]
        lines.append(f"  {label:<{width}}" + "".join(f"{'-' if v is None else v:>12}" for v in values))

    examples = [
        f"  {kind}{f' [{c}]' if show_total else ''}: {'; '.join(shown)}"
        for c in columns
        for kind, shown in report.tallies[c].examples.items()
        if shown
    ]
    if examples:
        lines += ["examples:"] + examples
    reader_lines = report.reader.lines()
    if reader_lines:
        lines += ["reported while reading:"] + [f"  {line}" for line in reader_lines]
    lines += [f"note: {n}" for n in report.notes]
    problems = report.problems
    if problems:
        total = sum(problems.values())
        lines.append(f"result: {_plural(total, 'problem')} of {_plural(len(problems), 'kind')}")
    else:
        lines.append("result: no problems found")
    return "\n".join(lines)
