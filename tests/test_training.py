"""NumPro-FT training on the CPU with the tiny LongVA and synthetic numbered clips.

One DeepSpeed run of scripts/train.sh (plus its resumption) and one plain-Trainer run are
shared by the end-to-end tests (module-scoped fixtures); the first DeepSpeed launch builds
DeepSpeed's CPU communication op once (about 1.5 minutes), later ones reuse it.
"""

from __future__ import annotations

import json
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
from numpro.datasets.training import read_training
from numpro.models import longva
from numpro.models.longva_inputs import IGNORE_INDEX, IMAGE_TOKEN_INDEX, render_prompt, tokenizer_image_token
from numpro.models.longva_lora import NON_LORA_NAME, apply_lora
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
def tiny(tmp_path_factory) -> Path:
    return longva.build_tiny(tmp_path_factory.mktemp("tiny_longva") / "model")


@pytest.fixture(scope="module")
def model(tiny):
    return longva.load(tiny)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """train_sft.json with 4 trainable anet samples (one multi-turn) and one of each problem."""
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


def test_labels_are_every_answer_plus_the_final_turn_end(model):
    tok = model.tokenizer
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    encoded = conversation.encode(MULTI_TURN, tok)
    supervised = [label for label in encoded.labels if label != IGNORE_INDEX]
    assert supervised == ids_of(tok, "From 2 to 5.") + ids_of(tok, "From 6 to 7, briefly.") + [im_end]
    # SPEC 5's rule position by position: each answer's tokens right after its "assistant\n" header;
    # the first answer's <|im_end|> is not a target, the final one is, its newline is not.
    header = ids_of(tok, "<|im_start|>assistant\n")
    ids, labels = encoded.input_ids, encoded.labels
    starts = [i + len(header) for i in range(len(ids)) if ids[i:i + len(header)] == header]
    first, second = ids_of(tok, "From 2 to 5."), ids_of(tok, "From 6 to 7, briefly.")
    assert labels[starts[0]:starts[0] + len(first)] == first
    assert labels[starts[0] + len(first)] == IGNORE_INDEX and ids[starts[0] + len(first)] == im_end
    assert labels[starts[1]:starts[1] + len(second) + 1] == second + [im_end]
    assert labels[starts[1] + len(second) + 1:] == [IGNORE_INDEX]  # the closing newline
    assert encoded.supervised_end == starts[1] + len(second) + 1
    assert all(label == IGNORE_INDEX for label in labels[:starts[0]])  # system, user turn, video
    assert labels[ids.index(IMAGE_TOKEN_INDEX)] == IGNORE_INDEX


def test_training_ids_are_the_whole_text_tokenised_and_start_with_the_eval_prompt(model):
    tok = model.tokenizer
    encoded = conversation.encode(MULTI_TURN, tok)
    assert encoded.input_ids == tokenizer_image_token(conversation.render(MULTI_TURN), tok)
    eval_prompt = tokenizer_image_token(render_prompt(prompts.mr_prompt("a dog")), tok)
    assert encoded.input_ids[:len(eval_prompt)] == eval_prompt
    assert encoded.input_ids.count(IMAGE_TOKEN_INDEX) == 1


def test_a_trailing_user_turn_is_never_supervised(model):
    tok = model.tokenizer
    turns = MULTI_TURN[:2] + [{"from": "human", "value": "Thanks!"}]
    encoded = conversation.encode(turns, tok)
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert [x for x in encoded.labels if x != IGNORE_INDEX] == ids_of(tok, "From 2 to 5.") + [im_end]
    assert encoded.supervised_end < len(encoded.input_ids) - 5


@pytest.mark.parametrize("turns, message", [
    ([{"from": "human", "value": "no video here"}, answer(0, 1)], "found 0"),
    ([{"from": "human", "value": "<image> and <image>"}, answer(0, 1)], "found 2"),
    ([{"from": "human", "value": "question"}, {"from": "gpt", "value": "<image>"}], "user"),
    ([question("q"), {"from": "gpt", "value": ""}], "nothing to supervise"),
])
def test_conversations_that_cannot_train_are_refused(model, turns, message):
    with pytest.raises(conversation.ConversationError, match=message):
        conversation.encode(turns, model.tokenizer)


