"""Numbered 0.5-FPS clips of Charades-STA videos: what the evaluation feeds a model, on disk.

Evaluation stamps frames in memory and never needs these files; they are for looking at the
numbered frames (`--format frames`) or for feeding other tools.

    python preprocess/charades.py --only_listed data/charades_test.json --format frames
"""

import sys
from pathlib import Path

try:
    from numpro.preprocess import Dataset, script_main
except ImportError:  # not installed: use the checkout this script lives in
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from numpro.preprocess import Dataset, script_main

DATASET = Dataset(
    key="charades",
    title="Charades-STA",
    inputs=("data/charades/videos",),
    root="data/charades",
    notes="Training-free moment retrieval samples at 1 FPS: add --fps 1 to see those frames.",
)

if __name__ == "__main__":
    script_main(DATASET)
