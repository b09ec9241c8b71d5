"""NumPro-FT moment retrieval: LongVA-7B-DPO with the NumPro-FT LoRA (or the base model without it).

0.5 FPS, 336x336 frames stamped 0..K-1, at most 240 frames (linspace, each keeps its number),
instruction + question, greedy decoding, 1024 new tokens. Example:
    python eval/numpro_ft_mr.py --model_path pretrained/LongVA-7B-DPO \\
        --lora_path checkpoints/longva_7b_dpo_NumPro_FT \\
        --test_path data/charades_test.json --data_path data/charades/videos
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout's numpro, installed or not
from numpro.evaluation.scripts import script  # noqa: E402

SPEC = script(__name__, "numpro_ft_mr", __doc__)
