"""Evaluation metrics: moment retrieval (mr) and QVHighlights highlight detection (hd)."""

from numpro.metrics.hd import (
    HDReport,
    average_precision,
    detection_ap,
    evaluate_hd_file,
    evaluate_hd_records,
    gt_saliency_matrix,
    highlight_metrics,
    hit_at_one,
    moment_metrics,
    saliency_from_frames,
)
from numpro.metrics.mr import MRReport, evaluate_mr_file, score_mr_records, summarize_ious, temporal_iou

__all__ = [
    "HDReport",
    "MRReport",
    "average_precision",
    "detection_ap",
    "evaluate_hd_file",
    "evaluate_hd_records",
    "evaluate_mr_file",
    "gt_saliency_matrix",
    "highlight_metrics",
    "hit_at_one",
    "moment_metrics",
    "saliency_from_frames",
    "score_mr_records",
    "summarize_ious",
    "temporal_iou",
]
