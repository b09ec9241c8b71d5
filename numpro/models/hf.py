"""Shared pieces of the transformers-native families (Qwen2-VL, Qwen2.5-VL, LLaVA-OneVision)."""

from __future__ import annotations

import importlib.util

_PIXEL_KEYS = ("pixel_values", "pixel_values_videos")


def resolve_dtype(device: str, dtype=None):
    """bf16 on a GPU, fp32 on the CPU, unless a dtype is given."""
    import torch

    if dtype is not None:
        return dtype
    return torch.bfloat16 if str(device).startswith("cuda") else torch.float32


def default_attention(device: str) -> str:
    """flash-attention-2 when installed and on a GPU, else PyTorch's sdpa."""
    if str(device).startswith("cuda") and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def pretrained(cls, model_path, device: str, dtype, attn_implementation: str | None, device_map: str | None):
    """`cls.from_pretrained` on one device, or spread over all GPUs with device_map="auto"."""
    kwargs = {"dtype": dtype, "attn_implementation": attn_implementation or default_attention(device)}
    if device_map:
        kwargs["device_map"] = device_map
    model = cls.from_pretrained(model_path, **kwargs)
    return model if device_map else model.to(device)


def greedy_generate(model, tokenizer, tensors: dict, max_new_tokens: int) -> list[str]:
    """Greedy answers for one processor batch, prompt and special tokens removed.

    The checkpoint's generation_config still applies its repetition_penalty, as upstream's calls
    (top_k=1 sampling for Qwen2-VL) did; sampling knobs are cleared so nothing samples.
    """
    import torch

    inputs = {k: v.to(model.device) if hasattr(v, "to") else v for k, v in tensors.items()}
    for key in _PIXEL_KEYS:
        if key in inputs:
            inputs[key] = inputs[key].to(model.dtype)
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                             temperature=None, top_p=None, top_k=None)
    answers = out[:, inputs["input_ids"].shape[1] :]
    return tokenizer.batch_decode(answers, skip_special_tokens=True, clean_up_tokenization_spaces=False)
