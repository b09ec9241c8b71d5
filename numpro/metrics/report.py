"""Printing and saving metric results: the metric scripts and the eval runners show the same."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from numpro.jsonio import read_json_object, write_json
from numpro.metrics.hd import HDReport
from numpro.metrics.mr import MRReport

MR_KEYS = ("R@0.3", "R@0.5", "R@0.7", "mIoU")
HL_KEYS = tuple(f"HL-min-{level}-{kind}" for level in ("Fair", "Good", "VeryGood") for kind in ("mAP", "Hit1"))
QVH_MR_KEYS = (
    "MR-full-mAP",
    "MR-full-mAP@0.5",
    "MR-full-mAP@0.75",
    "MR-full-R1@0.5",
    "MR-full-R1@0.7",
    "MR-short-mAP",
    "MR-middle-mAP",
    "MR-long-mAP",
)


def default_out_path(pred_path: str | os.PathLike) -> Path:
    """`<pred stem>_metrics.json` beside the predictions."""
    pred_path = Path(pred_path)
    return pred_path.with_name(f"{pred_path.stem}_metrics.json")


def format_table(metrics: dict, keys: Iterable[str]) -> str:
    """Two aligned columns, `key  value`, for the keys present (floats with 2 decimals)."""
    rows = [(key, metrics[key]) for key in keys if key in metrics]
    width = max((len(key) for key, _ in rows), default=0)
    return "\n".join(
        f"  {key:<{width}}  {value:>7.2f}" if isinstance(value, float) else f"  {key:<{width}}  {value:>7}"
        for key, value in rows
    )


def shorten(text: str, limit: int = 100) -> str:
    """One line of at most `limit` characters, for showing raw answers."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def mr_summary(report: MRReport, title: str, show_unparsed: int = 3) -> str:
    m = report.metrics
    headline = ("  seconds parser (--stamp_text seconds):" if m.get("parser", "").startswith("seconds")
                else "  upstream's parser (the paper's numbers):")
    lines = [f"Moment retrieval: {title}", headline, format_table(m, MR_KEYS)]
    tolerant = m.get("tolerant")
    if tolerant:
        lines.append("  tolerant parser (+ fallback rules; not comparable to the paper): "
                     + " / ".join(f"{key} {tolerant[key]:.2f}" for key in MR_KEYS)
                     + f" (parsed {tolerant['n_parsed']}, {tolerant['n_fallback']} only by a fallback)")
    swapped = " (swapped)" if m.get("swap_reversed") else ""
    no_answer = m["n"] - m["n_answered"]
    lines.append(
        f"  queries {m['n']}: answered {m['n_answered']}, parsed {m['n_parsed']}, failed to parse {m['n_unparsed']} "
        f"(scored IoU 0), reversed {m['n_reversed']}{swapped}"
        + (f", empty answers {m['n_empty_answers']}" if m.get("n_empty_answers") else "")
    )
    failures = {k: v for k, v in m.get("status", {}).items() if k != "ok"}
    if no_answer:
        kinds = ", ".join(f"{kind} {count}" for kind, count in failures.items())
        lines.append(f"  no answer (scored IoU 0): {no_answer} ({kinds})")
    if m["n_duplicate_ids"]:
        lines.append(f"  warning: {m['n_duplicate_ids']} older records repeat an id; only the newest of each counts")
    for query in report.unparsed[:show_unparsed]:
        lines.append(f"  unparsed id {query.id}: {shorten(query.answer.raw) or '(empty answer)'}")
    return "\n".join(lines)


def run_fields(pred_path: str | os.PathLike) -> dict:
    """The run record beside a predictions file, so a metrics file says what produced it."""
    from numpro.evaluation import run_record

    path = run_record.record_path(pred_path)
    record = read_json_object(path)
    return {"run": run_record.summary_fields(record), "run_record": path.name} if record else {}


