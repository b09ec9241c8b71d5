"""NumPro-FT training on the CPU with the tiny LongVA and synthetic numbered clips.

One DeepSpeed run of scripts/train.sh (plus its resumption) and one plain-Trainer run are
shared by the end-to-end tests (module-scoped fixtures); the first DeepSpeed launch builds
DeepSpeed's CPU communication op once (about 1.5 minutes), later ones reuse it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from numpro import prompts, synthetic
from numpro.clip_writer import write_mp4
from numpro.models import longva
from numpro.models.longva_inputs import IGNORE_INDEX, IMAGE_TOKEN_INDEX, render_prompt, tokenizer_image_token
from numpro.models.longva_lora import NON_LORA_NAME, PEFT_011_LORA_FIELDS, apply_lora, peft_011_config
from numpro.stamp import Stamper
from numpro.training import arguments, conversation, preflight
from numpro.training.data import ClipDataset, Collator
from numpro.training.lora import add_lora, describe, lora_config, parameter_groups
from numpro.training.saving import save_released, trainable_state
from numpro.video import read_sampled

from conftest import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "eval"))
import numpro_ft_mr  # noqa: E402

CAP = 1024  # model_max_length of the runs: 5-frame clips fit (~790 tokens), 8-frame clips do not
GOOD = [("v_clip0", (0, 2)), ("v_clip1", (1, 3)), ("v_clip2", (2, 4)), ("v_clip3", (0, 1))]
# The dataclass fields of peft 0.11.1's LoraConfig (peft/tuners/lora/config.py) and its bases PeftConfig
# and PeftConfigMixin (peft/config.py): upstream's pin raises TypeError on any other adapter_config.json key.
PEFT_0_11_1_LORA_FIELDS = {
    "peft_type", "auto_mapping",
    "base_model_name_or_path", "revision", "task_type", "inference_mode",
    "r", "target_modules", "lora_alpha", "lora_dropout", "fan_in_fan_out", "bias", "use_rslora", "modules_to_save",
    "init_lora_weights", "layers_to_transform", "layers_pattern", "rank_pattern", "alpha_pattern",
    "megatron_config", "megatron_core", "loftq_config", "use_dora", "layer_replication",
}


# ---------------------------------------------------------------------- data
def numbered_clip(path: Path, frames: int, seed: int) -> Path:
    """A 0.5-FPS clip of 336x336 frames stamped 0..frames-1, as preprocessing writes them."""
    background = ((40 + 50 * seed) % 256, (90 + 30 * seed) % 256, 160)
    pixels = np.stack([synthetic.index_pattern(100 * seed + k, 336, 336, background) for k in range(frames)])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_mp4(path, Stamper().stamp_all(pixels, range(frames)), 0.5)
    return path


def question(query: str) -> dict:
    return {"from": "human", "value": "<image>\n" + prompts.mr_prompt(query)}


def answer(start: int, end: int) -> dict:
    return {"from": "gpt", "value": f"From {start} to {end}."}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """train_sft.json with 4 trainable anet samples (one multi-turn), one of each problem, 4 malformed."""
    root = tmp_path_factory.mktemp("train_data")
    anet = root / "anet"
    samples = []
    for seed, (name, span) in enumerate(GOOD):
        numbered_clip(anet / f"{name}.mp4", 5, seed)
        samples.append({"video": name, "source": "anet", "conversations": [question(f"thing {seed}"), answer(*span)]})
    samples[1]["conversations"] += [{"from": "human", "value": "And the person?"}, answer(3, 4)]
    numbered_clip(anet / "v_long.mp4", 8, 7)
    (anet / "v_broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    samples += [
        {"video": "v_long", "source": "anet", "conversations": [question("long"), answer(1, 7)]},
        {"video": "v_gone", "source": "anet", "conversations": [question("gone"), answer(0, 1)]},
        {"video": "v_broken", "source": "anet", "conversations": [question("broken"), answer(0, 1)]},
        {"video": "v_clip0", "source": "anet",
         "conversations": [{"from": "human", "value": "<image>\n<image>\ntwo videos?"}, answer(0, 1)]},
        {"video": "d_clip", "source": "didemo", "conversations": [question("didemo"), answer(0, 1)]},
        # malformed: skipped and counted by cause, never a stop (records 10-13)
        {"video": "v_clip1", "source": "anet", "conversations": [answer(0, 1), question("gpt first")]},
        {"video": "v_clip2", "source": "anet", "conversations": [question("q"), {"from": "system", "value": "hm"}]},
        {"video": "v_clip3", "source": "anet",
         "conversations": [question("q"), {"from": "human", "value": "again?"}, answer(0, 1)]},
        {"source": "anet", "conversations": [question("no video field"), answer(0, 1)]},
    ]
    (root / "train_sft.json").write_text(json.dumps(samples, indent=1))
    return root


def folders(data: Path) -> dict:
    return preflight.source_folders(str(data / "anet"), str(data / "didemo"), str(data / "internvid"), None)


# ---------------------------------------------------------------------- the supervision mask
MULTI_TURN = [
    question("a dog"),
    answer(2, 5),
    {"from": "human", "value": "And when does it sit?"},
    {"from": "gpt", "value": "From 6 to 7, briefly."},
]


def ids_of(tokenizer, text: str) -> list[int]:
    return tokenizer(text).input_ids


def test_labels_are_every_answer_plus_the_final_turn_end_and_its_newline(tiny_lva):
    tok = tiny_lva.tokenizer
    im_end, newline = tok.convert_tokens_to_ids("<|im_end|>"), ids_of(tok, "\n")
    assert len(newline) == 1
    encoded = conversation.encode(MULTI_TURN, tok)
    supervised = [label for label in encoded.labels if label != IGNORE_INDEX]
    assert supervised == ids_of(tok, "From 2 to 5.") + ids_of(tok, "From 6 to 7, briefly.") + [im_end] + newline
    # SPEC 5/10's rule position by position: each answer's tokens right after its "assistant\n" header;
    # the first answer's <|im_end|> and newline are not targets; the final ones are, as upstream's
    # preprocess_qwen leaves them (one target more per sample than the turn end alone).
    header = ids_of(tok, "<|im_start|>assistant\n")
    ids, labels = encoded.input_ids, encoded.labels
    starts = [i + len(header) for i in range(len(ids)) if ids[i:i + len(header)] == header]
    first, second = ids_of(tok, "From 2 to 5."), ids_of(tok, "From 6 to 7, briefly.")
    assert labels[starts[0]:starts[0] + len(first)] == first
    assert labels[starts[0] + len(first)] == IGNORE_INDEX and ids[starts[0] + len(first)] == im_end
    assert labels[starts[0] + len(first) + 1] == IGNORE_INDEX and ids[starts[0] + len(first) + 1] == newline[0]
    assert labels[starts[1]:] == second + [im_end] + newline  # the sequence ends with the supervised newline
    assert encoded.supervised_end == len(ids)
    assert all(label == IGNORE_INDEX for label in labels[:starts[0]])  # system, user turn, video
    assert labels[ids.index(IMAGE_TOKEN_INDEX)] == IGNORE_INDEX


def test_training_ids_are_the_whole_text_tokenised_and_start_with_the_eval_prompt(tiny_lva):
    tok = tiny_lva.tokenizer
    encoded = conversation.encode(MULTI_TURN, tok)
    assert encoded.input_ids == tokenizer_image_token(conversation.render(MULTI_TURN), tok)
    eval_prompt = tokenizer_image_token(render_prompt(prompts.mr_prompt("a dog")), tok)
    assert encoded.input_ids[:len(eval_prompt)] == eval_prompt
    assert encoded.input_ids.count(IMAGE_TOKEN_INDEX) == 1


@pytest.mark.parametrize("turns, reason, message", [
    ([answer(0, 1), question("q")], conversation.FIRST_NOT_USER, "turn 0 is from 'gpt'"),
    ([question("q"), {"from": "system", "value": "x"}], conversation.UNKNOWN_ROLE, "turn 1: unknown role 'system'"),
    ([question("q"), {"from": "human", "value": "more"}, answer(0, 1)], conversation.NOT_ALTERNATING,
     "turns 0 and 1 are both from 'human'"),
    ([question("q"), answer(0, 1), answer(1, 2)], conversation.NOT_ALTERNATING, "turns 1 and 2"),
    (MULTI_TURN[:2] + [{"from": "human", "value": "Thanks!"}], conversation.LAST_NOT_ANSWER, "turn 2"),
    ([{"from": "human", "value": "no video here"}, answer(0, 1)], conversation.NO_IMAGE, "found 0"),
    ([{"from": "human", "value": "<image> and <image>"}, answer(0, 1)], conversation.SEVERAL_IMAGES, "found 2"),
    ([{"from": "human", "value": "question"}, {"from": "gpt", "value": "<image>"}], conversation.IMAGE_IN_ANSWER,
     "user"),
    ([question("q"), {"from": "gpt", "value": " "}], conversation.EMPTY_ANSWER, "turn 1: the answer is empty"),
    (MULTI_TURN[:3] + [{"from": "gpt", "value": ""}], conversation.EMPTY_ANSWER, "turn 3"),
    ([question("q"), {"from": "gpt"}], conversation.MALFORMED, "missing field 'value'"),
    ([], conversation.MALFORMED, "no turns"),
])
def test_conversations_that_cannot_train_as_intended_are_refused_with_their_reason(tiny_lva, turns, reason, message):
    with pytest.raises(conversation.ConversationError, match=message) as refused:
        conversation.encode(turns, tiny_lva.tokenizer)
    assert refused.value.reason == reason


def test_the_placeholder_moves_to_the_front_of_its_turn():
    turns = [{"from": "human", "value": "Look: <image> now"}, answer(0, 1)]
    assert conversation.render(turns).count("<|im_start|>user\n<image>\nLook:  now<|im_end|>") == 1


# ---------------------------------------------------------------------- forward with labels
def batch_of(model, data, names):
    samples = preflight.read_samples(data / "train_sft.json")
    index = {}
    for i, sample in enumerate(samples):
        index.setdefault(sample.get("video"), i)
    kept = [preflight.Kept(index[n], n, "anet", str(data / "anet" / f"{n}.mp4"), 5, 0) for n in names]
    dataset = ClipDataset(samples, kept, model.tokenizer, model.preprocessor.clip, CAP)
    return Collator(model.preprocessor.pad_id)([dataset[i] for i in range(len(kept))])


def test_forward_splices_the_labels_and_never_targets_visual_tokens(tiny_lva, data):
    network = tiny_lva.network
    batch = batch_of(tiny_lva, data, ["v_clip0", "v_clip1"])  # different lengths: right padding
    pixels = tiny_lva.preprocessor.clip.normalize(batch["frames"])
    with torch.no_grad():
        out = network(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"],
                      pixel_values=pixels, frame_counts=batch["frame_counts"])
        rows = network.splice(batch["input_ids"], batch["attention_mask"], pixels, batch["frame_counts"],
                              batch["labels"])
        logits, targets = [], []
        for row, (embeds, labels) in enumerate(rows):
            slot = batch["input_ids"][row].tolist().index(IMAGE_TOKEN_INDEX)
            assert (labels[slot:slot + 5 * 144] == IGNORE_INDEX).all()
            text = batch["labels"][row][batch["attention_mask"][row].bool()]
            assert torch.equal(torch.cat([labels[:slot], labels[slot + 5 * 144:]]), torch.cat([text[:slot], text[slot + 1:]]))
            alone = network(inputs_embeds=embeds[None]).logits[0]
            assert torch.allclose(out.logits[row, :len(embeds)], alone, atol=1e-5)  # padding changes nothing
            logits.append(alone[:-1])
            targets.append(labels[1:])
    expected = torch.nn.functional.cross_entropy(torch.cat(logits), torch.cat(targets), ignore_index=IGNORE_INDEX)
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert network._supports_logits_to_keep()  # Qwen2's signature kept: generation computes the last logits only


# ---------------------------------------------------------------------- the pre-flight scan
@pytest.fixture(scope="module")
def report(data, tiny_lva):
    return preflight.scan(data / "train_sft.json", folders(data), tiny_lva.tokenizer, CAP, progress=False)


def test_preflight_counts_each_problem_once_per_source(report):
    counts = report.counts()
    assert counts["anet"] == {"samples": 12, "kept": 4, preflight.FOLDER_MISSING: 0, preflight.VIDEO_MISSING: 1,
                              preflight.INVALID: 5, preflight.UNREADABLE: 1, preflight.CUT: 1}
    assert counts["didemo"]["samples"] == counts["didemo"][preflight.FOLDER_MISSING] == 1
    assert "internvid" not in counts  # no sample names it
    assert [k.video for k in report.kept] == [name for name, _ in GOOD]
    assert {(s.index + 1, s.video, s.reason, s.cause) for s in report.skipped} == {
        (6, "v_gone", preflight.VIDEO_MISSING, ""), (7, "v_broken", preflight.UNREADABLE, ""),
        (8, "v_clip0", preflight.INVALID, conversation.SEVERAL_IMAGES), (5, "v_long", preflight.CUT, ""),
        (9, "d_clip", preflight.FOLDER_MISSING, ""),
        (10, "v_clip1", preflight.INVALID, conversation.FIRST_NOT_USER),
        (11, "v_clip2", preflight.INVALID, conversation.UNKNOWN_ROLE),
        (12, "v_clip3", preflight.INVALID, conversation.NOT_ALTERNATING),
        (13, "?", preflight.INVALID, conversation.MALFORMED)}
    assert report.invalid() == {conversation.MALFORMED: 1, conversation.UNKNOWN_ROLE: 1,
                                conversation.FIRST_NOT_USER: 1, conversation.NOT_ALTERNATING: 1,
                                conversation.SEVERAL_IMAGES: 1}


def test_preflight_table_says_what_is_missing_cut_and_kept(report, data):
    table = report.table()
    lines = table.splitlines()
    assert lines[0] == f"pre-flight scan of {data / 'train_sft.json'}: 13 samples, 4 kept"
    head = lines[1].split("  ")
    assert [h.strip() for h in head if h.strip()][-5:] == [
        preflight.INVALID, preflight.FOLDER_MISSING, preflight.VIDEO_MISSING, preflight.UNREADABLE,
        f"{preflight.CUT} ({CAP})"]
    didemo = next(line for line in lines if line.strip().startswith("didemo"))
    assert "(does not exist)" in didemo and didemo.split()[-7:] == ["1", "0", "0", "1", "0", "0", "0"]
    anet = next(line for line in lines if line.strip().startswith("anet"))
    assert anet.split()[-7:] == ["12", "4", "5", "0", "1", "1", "1"]
    assert (f"  didemo: folder {data / 'didemo'} does not exist: its 1 samples are skipped, "
            "the other sources train") in lines
    assert f"  video missing [anet]: record 6 v_gone: not in {data / 'anet'}" in lines
    long_tokens = next(s for s in report.skipped if s.video == "v_long").detail
    assert f"  answer cut by the cap [anet]: record 5 v_long: {long_tokens}" in lines
    assert long_tokens.startswith("8 frames,") and long_tokens.endswith(f"> {CAP}")
    assert "\n  video unreadable [anet]: record 7 v_broken: " in table
    assert ("  conversation invalid: 1 malformed record, 1 unknown role, 1 first turn not human, "
            "1 turns do not alternate, 1 several <image>") in lines
    assert ("\n  conversation invalid [anet]: record 8 v_clip0: several <image>: expected one <image> placeholder "
            "in the conversation, found 2; record 10 v_clip1: first turn not human: turn 0 is from 'gpt'") in table
    assert "record 13 ?: malformed record: the sample: missing field 'video'" in table


def test_the_cap_rule_is_exact_at_the_boundary(report, data, tiny_lva):
    first = report.kept[0]
    encoded = conversation.encode(preflight.read_samples(data / "train_sft.json")[first.index]["conversations"],
                                  tiny_lva.tokenizer)
    assert first.frames == 5 and first.tokens == 5 * 144 + encoded.supervised_end - 1
    for cap, kept in ((first.tokens, True), (first.tokens - 1, False)):
        again = preflight.scan(data / "train_sft.json", folders(data), tiny_lva.tokenizer, cap, progress=False)
        assert (first.index in {k.index for k in again.kept}) is kept


def test_preflight_stops_when_nothing_is_left_or_when_strict(report, data, tiny_lva):
    preflight.check(report)  # four samples remain: train on them
    with pytest.raises(preflight.PreflightError, match="--strict_data: 9 of 13 samples would be skipped"):
        preflight.check(report, strict=True)
    nothing = preflight.scan(data / "train_sft.json", preflight.source_folders(None, None, None, None),
                             tiny_lva.tokenizer, CAP, progress=False)
    with pytest.raises(preflight.PreflightError, match="nothing left to train on: all 13 samples"):
        preflight.check(nothing)


def test_data_check_with_the_tokenizer_judges_as_the_preflight_scan(tiny_lva_dir, data, tiny_lva, tmp_path, capsys):
    from numpro import cli
    from numpro.datasets import check
    from numpro.training import eligibility

    # `numpro data check` stops on a record without a video field, which the scan skips and counts.
    samples = [s for s in preflight.read_samples(data / "train_sft.json") if "video" in s]
    path = tmp_path / "train_sft.json"
    path.write_text(json.dumps(samples))
    tokenizer = eligibility.load_tokenizer(tiny_lva_dir)
    boundary = preflight.scan(path, folders(data), tiny_lva.tokenizer, CAP, progress=False).kept[0].tokens
    for cap in (boundary, boundary - 1):  # exact at the boundary, as the scan
        scan = preflight.scan(path, folders(data), tiny_lva.tokenizer, cap, progress=False)
        options = check.Options(source_folders={"anet": str(data / "anet")}, tokenizer=tokenizer,
                                model_max_length=cap, progress=False, examples=50)
        tally = check.check(path, options=options).tallies["anet"]
        skipped = {kind: {f"record {s.index + 1} ({s.video}): {s.detail.split(' > ')[0]}"
                          for s in scan.skipped if s.reason == kind and s.source == "anet"}
                   for kind in (preflight.CUT, preflight.INVALID)}
        assert set(tally.examples.get(check.CUT, [])) == skipped[preflight.CUT]
        assert {e.split(":")[0] for e in tally.examples[check.INVALID]} == {
            label.split(":")[0] for label in skipped[preflight.INVALID]}
    assert cli.main(["data", "check", "--annotations", str(path), "--anet_video_folder", str(data / "anet"),
                     "--tokenizer", str(tiny_lva_dir), "--model_max_length", str(boundary - 1), "--no_progress",
                     "--strict"]) == 1
    out = capsys.readouterr().out
    assert f"answer cut by the cap ({boundary - 1})" in out and "token counts exact" in out


# ---------------------------------------------------------------------- dataset
def test_dataset_feeds_every_frame_of_the_clip_and_caps_by_linspace(tiny_lva, data):
    samples = preflight.read_samples(data / "train_sft.json")
    path = data / "anet" / "v_clip2.mp4"
    kept = [preflight.Kept(2, "v_clip2", "anet", str(path), 5, 0)]
    every = read_sampled(path, 0.5, size=None).pixels
    item = ClipDataset(samples, kept, tiny_lva.tokenizer, tiny_lva.preprocessor.clip, CAP)[0]
    assert np.array_equal(item["frames"].numpy(), every)
    capped = ClipDataset(samples, kept, tiny_lva.tokenizer, tiny_lva.preprocessor.clip, CAP, max_frames=3)[0]
    assert np.array_equal(capped["frames"].numpy(), every[[0, 2, 4]])


def test_an_undecodable_video_is_counted_never_replaced(tiny_lva_dir, tiny_lva, data, tmp_path):
    from transformers import TrainingArguments

    from numpro.training.trainer import SKIPPED_NAME, NumProTrainer

    broken = tmp_path / "v_clip0.mp4"
    broken.write_bytes((data / "anet" / "v_clip0.mp4").read_bytes()[:300])  # cut after the scan
    samples = preflight.read_samples(data / "train_sft.json")
    dataset = ClipDataset(samples, [preflight.Kept(0, "v_clip0", "anet", str(broken), 5, 0)], tiny_lva.tokenizer,
                          tiny_lva.preprocessor.clip, CAP)
    item = dataset[0]
    assert set(item) == {"skipped"} and item["skipped"][:2] == (0, "v_clip0")
    batch = Collator(tiny_lva.preprocessor.pad_id)([item])
    assert set(batch) == {"skipped"}

    peft_model = add_lora(longva.load(tiny_lva_dir).network, lora_config(4, 8, 0.0))
    args = TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, report_to="none")
    trainer = NumProTrainer(model=peft_model, args=args, train_dataset=dataset, data_collator=Collator(0),
                            clip=tiny_lva.preprocessor.clip, pad_id=tiny_lva.preprocessor.pad_id)
    loss = trainer.compute_loss(peft_model, batch)
    assert loss.item() == 0.0 and loss.requires_grad
    logged = read_jsonl(tmp_path / "out" / SKIPPED_NAME)
    assert logged == [{"step": 0, "record": 1, "video": "v_clip0", "error": item["skipped"][2]}]


def test_the_trainer_orders_samples_as_upstreams_grouped_sampler(tiny_lva_dir, tiny_lva, data, tmp_path):
    from torch.utils.data import RandomSampler

    from numpro.training.sampler import ModalityLengthGroupedSampler
    from numpro.training.trainer import NumProTrainer

    samples = preflight.read_samples(data / "train_sft.json")
    kept = [preflight.Kept(i, name, "anet", str(data / "anet" / f"{name}.mp4"), 5, 0) for i, (name, _) in
            enumerate(GOOD)]
    dataset = ClipDataset(samples, kept, tiny_lva.tokenizer, tiny_lva.preprocessor.clip, CAP)
    # word counts, negative: NumPro's samples have "video", not "image"
    assert dataset.modality_lengths == [-sum(len(t["value"].split()) for t in samples[i]["conversations"])
                                        for i in range(4)]
    peft_model = add_lora(longva.load(tiny_lva_dir).network, lora_config(4, 8, 0.0))
    flags = ["--output_dir", str(tmp_path), "--per_device_train_batch_size", "2", "--gradient_accumulation_steps",
             "3", "--report_to", "none", "--seed", "5"]
    samplers = {}
    for extra in ([], ["--group_by_modality_length", "False"]):
        args = arguments.parse(flags + extra)[2]
        trainer = NumProTrainer(model=peft_model, args=args, train_dataset=dataset, data_collator=Collator(0),
                                clip=tiny_lva.preprocessor.clip, pad_id=tiny_lva.preprocessor.pad_id)
        samplers[args.group_by_modality_length] = trainer._get_train_sampler()
    assert isinstance(samplers[False], RandomSampler)
    grouped = samplers[True]  # the default, as upstream's train.sh
    assert isinstance(grouped, ModalityLengthGroupedSampler) and grouped.lengths == dataset.modality_lengths
    # one megabatch = one optimizer step: batch 2 x (1 process x 3 accumulation steps), seeded by --seed
    assert (grouped.batch_size, grouped.world_size, grouped.seed) == (2, 3, 5)


# ---------------------------------------------------------------------- arguments
def upstream_flags(tiny: Path, data: Path, out: Path) -> list[str]:
    """upstream's scripts/train.sh command line, with local paths (and tf32 off: no GPU here)."""
    return [
        "--deepspeed", str(ROOT / "configs" / "zero2.json"), "--model_name_or_path", str(tiny),
        "--version", "qwen_1_5", "--data_path", str(data / "train_sft.json"),
        "--anet_video_folder", str(data / "anet"), "--didemo_video_folder", str(data / "didemo"),
        "--internvid_video_folder", str(data / "internvid"), "--videobackend", "all",
        "--vision_tower", "./pretrained/clip-vit-large-patch14-336", "--mm_projector_type", "mlp2x_gelu",
        "--lora_enable", "True", "--unfreeze_mm_vision_tower", "False", "--mm_vision_tower_lr", "2e-6",
        "--image_aspect_ratio", "anyres", "--group_by_modality_length", "True", "--mm_vision_select_layer", "-2",
        "--mm_vision_select_feature", "patch", "--mm_patch_merge_type", "unires", "--mm_use_im_start_end", "False",
        "--mm_use_im_patch_token", "False", "--bf16", "True", "--output_dir", str(out), "--num_train_epochs", "3",
        "--per_device_train_batch_size", "1", "--per_device_eval_batch_size", "4",
        "--gradient_accumulation_steps", "16", "--evaluation_strategy", "no", "--save_strategy", "steps",
        "--save_steps", "50000", "--save_total_limit", "1", "--learning_rate", "1e-4", "--weight_decay", "0.",
        "--warmup_ratio", "0.05", "--lr_scheduler_type", "cosine", "--logging_steps", "1", "--tf32", "False",
        "--lora_r", "64", "--lora_alpha", "128", "--model_max_length", "4096", "--gradient_checkpointing", "True",
        "--dataloader_num_workers", "4", "--lazy_preprocess", "True", "--run_name", "longva_7b_dpo_NumPro_FT",
    ]


