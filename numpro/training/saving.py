"""Write a trained model in the released NumPro-FT layout (SPEC 5), which the eval scripts load.

The folder holds adapter_config.json (only the fields peft 0.11.1, upstream's pin, reads) +
adapter_model.safetensors (PEFT; LoRA keys `base_model.model.<module>.lora_{A,B}.weight`, CLIP's
included, at identity unless trained), non_lora_trainables.bin (the projector under
`base_model.model.model.mm_projector.{0,2}.{weight,bias}`) and config.json (the base
checkpoint's, with the training's token cap). Files are written to a temporary folder first and
moved in with adapter_config.json last, so a folder whose adapter_config.json is present was
written completely.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from contextlib import nullcontext
from pathlib import Path

from ..models.longva_lora import ADAPTER_CONFIG, NON_LORA_NAME, write_peft_011_config
from .lora import PROJECTOR


def _gathered(params):
    """Under ZeRO-3 parameters are partitioned across ranks: gather them (a collective)."""
    if any(hasattr(p, "ds_id") for p in params):
        from deepspeed import zero

        return zero.GatheredParameters(params)
    return nullcontext()


def trainable_state(model) -> dict:
    """LoRA and projector tensors of the PeftModel, copied to the CPU. Every rank must call it."""
    named = [(n, p) for n, p in model.named_parameters() if "lora_" in n or PROJECTOR in n]
    with _gathered([p for _, p in named]):
        return {name: param.detach().cpu().clone() for name, param in named}


def save_released(model, output_dir: str | Path, state: dict, raw_config: dict) -> Path:
    """Write `state` (from trainable_state) as a released-layout adapter folder."""
    import torch

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = output_dir / f".saving-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        # PEFT keeps the "lora_" entries and drops the adapter name from their keys.
        model.save_pretrained(str(staging), state_dict=state, save_embedding_layers=False)
        write_peft_011_config(staging)
        torch.save({k: v for k, v in state.items() if PROJECTOR in k}, staging / NON_LORA_NAME)
        with open(staging / "config.json", "w", encoding="utf-8") as handle:
            json.dump(raw_config, handle, indent=2)
        names = sorted(p.name for p in staging.iterdir())
        for name in [n for n in names if n != ADAPTER_CONFIG] + [ADAPTER_CONFIG]:
            os.replace(staging / name, output_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output_dir
