"""A randomly initialised few-MB LongVA in the on-disk layout of lmms-lab/LongVA-7B-DPO.

Same files and key names as the real checkpoint: config.json with its keys (model_type
"llava_qwen", architectures ["LlavaQwenForCausalLM"]), LLaVA-named safetensors shards with
model.safetensors.index.json, generation_config.json (repetition_penalty 1.05), and a real
Qwen2 tokenizer (small vocabulary). The embedding matrix has more rows than the tokenizer has
tokens, as the real one (152064 vs 151646), so loading exercises the cut.

The real config names the hub's CLIP (openai/clip-vit-large-patch14-336); the tiny one names a
folder beside the weights holding a small CLIP config (image 336, patch 14: still 576 patches
and 144 pooled tokens per frame) and CLIP's preprocessor_config.json.
With `lora_dir`, a NumPro-FT adapter in the released layout is written too.
"""

from __future__ import annotations

import json
from pathlib import Path

TINY_VISION_DIR = "clip-vit-tiny-patch14-336"

# openai/clip-vit-large-patch14-336's preprocessor_config.json (the tiny tower keeps it)
CLIP_PREPROCESSOR_CONFIG = {
    "crop_size": 336,
    "do_center_crop": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "size": 336,
}


def tiny_config(bos_id: int, eos_id: int, vocab_rows: int, vision_tower: str = TINY_VISION_DIR) -> dict:
    """LongVA-7B-DPO's config.json keys (configs/longva_7b_dpo/config.json) with tiny sizes."""
    return {
        "architectures": ["LlavaQwenForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "hidden_act": "silu",
        "hidden_size": 32,
        "image_aspect_ratio": "anyres",
        "image_crop_resolution": None,
        "image_grid_pinpoints": [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]],
        "image_split_resolution": None,
        "initializer_range": 0.02,
        "intermediate_size": 64,
        "max_position_embeddings": 224000,
        "max_window_layers": 2,
        "mm_hidden_size": 32,
        "mm_patch_merge_type": "unires",
        "mm_projector_lr": None,
        "mm_projector_type": "mlp2x_gelu",
        "mm_resampler_type": None,
        "mm_spatial_pool_mode": "average",
        "mm_spatial_pool_stride": 2,
        "mm_tunable_parts": "mm_vision_tower,mm_mlp_adapter,mm_language_model",
        "mm_use_im_patch_token": False,
        "mm_use_im_start_end": False,
        "mm_vision_select_feature": "patch",
        "mm_vision_select_layer": -2,
        "mm_vision_tower": vision_tower,
        "mm_vision_tower_lr": 2e-06,
        "model_type": "llava_qwen",
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000000.0,
        "sliding_window": 131072,
        "tie_word_embeddings": False,
        "tokenizer_model_max_length": 32768,
        "tokenizer_padding_side": "right",
        "torch_dtype": "float32",
        "use_cache": True,
        "use_mm_proj": True,
        "use_sliding_window": False,
        "vocab_size": vocab_rows,
    }


def tiny_vision_config():
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=336,
        patch_size=14, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=16,
    )


def generation_config(bos_id: int, pad_id: int, eos_ids: list[int]) -> dict:
    """LongVA-7B-DPO's generation_config.json (Qwen2-7B-Instruct's), with the tokenizer's ids."""
    return {
        "bos_token_id": bos_id,
        "do_sample": True,
        "eos_token_id": eos_ids,
        "pad_token_id": pad_id,
        "repetition_penalty": 1.05,
        "temperature": 0.7,
        "top_k": 20,
        "top_p": 0.8,
    }


def _write_json(path: Path, data: dict) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)


def build_tiny(output_dir: str | Path, lora_dir: str | Path | None = None, seed: int = 0) -> Path:
    """Write the tiny LongVA to `output_dir` (and a released-layout adapter to `lora_dir`)."""
    import torch

    from .longva_checkpoint import build_network, language_config, save_llava_checkpoint
    from .longva_lora import save_released_layout
    from .tokenizer import build_qwen2_tokenizer

    output_dir = Path(output_dir)
    tokenizer = build_qwen2_tokenizer()
    tokenizer.eos_token = "<|im_end|>"  # Qwen2-Instruct's tokenizer_config
    tokenizer.pad_token = "<|endoftext|>"
    endoftext, im_end = tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_end|>"])
    vocab_rows = -(-len(tokenizer) // 64) * 64 + 64  # more rows than tokens, like the real 152064
    raw = tiny_config(endoftext, im_end, vocab_rows)

    vision = tiny_vision_config()
    torch.manual_seed(seed)
    network = build_network(language_config(raw), vision, vocab_rows)
    save_llava_checkpoint(network, raw, output_dir)
    vision.save_pretrained(output_dir / TINY_VISION_DIR)
    _write_json(output_dir / TINY_VISION_DIR / "preprocessor_config.json", CLIP_PREPROCESSOR_CONFIG)
    _write_json(output_dir / "generation_config.json", generation_config(endoftext, endoftext, [im_end, endoftext]))
    tokenizer.save_pretrained(output_dir)
    if lora_dir is not None:
        save_released_layout(network, lora_dir, raw, rank=4, alpha=8, seed=seed + 1)
    return output_dir
