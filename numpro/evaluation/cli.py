"""Command lines of the eval/ scripts: upstream's flag names and defaults, plus ours (DESIGN 2).

Each script in eval/ is one ScriptSpec; they differ only in the task, the model family and
upstream's names for the annotation and video flags.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from .. import prompts
from ..datasets.records import DataError
from ..stamp import POSITIONS, StampStyle
from ..video import BACKENDS
from .runner import RunOptions, run
from .tasks import HighlightDetection, MomentRetrieval


@dataclass(frozen=True)
class ScriptSpec:
    task: str  # "mr" or "hd"
    description: str
    model_path: str
    annotations: str
    videos: str
    annotation_flags: tuple[str, ...]  # upstream's names first; --annotations is always added
    video_flags: tuple[str, ...]
    fps: float
    max_new_tokens: int
    family: str | None = None  # None: from the checkpoint's config
    max_frames: int | None = None
    save_path: str | None = None  # MR: upstream --save_path default
    output_name: str | None = None  # HD: upstream --output_dir/--output_name default


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the script's docstring as written and shows every default."""


def build_parser(spec: ScriptSpec) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=spec.description, formatter_class=_HelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument(*spec.annotation_flags, "--annotations", dest="annotations", default=spec.annotations,
                      help="test annotations (NumPro JSON list for moment retrieval, QVHighlights JSONL for highlights)")
    data.add_argument(*spec.video_flags, "--videos", dest="videos", default=spec.videos, help="folder of the videos")
    data.add_argument("--limit", type=int, default=None, help="evaluate only the first N queries")

    out = parser.add_argument_group("output")
    if spec.task == "hd":
        out.add_argument("--output_dir", default="results", help="folder of the predictions")
        out.add_argument("--output_name", default=spec.output_name, help="predictions file name (.jsonl added)")
        out.add_argument("--save_path", default=None, help="predictions file (overrides --output_dir/--output_name)")
    else:
        out.add_argument("--save_path", default=spec.save_path, help="predictions file (JSON Lines)")
    out.add_argument("--dump_frames", type=Path, default=None,
                     help="also write the exact numbered frames fed to the model as PNG to DIR/<video>/")

    model = parser.add_argument_group("model")
    model.add_argument("--model_path", default=spec.model_path, help="checkpoint folder or hub id")
    if spec.family == "longva":
        model.add_argument("--lora_path", default=None, help="NumPro-FT LoRA checkpoint to merge (released layout)")
    model.add_argument("--device", default=None, help="cuda:N or cpu (default: this rank's GPU, else cpu)")
    if spec.family != "longva":
        model.add_argument("--device_map", default=None, help="'auto' spreads a model too large for one GPU")
    model.add_argument("--dtype", default=None, choices=["bfloat16", "float16", "float32"],
                       help="default on GPU: float16 for LongVA (as upstream), bfloat16 otherwise; float32 on CPU")
    model.add_argument("--attn_implementation", default=None, help="default: flash_attention_2 if installed, else sdpa")
    model.add_argument("--random_init", action="store_true",
                       help="build the model from --model_path's config without weights (speed measurements only)")
    model.add_argument("--processor_path", default=None, help="tokenizer/processor folder for --random_init")

    protocol = parser.add_argument_group("protocol")
    if spec.task == "mr":
        protocol.add_argument("--input_format", default=prompts.MR_QUESTION, help="question template ({} = query)")
        protocol.add_argument("--instruction", default=prompts.INSTRUCTION, help="prepended to the question, no space")
    else:
        protocol.add_argument("--input_format", default=None,
                              help="full prompt template ({} = query); default: the model family's upstream prompt")
    protocol.add_argument("--no_numbers", action="store_true",
                          help="baseline: same frames without stamped numbers and without the instruction")
    protocol.add_argument("--fps", type=float, default=spec.fps, help="frames sampled per second")
    protocol.add_argument("--size", type=int, default=336, help="frames are resized to SIZE x SIZE")
    protocol.add_argument("--max_frames", type=int, default=spec.max_frames,
                          help="keep at most N frames (linspace), each with its own number")
    protocol.add_argument("--position", default="bottom_right", choices=POSITIONS)
    protocol.add_argument("--font_size", type=int, default=40)
    protocol.add_argument("--color", default="red")
    protocol.add_argument("--font", default=None, help="TrueType font (default: DejaVu Sans Bold from matplotlib)")
    protocol.add_argument("--max_new_tokens", type=int, default=spec.max_new_tokens)

    speed = parser.add_argument_group("speed")
    speed.add_argument("--batch_size", type=int, default=1, help="queries per generate() call (left padding)")
    speed.add_argument("--workers", type=int, default=2, help="DataLoader processes decoding the next batches")
    speed.add_argument("--backend", default="auto", choices=BACKENDS, help="video decoder")
    return parser


def _save_path(spec: ScriptSpec, args) -> Path:
    if args.save_path:
        return Path(args.save_path)
    name = args.output_name if Path(args.output_name).suffix else args.output_name + ".jsonl"
    return Path(args.output_dir) / name


def _task(spec: ScriptSpec, args):
    if spec.task == "mr":
        return MomentRetrieval(args.input_format, None if args.no_numbers else args.instruction)
    return HighlightDetection(args.input_format, numbers=not args.no_numbers)


def _model_loader(spec: ScriptSpec, args):
    def load(device: str):
        import torch

        from ..models.base import load_model

        kwargs = dict(device=args.device or device, random_init=args.random_init,
                      attn_implementation=args.attn_implementation)
        if args.dtype:
            kwargs["dtype"] = getattr(torch, args.dtype)
        if spec.family == "longva":
            kwargs.update(lora_path=args.lora_path, max_frames=args.max_frames or 240,
                          tokenizer_path=args.processor_path)
        else:
            kwargs.update(device_map=args.device_map, processor_path=args.processor_path)
        return load_model(args.model_path, spec.family, **kwargs)

    return load


def main(spec: ScriptSpec, argv=None) -> int:
    args = build_parser(spec).parse_args(argv)
    if args.batch_size < 1:
        raise SystemExit("--batch_size must be at least 1")
    options = RunOptions(
        annotations=Path(args.annotations),
        videos=Path(args.videos),
        save_path=_save_path(spec, args),
        fps=args.fps,
        size=args.size,
        max_frames=args.max_frames,
        numbers=not args.no_numbers,
        style=StampStyle(args.font_size, args.color, args.position, args.font),
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        limit=args.limit,
        workers=args.workers,
        backend=args.backend,
        dump_frames=args.dump_frames,
    )
    for path, what in [(options.annotations, "annotation file"), (options.videos, "video folder")]:
        if not path.exists():
            raise SystemExit(f"{what} not found: {path} (see data/README.md, or pass --{'annotations' if what.startswith('a') else 'videos'})")
    try:
        run(_task(spec, args), options, _model_loader(spec, args), device=args.device)
    except DataError as err:  # a malformed annotation file: say where, no traceback
        raise SystemExit(f"error: {err}") from None
    return 0
