"""`python -m numpro train FLAGS...`: NumPro-FT training in this process (same flags as
`python -m numpro.training`, upstream's names; `--help` lists them all).

For several GPUs run scripts/train.sh, which starts one process per GPU with DeepSpeed's launcher.
"""

from __future__ import annotations

import argparse


def register(subparsers, name: str, help_text: str) -> None:
    # The flags belong to HfArgumentParser: with no "-" prefix of its own this parser passes
    # every one through, --help included.
    parser = subparsers.add_parser(name, help=help_text, description=__doc__, add_help=False, prefix_chars="+",
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("flags", nargs="*", help="training flags (python -m numpro.training --help)")
    parser.set_defaults(func=_run)


def _run(args) -> int:
    from .train import main

    return main(args.flags)
