"""`python -m numpro results PATH... [--out FILE]`: the paper-vs-ours table from run records.

Takes metrics files (`*_metrics.json`, written beside the predictions by every eval run) or folders
(searched recursively for them) and prints the README's results table in Markdown: for each model
and protocol a `paper` line (the paper's numbers, numpro/paper.py) and an `ours` line, whose every
number carries a source number [k] naming the metrics file and the run record that produced it.

- Dataset of a run: from its annotation file's path (charades; anet or activitynet; highlight or
  qvh), otherwise the file's stem as an extra column group.
- Row of a run: the model's name (folder name or hub id, or the API model) matched to the paper's
  row names, then "+ NumPro" (numbers on), "+ NumPro-FT" (a LoRA adapter), and the number style
  when it is not the paper's 40 / red / bottom_right (a design-sweep run is not the main table's).
  An unknown model gets its own row without paper numbers.
- Warnings: two runs of one row that differ in protocol (frame size, numbers, stamp style and font,
  model or adapter files everywhere; fps and frame cap among runs of the same task, since the
  paper samples highlight detection at its own rate), two runs for one cell (the newest by its
  start time is kept and the others are named), runs limited to the first N queries.
- A metrics file without a run record (for example upstream's predictions scored by
  eval/metrics_mr.py) is listed as "no run record", never placed by guesswork.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from . import paper
from .jsonio import JsonInputError, read_json, write_text

NONE = "–"


class ResultsError(Exception):
    """Nothing to tabulate (exit 1), or a path that does not exist (exit 2); one line for the user."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


# The paper's model names, matched on the lowercased name with everything but letters and digits removed.
_PAPER_MODELS = [
    (re.compile(r"^qwen2vl7b(instruct)?$"), "Qwen2-VL-7B"),
    (re.compile(r"^qwen2vl72b(instruct)?$"), "Qwen2-VL-72B"),
    (re.compile(r"^longva7bdpo$"), "LongVA-7B-DPO"),
    (re.compile(r"^llavavideo7b(qwen2)?(hf)?$"), "LLaVA-Video-7B"),
    (re.compile(r"^llavaonevision(qwen2)?7b(ov)?(hf)?$"), "LLaVA-OneVision-7B"),
    (re.compile(r"^gpt4o(\d{8}|latest)?$"), "GPT-4o"),
]


def paper_model_name(name: str) -> str | None:
    """The paper's name for a model folder, hub id or API model name; None when it is not one of them."""
    key = re.sub(r"[^a-z0-9]", "", Path(str(name).rstrip("/")).name.lower())
    for pattern, paper_name in _PAPER_MODELS:
        if pattern.match(key):
            return paper_name
    return None


def model_name(run: dict) -> str:
    model = run.get("model") or {}
    if model.get("family") == "api":
        return str((model.get("identity") or {}).get("api_model") or "api model")
    path = str(model.get("path") or "unknown model").rstrip("/")
    return Path(path).name or path


def style_of(protocol: dict) -> tuple | None:
    stamp = protocol.get("stamp") if protocol.get("numbers") else None
    if not stamp:
        return None
    return (stamp.get("font_size"), str(stamp.get("color")).lower(), stamp.get("position"))


def row_label(run: dict) -> str:
    """The row of a run: the paper's row name when the model and protocol are one of the paper's."""
    model = run.get("model") or {}
    protocol = run.get("protocol") or {}
    name = model_name(run)
    label = paper_model_name(name) or name
    numbers = bool(protocol.get("numbers"))
    if model.get("adapter"):
        label += " + NumPro-FT" + ("" if numbers else " (no numbers)")
    elif numbers:
        label += " + NumPro"
    style = style_of(protocol)
    if style is not None and style != paper.DEFAULT_STYLE:
        label += " (numbers {}/{}/{})".format(*style)
    label += "".join(f" ({part})" for part in _ablation_parts(model, protocol))
    if model.get("random_init"):
        label += " (random weights)"
    return label


def _ablation_parts(model: dict, protocol: dict) -> list[str]:
    """What sets a run apart from the paper's main-table protocol: each gets its own row."""
    parts = []
    if protocol.get("stamp_text") == "seconds":
        parts.append("timestamps")
    fraction = protocol.get("number_fraction")
    if protocol.get("numbers") and fraction is not None and fraction < 1:
        parts.append(f"{fraction:g} numbered, {protocol.get('number_sampling') or 'uniform'}")
    if protocol.get("frame_selection") == "plain":
        parts.append("all frames")
    if protocol.get("video_io") == "upstream":
        parts.append("mp4v round trip")
    if model.get("family") == "api" and paper_model_name(str((model.get("identity") or {}).get("api_model") or ""))\
            not in (None, "GPT-4o"):
        parts.append("served")  # a served Qwen2-VL receives images, not a video: not the paper's row
    return parts


