"""Qwen2-VL and Qwen2.5-VL (training-free NumPro) through transformers' own classes.

Numbered frames are handed over in memory, then the checkpoint's processor builds the batch
(left padding). Which frames, and at what size, follows one of two rules (`frame_rule`):
- "upstream" (default): what the paper's runs fed the model. Upstream wrote the K numbered frames
  to a file and qwen-vl-utils 0.0.8 read it back at the file's own rate: an even count
  n = round_to_even(min(max(K, 4), floor_to_even(min(768, K)))) picked by
  linspace(0, K-1, n).round() (odd K loses one middle frame), each frame bounded by
  max(min(768*28*28, 24576*28*28*2/n), int(1.05*128*28*28)) pixels (smaller frames from n = 342).
  `select_frames` applies it; the preprocessor then feeds those frames as they are.
- "plain": all K frames through qwen-vl-utils' frame-list path (per-frame bounds
  128*28*28 .. 768*28*28; an odd count padded by repeating the last frame).
Multimodal RoPE uses the original rule of the transformers 4.4x code the paper ran: text after a
video continues at max(vision positions) + 1 (SPEC 5).
"""

from __future__ import annotations

import itertools
import math
import types
from pathlib import Path
from typing import Sequence

import numpy as np

from .base import PreparedBatch, Preprocessor, VideoLanguageModel, read_model_type
from .hf import default_attention, greedy_generate, pretrained, resolve_dtype

# qwen-vl-utils' video bounds (SPEC 5); frames are resized by its smart_resize rule.
MIN_PIXELS = 128 * 28 * 28
MAX_PIXELS = 768 * 28 * 28

FRAME_RULES = ("upstream", "plain")
# qwen-vl-utils 0.0.8's video constants (the paper-era stack)
SIZE_FACTOR = 28  # patch 14 x spatial merge 2
FRAME_FACTOR = 2  # temporal patch
MIN_FRAMES = 4
MAX_FRAMES = 768
TOTAL_PIXELS = 24576 * 28 * 28
MAX_ASPECT_RATIO = 200


def _round_to(number: float, factor: int) -> int:
    return round(number / factor) * factor  # Python's round: half to even


def _floor_to(number: float, factor: int) -> int:
    return math.floor(number / factor) * factor


def _ceil_to(number: float, factor: int) -> int:
    return math.ceil(number / factor) * factor


def upstream_frame_count(total: int) -> int:
    """How many of `total` numbered frames qwen-vl-utils 0.0.8 kept when it read the file back
    at the file's own rate (so total / rate * fps = total): an even count, at most 768.

    0.0.8 refuses a one-frame file (it asks for 2 <= n <= total); we keep that frame (the
    processor then repeats it to fill the temporal patch), so a run does not stop there.
    """
    if total < FRAME_FACTOR:
        return total
    low = _ceil_to(MIN_FRAMES, FRAME_FACTOR)
    high = _floor_to(min(MAX_FRAMES, total), FRAME_FACTOR)
    return _round_to(min(max(total, low), high), FRAME_FACTOR)


def upstream_frame_indices(total: int) -> list[int]:
    """The frames 0.0.8 kept: linspace(0, total - 1, n) in float32, rounded half to even."""
    import torch

    count = upstream_frame_count(total)
    if count == total:
        return list(range(total))
    return torch.linspace(0, total - 1, count, dtype=torch.float32).round().long().tolist()


def upstream_max_pixels(count: int) -> float:
    """0.0.8's per-frame pixel cap for a video of `count` frames (no explicit max_pixels given)."""
    return max(min(MAX_PIXELS, TOTAL_PIXELS / count * FRAME_FACTOR), int(MIN_PIXELS * 1.05))


def smart_resize(height: int, width: int, min_pixels: float, max_pixels: float,
                 factor: int = SIZE_FACTOR) -> tuple[int, int]:
    """qwen-vl-utils' size rule: sides multiples of `factor`, aspect ratio kept as well as it can;
    scaled down (floor) when over max_pixels, else up (ceil) when under min_pixels."""
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(f"frame of {width}x{height}: aspect ratio over {MAX_ASPECT_RATIO}")
    new_h = max(factor, _round_to(height, factor))
    new_w = max(factor, _round_to(width, factor))
    if new_h * new_w > max_pixels:
        scale = math.sqrt(height * width / max_pixels)
        new_h, new_w = _floor_to(height / scale, factor), _floor_to(width / scale, factor)
    elif new_h * new_w < min_pixels:
        scale = math.sqrt(min_pixels / (height * width))
        new_h, new_w = _ceil_to(height * scale, factor), _ceil_to(width * scale, factor)
    return new_h, new_w


