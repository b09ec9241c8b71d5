"""Moment-retrieval metrics (R@0.3/0.5/0.7, mIoU) for NumPro predictions.

Reads our JSON Lines records (each carries its own `fps`) or upstream's JSON list of
{id, response, gt_start, gt_end, pred_start, pred_end, duration} (frames numbered at 0.5 FPS).
The span is always re-parsed from `response`; an answer that does not parse scores IoU 0 and
stays in the denominator. The headline R@m/mIoU parse with upstream's regex, as the paper's
numbers did; the tolerant fallback rules are reported beside them under `tolerant`. An id
repeated in the file counts once: its newest (last) record.
"""

import argparse
import sys
from pathlib import Path

try:
    import numpro.metrics  # noqa: F401  (installed with `pip install -e .`)
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numpro.jsonio import JsonInputError
from numpro.metrics.mr import UPSTREAM_FPS, evaluate_mr_file
from numpro.metrics.report import default_out_path, mr_payload, mr_summary, save_metrics


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: python eval/metrics_mr.py results/charades_test_LongVA-7B-DPO_longva_7b_dpo_NumPro_FT_numpro_0.5fps.jsonl",
    )
    parser.add_argument("pred", metavar="PRED", help="predictions: our JSONL records or upstream's JSON list")
    parser.add_argument(
        "--fps",
        type=float,
        default=UPSTREAM_FPS,
        help="frame rate of the numbering for records without their own 'fps' field "
        "(upstream's files); records that carry 'fps' always use it (default: %(default)s)",
    )
    parser.add_argument(
        "--swap_reversed",
        "--swap-reversed",
        action="store_true",
        help="swap spans given end-before-start (upstream keeps them, so they score 0)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="kept for old command lines: the headline numbers always use upstream's regex (the paper's parser); "
        "the tolerant fallbacks are reported beside them under 'tolerant'",
    )
    parser.add_argument("--out", help="metrics JSON to write (default: <PRED stem>_metrics.json beside PRED)")
    parser.add_argument("--show_unparsed", "--show-unparsed", type=int, default=3, metavar="N",
                        help="print the first N answers that failed to parse (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.fps <= 0:
        print("error: --fps must be positive", file=sys.stderr)
        return 2
    try:
        report = evaluate_mr_file(args.pred, default_fps=args.fps, swap_reversed=args.swap_reversed)
    except JsonInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(mr_summary(report, args.pred, args.show_unparsed))
    payload = mr_payload(report, args.pred)
    try:
        out = save_metrics(args.out or default_out_path(args.pred), payload)
    except OSError as err:
        print(f"error: cannot write the metrics file: {err}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    if report.metrics["n_answered"] == 0:
        print("error: no record holds an answer (every query failed: see the status counts); nothing was measured", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