def dataset_of(run: dict, metrics_path: Path) -> tuple[str, str]:
    """(column group key, title): charades / anet / qvh from the annotation path, else its stem."""
    annotations = str((run.get("annotations") or {}).get("path") or "")
    task = run.get("task") or "mr"
    wanted = {"charades": "mr", "anet": "mr", "qvh": "hd"}
    for text in (Path(annotations).name.lower(), annotations.lower()):
        found = None
        if "charades" in text:
            found = "charades"
        elif "activitynet" in text or "anet" in text:
            found = "anet"
        elif "highlight" in text or "qvh" in text:
            found = "qvh"
        if found:
            if wanted[found] == task:
                return found, paper.DATASETS[found][0]
            break
    stem = Path(annotations).stem or metrics_path.stem
    return f"{stem}:{task}", stem + (" (highlights)" if task == "hd" else "")


@dataclass
class Run:
    number: int  # its source number [k]
    metrics_path: Path
    metrics: dict
    run: dict
    record_path: Path | None
    record: dict | None  # the run record file's content, when it could be read
    label: str
    dataset: str
    dataset_title: str
    started: datetime.datetime | None

    @property
    def task(self) -> str:
        return self.run.get("task") or "mr"

    @property
    def protocol(self) -> dict:
        return self.run.get("protocol") or {}

    def keys(self) -> tuple[str, ...]:
        return paper.HD_KEYS if self.task == "hd" else paper.MR_KEYS


@dataclass
class Table:
    markdown: str
    warnings: list[str] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    without_record: list[Path] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    skipped_sweeps: list[Path] = field(default_factory=list)


SWEEP_STATE = "sweep.json"  # marks a number-design sweep's folder (python -m numpro sweep)


def find_metrics(paths: Iterable[str | os.PathLike], skipped_sweeps: list[Path] | None = None) -> list[Path]:
    """The metrics files named, or found recursively in the folders named, each once, in order.

    Inside a folder, a number-design sweep's folder (holding sweep.json) is left out and added to
    `skipped_sweeps`: its styles are not the main table's. A sweep folder named directly is read.
    """
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            for candidate in sorted(p for p in path.rglob("*_metrics.json") if p.is_file()):
                sweep = next((d for d in candidate.parents if d != path and path in d.parents
                              and (d / SWEEP_STATE).is_file()), None)
                if sweep is None:
                    found.append(candidate)
                elif skipped_sweeps is not None and sweep not in skipped_sweeps:
                    skipped_sweeps.append(sweep)
        elif path.is_file():
            found.append(path)
        else:
            raise ResultsError(f"no such file or folder: {path}", exit_code=2)
    unique, seen = [], set()
    for path in found:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def _parse_time(text: Any) -> datetime.datetime | None:
    try:
        value = datetime.datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


def _fmt(value: Any, decimals: int = 2) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return NONE
    return f"{value:.{decimals}f}"


def _style_text(protocol: dict) -> str:
    if not protocol.get("numbers"):
        return "no numbers"
    stamp = protocol.get("stamp") or {}
    return f"numbers {stamp.get('font_size')}/{stamp.get('color')}/{stamp.get('position')} {stamp.get('font', '')}".rstrip()


def _source_line(run: Run) -> str:
    p = run.protocol
    parts = [f"`{run.metrics_path}`"]
    if run.record_path is None:
        parts.append("run record: not named in the metrics file")
    elif run.record is None:
        parts.append(f"run record `{run.record_path}` (not found)")
    else:
        parts.append(f"run record `{run.record_path}`")
    model = run.run.get("model") or {}
    who = model.get("path") or model_name(run.run)
    adapter = model.get("adapter")
    if adapter:
        who += f" + adapter {adapter.get('path')}"
    parts.append(f"{run.run.get('script', '?')}, {who}")
    cap = p.get("max_frames")
    parts.append(f"{p.get('fps')} fps, {p.get('size')} px, {f'at most {cap} frames' if cap else 'no frame cap'}, "
                 f"{_style_text(p)}")
    m = run.metrics
    counts = f"n {m.get('n', '?')}"
    if "n_parsed" in m:
        counts += f", parsed {m['n_parsed']}"
    failures = {k: v for k, v in (m.get("status") or {}).items() if k != "ok"}
    if failures:
        counts += ", " + ", ".join(f"{k} {v}" for k, v in sorted(failures.items()))
    parts.append(counts)
    parts.append(f"started {run.run.get('started', '?')}")
    return " · ".join(parts)


