"""Numbered 0.5-FPS clips of InternVid videos (VTimeLLM stage 2) for NumPro-FT training.

The full set is large: `--only_listed data/train_sft.json` makes only the videos training uses.

    python preprocess/internvid.py --only_listed data/train_sft.json
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's numpro, installed or not
from numpro.preprocess import script_main  # noqa: E402

if __name__ == "__main__":
    script_main("internvid")
