"""Training-free NumPro highlight detection on QVHighlights with Qwen2-VL (or another
transformers-native family picked from the checkpoint's config).

0.5 FPS (frame k is 2-second clip k), 336x336 frames stamped 0..K-1, upstream's highlight
prompt, greedy decoding, 512 new tokens. Example:
    python eval/qwen2_vl_7b_hd.py --video_dir data/qvhighlights/videos --gt_file data/highlight_val_release.jsonl
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout's numpro, installed or not
from numpro.evaluation.scripts import script  # noqa: E402

SPEC = script(__name__, "qwen2_vl_7b_hd", __doc__)
