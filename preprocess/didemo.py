"""Numbered 0.5-FPS clips of DiDeMo videos for NumPro-FT training (run from the repository root).

Outputs are named by the hash of each video's Flickr id (yfcc100m_hash.txt beside this script),
the names the training file uses. Videos without a hash are reported as failed, not dropped.

    python preprocess/didemo.py
"""

import sys
from pathlib import Path

try:
    from numpro.preprocess import Dataset, script_main
except ImportError:  # not installed: use the checkout this script lives in
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from numpro.preprocess import Dataset, script_main

DATASET = Dataset(
    key="didemo",
    title="DiDeMo",
    inputs=("data/didemo/train",),
    root="data/didemo",
    hash_file=str(Path(__file__).resolve().with_name("yfcc100m_hash.txt")),
    notes="Outputs are named by the hash of the Flickr id in each file name (OWNER@N00_ID_SECRET.ext).",
)

if __name__ == "__main__":
    script_main(DATASET)
