"""NumPro-FT highlight detection on QVHighlights: LongVA-7B-DPO with the NumPro-FT LoRA.

0.5 FPS (frame k is 2-second clip k), 336x336 frames, numbers always stamped (upstream's
script did not stamp them by default while its prompt spoke of them), upstream's NumPro-FT
highlight prompt, greedy decoding, 1024 new tokens. Example:
    python eval/numpro_ft_hd.py --model_path pretrained/LongVA-7B-DPO \\
        --lora_path checkpoints/longva_7b_dpo_NumPro_FT \\
        --gt_file data/highlight_val_release.jsonl --video_dir data/qvhighlights/videos
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
    model_path="pretrained/LongVA-7B-DPO",
    annotations="data/highlight_val_release.jsonl",
    videos="data/qvhighlights/videos",
    annotation_flags=("--gt_file",),
    video_flags=("--video_dir",),
    fps=0.5,
    max_new_tokens=1024,
    family="longva",
    max_frames=240,
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
