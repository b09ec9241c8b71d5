"""Numbered 0.5-FPS clips of InternVid videos (VTimeLLM stage 2) for NumPro-FT training.

The full set is large: `--only_listed data/train_sft.json` makes only the videos training uses.

    python preprocess/internvid.py --only_listed data/train_sft.json
"""

import sys
from pathlib import Path

try:
    from numpro.preprocess import Dataset, script_main
except ImportError:  # not installed: use the checkout this script lives in
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from numpro.preprocess import Dataset, script_main

DATASET = Dataset(
    key="internvid",
    title="InternVid",
    inputs=("data/internvid/train",),
    root="data/internvid",
    notes="Use --only_listed TRAIN_JSON to make only the videos a training file references.",
)

if __name__ == "__main__":
    script_main(DATASET)
