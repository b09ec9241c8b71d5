"""Command-line arguments of NumPro-FT training, with upstream's flag names (longva/train/train.py).

Parsed by transformers' HfArgumentParser into three dataclasses, as upstream. Our own fields
default to the NumPro-FT recipe (LoRA r=64, alpha=128, dropout 0.05, model_max_length 4096);
transformers' fields keep transformers' defaults and scripts/train.sh passes the recipe.

Flags upstream's train.sh passes that change nothing here are accepted and named in a warning
(UPSTREAM_NO_EFFECT); model-shape flags must agree with the checkpoint's config.json, which
is what the network is built from (MUST_MATCH_CONFIG).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Optional

import transformers

from ..protocol import FRAME_SIZE, MAX_FRAMES, MODEL_MAX_LENGTH
from ..video import BACKENDS


@dataclass
class ModelArguments:
    model_name_or_path: str = field(default="pretrained/LongVA-7B-DPO",
                                    metadata={"help": "LongVA checkpoint folder (LLaVA layout)"})
    version: str = field(default="qwen_1_5", metadata={"help": "conversation template; LongVA uses qwen_1_5"})
    vision_tower: Optional[str] = field(
        default=None,
        metadata={"help": "upstream's CLIP folder, accepted for its command lines: CLIP's weights and config come "
                          "from the LongVA checkpoint, as in evaluation"})
    mm_projector_type: Optional[str] = field(default=None, metadata={"help": "must match config.json (mlp2x_gelu)"})
    mm_vision_select_layer: Optional[int] = field(default=None, metadata={"help": "must match config.json (-2)"})
    mm_vision_select_feature: Optional[str] = field(default=None, metadata={"help": "must match config.json"})
    mm_patch_merge_type: Optional[str] = field(default=None, metadata={"help": "must match config.json (unires)"})
    mm_use_im_start_end: Optional[bool] = field(default=None, metadata={"help": "must match config.json (False)"})
    mm_use_im_patch_token: Optional[bool] = field(default=None, metadata={"help": "must match config.json"})
    attn_implementation: str = field(
        default="sdpa", metadata={"help": "sdpa, eager, or flash_attention_2 (when installed; upstream's choice)"})
    vision_lora: bool = field(
        default=True,
        metadata={"help": "LoRA also on CLIP's self-attention q/k/v, as upstream's name matching does; False: "
                          "LoRA on the language model only"})
    train_vision_lora: bool = field(
        default=False,
        metadata={"help": "train CLIP's LoRA; by default it is saved at identity (B = 0) untrained, as upstream's "
                          "gradient checkpointing left it"})


@dataclass
class DataArguments:
    data_path: str = field(default="data/train_sft.json", metadata={"help": "train_sft.json (SPEC 6)"})
    anet_video_folder: Optional[str] = field(default=None, metadata={"help": "numbered clips of source 'anet'"})
    didemo_video_folder: Optional[str] = field(default=None, metadata={"help": "numbered clips of 'didemo'"})
    internvid_video_folder: Optional[str] = field(default=None, metadata={"help": "numbered clips of 'internvid'"})
    video_folder: Optional[str] = field(default=None, metadata={"help": "clips of samples without a source"})
    videobackend: str = field(default="all", metadata={"help": "'all': every frame of the numbered clip, at most "
                                                               "--max_frames (linspace), as upstream"})
    video_decoder: str = field(default="auto", metadata={"help": f"decoding library: {', '.join(BACKENDS)}"})
    max_frames: int = field(default=MAX_FRAMES, metadata={"help": "frame cap of LongVA's 'all' backend"})
    strict_data: bool = field(default=False,
                              metadata={"help": "stop when the pre-flight scan would skip anything (an invalid "
                                                "conversation, a missing source folder, a missing or unreadable "
                                                "video, a cut answer)"})
    preflight_workers: int = field(default=0, metadata={"help": "processes probing videos (0: up to 8 CPUs)"})
    image_aspect_ratio: Optional[str] = field(
        default=None, metadata={"help": f"no effect (video frames are {FRAME_SIZE}x{FRAME_SIZE})"})
    lazy_preprocess: Optional[bool] = field(default=None, metadata={"help": "no effect (samples are always lazy)"})


@dataclass
class TrainingArguments(transformers.TrainingArguments):
    lora_enable: bool = field(default=True, metadata={"help": "NumPro-FT is a LoRA recipe: must be True"})
    lora_r: int = 64
    lora_alpha: int = 128
    lora_dropout: float = 0.05
    lora_bias: str = field(default="none", metadata={"help": "must stay none: the released layout has no biases"})
    model_max_length: int = field(
        default=MODEL_MAX_LENGTH, metadata={"help": "token cap applied after the visual tokens are spliced in"})
    optim: str = field(default="adamw_torch", metadata={"help": "upstream's optimizer"})
    remove_unused_columns: bool = field(default=False, metadata={"help": "must stay False (video inputs)"})
    unfreeze_mm_vision_tower: bool = field(default=False, metadata={"help": "must stay False (CLIP base frozen)"})
    mm_vision_tower_lr: Optional[float] = field(default=None, metadata={"help": "no effect, as upstream"})
    group_by_modality_length: bool = field(
        default=True,
        metadata={"help": "upstream's sample order: random megabatches of batch x world size x accumulation, each "
                          "sorted by upstream's word-count length; False: transformers' random order"})
    evaluation_strategy: Optional[str] = field(default=None, metadata={"help": "no effect: there is no evaluation"})
    warmup_ratio: Optional[float] = field(
        default=None, metadata={"help": "warmup as a fraction of the steps (transformers 5 takes it as --warmup_steps "
                                        "below 1)"})

    def __post_init__(self):
        if self.warmup_ratio is not None:
            if self.warmup_steps:
                raise ArgumentError("give --warmup_ratio or --warmup_steps, not both")
            if not 0 <= self.warmup_ratio < 1:
                raise ArgumentError(f"--warmup_ratio {self.warmup_ratio}: expected a fraction in [0, 1)")
            self.warmup_steps = self.warmup_ratio
        if not self.use_cpu and not _cuda_available():
            # accelerate recognises several processes on a machine without a GPU (DeepSpeed's
            # CPU accelerator, or plain DDP over gloo) only when told the run is on the CPU.
            self.use_cpu = True
            self.dataloader_pin_memory = False  # nothing to pin for
        # upstream's --gradient_checkpointing is transformers 5's activation_checkpointing
        if self.gradient_checkpointing is not None and self.activation_checkpointing is None:
            self.activation_checkpointing, self.gradient_checkpointing = self.gradient_checkpointing, None
        super().__post_init__()


UPSTREAM_NO_EFFECT = ("image_aspect_ratio", "lazy_preprocess", "mm_vision_tower_lr", "evaluation_strategy")
# flag -> (config.json key, the value LongVA's config implies when the key is absent)
MUST_MATCH_CONFIG = {
    "mm_projector_type": ("mm_projector_type", "mlp2x_gelu"),
    "mm_vision_select_layer": ("mm_vision_select_layer", -2),
    "mm_vision_select_feature": ("mm_vision_select_feature", "patch"),
    "mm_patch_merge_type": ("mm_patch_merge_type", "unires"),
    "mm_use_im_start_end": ("mm_use_im_start_end", False),
    "mm_use_im_patch_token": ("mm_use_im_patch_token", True),
}


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


class ArgumentError(ValueError):
    """Arguments that cannot describe a NumPro-FT run."""


def parse(argv=None) -> tuple[ModelArguments, DataArguments, TrainingArguments]:
    parser = transformers.HfArgumentParser((ModelArguments, DataArguments, TrainingArguments))
    return parser.parse_args_into_dataclasses(args=argv)


def _refusals(model_args: ModelArguments, data_args: DataArguments,
              training_args: TrainingArguments) -> list[tuple[bool, str]]:
    """(refused, why) for each setting a NumPro-FT run cannot have, in the order they are checked."""
    return [
        (model_args.version != "qwen_1_5",
         f"--version {model_args.version}: LongVA trains with the qwen_1_5 template"),
        (not training_args.lora_enable,
         "--lora_enable False: NumPro-FT is a LoRA recipe; full fine-tuning is not supported"),
        (training_args.unfreeze_mm_vision_tower,
         "--unfreeze_mm_vision_tower True: NumPro-FT keeps CLIP's base weights frozen"),
        (training_args.lora_bias != "none",
         f"--lora_bias {training_args.lora_bias}: the released NumPro-FT layout (and its loader) holds LoRA and "
         "the projector only"),
        (model_args.train_vision_lora and not model_args.vision_lora,
         "--train_vision_lora True needs CLIP's LoRA (--vision_lora True)"),
        (training_args.remove_unused_columns, "--remove_unused_columns True would drop the video inputs"),
        (data_args.videobackend != "all",
         f"--videobackend {data_args.videobackend}: only 'all' (every frame of the numbered clip, as upstream) "
         "is supported"),
        (data_args.video_decoder not in BACKENDS,
         f"--video_decoder {data_args.video_decoder}: choose one of {', '.join(BACKENDS)}"),
    ]


def check(model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments,
          raw_config: dict) -> list[str]:
    """Refuse what cannot be a NumPro-FT run; return warnings for upstream flags without effect."""
    for refused, why in _refusals(model_args, data_args, training_args):
        if refused:
            raise ArgumentError(why)
    for flag, (key, implied) in MUST_MATCH_CONFIG.items():
        given, actual = getattr(model_args, flag), raw_config.get(key, implied)
        if given is not None and given != actual:
            raise ArgumentError(f"--{flag} {given}: the checkpoint's config.json says {actual!r}, and the network "
                                "is built from config.json")
    warnings = []
    for name in UPSTREAM_NO_EFFECT:
        value = next(getattr(a, name) for a in (data_args, training_args) if name in _names(a))
        if value is not None:
            warnings.append(f"--{name} {value} is accepted for upstream's command lines and has no effect here")
    if model_args.vision_tower and not os.path.isdir(model_args.vision_tower):
        warnings.append(f"--vision_tower {model_args.vision_tower} does not exist; not needed: CLIP's weights come "
                        "from the LongVA checkpoint")
    return warnings


def _names(obj) -> set[str]:
    return {f.name for f in fields(obj)}
