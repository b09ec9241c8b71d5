"""Qwen2-VL and Qwen2.5-VL (training-free NumPro) through transformers' own classes.

Numbered frames are handed over in memory: qwen-vl-utils' frame-list path applies the same
per-frame pixel bounds upstream used (128*28*28 .. 768*28*28), then the checkpoint's processor
builds the batch (left padding). Multimodal RoPE uses the original rule of the transformers
4.4x code the paper ran: text after a video continues at max(vision positions) + 1 (SPEC 5).
"""

from __future__ import annotations

import itertools
import types
from pathlib import Path
from typing import Sequence

import numpy as np

from .base import PreparedBatch, Preprocessor, VideoLanguageModel, read_model_type
from .hf import default_attention, greedy_generate, pretrained, resolve_dtype

# qwen-vl-utils' video bounds (SPEC 5); frames are resized by its smart_resize rule.
MIN_PIXELS = 128 * 28 * 28
MAX_PIXELS = 768 * 28 * 28

# Qwen2-VL-Instruct's chat template (chat_template.json of the checkpoint).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _model_class(model_type: str):
    import transformers

    if model_type == "qwen2_5_vl":
        return transformers.Qwen2_5_VLForConditionalGeneration
    return transformers.Qwen2VLForConditionalGeneration


class Qwen2VLPreprocessor(Preprocessor):
    def __init__(self, processor, min_pixels: int = MIN_PIXELS, max_pixels: int = MAX_PIXELS):
        self.processor = processor
        self.processor.tokenizer.padding_side = "left"
        self.min_pixels = min_pixels
        self.max_pixels = max_pixels

    def messages(self, text: str) -> list[dict]:
        return [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}]

    def render(self, text: str) -> str:
        """The exact prompt string the model receives (before the video tokens are expanded)."""
        return self.processor.apply_chat_template(self.messages(text), tokenize=False, add_generation_prompt=True)

    def frames_tensor(self, frames: np.ndarray, fps: float):
        """qwen-vl-utils' treatment of a frame list: size bounds, even frame count, float tensor."""
        from PIL import Image
        from qwen_vl_utils import fetch_video

        element = {
            "type": "video",
            "video": [Image.fromarray(frame) for frame in frames],
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
            "sample_fps": fps,
        }
        return fetch_video(element)

    def __call__(self, videos: Sequence[np.ndarray], texts: Sequence[str], fps: float) -> PreparedBatch:
        prompts = [self.render(text) for text in texts]
        tensors = [self.frames_tensor(frames, fps) for frames in videos]
        # frames arrive already sampled at `fps`: say so, so Qwen2.5-VL's absolute-time positions
        # (second_per_grid_ts) are right; Qwen2-VL ignores it
        metadata = [{"total_num_frames": len(t), "fps": fps, "frames_indices": list(range(len(t)))} for t in tensors]
        inputs = self.processor(
            text=prompts, videos=tensors, video_metadata=metadata, padding=True, return_tensors="pt",
            do_resize=False, do_sample_frames=False,
            cap_pixels_per_frame=False,  # qwen-vl-utils already bounded each frame above
        )
        return PreparedBatch(dict(inputs), prompts)


def original_rope_index(
    self,
    input_ids,
    mm_token_type_ids,
    image_grid_thw=None,
    video_grid_thw=None,
    attention_mask=None,
    second_per_grid_ts=None,
    **kwargs,
):
    """Multimodal RoPE positions with the original rule: after an image or video the text
    continues at max(its positions) + 1 (transformers 5.x advances by the spatial grid only)."""
    import torch

    merge = self.config.vision_config.spatial_merge_size
    tokens_per_second = getattr(self.config.vision_config, "tokens_per_second", None)
    position_ids = torch.zeros(3, *input_ids.shape, dtype=input_ids.dtype, device=input_ids.device)
    grids = {1: iter(image_grid_thw if image_grid_thw is not None else []),
             2: iter(video_grid_thw if video_grid_thw is not None else [])}
    seconds = iter(second_per_grid_ts if second_per_grid_ts is not None else [])
    deltas = []
    for row, ids in enumerate(input_ids):
        types_ = mm_token_type_ids[row]
        if attention_mask is not None:
            keep = attention_mask[row].bool()
            ids, types_ = ids[keep], types_[keep]
        parts, position = [], 0
        for modality, group in itertools.groupby(types_.tolist()):
            length = len(list(group))
            if modality == 0:
                parts.append(torch.arange(length, device=ids.device).view(1, -1).expand(3, -1) + position)
                position += length
                continue
            grid = next(grids[modality])
            interval = 1.0
            if modality == 2 and tokens_per_second is not None and second_per_grid_ts is not None:
                interval = tokens_per_second * float(next(seconds))  # Qwen2.5-VL: absolute time
            vision = self.get_vision_position_ids(position, grid, 1, merge, interval, device=ids.device)
            parts.append(vision)
            position = int(vision.max()) + 1
        positions = torch.cat(parts, dim=1)
        if attention_mask is not None:
            position_ids[:, row, attention_mask[row].bool()] = positions
        else:
            position_ids[:, row] = positions
        deltas.append(int(positions.max()) + 1 - len(ids))
    return position_ids, torch.tensor(deltas, device=input_ids.device).unsqueeze(1)