def test_upstream_command_line_parses_with_its_flag_names(tiny_lva_dir, data, tmp_path):
    model_args, data_args, training_args = arguments.parse(upstream_flags(tiny_lva_dir, data, tmp_path))
    assert (training_args.lora_r, training_args.lora_alpha, training_args.lora_dropout) == (64, 128, 0.05)
    assert training_args.activation_checkpointing and training_args.warmup_steps == 0.05
    assert training_args.gradient_accumulation_steps == 16 and training_args.optim == "adamw_torch"
    assert data_args.videobackend == "all" and data_args.max_frames == 240
    assert training_args.group_by_modality_length is True and model_args.train_vision_lora is False
    config = json.loads((tiny_lva_dir / "config.json").read_text())
    warnings = arguments.check(model_args, data_args, training_args, config)
    for flag in arguments.UPSTREAM_NO_EFFECT:
        assert any(w.startswith(f"--{flag} ") and "no effect" in w for w in warnings), flag
    assert any(w.startswith("--vision_tower ./pretrained/") for w in warnings)


@pytest.mark.parametrize("extra, message", [
    (["--mm_projector_type", "linear"], "config.json says 'mlp2x_gelu'"),
    (["--mm_vision_select_layer", "-1"], "config.json says -2"),
    (["--lora_enable", "False"], "LoRA recipe"),
    (["--version", "v1"], "qwen_1_5"),
    (["--videobackend", "decord"], "only 'all'"),
    (["--unfreeze_mm_vision_tower", "True"], "frozen"),
    (["--lora_bias", "all"], "LoRA and the projector only"),
    (["--vision_lora", "False", "--train_vision_lora", "True"], "needs CLIP's LoRA"),
])
def test_arguments_that_cannot_describe_numpro_ft_are_refused(tiny_lva_dir, data, tmp_path, extra, message):
    parsed = arguments.parse(upstream_flags(tiny_lva_dir, data, tmp_path) + extra)
    with pytest.raises(arguments.ArgumentError, match=message):
        arguments.check(*parsed, json.loads((tiny_lva_dir / "config.json").read_text()))


