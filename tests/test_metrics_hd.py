"""QVHighlights metrics, expected values worked out by hand from the official definitions."""

import numpy as np
import pytest

from numpro.jsonio import JsonInputError
from numpro.metrics.hd import (
    average_precision,
    detection_ap,
    evaluate_hd_records,
    fit_length,
    gt_saliency_matrix,
    highlight_metrics,
    hit_at_one,
    moment_metrics,
    saliency_from_frames,
)

# Average precision (highlight) --------------------------------------------------------------


def test_ap_is_the_mean_of_interpolated_precision_over_recall_levels():
    # ranked labels 0,1,1,1: points (p, r) = (0, 0), (1/2, 1/3), (2/3, 2/3), (3/4, 1).
    # Best precision at recall >= 1/3, 2/3, 1 is 3/4 each: AP = 3/4.
    # (sklearn's step-wise AP would be (1/2 + 2/3 + 3/4) / 3 = 0.639.)
    assert average_precision([0, 1, 1, 1], [0.9, 0.8, 0.7, 0.6]) == pytest.approx(0.75)


def test_ap_alternating():
    # ranked 1,0,1,0: recall 1/2 at precision 1, recall 1 at best precision 2/3: AP = 5/6
    assert average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.6]) == pytest.approx(5 / 6)


def test_ap_ties_form_one_threshold():
    # one threshold over two tied clips, one positive: precision 1/2 at recall 1, whatever the order
    assert average_precision([1, 0], [1.0, 1.0]) == pytest.approx(0.5)
    assert average_precision([0, 1], [1.0, 1.0]) == pytest.approx(0.5)
    # thresholds 0.5 (1 of 2 positive, recall 1/2) and 0.2 (2 of 4, recall 1): AP = 1/2
    assert average_precision([1, 0, 0, 1], [0.5, 0.5, 0.2, 0.2]) == pytest.approx(0.5)


def test_ap_all_zero_prediction():
    # a single threshold takes every clip: precision 1/3 at recall 1
    assert average_precision([0, 1, 0], [0.0, 0.0, 0.0]) == pytest.approx(1 / 3)


def test_ap_column_without_positive_is_zero_and_all_positive_is_one():
    assert average_precision([0, 0, 0], [0.3, 0.2, 0.1]) == 0.0
    assert average_precision([1, 1, 1], [0.0, 0.9, 0.1]) == 1.0


def test_ap_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        average_precision([0, 1], [0.1])


# Clips ---------------------------------------------------------------------------------------------


def test_gt_matrix_has_int_duration_over_two_rows():
    gt = {"qid": 1, "duration": 9, "relevant_clip_ids": [1, 3], "saliency_scores": [[4, 2, 0], [1, 1, 1]]}
    expected = np.array([[0, 0, 0], [4, 2, 0], [0, 0, 0], [1, 1, 1]])  # int(9 / 2) = 4 clips
    assert np.array_equal(gt_saliency_matrix(gt), expected)


def test_gt_matrix_rejects_a_clip_past_the_end():
    with pytest.raises(ValueError, match="outside"):
        gt_saliency_matrix({"duration": 4, "relevant_clip_ids": [2], "saliency_scores": [[1, 1, 1]]})


def test_saliency_from_frames_at_half_fps():
    # frame k is clip k; clip 2 named twice -> (3 + 4) / 2; frame 5 is past the 4 clips
    saliency = saliency_from_frames([0, 2, 2, 5], [1.0, 3.0, 4.0, 9.0], n_clips=4, fps=0.5)
    assert saliency.tolist() == [1.0, 0.0, 3.5, 0.0]


def test_saliency_from_frames_at_one_fps():
    # at 1 FPS frames 0 and 1 are clip 0, frames 2 and 3 clip 1
    assert saliency_from_frames([0, 1, 2, 3], [1, 2, 3, 4], n_clips=2, fps=1.0).tolist() == [1.5, 3.5]


def test_fit_length():
    assert fit_length([1, 2, 3], 2).tolist() == [1, 2]
    assert fit_length([1], 3).tolist() == [1, 0, 0]
    assert fit_length([], 2).tolist() == [0, 0]