def _load(path: Path, number: int, table: Table) -> Run | None:
    try:
        metrics = read_json(path)
    except JsonInputError as err:
        table.unreadable.append(str(err))
        return None
    if not isinstance(metrics, dict):
        table.unreadable.append(f"{path}: not a metrics file (expected a JSON object)")
        return None
    run = metrics.get("run")
    if not isinstance(run, dict):
        table.without_record.append(path)
        return None
    if metrics.get("measured") is False:  # the run exited non-zero: its zeros are no result
        table.unreadable.append(f"{path}: nothing was measured ({metrics.get('not_measured_because', 'see the run')})")
        return None
    record_path, record = None, None
    if metrics.get("run_record"):
        record_path = path.parent / str(metrics["run_record"])
        if record_path.is_file():
            try:
                loaded = read_json(record_path)
                record = loaded if isinstance(loaded, dict) else None
            except JsonInputError:
                record = None
    dataset, title = dataset_of(run, path)
    started = _parse_time(run.get("started"))
    return Run(number, path, metrics, run, record_path, record, row_label(run), dataset, title, started)


def _protocol_warnings(label: str, runs: list[Run]) -> list[str]:
    """One warning per protocol field in which the row's runs differ."""
    def fields(run: Run) -> dict[str, tuple[Any, str]]:
        p, model = run.protocol, run.run.get("model") or {}
        stamp = p.get("stamp") or {}
        adapter = model.get("adapter") or {}
        out = {
            "frame size": (p.get("size"), "all"),
            "numbers": (bool(p.get("numbers")), "all"),
            "stamp style": (style_of(p), "all"),
            "font": (stamp.get("font_sha256"), "all"),
            "model files": (repr(model.get("identity")), "all"),
            "adapter files": (repr(adapter.get("sha256")), "all"),
            "fps": (p.get("fps"), run.task),
            "frame cap": (p.get("max_frames"), run.task),
        }
        return out

    warnings = []
    names = ["frame size", "numbers", "stamp style", "font", "model files", "adapter files", "fps", "frame cap"]
    for name in names:
        groups: dict[str, dict[Any, list[int]]] = {}
        for run in runs:
            value, scope = fields(run)[name]
            groups.setdefault(scope, {}).setdefault(value, []).append(run.number)
        for scope, values in groups.items():
            if len(values) > 1:
                where = "" if scope == "all" else f" ({'highlight detection' if scope == 'hd' else 'moment retrieval'})"
                listing = " vs ".join(f"{_show(value)} [{', '.join(map(str, nums))}]" for value, nums in values.items())
                warnings.append(f"{label}: runs differ in {name}{where}: {listing}")
    return warnings


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return "/".join(map(str, value))
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def build(paths: Iterable[str | os.PathLike]) -> Table:
    table = _read_runs(list(paths))
    kept = _newest_per_cell(table.runs, table.warnings)
    labels = _row_labels(table.runs)
    for label in labels:
        row_runs = sorted((r for (l, _), r in kept.items() if l == label), key=lambda r: r.number)
        table.warnings.extend(_protocol_warnings(label, row_runs))
    table.warnings.extend(_limit_warnings(kept))
    groups = _column_groups(kept)
    out = _table_lines(labels, groups, kept) + _notes(table)
    table.markdown = "\n".join(out) + "\n"
    return table


def _read_runs(paths: list) -> Table:
    """The table's runs, numbered [1..n] in file order; unreadable and record-less files noted on the table."""
    skipped: list[Path] = []
    files = find_metrics(paths, skipped)
    if not files:
        extra = f" (outside the sweep folders {', '.join(map(str, skipped))})" if skipped else ""
        raise ResultsError(f"no metrics file (*_metrics.json) found in {', '.join(map(str, paths))}{extra}")
    table = Table(markdown="", skipped_sweeps=skipped)
    loaded = [_load(path, 0, table) for path in files]
    runs = [run for run in loaded if run is not None]
    # Numbered after loading so the source numbers have no gaps for files left out.
    for number, run in enumerate(runs, start=1):
        run.number = number
    table.runs = runs
    return table


def _newest_per_cell(runs: list[Run], warnings: list[str]) -> dict[tuple[str, str], Run]:
    """(row, dataset) -> the newest run; each cell filled more than once gets a warning naming the others."""
    cells: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        cells.setdefault((run.label, run.dataset), []).append(run)
    oldest = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
    kept: dict[tuple[str, str], Run] = {}
    for (label, dataset), group in cells.items():
        group.sort(key=lambda r: (r.started or oldest, r.number))
        kept[(label, dataset)] = group[-1]
        if len(group) > 1:
            newest = group[-1]
            others = "; ".join(f"[{r.number}] {r.metrics_path} (started {r.run.get('started', '?')})" for r in group[:-1])
            warnings.append(f"{label}, {newest.dataset_title}: {len(group)} runs fill this cell; kept the newest "
                            f"[{newest.number}] {newest.metrics_path} (started {newest.run.get('started', '?')}), "
                            f"left out {others}")
    return kept


