"""The sample order of upstream's `--group_by_modality_length True` (its LLaVA trainer), our code.

Upstream's rules, as its trainer applies them to NumPro's training file:
- A sample's length is the number of whitespace-separated words over all its turns. It counts
  positive only for a sample with an "image" key; NumPro's samples name a "video", so every
  length is negative and all samples form one group ("modality").
- A megabatch is what one optimizer step consumes: per-device batch x world size x gradient
  accumulation (upstream hands the sampler world_size * gradient_accumulation_steps as its
  world size). With the recipe: 1 x 8 x 16 = 128 samples.
- One group: a random permutation of the samples is cut into megabatches; each megabatch is
  sorted by length, largest first (ties keep the permutation's order). With negative lengths
  that puts the samples with the fewest words first. Each megabatch is then dealt into
  world x accumulation batches (`split_even`), concatenated in batch order.
- Two groups (positive and negative lengths): each group is ordered as above; its megabatches
  but the last are shuffled together; the two last megabatches are merged, sorted by sample
  index and put at the end.
Every rank computes the same order (the generator is seeded with the seed plus the epoch, so
a resumed run replays it); transformers then hands rank r the batches r, r + world, ... of it.
Upstream drew the permutation from torch's global generator; the rules above are the same.
"""

from __future__ import annotations

import math

import torch

IMAGE_KEY = "image"


def modality_lengths(samples: list[dict]) -> list[int]:
    """Upstream's LazySupervisedDataset.modality_lengths: words of every turn, negative without "image"."""
    lengths = []
    for sample in samples:
        words = sum(len(turn["value"].split()) for turn in sample["conversations"])
        lengths.append(words if IMAGE_KEY in sample else -words)
    return lengths


def split_even(indices: list[int], lengths: list[int], chunks: int) -> list[list[int]]:
    """Deal a megabatch into `chunks` batches: strided when it does not divide evenly; otherwise each
    index (in order) joins the batch with the smallest running length sum (the first of equals),
    and a full batch takes no more."""
    if len(indices) % chunks:
        return [indices[start::chunks] for start in range(chunks)]
    size = len(indices) // chunks
    batches: list[list[int]] = [[] for _ in range(chunks)]
    sums = [0.0] * chunks
    for index in indices:
        target = sums.index(min(sums))
        batches[target].append(index)
        sums[target] += lengths[index]
        if len(batches[target]) == size:
            sums[target] = math.inf
    return batches


def length_grouped(lengths: list[int], batch_size: int, world_size: int, generator: torch.Generator) -> list[int]:
    """One group: random megabatches, each sorted by length (largest first), dealt into batches."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    size = world_size * batch_size
    flat: list[int] = []
    for start in range(0, len(order), size):
        megabatch = sorted(order[start:start + size], key=lambda i: lengths[i], reverse=True)
        for batch in split_even(megabatch, lengths, world_size):
            flat += batch
    return flat


def modality_grouped(lengths: list[int], batch_size: int, world_size: int, generator: torch.Generator) -> list[int]:
    """Upstream's order over signed lengths (see the module's docstring)."""
    if any(length == 0 for length in lengths):
        raise ValueError("a sample of zero words has no length to group by")
    if all(length > 0 for length in lengths) or all(length < 0 for length in lengths):
        return length_grouped(lengths, batch_size, world_size, generator)
    size = world_size * batch_size
    groups = []
    for sign in (1, -1):
        members = [i for i, length in enumerate(lengths) if length * sign > 0]
        ordered = [members[i] for i in length_grouped([lengths[i] * sign for i in members], batch_size, world_size,
                                                      generator)]
        groups.append([ordered[start:start + size] for start in range(0, len(ordered), size)])
    (*images, last_images), (*texts, last_texts) = groups
    megabatches = images + texts
    megabatches = [megabatches[i] for i in torch.randperm(len(megabatches), generator=generator).tolist()]
    megabatches.append(sorted(last_images + last_texts))
    return [i for megabatch in megabatches for i in megabatch]


class ModalityLengthGroupedSampler(torch.utils.data.Sampler):
    """Indices in upstream's grouped order; the same on every rank for a given seed and epoch."""

    def __init__(self, lengths: list[int], batch_size: int, world_size: int, seed: int):
        super().__init__()
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.world_size = world_size  # ranks x gradient accumulation steps, as upstream
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def order(self) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return modality_grouped(self.lengths, self.batch_size, self.world_size, generator)

    def __iter__(self):
        return iter(self.order())