def use_original_rope(model) -> None:
    """Install the original M-RoPE rule on a loaded Qwen2-VL / Qwen2.5-VL model."""
    inner = model.model
    inner.get_rope_index = types.MethodType(original_rope_index, inner)


class Qwen2VLModel(VideoLanguageModel):
    family = "qwen2_vl"
    hd_prompt_style = "qwen2_vl"

    def __init__(self, model, processor):
        self.model = model
        self.preprocessor = Qwen2VLPreprocessor(processor)
        self.tokenizer = processor.tokenizer

    @property
    def device(self):
        return self.model.device

    def generate(self, batch: PreparedBatch, max_new_tokens: int) -> list[str]:
        return greedy_generate(self.model, self.tokenizer, batch.tensors, max_new_tokens)


def load(
    model_path: str | Path,
    device: str = "cpu",
    dtype=None,
    random_init: bool = False,
    attn_implementation: str | None = None,
    device_map: str | None = None,
    processor_path: str | Path | None = None,
) -> Qwen2VLModel:
    """Load a Qwen2-VL / Qwen2.5-VL checkpoint (folder or hub id).

    `random_init` builds the model from `model_path`'s config.json without weights (GPU
    throughput measurements); its processor then comes from `processor_path`.
    `device_map="auto"` spreads a model larger than one GPU over all visible GPUs.
    """
    import torch
    import transformers

    model_type = read_model_type(model_path) or "qwen2_vl"
    cls = _model_class(model_type)
    dtype = resolve_dtype(device, dtype)
    attn_implementation = attn_implementation or default_attention(device)
    if random_init:
        if processor_path is None and not (Path(model_path) / "tokenizer_config.json").is_file():
            raise ValueError(f"--random_init: {model_path} has no tokenizer; pass --processor_path "
                             "(e.g. a tiny model written by `python -m numpro tiny --family qwen2_vl`)")
        processor = transformers.AutoProcessor.from_pretrained(processor_path or model_path)
        config = transformers.AutoConfig.from_pretrained(model_path)
        config._attn_implementation = attn_implementation
        # the vision placeholders must be the ids this tokenizer gives them
        tokens = {"image_token_id": "<|image_pad|>", "video_token_id": "<|video_pad|>",
                  "vision_start_token_id": "<|vision_start|>", "vision_end_token_id": "<|vision_end|>"}
        for attribute, token in tokens.items():
            setattr(config, attribute, processor.tokenizer.convert_tokens_to_ids(token))
        with torch.device(device):
            model = cls._from_config(config, dtype=dtype)
    else:
        model = pretrained(cls, model_path, device, dtype, attn_implementation, device_map)
        processor = transformers.AutoProcessor.from_pretrained(model_path)
    model.eval()
    use_original_rope(model)
    return Qwen2VLModel(model, processor)


def build_tiny(output_dir: str | Path, seed: int = 0, variant: str = "qwen2_vl") -> Path:
    """A randomly initialised few-MB Qwen2-VL (or Qwen2.5-VL with variant="qwen2_5_vl") in the
    Hugging Face layout of the real checkpoint."""
    import torch
    import transformers

    from .tokenizer import QWEN2_VL_SPECIAL_TOKENS, build_qwen2_tokenizer

    output_dir = Path(output_dir)
    tokenizer = build_qwen2_tokenizer(QWEN2_VL_SPECIAL_TOKENS)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ["<|endoftext|>", "<|im_end|>", *QWEN2_VL_SPECIAL_TOKENS]}
    text_config = {
        "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6, "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]},
        "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"],
    }
    vision_common = {"patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "in_channels": 3}
    if variant == "qwen2_5_vl":
        config_cls, model_cls, processor_cls = (transformers.Qwen2_5_VLConfig, transformers.Qwen2_5_VLForConditionalGeneration,
                                                transformers.Qwen2_5_VLProcessor)
        vision_config = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 32,
                         "fullatt_block_indexes": [1], "window_size": 112, "tokens_per_second": 2, **vision_common}
    else:
        config_cls, model_cls, processor_cls = (transformers.Qwen2VLConfig, transformers.Qwen2VLForConditionalGeneration,
                                                transformers.Qwen2VLProcessor)
        vision_config = {"depth": 1, "embed_dim": 32, "hidden_size": 32, "num_heads": 2, "mlp_ratio": 2, **vision_common}
    config = config_cls(
        text_config=text_config, vision_config=vision_config,
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = model_cls(config)
    # the released checkpoints' generation_config: top_k=1 sampling, i.e. greedy with a repetition penalty
    model.generation_config = transformers.GenerationConfig(
        bos_token_id=ids["<|endoftext|>"], pad_token_id=ids["<|endoftext|>"], do_sample=True,
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]], repetition_penalty=1.05,
        temperature=0.1, top_k=1, top_p=0.001,
    )
    model.save_pretrained(output_dir)
    processor = processor_cls(
        image_processor=transformers.Qwen2VLImageProcessor(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS),
        video_processor=transformers.Qwen2VLVideoProcessor(),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(output_dir)
    return output_dir