# ---------------------------------------------------------------------- trainable parameters
def lora_size(network, r: int, vision: bool) -> int:
    total = 0
    for name, module in network.named_modules():
        targeted = name.rsplit(".", 1)[-1] in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                               "down_proj")
        if targeted and isinstance(module, torch.nn.Linear) and (".vision_tower." in name) == vision:
            total += r * (module.in_features + module.out_features)
    return total


@pytest.mark.parametrize("vision, train_vision", [(True, False), (True, True), (False, False)])
def test_lora_everywhere_upstream_put_it_projector_trained_the_rest_frozen(tiny_lva_dir, vision, train_vision,
                                                                            tmp_path):
    network = longva.load(tiny_lva_dir).network
    llm, clip = lora_size(network, 4, False), lora_size(network, 4, True)
    projector = sum(p.numel() for p in network.model.mm_projector.parameters())
    peft_model = add_lora(network, lora_config(4, 8, 0.05, vision=vision), train_vision=train_vision)
    groups = parameter_groups(peft_model)
    assert groups["LLM LoRA"] == (llm, llm) and groups["projector"] == (projector, projector)
    # CLIP's LoRA is there whenever upstream put it, trained only on request
    assert ("CLIP LoRA" in groups) is vision and (not vision or groups["CLIP LoRA"] == (train_vision * clip, clip))
    for frozen in ("LLM base", "CLIP base", "embeddings + lm_head"):
        assert groups[frozen][0] == 0 and groups[frozen][1] > 0
    shown = describe(peft_model).splitlines()
    assert shown[0].startswith(f"parameters: {llm + projector + train_vision * clip:,} trainable")
    mode = {(True, False): "CLIP LoRA: present at identity (B = 0), saved, not trained",
            (True, True): "CLIP LoRA: trained (--train_vision_lora True",
            (False, False): "CLIP LoRA: none (--vision_lora False"}[vision, train_vision]
    assert shown[-1].startswith(mode)
    # the saved folder loads with the evaluation's strict loader, with or without CLIP LoRA
    save_released(peft_model, tmp_path / "ft", trainable_state(peft_model), {})
    written = json.loads((tmp_path / "ft" / "adapter_config.json").read_text())
    assert set(written) <= PEFT_0_11_1_LORA_FIELDS
    full = peft_model.peft_config["default"].to_dict()
    for key, value in written.items():  # same values as the config trained with (PEFT saves for inference)
        expected = full[key] if key != "inference_mode" else True
        assert (sorted(value) if isinstance(value, list) else value) == (
            sorted(expected) if isinstance(expected, (set, list)) else expected), key
    merged = apply_lora(longva.load(tiny_lva_dir).network, tmp_path / "ft")
    assert sorted(torch.load(tmp_path / "ft" / NON_LORA_NAME, weights_only=True)) == sorted(
        f"base_model.model.model.mm_projector.{i}.{p}" for i in (0, 2) for p in ("weight", "bias"))
    assert merged is not None


