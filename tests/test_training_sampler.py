"""Upstream's `--group_by_modality_length True` sample order, from the facts of its LLaVA trainer.

Upstream: a sample's length is its word count over all turns, negative without an "image" key
(NumPro's samples have "video"); a random permutation is cut into megabatches of batch x
(world size x accumulation); each megabatch is sorted by that length, largest first, and dealt
into batches; mixed signs keep the two groups apart and put their two last megabatches at the end.
"""

from __future__ import annotations

import pytest
import torch

from numpro.training.sampler import (ModalityLengthGroupedSampler, modality_grouped, modality_lengths,
                                     split_even)


def video_sample(words: int, image: bool = False) -> dict:
    sample = {"video": "v", "conversations": [{"from": "human", "value": "<image>\nq"},
                                              {"from": "gpt", "value": " ".join(["w"] * (words - 2))}]}
    if image:
        sample["image"] = "x.jpg"
    return sample


def test_lengths_are_word_counts_negative_for_video_samples():
    samples = [video_sample(5), video_sample(9), video_sample(4, image=True)]
    # "<image>\nq" is two words; an answer of n-2 words makes n
    assert modality_lengths(samples) == [-5, -9, 4]


def test_split_even_deals_to_the_lightest_unfilled_batch_or_strides():
    lengths = [5, 4, 3, 2, 1, 1]
    # 5 -> b0, 4 -> b1, 3 -> b2, 2 -> b2 (3 is the least; b2 is full), 1 -> b1 (4 < 5; full), 1 -> b0
    assert split_even([0, 1, 2, 3, 4, 5], lengths, 3) == [[0, 5], [1, 4], [2, 3]]
    assert split_even([0, 1, 2, 3, 4], lengths, 2) == [[0, 2, 4], [1, 3]]  # 5 does not divide by 2
    assert split_even([3, 1], lengths, 2) == [[3], [1]]  # one each: order kept


@pytest.mark.parametrize("batch, world", [(1, 8), (2, 3), (1, 1)])
def test_megabatches_are_a_seeded_permutation_cut_and_sorted_fewest_words_first(batch, world):
    lengths = [-w for w in torch.randint(1, 60, (53,), generator=torch.Generator().manual_seed(7)).tolist()]
    order = modality_grouped(lengths, batch, world, torch.Generator().manual_seed(3))
    assert sorted(order) == list(range(53))
    permutation = torch.randperm(53, generator=torch.Generator().manual_seed(3)).tolist()
    size = batch * world
    for start in range(0, 53, size):
        megabatch = order[start:start + size]
        assert set(megabatch) == set(permutation[start:start + size])  # composition: the permutation, cut
        if batch == 1:  # one sample a batch: dealt in sorted order
            words = [-lengths[i] for i in megabatch]
            assert words == sorted(words)  # largest signed length first: fewest words first


def test_ties_keep_the_permutation_order_and_image_samples_go_longest_first():
    permutation = torch.randperm(8, generator=torch.Generator().manual_seed(0)).tolist()
    assert modality_grouped([-3] * 8, 1, 8, torch.Generator().manual_seed(0)) == permutation
    lengths = [4, 9, 1, 7]
    order = modality_grouped(lengths, 1, 4, torch.Generator().manual_seed(0))
    assert [lengths[i] for i in order] == [9, 7, 4, 1]


def test_mixed_groups_keep_apart_and_their_last_megabatches_come_last_sorted_by_index():
    lengths = [5, -3, 8, -2, 6, -7, 1, -4, 2]  # images at 0 2 4 6 8, videos at 1 3 5 7
    order = modality_grouped(lengths, 1, 2, torch.Generator().manual_seed(1))
    assert sorted(order) == list(range(9))
    megabatches = [order[0:2], order[2:4], order[4:6]]
    for megabatch in megabatches:  # full megabatches hold one group each
        assert len({lengths[i] > 0 for i in megabatch}) == 1
    # the images' last megabatch has one sample (5 = 2 + 2 + 1), the videos' last two: merged, by index
    tail = order[6:]
    assert tail == sorted(tail) and sum(lengths[i] > 0 for i in tail) == 1 and len(tail) == 3


def test_the_sampler_replays_an_epoch_and_changes_between_epochs():
    lengths = modality_lengths([video_sample(3 + k % 7) for k in range(40)])
    sampler = ModalityLengthGroupedSampler(lengths, batch_size=1, world_size=16, seed=42)
    first = list(sampler)
    assert list(ModalityLengthGroupedSampler(lengths, 1, 16, 42)) == first and len(sampler) == 40
    sampler.set_epoch(1)
    second = list(sampler)
    assert sorted(second) == list(range(40)) and second != first
    sampler.set_epoch(0)
    assert list(sampler) == first
    generator = torch.Generator().manual_seed(42)
    assert first == modality_grouped(lengths, 1, 16, generator)


def test_a_sample_without_words_is_refused():
    with pytest.raises(ValueError, match="zero words"):
        modality_grouped([-3, 0], 1, 2, torch.Generator())
