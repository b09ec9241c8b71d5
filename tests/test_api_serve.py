"""The API backend against a real OpenAI-compatible server: `transformers serve` with the tiny Qwen2-VL.

The server runs on 127.0.0.1 (CPU, offline) for this module only. What it answers is checked
against the same tiny model run here on the same images: the prompt's token count (the number
and size of the images that arrived) and the greedy answer itself.
"""

from __future__ import annotations

import functools
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from numpro import prompts
from numpro.models import api
from numpro.models.api_images import decode_data_url

from api_servers import ServeProcess
from conftest import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "eval"))
import qwen2_vl_7b_mr  # noqa: E402

from numpro.evaluation.cli import main  # noqa: E402

MAX_NEW_TOKENS = 6


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from numpro.models.tiny import build

    root = tmp_path_factory.mktemp("served")
    server = ServeProcess(root / "serve.log").start()  # starts while the model is written
    try:
        server.model = build("qwen2_vl", root / "tiny_qwen2_vl")
        yield server.wait()
    finally:
        server.stop()


@functools.lru_cache(maxsize=1)
def local_model(model_dir: Path):
    import torch
    from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

    model = Qwen2VLForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()
    return AutoProcessor.from_pretrained(model_dir), model


def local_reference(model_dir: Path, images: list[np.ndarray], text: str) -> tuple[int, str]:
    """(prompt tokens, greedy answer) of the tiny model run here on the same images and text."""
    import torch

    processor, model = local_model(model_dir)
    content = [{"type": "image", "image": Image.fromarray(image)} for image in images]
    messages = [{"role": "user", "content": [*content, {"type": "text", "text": text}]}]
    inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                           return_tensors="pt")
    with torch.no_grad():
        output = model.generate(**inputs, do_sample=False, max_new_tokens=MAX_NEW_TOKENS)
    prompt_tokens = inputs["input_ids"].shape[-1]
    return prompt_tokens, processor.decode(output[0, prompt_tokens:], skip_special_tokens=True)


def test_a_local_script_evaluates_the_model_served_by_transformers_serve(served, dataset, tmp_path):
    save = tmp_path / "pred.jsonl"
    code = main(qwen2_vl_7b_mr.SPEC, [
        "--data_path", str(dataset / "test.json"), "--video_path", str(dataset / "videos"),
        "--model_path", str(served.model), "--api_base", served.url, "--save_path", str(save),
        "--limit", "2", "--max_new_tokens", str(MAX_NEW_TOKENS), "--concurrency", "2", "--workers", "0",
        "--dump_frames", str(tmp_path / "frames")])
    assert code == 0, served.log.read_text()[-3000:]
    records = read_jsonl(save)
    assert [r["status"] for r in records] == ["ok", "ok"]
    record = records[0]
    frames = [np.asarray(Image.open(p)) for p in sorted((tmp_path / "frames" / Path(record["video"]).stem).glob("*.png"))]
    assert len(frames) == 13 and frames[0].shape == (336, 336, 3)  # vid0: 12.01 s at 1 FPS

    prompt_tokens, answer = local_reference(served.model, frames, prompts.mr_prompt(record["query"]))
    assert record["usage"]["prompt_tokens"] == prompt_tokens  # all 12 frames arrived, at full size
    assert record["usage"]["completion_tokens"] <= MAX_NEW_TOKENS
    assert record["response"] == answer.strip()  # the same pixels and text give the same greedy answer
    assert record["served_model"].startswith(str(served.model))


def test_the_server_decodes_exactly_the_png_frames_sent(served):
    """Direct request: the images the server's processor decodes are our frames, pixel for pixel."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 56, 84, 3), dtype=np.uint8)
    model = api.ApiModel(api.ApiSettings(served.url, str(served.model), request_timeout=60, max_retries=1))
    batch = model.preprocessor([frames], ["Which frame is the brightest?"], 1.0)
    decoded = [np.asarray(Image.open(io.BytesIO(decode_data_url(p["image_url"]["url"])[1])))
               for p in batch.tensors["requests"][0].images]
    assert all(np.array_equal(a, b) for a, b in zip(decoded, frames))
    [reply] = model.generate(batch, MAX_NEW_TOKENS)
    assert reply.status == "ok", reply.error
    prompt_tokens, answer = local_reference(served.model, list(frames), "Which frame is the brightest?")
    assert (reply.extra["usage"]["prompt_tokens"], reply.text) == (prompt_tokens, answer)
    assert json.dumps(reply.extra)  # plain JSON for the record