def test_adapter_config_keeps_peft_0_11_fields_and_refuses_what_it_cannot_express():
    from peft import LoraConfig

    assert PEFT_011_LORA_FIELDS == PEFT_0_11_1_LORA_FIELDS
    config = json.loads(json.dumps(lora_config(64, 128, 0.05).to_dict(), default=sorted))
    assert {"peft_version", "lora_bias", "exclude_modules", "alora_invocation_tokens"} <= set(config)
    reduced = peft_011_config(config)
    assert set(reduced) == set(config) & PEFT_0_11_1_LORA_FIELDS
    assert {k: reduced[k] for k in ("r", "lora_alpha", "lora_dropout", "bias", "task_type", "peft_type")} == {
        "r": 64, "lora_alpha": 128, "lora_dropout": 0.05, "bias": "none", "task_type": "CAUSAL_LM",
        "peft_type": "LORA"}
    assert LoraConfig(**{k: v for k, v in reduced.items() if k != "peft_type"}).r == 64  # today's PEFT reads it
    for key, value in (("lora_bias", True), ("use_qalora", True), ("exclude_modules", ["lm_head"])):
        with pytest.raises(ValueError, match=f"peft 0.11 cannot express: {key}="):
            peft_011_config({**config, key: value})


def test_full_size_trainable_parameters_by_group_on_the_meta_device():
    model = longva.load(ROOT / "configs" / "longva_7b_dpo", device="meta", random_init=True)
    with torch.device("meta"):
        peft_model = add_lora(model.network, lora_config(64, 128, 0.05))
    groups = parameter_groups(peft_model)
    # 28 layers x r(3584+3584 q, 3584+512 k, v, 3584+3584 o, 3 x (3584+18944) mlp) with r = 64
    assert groups["LLM LoRA"][0] == 28 * 64 * (2 * 7168 + 2 * 4096 + 3 * 22528) == 161_480_704
    # q/k/v of every CLIP layer: saved, not trained (upstream's run never changed them)
    assert groups["CLIP LoRA"] == (0, 24 * 3 * 64 * 2048) == (0, 9_437_184)
    assert groups["projector"][0] == 1024 * 3584 + 3584 + 3584 * 3584 + 3584 == 16_522_240
    assert sum(t for t, _ in groups.values()) == 178_002_944
    for name, param in peft_model.named_parameters():
        if "lora_" in name and ".vision_tower." in name:
            param.requires_grad_(True)  # what --train_vision_lora True trains on top
    assert sum(t for t, _ in parameter_groups(peft_model).values()) == 187_440_128


