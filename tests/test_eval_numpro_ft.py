"""NumPro-FT evaluation end to end with a tiny LongVA and a tiny adapter in the released layout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from numpro import prompts, timeline
from numpro.evaluation.cli import main
from numpro.evaluation.tasks import HighlightDetection, MomentRetrieval
from numpro.models.base import hd_prompt_style
from numpro.stamp import Stamper
from numpro.video import read_sampled

from conftest import EVAL_VIDEOS, read_jsonl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "eval"))
import numpro_ft_hd  # noqa: E402
import numpro_ft_mr  # noqa: E402


@pytest.fixture(scope="module")
def tiny_longva(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_longva")
    model, lora = root / "longva", root / "numpro_ft"
    result = subprocess.run([sys.executable, "-m", "numpro", "tiny", "--family", "longva", "--output", str(model),
                             "--lora", str(lora)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert {"adapter_config.json", "non_lora_trainables.bin"} <= {p.name for p in lora.iterdir()}
    return model, lora


def ft_args(model, data, save, *extra):
    return ["--test_path", str(data / "test.json"), "--data_path", str(data / "videos"), "--model_path", str(model),
            "--save_path", str(save), "--max_new_tokens", "6", "--workers", "1", *extra]


@pytest.fixture(scope="module")
def ft_run(tiny_longva, dataset, tmp_path_factory):
    model, lora = tiny_longva
    out = tmp_path_factory.mktemp("ft_out")
    save = out / "pred.jsonl"
    assert main(numpro_ft_mr.SPEC, ft_args(model, dataset, save, "--lora_path", str(lora),
                                           "--dump_frames", str(out / "frames"))) == 0
    return save


def test_records_at_half_fps_with_stamped_frames(ft_run, dataset):
    records = read_jsonl(ft_run)
    assert len(records) == 10 and {r["fps"] for r in records} == {0.5}
    assert sum(r["status"] == "ok" for r in records) == 9
    stamper = Stamper()
    for name, rate, _ in EVAL_VIDEOS:
        sampled = read_sampled(dataset / "videos" / f"{name}.mp4", 0.5)
        folder = ft_run.parent / "frames" / name
        dumped = np.stack([np.asarray(Image.open(folder / f"{k:06d}.png")) for k in sampled.numbers])
        assert np.array_equal(dumped, stamper.stamp_all(sampled.pixels, sampled.numbers))


def test_prompt_is_the_qwen_1_5_template_with_instruction_and_question(tiny_longva, dataset):
    from numpro.models.longva import load

    model = load(tiny_longva[0])
    query = MomentRetrieval().load(dataset / "test.json")[0]
    text = MomentRetrieval().prompt(query)
    assert model.preprocessor.render(text) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\n"
        f"{prompts.INSTRUCTION}{prompts.MR_QUESTION.format(query.text)}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert HighlightDetection(style=hd_prompt_style("longva")).prompt(query) == prompts.HD_PROMPT_NUMPRO_FT.format(query.text)


def test_the_adapter_changes_the_answers(ft_run, tiny_longva, dataset, tmp_path):
    save = tmp_path / "base.jsonl"
    main(numpro_ft_mr.SPEC, ft_args(tiny_longva[0], dataset, save))
    base = [r["response"] for r in read_jsonl(save)]
    tuned = [r["response"] for r in read_jsonl(ft_run)]
    assert len(base) == len(tuned) and base != tuned


def test_frame_cap_keeps_linspace_frames_with_their_numbers(tiny_longva, dataset, tmp_path):
    save = tmp_path / "cap.jsonl"
    main(numpro_ft_mr.SPEC, ft_args(tiny_longva[0], dataset, save, "--limit", "1", "--max_frames", "4",
                                    "--dump_frames", str(tmp_path / "frames")))
    names = sorted(p.name for p in (tmp_path / "frames" / "vid0").glob("*.png"))
    kept = timeline.cap_frames(timeline.num_sampled_frames(round(12 * EVAL_VIDEOS[0][1]) / EVAL_VIDEOS[0][1], 0.5), 4)
    assert names == [f"{k:06d}.png" for k in kept] and len(kept) == 4


def test_resume_and_two_processes_give_the_same_file(ft_run, tiny_longva, dataset, tmp_path):
    model, lora = tiny_longva
    full = ft_run.read_text().splitlines()
    resumed = tmp_path / "resumed.jsonl"
    resumed.write_text("\n".join(full[:3]) + "\n")
    shutil.copy(ft_run.with_name(ft_run.stem + "_run.json"), resumed.with_name("resumed_run.json"))
    main(numpro_ft_mr.SPEC, ft_args(model, dataset, resumed, "--lora_path", str(lora)))
    assert resumed.read_text().splitlines() == full

    save = tmp_path / "torchrun.jsonl"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29519",
           str(ROOT / "eval" / "numpro_ft_mr.py"), *ft_args(model, dataset, save, "--lora_path", str(lora))]
    result = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"),
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert save.read_text().splitlines() == full


def test_highlight_run_stamps_numbers(tiny_longva, dataset, tmp_path):
    model, lora = tiny_longva
    args = ["--gt_file", str(dataset / "qvh.jsonl"), "--video_dir", str(dataset / "videos"), "--model_path",
            str(model), "--lora_path", str(lora), "--output_dir", str(tmp_path), "--max_new_tokens", "6",
            "--workers", "0", "--dump_frames", str(tmp_path / "frames")]
    assert main(numpro_ft_hd.SPEC, args) == 0
    # the default name says dataset, model, adapter and protocol
    records = read_jsonl(tmp_path / "qvh_longva_numpro_ft_numpro_0.5fps.jsonl")
    assert [r["qid"] for r in records] == [100, 101, 102] and all(r["status"] == "ok" for r in records)
    frame = np.asarray(Image.open(tmp_path / "frames" / "vid1" / "000003.png"))
    plain = read_sampled(dataset / "videos" / "vid1.mp4", 0.5).pixels[3]
    assert np.array_equal(frame, Stamper().stamp(plain, 3))
