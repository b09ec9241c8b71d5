"""NumPro-FT moment retrieval: LongVA-7B-DPO with the NumPro-FT LoRA (or the base model without it).

0.5 FPS, 336x336 frames stamped 0..K-1, at most 240 frames (linspace, each keeps its number),
instruction + question, greedy decoding, 1024 new tokens. Example:
    python eval/numpro_ft_mr.py --model_path pretrained/LongVA-7B-DPO \\
        --lora_path checkpoints/longva_7b_dpo_NumPro_FT \\
        --test_path data/charades_test.json --data_path data/charades/videos
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
    model_path="pretrained/LongVA-7B-DPO",
    annotations="data/charades_test.json",
    videos="data/charades/videos",
    annotation_flags=("--test_path",),
    video_flags=("--data_path",),
    fps=0.5,
    max_new_tokens=1024,
    family="longva",
    max_frames=240,
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
