"""LongVA on transformers' modules: checkpoint layout, strict loading, prompt, pooling, splicing, decoding."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from numpro.models import longva  # noqa: E402
from numpro.models.longva_checkpoint import (  # noqa: E402
    INDEX_NAME,
    CheckpointError,
    read_config,
    save_llava_checkpoint,
    shard_map,
)
from numpro.models.longva_inputs import IMAGE_TOKEN_INDEX  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# SPEC 5, to the character
QWEN_1_5 = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\n{}<|im_end|>\n"
    "<|im_start|>assistant\n"
)
TEXT = "The red numbers on each frame represent the frame number.During which frames can we see a person?"


def frames(count: int, seed: int, size=(336, 336)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, *size, 3), dtype=np.uint8)


def copy_checkpoint(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def logits(model, batch):
    with torch.no_grad():
        embeds, mask = model.prepare(batch)
        return model.network(inputs_embeds=embeds, attention_mask=mask).logits


# ---- on-disk layout -------------------------------------------------------------------------


def test_tiny_has_the_real_checkpoint_layout(tiny_lva_dir):
    raw = read_config(tiny_lva_dir)
    real = json.loads((REPO / "configs/longva_7b_dpo/config.json").read_text())
    assert set(raw) == set(real)
    assert raw["model_type"] == "llava_qwen" and raw["architectures"] == ["LlavaQwenForCausalLM"]
    index = json.loads((tiny_lva_dir / INDEX_NAME).read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert shards == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    keys = set(index["weight_map"])
    for key in ["model.embed_tokens.weight", "model.layers.1.mlp.down_proj.weight", "model.norm.weight",
                "lm_head.weight", "model.mm_projector.0.weight", "model.mm_projector.2.bias",
                "model.vision_tower.vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight",
                "model.vision_tower.vision_tower.vision_model.post_layernorm.weight"]:
        assert key in keys
    assert not any("image_newline" in k for k in keys)
    generation = json.loads((tiny_lva_dir / "generation_config.json").read_text())
    assert generation["repetition_penalty"] == 1.05
    assert (tiny_lva_dir / "tokenizer_config.json").is_file()


def test_real_config_builds_the_full_size_network_without_memory():
    model = longva.load(REPO / "configs/longva_7b_dpo", random_init=True, device="meta", dtype=torch.bfloat16)
    net = model.network
    params = sum(p.numel() for p in net.parameters())
    assert 15.8e9 < 2 * params < 16.0e9  # SPEC 9: about 15.9 GB of bf16 weights
    assert net.model.embed_tokens.weight.shape == (152064, 3584)
    assert net.model.mm_projector[0].weight.shape == (3584, 1024)
    assert net.model.mm_projector[2].weight.shape == (3584, 3584)
    clip = net.model.vision_tower.vision_tower.vision_model
    assert len(clip.encoder.layers) == 24 and clip.config.hidden_size == 1024 and clip.config.image_size == 336
    assert net.config.rope_parameters["rope_theta"] == 1e9 and net.config.max_position_embeddings == 224000
    assert net.config.tokenizer_model_max_length == 32768


# ---- strict loading ---------------------------------------------------------------------------


def test_load_cuts_vocabulary_rows_and_reads_every_tensor(tiny_lva_dir, tiny_lva):
    from safetensors import safe_open

    rows = len(tiny_lva.tokenizer)
    assert read_config(tiny_lva_dir)["vocab_size"] > rows
    state = tiny_lva.network.state_dict()
    for key, path in shard_map(tiny_lva_dir).items():
        with safe_open(path, framework="pt") as handle:
            stored = handle.get_tensor(key)
        if key in ("model.embed_tokens.weight", "lm_head.weight"):
            assert stored.shape[0] > rows
            stored = stored[:rows]
        assert torch.equal(state[key], stored), key


def test_save_and_load_round_trip_gives_the_same_logits(tiny_lva_dir, tiny_lva, tmp_path):
    out = copy_checkpoint(tiny_lva_dir, tmp_path / "copy")
    for shard in out.glob("model-*.safetensors"):
        shard.unlink()
    save_llava_checkpoint(tiny_lva.network, read_config(tiny_lva_dir), out, num_shards=3)
    again = longva.load(out)
    batch = tiny_lva.preprocessor([frames(2, 0)], [TEXT], 0.5)
    assert torch.equal(logits(tiny_lva, batch), logits(again, batch))


def _rewrite(checkpoint: Path, edit) -> None:
    """Apply `edit(state)` to the tensors of the first shard and refresh the index."""
    from safetensors.torch import load_file, save_file

    shard = sorted(checkpoint.glob("model-*.safetensors"))[0]
    state = load_file(shard)
    edit(state)
    save_file(state, shard, metadata={"format": "pt"})
    index = json.loads((checkpoint / INDEX_NAME).read_text())
    index["weight_map"] = {k: v for k, v in index["weight_map"].items() if v != shard.name}
    index["weight_map"].update({k: shard.name for k in state})
    (checkpoint / INDEX_NAME).write_text(json.dumps(index))


def test_a_missing_key_is_an_error_naming_it(tiny_lva_dir, tmp_path):
    out = copy_checkpoint(tiny_lva_dir, tmp_path / "missing")
    dropped = []
    _rewrite(out, lambda state: dropped.append(sorted(state)[-1]) or state.pop(dropped[0]))
    with pytest.raises(CheckpointError, match="missing") as error:
        longva.load(out)
    assert dropped[0] in str(error.value)


def test_an_unexpected_key_is_an_error_naming_it(tiny_lva_dir, tmp_path):
    out = copy_checkpoint(tiny_lva_dir, tmp_path / "unexpected")
    _rewrite(out, lambda state: state.update({"model.image_newline": torch.zeros(32)}))
    with pytest.raises(CheckpointError, match="unexpected.*model.image_newline"):
        longva.load(out)


def test_a_stored_position_ids_buffer_is_passed_over(tiny_lva_dir, tmp_path):
    out = copy_checkpoint(tiny_lva_dir, tmp_path / "buffer")
    key = "model.vision_tower.vision_tower.vision_model.embeddings.position_ids"
    _rewrite(out, lambda state: state.update({key: torch.arange(577).unsqueeze(0)}))
    longva.load(out)


def test_a_wrong_shape_is_an_error(tiny_lva_dir, tmp_path):
    out = copy_checkpoint(tiny_lva_dir, tmp_path / "shape")
    key = "model.mm_projector.0.bias"
    path = shard_map(out)[key]
    from safetensors.torch import load_file, save_file

    state = load_file(path)
    state[key] = torch.zeros(7)
    save_file(state, path, metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="mm_projector.0.bias"):
        longva.load(out)


# ---- prompt and pixels ----------------------------------------------------------------------


def test_prompt_is_the_qwen_1_5_template_and_ids_put_the_placeholder_at_image(tiny_lva):
    batch = tiny_lva.preprocessor([frames(1, 1)], [TEXT], 0.5)
    assert batch.prompts == [QWEN_1_5.format(TEXT)]
    ids = batch.tensors["input_ids"][0][batch.tensors["attention_mask"][0].bool()].tolist()
    # Independent route: the whole template tokenised at once with a special token standing in
    # for <image> (special tokens are split boundaries, like LLaVA's per-chunk tokenisation).
    marker = "<|endoftext|>"
    tokenizer = tiny_lva.tokenizer
    whole = tokenizer(QWEN_1_5.replace("<image>", marker).format(TEXT)).input_ids
    marker_id = tokenizer.convert_tokens_to_ids(marker)
    assert whole.count(marker_id) == 1
    assert ids == [IMAGE_TOKEN_INDEX if t == marker_id else t for t in whole]
    assert ids.count(IMAGE_TOKEN_INDEX) == 1


def test_user_text_with_an_image_tag_is_refused(tiny_lva):
    with pytest.raises(ValueError, match="<image>"):
        tiny_lva.preprocessor([frames(1, 1)], ["look <image> here"], 0.5)


@pytest.mark.parametrize("size", [(336, 336), (240, 400)])
def test_pixels_equal_clip_image_processor(tiny_lva, size):
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    video = frames(3, 2, size)
    batch = tiny_lva.preprocessor([video], ["x"], 0.5)
    ours = tiny_lva.preprocessor.clip.normalize(batch.tensors["frames"])
    processor = CLIPImageProcessorPil(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})
    reference = processor(list(video), return_tensors="pt")["pixel_values"]
    assert ours.shape == reference.shape == (3, 3, 336, 336)
    assert torch.equal(ours, reference)


def test_preprocessor_takes_capped_frames_and_rejects_more_than_its_cap(tiny_lva):
    """The frames arrive capped (numpro.frames); re-capping here would feed other frames than
    the ones sampled, dumped and recorded."""
    from numpro.models.longva_inputs import LongVAPreprocessor

    capped = LongVAPreprocessor(tiny_lva.tokenizer, tiny_lva.preprocessor.clip, max_frames=4)
    video = frames(4, 3)
    batch = capped([video], ["x"], 0.5)
    assert batch.tensors["frame_counts"].tolist() == [4]
    assert np.array_equal(batch.tensors["frames"].numpy(), video)  # all of them, as given
    with pytest.raises(ValueError, match="5 frames given.*at most 4"):
        capped([frames(5, 3)], ["x"], 0.5)
    uncapped = LongVAPreprocessor(tiny_lva.tokenizer, tiny_lva.preprocessor.clip, max_frames=None)
    assert uncapped([frames(10, 3)], ["x"], 0.5).tensors["frame_counts"].tolist() == [10]


def test_preprocessor_pickles(tiny_lva):
    clone = pickle.loads(pickle.dumps(tiny_lva.preprocessor))
    a = tiny_lva.preprocessor([frames(1, 4)], [TEXT], 0.5)
    b = clone([frames(1, 4)], [TEXT], 0.5)
    assert a.prompts == b.prompts
    assert all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors)


# ---- pooling and splicing against a direct computation ---------------------------------------


def test_visual_tokens_and_splice_match_a_direct_computation(tiny_lva):
    net = tiny_lva.network
    videos, texts = [frames(3, 5), frames(2, 6)], [TEXT, "Short one?"]
    batch = tiny_lva.preprocessor(videos, texts, 0.5)
    with torch.no_grad():
        embeds, mask = tiny_lva.prepare(batch)

        clip = net.model.vision_tower.vision_tower.vision_model
        proj = net.model.mm_projector
        pixels = tiny_lva.preprocessor.clip.normalize(batch.tensors["frames"])
        hidden = clip(pixels, output_hidden_states=True).hidden_states[-2][:, 1:]  # layer -2, no CLS
        assert hidden.shape[1] == 576
        x = torch.nn.functional.linear(hidden, proj[0].weight, proj[0].bias)
        x = torch.nn.functional.gelu(x)  # exact GELU
        x = torch.nn.functional.linear(x, proj[2].weight, proj[2].bias)
        grid = x.reshape(-1, 24, 24, x.shape[-1]).permute(0, 3, 1, 2)
        pooled = torch.nn.functional.avg_pool2d(grid, kernel_size=2).flatten(2).transpose(1, 2)  # (T, 144, H)
        assert pooled.shape[1] == 144
        blocks = pooled.split([3, 2])

        embed = net.get_input_embeddings()
        width = embeds.shape[1]
        for row in range(2):
            ids = batch.tensors["input_ids"][row][batch.tensors["attention_mask"][row].bool()]
            slot = ids.tolist().index(IMAGE_TOKEN_INDEX)
            expected = torch.cat([embed(ids[:slot]), blocks[row].flatten(0, 1), embed(ids[slot + 1:])])
            assert expected.shape[0] == len(ids) - 1 + 144 * len(videos[row])
            pad = width - expected.shape[0]
            assert mask[row].tolist() == [0] * pad + [1] * expected.shape[0]  # left padding
            assert torch.allclose(embeds[row, pad:], expected, atol=1e-6)
            assert torch.count_nonzero(embeds[row, :pad]) == 0


def test_spliced_sequence_is_truncated_to_tokenizer_model_max_length(tiny_lva):
    net = tiny_lva.network
    batch = tiny_lva.preprocessor([frames(2, 7)], [TEXT], 0.5)
    previous = net.config.tokenizer_model_max_length
    net.config.tokenizer_model_max_length = 300
    try:
        with pytest.warns(UserWarning, match="truncated"):
            embeds, mask = tiny_lva.prepare(batch)
    finally:
        net.config.tokenizer_model_max_length = previous
    assert embeds.shape[1] == 300 and int(mask.sum()) == 300


# ---- decoding --------------------------------------------------------------------------------


def test_decoding_is_greedy_with_the_checkpoints_repetition_penalty(tiny_lva):
    from transformers import RepetitionPenaltyLogitsProcessor

    kwargs = tiny_lva.decoding(16)
    assert kwargs["do_sample"] is False and kwargs["num_beams"] == 1 and kwargs["repetition_penalty"] == 1.0
    penalties = [p for p in kwargs["logits_processor"] if isinstance(p, RepetitionPenaltyLogitsProcessor)]
    assert [p.penalty for p in penalties] == [1.05]
    assert tiny_lva.tokenizer.convert_tokens_to_ids("<|im_end|>") in kwargs["eos_token_id"]


def test_generate_returns_strings_and_stops_at_im_end(tiny_lva):
    net = tiny_lva.network
    im_end = tiny_lva.tokenizer.convert_tokens_to_ids("<|im_end|>")
    calls = []

    def force_stop(module, inputs, output):
        calls.append(1)
        if len(calls) == 3:  # the third token becomes <|im_end|>
            output = output.clone()
            output[..., im_end] += 1e4
        return output

    batch = tiny_lva.preprocessor([frames(1, 8)], [TEXT], 0.5)
    handle = net.lm_head.register_forward_hook(force_stop)
    try:
        with torch.no_grad():
            embeds, mask = tiny_lva.prepare(batch)
            raw = net.generate(inputs_embeds=embeds, attention_mask=mask, **tiny_lva.decoding(20))
        calls.clear()
        answers = tiny_lva.generate(batch, 20)
    finally:
        handle.remove()
    assert raw.shape == (1, 3) and raw[0, -1].item() == im_end  # new tokens only, stopped
    assert isinstance(answers[0], str)
    expected = tiny_lva.tokenizer.decode(raw[0, :2], skip_special_tokens=True).strip()
    assert answers == [expected] and "<|im_end|>" not in answers[0]


def test_left_padded_batch_answers_like_one_at_a_time(tiny_lva):
    videos, texts = [frames(3, 9), frames(1, 10)], [TEXT, "Where is the dog?"]
    together = tiny_lva.generate(tiny_lva.preprocessor(videos, texts, 0.5), 8)
    alone = [tiny_lva.generate(tiny_lva.preprocessor([v], [t], 0.5), 8)[0] for v, t in zip(videos, texts)]
    assert together == alone
    assert all(isinstance(a, str) for a in together)


def test_random_init_of_the_tiny_config_generates(tiny_lva_dir):
    model = longva.load(tiny_lva_dir, random_init=True)
    answers = model.generate(model.preprocessor([frames(1, 11)], [TEXT], 0.5), 4)
    assert len(answers) == 1 and isinstance(answers[0], str)
