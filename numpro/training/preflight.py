"""The pre-flight scan: what of train_sft.json can be trained on, decided before the first step.

Every sample lands in exactly one row, checked in this order:
- its record or conversation cannot be trained as intended (conversation.check: a missing field,
  an unknown role, a first turn not from the user, turns that do not alternate, no answer at the
  end, not exactly one `<image>`, an empty answer); the reason is counted;
- its source's folder is not given or does not exist (the other sources still train);
- its video is not in the folder (any common extension is accepted);
- its video cannot be read (probed in parallel: every packet demuxed, frames counted);
- the model_max_length cap, applied after the visual tokens are spliced in (SPEC 5), would cut
  a supervised token: the sample is skipped, never trained on with its answer cut or masked;
- otherwise it is kept, with the frames the model will see (all, at most `max_frames`).

The conversation and token-cap rules are numpro.training.eligibility's, which `numpro data
check` applies too; here token counts are always exact (training's tokenizer). Nothing is
replaced by another sample; every skip is counted and listed; `--strict_data` stops instead of
skipping.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..datasets import training
from ..datasets.records import DataError
from ..datasets.training import NO_SOURCE, read_samples
from ..datasets.videofolder import VideoIndex, probe_all
from ..protocol import MAX_FRAMES, MODEL_MAX_LENGTH
from . import eligibility
from .conversation import MALFORMED, REASONS, ConversationError
from .eligibility import CUT, INVALID

FOLDER_MISSING = "folder missing"
VIDEO_MISSING = "video missing"
UNREADABLE = "video unreadable"
KINDS = (INVALID, FOLDER_MISSING, VIDEO_MISSING, UNREADABLE, CUT)
_EXAMPLES = 5  # skipped samples named per source and kind in the table's notes


class PreflightError(RuntimeError):
    """Training cannot start: nothing is left, or --strict_data found a problem."""


@dataclass(frozen=True)
class Kept:
    index: int  # 0-based position in the training file
    video: str
    source: str
    path: str
    frames: int  # frames the model sees (after the cap)
    tokens: int  # spliced length up to and including the last supervised token


@dataclass(frozen=True)
class Skipped:
    index: int
    video: str
    source: str
    reason: str  # one of KINDS
    detail: str
    cause: str = ""  # for INVALID: one of conversation.REASONS


@dataclass
class Folder:
    path: str | None
    exists: bool
    videos: int = 0

    def describe(self) -> str:
        if self.path is None:
            return "not given"
        return f"{self.path} ({self.videos} videos)" if self.exists else f"{self.path} (does not exist)"


@dataclass
class ScanReport:
    data_path: str
    model_max_length: int
    max_frames: int | None
    sources: list[str]
    folders: dict[str, Folder]
    samples: dict[str, int]
    kept: list[Kept] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        """source -> {"samples", "kept", kind...}."""
        table = {s: {"samples": self.samples[s], "kept": 0, **{k: 0 for k in KINDS}} for s in self.sources}
        for item in self.kept:
            table[item.source]["kept"] += 1
        for item in self.skipped:
            table[item.source][item.reason] += 1
        return table

    def invalid(self) -> dict[str, int]:
        """Invalid conversations by cause (conversation.REASONS order; causes with none left out)."""
        causes = [s.cause for s in self.skipped if s.reason == INVALID]
        return {cause: causes.count(cause) for cause in REASONS if cause in causes}

    def totals(self) -> dict[str, int]:
        totals = {"samples": 0, "kept": 0, **{k: 0 for k in KINDS}}
        for row in self.counts().values():
            for key, value in row.items():
                totals[key] += value
        return totals

    def numbers(self) -> dict[str, int]:
        """Flat numbers for the trainer's log (TensorBoard and W&B take these as scalars)."""
        flat = {f"preflight/{key.replace(' ', '_')}": value for key, value in self.totals().items()}
        for cause, count in self.invalid().items():
            flat[f"preflight/invalid/{cause.replace(' ', '_')}"] = count
        for source, row in self.counts().items():
            name = source.strip("()").replace(" ", "_")
            flat[f"preflight/{name}/samples"] = row["samples"]
            flat[f"preflight/{name}/kept"] = row["kept"]
        return flat

    def to_json(self) -> dict:
        """The report file's content (without the kept list, which has its own file)."""
        return {
            "data_path": self.data_path,
            "model_max_length": self.model_max_length,
            "max_frames": self.max_frames,
            "folders": {s: asdict(f) for s, f in self.folders.items()},
            "counts": self.counts(),
            "totals": self.totals(),
            "invalid": self.invalid(),
            "skipped": [asdict(s) for s in self.skipped],
        }

    @classmethod
    def from_json(cls, content: dict, kept: list[Kept]) -> "ScanReport":
        """The report to_json wrote, with its kept list (read from its own file)."""
        counts = content["counts"]
        return cls(
            data_path=content["data_path"],
            model_max_length=content["model_max_length"],
            max_frames=content["max_frames"],
            sources=list(counts),
            folders={s: Folder(**f) for s, f in content.get("folders", {}).items()},
            samples={s: row["samples"] for s, row in counts.items()},
            kept=kept,
            skipped=[Skipped(**s) for s in content["skipped"]],
        )

    def table(self) -> str:
        return render(self)


