"""Numbered 0.5-FPS clips of ActivityNet videos for NumPro-FT training (run from the repository root).

    python preprocess/anet.py                      # upstream's folders
    python preprocess/anet.py --workers 16 --shard 0/4 --only_listed data/train_sft.json
    python preprocess/anet.py --no_numbers         # the same clips unnumbered -> data/anet/videos_0.5FPS
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's numpro, installed or not
from numpro.preprocess import script_main  # noqa: E402

if __name__ == "__main__":
    script_main("anet")