def test_hit_at_one():
    labels = np.array([[0, 0, 0], [0, 1, 0], [1, 0, 0]], dtype=bool)
    assert hit_at_one([0.1, 0.9, 0.9], labels) == 1.0  # tie: the first top clip (1) counts
    assert hit_at_one([0.9, 0.1, 0.1], labels) == 0.0
    assert hit_at_one([0.0, 0.0, 0.0], labels) == 0.0  # all-zero picks clip 0
    # the argmax is over the prediction as given: a top clip past the video is a miss
    assert hit_at_one([0.0, 0.5, 0.0, 0.0, 5.0], labels) == 0.0
    assert hit_at_one([], labels) == 0.0


# Highlight metrics ------------------------------------------------------------------------------

# One query, 4 clips, 3 annotators; prediction ranks clips 1, 2, 0, 3.
GT = np.array([[4, 0, 2], [2, 4, 2], [0, 0, 3], [0, 0, 0]], dtype=float)
PRED = [0.1, 0.9, 0.5, 0.0]


def test_highlight_metrics_one_query():
    m = highlight_metrics({1: PRED}, {1: GT})
    # Fair (>= 2): columns ranked -> 1,0,1,0 (AP 5/6), 1,0,0,0 (1), 1,1,1,0 (1)
    assert m["HL-min-Fair-mAP"] == 94.44 and m["HL-min-Fair-Hit1"] == 100.0
    # Good (>= 3): ranked 0,0,1,0 (1/3), 1,0,0,0 (1), 0,1,0,0 (1/2)
    assert m["HL-min-Good-mAP"] == 61.11 and m["HL-min-Good-Hit1"] == 100.0
    # VeryGood (>= 4): 0,0,1,0 (1/3), 1,0,0,0 (1), no positive (0)
    assert m["HL-min-VeryGood-mAP"] == 44.44 and m["HL-min-VeryGood-Hit1"] == 100.0


def test_highlight_prediction_longer_than_the_video():
    # AP uses the first 4 scores (same as PRED); HIT@1's top clip (index 4) is past the end
    m = highlight_metrics({1: PRED + [5.0]}, {1: GT})
    assert m["HL-min-VeryGood-mAP"] == 44.44 and m["HL-min-VeryGood-Hit1"] == 0.0


def test_highlight_prediction_shorter_than_the_video():
    # [0.1, 0.9] padded to [0.1, 0.9, 0, 0] ranks clip 1, clip 0, then clips 2 and 3 tied at 0.
    # Good columns: clip 0 positive -> found second, precision 1/2; clip 1 -> 1; clip 2 -> found
    # only at the tied threshold, precision 1/4. (1/2 + 1 + 1/4) / 3 = 0.58333
    m = highlight_metrics({1: [0.1, 0.9]}, {1: GT})
    assert m["HL-min-Good-mAP"] == 58.33


def test_all_positive_column_scores_one_whatever_the_ranking():
    gt = np.array([[4, 0, 0], [4, 4, 0]], dtype=float)
    m = highlight_metrics({1: [0.0, 1.0]}, {1: gt})
    # VeryGood columns: all positive (1), ranked 1,0 (1), none (0)
    assert m["HL-min-VeryGood-mAP"] == 66.67


# Records: NumPro answers, missing queries, official submissions ---------------------------------


def gt_record(qid, duration, ids, scores, windows=None):
    return {"qid": qid, "query": "q", "vid": f"v{qid}", "duration": duration, "relevant_clip_ids": ids,
            "saliency_scores": scores, "relevant_windows": windows or [[0, 2]]}


GT_RECORDS = [
    gt_record(1, 8, [0, 1, 2], GT[:3].astype(int).tolist()),  # duration 8: 4 clips, as GT above
    gt_record(2, 4, [1], [[4, 4, 4]]),  # 2 clips: clip 1 positive for everyone
]


def test_answers_through_the_timeline_and_missing_queries():
    answer = "The highlight frames are in the 0, 1, 2 frames. Their saliency scores are 0.1, 0.9, 0.5."
    report = evaluate_hd_records([{"qid": 1, "response": answer, "status": "ok"}], GT_RECORDS)
    m = report.metrics
    # query 2 is missing: all-zero saliency [0, 0] -> every column ranks both clips at one
    # threshold: AP 1/2; HIT@1 picks clip 0, which nobody marked: miss.
    # VeryGood mAP = (1/3 + 1 + 0 + 1/2 + 1/2 + 1/2) / 6 = 0.47222; HIT@1 = (1 + 0) / 2
    assert m["HL-min-VeryGood-mAP"] == 47.22 and m["HL-min-VeryGood-Hit1"] == 50.0
    assert m["n"] == 2 and m["n_missing"] == 1 and m["n_scored"] == 1 and report.missing == [2]
    assert m["n_answers"] == 1 and m["n_parsed"] == 1 and m["n_unparsed"] == 0
    assert m["status"] == {"ok": 1}
    assert "MR-full-mAP" not in m


