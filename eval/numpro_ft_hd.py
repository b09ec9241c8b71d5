"""NumPro-FT highlight detection on QVHighlights: LongVA-7B-DPO with the NumPro-FT LoRA.

0.5 FPS (frame k is 2-second clip k), 336x336 frames, numbers always stamped (upstream's
script did not stamp them by default while its prompt spoke of them), upstream's NumPro-FT
highlight prompt, greedy decoding, 1024 new tokens. Example:
    python eval/numpro_ft_hd.py --model_path pretrained/LongVA-7B-DPO \\
        --lora_path checkpoints/longva_7b_dpo_NumPro_FT \\
        --gt_file data/highlight_val_release.jsonl --video_dir data/qvhighlights/videos
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout's numpro, installed or not
from numpro.evaluation.scripts import script  # noqa: E402

SPEC = script(__name__, "numpro_ft_hd", __doc__)
