"""Numbered 0.5-FPS clips of QVHighlights videos: at 0.5 FPS frame k is 2-second clip k.

Evaluation stamps frames in memory and never needs these files; they are for looking at the
numbered frames (`--format frames`) or for feeding other tools.

    python preprocess/qvhighlights.py --only_listed data/highlight_val_release.jsonl
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's numpro, installed or not
from numpro.preprocess import script_main  # noqa: E402

if __name__ == "__main__":
    script_main("qvhighlights")
