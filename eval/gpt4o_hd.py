"""Training-free NumPro highlight detection on QVHighlights with GPT-4o (the paper's "GPT-4o +
NumPro" row), or any model behind an OpenAI-compatible API (--api_base, --api_model).

The local Qwen2-VL script's protocol: 0.5 FPS (frame k is 2-second clip k), 336x336 frames stamped
0..K-1, upstream's Qwen2-VL highlight prompt, temperature 0, 512 new tokens. Each query is one
request: every numbered frame as an image, in order, then the prompt. The key is read from
$OPENAI_API_KEY (--api_key_env) and never recorded. Example:
    python eval/gpt4o_hd.py --video_dir data/qvhighlights/videos --gt_file data/highlight_val_release.jsonl
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout's numpro, installed or not
from numpro.evaluation.scripts import script  # noqa: E402

SPEC = script(__name__, "gpt4o_hd", __doc__)
