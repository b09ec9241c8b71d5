"""Training-free NumPro moment retrieval with Qwen2-VL (or Qwen2.5-VL, LLaVA-OneVision/Video).

Paper protocol: 1 FPS, frames resized to 336x336 and stamped 0..K-1, instruction + question,
greedy decoding, 128 new tokens. Example:
    python eval/qwen2_vl_7b_mr.py --data_path data/charades_test.json --video_path data/charades/videos
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout's numpro, installed or not
from numpro.evaluation.scripts import script  # noqa: E402

SPEC = script(__name__, "qwen2_vl_7b_mr", __doc__)