def source_folders(anet: str | None, didemo: str | None, internvid: str | None, generic: str | None) -> dict[str, str | None]:
    """Upstream's mapping of a sample's "source" to its folder (no source: --video_folder)."""
    return {"anet": anet, "didemo": didemo, "internvid": internvid, NO_SOURCE: generic}


_source = training.sample_source  # the one rule, shared with `numpro data check`


def _name(sample) -> str:
    name = sample.get("video") if isinstance(sample, dict) else None
    return name if isinstance(name, str) else "?"


def check_record(sample) -> None:
    """ConversationError (MALFORMED) when the record's own fields are missing or mistyped."""
    try:
        training.validate_sample(sample, "the sample")
    except DataError as exc:
        raise ConversationError(MALFORMED, str(exc)) from None


@dataclass(frozen=True)
class _Candidate:
    """A sample whose conversation trains and whose video was found: its length decides the rest."""

    index: int
    sample: dict
    path: str
    text: eligibility.TextTokens


def _start_report(samples: list, data_path, folders, model_max_length, max_frames) -> tuple[ScanReport, dict]:
    """The empty report (sources in upstream's order, then any other), and each source's video index
    (None: no usable folder)."""
    seen = list(dict.fromkeys(_source(s) for s in samples))
    sources = [s for s in (*training.SOURCES, NO_SOURCE) if s in seen] + [s for s in seen if s not in folders]
    indexes: dict[str, VideoIndex | None] = {}
    report_folders: dict[str, Folder] = {}
    for source in sources:
        path = folders.get(source)
        index = VideoIndex(path) if path else None
        indexes[source] = index if index is not None and index.exists else None
        report_folders[source] = Folder(path, bool(index and index.exists), len(index) if index else 0)
    samples_per_source = {s: sum(_source(x) == s for x in samples) for s in sources}
    report = ScanReport(str(data_path), model_max_length, max_frames, sources, report_folders, samples_per_source)
    return report, indexes


def _candidates(samples: list, tokenizer, indexes: dict, report: ScanReport) -> list[_Candidate]:
    """Samples past the conversation, folder and video-file checks; the others are skipped in `report`."""
    candidates = []
    for number, sample in enumerate(samples):
        source, name = _source(sample), _name(sample)
        try:
            check_record(sample)
            text = eligibility.text_tokens(sample["conversations"], tokenizer)
        except ConversationError as exc:
            report.skipped.append(Skipped(number, name, source, INVALID, str(exc), exc.reason))
            continue
        index = indexes[source]
        if index is None:
            report.skipped.append(Skipped(number, name, source, FOLDER_MISSING, report.folders[source].describe()))
            continue
        # The trainer opens <folder>/<video>.mp4 upstream; another extension of the same name is accepted.
        found = index.find(name, name + ".mp4")
        if found is None:
            report.skipped.append(Skipped(number, name, source, VIDEO_MISSING, f"not in {index.folder}"))
            continue
        candidates.append(_Candidate(number, sample, str(found.path), text))
    return candidates