@pytest.mark.parametrize("train_vision", [False, True])
def test_clip_lora_gets_a_gradient_only_when_asked(tiny_lva_dir, tiny_lva, data, train_vision):
    peft_model = add_lora(longva.load(tiny_lva_dir).network, lora_config(4, 8, 0.0), train_vision=train_vision)
    batch = batch_of(tiny_lva, data, ["v_clip0"])
    out = peft_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"],
                     pixel_values=tiny_lva.preprocessor.clip.normalize(batch["frames"]),
                     frame_counts=batch["frame_counts"])
    out.loss.backward()
    grads = {name: param.grad for name, param in peft_model.named_parameters() if "lora_B" in name}
    clip = {n: g for n, g in grads.items() if ".vision_tower." in n}
    llm = {n: g for n, g in grads.items() if ".vision_tower." not in n}
    assert clip and all(g is not None and g.any() for g in llm.values())
    if train_vision:  # layer -2's features: every layer below the last gets a gradient
        assert sum(g is not None and bool(g.any()) for g in clip.values()) >= len(clip) - 3
    else:
        assert all(g is None for g in clip.values())


# ---------------------------------------------------------------------- end to end: scripts/train.sh
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_env(tiny: Path, data: Path, out: Path) -> dict:
    env = dict(os.environ)
    env.update(
        DEEPSPEED=str(Path(sys.executable).parent / "deepspeed"), GPUS_PER_NODE="1", MASTER_PORT=str(free_port()),
        BF16="false", TF32="false", MODEL_PATH=str(tiny), VISION_TOWER="", DATA_PATH=str(data / "train_sft.json"),
        ANET_PATH=str(data / "anet"), DIDEMO_PATH=str(data / "didemo"), INTERNVID_PATH=str(data / "internvid"),
        SAVE_PATH=str(out), EPOCH="3", BATCH_SIZE="1", GRADIENT_ACCU_STEPS="1", LR="2e-2", LORA_R="8",
        LORA_ALPHA="16", MODEL_MAX_LENGTH=str(CAP), NUM_WORKERS="1", SAVE_STRATEGY="steps", SAVE_STEPS="4",
        SAVE_TOTAL_LIMIT="3", EXTRA_ARGS="--preflight_workers 1 --disable_tqdm True",
    )
    return env


