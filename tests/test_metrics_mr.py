"""Moment-retrieval metrics, expected values worked out by hand from SPEC 7."""

import json

import pytest

from numpro.jsonio import JsonInputError
from numpro.metrics.mr import evaluate_mr_file, score_mr_records, summarize_ious, temporal_iou


@pytest.mark.parametrize(
    "pred, gt, expected",
    [
        ((0, 10), (5, 15), 5 / 15),  # overlap 5, union 15
        ((2, 4), (0, 10), 2 / 10),  # inside
        ((0, 10), (0, 10), 1.0),
        ((0, 5), (5, 10), 0.0),  # touching
        ((0, 2), (3, 5), 0.0),  # disjoint
        ((5, 5), (0, 10), 0.0),  # zero-length prediction
        ((5, 5), (5, 5), 0.0),  # zero union scores 0, not a division error
        ((8, 2), (0, 10), 0.0),  # reversed: min(2,10) - max(8,0) < 0
    ],
)
def test_temporal_iou(pred, gt, expected):
    assert temporal_iou(pred, gt) == pytest.approx(expected)


def test_summary_counts_ties_at_thresholds():
    # IoU exactly at a threshold counts (>=): R@0.3 = 3/4, R@0.5 = 2/4, R@0.7 = 1/4, mIoU = 1.8/4
    m = summarize_ious([1.0, 0.5, 0.3, 0.0])
    assert m == {"R@0.3": 75.0, "R@0.5": 50.0, "R@0.7": 25.0, "mIoU": 45.0, "n": 4}


def test_summary_rounds_to_two_decimals():
    m = summarize_ious([1 / 3, 0.0, 0.0])
    assert m["R@0.3"] == 33.33 and m["mIoU"] == 11.11 and m["R@0.5"] == 0.0


def test_summary_of_nothing():
    assert summarize_ious([]) == {"R@0.3": 0.0, "R@0.5": 0.0, "R@0.7": 0.0, "mIoU": 0.0, "n": 0}


def upstream(response, gt_start, gt_end, id=0):
    return {"id": id, "response": response, "gt_start": gt_start, "gt_end": gt_end,
            "pred_start": 0, "pred_end": 0, "duration": 30.0}


def test_upstream_records_at_half_fps_and_failures_in_denominator():
    records = [
        upstream("From Frame 2 to Frame 5", 4.0, 12.0, 1),  # [4, 10] s vs [4, 12]: 6 / 8 = 0.75
        upstream("I do not know", 0.0, 5.0, 2),  # unparsed: IoU 0, still counted
        upstream("From 5 to 2", 4.0, 10.0, 3),  # reversed, kept: IoU 0
    ]
    report = score_mr_records(records)
    m = report.metrics
    assert [q.iou for q in report.queries] == [0.75, 0.0, 0.0]
    assert report.queries[0].pred_seconds == (4.0, 10.0)
    assert m["n"] == 3 and m["n_parsed"] == 2 and m["n_unparsed"] == 1 and m["n_reversed"] == 1
    assert m["R@0.3"] == 33.33 and m["R@0.7"] == 33.33 and m["mIoU"] == 25.0
    assert [q.id for q in report.unparsed] == [2]

    swapped = score_mr_records(records, swap_reversed=True)
    # the third becomes [4, 10] s against [4, 10]: IoU 1; mIoU = 1.75 / 3
    assert [q.iou for q in swapped.queries] == [0.75, 0.0, 1.0]
    assert swapped.metrics["mIoU"] == 58.33 and swapped.metrics["R@0.7"] == 66.67


def test_record_fps_wins_over_default():
    record = dict(upstream("From Frame 3 to Frame 6", 3.0, 6.0), fps=1.0)
    assert score_mr_records([record], default_fps=0.5).queries[0].iou == 1.0
    # without its own fps the default numbering applies: [6, 12] s against [3, 6]
    assert score_mr_records([upstream("From 3 to 6", 3.0, 6.0)]).queries[0].iou == 0.0


def test_zero_length_spans_score_zero():
    # "2.5 to 2.5" at 0.5 FPS is [5, 5] s; against a zero-length truth the union is 0.
    # Upstream's regex takes integers only: the tolerant parser reads it, the headline does not.
    report = score_mr_records([upstream("From 2.5 to 2.5", 5.0, 5.0)])
    assert not report.queries[0].answer.ok
    assert report.queries[0].tolerant.ok and report.queries[0].tolerant_iou == 0.0
    report = score_mr_records([upstream("From 2 to 2", 4.0, 4.0)])
    assert report.queries[0].answer.ok and report.queries[0].iou == 0.0


def test_failed_records_and_statuses():
    records = [
        dict(upstream(None, 0.0, 4.0, "a"), fps=0.5, status="decode_error"),
        dict(upstream("From 0 to 2", 0.0, 4.0, "b"), fps=0.5, status="ok"),
    ]
    m = score_mr_records(records).metrics
    # a query without an answer is no parse failure, but it stays in the denominator
    assert m["n_answered"] == 1 and m["n_unparsed"] == 0 and m["status"] == {"decode_error": 1, "ok": 1}
    assert m["mIoU"] == 50.0 and m["n"] == 2


def test_headline_uses_upstreams_regex_and_tolerant_is_beside_it():
    records = [upstream("Frames 2-5", 4.0, 10.0, 1), upstream("From 2 to 5", 4.0, 10.0, 2)]
    m = score_mr_records(records).metrics
    # the paper's parser: only "From 2 to 5" parses
    assert m["n_parsed"] == 1 and m["mIoU"] == 50.0 and m["R@0.7"] == 50.0 and m["n_unparsed"] == 1
    assert m["tolerant"]["n_parsed"] == 2 and m["tolerant"]["n_fallback"] == 1
    assert m["tolerant"]["mIoU"] == 100.0 and m["tolerant"]["R@0.7"] == 100.0


def test_duplicate_ids_count_once_the_newest_winning():
    records = [upstream("From 0 to 1", 0.0, 2.0, 7), upstream("no idea", 0.0, 2.0, 8),
               upstream("From 5 to 9", 0.0, 2.0, 7)]
    report = score_mr_records(records)
    assert report.metrics["n_duplicate_ids"] == 1 and report.metrics["n"] == 2
    assert [q.id for q in report.queries] == [7, 8] and report.queries[0].answer.raw == "From 5 to 9"


def test_bad_record_names_the_record():
    with pytest.raises(JsonInputError, match=r"record 2 \(id 9\).*gt_end"):
        score_mr_records([upstream("From 0 to 1", 0, 2), upstream("x", 0, "late", 9)], source="f.json")


def test_json_list_and_jsonl_give_the_same(tmp_path):
    records = [upstream("From Frame 2 to Frame 5", 4.0, 12.0, 1), upstream("no", 0.0, 5.0, 2)]
    as_list = tmp_path / "upstream.json"
    as_list.write_text(json.dumps(records, indent=2))
    as_lines = tmp_path / "ours.jsonl"
    as_lines.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert evaluate_mr_file(as_list).metrics == evaluate_mr_file(as_lines).metrics


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    with pytest.raises(JsonInputError, match="no records"):
        evaluate_mr_file(path)
