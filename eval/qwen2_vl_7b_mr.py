"""Training-free NumPro moment retrieval with Qwen2-VL (or Qwen2.5-VL, LLaVA-OneVision/Video).

Paper protocol: 1 FPS, frames resized to 336x336 and stamped 0..K-1, instruction + question,
greedy decoding, 128 new tokens. Example:
    python eval/qwen2_vl_7b_mr.py --data_path data/charades_test.json --video_path data/charades/videos
"""

import sys
from pathlib import Path

try:
    import numpro  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numpro.evaluation.cli import ScriptSpec, main

SPEC = ScriptSpec(
    task="mr",
    description=__doc__,
    model_path="Qwen/Qwen2-VL-7B-Instruct",
    annotations="data/charades_test.json",
    videos="data/charades/videos",
    annotation_flags=("--data_path",),
    video_flags=("--video_path",),
    fps=1.0,
    max_new_tokens=128,
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