def mr_payload(report: MRReport, pred_path: str | os.PathLike) -> dict:
    return dict(report.metrics, pred_file=str(pred_path), unparsed_ids=[q.id for q in report.unparsed],
                **run_fields(pred_path))


def hd_summary(report: HDReport, title: str, show_unparsed: int = 3) -> str:
    m = report.metrics
    lines = [f"QVHighlights: {title}", format_table(m, HL_KEYS + QVH_MR_KEYS)]
    lines.append(
        f"  queries {m['n']}: scored {m['n_scored']}, missing from predictions {m['n_missing']} "
        f"(all-zero saliency), ignored extra predictions {m['n_extra']}"
    )
    if m["n_scored"] == 0 and m["n_extra"]:
        lines.append("  warning: no prediction qid matches the ground truth (are the qids of the same type?)")
    if m["n_answers"]:
        lines.append(
            f"  answers {m['n_answers']}: parsed {m['n_parsed']}, failed to parse {m['n_unparsed']} (all-zero saliency)"
        )
    failures = {k: v for k, v in m.get("status", {}).items() if k != "ok"}
    if failures:
        lines.append("  no answer (all-zero saliency): " + ", ".join(f"{k} {v}" for k, v in failures.items()))
    if m["n_duplicate_qids"]:
        lines.append(f"  warning: {m['n_duplicate_qids']} records repeat a qid (the last one is used)")
    for qid, raw in report.unparsed[:show_unparsed]:
        lines.append(f"  unparsed qid {qid}: {shorten(raw) or '(empty answer)'}")
    return "\n".join(lines)


def hd_payload(report: HDReport, pred_path: str | os.PathLike, gt_path: str | os.PathLike) -> dict:
    return dict(
        report.metrics,
        pred_file=str(pred_path),
        gt_file=str(gt_path),
        unparsed_qids=[qid for qid, _ in report.unparsed],
        missing_qids=report.missing,
        **run_fields(pred_path),
    )


def save_metrics(path: str | os.PathLike, payload: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, payload)
    return path


# The two metric scripts (eval/metrics_mr.py, eval/metrics_hd.py): the same flags and the same ending.
def add_script_arguments(parser, *, fps: float, fps_help: str) -> None:
    """PRED (positional or --pred), --fps, --out and --show_unparsed, spelled alike in both scripts."""
    from numpro.argtypes import nonnegative_int, positive_float
    from numpro.cli_args import add_flag

    parser.add_argument("pred", metavar="PRED", nargs="?", help="predictions (see above); or --pred")
    add_flag(parser, "--pred", "--submission_path", dest="pred_flag", metavar="PRED", help="the same as PRED")
    add_flag(parser, "--fps", type=positive_float, default=fps, help=fps_help + " (default: %(default)s)")
    add_flag(parser, "--out", "--save_path", help="metrics JSON to write (default: <PRED stem>_metrics.json beside PRED)")
    add_flag(parser, "--show_unparsed", type=nonnegative_int, default=3, metavar="N",
             help="print the first N answers that failed to parse (default: %(default)s)")


def prediction_path(parser, args) -> str:
    """PRED given once, positionally or as --pred (argparse error otherwise)."""
    if (args.pred is None) == (args.pred_flag is None):
        parser.error("give the predictions once: PRED or --pred PRED")
    return args.pred if args.pred is not None else args.pred_flag


def finish_script(summary: str, payload: dict, pred: str, out: str | None, nothing_measured: str | None) -> int:
    """Print, write the metrics file, and the exit status of the convention (numpro/cli_args.py)."""
    import sys

    print(summary)
    payload = dict(payload, measured=not nothing_measured)
    if nothing_measured:
        payload["not_measured_because"] = nothing_measured
    try:
        path = save_metrics(out or default_out_path(pred), payload)
    except OSError as err:
        print(f"error: cannot write the metrics file: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    if nothing_measured:
        print(f"error: {nothing_measured}", file=sys.stderr)
        return 1
    return 0
