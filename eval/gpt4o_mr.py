"""Training-free NumPro moment retrieval with GPT-4o (the paper's "GPT-4o + NumPro" row), or any
model behind an OpenAI-compatible API (--api_base, --api_model).

The local scripts' protocol: 1 FPS, frames resized to 336x336 and stamped 0..K-1, instruction +
question, temperature 0, 128 new tokens. Each query is one request: every numbered frame as an
image, in order, then the prompt. The key is read from $OPENAI_API_KEY (--api_key_env) and never
recorded. See the bill first with --limit and --dry_run DIR. Example:
    python eval/gpt4o_mr.py --data_path data/charades_test.json --video_path data/charades/videos
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
    model_path="gpt-4o",
    annotations="data/charades_test.json",
    videos="data/charades/videos",
    annotation_flags=("--data_path",),
    video_flags=("--video_path",),
    fps=1.0,
    max_new_tokens=128,
    api_only=True,
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