def run_script(shell: str, env: dict) -> str:
    result = subprocess.run([shell, str(ROOT / "scripts" / "train.sh")], env=env, cwd=ROOT, capture_output=True,
                            text=True, timeout=1200)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


@pytest.fixture(scope="module")
def ds_run(tiny_lva_dir, data, tmp_path_factory):
    """sh scripts/train.sh (12 steps, checkpoints at 4, 8, 12), then a resumption after losing checkpoint-12."""
    out = tmp_path_factory.mktemp("ds_run") / "longva_7b_dpo_NumPro_FT"
    env = train_env(tiny_lva_dir, data, out)
    first = run_script("sh", env)
    first_log = read_jsonl(out / "train_log.jsonl")
    final_adapter = (out / "adapter_model.safetensors").read_bytes()
    shutil.rmtree(out / "checkpoint-12")  # as if the run had stopped after saving step 8
    second = run_script("bash", env)
    second_log = read_jsonl(out / "train_log.jsonl")  # the whole log after the resumption
    return {"out": out, "first": first, "second": second, "first_log": first_log, "second_log": second_log,
            "final_adapter": final_adapter}


def losses(log: list[dict]) -> dict[int, dict]:
    return {entry["step"]: entry for entry in log if "loss" in entry}


def assert_one_entry_per_step(log: list[dict], steps: int) -> None:
    trained = [entry["step"] for entry in log if "loss" in entry]
    assert trained == list(range(1, steps + 1))
    assert sum("preflight/kept" in entry for entry in log) == 1  # the scan's numbers, logged once


def test_train_sh_runs_deepspeed_zero2_on_the_cpu(ds_run):
    checkpoint = ds_run["out"] / "checkpoint-8"
    assert (checkpoint / "latest").read_text().strip() == "global_step8"
    assert (checkpoint / "global_step8" / "zero_pp_rank_0_mp_rank_00_optim_states.pt").is_file()  # ZeRO's shard
    assert "--deepspeed" in ds_run["first"] and "configs/zero2.json" in ds_run["first"]
    assert "parameters: " in ds_run["first"] and "LLM LoRA" in ds_run["first"]


def test_the_loss_falls_over_the_epochs(ds_run):
    steps = losses(ds_run["first_log"])
    assert sorted(steps) == list(range(1, 13))
    first_epoch = np.mean([steps[s]["loss"] for s in range(1, 5)])
    last_epoch = np.mean([steps[s]["loss"] for s in range(9, 13)])
    assert last_epoch < first_epoch - 0.1, (first_epoch, last_epoch)


def test_logs_hold_loss_lr_samples_per_second_memory_and_the_preflight_numbers(ds_run):
    steps = losses(ds_run["first_log"])
    for entry in steps.values():
        assert {"loss", "learning_rate", "grad_norm", "epoch"} <= set(entry)
        assert entry["samples_per_second"] > 0 and entry["peak_rss_gb"] > 0
    assert steps[2]["learning_rate"] == pytest.approx(2e-2)  # one warmup step (0.05 of 12, rounded up)
    state = json.loads((ds_run["out"] / "trainer_state.json").read_text())
    numbers = next(e for e in state["log_history"] if "preflight/kept" in e)
    assert numbers["preflight/samples"] == 13 and numbers["preflight/kept"] == 4
    assert numbers["preflight/answer_cut_by_the_cap"] == 1 and numbers["preflight/folder_missing"] == 1
    assert numbers["preflight/conversation_invalid"] == 5 and numbers["preflight/invalid/unknown_role"] == 1


