"""The metric scripts as a user runs them, and the official QVHighlights sample."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def reference_dir() -> Path:
    return Path(os.environ.get("NUMPRO_REFERENCE_DIR") or REPO.parent / "shared" / "reference")


def run(script, *args):
    return subprocess.run(
        [sys.executable, str(REPO / "eval" / script), *map(str, args)],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )


def gt_line(qid, duration, ids, scores, windows):
    return {"qid": qid, "query": "q", "duration": duration, "vid": f"v{qid}", "relevant_clip_ids": ids,
            "saliency_scores": scores, "relevant_windows": windows}


@pytest.mark.parametrize("script", ["metrics_mr.py", "metrics_hd.py"])
def test_help(script):
    result = run(script, "--help")
    assert result.returncode == 0 and "--out" in result.stdout and "--fps" in result.stdout


def test_mr_upstream_list_default_output(tmp_path):
    pred = tmp_path / "numpro_ft_charades.json"
    records = [
        {"id": 1, "response": "From Frame 2 to Frame 5", "gt_start": 4.0, "gt_end": 12.0,
         "pred_start": 2, "pred_end": 5, "duration": 30.0},
        {"id": 2, "response": "no idea", "gt_start": 0.0, "gt_end": 5.0, "pred_start": 0, "pred_end": 0,
         "duration": 30.0},
    ]
    pred.write_text(json.dumps(records))
    result = run("metrics_mr.py", pred)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "numpro_ft_charades_metrics.json"
    metrics = json.loads(out.read_text())
    # IoUs 0.75 and 0 (unparsed, still counted)
    assert metrics["R@0.3"] == 50.0 and metrics["R@0.7"] == 50.0 and metrics["mIoU"] == 37.5
    assert metrics["n"] == 2 and metrics["n_parsed"] == 1 and metrics["unparsed_ids"] == [2]
    assert "mIoU" in result.stdout and "37.50" in result.stdout
    assert "failed to parse 1" in result.stdout and "no idea" in result.stdout


def test_mr_our_jsonl_with_swap(tmp_path):
    pred = tmp_path / "preds.jsonl"
    pred.write_text(json.dumps({"id": "a", "response": "From 6 to 3", "gt_start": 3.0, "gt_end": 6.0,
                                "fps": 1.0, "status": "ok"}) + "\n")
    out = tmp_path / "m.json"
    assert json.loads((run("metrics_mr.py", pred, "--out", out), out.read_text())[1])["mIoU"] == 0.0
    result = run("metrics_mr.py", pred, "--swap_reversed", "--out", out)
    assert result.returncode == 0 and json.loads(out.read_text())["mIoU"] == 100.0


def test_mr_bad_input_names_file_and_line(tmp_path):
    pred = tmp_path / "broken.jsonl"
    pred.write_text('{"id": 1, "response": "From 1 to 2", "gt_start": 0, "gt_end": 4}\n{"id": 2,\n')
    result = run("metrics_mr.py", pred)
    assert result.returncode == 2
    assert "broken.jsonl: line 2" in result.stderr and "Traceback" not in result.stderr


def test_hd_records_and_missing_queries(tmp_path):
    gt = tmp_path / "gt.jsonl"
    gt.write_text("".join(json.dumps(r) + "\n" for r in [
        gt_line(1, 8, [1], [[4, 4, 4]], [[2, 4]]),
        gt_line(2, 4, [1], [[4, 4, 4]], [[2, 4]]),
    ]))
    pred = tmp_path / "hd.jsonl"
    answer = "The highlight frames are in the 1 frames. Their saliency scores are 4.5."
    pred.write_text(json.dumps({"qid": 1, "vid": "v", "query": "q", "response": answer, "status": "ok"}) + "\n")
    result = run("metrics_hd.py", "--pred", pred, "--gt", gt)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "hd_metrics.json").read_text())
    # query 1: clip 1 on top, the only positive: AP 1 and a hit. Query 2 missing: all-zero
    # saliency, AP 1/2 per column, HIT@1 at clip 0 misses. mAP 75, HIT@1 50.
    assert metrics["HL-min-VeryGood-mAP"] == 75.0 and metrics["HL-min-VeryGood-Hit1"] == 50.0
    assert metrics["n_missing"] == 1 and metrics["missing_qids"] == [2] and metrics["n_unparsed"] == 0
    assert "missing from predictions 1" in result.stdout


def test_hd_bad_gt_names_the_line(tmp_path):
    gt = tmp_path / "gt.jsonl"
    gt.write_text(json.dumps(gt_line(1, 4, [5], [[1, 1, 1]], [[10, 12]])) + "\n")
    pred = tmp_path / "p.jsonl"
    pred.write_text('{"qid": 1, "pred_saliency_scores": [0.1, 0.2]}\n')
    result = run("metrics_hd.py", "--pred", pred, "--gt", gt, "--out", tmp_path / "m.json")
    assert result.returncode == 2 and "gt.jsonl: line 1" in result.stderr and "outside" in result.stderr


@pytest.mark.parametrize("second, message", [
    (gt_line(1, 8, [1], [[1, 1, 1]], [[2, 4]]), "gt.jsonl: line 2: duplicate qid '1'"),
    (gt_line(2, 8, [1], [[1, 7, 1]], [[2, 4]]), "gt.jsonl: line 2 (qid 2): field 'saliency_scores' holds 7"),
])
def test_a_bad_gt_is_rejected_alike_by_the_metric_the_runner_and_the_data_tool(tmp_path, second, message):
    from numpro.datasets import qvhighlights
    from numpro.jsonio import JsonInputError

    gt = tmp_path / "gt.jsonl"
    gt.write_text("".join(json.dumps(r) + "\n" for r in [gt_line(1, 8, [1], [[4, 4, 4]], [[2, 4]]), second]))
    pred = tmp_path / "p.jsonl"
    pred.write_text('{"qid": 1, "pred_saliency_scores": [0.1, 0.2, 0.3, 0.4]}\n')
    metric = run("metrics_hd.py", "--pred", pred, "--gt", gt, "--out", tmp_path / "m.json")
    tool = subprocess.run([sys.executable, "-m", "numpro", "data", "qvhighlights", "--annotations", str(gt)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    for result in (metric, tool):
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(JsonInputError, match=re.escape(message)):
        qvhighlights.read(gt)  # the evaluation runner's reader


# Official scorer's results on its own sample (moment_detr standalone_eval, sample_val_preds.jsonl
# against highlight_val_release.jsonl): HL from the issue; the rest from running the official
# eval.py on these two files.
OFFICIAL_SAMPLE = {
    "HL-min-Fair-mAP": 67.77, "HL-min-Fair-Hit1": 66.45,
    "HL-min-Good-mAP": 58.09, "HL-min-Good-Hit1": 64.45,
    "HL-min-VeryGood-mAP": 35.65, "HL-min-VeryGood-Hit1": 55.55,
    "MR-full-mAP": 32.2, "MR-full-mAP@0.5": 54.96, "MR-full-mAP@0.75": 31.01,
    "MR-full-R1@0.5": 53.94, "MR-full-R1@0.7": 34.84,
    "MR-short-mAP": 3.28, "MR-middle-mAP": 32.3, "MR-long-mAP": 41.11,
}


def test_official_qvhighlights_sample(tmp_path):
    folder = reference_dir() / "qvhighlights"
    pred, gt = folder / "sample_val_preds.jsonl", folder / "highlight_val_release.jsonl"
    if not (pred.exists() and gt.exists()):
        pytest.skip(f"QVHighlights reference files not found in {folder} (set NUMPRO_REFERENCE_DIR)")
    out = tmp_path / "sample_metrics.json"
    result = run("metrics_hd.py", "--pred", pred, "--gt", gt, "--out", out)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(out.read_text())
    assert {key: metrics[key] for key in OFFICIAL_SAMPLE} == OFFICIAL_SAMPLE
    assert metrics["n"] == 1550 and metrics["n_missing"] == 0
    lines = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines() if line.startswith("  HL-")}
    assert lines["HL-min-VeryGood-mAP"] == "35.65" and lines["HL-min-VeryGood-Hit1"] == "55.55"


def test_both_scripts_take_pred_alike_and_say_when_nothing_was_measured(tmp_path):
    pred = tmp_path / "p.jsonl"
    pred.write_text(json.dumps({"id": "a", "response": "From 1 to 2", "gt_start": 1.0, "gt_end": 2.0, "fps": 1.0,
                                "status": "ok"}) + "\n")
    assert run("metrics_mr.py", "--pred", pred).returncode == 0  # as metrics_hd.py takes it
    both = run("metrics_mr.py", pred, "--pred", pred)
    assert both.returncode == 2 and "once" in both.stderr
    assert run("metrics_mr.py", pred, "--fps", "0").returncode == 2
    failed = tmp_path / "failed.jsonl"
    failed.write_text(json.dumps({"id": "a", "response": "", "gt_start": 1.0, "gt_end": 2.0, "fps": 1.0,
                                  "status": "missing_video"}) + "\n")
    result = run("metrics_mr.py", failed)
    assert result.returncode == 1 and "nothing was measured" in result.stderr
    gt = tmp_path / "gt.jsonl"
    gt.write_text(json.dumps(gt_line(1, 10, [0, 1], [[1, 2, 3], [4, 4, 4]], [[0, 4]])) + "\n")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert run("metrics_hd.py", empty, "--gt", gt).returncode == 2  # positional PRED, as metrics_mr.py takes it
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"qid": 99, "pred_saliency_scores": [1, 2]}) + "\n")
    result = run("metrics_hd.py", other, "--gt", gt)
    assert result.returncode == 1 and "no prediction matches" in result.stderr
