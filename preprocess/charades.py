"""Numbered 0.5-FPS clips of Charades-STA videos: what the evaluation feeds a model, on disk.

Evaluation stamps frames in memory and never needs these files; they are for looking at the
numbered frames (`--format frames`) or for feeding other tools.

    python preprocess/charades.py --only_listed data/charades_test.json --format frames
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's numpro, installed or not
from numpro.preprocess import script_main  # noqa: E402

if __name__ == "__main__":
    script_main("charades")
