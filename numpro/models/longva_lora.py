"""NumPro-FT's released adapter folder: load it onto a LongVA network and merge it.

Layout (upstream train.py with --lora_enable, SPEC 5):
- adapter_config.json + adapter_model.safetensors (or adapter_model.bin): a PEFT LoRA whose
  target_modules are the seven projection names; PEFT matches them by name, so CLIP's
  self_attn.q_proj/k_proj/v_proj carry LoRA too. Keys read
  `base_model.model.<module path>.lora_{A,B}.weight`.
- non_lora_trainables.bin: the fully trained projector, keys
  `base_model.model.model.mm_projector.{0,2}.{weight,bias}`.
- config.json of the training run: not read (the base checkpoint's config applies).

adapter_config.json is written with only the fields peft 0.11.1 (upstream's pin) knows, so
upstream's loader reads our adapters (it silently falls back to the base model on an unknown
key); a field left out must hold the current PEFT's default, so both versions read one meaning.
When CLIP's LoRA B matrices are all zero (upstream's training leaves them so), loading says so.

Evaluation as upstream: projector keys lose "base_model." and then "model." when they start
with "model.model.", are loaded into the network, then the adapter is attached and merged.
Unlike upstream (load_state_dict(strict=False), PEFT warnings), a key with no place in the
network, or a LoRA weight the file lacks, is an error naming it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..jsonio import write_json
from .longva_checkpoint import CheckpointError, check_keys, check_shape

logger = logging.getLogger(__name__)
NON_LORA_NAME = "non_lora_trainables.bin"
ADAPTER_CONFIG = "adapter_config.json"
# find_all_linear_names() upstream, on the language model's Linear layers (lm_head removed)
TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
VISION_LORA_B = (".vision_tower.", ".lora_B.")
# The dataclass fields of peft 0.11.1's LoraConfig (with PeftConfig's and PeftConfigMixin's):
# from_pretrained passes every key of adapter_config.json to it, and any other key is a TypeError.
PEFT_011_LORA_FIELDS = frozenset({
    "peft_type", "auto_mapping", "base_model_name_or_path", "revision", "task_type", "inference_mode",
    "r", "target_modules", "lora_alpha", "lora_dropout", "fan_in_fan_out", "bias", "use_rslora",
    "modules_to_save", "init_lora_weights", "layers_to_transform", "layers_pattern", "rank_pattern",
    "alpha_pattern", "megatron_config", "megatron_core", "loftq_config", "use_dora", "layer_replication",
})
VERSION_STAMP = "peft_version"  # written by newer PEFT as a record, no setting


def peft_011_config(config: dict) -> dict:
    """An adapter config reduced to peft 0.11.1's LoraConfig fields, or ValueError when a field it
    lacks holds a value other than the current PEFT's default (the adapter would change meaning)."""
    import dataclasses

    from peft import LoraConfig

    defaults = {}
    for f in dataclasses.fields(LoraConfig):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
    changed = sorted(key for key, value in config.items() if key not in PEFT_011_LORA_FIELDS
                     and key != VERSION_STAMP and (key not in defaults or value != defaults[key]))
    if changed:
        raise ValueError(f"adapter config fields peft 0.11 cannot express: "
                         f"{', '.join(f'{k}={config[k]!r}' for k in changed)}")
    return {key: value for key, value in config.items() if key in PEFT_011_LORA_FIELDS}


def write_peft_011_config(lora_dir: str | Path) -> Path:
    """Rewrite the folder's adapter_config.json with peft 0.11.1's fields only (see peft_011_config)."""
    path = Path(lora_dir) / ADAPTER_CONFIG
    config = peft_011_config(json.loads(path.read_text(encoding="utf-8")))
    write_json(path, config, sort_keys=True)
    return path


