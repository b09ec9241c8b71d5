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
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout's numpro, installed or not
from numpro.jsonio import JsonInputError  # noqa: E402
from numpro.metrics.hd import evaluate_hd_file  # noqa: E402
from numpro.metrics.report import add_script_arguments, finish_script, hd_payload, hd_summary, prediction_path  # noqa: E402
from numpro.protocol import NUMPRO_FT_FPS  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: python eval/metrics_hd.py --pred results/highlight_val_release_Qwen2-VL-7B-Instruct_numpro_0.5fps.jsonl "
        "--gt data/highlight_val_release.jsonl",
    )
    add_script_arguments(parser, fps=NUMPRO_FT_FPS,
                         fps_help="frame rate of the frame numbers in records without their own 'fps' field")
    parser.add_argument("--gt", "--gt_path", "--gt_file", required=True, help="QVHighlights ground truth (JSONL)")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    pred = prediction_path(parser, args)
    try:
        report = evaluate_hd_file(pred, args.gt, default_fps=args.fps)
    except JsonInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    nothing = None if report.metrics["n_scored"] else "no prediction matches a ground-truth qid; nothing was measured"
    return finish_script(hd_summary(report, f"{pred} vs {args.gt}", args.show_unparsed),
                         hd_payload(report, pred, args.gt), pred, args.out, nothing)


if __name__ == "__main__":
    sys.exit(main())