def test_clip_named_twice_averages():
    # clip 1 named twice: (0.5 + 1.3) / 2 = 0.9, so the saliency is PRED again
    answer = "The highlight frames are in the 1, 1, 2, 0 frames. Their saliency scores are 0.5, 1.3, 0.5, 0.1"
    m = evaluate_hd_records([{"qid": 1, "response": answer}], GT_RECORDS[:1]).metrics
    assert m["HL-min-Good-mAP"] == 61.11


def test_unparsed_answer_scores_all_zero_and_is_counted():
    records = [{"qid": 1, "response": "I am not sure."}, {"qid": 2, "response": None, "status": "missing_video"}]
    report = evaluate_hd_records(records, GT_RECORDS)
    m = report.metrics
    # both all-zero: query 1 columns VeryGood: clip 0 of 4 (1/4), clip 1 of 4 (1/4), none (0);
    # query 2: 1/2 each. mAP = (1/4 + 1/4 + 0 + 3/2) / 6 = 0.33333
    assert m["HL-min-VeryGood-mAP"] == 33.33
    # HIT@1 at clip 0: query 1 clip 0 has a 4 (hit), query 2 clip 0 is empty (miss)
    assert m["HL-min-VeryGood-Hit1"] == 50.0
    # the missing video is no answer, so no parse failure; it is counted by its status
    assert m["n_answers"] == 1 and m["n_unparsed"] == 1 and m["n_missing"] == 0
    assert m["status"] == {"missing_video": 1} and [qid for qid, _ in report.unparsed] == [1]


def test_precomputed_fields_take_priority():
    # pred_saliency_scores wins over pred_frames/pred_scores, which win over the answer
    given = {"qid": 1, "pred_saliency_scores": PRED, "pred_frames": [3], "pred_scores": [5.0], "response": "x"}
    m = evaluate_hd_records([given], GT_RECORDS[:1]).metrics
    assert m["HL-min-Good-mAP"] == 61.11 and m["n_unparsed"] == 1  # the answer itself did not parse
    frames = {"qid": 1, "pred_frames": [1, 2, 0], "pred_scores": [0.9, 0.5, 0.1]}
    assert evaluate_hd_records([frames], GT_RECORDS[:1]).metrics["HL-min-Good-mAP"] == 61.11


def test_record_fps_is_used():
    # at 1 FPS frames 2 and 3 are clip 1, frames 4 and 5 clip 2, frame 0 clip 0
    answer = "The highlight frames are 2, 3, 4, 5, 0. Their saliency scores are 0.9, 0.9, 0.5, 0.5, 0.1"
    m = evaluate_hd_records([{"qid": 1, "fps": 1, "response": answer}], GT_RECORDS[:1]).metrics
    assert m["HL-min-Good-mAP"] == 61.11


def test_extra_and_duplicate_predictions():
    records = [
        {"qid": 1, "pred_saliency_scores": [0, 0, 0, 0]},
        {"qid": 1, "pred_saliency_scores": PRED},  # last wins
        {"qid": 99, "pred_saliency_scores": [1.0]},
    ]
    m = evaluate_hd_records(records, GT_RECORDS[:1]).metrics
    assert m["HL-min-Good-mAP"] == 61.11 and m["n_extra"] == 1 and m["n_duplicate_qids"] == 1


def test_bad_prediction_names_the_record():
    with pytest.raises(JsonInputError, match=r"record 1 \(qid 1\).*pred_saliency_scores"):
        evaluate_hd_records([{"qid": 1, "pred_saliency_scores": "high"}], GT_RECORDS[:1], pred_source="p.jsonl")
    with pytest.raises(JsonInputError, match="record 1: missing 'qid'"):
        evaluate_hd_records([{"response": "x"}], GT_RECORDS[:1])
    with pytest.raises(JsonInputError, match="no pred_saliency_scores"):
        evaluate_hd_records([{"qid": 1}], GT_RECORDS[:1])


# Moment retrieval (official) --------------------------------------------------------------------