def scan(
    data_path: str | Path,
    folders: dict[str, str | None],
    tokenizer,
    model_max_length: int = MODEL_MAX_LENGTH,
    max_frames: int | None = MAX_FRAMES,
    backend: str = "auto",
    workers: int = 1,
    progress: bool = True,
) -> ScanReport:
    """Check every sample of a training file: its conversation, folder, video and the token cap."""
    samples = read_samples(data_path)
    report, indexes = _start_report(samples, data_path, folders, model_max_length, max_frames)
    candidates = _candidates(samples, tokenizer, indexes, report)
    lengths, failures = probe_all([c.path for c in candidates], workers, progress, backend,
                                  desc="pre-flight: probing videos")
    for candidate in candidates:
        number, name, source = candidate.index, candidate.sample["video"], _source(candidate.sample)
        if candidate.path in failures:
            report.skipped.append(Skipped(number, name, source, UNREADABLE, failures[candidate.path]))
            continue
        budget = eligibility.fit(candidate.text, lengths[candidate.path].frames, model_max_length, max_frames)
        if not budget.fits:
            report.skipped.append(Skipped(number, name, source, CUT, f"{budget} > {model_max_length}"))
            continue
        report.kept.append(Kept(number, name, source, candidate.path, budget.frames, budget.tokens))
    report.skipped.sort(key=lambda s: s.index)
    return report


def check(report: ScanReport, strict: bool = False) -> None:
    """Stop when nothing is left, or (strict) when anything was skipped."""
    totals = report.totals()
    if totals["kept"] == 0:
        raise PreflightError(f"nothing left to train on: all {totals['samples']} samples were skipped\n{report.table()}")
    if strict and totals["kept"] < totals["samples"]:
        raise PreflightError(
            f"--strict_data: {totals['samples'] - totals['kept']} of {totals['samples']} samples would be skipped\n"
            f"{report.table()}"
        )


def render(report: ScanReport) -> str:
    """The report as a table (one row per source, a total) with notes naming what was skipped."""
    counts = report.counts()
    columns = ["samples", "kept", *KINDS]
    heads = [c if c != CUT else f"{CUT} ({report.model_max_length})" for c in columns]
    rows = [(s, report.folders[s].describe(), [counts[s][c] for c in columns]) for s in report.sources]
    totals = report.totals()
    rows.append(("total", "", [totals[c] for c in columns]))
    name_width = max(len(r[0]) for r in rows) + 2
    folder_width = max(len("folder"), *(len(r[1]) for r in rows)) + 2
    widths = [max(len(h), 7) + 2 for h in heads]
    lines = [f"pre-flight scan of {report.data_path}: {totals['samples']} samples, {totals['kept']} kept"]
    lines.append("  " + "source".ljust(name_width) + "folder".ljust(folder_width)
                 + "".join(h.rjust(w) for h, w in zip(heads, widths)))
    for name, folder, values in rows:
        lines.append("  " + name.ljust(name_width) + folder.ljust(folder_width)
                     + "".join(str(v).rjust(w) for v, w in zip(values, widths)))
    notes = []
    for source in report.sources:
        folder = report.folders[source]
        if not folder.exists and counts[source]["samples"]:
            what = "is not given" if folder.path is None else f"{folder.path} does not exist"
            notes.append(f"{source}: folder {what}: its {counts[source]['samples']} samples are skipped, "
                         "the other sources train")
    invalid = report.invalid()
    if invalid:
        notes.append(f"{INVALID}: " + ", ".join(f"{count} {cause}" for cause, count in invalid.items()))
    for kind in KINDS:
        if kind == FOLDER_MISSING:
            continue
        for source in report.sources:
            hits = [s for s in report.skipped if s.source == source and s.reason == kind]
            if hits:
                shown = "; ".join(f"record {s.index + 1} {s.video}: " + (f"{s.cause}: " if s.cause else "")
                                  + s.detail for s in hits[:_EXAMPLES])
                more = f" (and {len(hits) - _EXAMPLES} more)" if len(hits) > _EXAMPLES else ""
                notes.append(f"{kind} [{source}]: {shown}{more}")
    if notes:
        lines += ["notes:"] + [f"  {n}" for n in notes]
    return "\n".join(lines)