def read_non_lora(lora_dir: str | Path) -> dict:
    """non_lora_trainables.bin with upstream's key stripping applied ({} when the file is absent)."""
    import torch

    path = Path(lora_dir) / NON_LORA_NAME
    if not path.is_file():
        return {}
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {(k[len("base_model."):] if k.startswith("base_model.") else k): v for k, v in state.items()}
    if any(k.startswith("model.model.") for k in state):
        state = {(k[len("model."):] if k.startswith("model.") else k): v for k, v in state.items()}
    return state


def load_non_lora(network, lora_dir: str | Path) -> list[str]:
    """Copy the adapter folder's non-LoRA tensors (the projector) into `network`; returns their names."""
    import torch

    state = read_non_lora(lora_dir)
    params = network.state_dict()
    unknown = set(state) - set(params)
    if unknown:
        check_keys(set(), unknown, str(Path(lora_dir) / NON_LORA_NAME))
    with torch.no_grad():
        for key, tensor in state.items():
            check_shape(NON_LORA_NAME, key, tensor, params[key])
            params[key].copy_(tensor)
    return sorted(state)


def attach_adapter(network, lora_dir: str | Path):
    """Inject the folder's LoRA into `network` and load its weights strictly; returns the PeftModel."""
    from peft import PeftConfig, PeftModel
    from peft.utils import load_peft_weights, set_peft_model_state_dict

    lora_dir = Path(lora_dir)
    config = PeftConfig.from_pretrained(str(lora_dir))
    config.inference_mode = True
    peft_model = _peft_model(PeftModel, network, config)
    weights = load_peft_weights(str(lora_dir), device="cpu")
    result = set_peft_model_state_dict(peft_model, weights)
    missing = [k for k in result.missing_keys if ".lora_" in k]
    if result.unexpected_keys or missing:
        raise CheckpointError(
            f"{lora_dir}: adapter weights do not match the LongVA network "
            f"(missing: {sorted(missing)[:20]}, unexpected: {sorted(result.unexpected_keys)[:20]})"
        )
    vision_b = [tensor for key, tensor in weights.items() if all(part in key for part in VISION_LORA_B)]
    if vision_b and not any(tensor.any() for tensor in vision_b):
        logger.warning("%s: the CLIP LoRA's %d B matrices are all zero: it is the identity, CLIP is unchanged "
                       "(as upstream's training leaves it)", lora_dir, len(vision_b))
    return peft_model.eval()


def _peft_model(factory, network, config):
    """PEFT reads a transformers attribute deprecated in 5.x; its warning says nothing about us."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return factory(network, config)


def apply_lora(network, lora_dir: str | Path, merge: bool = True):
    """Upstream's load_lora + merge_and_unload: projector first, then the merged adapter.

    With `merge=False` the PeftModel is returned unmerged (same forward, for checks).
    """
    load_non_lora(network, lora_dir)
    peft_model = attach_adapter(network, lora_dir)
    return peft_model.merge_and_unload() if merge else peft_model


def save_released_layout(network, lora_dir: str | Path, raw_config: dict, rank: int = 64, alpha: int = 128,
                         seed: int = 0, scale: float = 0.05) -> Path:
    """Write a randomly initialised adapter for `network` in the released NumPro-FT layout.

    LoRA B is non-zero so merging changes the outputs; the projector in non_lora_trainables.bin
    differs from the network's. `network` itself is left unchanged.
    """
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    lora_dir = Path(lora_dir)
    lora_dir.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(TARGET_MODULES), lora_dropout=0.05,
                        bias="none", task_type="CAUSAL_LM")
    peft_model = _peft_model(get_peft_model, copy.deepcopy(network), config)
    projector = {}
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * scale)
            elif ".mm_projector." in name:
                param.copy_(torch.randn(param.shape, generator=generator) * scale)
                projector[name] = param.detach().cpu().clone()
    peft_model.save_pretrained(str(lora_dir))
    write_peft_011_config(lora_dir)
    torch.save(projector, lora_dir / NON_LORA_NAME)
    with open(lora_dir / "config.json", "w", encoding="utf-8") as handle:
        json.dump(raw_config, handle, indent=2)
    return lora_dir
