"""NumPro-FT's released adapter folder: load it onto a LongVA network and merge it.

Layout (upstream train.py with --lora_enable, SPEC 5):
- adapter_config.json + adapter_model.safetensors (or adapter_model.bin): a PEFT LoRA whose
  target_modules are the seven projection names; PEFT matches them by name, so CLIP's
  self_attn.q_proj/k_proj/v_proj carry LoRA too. Keys read
  `base_model.model.<module path>.lora_{A,B}.weight`.
- non_lora_trainables.bin: the fully trained projector, keys
  `base_model.model.model.mm_projector.{0,2}.{weight,bias}`.
- config.json of the training run: not read (the base checkpoint's config applies).

Evaluation as upstream: projector keys lose "base_model." and then "model." when they start
with "model.model.", are loaded into the network, then the adapter is attached and merged.
Unlike upstream (load_state_dict(strict=False), PEFT warnings), a key with no place in the
network, or a LoRA weight the file lacks, is an error naming it.
"""

from __future__ import annotations

from pathlib import Path

from .longva_checkpoint import CheckpointError, check_keys, check_shape

NON_LORA_NAME = "non_lora_trainables.bin"
# find_all_linear_names() upstream, on the language model's Linear layers (lm_head removed)
TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


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
    import json

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
    torch.save(projector, lora_dir / NON_LORA_NAME)
    with open(lora_dir / "config.json", "w", encoding="utf-8") as handle:
        json.dump(raw_config, handle, indent=2)
    return lora_dir
