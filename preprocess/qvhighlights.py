"""Numbered 0.5-FPS clips of QVHighlights videos: at 0.5 FPS frame k is 2-second clip k.

Evaluation stamps frames in memory and never needs these files; they are for looking at the
numbered frames (`--format frames`) or for feeding other tools.

    python preprocess/qvhighlights.py --only_listed data/highlight_val_release.jsonl
"""

import sys
from pathlib import Path

try:
    from numpro.preprocess import Dataset, script_main
except ImportError:  # not installed: use the checkout this script lives in
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from numpro.preprocess import Dataset, script_main

DATASET = Dataset(
    key="qvhighlights",
    title="QVHighlights",
    inputs=("data/qvhighlights/videos",),
    root="data/qvhighlights",
    notes="QVHighlights annotations (JSON Lines) name videos in 'vid': --only_listed accepts them.",
)

if __name__ == "__main__":
    script_main(DATASET)
