"""NumPro-FT training files (`train_sft.json`, SPEC 6) and what the 4096-token cap does to them.

A sample is `{"video": name without extension, "source": "anet" | "didemo" | "internvid"
(missing: the generic video folder), "conversations": [{"from": "human" | "gpt", "value"}, ...]}`;
answers name 0.5-FPS frame numbers as "From x to y". Extra fields (our VTimeLLM converter keeps
`id`, `duration`, `split`) are allowed.

Sequence length (SPEC 5): LongVA feeds every frame of the numbered clip, at most 240, at 144
tokens each, and the cap applies after the visual tokens are spliced in. A sample whose visual
tokens plus text reach past `model_max_length` loses (part of) its answer. Text tokens are
estimated (about 4 characters a token, plus the ChatML template) unless a real counter is given.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Callable

from .. import jsonio, timeline
from ..parsing import UPSTREAM_SPAN_PATTERN
from .records import DataError, check_type, need, text, where

SOURCES = ("anet", "didemo", "internvid")
ROLES = ("human", "gpt")
FPS = 0.5  # NumPro-FT clips are numbered at 0.5 FPS (SPEC 2)
TOKENS_PER_FRAME = 144  # 24x24 CLIP patches pooled 2x2 (SPEC 5)
MODEL_MAX_LENGTH = 4096
IMAGE_TOKEN = "<image>"
# "From x to y" with optional "Frame" words: upstream's answer pattern, every match in a turn.
ANSWER_SPAN = re.compile(UPSTREAM_SPAN_PATTERN, re.IGNORECASE)
# ChatML around the turns: system block (~11 tokens) and <|im_start|>role\n ... <|im_end|>\n per turn.
_TEMPLATE_TOKENS = 11
_TURN_TOKENS = 5
_CHARS_PER_TOKEN = 4


def validate_sample(sample: Any, at: str) -> dict:
    """Check a training sample's fields; return it unchanged."""
    text(sample, "video", at)
    if sample.get("source") is not None:
        check_type(sample["source"], "source", str, at)
    turns = need(sample, "conversations", list, at)
    if not turns:
        raise DataError(f"{at}: field 'conversations' is empty")
    for index, turn in enumerate(turns):
        turn_at = f"{at}, turn {index}"
        role = need(turn, "from", str, turn_at)
        if role not in ROLES:
            raise DataError(f"{turn_at}: field 'from' must be 'human' or 'gpt', got {role!r}")
        need(turn, "value", str, turn_at)
    if turns[0]["from"] != "human":
        raise DataError(f"{at}, turn 0: field 'from' must be 'human' (the question comes first)")
    if not any(turn["from"] == "gpt" for turn in turns):
        raise DataError(f"{at}: field 'conversations' has no 'gpt' answer")
    return sample


def read_training(path: str | Path) -> list[dict]:
    """A training file (JSON list), every sample validated."""
    try:
        data = jsonio.read_json(path)
    except jsonio.JsonInputError as exc:
        raise DataError(str(exc)) from None
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of samples, got {type(data).__name__}")
    for number, sample in enumerate(data, 1):
        validate_sample(sample, where(path, f"record {number}"))
    return data


def answer_spans(sample: dict) -> list[tuple[int, int]]:
    """Every "From x to y" frame span in the sample's answers."""
    return [
        (int(m.group(1)), int(m.group(2)))
        for turn in sample["conversations"]
        if turn["from"] == "gpt"
        for m in ANSWER_SPAN.finditer(turn["value"])
    ]


def clip_frames(duration: float, fps: float = FPS, max_frames: int | None = timeline.DEFAULT_MAX_FRAMES) -> int:
    """Frames the model sees for a clip of `duration` seconds: its sampled frames, capped."""
    return len(timeline.cap_frames(timeline.num_sampled_frames(duration, fps), max_frames))


def estimate_text_tokens(sample: dict) -> int:
    """Rough token count of the chat text around the video (no tokenizer needed)."""
    total = _TEMPLATE_TOKENS
    for turn in sample["conversations"]:
        value = turn["value"].replace(IMAGE_TOKEN + "\n", "").replace(IMAGE_TOKEN, "")
        total += _TURN_TOKENS + math.ceil(len(value) / _CHARS_PER_TOKEN)
    return total


def sequence_tokens(
    sample: dict, frames: int, count_text: Callable[[dict], int] = estimate_text_tokens
) -> int:
    """Length of the spliced sequence: visual tokens plus the text up to the last answer's end."""
    return frames * TOKENS_PER_FRAME + count_text(sample)


def loses_answer(
    sample: dict,
    frames: int,
    model_max_length: int = MODEL_MAX_LENGTH,
    count_text: Callable[[dict], int] = estimate_text_tokens,
) -> bool:
    """True when truncation to `model_max_length` would cut into the sample's answer."""
    return sequence_tokens(sample, frames, count_text) > model_max_length
