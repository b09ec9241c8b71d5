"""The eval/ scripts, declared in one table: each is a task, a model and upstream's flag names.

An eval/*.py file is its docstring plus `SPEC = script(__name__, NAME, __doc__)`, which runs the
script when the file is executed and gives tests its ScriptSpec when imported.
"""

from __future__ import annotations

import sys

from .. import protocol as p
from .cli import ScriptSpec, main

_MR = dict(task="mr", annotations="data/charades_test.json", videos="data/charades/videos")
_HD = dict(task="hd", annotations="data/highlight_val_release.jsonl", videos="data/qvhighlights/videos",
           annotation_flags=("--gt_file",), video_flags=("--video_dir",), fps=p.NUMPRO_FT_FPS)
_QWEN = dict(model_path="Qwen/Qwen2-VL-7B-Instruct")
_LONGVA = dict(model_path="pretrained/LongVA-7B-DPO", family="longva", max_frames=p.MAX_FRAMES,
               max_new_tokens=p.NUMPRO_FT_MAX_NEW_TOKENS, fps=p.NUMPRO_FT_FPS)
_GPT4O = dict(model_path="gpt-4o", api_only=True)
# upstream's flag names of the training-free MR scripts; its NumPro-FT script calls them otherwise
_MR_FLAGS = dict(annotation_flags=("--data_path",), video_flags=("--video_path",), fps=p.TRAINING_FREE_MR_FPS,
                 max_new_tokens=p.MR_MAX_NEW_TOKENS)

SCRIPTS: dict[str, dict] = {
    "qwen2_vl_7b_mr": {**_MR, **_QWEN, **_MR_FLAGS},
    "qwen2_vl_7b_hd": {**_HD, **_QWEN, "max_new_tokens": p.HD_MAX_NEW_TOKENS},
    "numpro_ft_mr": {**_MR, **_LONGVA, "annotation_flags": ("--test_path",), "video_flags": ("--data_path",)},
    "numpro_ft_hd": {**_HD, **_LONGVA},
    "gpt4o_mr": {**_MR, **_GPT4O, **_MR_FLAGS},
    "gpt4o_hd": {**_HD, **_GPT4O, "max_new_tokens": p.HD_MAX_NEW_TOKENS},
}


def script(module_name: str, name: str, description: str) -> ScriptSpec:
    """The ScriptSpec of eval/<name>.py; runs it (and exits) when that file is executed."""
    spec = ScriptSpec(description=description, **SCRIPTS[name])
    if module_name == "__main__":
        sys.exit(main(spec))
    return spec