def test_the_placeholder_moves_to_the_front_of_its_turn():
    turns = [{"from": "human", "value": "Look: <image> now"}, answer(0, 1)]
    assert conversation.render(turns).count("<|im_start|>user\n<image>\nLook:  now<|im_end|>") == 1


# ---------------------------------------------------------------------- forward with labels
def batch_of(model, data, names):
    samples = read_training(data / "train_sft.json")
    index = {}
    for i, sample in enumerate(samples):
        index.setdefault(sample["video"], i)
    kept = [preflight.Kept(index[n], n, "anet", str(data / "anet" / f"{n}.mp4"), 5, 0) for n in names]
    dataset = ClipDataset(samples, kept, model.tokenizer, model.preprocessor.clip, CAP)
    return Collator(model.preprocessor.pad_id)([dataset[i] for i in range(len(kept))])


def test_forward_splices_the_labels_and_never_targets_visual_tokens(model, data):
    network = model.network
    batch = batch_of(model, data, ["v_clip0", "v_clip1"])  # different lengths: right padding
    pixels = model.preprocessor.clip.normalize(batch["frames"])
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
def report(data, model):
    return preflight.scan(data / "train_sft.json", folders(data), model.tokenizer, CAP, progress=False)


def test_preflight_counts_each_problem_once_per_source(report):
    counts = report.counts()
    assert counts["anet"] == {"samples": 8, "kept": 4, preflight.FOLDER_MISSING: 0, preflight.VIDEO_MISSING: 1,
                              preflight.INVALID: 1, preflight.UNREADABLE: 1, preflight.CUT: 1}
    assert counts["didemo"]["samples"] == counts["didemo"][preflight.FOLDER_MISSING] == 1
    assert "internvid" not in counts  # no sample names it
    assert [k.video for k in report.kept] == [name for name, _ in GOOD]
    assert {(s.video, s.reason) for s in report.skipped} == {
        ("v_gone", preflight.VIDEO_MISSING), ("v_broken", preflight.UNREADABLE), ("v_clip0", preflight.INVALID),
        ("v_long", preflight.CUT), ("d_clip", preflight.FOLDER_MISSING)}


def test_preflight_table_says_what_is_missing_cut_and_kept(report, data):
    table = report.table()
    lines = table.splitlines()
    assert lines[0] == f"pre-flight scan of {data / 'train_sft.json'}: 9 samples, 4 kept"
    didemo = next(line for line in lines if line.strip().startswith("didemo"))
    assert "(does not exist)" in didemo and didemo.split()[-7:] == ["1", "0", "1", "0", "0", "0", "0"]
    assert (f"  didemo: folder {data / 'didemo'} does not exist: its 1 samples are skipped, "
            "the other sources train") in lines
    assert f"  video missing [anet]: record 6 v_gone: not in {data / 'anet'}" in lines
    long_tokens = next(s for s in report.skipped if s.video == "v_long").detail
    assert f"  answer cut by the cap [anet]: record 5 v_long: {long_tokens}" in lines
    assert long_tokens.startswith("8 frames,") and long_tokens.endswith(f"> {CAP}")
    assert "\n  video unreadable [anet]: record 7 v_broken: " in table
    assert "\n  conversation invalid [anet]: record 8 v_clip0: expected one <image> placeholder" in table


def test_the_cap_rule_is_exact_at_the_boundary(report, data, model):
    first = report.kept[0]
    encoded = conversation.encode(read_training(data / "train_sft.json")[first.index]["conversations"],
                                  model.tokenizer)
    assert first.frames == 5 and first.tokens == 5 * 144 + encoded.supervised_end - 1
    for cap, kept in ((first.tokens, True), (first.tokens - 1, False)):
        again = preflight.scan(data / "train_sft.json", folders(data), model.tokenizer, cap, progress=False)
        assert (first.index in {k.index for k in again.kept}) is kept


def test_preflight_stops_when_nothing_is_left_or_when_strict(report, data, model):
    preflight.check(report)  # four samples remain: train on them
    with pytest.raises(preflight.PreflightError, match="--strict_data: 5 of 9 samples would be skipped"):
        preflight.check(report, strict=True)
    nothing = preflight.scan(data / "train_sft.json", preflight.source_folders(None, None, None, None),
                             model.tokenizer, CAP, progress=False)
    with pytest.raises(preflight.PreflightError, match="nothing left to train on: all 9 samples"):
        preflight.check(nothing)


