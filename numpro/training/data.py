"""The training samples the pre-flight scan kept, and the collator that batches them.

A sample is its conversation's ids and labels (conversation.py) and every frame of its numbered
clip (at most `max_frames`, picked by linspace as LongVA does), CLIP-cropped uint8 frames;
normalisation happens on the model's device (numpro.models.longva_inputs.CLIPFrames).

The cap applies after splicing: ids past `model_max_length - frames * TOKENS_PER_FRAME + 1` are
dropped. The scan's eligibility rule guarantees those are never targets, and it is checked again
here on the frames actually decoded. A video that cannot be decoded now, although the scan probed
it, becomes a `skipped` entry that the trainer counts and logs: never another sample in its place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .. import timeline, video
from ..models.longva_inputs import IGNORE_INDEX, CLIPFrames
from ..protocol import MAX_FRAMES
from . import eligibility
from .conversation import encode
from .preflight import Kept
from .sampler import modality_lengths

logger = logging.getLogger(__name__)


class ClipDataset:
    """torch-style map dataset over the kept samples (picklable for DataLoader workers)."""

    def __init__(self, samples: list[dict], kept: list[Kept], tokenizer, clip: CLIPFrames, model_max_length: int,
                 max_frames: int | None = MAX_FRAMES, backend: str = "auto"):
        self.conversations = [samples[k.index]["conversations"] for k in kept]
        self.modality_lengths = modality_lengths([samples[k.index] for k in kept])  # the sample order's key
        self.kept = kept
        self.tokenizer = tokenizer
        self.clip = clip
        self.model_max_length = model_max_length
        self.max_frames = max_frames
        self.backend = backend

    def __len__(self) -> int:
        return len(self.kept)

    def frames(self, path: str) -> np.ndarray:
        """Every frame of the clip, at most max_frames (linspace), CLIP-cropped uint8."""
        info = video.probe(path, self.backend)
        positions = timeline.cap_frames(info.num_frames, self.max_frames)
        pixels = video.decode(path, positions, size=None, backend=self.backend)
        return self.clip.geometry(pixels)

    def __getitem__(self, i: int) -> dict:
        import torch

        item = self.kept[i]
        encoded = encode(self.conversations[i], self.tokenizer)
        try:
            frames = self.frames(item.path)
        except (video.VideoError, ValueError) as exc:
            logger.warning("record %d (%s): cannot decode %s: %s", item.index + 1, item.video, item.path, exc)
            return {"skipped": (item.index, item.video, str(exc))}
        text = eligibility.TextTokens(encoded.supervised_end - 1, exact=True)  # -1: the placeholder
        budget = eligibility.fit(text, len(frames), self.model_max_length, max_frames=None)  # frames already capped
        if not budget.fits:
            reason = f"{len(frames)} frames now (scan: {item.frames}): the cap would cut the answer"
            logger.warning("record %d (%s): %s", item.index + 1, item.video, reason)
            return {"skipped": (item.index, item.video, reason)}
        room = self.model_max_length - budget.visual_tokens + 1  # ids kept; +1: the placeholder
        return {
            "input_ids": torch.tensor(encoded.input_ids[:room], dtype=torch.long),
            "labels": torch.tensor(encoded.labels[:room], dtype=torch.long),
            "frames": torch.from_numpy(frames),
        }


@dataclass
class Collator:
    """Right-pads ids (pad id) and labels (IGNORE_INDEX); frames of the batch one after another."""

    pad_id: int

    def __call__(self, items: list[dict]) -> dict:
        import torch

        good = [item for item in items if "frames" in item]
        batch: dict = {"skipped": [item["skipped"] for item in items if "skipped" in item]}
        if not good:
            return batch
        width = max(len(item["input_ids"]) for item in good)
        input_ids = torch.full((len(good), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(good), width), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(good), width), dtype=torch.long)
        for row, item in enumerate(good):
            n = len(item["input_ids"])
            input_ids[row, :n] = item["input_ids"]
            labels[row, :n] = item["labels"]
            attention_mask[row, :n] = 1
        batch.update(
            input_ids=input_ids,
            labels=labels,
            attention_mask=attention_mask,
            frames=torch.cat([item["frames"] for item in good]),
            frame_counts=torch.tensor([len(item["frames"]) for item in good], dtype=torch.long),
        )
        return batch