def test_the_run_wrote_and_printed_its_preflight_report(ds_run, data):
    written = json.loads((ds_run["out"] / "preflight.json").read_text())
    assert written["status"] == "ok" and written["totals"]["kept"] == 4
    assert written["folders"]["didemo"] == {"path": str(data / "didemo"), "exists": False, "videos": 0}
    assert {(s["index"] + 1, s["reason"]) for s in written["skipped"]} == {
        (5, preflight.CUT), (6, preflight.VIDEO_MISSING), (7, preflight.UNREADABLE), (8, preflight.INVALID),
        (9, preflight.FOLDER_MISSING), (10, preflight.INVALID), (11, preflight.INVALID), (12, preflight.INVALID),
        (13, preflight.INVALID)}
    assert written["invalid"] == {"malformed record": 1, "unknown role": 1, "first turn not human": 1,
                                  "turns do not alternate": 1, "several <image>": 1}
    assert next(s for s in written["skipped"] if s["index"] == 11)["cause"] == "turns do not alternate"
    assert [s["video"] for s in json.loads((ds_run["out"] / "preflight_samples.json").read_text())] == [
        name for name, _ in GOOD]
    assert f"didemo: folder {data / 'didemo'} does not exist: its 1 samples are skipped" in ds_run["first"]
    assert "conversation invalid [anet]: record 8 v_clip0: several <image>" in ds_run["first"]


def test_resuming_continues_from_the_saved_step(ds_run):
    assert f"resuming from {ds_run['out'] / 'checkpoint-8'}" in ds_run["second"]
    before, after = losses(ds_run["first_log"]), losses(ds_run["second_log"])
    # one entry per step: what came after checkpoint-8 was dropped, steps 9-12 are the resumed run's
    assert_one_entry_per_step(ds_run["second_log"], 12)
    kept = [entry for entry in ds_run["first_log"] if entry["step"] <= 8]
    assert ds_run["second_log"][:len(kept)] == kept
    assert all(after[step]["time"] > before[12]["time"] for step in (9, 10, 11, 12))
    for step in range(9, 13):  # same schedule, same data order, restored weights and optimizer
        assert after[step]["learning_rate"] == pytest.approx(before[step]["learning_rate"], rel=1e-6)
        assert after[step]["loss"] == pytest.approx(before[step]["loss"], abs=0.02)
    assert (ds_run["out"] / "checkpoint-12" / "adapter_config.json").is_file()


def test_the_output_has_the_released_layout(ds_run, tiny_lva_dir):
    from safetensors import safe_open

    out = ds_run["out"]
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 8 and config["lora_alpha"] == 16 and config["peft_type"] == "LORA"
    assert set(config) <= PEFT_0_11_1_LORA_FIELDS  # upstream's peft reads it
    with safe_open(out / "adapter_model.safetensors", framework="pt") as handle:
        final = {key: handle.get_tensor(key) for key in handle.keys()}
    with safe_open(out / "checkpoint-8" / "adapter_model.safetensors", framework="pt") as handle:
        step8 = {key: handle.get_tensor(key) for key in handle.keys()}
    clip = "base_model.model.model.vision_tower.vision_tower.vision_model.encoder.layers.0.self_attn."
    assert {clip + f"{p}_proj.lora_B.weight" for p in "qkv"} <= set(final)
    assert "base_model.model.model.layers.1.mlp.down_proj.lora_A.weight" in final
    # CLIP's LoRA after 12 steps: B exactly 0 (the identity, as upstream's run left it), A as initialised;
    # the LLM's LoRA moved between step 8 and the end
    vision = [key for key in final if ".vision_tower." in key]
    assert len(vision) == 2 * 3 * 2  # 2 tiny CLIP layers x q/k/v x A/B
    assert all(not final[k].any() for k in vision if "lora_B" in k)
    assert all(torch.equal(final[k], step8[k]) and final[k].any() for k in vision if "lora_A" in k)
    assert not torch.equal(final["base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"],
                           step8["base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"])
    assert "CLIP LoRA: present at identity (B = 0), saved, not trained" in ds_run["first"]
    projector = torch.load(out / NON_LORA_NAME, weights_only=True)
    base = longva.load(tiny_lva_dir).network.model.mm_projector
    assert not torch.equal(projector["base_model.model.model.mm_projector.0.weight"], base[0].weight)
    assert json.loads((out / "config.json").read_text())["tokenizer_model_max_length"] == CAP


def test_loading_an_adapter_with_an_all_zero_clip_lora_says_it_is_the_identity(ds_run, tiny_lva_dir, tmp_path, caplog):
    from safetensors.torch import load_file, save_file

    with caplog.at_level(logging.WARNING, logger="numpro.models.longva_lora"):
        apply_lora(longva.load(tiny_lva_dir).network, ds_run["out"])
    assert "the CLIP LoRA's 6 B matrices are all zero: it is the identity" in caplog.text
    changed = tmp_path / "changed"
    shutil.copytree(ds_run["out"], changed, ignore=shutil.ignore_patterns("checkpoint-*"))
    weights = load_file(changed / "adapter_model.safetensors")
    key = next(k for k in weights if ".vision_tower." in k and "lora_B" in k)
    weights[key] = torch.full_like(weights[key], 1e-3)
    save_file(weights, changed / "adapter_model.safetensors")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="numpro.models.longva_lora"):
        apply_lora(longva.load(tiny_lva_dir).network, changed)
    assert "identity" not in caplog.text


def test_the_output_loads_in_eval_numpro_ft_mr_and_changes_its_answers(ds_run, tiny_lva_dir, dataset, tmp_path):
    from numpro.evaluation.cli import main

    answers = {}
    for name, extra in (("base", []), ("numpro_ft", ["--lora_path", str(ds_run["out"])])):
        save = tmp_path / f"{name}.jsonl"
        argv = ["--model_path", str(tiny_lva_dir), "--test_path", str(dataset / "test.json"), "--data_path",
                str(dataset / "videos"), "--save_path", str(save), "--max_new_tokens", "8", "--workers", "1", *extra]
        assert main(numpro_ft_mr.SPEC, argv) == 0
        records = [r for r in read_jsonl(save) if r["status"] == "ok"]
        assert len(records) == 9
        answers[name] = [r["response"] for r in records]
    assert answers["base"] != answers["numpro_ft"]


# ---------------------------------------------------------------------- without DeepSpeed
def plain_flags(tiny: Path, data: Path, out: Path) -> list[str]:
    return ["--model_name_or_path", str(tiny), "--data_path", str(data / "train_sft.json"),
            "--anet_video_folder", str(data / "anet"), "--output_dir", str(out), "--model_max_length", str(CAP),
            "--lora_r", "8", "--lora_alpha", "16", "--num_train_epochs", "2", "--per_device_train_batch_size", "1",
            "--learning_rate", "2e-2", "--logging_steps", "1", "--save_strategy", "steps", "--save_steps", "3",
            "--gradient_checkpointing", "True", "--report_to", "none", "--preflight_workers", "1",
            "--disable_tqdm", "True", "--vision_lora", "False"]


