"""LongVA's inputs: the qwen_1_5 prompt, LLaVA's `<image>` tokenisation and CLIP's pixels.

Upstream (LongVA / LLaVA-NeXT, used by NumPro's eval/numpro_ft_*.py) renders one chat turn with
the `qwen_1_5` template, splits the text on `<image>`, tokenises each part on its own and puts
IMAGE_TOKEN_INDEX (-200) between the parts; the model later replaces that id by the video's
visual tokens. Frames go through CLIPImageProcessor (resize shortest edge 336 bicubic, center
crop 336, rescale 1/255, normalize with CLIP's mean/std).

Here CLIP's geometric steps run on the CPU (a no-op for the 336x336 frames NumPro stamps) and
yield uint8 frames; rescale + normalize run on the model's device (`normalize_frames`), so four
times less data crosses between DataLoader workers and the model. Together they give the
processor's output exactly (tests/test_longva.py).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..timeline import DEFAULT_MAX_FRAMES
from .base import PreparedBatch, Preprocessor

IMAGE_TOKEN = "<image>"
IMAGE_TOKEN_INDEX = -200  # LLaVA's placeholder id for the visual block
IGNORE_INDEX = -100  # label of tokens that are not targets (PyTorch's cross-entropy default)

# conv_templates["qwen_1_5"] with one user turn and an open assistant turn (SPEC 5).
QWEN_1_5_TEMPLATE = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n<image>\n{text}<|im_end|>\n<|im_start|>assistant\n"
)
STOP_STRING = "<|im_end|>"

# openai/clip-vit-large-patch14-336's preprocessor_config.json
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_SIZE = 336


def render_prompt(text: str) -> str:
    """The exact prompt string upstream builds for one video and one user text."""
    if IMAGE_TOKEN in text:
        raise ValueError(f"the user text may not contain {IMAGE_TOKEN!r}: one video, one placeholder")
    return QWEN_1_5_TEMPLATE.format(text=text)


def tokenizer_image_token(prompt: str, tokenizer) -> list[int]:
    """LLaVA's tokenizer_image_token: each `<image>`-separated chunk tokenised alone, -200 between.

    A BOS the tokenizer puts at every chunk start is kept once, at the front, as upstream does
    (Qwen2's tokenizer adds none).
    """
    chunks = [tokenizer(chunk).input_ids for chunk in prompt.split(IMAGE_TOKEN)]
    bos = tokenizer.bos_token_id
    offset = 1 if bos is not None and chunks[0][:1] == [bos] else 0
    ids = chunks[0][:offset]
    for index, chunk in enumerate(chunks):
        if index:
            ids.append(IMAGE_TOKEN_INDEX)
        ids.extend(chunk[offset:])
    return ids


class CLIPFrames:
    """CLIPImageProcessor's steps, split into CPU geometry (uint8) and device normalisation."""

    def __init__(self, size: int = CLIP_SIZE, crop: int = CLIP_SIZE, mean=CLIP_MEAN, std=CLIP_STD, resample: int = 3):
        self.size, self.crop = int(size), int(crop)
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        self.resample = int(resample)

    @classmethod
    def from_processor_config(cls, config: dict) -> "CLIPFrames":
        """From a CLIP preprocessor_config.json (shortest-edge resize, square center crop)."""
        size = config.get("size", CLIP_SIZE)
        size = size.get("shortest_edge", size.get("height")) if isinstance(size, dict) else size
        crop = config.get("crop_size", size)
        crop = crop.get("height", crop.get("width")) if isinstance(crop, dict) else crop
        return cls(size, crop, config.get("image_mean", CLIP_MEAN), config.get("image_std", CLIP_STD),
                   config.get("resample", 3))

    def geometry(self, frames: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 RGB -> (T, crop, crop, 3) uint8: resize + center crop as CLIP does."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected (T, H, W, 3) uint8 RGB frames, got {frames.shape} {frames.dtype}")
        if frames.shape[1] == frames.shape[2] == self.crop == self.size:
            return np.ascontiguousarray(frames)  # resize and crop are identities here
        from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

        processor = CLIPImageProcessorPil(
            size={"shortest_edge": self.size}, crop_size={"height": self.crop, "width": self.crop},
            resample=self.resample, do_rescale=False, do_normalize=False,
        )
        pixels = processor(list(frames), return_tensors="np")["pixel_values"]  # (T, 3, crop, crop) uint8
        return np.ascontiguousarray(np.asarray(pixels, dtype=np.uint8).transpose(0, 2, 3, 1))

    def normalize(self, frames, dtype=None):
        """uint8 (N, H, W, 3) tensor -> normalised (N, 3, H, W) pixels, computed in float32."""
        import torch

        pixels = frames.permute(0, 3, 1, 2).to(torch.float32) / 255.0
        mean = torch.tensor(self.mean, dtype=torch.float32, device=pixels.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=pixels.device).view(1, 3, 1, 1)
        pixels = (pixels - mean) / std
        return pixels.to(dtype) if dtype is not None else pixels


class LongVAPreprocessor(Preprocessor):
    """Numbered frames + user texts -> left-padded ids with one -200 each, and uint8 frames.

    `tensors`: input_ids (B, L) and attention_mask (B, L), left padded with the pad id;
    frames (sum T_i, 336, 336, 3) uint8, the videos one after another; frame_counts (B,).

    The frames arrive already capped (numpro.frames.numbered_frames with the same max_frames):
    capping here again would feed the model other frames than the ones sampled, dumped and
    recorded, so a longer video is an error instead.
    """

    def __init__(self, tokenizer, clip: CLIPFrames | None = None, max_frames: int | None = DEFAULT_MAX_FRAMES):
        self.tokenizer = tokenizer
        self.clip = clip or CLIPFrames()
        self.max_frames = max_frames
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else tokenizer.eos_token_id

    def render(self, text: str) -> str:
        return render_prompt(text)

    def check_frame_count(self, count: int) -> None:
        if count == 0:
            raise ValueError("a video with no frames cannot be fed to LongVA")
        if self.max_frames and count > self.max_frames:
            raise ValueError(f"{count} frames given, but this LongVA model takes at most {self.max_frames} per video: "
                             f"sample them with max_frames={self.max_frames} (numpro.frames.numbered_frames)")

    def token_ids(self, prompt: str) -> list[int]:
        return tokenizer_image_token(prompt, self.tokenizer)

    def __call__(self, videos: Sequence[np.ndarray], texts: Sequence[str], fps: float) -> PreparedBatch:
        import torch

        if len(videos) != len(texts):
            raise ValueError(f"{len(videos)} videos but {len(texts)} texts")
        prompts = [self.render(text) for text in texts]
        ids = [self.token_ids(prompt) for prompt in prompts]
        width = max(len(row) for row in ids)
        input_ids = torch.full((len(ids), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, row_ids in enumerate(ids):
            input_ids[row, width - len(row_ids):] = torch.tensor(row_ids, dtype=torch.long)
            attention_mask[row, width - len(row_ids):] = 1
        clips = []
        for frames in videos:
            self.check_frame_count(len(frames))
            clips.append(self.clip.geometry(np.asarray(frames)))
        tensors = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "frames": torch.from_numpy(np.concatenate(clips)),
            "frame_counts": torch.tensor([len(c) for c in clips], dtype=torch.long),
        }
        return PreparedBatch(tensors, prompts)
