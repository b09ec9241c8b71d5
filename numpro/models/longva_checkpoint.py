"""LongVA's LLaVA-format checkpoint folder: read it strictly, and write it (tiny models, tests).

The folder as downloaded holds config.json (Qwen2 keys plus mm_* keys, model_type
"llava_qwen"), generation_config.json, tokenizer files, and safetensors shards whose keys are
LLaVA's names, listed in model.safetensors.index.json (a single model.safetensors also works).

Loading is strict: a weight the network needs that the checkpoint lacks, or a checkpoint key
the network has no place for, is an error naming them. The only keys passed over are
non-persistent buffers older transformers versions wrote (CLIP's position_ids, rotary
inv_freq): they are recomputed, never read.

CLIP's config comes from the folder `mm_vision_tower` names (next to the checkpoint, or as
given) when it exists, else from the known ViT-L/14-336 facts; its weights always come from
the LongVA checkpoint (LongVA fine-tuned them).
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager, nullcontext
from pathlib import Path

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"
# Buffers some checkpoints carry; the network rebuilds them from its config.
_RECOMPUTED_BUFFERS = re.compile(r"(\.embeddings\.position_ids|\.rotary_emb\.inv_freq)$")
# Rows of these follow the tokenizer: upstream shrinks them to len(tokenizer) after loading.
VOCAB_KEYS = ("model.embed_tokens.weight", "lm_head.weight")
_LIST_LIMIT = 20


class CheckpointError(ValueError):
    """A checkpoint folder that does not match the LongVA network."""


def read_config(model_dir: str | Path) -> dict:
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"no config.json in {model_dir}")
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def language_config(raw: dict, attn_implementation: str = "sdpa"):
    """LongVAConfig from config.json's dict; mm_* keys are kept as attributes."""
    from .longva_arch import LongVAConfig

    # LlavaQwenForCausalLM.__init__ sets rope_scaling to None whatever the file says.
    dropped = ("model_type", "transformers_version", "rope_scaling")
    kwargs = {k: v for k, v in raw.items() if k not in dropped}
    kwargs.setdefault("tie_word_embeddings", False)
    config = LongVAConfig(**kwargs)
    config._attn_implementation = attn_implementation
    return config


def vision_tower_dir(raw: dict, model_dir: str | Path) -> Path | None:
    """The local folder `mm_vision_tower` names, if there is one (beside the checkpoint first)."""
    name = raw.get("mm_vision_tower") or raw.get("vision_tower")
    if not name:
        return None
    for candidate in (Path(model_dir) / name, Path(name)):
        if (candidate / "config.json").is_file():
            return candidate
    return None


def vision_config(raw: dict, model_dir: str | Path, attn_implementation: str = "sdpa"):
    """CLIPVisionConfig of the tower (its folder's config.json, else ViT-L/14-336)."""
    from transformers import CLIPVisionConfig

    from .longva_arch import clip_vit_l14_336

    folder = vision_tower_dir(raw, model_dir)
    config = CLIPVisionConfig.from_pretrained(folder) if folder is not None else clip_vit_l14_336()
    config._attn_implementation = attn_implementation
    return config


def clip_preprocessing(raw: dict, model_dir: str | Path):
    """CLIP's image preprocessing of the tower (its preprocessor_config.json, else CLIP's defaults)."""
    from .longva_inputs import CLIPFrames

    folder = vision_tower_dir(raw, model_dir)
    if folder is not None and (folder / "preprocessor_config.json").is_file():
        with open(folder / "preprocessor_config.json", encoding="utf-8") as handle:
            return CLIPFrames.from_processor_config(json.load(handle))
    return CLIPFrames()




def shard_map(model_dir: str | Path) -> dict[str, Path]:
    """checkpoint key -> safetensors file holding it."""
    model_dir = Path(model_dir)
    index = model_dir / INDEX_NAME
    if index.is_file():
        with open(index, encoding="utf-8") as handle:
            weight_map = json.load(handle)["weight_map"]
        return {key: model_dir / name for key, name in weight_map.items()}
    single = model_dir / SINGLE_NAME
    if single.is_file():
        from safetensors import safe_open

        with safe_open(single, framework="pt") as handle:
            return {key: single for key in handle.keys()}
    raise FileNotFoundError(f"no {INDEX_NAME} or {SINGLE_NAME} in {model_dir}")


