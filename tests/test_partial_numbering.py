"""Numbering part of the frames (paper Fig. 7): --number_fraction, --number_sampling."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from numpro import timeline
from numpro.stamp import Stamper
from numpro.video import read_sampled

from conftest import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "eval"))
import qwen2_vl_7b_mr  # noqa: E402

from numpro.evaluation.cli import main  # noqa: E402


def test_uniform_positions_are_evenly_spread_with_both_ends():
    assert timeline.numbered_positions(10, 0.5).tolist() == [0, 2, 4, 7, 9]  # round(linspace(0, 9, 5))
    assert timeline.numbered_positions(10, 1.0).tolist() == list(range(10))
    assert timeline.numbered_positions(7, 0.01).tolist() == [0]  # at least one frame keeps its number
    assert len(timeline.numbered_positions(240, 0.25)) == 60


def test_random_positions_are_seeded_per_video():
    a = timeline.numbered_positions(50, 0.3, "random", seed=1, key="vid0")
    assert len(a) == 15 and len(set(a.tolist())) == 15 and a.tolist() == sorted(a.tolist())
    assert np.array_equal(a, timeline.numbered_positions(50, 0.3, "random", seed=1, key="vid0"))
    assert not np.array_equal(a, timeline.numbered_positions(50, 0.3, "random", seed=2, key="vid0"))
    assert not np.array_equal(a, timeline.numbered_positions(50, 0.3, "random", seed=1, key="vid1"))
    with pytest.raises(ValueError):
        timeline.numbered_positions(10, 0.0)


def test_only_the_chosen_frames_carry_numbers(dataset, tmp_path):
    from numpro.models.tiny import build

    model = build("qwen2_vl", tmp_path / "qwen")
    save = tmp_path / "p.jsonl"
    argv = ["--data_path", str(dataset / "test.json"), "--video_path", str(dataset / "videos"), "--model_path",
            str(model), "--save_path", str(save), "--max_new_tokens", "4", "--workers", "0", "--limit", "1",
            "--frame_rule", "plain", "--number_fraction", "0.5", "--number_sampling", "random", "--number_seed", "3",
            "--dump_frames", str(tmp_path / "frames")]
    assert main(qwen2_vl_7b_mr.SPEC, argv) == 0
    sampled = read_sampled(dataset / "videos" / "vid0.mp4", 1.0)
    positions = timeline.numbered_positions(len(sampled.numbers), 0.5, "random", 3, "vid0")
    numbered = [sampled.numbers[p] for p in positions]
    assert read_jsonl(save)[0]["numbered_frames"] == numbered
    folder = tmp_path / "frames" / "vid0"
    assert json.loads((folder / "numbered_frames.json").read_text()) == numbered
    stamper = Stamper()
    for k, plain in zip(sampled.numbers, sampled.pixels):
        dumped = np.asarray(Image.open(folder / f"{k:06d}.png"))
        assert np.array_equal(dumped, stamper.stamp(plain, k) if k in numbered else plain)
    protocol = json.loads((tmp_path / "p_run.json").read_text())["protocol"]
    assert (protocol["number_fraction"], protocol["number_sampling"], protocol["number_seed"]) == (0.5, "random", 3)


def test_the_record_lists_only_numbered_frames_the_model_gets(dataset, tmp_path):
    # vid1: 9 s, so 9 frames at 1 FPS; Qwen2-VL's upstream rule feeds 8 of them (frame 4 dropped).
    # Uniform 0.6 numbers frames 0, 2, 4, 6, 8: frame 4 never reaches the model, so it is not listed.
    from numpro.models.tiny import build

    model = build("qwen2_vl", tmp_path / "qwen")
    save = tmp_path / "p.jsonl"
    argv = ["--data_path", str(dataset / "test.json"), "--video_path", str(dataset / "videos"), "--model_path",
            str(model), "--save_path", str(save), "--max_new_tokens", "2", "--workers", "0", "--limit", "4",
            "--number_fraction", "0.6", "--dump_frames", str(tmp_path / "frames")]
    assert main(qwen2_vl_7b_mr.SPEC, argv) == 0
    record = [r for r in read_jsonl(save) if r["id"] == "vid1_0"][0]
    assert timeline.numbered_positions(9, 0.6).tolist() == [0, 2, 4, 6, 8]
    assert record["numbered_frames"] == [0, 2, 6, 8]
    assert sorted(p.name for p in (tmp_path / "frames" / "vid1").glob("*.png"))[4] == "000005.png"
