"""Training-free NumPro moment retrieval with GPT-4o (the paper's "GPT-4o + NumPro" row), or any
model behind an OpenAI-compatible API (--api_base, --api_model).

The local scripts' protocol: 1 FPS, frames resized to 336x336 and stamped 0..K-1, instruction +
question, temperature 0, 128 new tokens. Each query is one request: every numbered frame as an
image, in order, then the prompt. The key is read from $OPENAI_API_KEY (--api_key_env) and never
recorded. See the bill first with --limit and --dry_run DIR. Example:
    python eval/gpt4o_mr.py --data_path data/charades_test.json --video_path data/charades/videos
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout's numpro, installed or not
from numpro.evaluation.scripts import script  # noqa: E402

SPEC = script(__name__, "gpt4o_mr", __doc__)
