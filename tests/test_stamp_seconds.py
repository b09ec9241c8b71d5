"""Timestamps instead of frame numbers (paper Tab. 9): --stamp_text seconds."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from numpro import prompts, timeline
from numpro.metrics.mr import score_mr_records
from numpro.parsing import parse_span
from numpro.stamp import Stamper
from numpro.video import read_sampled

from conftest import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "eval"))
import qwen2_vl_7b_mr  # noqa: E402

from numpro.evaluation.cli import main  # noqa: E402


def test_seconds_answers_parse_with_units_and_decimals():
    for text, span in [("From 12s to 20s.", (12, 20)), ("From 7.5 seconds to 9 seconds", (7.5, 9)),
                       ("from 3 sec to 4.5 sec", (3, 4.5)), ("From 2 to 6", (2, 6))]:
        answer = parse_span(text, units="seconds", strict=True)
        assert answer.ok and (answer.start, answer.end) == span and answer.rule == "seconds", text
    # upstream's frame regex reads neither the unit nor decimals
    assert not parse_span("From 12s to 20s", strict=True).ok


def test_seconds_answers_score_without_the_frame_rate():
    record = {"id": 1, "response": "From 4s to 10s", "gt_start": 4.0, "gt_end": 10.0, "fps": 0.5,
              "answer_units": "seconds", "status": "ok"}
    report = score_mr_records([record])
    assert report.queries[0].pred_seconds == (4.0, 10.0) and report.metrics["mIoU"] == 100.0
    framed = dict(record, response="From 2 to 5")
    del framed["answer_units"]
    assert score_mr_records([framed]).queries[0].pred_seconds == (4.0, 10.0)  # frames 2..5 at 0.5 FPS


def test_eval_draws_times_and_reads_seconds(dataset, tmp_path):
    from numpro.models.tiny import build

    model = build("qwen2_vl", tmp_path / "qwen")
    save = tmp_path / "p.jsonl"
    argv = ["--data_path", str(dataset / "test.json"), "--video_path", str(dataset / "videos"), "--model_path",
            str(model), "--save_path", str(save), "--max_new_tokens", "4", "--workers", "0", "--limit", "1",
            "--frame_rule", "plain", "--fps", "2", "--stamp_text", "seconds", "--dump_frames", str(tmp_path / "f")]
    assert main(qwen2_vl_7b_mr.SPEC, argv) == 0
    sampled = read_sampled(dataset / "videos" / "vid0.mp4", 2.0)
    stamper = Stamper()
    for k in (0, 1, 15):  # 0s, 0.5s, 7.5s
        dumped = np.asarray(Image.open(tmp_path / "f" / "vid0" / f"{k:06d}.png"))
        assert np.array_equal(dumped, stamper.stamp(sampled.pixels[k], timeline.frame_label(k, 2.0, "seconds")))
    assert timeline.frame_label(15, 2.0, "seconds") == "7.5s"
    record = read_jsonl(save)[0]
    assert record["answer_units"] == "seconds"
    run = json.loads((tmp_path / "p_run.json").read_text())
    assert run["protocol"]["stamp_text"] == "seconds"
    assert run["prompt"]["template"] == prompts.INSTRUCTION_SECONDS + prompts.MR_QUESTION_SECONDS.format("{query}")
