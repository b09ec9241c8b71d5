"""QVHighlights metrics (official definitions) for highlight-detection predictions.

PRED may be our HD records (qid, response, pred_frames, pred_scores, pred_saliency_scores,
status), upstream's HD results (ground-truth records plus 'pred') or an official QVHighlights
submission (qid, pred_saliency_scores and/or pred_relevant_windows), as JSON Lines or a JSON
list. Per record the per-clip saliency is pred_saliency_scores when present, else built from
pred_frames/pred_scores, else parsed from the answer (frame k is clip k at 0.5 FPS; a clip
named twice gets the mean; unnamed clips 0). Ground-truth queries missing from PRED, and
answers that do not parse, score all-zero saliency and are counted.
Reports HL-min-{Fair,Good,VeryGood}-{mAP,Hit1} and, when windows are given, MR-full-mAP,
MR-full-mAP@0.5/0.75, MR-full-R1@0.5/0.7 and MR-{short,middle,long}-mAP.
GT is validated by the same reader as in the evaluation scripts and `numpro data qvhighlights`:
a malformed file (a missing field, a score outside 0..4, a repeated qid) stops with status 2.
"""

import argparse
import sys
from pathlib import Path

try:
    import numpro.metrics  # noqa: F401  (installed with `pip install -e .`)
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numpro.jsonio import JsonInputError
from numpro.metrics.hd import evaluate_hd_file
from numpro.metrics.report import default_out_path, hd_payload, hd_summary, save_metrics
from numpro.protocol import NUMPRO_FT_FPS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: python eval/metrics_hd.py --pred results/qwen2_vl_7b_hd.jsonl "
        "--gt data/qvhighlights/highlight_val_release.jsonl",
    )
    parser.add_argument("--pred", "--submission_path", required=True, help="predictions (see above)")
    parser.add_argument("--gt", "--gt_path", "--gt_file", required=True, help="QVHighlights ground truth (JSONL)")
    parser.add_argument(
        "--fps",
        type=float,
        default=NUMPRO_FT_FPS,
        help="frame rate of the frame numbers in records without their own 'fps' field (default: %(default)s)",
    )
    parser.add_argument("--out", "--save_path", help="metrics JSON to write (default: <PRED stem>_metrics.json beside PRED)")
    parser.add_argument("--show_unparsed", "--show-unparsed", type=int, default=3, metavar="N",
                        help="print the first N answers that failed to parse (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.fps <= 0:
        print("error: --fps must be positive", file=sys.stderr)
        return 2
    try:
        report = evaluate_hd_file(args.pred, args.gt, default_fps=args.fps)
    except JsonInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(hd_summary(report, f"{args.pred} vs {args.gt}", args.show_unparsed))
    payload = hd_payload(report, args.pred, args.gt)
    try:
        out = save_metrics(args.out or default_out_path(args.pred), payload)
    except OSError as err:
        print(f"error: cannot write the metrics file: {err}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    if report.metrics["n_scored"] == 0:
        print("error: no prediction matches a ground-truth qid; nothing was measured", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