def test_detection_ap_per_threshold():
    assert detection_ap([[0, 10]], [[0, 10, 0.9]]).tolist() == [1.0] * 10
    # windows by score: [0,5] (IoU 0.5) then [0,10] (IoU 1).
    # tIoU 0.5: the first matches, the second finds the truth taken: precision 1 at recall 1 -> 1.
    # tIoU >= 0.55: the first misses, the second matches: precision 1/2 at recall 1 -> 1/2.
    ap = detection_ap([[0, 10]], [[0, 10, 0.5], [0, 5, 0.9]])
    assert ap.tolist() == [1.0] + [0.5] * 9
    assert detection_ap([[0, 10]], []).tolist() == [0.0] * 10


def test_detection_ap_greedy_matching_two_truths():
    # both windows match a different truth: recall 1/2 then 1, precision 1: AP 1
    assert detection_ap([[0, 10], [20, 30]], [[20, 30, 0.9], [0, 10, 0.8]]).tolist() == [1.0] * 10
    # two copies of one window: only one truth can be taken; recall 1/2 at precision 1 -> 1/2
    assert detection_ap([[0, 10], [20, 30]], [[0, 10, 0.9], [0, 10, 0.8]]).tolist() == [0.5] * 10


def test_moment_metrics_buckets_top10_and_r1():
    gts = {
        "A": [[0, 8]],  # short
        "B": [[0, 20]],  # middle
        "C": [[0, 40], [50, 58]],  # long and short
        "D": [[10, 20]],  # short (length 10 is in (0, 10])
    }
    preds = {
        "A": [[0, 8, 1.0]],
        "B": [[0, 10, 1.0]],  # IoU 0.5: AP 1 at tIoU 0.5 only -> 0.1; R1 IoU 0.5
        "C": [[50, 58, 0.9], [0, 40, 0.8]],
        # D missing
    }
    m = moment_metrics(preds, gts)
    # full: AP A 1, B 0.1, C 1, D 0 -> 2.1 / 4
    assert m["MR-full-mAP"] == 52.5
    assert m["MR-full-mAP@0.5"] == 75.0 and m["MR-full-mAP@0.75"] == 50.0
    assert m["MR-full-R1@0.5"] == 75.0 and m["MR-full-R1@0.7"] == 50.0
    # short: A 1; C against [50,58] only: hit then a false positive -> 1; D 0
    assert m["MR-short-mAP"] == 66.67 and m["MR-short-n"] == 3
    assert m["MR-middle-mAP"] == 10.0 and m["MR-middle-n"] == 1
    # long: C against [0,40]: the first window misses, the second hits -> 1/2
    assert m["MR-long-mAP"] == 50.0 and m["MR-long-n"] == 1


def test_only_the_first_ten_windows_count_and_r1_takes_the_first_listed():
    gts = {1: [[0, 10]]}
    misses = [[20 + i, 21 + i, 0.9] for i in range(10)]
    assert moment_metrics({1: misses + [[0, 10, 1.0]]}, gts)["MR-full-mAP"] == 0.0
    # R1 uses the first listed window, even when a later one has a higher score
    m = moment_metrics({1: [[20, 30, 0.1], [0, 10, 0.9]]}, gts)
    assert m["MR-full-R1@0.5"] == 0.0 and m["MR-full-mAP"] == 100.0


def test_windows_in_records_turn_on_moment_metrics():
    records = [{"qid": 1, "pred_saliency_scores": PRED, "pred_relevant_windows": [[0, 2, 1.0]]}]
    m = evaluate_hd_records(records, GT_RECORDS).metrics
    # query 1 perfect, query 2 (missing) fails: full mAP 1/2, R1 1/2
    assert m["MR-full-mAP"] == 50.0 and m["MR-full-R1@0.7"] == 50.0 and m["n_missing"] == 1


def test_a_bad_record_fps_is_an_error_not_the_default():
    answer = "The highlight frames are 0. Their saliency scores are 0.9"
    for fps, message in ((0, "fps must be positive"), ("fast", "field 'fps' must be a number")):
        with pytest.raises(JsonInputError, match=rf"record 1 \(qid 1\): {message}"):
            evaluate_hd_records([{"qid": 1, "fps": fps, "response": answer}], GT_RECORDS[:1])


def test_the_ground_truth_is_validated_by_the_qvhighlights_reader():
    with pytest.raises(JsonInputError, match=r"ground truth: record 2: duplicate qid '1'"):
        evaluate_hd_records([], GT_RECORDS[:1] * 2)
    with pytest.raises(JsonInputError, match="holds 7, outside 0..4"):
        evaluate_hd_records([], [gt_record(1, 8, [0], [[7, 0, 0]])])