# ---------------------------------------------------------------------- dataset
def test_dataset_feeds_every_frame_of_the_clip_and_caps_by_linspace(model, data):
    samples = read_training(data / "train_sft.json")
    path = data / "anet" / "v_clip2.mp4"
    kept = [preflight.Kept(2, "v_clip2", "anet", str(path), 5, 0)]
    every = read_sampled(path, 0.5, size=None).pixels
    item = ClipDataset(samples, kept, model.tokenizer, model.preprocessor.clip, CAP)[0]
    assert np.array_equal(item["frames"].numpy(), every)
    capped = ClipDataset(samples, kept, model.tokenizer, model.preprocessor.clip, CAP, max_frames=3)[0]
    assert np.array_equal(capped["frames"].numpy(), every[[0, 2, 4]])


def test_an_undecodable_video_is_counted_never_replaced(tiny, model, data, tmp_path):
    from transformers import TrainingArguments

    from numpro.training.trainer import SKIPPED_NAME, NumProTrainer

    broken = tmp_path / "v_clip0.mp4"
    broken.write_bytes((data / "anet" / "v_clip0.mp4").read_bytes()[:300])  # cut after the scan
    samples = read_training(data / "train_sft.json")
    dataset = ClipDataset(samples, [preflight.Kept(0, "v_clip0", "anet", str(broken), 5, 0)], model.tokenizer,
                          model.preprocessor.clip, CAP)
    item = dataset[0]
    assert set(item) == {"skipped"} and item["skipped"][:2] == (0, "v_clip0")
    batch = Collator(model.preprocessor.pad_id)([item])
    assert set(batch) == {"skipped"}

    peft_model = add_lora(longva.load(tiny).network, lora_config(4, 8, 0.0))
    args = TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, report_to="none")
    trainer = NumProTrainer(model=peft_model, args=args, train_dataset=dataset, data_collator=Collator(0),
                            clip=model.preprocessor.clip, pad_id=model.preprocessor.pad_id)
    loss = trainer.compute_loss(peft_model, batch)
    assert loss.item() == 0.0 and loss.requires_grad
    logged = read_jsonl(tmp_path / "out" / SKIPPED_NAME)
    assert logged == [{"step": 0, "record": 1, "video": "v_clip0", "error": item["skipped"][2]}]


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


def test_upstream_command_line_parses_with_its_flag_names(tiny, data, tmp_path):
    model_args, data_args, training_args = arguments.parse(upstream_flags(tiny, data, tmp_path))
    assert (training_args.lora_r, training_args.lora_alpha, training_args.lora_dropout) == (64, 128, 0.05)
    assert training_args.activation_checkpointing and training_args.warmup_steps == 0.05
    assert training_args.gradient_accumulation_steps == 16 and training_args.optim == "adamw_torch"
    assert data_args.videobackend == "all" and data_args.max_frames == 240
    warnings = arguments.check(model_args, data_args, training_args, json.loads((tiny / "config.json").read_text()))
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
])
def test_arguments_that_cannot_describe_numpro_ft_are_refused(tiny, data, tmp_path, extra, message):
    parsed = arguments.parse(upstream_flags(tiny, data, tmp_path) + extra)
    with pytest.raises(arguments.ArgumentError, match=message):
        arguments.check(*parsed, json.loads((tiny / "config.json").read_text()))


# ---------------------------------------------------------------------- trainable parameters
def lora_size(network, r: int, vision: bool) -> int:
    total = 0
    for name, module in network.named_modules():
        targeted = name.rsplit(".", 1)[-1] in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                               "down_proj")
        if targeted and isinstance(module, torch.nn.Linear) and (".vision_tower." in name) == vision:
            total += r * (module.in_features + module.out_features)
    return total


