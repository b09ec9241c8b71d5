"""The family registry: every family declared once, and what it declares matches its module."""

from __future__ import annotations

import importlib
import inspect
from argparse import Namespace

from numpro.models.base import FAMILIES, family_of_model_type, hd_prompt_style


def test_each_family_loads_with_the_arguments_it_declares():
    args = Namespace(device_map=None, processor_path=None, frame_rule="upstream", lora_path=None, max_frames=240)
    for family in FAMILIES.values():
        load = importlib.import_module(f"numpro.models.{family.name}").load
        accepted = set(inspect.signature(load).parameters)
        assert set(family.load_args(args)) <= accepted, family.name
        assert family.scripts.format(task="mr").startswith("eval/")


def test_longva_stops_where_its_prompt_ends_a_turn():
    from numpro.models.longva_inputs import STOP_STRING

    assert FAMILIES["longva"].stop_strings == (STOP_STRING,)


def test_model_types_map_to_one_family_each():
    types = [t for f in FAMILIES.values() for t in f.model_types]
    assert len(types) == len(set(types))
    assert family_of_model_type("llava_qwen").name == "longva"
    assert family_of_model_type("qwen2_5_vl").name == "qwen2_vl"
    assert family_of_model_type("bert") is None
    assert hd_prompt_style("longva") == "numpro_ft" and hd_prompt_style("qwen2_vl") == "qwen2_vl"
