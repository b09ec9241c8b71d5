"""`--video_io upstream`: the mp4v write-and-decode detour of upstream's eval scripts (SPEC 10)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from numpro.stamp import Stamper
from numpro.upstream_io import mp4v_round_trip, write_mp4v
from numpro.video import read_sampled

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "eval"))
import numpro_ft_mr  # noqa: E402

from numpro.evaluation.cli import main  # noqa: E402


def test_round_trip_is_lossy_mpeg4_part2_at_the_sampling_rate(tmp_path):
    rng = np.random.default_rng(0)
    frames = Stamper().stamp_all(np.full((5, 336, 336, 3), 90, np.uint8) + rng.integers(0, 20, (5, 336, 336, 3),
                                                                                          dtype=np.uint8), range(5))
    out = mp4v_round_trip(frames, 0.5)
    assert out.shape == frames.shape and out.dtype == np.uint8
    error = np.abs(out.astype(int) - frames.astype(int))
    assert error.max() > 20 and (error > 0).mean() > 0.1  # lossy, worst at the digits' edges
    psnr = 10 * np.log10(255**2 / (error.astype(float) ** 2).mean())
    assert 25 < psnr < 50
    # the writer the round trip uses is MPEG-4 Part 2 at the sampling rate, as upstream's scripts wrote
    import av

    with av.open(str(write_mp4v(frames, 0.5, tmp_path / "check.mp4"))) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "mpeg4" and float(stream.average_rate) == 0.5


def test_eval_feeds_and_dumps_the_round_tripped_frames(dataset, tmp_path):
    from numpro.models.tiny import build

    model = build("longva", tmp_path / "longva")
    save = tmp_path / "p.jsonl"
    argv = ["--test_path", str(dataset / "test.json"), "--data_path", str(dataset / "videos"), "--model_path",
            str(model), "--save_path", str(save), "--max_new_tokens", "4", "--workers", "0", "--limit", "1",
            "--video_io", "upstream", "--dump_frames", str(tmp_path / "frames")]
    assert main(numpro_ft_mr.SPEC, argv) == 0
    sampled = read_sampled(dataset / "videos" / "vid0.mp4", 0.5)
    stamped = Stamper().stamp_all(sampled.pixels, sampled.numbers)
    dumped = np.stack([np.asarray(Image.open(p)) for p in sorted((tmp_path / "frames" / "vid0").glob("*.png"))])
    assert np.array_equal(dumped, mp4v_round_trip(stamped, 0.5)) and not np.array_equal(dumped, stamped)
    record = json.loads((tmp_path / "p_run.json").read_text())
    assert record["protocol"]["video_io"] == "upstream"