def _row_labels(runs: list[Run]) -> list[str]:
    """The paper's rows in its order (always, so the table shows what is not yet run), then ours."""
    labels = list(paper.MAIN)
    labels += sorted({run.label for run in runs} - set(labels))
    return labels


def _limit_warnings(kept: dict[tuple[str, str], Run]) -> list[str]:
    warnings = []
    for run in sorted(kept.values(), key=lambda r: r.number):
        limit = ((run.record or {}).get("arguments") or {}).get("limit")
        if limit:
            warnings.append(f"[{run.number}] {run.metrics_path}: only the first {limit} queries were evaluated "
                            f"(--limit {limit}); not comparable to the paper's full test set")
    return warnings


def _column_groups(kept: dict[tuple[str, str], Run]) -> list[tuple]:
    """(key, title, metric keys, short names): the paper's datasets, then any other dataset of ours."""
    groups = [(key, title, keys, short) for key, (title, _task, keys, short) in paper.DATASETS.items()]
    extra = sorted({(r.dataset, r.dataset_title, r.keys()) for r in kept.values() if r.dataset not in paper.DATASETS})
    groups += [(key, title, keys, keys) for key, title, keys in extra]
    return groups


def _table_lines(labels: list[str], groups: list[tuple], kept: dict[tuple[str, str], Run]) -> list[str]:
    """The Markdown table: a `paper` and an `ours` line for the paper's rows, an `ours` line for the others."""
    header = ["Model", ""] + [f"{title} {name}" if i == 0 else name
                              for _k, title, _keys, short in groups for i, name in enumerate(short)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 2 + "---:|" * (len(header) - 2)]
    for label in labels:
        paper_row = paper.MAIN.get(label)
        ours = []
        for key, _title, keys, _short in groups:
            run = kept.get((label, key))
            for metric in keys:
                value = run.metrics.get(metric) if run is not None else None
                ours.append(NONE if run is None else f"{_fmt(value)} [{run.number}]")
        if paper_row is not None:
            values = [_fmt(paper_row.get(key, {}).get(metric), 1) for key, _t, keys, _s in groups for metric in keys]
            lines.append("| " + " | ".join([label, "paper", *values]) + " |")
            lines.append("| " + " | ".join(["", "ours", *ours]) + " |")
        else:
            lines.append("| " + " | ".join([label, "ours", *ours]) + " |")
    return lines


def _notes(table: Table) -> list[str]:
    """What follows the table: the legend, the sources [k], the warnings and what was left out."""
    out = ["", f"{NONE}: not run (ours) or not reported (paper). Ours are scored with upstream's answer parser, "
               "as the paper's; each metrics file also holds the tolerant parser's numbers under `tolerant`. "
               + paper.RERUN_NOTE]
    if table.runs:
        out += ["", "Sources:", ""]
        out += [f"{run.number}. {_source_line(run)}" for run in table.runs]
    if table.warnings:
        out += ["", "Warnings:", ""] + [f"- {w}" for w in table.warnings]
    if table.without_record:
        out += ["", "Not in the table (no run record, so nothing says which model and protocol produced them):", ""]
        out += [f"- `{path}`: no run record" for path in table.without_record]
    if table.unreadable:
        out += ["", "Left out (unreadable, or nothing measured):", ""] + [f"- {text}" for text in table.unreadable]
    if table.skipped_sweeps:
        out += ["", "Left out: number-design sweeps (their own table is each folder's sweep.md; name a folder to "
                    "include it): " + ", ".join(f"`{path}`" for path in table.skipped_sweeps)]
    return out


def register(subparsers, name: str, help_text: str) -> None:
    parser = subparsers.add_parser(name, help=help_text, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="metrics files (*_metrics.json) or folders holding them")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE", help="also write the Markdown table to FILE")
    parser.set_defaults(func=_command)


def _command(args) -> int:
    try:
        table = build(args.paths)
    except ResultsError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    print(table.markdown, end="")
    for warning in table.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for path in table.without_record:
        print(f"warning: {path}: no run record; left out of the table", file=sys.stderr)
    for text in table.unreadable:
        print(f"warning: {text}", file=sys.stderr)
    if args.out is not None:
        try:
            write_text(args.out, table.markdown)
        except OSError as err:
            print(f"error: cannot write {args.out}: {err.strerror or err}", file=sys.stderr)
            return 2
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
