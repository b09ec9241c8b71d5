"""`python -m numpro COMMAND ...`: one entry point, one sub-command group per module.

Each group lives in its own module, which provides `register(subparsers, name, help)`: it adds its
parser (and any sub-commands) and sets `func`, a handler taking the parsed arguments and
returning the exit status. A new group is one line in GROUPS. Only the module of the group being
run is imported, so a group's heavy dependencies never slow down the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

# name -> (module providing register(), one-line help)
GROUPS: dict[str, tuple[str, str]] = {
    "data": ("numpro.datasets.cli", "annotation tools: build test files, convert VTimeLLM data, check data folders"),
    "demo": ("numpro.demo", "run NumPro end to end on a synthetic video with a tiny local model (nothing downloaded)"),
    "viz": ("numpro.viz", "pictures: a manga page of numbered frames, prediction-vs-ground-truth timelines"),
    "train": ("numpro.training.cli", "NumPro-FT training (LoRA on LongVA) in this process; several GPUs: scripts/train.sh"),
    "tiny": ("numpro.models.tiny", "write a tiny random model in a real checkpoint's layout (tests, demo, benchmarks)"),
    "design-study": ("numpro.design_study", "CLIP study of number styles: Number vs Caption Accuracy per font size, colour, position (Fig. 5)"),
    "results": ("numpro.results", "the README's paper-vs-ours table from metrics files and their run records"),
    "sweep": ("numpro.sweep", "run an eval script over a grid of number styles and tabulate them beside the paper (Tab. 3)"),
}


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the `chosen` group's module is imported and its arguments set up."""
    parser = argparse.ArgumentParser(prog="python -m numpro", description="NumPro: number the frames, ground the moments.")
    groups = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in GROUPS.items():
        if name == chosen:
            importlib.import_module(module).register(groups, name, help_text)
        else:
            groups.add_parser(name, help=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = argv[0] if argv and argv[0] in GROUPS else None
    args = build_parser(chosen).parse_args(argv)
    return int(args.func(args) or 0)
