"""Numbered 0.5-FPS clips of DiDeMo videos for NumPro-FT training (run from the repository root).

Outputs are named by the hash of each video's Flickr id (yfcc100m_hash.txt beside this script),
the names the training file uses. Videos without a hash are reported as failed, not dropped.

    python preprocess/didemo.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's numpro, installed or not
from numpro.preprocess import script_main  # noqa: E402

if __name__ == "__main__":
    script_main("didemo")
