"""Training-free NumPro highlight detection on QVHighlights with Qwen2-VL (or another
transformers-native family picked from the checkpoint's config).

0.5 FPS (frame k is 2-second clip k), 336x336 frames stamped 0..K-1, upstream's highlight
prompt, greedy decoding, 512 new tokens. Example:
    python eval/qwen2_vl_7b_hd.py --video_dir data/qvhighlights/videos --gt_file data/highlight_val_release.jsonl
"""

import sys
from pathlib import Path

try:
    import numpro  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numpro.evaluation.cli import ScriptSpec, main

SPEC = ScriptSpec(
    task="hd",
    description=__doc__,
    model_path="Qwen/Qwen2-VL-7B-Instruct",
    annotations="data/highlight_val_release.jsonl",
    videos="data/qvhighlights/videos",
    annotation_flags=("--gt_file",),
    video_flags=("--video_dir",),
    fps=0.5,
    max_new_tokens=512,
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
