"""Training-free evaluation end to end with a tiny Qwen2-VL (issue: Qwen2-VL MR/HD runs)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from numpro import prompts, synthetic, timeline
from numpro.evaluation import runner
from numpro.evaluation.cli import main
from numpro.evaluation.tasks import HighlightDetection, MomentRetrieval
from numpro.models.base import hd_prompt_style
from numpro.models.qwen2_vl import upstream_frame_indices
from numpro.stamp import Stamper, StampStyle
from numpro.video import read_sampled

from conftest import EVAL_VIDEOS as VIDEOS, read_jsonl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "eval"))
import qwen2_vl_7b_hd  # noqa: E402
import qwen2_vl_7b_mr  # noqa: E402


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    output = tmp_path_factory.mktemp("tiny") / "qwen2_vl"
    result = subprocess.run([sys.executable, "-m", "numpro", "tiny", "--family", "qwen2_vl", "--output", str(output)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} <= {
        p.name for p in output.iterdir()}
    return output


def mr_args(tiny, data, save, *extra):
    return ["--data_path", str(data / "test.json"), "--video_path", str(data / "videos"), "--model_path", str(tiny),
            "--save_path", str(save), "--max_new_tokens", "8", "--workers", "1", *extra]


@pytest.fixture(scope="module")
def mr_run(tiny_qwen, dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("mr_out")
    save = out / "pred.jsonl"
    assert main(qwen2_vl_7b_mr.SPEC, mr_args(tiny_qwen, dataset, save, "--dump_frames", str(out / "frames"))) == 0
    return save


def test_one_record_per_query_in_input_order(mr_run, dataset):
    records = read_jsonl(mr_run)
    expected = [r["id"] for r in json.loads((dataset / "test.json").read_text())]
    assert [r["id"] for r in records] == expected
    upstream_fields = {"id", "response", "gt_start", "gt_end", "pred_start", "pred_end", "duration"}
    ours = {"video", "query", "fps", "parsed", "pred_start_sec", "pred_end_sec", "status"}
    for record in records:
        assert upstream_fields | ours <= set(record)
        assert record["fps"] == 1.0
    missing = [r for r in records if r["id"] == "gone_0"][0]
    assert missing["status"] == "missing_video" and "gone.mp4" in missing["error"] and missing["parsed"] is False
    assert sum(r["status"] == "ok" for r in records) == 9
    metrics = json.loads(mr_run.with_name("pred_metrics.json").read_text())
    assert metrics["n"] == 10 and metrics["status"] == {"missing_video": 1, "ok": 9}
    assert {"R@0.3", "R@0.5", "R@0.7", "mIoU", "n_parsed"} <= set(metrics)


def test_dumped_frames_are_exactly_the_stamped_frames_at_1_fps(mr_run, dataset):
    stamper = Stamper(StampStyle())
    for name, rate, seconds in VIDEOS:
        folder = mr_run.parent / "frames" / name
        n = timeline.num_sampled_frames(round(seconds * rate) / rate, 1.0)
        kept = upstream_frame_indices(n)  # the default frame rule: an even count (odd n drops a middle frame)
        assert len(kept) == n - n % 2
        assert sorted(f.name for f in folder.glob("*.png")) == [f"{k:06d}.png" for k in kept]
        sampled = read_sampled(dataset / "videos" / f"{name}.mp4", 1.0)
        expected = stamper.stamp_all(sampled.pixels, sampled.numbers)[kept]
        dumped = np.stack([np.asarray(Image.open(folder / f"{k:06d}.png")) for k in kept])
        assert np.array_equal(dumped, expected)
        # the source frame under number k is the one nearest to k seconds (or the last frame)
        last = round(seconds * rate) - 1
        for frame, number in zip(dumped, kept):
            index = synthetic.read_index(frame)
            assert index == last or abs(index / float(rate) - number) <= 0.5 / float(rate) + 1e-6


def test_prompt_holds_the_exact_strings(tiny_qwen, dataset):
    from numpro.models.qwen2_vl import load

    model = load(tiny_qwen)
    task = MomentRetrieval()
    query = task.load(dataset / "test.json")[0]
    text = task.prompt(query)
    assert text == prompts.INSTRUCTION + prompts.MR_QUESTION.format("person number 0 sits")
    assert "frame number.During which frames can we see person number 0 sits? Answer in the format: " \
           "'From Frame x to Frame y'." in text
    batch = model.preprocessor([np.zeros((4, 336, 336, 3), np.uint8)], [text], 1.0)
    assert batch.prompts[0] == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        f"<|vision_start|><|video_pad|><|vision_end|>{text}<|im_end|>\n<|im_start|>assistant\n"
    )
    ids = batch.tensors["input_ids"][0].tolist()
    video_id = model.model.config.video_token_id
    assert ids.count(video_id) == 2 * 144  # 4 frames of 336x336: two temporal pairs of 144 tokens
    decoded = model.tokenizer.decode([i for i in ids if i != video_id])
    assert text in decoded
    hd = HighlightDetection(style=hd_prompt_style("qwen2_vl")).prompt(query)
    assert hd == prompts.HD_PROMPT_QWEN2_VL.format("person number 0 sits")


def test_baseline_has_no_numbers_and_no_instruction(tiny_qwen, dataset, tmp_path):
    save = tmp_path / "base.jsonl"
    main(qwen2_vl_7b_mr.SPEC, mr_args(tiny_qwen, dataset, save, "--no_numbers", "--limit", "1",
                                      "--dump_frames", str(tmp_path / "frames")))
    frame = np.asarray(Image.open(tmp_path / "frames" / "vid0" / "000005.png"))
    plain = read_sampled(dataset / "videos" / "vid0.mp4", 1.0).pixels[5]
    assert np.array_equal(frame, plain)
    assert MomentRetrieval(instruction=None).prompt(MomentRetrieval().load(dataset / "test.json")[0]) \
        == prompts.MR_QUESTION.format("person number 0 sits")
    record = json.loads((tmp_path / "base_run.json").read_text())  # the prompt the run actually used
    assert record["prompt"]["template"] == prompts.MR_QUESTION.format("{query}")
    assert record["protocol"]["numbers"] is False and record["protocol"]["stamp"] is None


def test_resume_after_a_kill_gives_the_same_file(mr_run, tiny_qwen, dataset, tmp_path):
    full = mr_run.read_text().splitlines()
    save = tmp_path / "pred.jsonl"
    save.write_text("\n".join(full[:4]) + "\n" + full[4][:25])  # killed while writing record 5
    shutil.copy(mr_run.with_name("pred_run.json"), save.with_name("pred_run.json"))  # written before query 1
    main(qwen2_vl_7b_mr.SPEC, mr_args(tiny_qwen, dataset, save))
    assert save.read_text().splitlines() == full


def test_batched_generation_matches_one_at_a_time(mr_run, tiny_qwen, dataset, tmp_path):
    save = tmp_path / "batched.jsonl"
    main(qwen2_vl_7b_mr.SPEC, mr_args(tiny_qwen, dataset, save, "--batch_size", "4"))
    assert [r["response"] for r in read_jsonl(save)] == [r["response"] for r in read_jsonl(mr_run)]


def test_torchrun_two_processes_equal_one(mr_run, tiny_qwen, dataset, tmp_path):
    save = tmp_path / "pred.jsonl"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           str(ROOT / "eval" / "qwen2_vl_7b_mr.py"), *mr_args(tiny_qwen, dataset, save)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert save.read_text() == mr_run.read_text()
    assert not list(tmp_path.glob("*.part"))


def test_highlight_run(tiny_qwen, dataset, tmp_path):
    args = ["--gt_file", str(dataset / "qvh.jsonl"), "--video_dir", str(dataset / "videos"),
            "--model_path", str(tiny_qwen), "--output_dir", str(tmp_path), "--max_new_tokens", "8",
            "--workers", "0", "--dump_frames", str(tmp_path / "frames")]
    assert main(qwen2_vl_7b_hd.SPEC, args) == 0
    records = read_jsonl(tmp_path / "qvh_qwen2_vl_numpro_0.5fps.jsonl")  # dataset, model, protocol
    assert [r["qid"] for r in records] == [100, 101, 102]
    for record, (name, rate, seconds) in zip(records, VIDEOS):
        assert len(record["pred_saliency_scores"]) == timeline.num_clips(seconds + 1)
        assert record["fps"] == 0.5 and record["status"] == "ok"
        frames = sorted((tmp_path / "frames" / name).glob("*.png"))
        n = timeline.num_sampled_frames(round(seconds * rate) / rate, 0.5)
        assert [f.name for f in frames] == [f"{k:06d}.png" for k in upstream_frame_indices(n)]
    metrics = json.loads((tmp_path / "qvh_qwen2_vl_numpro_0.5fps_metrics.json").read_text())
    assert "HL-min-VeryGood-mAP" in metrics and metrics["n"] == 3


def test_hd_record_maps_frames_to_clips(dataset):
    task = HighlightDetection()
    query = task.load(dataset / "qvh.jsonl")[0]  # 13 s: 6 clips
    answer = "The highlight frames are in the 1, 2, 2, 9 frames. Their saliency scores are 3.0, 4.0, 2.0, 5.0"
    record = task.record(query, answer, 0.5, "ok")
    assert record["pred_saliency_scores"] == [0.0, 3.0, 3.0, 0.0, 0.0, 0.0]
    at_one_fps = task.record(query, answer, 1.0, "ok")  # frames 2c and 2c+1 are clip c
    assert at_one_fps["pred_saliency_scores"] == [3.0, 3.0, 0.0, 0.0, 5.0, 0.0]


def test_original_rope_rule_after_a_long_video(tiny_qwen):
    """Text after a 240-frame video continues at max(vision positions) + 1 (SPEC 5)."""
    import torch

    from numpro.models.qwen2_vl import load

    model = load(tiny_qwen)
    config = model.model.config
    grid_t, grid_h, grid_w = 120, 24, 24  # 240 frames of 336x336
    n_vision = grid_t * (grid_h // 2) * (grid_w // 2)
    prefix, suffix = 21, 5
    ids = torch.tensor([[1] * prefix + [config.video_token_id] * n_vision + [1] * suffix])
    types = torch.tensor([[0] * prefix + [2] * n_vision + [0] * suffix])
    positions, delta = model.model.model.get_rope_index(ids, types, video_grid_thw=torch.tensor([[grid_t, grid_h, grid_w]]))
    t, h, w = np.meshgrid(np.arange(grid_t), np.arange(12), np.arange(12), indexing="ij")
    expected_vision = np.stack([t.ravel(), h.ravel(), w.ravel()]) + prefix
    assert np.array_equal(positions[:, 0, :prefix].numpy(), np.tile(np.arange(prefix), (3, 1)))
    assert np.array_equal(positions[:, 0, prefix:prefix + n_vision].numpy(), expected_vision)
    text_start = prefix + grid_t  # 21 + 120 = 141, not 21 + 12 = 33
    assert positions[0, 0, prefix + n_vision].item() == 141 == text_start
    assert np.array_equal(positions[:, 0, prefix + n_vision:].numpy(),
                          np.tile(np.arange(text_start, text_start + suffix), (3, 1)))
    assert delta.item() == text_start + suffix - ids.shape[1]


def test_units_keep_videos_whole():
    from numpro.evaluation.tasks import Query

    queries = [Query(f"{v}{i}", v, "q") for v, n in [("a", 2), ("b", 3), ("c", 1), ("d", 5)] for i in range(n)]
    units = runner.make_units(runner.group_by_video(queries), 4)
    as_keys = [[[q.key for q in batch] for batch in unit] for unit in units]
    assert as_keys == [[["a0", "a1"]], [["b0", "b1", "b2", "c0"]], [["d0", "d1", "d2", "d3"], ["d4"]]]
    single = runner.make_units(runner.group_by_video(queries), 1)
    assert [len(unit) for unit in single] == [2, 3, 1, 5]  # batch size 1: one unit per video


def test_random_init_builds_from_a_config_without_weights(tiny_qwen, dataset, tmp_path, capsys):
    config_only = tmp_path / "config_only"
    config_only.mkdir()
    (config_only / "config.json").write_text((tiny_qwen / "config.json").read_text())
    save = tmp_path / "random.jsonl"
    args = mr_args(config_only, dataset, save, "--limit", "3")
    assert main(qwen2_vl_7b_mr.SPEC, args + ["--random_init"]) == 2
    assert "--processor_path" in capsys.readouterr().err
    assert main(qwen2_vl_7b_mr.SPEC, args + ["--random_init", "--processor_path", str(tiny_qwen)]) == 0
    assert [r["status"] for r in read_jsonl(save)] == ["ok"] * 3


def test_full_size_config_is_qwen2_vl_7b_instruct():
    import torch
    import transformers

    config = transformers.AutoConfig.from_pretrained(ROOT / "configs" / "qwen2_vl_7b_instruct")
    text, vision = config.text_config, config.vision_config
    assert (text.hidden_size, text.intermediate_size, text.num_hidden_layers) == (3584, 18944, 28)
    assert (text.num_attention_heads, text.num_key_value_heads, text.vocab_size) == (28, 4, 152064)
    assert text.rope_parameters["rope_theta"] == 1e6 and text.rope_parameters["mrope_section"] == [16, 24, 24]
    assert (vision.depth, vision.embed_dim, vision.num_heads, vision.patch_size) == (32, 1280, 16, 14)
    assert (config.video_token_id, config.image_token_id, config.vision_start_token_id) == (151656, 151655, 151652)
    with torch.device("meta"):
        model = transformers.Qwen2VLForConditionalGeneration._from_config(config)
    assert round(sum(p.numel() for p in model.parameters()) / 1e9, 2) == 8.29


def test_llava_onevision_family_is_picked_from_the_config(dataset, tmp_path):
    from numpro.models.tiny import build

    tiny = build("llava_onevision", tmp_path / "tiny_lo")
    save = tmp_path / "lo.jsonl"
    assert main(qwen2_vl_7b_mr.SPEC, mr_args(tiny, dataset, save, "--limit", "4", "--batch_size", "4")) == 0
    records = read_jsonl(save)
    assert [r["status"] for r in records] == ["ok", "ok", "ok", "ok"]
    # videos of different lengths in one batch give the same answers as one at a time
    single = tmp_path / "lo1.jsonl"
    main(qwen2_vl_7b_mr.SPEC, mr_args(tiny, dataset, single, "--limit", "4"))
    assert [r["response"] for r in read_jsonl(single)] == [r["response"] for r in records]


def test_qwen2_5_vl_positions_use_absolute_time_and_the_original_rule(tmp_path):
    from numpro.models.base import load_model
    from numpro.models.tiny import build

    model = load_model(build("qwen2_5_vl", tmp_path / "tiny_q25"))
    assert model.model.__class__.__name__ == "Qwen2_5_VLForConditionalGeneration"
    frames = np.zeros((16, 336, 336, 3), np.uint8)
    batch = model.preprocessor([frames], [prompts.mr_prompt("a dog")], 1.0).tensors
    assert batch["second_per_grid_ts"].tolist() == [2.0]  # 2 frames per grid at 1 FPS
    positions, _ = model.model.model.get_rope_index(
        batch["input_ids"], batch["mm_token_type_ids"], video_grid_thw=batch["video_grid_thw"],
        attention_mask=batch["attention_mask"], second_per_grid_ts=batch["second_per_grid_ts"])
    ids = batch["input_ids"][0]
    vision = (ids == model.model.config.video_token_id).nonzero().ravel()
    start, end = vision[0].item(), vision[-1].item()
    interval = 2.0 * model.model.config.vision_config.tokens_per_second  # seconds per grid x tokens/s
    temporal = positions[0, 0, vision].unique().tolist()
    assert temporal == [start + int(i * interval) for i in range(8)]
    # text resumes after the largest vision position (temporal here: start + 28), not after the grid
    assert positions[:, 0, end + 1].tolist() == [start + int(7 * interval) + 1] * 3


def test_an_upstream_json_list_is_not_appended_to(tiny_qwen, dataset, tmp_path, capsys):
    save = tmp_path / "upstream.json"
    save.write_text('[{"id": "vid0_0", "response": "From 1 to 2"}]')
    assert main(qwen2_vl_7b_mr.SPEC, mr_args(tiny_qwen, dataset, save)) == 2
    assert "JSON list" in capsys.readouterr().err
    assert save.read_text() == '[{"id": "vid0_0", "response": "From 1 to 2"}]'


def test_a_malformed_test_file_stops_with_its_name(tiny_qwen, dataset, tmp_path, capsys):
    records = json.loads((dataset / "test.json").read_text())
    bad = tmp_path / "dup.json"
    bad.write_text(json.dumps(records + records[:1]))  # a repeated id would break resuming
    args = mr_args(tiny_qwen, dataset, tmp_path / "p.jsonl")
    args[1] = str(bad)
    assert main(qwen2_vl_7b_mr.SPEC, args) == 2
    assert re.search(r"dup.json.*duplicate id", capsys.readouterr().err)
