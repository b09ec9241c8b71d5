"""The interface every model family implements, and how a family is picked from a checkpoint.

The evaluation runner only knows this interface:
- `model.preprocessor(videos, texts, fps)`: CPU work that turns numbered frames and user texts
  into model inputs. It is picklable and runs in DataLoader worker processes, so it overlaps
  the model's generation. It never touches the model's weights.
- `model.generate(inputs, max_new_tokens)`: greedy decoding of one prepared batch, returning
  the answers as text (prompt and special tokens removed).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np


@dataclass
class PreparedBatch:
    """Model inputs for a batch of (video, text) requests, built on the CPU."""

    tensors: dict[str, Any]  # what the family's generate() consumes (torch tensors)
    prompts: list[str] = field(default_factory=list)  # the exact text each request renders to


class Preprocessor(ABC):
    """Numbered frames + user text -> model inputs. Picklable; no weights."""

    @abstractmethod
    def __call__(self, videos: Sequence[np.ndarray], texts: Sequence[str], fps: float) -> PreparedBatch:
        """`videos[i]` is a (T, H, W, 3) uint8 RGB array of stamped frames; `texts[i]` its user text."""


class VideoLanguageModel(ABC):
    family: str = ""
    hd_prompt_style: str = "qwen2_vl"  # which upstream highlight prompt this family's script uses

    preprocessor: Preprocessor

    @abstractmethod
    def generate(self, batch: PreparedBatch, max_new_tokens: int) -> list[str]:
        """Greedy answers, one per request in the batch."""


def read_model_type(model_path: str | Path) -> str:
    """`model_type` from a checkpoint folder's config.json ('' for a hub id not on disk)."""
    config = Path(model_path) / "config.json"
    if not config.is_file():
        return ""
    with open(config, encoding="utf-8") as handle:
        return json.load(handle).get("model_type", "")


# model_type in config.json -> family module; LongVA's LLaVA-format checkpoints say "llava_qwen".
FAMILIES = {
    "qwen2_vl": "qwen2_vl",
    "qwen2_5_vl": "qwen2_vl",
    "llava_onevision": "llava_onevision",
    "llava_qwen": "longva",
}


def detect_family(model_path: str | Path) -> str:
    """The family module for a checkpoint: from its config.json, or the hub's config for an id."""
    model_type = read_model_type(model_path)
    if not model_type and not Path(model_path).exists():
        from transformers import AutoConfig

        model_type = AutoConfig.from_pretrained(model_path).model_type
    if model_type not in FAMILIES:
        raise ValueError(f"{model_path}: unsupported model_type {model_type!r}; supported: {', '.join(FAMILIES)}")
    return FAMILIES[model_type]


def load_model(model_path: str | Path, family: str | None = None, **kwargs) -> VideoLanguageModel:
    """Load any supported family; `family` defaults to what the checkpoint's config says."""
    import importlib

    module = importlib.import_module(f"numpro.models.{family or detect_family(model_path)}")
    return module.load(model_path, **kwargs)
