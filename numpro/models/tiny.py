"""`python -m numpro tiny`: write a randomly initialised few-MB model in a real checkpoint's layout.

Tests, the demo and the benchmarks run the real loading and inference code on these; nothing
is downloaded. Their answers are noise: the weights are random.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

TINY_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "llava_onevision", "longva")  # the families with a tiny builder


def build(family: str, output: str | Path, lora: str | Path | None = None, seed: int = 0) -> Path:
    if family not in TINY_FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {', '.join(TINY_FAMILIES)}")
    if family == "qwen2_5_vl":
        from .qwen2_vl import build_tiny

        return build_tiny(output, seed=seed, variant="qwen2_5_vl")
    module = importlib.import_module(f"numpro.models.{family}")
    if family == "longva":
        return module.build_tiny(output, lora_dir=lora, seed=seed)
    if lora is not None:
        raise ValueError("--lora is only for --family longva (the NumPro-FT adapter layout)")
    return module.build_tiny(output, seed=seed)


def register(subparsers, name: str, help_text: str) -> None:
    parser = subparsers.add_parser(
        name, help=help_text, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--family", required=True, choices=TINY_FAMILIES,
                        help="qwen2_vl / qwen2_5_vl: Hugging Face layout of Qwen2(.5)-VL-7B-Instruct; llava_onevision: "
                             "llava-hf layout of LLaVA-OneVision/LLaVA-Video; longva: LLaVA layout of LongVA-7B-DPO")
    parser.add_argument("--output", required=True, help="folder to write the checkpoint to")
    parser.add_argument("--lora", default=None,
                        help="(longva) also write a tiny adapter in the released NumPro-FT layout to this folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=_run)


def _run(args) -> int:
    path = build(args.family, args.output, args.lora, args.seed)
    print(f"tiny {args.family} model written to {path}" + (f", adapter to {args.lora}" if args.lora else ""))
    return 0