def upstream_frame_size(height: int, width: int, count: int) -> tuple[int, int]:
    """(height, width) 0.0.8 gave each frame of a `count`-frame video: 336x336 stays up to
    341 frames and becomes 308x308 from 342 on."""
    return smart_resize(height, width, MIN_PIXELS, upstream_max_pixels(count))


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, height, width, 3) uint8 as 0.0.8 resized decoded video frames:
    torchvision's bicubic resize with antialiasing on the uint8 frames (unchanged at equal size)."""
    if frames.shape[1:3] == (height, width):
        return frames
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as F

    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    video = F.resize(video, [height, width], interpolation=InterpolationMode.BICUBIC, antialias=True)
    return np.ascontiguousarray(video.permute(0, 2, 3, 1).numpy())

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
    """Numbered frames + texts -> the processor's batch.

    With frame_rule="upstream" call `select_frames` first (the runner does): it picks and sizes
    the frames; `__call__` then feeds what it is given as it is, count and pixels. With "plain"
    `select_frames` changes nothing and `__call__` applies qwen-vl-utils' frame-list path.
    """

    def __init__(self, processor, min_pixels: int = MIN_PIXELS, max_pixels: int = MAX_PIXELS,
                 frame_rule: str = "upstream"):
        if frame_rule not in FRAME_RULES:
            raise ValueError(f"frame_rule must be one of {', '.join(FRAME_RULES)}, not {frame_rule!r}")
        self.processor = processor
        self.processor.tokenizer.padding_side = "left"
        self.min_pixels = min_pixels
        self.max_pixels = max_pixels
        self.frame_rule = frame_rule

    def select_frames(self, pixels: np.ndarray, numbers: list[int]) -> tuple[np.ndarray, list[int]]:
        """Exactly the frames (and their stamped numbers) the model gets, already at their final size.

        "upstream": qwen-vl-utils 0.0.8's count rule and pixel budget (module docstring); the
        frames come back with sides multiples of 28, which `__call__` does not change.
        "plain": all frames, unchanged.
        """
        numbers = list(numbers)
        if len(pixels) != len(numbers):
            raise ValueError(f"{len(pixels)} frames but {len(numbers)} numbers")
        if self.frame_rule == "plain" or len(pixels) == 0:
            return pixels, numbers
        keep = upstream_frame_indices(len(pixels))
        if len(keep) != len(pixels):
            pixels, numbers = pixels[keep], [numbers[i] for i in keep]
        height, width = upstream_frame_size(pixels.shape[1], pixels.shape[2], len(pixels))
        return resize_frames(pixels, height, width), numbers
    def messages(self, text: str) -> list[dict]:
        return [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}]

    def render(self, text: str) -> str:
        """The exact prompt string the model receives (before the video tokens are expanded)."""
        return self.processor.apply_chat_template(self.messages(text), tokenize=False, add_generation_prompt=True)

    def frames_tensor(self, frames: np.ndarray, fps: float):
        """(T, 3, H, W) float tensor of one video.

        "upstream": the frames as given (`select_frames` has sized them); only frames whose sides
        are not multiples of 28 get 0.0.8's size rule for their count. "plain": qwen-vl-utils'
        treatment of a frame list: size bounds, even frame count.
        """
        if self.frame_rule == "upstream":
            import torch

            height, width = frames.shape[1:3]
            if height % SIZE_FACTOR or width % SIZE_FACTOR:
                frames = resize_frames(frames, *upstream_frame_size(height, width, len(frames)))
            return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
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
            cap_pixels_per_frame=False,  # each frame's size is final here (either rule)
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

    def __init__(self, model, processor, frame_rule: str = "upstream"):
        self.model = model
        self.preprocessor = Qwen2VLPreprocessor(processor, frame_rule=frame_rule)
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
    frame_rule: str = "upstream",
) -> Qwen2VLModel:
    """Load a Qwen2-VL / Qwen2.5-VL checkpoint (folder or hub id).

    `random_init` builds the model from `model_path`'s config.json without weights (GPU
    throughput measurements); its processor then comes from `processor_path`.
    `device_map="auto"` spreads a model larger than one GPU over all visible GPUs.
    `frame_rule`: "upstream" (qwen-vl-utils 0.0.8's frame count and size, the paper's runs) or
    "plain" (all frames); see `Qwen2VLPreprocessor`.
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
    return Qwen2VLModel(model, processor, frame_rule)


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