def test_without_deepspeed_training_resumes_with_the_projector_restored(tiny_lva_dir, data, tmp_path):
    from numpro.training.train import main

    out = tmp_path / "plain"
    assert main(plain_flags(tiny_lva_dir, data, out)) == 0
    first_log = read_jsonl(out / "train_log.jsonl")
    first = losses(first_log)
    assert sorted(first) == list(range(1, 9)) and not (out / "checkpoint-6" / "global_step6").exists()
    for late in [c for c in out.glob("checkpoint-*") if int(c.name.split("-")[1]) > 6]:
        shutil.rmtree(late)
    # resumed in the middle of epoch 2 (4 steps an epoch): its remaining samples in that epoch's order
    assert main(plain_flags(tiny_lva_dir, data, out)) == 0
    second_log = read_jsonl(out / "train_log.jsonl")
    assert_one_entry_per_step(second_log, 8)
    assert [e for e in second_log if e["step"] <= 6] == [e for e in first_log if e["step"] <= 6]
    second = losses(second_log)
    for step in (7, 8):  # a projector left at its base weights, or another order, would change these losses
        assert second[step]["time"] > first[8]["time"]
        assert second[step]["loss"] == pytest.approx(first[step]["loss"], abs=1e-3)
    config = json.loads((out / "adapter_config.json").read_text())
    assert "vision_tower" in config["target_modules"]  # LLM-only pattern
    apply_lora(longva.load(tiny_lva_dir).network, out)


# ---------------------------------------------------------------------- the launcher script and the CLI
def launched(tmp_path: Path, **env) -> list[str]:
    """The command line scripts/train.sh hands to DeepSpeed's launcher (a stub records it)."""
    stub = tmp_path / "deepspeed"
    stub.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$RECORD"\n')
    stub.chmod(0o755)
    record = tmp_path / "argv.txt"
    clean = {k: v for k, v in os.environ.items() if k not in ("GPUS_PER_NODE", "NNODES", "HOSTFILE", "EXTRA_ARGS",
                                                               "DIDEMO_PATH", "DIDEO_PATH")}
    subprocess.run(["sh", str(ROOT / "scripts" / "train.sh")], env={**clean, "DEEPSPEED": str(stub),
                   "RECORD": str(record), **env}, check=True, timeout=60)
    return record.read_text().splitlines()


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_train_sh_defaults_are_upstreams_recipe(tmp_path):
    argv = launched(tmp_path)
    assert argv[:6] == ["--num_nodes", "1", "--num_gpus", "8", "--master_port", "29502"]
    assert "--hostfile" not in argv and flag(argv, "--module") == "numpro.training"
    recipe = {"--per_device_train_batch_size": "1", "--gradient_accumulation_steps": "16", "--num_train_epochs": "3",
              "--learning_rate": "1e-4", "--lr_scheduler_type": "cosine", "--warmup_ratio": "0.05",
              "--weight_decay": "0", "--bf16": "true", "--tf32": "true", "--gradient_checkpointing": "true",
              "--model_max_length": "4096", "--dataloader_num_workers": "4", "--lora_r": "64", "--lora_alpha": "128",
              "--lora_dropout": "0.05", "--save_strategy": "no", "--videobackend": "all", "--version": "qwen_1_5",
              "--group_by_modality_length": "true", "--vision_lora": "true", "--train_vision_lora": "false"}
    for name, value in recipe.items():
        assert flag(argv, name) == value, name
    assert flag(argv, "--deepspeed") == str(ROOT / "configs" / "zero2.json")
    assert flag(argv, "--model_name_or_path") == str(ROOT / "pretrained" / "LongVA-7B-DPO")
    assert flag(argv, "--anet_video_folder") == str(ROOT / "data" / "anet" / "videos_0.5FPS_number_red_40_br")
    assert flag(argv, "--output_dir") == str(ROOT / "checkpoints" / "longva_7b_dpo_NumPro_FT")
    # every flag the script passes is one the trainer accepts
    trainer_flags = argv[argv.index("--module") + 2:]
    trainer_flags[trainer_flags.index("--tf32") + 1] = "false"  # TF32 needs a GPU at parse time
    arguments.parse(trainer_flags)
    zero2 = json.loads((ROOT / "configs" / "zero2.json").read_text())
    assert zero2["zero_optimization"]["stage"] == 2 and zero2["bf16"]["enabled"] == "auto"
    assert json.loads((ROOT / "configs" / "zero3.json").read_text())["zero_optimization"]["stage"] == 3
    offload = json.loads((ROOT / "configs" / "zero2_offload.json").read_text())["zero_optimization"]
    assert offload["offload_optimizer"]["device"] == "cpu"


def test_train_sh_takes_hostfile_nodes_config_and_extra_args_from_the_environment(tmp_path):
    argv = launched(tmp_path, HOSTFILE="hosts.txt", NNODES="2", GPUS_PER_NODE="4", MASTER_ADDR="node0",
                    DEEPSPEED_CONFIG="", EPOCH="1", EXTRA_ARGS="--strict_data True --max_steps 5")
    assert argv[:4] == ["--num_nodes", "2", "--num_gpus", "4"]
    assert flag(argv, "--hostfile") == "hosts.txt" and flag(argv, "--master_addr") == "node0"
    assert "--deepspeed" not in argv and flag(argv, "--num_train_epochs") == "1"
    assert argv[-4:] == ["--strict_data", "True", "--max_steps", "5"]


def test_train_sh_takes_upstreams_dideo_path_and_the_fidelity_switches(tmp_path):
    default = ROOT / "data" / "didemo" / "videos_0.5FPS_number_red_40_br"
    assert flag(launched(tmp_path), "--didemo_video_folder") == str(default)
    assert flag(launched(tmp_path, DIDEO_PATH="/clips/didemo"), "--didemo_video_folder") == "/clips/didemo"
    both = launched(tmp_path, DIDEO_PATH="/clips/old", DIDEMO_PATH="/clips/new")
    assert flag(both, "--didemo_video_folder") == "/clips/new"
    argv = launched(tmp_path, TRAIN_VISION_LORA="true", GROUP_BY_MODALITY_LENGTH="false")
    assert flag(argv, "--train_vision_lora") == "true" and flag(argv, "--group_by_modality_length") == "false"


def test_python_m_numpro_train_passes_every_flag_to_the_trainer(monkeypatch, capsys):
    from numpro import cli

    monkeypatch.setitem(cli.GROUPS, "train", ("numpro.training.cli", "NumPro-FT training"))
    with pytest.raises(SystemExit) as stop:
        cli.main(["train", "--help"])
    assert stop.value.code == 0
    shown = capsys.readouterr().out
    assert "--anet_video_folder" in shown and "--strict_data" in shown and "--lora_r" in shown