@pytest.mark.parametrize("vision", [True, False])
def test_lora_everywhere_upstream_put_it_projector_trained_the_rest_frozen(tiny, vision, tmp_path):
    network = longva.load(tiny).network
    llm, clip = lora_size(network, 4, False), lora_size(network, 4, True)
    projector = sum(p.numel() for p in network.model.mm_projector.parameters())
    peft_model = add_lora(network, lora_config(4, 8, 0.05, vision=vision))
    groups = parameter_groups(peft_model)
    assert groups["LLM LoRA"] == (llm, llm) and groups["projector"] == (projector, projector)
    assert ("CLIP LoRA" in groups) is vision and (not vision or groups["CLIP LoRA"] == (clip, clip))
    for frozen in ("LLM base", "CLIP base", "embeddings + lm_head"):
        assert groups[frozen][0] == 0 and groups[frozen][1] > 0
    assert describe(peft_model).splitlines()[0].startswith(f"parameters: {llm + projector + vision * clip:,} trainable")
    # the saved folder loads with the evaluation's strict loader, with or without CLIP LoRA
    save_released(peft_model, tmp_path / "ft", trainable_state(peft_model), {})
    merged = apply_lora(longva.load(tiny).network, tmp_path / "ft")
    assert sorted(torch.load(tmp_path / "ft" / NON_LORA_NAME, weights_only=True)) == sorted(
        f"base_model.model.model.mm_projector.{i}.{p}" for i in (0, 2) for p in ("weight", "bias"))
    assert merged is not None


def test_full_size_trainable_parameters_by_group_on_the_meta_device():
    model = longva.load(ROOT / "configs" / "longva_7b_dpo", device="meta", random_init=True)
    with torch.device("meta"):
        peft_model = add_lora(model.network, lora_config(64, 128, 0.05))
    groups = parameter_groups(peft_model)
    # 28 layers x r(3584+3584 q, 3584+512 k, v, 3584+3584 o, 3 x (3584+18944) mlp) with r = 64
    assert groups["LLM LoRA"][0] == 28 * 64 * (2 * 7168 + 2 * 4096 + 3 * 22528) == 161_480_704
    assert groups["CLIP LoRA"][0] == 24 * 3 * 64 * 2048 == 9_437_184  # q/k/v of every CLIP layer
    assert groups["projector"][0] == 1024 * 3584 + 3584 + 3584 * 3584 + 3584 == 16_522_240
    assert sum(t for t, _ in groups.values()) == 187_440_128


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
def ds_run(tiny, data, tmp_path_factory):
    """sh scripts/train.sh (12 steps, checkpoints at 4, 8, 12), then a resumption after losing checkpoint-12."""
    out = tmp_path_factory.mktemp("ds_run") / "longva_7b_dpo_NumPro_FT"
    env = train_env(tiny, data, out)
    first = run_script("sh", env)
    first_log = read_jsonl(out / "train_log.jsonl")
    final_adapter = (out / "adapter_model.safetensors").read_bytes()
    shutil.rmtree(out / "checkpoint-12")  # as if the run had stopped after saving step 8
    second = run_script("bash", env)
    second_log = read_jsonl(out / "train_log.jsonl")[len(first_log):]
    return {"out": out, "first": first, "second": second, "first_log": first_log, "second_log": second_log,
            "final_adapter": final_adapter}


def losses(log: list[dict]) -> dict[int, dict]:
    return {entry["step"]: entry for entry in log if "loss" in entry}


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
    assert numbers["preflight/samples"] == 9 and numbers["preflight/kept"] == 4
    assert numbers["preflight/answer_cut_by_the_cap"] == 1 and numbers["preflight/folder_missing"] == 1


def test_the_run_wrote_and_printed_its_preflight_report(ds_run, data):
    written = json.loads((ds_run["out"] / "preflight.json").read_text())
    assert written["status"] == "ok" and written["totals"]["kept"] == 4
    assert written["folders"]["didemo"] == {"path": str(data / "didemo"), "exists": False, "videos": 0}
    assert {s["video"] for s in written["skipped"]} == {"v_long", "v_gone", "v_broken", "v_clip0", "d_clip"}
    assert [s["video"] for s in json.loads((ds_run["out"] / "preflight_samples.json").read_text())] == [
        name for name, _ in GOOD]
    assert f"didemo: folder {data / 'didemo'} does not exist: its 1 samples are skipped" in ds_run["first"]


