"""NumPro-FT's released adapter layout on the tiny LongVA: load, merge, projector, strictness."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from numpro.models import longva  # noqa: E402
from numpro.models.longva_checkpoint import CheckpointError  # noqa: E402
from numpro.models.longva_lora import NON_LORA_NAME, apply_lora, read_non_lora  # noqa: E402

TEXT = "The red numbers on each frame represent the frame number.During which frames can we see a person?"


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("longva_lora")
    longva.build_tiny(root / "model", lora_dir=root / "lora")
    return root / "model", root / "lora"


@pytest.fixture(scope="module")
def batch(dirs):
    video = np.random.default_rng(0).integers(0, 256, (2, 336, 336, 3), dtype=np.uint8)
    return longva.load(dirs[0]).preprocessor([video], [TEXT], 0.5)


def logits(network, model, batch):
    with torch.no_grad():
        t = batch.tensors
        pixels = model.preprocessor.clip.normalize(t["frames"])
        embeds, mask = network.embed_multimodal(t["input_ids"], t["attention_mask"], pixels, t["frame_counts"])
        return network(inputs_embeds=embeds, attention_mask=mask).logits


def test_adapter_folder_has_the_released_layout(dirs):
    from safetensors import safe_open

    _, lora = dirs
    assert {p.name for p in lora.iterdir()} >= {"adapter_config.json", "adapter_model.safetensors", NON_LORA_NAME,
                                                 "config.json"}
    config = json.loads((lora / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["task_type"] == "CAUSAL_LM"
    assert sorted(config["target_modules"]) == sorted(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                       "up_proj", "down_proj"])
    with safe_open(lora / "adapter_model.safetensors", framework="pt") as handle:
        keys = set(handle.keys())
    assert "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" in keys
    clip = "base_model.model.model.vision_tower.vision_tower.vision_model.encoder.layers.0.self_attn."
    assert {clip + f"{p}_proj.lora_B.weight" for p in "qkv"} <= keys
    assert not any("out_proj" in k or "mm_projector" in k or "lm_head" in k for k in keys)
    stored = torch.load(lora / NON_LORA_NAME, weights_only=True)
    assert sorted(stored) == sorted(f"base_model.model.model.mm_projector.{i}.{p}" for i in (0, 2)
                                    for p in ("weight", "bias"))


def test_non_lora_keys_are_stripped_as_upstream(dirs):
    assert sorted(read_non_lora(dirs[1])) == sorted(f"model.mm_projector.{i}.{p}" for i in (0, 2)
                                                     for p in ("weight", "bias"))


def test_adapter_loads_merges_and_changes_the_outputs(dirs, batch):
    model_dir, lora = dirs
    base = longva.load(model_dir)
    tuned = longva.load(model_dir, lora_path=lora)
    assert type(tuned.network) is type(base.network)  # merged back into plain modules
    assert not torch.allclose(logits(base.network, base, batch), logits(tuned.network, tuned, batch), atol=1e-3)
    # LoRA reached the language model and CLIP's attention, and only those
    changed = {k for k, v in tuned.network.state_dict().items() if not torch.equal(v, base.network.state_dict()[k])}
    assert "model.layers.0.mlp.down_proj.weight" in changed
    assert "model.vision_tower.vision_tower.vision_model.encoder.layers.1.self_attn.v_proj.weight" in changed
    assert not any("out_proj" in k or "fc1" in k or "embed_tokens" in k or "lm_head" in k for k in changed)


def test_merged_and_unmerged_forwards_agree(dirs, batch):
    model_dir, lora = dirs
    model = longva.load(model_dir)
    peft_model = apply_lora(model.network, lora, merge=False)
    unmerged = logits(model.network, model, batch)  # LoRA layers sit inside the network
    merged_network = peft_model.merge_and_unload()
    merged = logits(merged_network, model, batch)
    assert torch.allclose(unmerged, merged, atol=1e-5)


def test_the_projector_comes_from_non_lora_trainables(dirs):
    model_dir, lora = dirs
    base = longva.load(model_dir)
    tuned = longva.load(model_dir, lora_path=lora)
    stored = read_non_lora(lora)
    for key, tensor in stored.items():
        assert torch.equal(tuned.network.state_dict()[key], tensor)
        assert not torch.equal(base.network.state_dict()[key], tensor)


def test_adapter_model_bin_loads_the_same(dirs, tmp_path):
    from safetensors.torch import load_file

    model_dir, lora = dirs
    bin_dir = tmp_path / "lora_bin"
    shutil.copytree(lora, bin_dir)
    weights = load_file(bin_dir / "adapter_model.safetensors")
    (bin_dir / "adapter_model.safetensors").unlink()
    torch.save(weights, bin_dir / "adapter_model.bin")
    a = longva.load(model_dir, lora_path=lora).network.state_dict()
    b = longva.load(model_dir, lora_path=bin_dir).network.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def _edit_adapter(lora: Path, dst: Path, edit) -> Path:
    from safetensors.torch import load_file, save_file

    shutil.copytree(lora, dst)
    weights = load_file(dst / "adapter_model.safetensors")
    edit(weights)
    save_file(weights, dst / "adapter_model.safetensors")
    return dst


def test_unexpected_adapter_key_is_an_error(dirs, tmp_path):
    model_dir, lora = dirs
    bad = "base_model.model.model.layers.0.self_attn.nowhere.lora_A.weight"
    broken = _edit_adapter(lora, tmp_path / "extra", lambda w: w.update({bad: torch.zeros(4, 32)}))
    with pytest.raises(CheckpointError, match="nowhere"):
        longva.load(model_dir, lora_path=broken)


def test_missing_adapter_key_is_an_error(dirs, tmp_path):
    model_dir, lora = dirs
    key = "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight"
    broken = _edit_adapter(lora, tmp_path / "missing", lambda w: w.pop(key))
    with pytest.raises(CheckpointError, match="up_proj"):
        longva.load(model_dir, lora_path=broken)


def test_unknown_non_lora_key_is_an_error(dirs, tmp_path):
    model_dir, lora = dirs
    broken = tmp_path / "non_lora"
    shutil.copytree(lora, broken)
    state = torch.load(broken / NON_LORA_NAME, weights_only=True)
    state["base_model.model.model.image_newline"] = torch.zeros(32)
    torch.save(state, broken / NON_LORA_NAME)
    with pytest.raises(CheckpointError, match="image_newline"):
        longva.load(model_dir, lora_path=broken)
