"""`numpro data check`: what is missing or wrong in an annotation file and its video folders.

Reads any annotation format the tools know (format detected from the content, or given), finds
each video in its folder (any common extension), probes the found ones in parallel, and counts:
videos missing or unreadable, durations that disagree with the file, spans with end < start or
past the duration, and for training files the samples training would skip, by the rule the
pre-flight scan applies (numpro.training.eligibility): conversations it cannot train on, and
answers the model_max_length cap would cut (SPEC 5), exact when a tokenizer is given.
Training samples go to their source's folder (`anet`, `didemo`, `internvid`); samples without
a source, and every other format, use the generic folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import timeline
from ..protocol import MAX_FRAMES, MODEL_MAX_LENGTH, NUMPRO_FT_FPS
from ..training import eligibility
from ..training.conversation import ConversationError
from ..training.eligibility import CUT, INVALID
from . import anet, charades, didemo, qvhighlights, training, vtimellm
from .records import PAST_END, REVERSED, SPAN_KINDS, DataError, Tally, load_json, read_moments, tally_span
from .training import NO_SOURCE  # also the column of every non-training format
from .videofolder import Located, VideoIndex, VideoLength, probe_all

FORMATS = ("moments", "training", "charades", "anet", "didemo", "qvhighlights", "vtimellm")
TRAINING_FORMATS = ("training", "vtimellm")
MISSING = "videos missing"
UNREADABLE = "videos unreadable"
MISMATCH = "durations disagreeing with the file"
# Rows always shown (zero included) so a clean report says what was checked.
STANDARD = (MISSING, UNREADABLE, MISMATCH, REVERSED, PAST_END)
UNKNOWN = "samples of unknown length (no video, no duration)"
INFO = ("samples without timestamps (kept as they are)", UNKNOWN)  # reported, never a problem
_HEAD_CHARS = 4096  # enough of a file to tell its format


@dataclass
class Item:
    """One query or sample, reduced to what the check needs."""

    label: str  # names it in examples: its id, or its record number
    video: str  # the name in the file
    expected: str  # the file name a consumer opens
    source: str  # column: a training source, or NO_SOURCE
    duration: float | None = None  # seconds, from the file
    spans: list[tuple[float, float]] = field(default_factory=list)  # seconds
    frame_spans: list[tuple[int, int]] = field(default_factory=list)  # 0.5-FPS frame numbers
    sample: dict | None = None  # training sample, for the eligibility rule


@dataclass
class Options:
    video_folder: str | None = None
    source_folders: dict[str, str | None] = field(default_factory=dict)  # source -> folder
    video_info: str | None = None  # Charades csv
    hash_file: str | None = None  # DiDeMo yfcc100m_hash.txt
    model_max_length: int = MODEL_MAX_LENGTH
    max_frames: int | None = MAX_FRAMES
    tokenizer: Any = None  # training's tokenizer: exact token counts (None: estimated)
    duration_tolerance: float = 1 / NUMPRO_FT_FPS  # seconds: a numbered clip may run one frame (2 s) long
    workers: int = 1
    probe: bool = True
    progress: bool = True
    examples: int = 5


@dataclass
class CheckReport:
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
        head = path.read_text(encoding="utf-8")[:_HEAD_CHARS]
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
            NO_SOURCE,
            r.get("duration"),
            spans=[(float(r["start_time"]), float(r["end_time"]))],
        )
        for r in records
    ]


def _training_items(records: list[dict]) -> list[Item]:
    items = []
    for number, sample in enumerate(records, 1):
        items.append(
            Item(
                str(sample["id"]) if "id" in sample else f"record {number} ({sample['video']})",
                sample["video"],
                sample["video"] + ".mp4",  # the trainer opens <folder>/<video>.mp4
                training.sample_source(sample),
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
                NO_SOURCE,
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
    if column == NO_SOURCE:
        return options.video_folder
    if column not in training.SOURCES:  # training has no folder for this source either
        return None
    return options.source_folders.get(column) or options.video_folder


def _locate(items: list[Item], columns: list[str], options: Options, tallies: dict[str, Tally]):
    """Index each folder once and find every (column, video): ({column: folder description}, {key: Located | None})."""
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
    located: dict[tuple[str, str], Located | None] = {}
    for item in items:
        folder = _folder_for(item.source, options)
        if folder is not None and (item.source, item.video) not in located:
            located[(item.source, item.video)] = indexes[folder].find(item.video, item.expected)
    return folders, located


@dataclass
class _VideoCounts:
    """Per column: distinct videos, those found (None: no folder), found under another name, missing."""

    videos: dict[str, int]
    found: dict[str, int | None]
    renamed: dict[str, int]
    missing: dict[str, list[str]]


def _count_videos(items, columns, located, failures, options: Options, tallies: dict[str, Tally]) -> _VideoCounts:
    counts = _VideoCounts(
        {c: 0 for c in columns},
        {c: (None if _folder_for(c, options) is None else 0) for c in columns},
        {c: 0 for c in columns},
        {c: [] for c in columns},
    )
    for (column, name), hit in located.items():
        counts.videos[column] += 1
        if hit is None:
            tallies[column].add(MISSING, name)
            counts.missing[column].append(name)
            continue
        counts.found[column] += 1
        counts.renamed[column] += not hit.exact
        if str(hit.path) in failures:
            tallies[column].add(UNREADABLE, failures[str(hit.path)])
    for column in columns:
        if counts.found[column] is None:
            counts.videos[column] = len({i.video for i in items if i.source == column})
    return counts


def _kinds_checked(fmt: str, found: dict[str, int | None], options: Options) -> set[str]:
    checked = {REVERSED, PAST_END}
    if any(f is not None for f in found.values()):
        checked |= {MISSING}
        if options.probe:
            checked |= {UNREADABLE, MISMATCH}
    if fmt in TRAINING_FORMATS:
        checked |= {INVALID, CUT}
    return checked


def check(path: str | Path, fmt: str | None = None, options: Options | None = None) -> CheckReport:
    """Run every check on one annotation file (format detected when not given)."""
    options = options or Options()
    path = Path(path)
    fmt = fmt or detect_format(path)
    items, reader_tally, notes = load_items(path, fmt, options)
    columns = sorted({i.source for i in items}, key=lambda c: (c == NO_SOURCE, c)) or [NO_SOURCE]
    tallies = {c: Tally(options.examples) for c in columns}
    folders, located = _locate(items, columns, options, tallies)

    lengths, failures = {}, {}
    found_paths = [f.path for f in located.values() if f is not None]
    if options.probe and found_paths:
        lengths, failures = probe_all(found_paths, options.workers, options.progress)
    counts = _count_videos(items, columns, located, failures, options, tallies)

    counted: set[tuple[str, str]] = set()
    for item in items:
        hit = located.get((item.source, item.video))
        probed = lengths.get(str(hit.path)) if hit is not None else None
        _check_item(item, probed, tallies[item.source], options, counted)
    if fmt in TRAINING_FORMATS:
        notes = notes + [_token_note(options)]
    return CheckReport(
        path=path,
        format=fmt,
        columns=columns,
        items={c: sum(1 for i in items if i.source == c) for c in columns},
        videos=counts.videos,
        found=counts.found,
        renamed=counts.renamed,
        folders=folders,
        tallies=tallies,
        checked=_kinds_checked(fmt, counts.found, options),
        reader=reader_tally,
        missing=counts.missing,
        notes=notes,
    )


def _token_note(options: Options) -> str:
    if options.tokenizer is not None:
        return "token counts exact (training's tokenizer), as in the pre-flight scan"
    return "token counts estimated (~4 characters a token); pass --tokenizer for training's exact counts"


def _check_item(item: Item, probed: VideoLength | None, tally: Tally, options: Options, counted: set) -> None:
    if probed is not None and item.duration is not None and (item.source, item.video) not in counted:
        counted.add((item.source, item.video))  # one disagreement per video, not per query
        if abs(probed.duration - item.duration) > options.duration_tolerance:
            tally.add(MISMATCH, f"{item.video}: file {item.duration:g} s, video {probed.duration:g} s")
    for start, end in item.spans:
        tally_span(tally, start, end, item.duration, item.label)
    if item.sample is not None:
        _check_sample(item, probed, tally, options)


def _check_sample(item: Item, probed: VideoLength | None, tally: Tally, options: Options) -> None:
    """A training sample: its answer spans against the clip's frames, and training's eligibility."""
    # The numbered clip's frames 0..K-1: counted in the video itself, else from the file's duration.
    if probed is not None:
        numbered_frames = probed.frames
    elif item.duration is not None:
        numbered_frames = timeline.num_sampled_frames(item.duration, NUMPRO_FT_FPS)
    else:
        numbered_frames = None
    for start, end in item.frame_spans:
        if end < start:
            tally.add(REVERSED, f"{item.label} frames {start}..{end}")
        if numbered_frames is not None and end >= numbered_frames:
            tally.add(PAST_END, f"{item.label} frame {end}, clip has frames 0..{numbered_frames - 1}")
    try:
        text = eligibility.text_tokens(item.sample["conversations"], options.tokenizer)
    except ConversationError as exc:
        tally.add(INVALID, f"{item.label}: {exc.reason}: {exc}")
        return
    if numbered_frames is None:
        tally.add(UNKNOWN, item.label)
        return
    budget = eligibility.fit(text, numbered_frames, options.model_max_length, options.max_frames)
    if not budget.fits:
        tally.add(CUT, f"{item.label}: {budget}")


# ------------------------------------------------------------------ the table
def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _rows(report: CheckReport, options: Options) -> list[tuple[str, list[int | None]]]:
    """(label, one value per column) for every row; None where a count was not checked."""
    columns = report.columns
    video_kinds = (MISSING, UNREADABLE, MISMATCH)
    kinds = list(STANDARD) + [k for k in (INVALID, CUT) if k in report.checked]
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
    return rows


def _footer(report: CheckReport, show_total: bool) -> list[str]:
    """Examples, what the reader reported, notes and the result line."""
    lines = []
    examples = [
        f"  {kind}{f' [{c}]' if show_total else ''}: {'; '.join(shown)}"
        for c in report.columns
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
    return lines


def render(report: CheckReport, options: Options | None = None) -> str:
    """The report as a readable table: one column per source (plus a total), one row per check."""
    options = options or Options()
    show_total = len(report.columns) > 1
    heads = report.columns + ["total"] if show_total else ["count"]
    rows = _rows(report, options)
    width = max(len(label) for label, _ in rows) + 2
    lines = [f"{report.path} ({report.format}, {sum(report.items.values())} records)"]
    for column in report.columns:
        prefix = f"{column} folder" if column != NO_SOURCE else "video folder"
        lines.append(f"  {prefix}: {report.folders[column]}")
    lines.append("  " + " " * width + "".join(f"{h:>12}" for h in heads))
    for label, values in rows:
        if show_total:
            numbers = [v for v in values if v is not None]
            values = values + [sum(numbers) if numbers else None]
        lines.append(f"  {label:<{width}}" + "".join(f"{'-' if v is None else v:>12}" for v in values))
    return "\n".join(lines + _footer(report, show_total))
