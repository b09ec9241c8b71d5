"""Printing and saving metric results: the metric scripts and the eval runners show the same."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from numpro.jsonio import write_json
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
    lines = [f"Moment retrieval: {title}", format_table(m, MR_KEYS)]
    swapped = " (swapped)" if m.get("swap_reversed") else ""
    lines.append(
        f"  queries {m['n']}: parsed {m['n_parsed']}, failed to parse {m['n_unparsed']} (scored IoU 0), "
        f"reversed {m['n_reversed']}{swapped}, parsed only by a fallback rule {m['n_fallback']}"
    )
    if m.get("status"):
        lines.append("  status: " + ", ".join(f"{k} {v}" for k, v in m["status"].items()))
    if m["n_duplicate_ids"]:
        lines.append(f"  warning: {m['n_duplicate_ids']} records repeat an id already seen (each is scored)")
    for query in report.unparsed[:show_unparsed]:
        lines.append(f"  unparsed id {query.id}: {shorten(query.answer.raw) or '(empty answer)'}")
    return "\n".join(lines)


def mr_payload(report: MRReport, pred_path: str | os.PathLike) -> dict:
    return dict(report.metrics, pred_file=str(pred_path), unparsed_ids=[q.id for q in report.unparsed])


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
    if m.get("status"):
        lines.append("  status: " + ", ".join(f"{k} {v}" for k, v in m["status"].items()))
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
    )


def save_metrics(path: str | os.PathLike, payload: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, payload)
    return path