def test_resuming_continues_from_the_saved_step(ds_run):
    assert f"resuming from {ds_run['out'] / 'checkpoint-8'}" in ds_run["second"]
    before, after = losses(ds_run["first_log"]), losses(ds_run["second_log"])
    assert sorted(after) == [9, 10, 11, 12]
    for step in after:  # same schedule, same data order, restored weights and optimizer
        assert after[step]["learning_rate"] == pytest.approx(before[step]["learning_rate"], rel=1e-6)
        assert after[step]["loss"] == pytest.approx(before[step]["loss"], abs=0.02)
    assert (ds_run["out"] / "checkpoint-12" / "adapter_config.json").is_file()


def test_the_output_has_the_released_layout(ds_run, tiny):
    from safetensors import safe_open

    out = ds_run["out"]
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 8 and config["lora_alpha"] == 16 and config["peft_type"] == "LORA"
    with safe_open(out / "adapter_model.safetensors", framework="pt") as handle:
        keys = set(handle.keys())
    clip = "base_model.model.model.vision_tower.vision_tower.vision_model.encoder.layers.0.self_attn."
    assert {clip + f"{p}_proj.lora_B.weight" for p in "qkv"} <= keys
    assert "base_model.model.model.layers.1.mlp.down_proj.lora_A.weight" in keys
    projector = torch.load(out / NON_LORA_NAME, weights_only=True)
    base = longva.load(tiny).network.model.mm_projector
    assert not torch.equal(projector["base_model.model.model.mm_projector.0.weight"], base[0].weight)
    assert json.loads((out / "config.json").read_text())["tokenizer_model_max_length"] == CAP


def test_the_output_loads_in_eval_numpro_ft_mr_and_changes_its_answers(ds_run, tiny, dataset, tmp_path):
    from numpro.evaluation.cli import main

    answers = {}
    for name, extra in (("base", []), ("numpro_ft", ["--lora_path", str(ds_run["out"])])):
        save = tmp_path / f"{name}.jsonl"
        argv = ["--model_path", str(tiny), "--test_path", str(dataset / "test.json"), "--data_path",
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
            "--learning_rate", "2e-2", "--logging_steps", "1", "--save_strategy", "steps", "--save_steps", "4",
            "--gradient_checkpointing", "True", "--report_to", "none", "--preflight_workers", "1",
            "--disable_tqdm", "True", "--vision_lora", "False"]


def test_without_deepspeed_training_resumes_with_the_projector_restored(tiny, data, tmp_path):
    from numpro.training.train import main

    out = tmp_path / "plain"
    assert main(plain_flags(tiny, data, out)) == 0
    first_log = read_jsonl(out / "train_log.jsonl")
    first = losses(first_log)
    assert sorted(first) == list(range(1, 9)) and not (out / "checkpoint-8" / "global_step8").exists()
    shutil.rmtree(out / "checkpoint-8")
    assert main(plain_flags(tiny, data, out)) == 0
    second = losses(read_jsonl(out / "train_log.jsonl")[len(first_log):])
    assert sorted(second) == [5, 6, 7, 8]
    for step in second:  # a projector left at its base weights would change these losses
        assert second[step]["loss"] == pytest.approx(first[step]["loss"], abs=1e-3)
    config = json.loads((out / "adapter_config.json").read_text())
    assert "vision_tower" in config["target_modules"]  # LLM-only pattern
    apply_lora(longva.load(tiny).network, out)


# ---------------------------------------------------------------------- the launcher script and the CLI
def launched(tmp_path: Path, **env) -> list[str]:
    """The command line scripts/train.sh hands to DeepSpeed's launcher (a stub records it)."""
    stub = tmp_path / "deepspeed"
    stub.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$RECORD"\n')
    stub.chmod(0o755)
    record = tmp_path / "argv.txt"
    clean = {k: v for k, v in os.environ.items() if k not in ("GPUS_PER_NODE", "NNODES", "HOSTFILE", "EXTRA_ARGS")}
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
              "--lora_dropout": "0.05", "--save_strategy": "no", "--videobackend": "all", "--version": "qwen_1_5"}
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


def test_python_m_numpro_train_passes_every_flag_to_the_trainer(monkeypatch, capsys):
    from numpro import cli

    monkeypatch.setitem(cli.GROUPS, "train", ("numpro.training.cli", "NumPro-FT training"))
    with pytest.raises(SystemExit) as stop:
        cli.main(["train", "--help"])
    assert stop.value.code == 0
    shown = capsys.readouterr().out
    assert "--anet_video_folder" in shown and "--strict_data" in shown and "--lora_r" in shown
