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
from typing import Any, Callable, Sequence

import numpy as np


@dataclass
class PreparedBatch:
    """Model inputs for a batch of (video, text) requests, built on the CPU."""

    tensors: dict[str, Any]  # what the family's generate() consumes (torch tensors)
    prompts: list[str] = field(default_factory=list)  # the exact text each request renders to


@dataclass
class Answer:
    """One request's outcome when a family needs more than the text (e.g. the API backend).

    `generate` may return plain strings or Answers. A status other than "ok" goes into the
    record with `error`; `extra` fields (such as token usage) are merged into the record.
    """

    text: str | None
    status: str = "ok"
    error: str | None = None
    extra: dict = field(default_factory=dict)


class ModelError(ValueError):
    """A model or adapter path that cannot be what the script needs; the message names it."""


class Preprocessor(ABC):
    """Numbered frames + user text -> model inputs. Picklable; no weights."""

    @abstractmethod
    def __call__(self, videos: Sequence[np.ndarray], texts: Sequence[str], fps: float) -> PreparedBatch:
        """`videos[i]` is a (T, H, W, 3) uint8 RGB array of stamped frames; `texts[i]` its user text."""


class VideoLanguageModel(ABC):
    family: str = ""

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


@dataclass(frozen=True)
class Family:
    """What the generic layers need to know about a model family, declared once (cf. lmms-eval's
    model registry): which checkpoints are its, which script evaluates it, its defaults, and the
    family-specific arguments its `load` takes (numpro.models.<name>.load)."""

    name: str  # the module under numpro.models
    model_types: tuple[str, ...]  # config.json `model_type` values it loads
    scripts: str  # the eval scripts for it ({task}: mr or hd)
    hd_prompt_style: str = "qwen2_vl"  # which upstream highlight prompt (prompts.HD_PROMPTS)
    gpu_dtype: str = "bfloat16"  # default dtype on a GPU (float32 on the CPU)
    attention: str | None = None  # fixed attention implementation; None: flash-attention-2 if installed, else sdpa
    hub: bool = True  # also loads hub ids (LongVA: checkpoint folders only)
    needs_processor: bool = True  # a preprocessor/processor config must sit beside the tokenizer
    load_args: Callable[[Any], dict] = lambda args: {}  # family-specific load() keywords from the parsed flags
    frame_selection: Callable[[Any], str] = lambda args: "all"  # which frames the model gets (run record)
    stop_strings: tuple[str, ...] = ()  # decoding also stops at these (besides the eos ids)


def _hf_load_args(args) -> dict:
    return {"device_map": getattr(args, "device_map", None), "processor_path": args.processor_path}


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    FAMILIES[family.name] = family
    return family


register_family(Family(
    "qwen2_vl", ("qwen2_vl", "qwen2_5_vl"), "eval/qwen2_vl_7b_{task}.py",
    load_args=lambda args: dict(_hf_load_args(args), frame_rule=args.frame_rule),
    frame_selection=lambda args: args.frame_rule))
register_family(Family("llava_onevision", ("llava_onevision",), "eval/qwen2_vl_7b_{task}.py",
                       load_args=_hf_load_args))
register_family(Family(
    "longva", ("llava_qwen",), "eval/numpro_ft_{task}.py", hd_prompt_style="numpro_ft",
    gpu_dtype="float16",  # upstream's eval dtype
    attention="sdpa",  # upstream's eval picks sdpa on torch >= 2.1.2
    hub=False, needs_processor=False, stop_strings=("<|im_end|>",),  # longva_inputs.STOP_STRING, upstream's stop
    load_args=lambda args: {"lora_path": args.lora_path, "max_frames": args.max_frames,
                            "processor_path": args.processor_path}))


def family_of_model_type(model_type: str) -> Family | None:
    return next((f for f in FAMILIES.values() if model_type in f.model_types), None)


def hd_prompt_style(family: str) -> str:
    return FAMILIES[family].hd_prompt_style if family in FAMILIES else "qwen2_vl"


def _looks_like_hub_id(model_path: str | Path) -> bool:
    """'org/name' whose first part is not a folder here (a mistyped local path is not a hub id)."""
    parts = str(model_path).split("/")
    return len(parts) == 2 and all(parts) and not parts[0].startswith(".") and not Path(parts[0]).is_dir()


def detect_family(model_path: str | Path, hub: bool = True) -> str:
    """The family module for a checkpoint: from its config.json, or (`hub`) the hub's config for an id."""
    path = Path(model_path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path}: not a model folder (no config.json)")
        model_type = read_model_type(path)
    elif path.exists():
        raise ModelError(f"{path}: is a file; expected a model folder or a hub id")
    elif not hub or not _looks_like_hub_id(model_path):
        raise ModelError(f"{model_path}: no such model folder")
    else:
        from transformers import AutoConfig

        try:
            model_type = AutoConfig.from_pretrained(str(model_path)).model_type
        except Exception as err:  # offline, unknown repository, no access: one line, not a traceback
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ModelError(f"{model_path}: no such folder, and loading it as a hub id failed: {reason}") from None
    family = family_of_model_type(model_type)
    if family is None:
        known = ", ".join(t for f in FAMILIES.values() for t in f.model_types)
        raise ModelError(f"{model_path}: unsupported model_type {model_type!r}; supported: {known}")
    return family.name


_TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json", "vocab.json")


def check_checkpoint(model_path: str | Path, family: str, *, lora_path: str | Path | None = None,
                     processor_path: str | Path | None = None, random_init: bool = False) -> None:
    """Fail early, with one line naming the path, on what would otherwise be a traceback mid-load."""
    folder = Path(processor_path or model_path)
    if processor_path is not None and not folder.is_dir():
        raise ModelError(f"{folder}: no such tokenizer/processor folder")
    checked = folder.is_dir() and (processor_path is not None or not random_init)
    if checked and not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise ModelError(f"{folder}: no tokenizer files ({', '.join(_TOKENIZER_FILES)}); "
                         "pass --processor_path with the model's tokenizer/processor folder")
    processor_files = ("preprocessor_config.json", "processor_config.json")
    if FAMILIES[family].needs_processor and checked and not any((folder / name).is_file() for name in processor_files):
        raise ModelError(f"{folder}: no {' or '.join(processor_files)} (the image/video processor); "
                         "pass --processor_path with the model's processor folder")
    if lora_path is not None:
        lora = Path(lora_path)
        if not lora.is_dir():
            raise ModelError(f"{lora}: no such adapter folder")
        if not (lora / "adapter_config.json").is_file():
            raise ModelError(f"{lora}: not an adapter folder (no adapter_config.json)")


def load_model(model_path: str | Path, family: str | None = None, **kwargs) -> VideoLanguageModel:
    """Load any supported family; `family` defaults to what the checkpoint's config says."""
    import importlib

    module = importlib.import_module(f"numpro.models.{family or detect_family(model_path)}")
    return module.load(model_path, **kwargs)
