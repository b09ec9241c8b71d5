"""`python -m numpro demo`: the synthetic video, the manga page, the tiny-model run, the timeline."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from numpro import demo, timeline
from numpro.metrics.report import MR_KEYS
from numpro.stamp import Stamper, StampStyle
from numpro.video import read_sampled


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return demo.run_demo(tmp_path_factory.mktemp("demo") / "demo_output")


def _blue_ball_pixels(frame: np.ndarray) -> int:
    r, g, b = (frame[..., i].astype(int) for i in range(3))
    return int(((b > 150) & (r < 90) & (g < 140)).sum())


def _red_number_pixels(region: np.ndarray) -> int:
    r, g, b = (region[..., i].astype(int) for i in range(3))
    return int(((r > 200) & (g < 60) & (b < 60)).sum())


def test_demo_writes_the_four_outputs(result):
    out = result.output
    for name in ("manga.png", "timeline.png", "predictions.jsonl", "metrics.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    with Image.open(out / "manga.png") as manga:
        x1, y1 = result.manga.boxes[-1][2:]
        assert manga.size[0] > x1 and manga.size[1] > y1  # every panel lies on the page
        assert manga.size[0] >= 6 * 336
    with Image.open(out / "timeline.png") as picture:
        assert picture.size[0] >= 1200 and picture.size[1] >= 500


def test_predictions_answer_every_query_through_the_real_pipeline(result):
    records = [json.loads(line) for line in (result.output / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [q[0] for q in demo.QUERIES]
    for record, (key, query, start, end) in zip(records, demo.QUERIES):
        assert record["query"] == query and record["video"] == demo.VIDEO_NAME
        assert (record["gt_start"], record["gt_end"]) == (start, end)
        assert record["status"] == "ok" and record["fps"] == 1.0
        assert isinstance(record["response"], str) and record["response"]  # the model did answer
    metrics = json.loads((result.output / "metrics.json").read_text())
    assert set(MR_KEYS) <= set(metrics)
    assert metrics["n"] == 2 and metrics["n_parsed"] == sum(r["parsed"] for r in records)
    assert not (result.output / "predictions_metrics.json").exists()  # renamed to metrics.json


def test_video_shows_the_ball_exactly_during_the_ground_truth(result):
    sampled = read_sampled(result.video, demo.PROTOCOL_FPS)
    assert sampled.numbers == list(range(30))
    with_ball = [k for k, frame in zip(sampled.numbers, sampled.pixels) if _blue_ball_pixels(frame) > 200]
    start, end = demo.EVENT
    assert with_ball == list(range(timeline.seconds_to_frame(start, 1.0), timeline.seconds_to_frame(end, 1.0) + 1))
    annotations = json.loads(result.annotations.read_text())
    assert [(a["start_time"], a["end_time"]) for a in annotations] == [(q[2], q[3]) for q in demo.QUERIES]


def test_manga_panels_are_exactly_the_stamped_frames(result):
    page = np.asarray(Image.open(result.output / "manga.png").convert("RGB"))
    sampled = read_sampled(result.video, 1.0)
    expected = Stamper(StampStyle()).stamp_all(sampled.pixels, sampled.numbers)
    assert result.manga.numbers == sampled.numbers
    for (x0, y0, x1, y1), frame in zip(result.manga.boxes, expected):
        panel = page[y0:y1, x0:x1]
        assert np.array_equal(panel, frame)
        assert _red_number_pixels(panel[-90:, -110:]) > 80  # the red number, bottom-right
        assert _red_number_pixels(panel[:200, :200]) == 0


def test_manga_outlines_the_ground_truth_panels(result):
    page = np.asarray(Image.open(result.output / "manga.png").convert("RGB"))
    outlined = []
    for number, (x0, y0, x1, y1) in zip(result.manga.numbers, result.manga.boxes):
        above = page[y0 - 4, x0 + 20]
        outlined.append(bool(above[1] > 120 and above[0] < 80 and above[2] < 120))
    first, last = (timeline.seconds_to_frame(t, 1.0) for t in demo.EVENT)
    assert [n for n, o in zip(result.manga.numbers, outlined) if o] == list(range(first, last + 1))


def test_summary_is_honest_about_the_tiny_model(result):
    text = demo.summary(result)
    for name in ("manga.png", "timeline.png", "predictions.jsonl", "metrics.json"):
        assert name in text
    assert "UNTRAINED" in text and "noise" in text
    assert "python eval/qwen2_vl_7b_mr.py --model_path Qwen/Qwen2-VL-7B-Instruct" in text
    assert f"--data_path {result.annotations}" in text
    assert "mIoU" in text


def test_rerun_reuses_the_model_and_answers_afresh(result):
    model = result.output / demo.MODEL_DIR / "model.safetensors"
    built = model.stat().st_mtime_ns
    assert demo.tiny_model(result.output) == model.parent and model.stat().st_mtime_ns == built
    assert not (result.output / f"{demo.MODEL_DIR}.partial").exists()
    # the runner resumes finished queries; the demo must answer them again rather than keep old lines
    predictions, _ = demo.run_moment_retrieval(result.annotations, result.video.parent, model.parent, result.output)
    assert len(predictions.read_text().splitlines()) == len(demo.QUERIES)


def test_command_line_registration():
    parser = argparse.ArgumentParser()
    demo.register(parser.add_subparsers(dest="command"), "demo", "run the demo")
    args = parser.parse_args(["demo"])
    assert args.output == "demo_output" and callable(args.func)
    assert Path(parser.parse_args(["demo", "--output", "elsewhere"]).output) == Path("elsewhere")