def _named(keys, what: str) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:_LIST_LIMIT])
    more = f" and {len(keys) - _LIST_LIMIT} more" if len(keys) > _LIST_LIMIT else ""
    return f"{len(keys)} {what}: {shown}{more}"


def check_keys(expected, found, where: str) -> None:
    """Raise CheckpointError naming missing and unexpected keys."""
    expected, found = set(expected), {k for k in found if not _RECOMPUTED_BUFFERS.search(k)}
    missing, unexpected = expected - found, found - expected
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(_named(missing, "missing key(s)"))
        if unexpected:
            parts.append(_named(unexpected, "unexpected key(s)"))
        raise CheckpointError(f"{where} does not match the LongVA network: " + "; ".join(parts))


def check_shape(where: str, key: str, tensor, target) -> None:
    if tensor.shape != target.shape:
        raise CheckpointError(f"{where}: {key} has shape {tuple(tensor.shape)}, the network {tuple(target.shape)}")


def load_weights(network, model_dir: str | Path) -> None:
    """Copy every checkpoint tensor into `network` (strict; vocabulary rows cut to the network's)."""
    import torch
    from safetensors import safe_open

    files = shard_map(model_dir)
    params = network.state_dict()
    check_keys(params, files, str(model_dir))
    by_file: dict[Path, list[str]] = {}
    for key, path in files.items():
        if key in params:
            by_file.setdefault(path, []).append(key)
    with torch.no_grad():
        for path, keys in sorted(by_file.items()):
            with safe_open(path, framework="pt") as handle:
                for key in keys:
                    tensor = handle.get_tensor(key)
                    target = params[key]
                    if key in VOCAB_KEYS and tensor.shape[0] >= target.shape[0]:
                        tensor = tensor[: target.shape[0]]
                    check_shape(str(model_dir), key, tensor, target)
                    target.copy_(tensor)


@contextmanager
def _default_dtype(dtype):
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def build_network(config, vision_cfg, vocab_rows: int, device="cpu", dtype=None, initialize: bool = True):
    """Construct LongVAForCausalLM directly on `device` in `dtype` with `vocab_rows` vocabulary rows.

    `initialize=False` skips the random initialisation (the weights are loaded next).
    """
    import torch
    from transformers.initialization import no_init_weights

    from .longva_arch import LongVAForCausalLM

    config.vocab_size = vocab_rows
    dtype = dtype or torch.float32
    skip = no_init_weights() if not initialize else nullcontext()
    with skip, torch.device(device), _default_dtype(dtype):
        network = LongVAForCausalLM(config, vision_cfg)
    return network.eval()


def save_llava_checkpoint(network, raw_config: dict, output_dir: str | Path, num_shards: int = 2) -> Path:
    """Write `network`'s weights as LLaVA-named safetensors shards plus the index, and config.json."""
    from safetensors.torch import save_file

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in network.state_dict().items()}
    keys = list(state)
    num_shards = max(1, min(num_shards, len(keys)))
    per_shard = -(-len(keys) // num_shards)
    weight_map, total = {}, 0
    for shard in range(num_shards):
        name = f"model-{shard + 1:05d}-of-{num_shards:05d}.safetensors"
        part = {k: state[k] for k in keys[shard * per_shard:(shard + 1) * per_shard]}
        save_file(part, output_dir / name, metadata={"format": "pt"})
        for key, tensor in part.items():
            weight_map[key] = name
            total += tensor.numel() * tensor.element_size()
    with open(output_dir / INDEX_NAME, "w", encoding="utf-8") as handle:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, handle, indent=2)
    with open(output_dir / "config.json", "w", encoding="utf-8") as handle:
        json.dump(raw_config, handle, indent=2)
    return output_dir
