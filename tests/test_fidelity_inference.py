"""Inference behaviours pinned to what upstream's own stack did (SPEC 10).

- LongVA: upstream's generate(inputs_embeds=...) on transformers 4.37.2 starts input_ids as
  [bos] (`<|endoftext|>`), so the 1.05 repetition penalty also counts that token.
- Qwen2-VL: qwen-vl-utils 0.0.8 reading the K numbered frames back from a file keeps
  n = round_to_even(min(max(K, 4), floor_to_even(min(768, K)))) of them, picked by
  linspace(0, K-1, n).round(), each frame within max(min(768*28*28, 24576*28*28*2/n), 1.05*128*28*28)
  pixels (a 336x336 frame becomes 308x308 from n = 342).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from numpro.models import longva, qwen2_vl  # noqa: E402

PENALTY = 1.05
TEXT = "The red numbers on each frame represent the frame number.During which frames can we see a person?"


def frames(count: int, seed: int = 0, size=(336, 336)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, *size, 3), dtype=np.uint8)


# ---- LongVA: the leading bos in the repetition penalty's history ------------------------------


def close_call_scores(vocab: int, bos: int, runner_up: int) -> torch.Tensor:
    """One row of logits: bos on top, the runner-up 1.5% below it, everything else far down."""
    scores = torch.full((1, vocab), -5.0)
    scores[0, bos] = 10.0
    scores[0, runner_up] = 9.85
    return scores


def test_counting_the_bos_flips_a_close_call_against_it(tiny_lva):
    from transformers import RepetitionPenaltyLogitsProcessor

    bos = tiny_lva.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    other = tiny_lva.tokenizer.convert_tokens_to_ids("a")
    vocab = len(tiny_lva.tokenizer)
    no_tokens_yet = torch.zeros((1, 0), dtype=torch.long)  # first step of generate(inputs_embeds=...)

    upstream = longva.leading_bos_repetition_penalty(PENALTY, bos)
    scores = upstream(no_tokens_yet, close_call_scores(vocab, bos, other))
    assert scores[0, bos].item() == pytest.approx(10.0 / PENALTY)  # positive logit divided by 1.05
    assert scores.argmax(-1).item() == other  # 9.52 < 9.85: the bos loses the close call
    assert scores[0, other].item() == pytest.approx(9.85)

    generated_only = RepetitionPenaltyLogitsProcessor(PENALTY)  # history without the bos
    scores = generated_only(no_tokens_yet, close_call_scores(vocab, bos, other))
    assert scores.argmax(-1).item() == bos


def test_the_bos_is_penalised_once_and_negative_logits_are_multiplied(tiny_lva):
    bos = tiny_lva.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    other = tiny_lva.tokenizer.convert_tokens_to_ids("a")
    process = longva.leading_bos_repetition_penalty(PENALTY, bos)
    scores = torch.zeros((1, len(tiny_lva.tokenizer)))
    scores[0, bos], scores[0, other] = 2.0, -2.0
    out = process(torch.tensor([[bos, other, bos]]), scores)  # bos generated again: still counted once
    assert out[0, bos].item() == pytest.approx(2.0 / PENALTY)
    assert out[0, other].item() == pytest.approx(-2.0 * PENALTY)


def test_decoding_counts_the_generation_configs_bos(tiny_lva):
    from transformers import RepetitionPenaltyLogitsProcessor

    kwargs = tiny_lva.decoding(16)
    assert kwargs["repetition_penalty"] == 1.0  # transformers' own penalty is off; ours replaces it
    penalties = [p for p in kwargs["logits_processor"] if isinstance(p, RepetitionPenaltyLogitsProcessor)]
    assert len(penalties) == 1 and penalties[0].penalty == PENALTY
    endoftext = tiny_lva.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert tiny_lva.network.generation_config.bos_token_id == endoftext
    assert penalties[0].bos_token_id == endoftext


def test_without_a_bos_in_the_generation_config_the_tokenizers_endoftext_is_used(tiny_lva):
    saved = tiny_lva.network.generation_config
    tiny_lva.network.generation_config = config = copy.deepcopy(saved)
    try:
        config.bos_token_id = None
        assert tiny_lva.bos_token_id() == tiny_lva.tokenizer.convert_tokens_to_ids("<|endoftext|>")
        config.bos_token_id = 7
        assert tiny_lva.decoding(4)["logits_processor"][0].bos_token_id == 7
    finally:
        tiny_lva.network.generation_config = saved


def test_every_row_of_a_left_padded_batch_penalises_the_bos(tiny_lva):
    """The lm_head is forced to a close call between `<|endoftext|>` (a stop id) and another token at
    every step. Counting the bos, each row first says the other token, then (now both penalised)
    stops; without it each row would stop at once with an empty answer."""
    bos = tiny_lva.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    other = tiny_lva.tokenizer.convert_tokens_to_ids("a")
    assert bos in tiny_lva.stop_token_ids()

    def close_call(module, inputs, output):
        output = output.clone()
        output[:, -1, :] = -5.0
        output[:, -1, bos] = 10.0
        output[:, -1, other] = 9.85
        return output

    videos, texts = [frames(3, 1), frames(1, 2)], [TEXT, "Where is the dog?"]
    batch = tiny_lva.preprocessor(videos, texts, 0.5)
    mask = batch.tensors["attention_mask"]
    assert (mask[:, 0] == 0).any() and mask[:, -1].all()  # left padded
    handle = tiny_lva.network.lm_head.register_forward_hook(close_call)
    try:
        with torch.no_grad():
            embeds, attention = tiny_lva.prepare(batch)
            raw = tiny_lva.network.generate(inputs_embeds=embeds, attention_mask=attention, **tiny_lva.decoding(6))
        answers = tiny_lva.generate(batch, 6)
    finally:
        handle.remove()
    assert raw.tolist() == [[other, bos], [other, bos]]
    assert answers == [tiny_lva.tokenizer.decode([other])] * 2


# ---- Qwen2-VL: qwen-vl-utils 0.0.8's frame count and pixel budget ------------------------------


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory) -> Path:
    return qwen2_vl.build_tiny(tmp_path_factory.mktemp("qwen2_vl") / "model")


@pytest.fixture(scope="module")
def qwen(tiny_qwen):
    return qwen2_vl.load(tiny_qwen)


@pytest.mark.parametrize("total, count", [
    (1, 1),  # 0.0.8 refuses a one-frame file; we keep the frame
    (2, 2), (3, 2), (4, 4), (5, 4), (6, 6), (30, 30), (31, 30), (75, 74), (100, 100), (342, 342),
    (767, 766), (768, 768), (769, 768), (1000, 768),
])
def test_upstream_frame_count(total, count):
    assert qwen2_vl.upstream_frame_count(total) == count
    assert len(qwen2_vl.upstream_frame_indices(total)) == count


@pytest.mark.parametrize("total, dropped", [(31, [15]), (75, [37]), (3, [1])])
def test_an_odd_count_loses_one_middle_frame(qwen, total, dropped):
    pixels = frames(total, total)
    numbers = list(range(100, 100 + total))
    kept, kept_numbers = qwen.preprocessor.select_frames(pixels, numbers)
    indices = [i for i in range(total) if i not in dropped]
    assert kept_numbers == [numbers[i] for i in indices]
    assert np.array_equal(kept, pixels[indices])  # 336x336 is within the budget: pixels unchanged


def test_over_768_frames_linspace_rounds_half_to_even():
    indices = qwen2_vl.upstream_frame_indices(1000)
    expected = torch.linspace(0, 999, 768).round().long().tolist()
    assert indices == expected and indices[0] == 0 and indices[-1] == 999
    assert len(set(indices)) == 768


@pytest.mark.parametrize("count, side", [(2, 336), (100, 336), (341, 336), (342, 308), (768, 308)])
def test_pixel_budget_per_frame(count, side):
    assert qwen2_vl.upstream_frame_size(336, 336, count) == (side, side)


def test_pixel_budget_constants():
    assert qwen2_vl.upstream_max_pixels(50) == 768 * 28 * 28  # the per-frame cap
    assert qwen2_vl.upstream_max_pixels(100) == pytest.approx(24576 * 28 * 28 * 2 / 100)  # the video total
    assert qwen2_vl.upstream_max_pixels(342) == pytest.approx(24576 * 28 * 28 * 2 / 342)
    assert qwen2_vl.upstream_max_pixels(768) == int(1.05 * 128 * 28 * 28)  # the floor


def test_342_frames_become_308_by_bicubic_antialiased_resize(qwen):
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as F

    pixels = frames(342, 3)
    kept, numbers = qwen.preprocessor.select_frames(pixels, list(range(342)))
    assert kept.shape == (342, 308, 308, 3) and kept.dtype == np.uint8 and numbers == list(range(342))
    reference = F.resize(torch.from_numpy(pixels[:2]).permute(0, 3, 1, 2), [308, 308],
                         interpolation=InterpolationMode.BICUBIC, antialias=True)
    assert np.array_equal(kept[:2], reference.permute(0, 2, 3, 1).numpy())
    # the preprocessor keeps them as they are (no upscale back to the 128*28*28 floor)
    tensor = qwen.preprocessor.frames_tensor(kept, 1.0)
    assert tuple(tensor.shape) == (342, 3, 308, 308)
    assert torch.equal(tensor[0], torch.from_numpy(kept[0]).permute(2, 0, 1).float())
    grid = qwen.preprocessor([kept], [TEXT], 1.0).tensors["video_grid_thw"]
    assert grid.tolist() == [[171, 22, 22]]  # 342 / 2 temporal patches of 11x11 merged tokens


def test_100_frames_and_small_even_counts_are_unchanged(qwen):
    for total in (100, 4, 2):
        pixels = frames(total, total)
        kept, numbers = qwen.preprocessor.select_frames(pixels, list(range(total)))
        assert kept is pixels or np.array_equal(kept, pixels)
        assert numbers == list(range(total))


def test_processor_gets_half_as_many_temporal_patches_as_selected_frames(qwen):
    pixels = frames(31, 4)
    kept, _ = qwen.preprocessor.select_frames(pixels, list(range(31)))
    batch = qwen.preprocessor([kept], [TEXT], 1.0).tensors
    assert batch["video_grid_thw"].tolist() == [[15, 24, 24]]  # 30 frames -> 15 patches of 12x12 tokens
    video_id = qwen.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert batch["input_ids"][0].tolist().count(video_id) == 15 * 144


def test_call_feeds_the_frames_it_is_given(qwen):
    pixels = frames(31, 5)
    assert qwen.preprocessor.frames_tensor(pixels, 1.0).shape[0] == 31  # no selection inside __call__
    odd = qwen2_vl.Qwen2VLPreprocessor(qwen.preprocessor.processor)
    tensor = odd.frames_tensor(frames(3, 6, size=(50, 70)), 1.0)  # not multiples of 28: 0.0.8's size rule
    assert tuple(tensor.shape) == (3, 3, 280, 392)


def test_plain_rule_keeps_every_frame_and_pads_an_odd_count(tiny_qwen):
    plain = qwen2_vl.load(tiny_qwen, frame_rule="plain")
    assert plain.preprocessor.frame_rule == "plain"
    pixels = frames(31, 7)
    kept, numbers = plain.preprocessor.select_frames(pixels, list(range(31)))
    assert kept is pixels and numbers == list(range(31))
    grid = plain.preprocessor([kept], [TEXT], 1.0).tensors["video_grid_thw"]
    assert grid.tolist() == [[16, 24, 24]]  # 31 frames + the last one repeated


def test_upstream_is_the_default_and_unknown_rules_are_refused(qwen):
    assert qwen.preprocessor.frame_rule == "upstream"
    with pytest.raises(ValueError, match="frame_rule"):
        qwen2_vl.Qwen2VLPreprocessor(qwen.preprocessor.processor, frame_rule="odd")
