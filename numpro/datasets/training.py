"""NumPro-FT training files (`train_sft.json`, SPEC 6).

A sample is `{"video": name without extension, "source": "anet" | "didemo" | "internvid"
(missing: the generic video folder), "conversations": [{"from": "human" | "gpt", "value"}, ...]}`;
answers name 0.5-FPS frame numbers as "From x to y". Extra fields (our VTimeLLM converter keeps
`id`, `duration`, `split`) are allowed.

This module reads the file and checks each sample's fields and types. Whether a well-formed
sample can train (its turns, the token cap) is numpro.training.eligibility's one rule, which
`numpro data check` and training's pre-flight scan share.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..parsing import UPSTREAM_SPAN_PATTERN
from .records import check_type, load_list, need, text, where

SOURCES = ("anet", "didemo", "internvid")
NO_SOURCE = "(no source)"  # samples without "source": they use the generic video folder


def sample_source(sample) -> str:
    """The sample's source column: its "source", or NO_SOURCE without one. A source other than
    SOURCES keeps its own name: training has no folder for it (as upstream), and `data check` says so."""
    source = sample.get("source") if isinstance(sample, dict) else None
    return source if isinstance(source, str) and source else NO_SOURCE
ROLES = ("human", "gpt")
IMAGE_TOKEN = "<image>"
# "From x to y" with optional "Frame" words: upstream's answer pattern, every match in a turn.
ANSWER_SPAN = re.compile(UPSTREAM_SPAN_PATTERN, re.IGNORECASE)


def validate_sample(sample: Any, at: str) -> dict:
    """Check a training sample's fields and types (not its turns' order: see eligibility); return it."""
    text(sample, "video", at)
    if sample.get("source") is not None:
        check_type(sample["source"], "source", str, at)
    for index, turn in enumerate(need(sample, "conversations", list, at)):
        need(turn, "from", str, f"{at}, turn {index}")
        need(turn, "value", str, f"{at}, turn {index}")
    return sample


def read_samples(path: str | Path) -> list:
    """A training file's records as they are (a JSON list)."""
    return load_list(path, "samples")


def read_training(path: str | Path) -> list[dict]:
    """A training file (JSON list), every sample's fields validated."""
    data = read_samples(path)
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
