"""Moment-retrieval metrics (R@0.3/0.5/0.7, mIoU) for NumPro predictions.

Reads our JSON Lines records (each carries its own `fps`) or upstream's JSON list of
{id, response, gt_start, gt_end, pred_start, pred_end, duration} (frames numbered at 0.5 FPS).
The span is always re-parsed from `response`; an answer that does not parse scores IoU 0 and
stays in the denominator. The headline R@m/mIoU parse with upstream's regex, as the paper's
numbers did; the tolerant fallback rules are reported beside them under `tolerant`. An id
repeated in the file counts once: its newest (last) record.
"""

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout's numpro, installed or not
from numpro.jsonio import JsonInputError  # noqa: E402
from numpro.metrics.mr import UPSTREAM_FPS, evaluate_mr_file  # noqa: E402
from numpro.metrics.report import add_script_arguments, finish_script, mr_payload, mr_summary, prediction_path  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: python eval/metrics_mr.py results/charades_test_LongVA-7B-DPO_longva_7b_dpo_NumPro_FT_numpro_0.5fps.jsonl",
    )
    add_script_arguments(parser, fps=UPSTREAM_FPS,
                         fps_help="frame rate of the numbering for records without their own 'fps' field "
                                  "(upstream's files); records that carry 'fps' always use it")
    parser.add_argument("--swap_reversed", "--swap-reversed", action="store_true",
                        help="swap spans given end-before-start (upstream keeps them, so they score 0)")
    parser.add_argument("--strict", action="store_true",
                        help="kept for old command lines: the headline numbers always use upstream's regex (the "
                             "paper's parser); the tolerant fallbacks are reported beside them under 'tolerant'")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    pred = prediction_path(parser, args)
    try:
        report = evaluate_mr_file(pred, default_fps=args.fps, swap_reversed=args.swap_reversed)
    except JsonInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    nothing = None if report.metrics["n_answered"] else \
        "no record holds an answer (every query failed: see the status counts); nothing was measured"
    return finish_script(mr_summary(report, pred, args.show_unparsed), mr_payload(report, pred), pred, args.out,
                         nothing)


if __name__ == "__main__":
    sys.exit(main())
