"""`python -m numpro viz`: manga pages and prediction timelines on small synthetic data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from numpro import synthetic, viz
from numpro.stamp import Stamper, StampStyle
from numpro.video import read_sampled

# id, response, gt (s), fps: IoU 1, 0.5, 0 (disjoint), unparsed, reversed
RECORDS = [
    {"id": "exact", "response": "From Frame 2 to Frame 4", "gt_start": 2.0, "gt_end": 4.0, "fps": 1.0},
    {"id": "half", "response": "From Frame 1 to Frame 3", "gt_start": 1.0, "gt_end": 5.0, "fps": 0.5},
    {"id": "miss", "response": "From Frame 0 to Frame 1", "gt_start": 4.0, "gt_end": 5.0, "fps": 1.0},
    {"id": "garbled", "response": "the ball, $maybe$ later", "gt_start": 1.0, "gt_end": 2.0, "fps": 1.0},
    {"id": "backwards", "response": "From Frame 4 to Frame 2", "gt_start": 2.0, "gt_end": 4.0, "fps": 1.0},
]


@pytest.fixture(scope="module")
def video(make_video):
    return make_video("25", 6.0, size=(64, 48))


@pytest.fixture()
def predictions(tmp_path, video):
    path = tmp_path / "pred.jsonl"
    lines = [dict(r, video=video.name, query=f"query {r['id']}", duration=6.0) for r in RECORDS]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    viz.register(parser.add_subparsers(dest="command", required=True), "viz", "pictures")
    args = parser.parse_args(["viz", *argv])
    return args.func(args)


def _runs(mask: np.ndarray) -> tuple[int, int]:
    """(first column, last column) of the longest horizontal run of True in any row of `mask`."""
    best = (0, -1)
    for row in mask:
        padded = np.concatenate([[False], row, [False]]).astype(np.int8)
        edges = np.flatnonzero(np.diff(padded))
        for start, stop in zip(edges[::2], edges[1::2]):
            if stop - start > best[1] - best[0] + 1:
                best = (int(start), int(stop) - 1)
    return best


def _green(image: np.ndarray) -> np.ndarray:
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return (g > r + 60) & (g > b + 40)


def _orange(image: np.ndarray) -> np.ndarray:
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return (r > 200) & (g > 80) & (g < 160) & (b < 90)


# ------------------------------------------------------------------------------ manga
def test_manga_panels_are_the_numbered_frames_evenly_spread(video, tmp_path):
    out = tmp_path / "manga.png"
    page = viz.draw_manga(video, out, fps=1.0, max_frames=4, cols=2)
    sampled = read_sampled(video, 1.0, max_frames=4)
    assert page.numbers == sampled.numbers == [0, 1, 3, 5]  # linspace over 0..5, each keeps its number
    expected = Stamper(StampStyle()).stamp_all(sampled.pixels, sampled.numbers)
    saved = np.asarray(Image.open(out).convert("RGB"))
    (ax0, ay0, _, _), (bx0, by0, _, _), (cx0, cy0, _, _) = page.boxes[:3]
    assert ay0 == by0 and bx0 > ax0 and cy0 > ay0 and cx0 == ax0  # 2 columns
    for (x0, y0, x1, y1), frame, number in zip(page.boxes, expected, page.numbers):
        panel = saved[y0:y1, x0:x1]
        assert np.array_equal(panel, frame)
        assert synthetic.read_index(panel) == round(number * 25)  # the source frame at k seconds


def test_manga_command_and_its_errors(video, tmp_path, capsys):
    out = tmp_path / "sub" / "page.png"
    assert cli(["manga", str(video), "--output", str(out), "--fps", "0.5", "--cols", "3"]) == 0
    assert "3 numbered frames (numbers 0..2 at 0.5 FPS)" in capsys.readouterr().out
    assert Image.open(out).size[0] == 2 * 28 + 3 * 336 + 2 * 16
    missing = tmp_path / "nope.mp4"
    assert cli(["manga", str(missing), "--output", str(tmp_path / "x.png")]) == 2
    assert str(missing) in capsys.readouterr().err
    assert cli(["manga", str(video), "--output", str(tmp_path / "x.txt")]) == 2
    assert "unsupported image format" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:  # a bad flag value is argparse's usage error
        cli(["manga", str(video), "--output", str(tmp_path / "x.png"), "--fps", "0"])
    assert usage.value.code == 2


def test_manga_stamps_with_the_shared_style_flags(video, tmp_path):
    """--position br, --font-size and --stamp_text seconds work here as in every command that stamps."""
    out = tmp_path / "seconds.png"
    assert cli(["manga", str(video), "--output", str(out), "--fps", "0.5", "--max_frames", "0", "--position", "br",
                "--font-size", "30", "--color", "blue", "--stamp_text", "seconds"]) == 0
    style = StampStyle(30, "blue", "bottom_right")
    page = viz.draw_manga(video, tmp_path / "api.png", 0.5, None, viz.MANGA_COLS, style, "seconds")
    saved = np.asarray(Image.open(out).convert("RGB"))
    assert np.array_equal(saved, np.asarray(Image.open(tmp_path / "api.png").convert("RGB")))
    sampled = read_sampled(video, 0.5)
    assert page.numbers == sampled.numbers == [0, 1, 2]
    for (x0, y0, x1, y1), frame, number in zip(page.boxes, sampled.pixels, sampled.numbers):
        assert np.array_equal(saved[y0:y1, x0:x1], Stamper(style).stamp(frame, f"{2 * number}s"))  # k / 0.5 fps


# ------------------------------------------------------------------------------ timelines
def test_rows_use_the_metric_code_and_each_record_rate():
    rows = {row.id: row for row in viz.timeline_rows([dict(r) for r in RECORDS])}
    assert rows["exact"].pred == (2.0, 4.0) and rows["exact"].iou == 1.0
    assert rows["half"].pred == (2.0, 6.0) and rows["half"].iou == pytest.approx(0.6)  # frames at 0.5 FPS
    assert rows["garbled"].pred is None and rows["garbled"].iou == 0.0
    assert rows["backwards"].reversed and rows["backwards"].iou == 0.0
    upstream = [{k: v for k, v in r.items() if k != "fps"} for r in RECORDS]
    assert viz.timeline_rows(upstream, default_fps=0.5)[0].pred == (4.0, 8.0)


def test_worst_best_first_and_ids_selection():
    rows = viz.timeline_rows([dict(r) for r in RECORDS])
    assert [r.id for r in viz.select_rows(rows, worst=3)] == ["miss", "garbled", "backwards"]  # ties: file order
    assert [r.id for r in viz.select_rows(rows, best=2)] == ["exact", "half"]
    assert [r.id for r in viz.select_rows(rows, first=2)] == ["exact", "half"]
    assert [r.id for r in viz.select_rows(rows, ids=["backwards", "exact"])] == ["backwards", "exact"]
    with pytest.raises(ValueError, match="not in the predictions: zzz"):
        viz.select_rows(rows, ids=["zzz"])
    with pytest.raises(ValueError, match="--worst must be at least 1"):
        viz.select_rows(rows, worst=0)


def test_spans_are_drawn_where_they_belong(tmp_path):
    record = {"id": "q", "query": "the event", "response": "From Frame 4 to Frame 6", "gt_start": 2.0,
              "gt_end": 4.0, "fps": 1.0, "duration": 8.0}
    path = viz.draw_timelines(viz.timeline_rows([record]), tmp_path / "t.png")
    image = np.asarray(Image.open(path).convert("RGB"))
    g0, g1 = _runs(_green(image))
    p0, p1 = _runs(_orange(image))
    width = g1 - g0
    assert width > 100  # the 2-second ground-truth bar, drawn large enough to see
    assert abs(p0 - g1) <= 4  # prediction starts where the ground truth ends (4 s)
    assert abs((p1 - p0) - width) <= 6  # both spans last 2 s (end ticks add a pixel or two)


def test_unparsed_answer_draws_no_predicted_bar(tmp_path):
    rows = viz.select_rows(viz.timeline_rows([dict(r) for r in RECORDS]), ids=["garbled"])
    image = np.asarray(Image.open(viz.draw_timelines(rows, tmp_path / "u.png")).convert("RGB"))
    assert _runs(_green(image))[1] - _runs(_green(image))[0] > 50
    assert not _orange(image).any()


def test_timeline_command_with_frames_and_selection(predictions, video, tmp_path, capsys):
    out = tmp_path / "worst.png"
    argv = ["timeline", str(predictions), "--output", str(out), "--worst", "2", "--videos", str(video.parent)]
    assert cli(argv) == 0
    assert "2 of 5 queries (worst 2 by IoU)" in capsys.readouterr().out
    with_frames = Image.open(out).size
    assert cli(["timeline", str(predictions), "--output", str(tmp_path / "plain.png"), "--worst", "2"]) == 0
    assert with_frames[1] > Image.open(tmp_path / "plain.png").size[1]  # a strip of numbered frames per query


def test_timeline_reads_upstream_json_lists(tmp_path, capsys):
    path = tmp_path / "upstream.json"
    path.write_text(json.dumps([{k: v for k, v in r.items() if k != "fps"} for r in RECORDS]))
    assert cli(["timeline", str(path), "--output", str(tmp_path / "up.png"), "--best", "1", "--fps", "0.5"]) == 0
    assert (tmp_path / "up.png").stat().st_size > 0


def test_timeline_errors_are_clear(predictions, tmp_path, capsys):
    out = str(tmp_path / "x.png")
    assert cli(["timeline", str(predictions), "--output", out, "--ids", "nope"]) == 2
    assert "ids not in the predictions: nope" in capsys.readouterr().err
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": 1, "response": "From 1 to 2", "gt_start": 0, "gt_end": 1}\n{"id": 2,\n')
    assert cli(["timeline", str(broken), "--output", out]) == 2
    assert f"{broken}: line 2" in capsys.readouterr().err
    no_gt = tmp_path / "no_gt.jsonl"
    no_gt.write_text('{"id": 1, "response": "From 1 to 2"}\n')
    assert cli(["timeline", str(no_gt), "--output", out]) == 2
    assert "gt_start" in capsys.readouterr().err
    assert cli(["timeline", str(tmp_path / "absent.jsonl"), "--output", out]) == 2
    assert "absent.jsonl" in capsys.readouterr().err
    assert not Path(out).exists()
    with pytest.raises(SystemExit):  # argparse: --worst and --best exclude each other
        cli(["timeline", str(predictions), "--output", out, "--worst", "1", "--best", "1"])
