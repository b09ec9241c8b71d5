"""Printing and saving metric results: the metric scripts and the eval runners show the same."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from numpro.jsonio import JsonInputError, read_json, write_json
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
    if not path.is_file():
        return {}
    try:
        record = read_json(path)
    except JsonInputError:
        return {}
    return {"run": run_record.summary_fields(record), "run_record": path.name}


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
