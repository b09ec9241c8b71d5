"""Numbered 0.5-FPS clips of ActivityNet videos for NumPro-FT training (run from the repository root).

    python preprocess/anet.py                      # upstream's folders
    python preprocess/anet.py --workers 16 --shard 0/4 --only_listed data/train_sft.json
    python preprocess/anet.py --no_numbers         # the same clips unnumbered -> data/anet/videos_0.5FPS
"""

import sys
from pathlib import Path

try:
    from numpro.preprocess import Dataset, script_main
except ImportError:  # not installed: use the checkout this script lives in
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from numpro.preprocess import Dataset, script_main

DATASET = Dataset(
    key="anet",
    title="ActivityNet",
    inputs=(
        "data/anet/v1-2/val",
        "data/anet/v1-2/train",
        "data/anet/v1-2/test",
        "data/anet/v1-3/train_val",
        "data/anet/v1-3/test",
    ),
    root="data/anet",
    notes="A video present in several input folders (v1-2 and v1-3 overlap) is made once, from the first folder.",
)

if __name__ == "__main__":
    script_main(DATASET)
