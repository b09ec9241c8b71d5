"""The paper's numbers (arXiv 2411.10332): the main table and the number-design ablation.

One place for them, used by `python -m numpro results` (paper-vs-ours table) and
`python -m numpro sweep` (Tab. 3). Only numbers printed in the paper are here; a value the paper
does not give is absent, never filled in.

Metric keys are those of our metrics files: `R@0.3 R@0.5 R@0.7 mIoU` (moment retrieval, upstream's
parser) and `HL-min-VeryGood-mAP HL-min-VeryGood-Hit1` (QVHighlights highlight detection, the
paper's mAP and HIT@1).
"""

from __future__ import annotations

from .metrics.report import MR_KEYS
from .protocol import COLOR, FONT_SIZE, POSITION

HD_KEYS = ("HL-min-VeryGood-mAP", "HL-min-VeryGood-Hit1")

# Datasets of the main table: key -> (title, task, metric keys, short metric names)
DATASETS = {
    "charades": ("Charades-STA", "mr", MR_KEYS, MR_KEYS),
    "anet": ("ActivityNet", "mr", MR_KEYS, MR_KEYS),
    "qvh": ("QVHighlights", "hd", HD_KEYS, ("mAP", "HIT@1")),
}


def _row(charades: str, anet: str, qvh: str) -> dict[str, dict[str, float]]:
    values = {}
    for dataset, text in (("charades", charades), ("anet", anet), ("qvh", qvh)):
        keys = DATASETS[dataset][2]
        numbers = [float(v) for v in text.split("/")]
        assert len(numbers) == len(keys)
        values[dataset] = dict(zip(keys, numbers))
    return values


# Main table, in the paper's order: row name -> dataset -> metric -> value.
MAIN: dict[str, dict[str, dict[str, float]]] = {
    "Qwen2-VL-7B": _row("8.7/5.4/2.4/7.9", "17.0/9.4/3.9/12.5", "21.5/42.2"),
    "Qwen2-VL-7B + NumPro": _row("60.7/36.8/15.9/38.5", "44.2/26.4/14.4/31.3", "23.6/43.4"),
    "LongVA-7B-DPO": _row("22.6/10.1/2.2/14.6", "11.8/5.3/1.9/8.2", "14.2/20.4"),
    "LongVA-7B-DPO + NumPro": _row("27.2/10.3/2.9/18.9", "20.1/10.8/5.4/15.2", "15.3/24.3"),
    "LongVA-7B-DPO + NumPro-FT": _row("63.8/42.0/20.6/41.4", "55.6/37.5/20.6/38.8", "25.0/37.2"),
    "LLaVA-Video-7B + NumPro": _row("56.7/25.6/8.6/34.6", "25.2/15.2/8.4/18.6", "22.3/38.4"),
    "LLaVA-OneVision-7B + NumPro": _row("42.9/19.4/6.6/28.1", "14.4/7.9/3.8/11.3", "20.9/27.6"),
    "Qwen2-VL-72B + NumPro": _row("25.8/9.9/3.0/17.4", "35.5/21.4/11.0/25.5", "24.2/44.3"),
    "GPT-4o + NumPro": _row("57.1/35.5/13.5/37.6", "45.5/30.8/18.4/33.6", "40.5/70.7"),
}

# Not the paper's: an independent rerun of the released NumPro-FT checkpoint (upstream issue #18).
RERUN_NOTE = ("An independent rerun of the released NumPro-FT checkpoint on Charades-STA gave "
              "64.60 / 42.61 / 20.78 / 41.83 (upstream issue #18).")

# The paper's number style (the main table's runs).
DEFAULT_STYLE = (FONT_SIZE, COLOR, POSITION)

# Tab. 3: Qwen2-VL-7B + NumPro on Charades-STA, one factor varied at a time, the others at
# 40 / red / bottom_right. (font_size, color, position) -> the metrics the paper gives for it.
DESIGN_ABLATION: dict[tuple[int, str, str], dict[str, float]] = {
    (20, "red", "bottom_right"): {"R@0.3": 53.6, "R@0.5": 34.0, "R@0.7": 14.0, "mIoU": 34.6},
    (40, "red", "bottom_right"): {"mIoU": 38.5},
    (60, "red", "bottom_right"): {"mIoU": 37.1},
    (80, "red", "bottom_right"): {"mIoU": 36.9},
    (40, "red", "top_left"): {"mIoU": 35.8},
    (40, "red", "top_right"): {"mIoU": 36.8},
    (40, "red", "center"): {"mIoU": 34.1},
    (40, "red", "bottom_left"): {"R@0.3": 61.6, "R@0.5": 37.8, "R@0.7": 15.9, "mIoU": 39.3},
    (40, "blue", "bottom_right"): {"mIoU": 36.6},
    (40, "black", "bottom_right"): {"mIoU": 36.6},
    (40, "green", "bottom_right"): {"mIoU": 36.0},
}


def design_ablation(font_size: int, color: str, position: str) -> dict[str, float]:
    """The paper's Tab. 3 values for a style ({} when the paper has none)."""
    return dict(DESIGN_ABLATION.get((int(font_size), str(color).lower(), str(position)), {}))
