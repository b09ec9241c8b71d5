"""`python -m numpro design-study` with a tiny random CLIP written here (nothing is downloaded)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from numpro import cli, design_study
from numpro.design_study import ClipScorer
from numpro.stamp import Stamper, StampStyle
from numpro.video import resize_frame

# (file name, size): image 3 has no file on disk, image 6 has no caption
COCO_IMAGES = [(f"{k:012d}.jpg", (40 + 7 * k, 30 + 5 * k)) for k in range(8)]
MISSING = COCO_IMAGES[3][0]


def build_tiny_clip(folder: Path) -> Path:
    """A randomly initialised CLIP (few hundred kB) with a byte-level CLIP tokenizer and processor."""
    import torch
    from tokenizers import pre_tokenizers
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    # CLIP's BPE vocabulary starts with every byte, then every byte ending a word ("</w>");
    # with no merges each character is one token, which is all a random model needs.
    vocab = {token: i for i, token in enumerate(alphabet + [c + "</w>" for c in alphabet])}
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=32, bos_token_id=vocab["<|startoftext|>"],
                         eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"]),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=8,
    )
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("clip-tiny"))


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    """A captions_val2017.json-style file and its images folder (one listed image missing)."""
    root = tmp_path_factory.mktemp("coco")
    images = root / "val2017"
    images.mkdir()
    rng = np.random.default_rng(0)
    for k, (name, (w, h)) in enumerate(COCO_IMAGES):
        if name != MISSING:
            pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            pixels[: h // 2] = (30 * k, 200 - 20 * k, 90)  # distinct images, not only noise
            Image.fromarray(pixels).save(images / name, quality=95)
    annotations = []
    for k in range(8):
        if k != 6:
            annotations.append({"image_id": 100 + k, "id": 2 * k, "caption": f"A photo number {k} of a cat.\n"})
            annotations.append({"image_id": 100 + k, "id": 2 * k + 1, "caption": f"second caption {k}"})
    data = {"info": {}, "images": [{"id": 100 + k, "file_name": name, "width": w, "height": h}
                                   for k, (name, (w, h)) in enumerate(COCO_IMAGES)],
            "annotations": annotations}
    path = root / "captions_val2017.json"
    path.write_text(json.dumps(data))
    return path, images


def study(coco, tiny_clip, output: Path, *extra: str) -> int:
    captions, images = coco
    return cli.main(["design-study", "--captions", str(captions), "--images", str(images), "--clip", str(tiny_clip),
                     "--output", str(output), "--pairs", "5", "--sizes", "20", "40", "--colors", "red", "black",
                     "--positions", "br", "center", "--batch_size", "2", "--device", "cpu", "--quiet", *extra])


class CountingScorer:
    """Counts image batches sent to CLIP (and records them) by wrapping ClipScorer.embed_images."""

    def __init__(self, monkeypatch):
        self.batches: list[list[np.ndarray]] = []
        original = ClipScorer.embed_images
        counter = self

        def embed_images(scorer, images):
            counter.batches.append([np.array(image) for image in images])
            return original(scorer, images)

        monkeypatch.setattr(ClipScorer, "embed_images", embed_images)


# ------------------------------------------------------------------------------ accuracy
def test_top1_accuracy_is_cosine_nearest_text_with_first_on_ties():
    texts = np.array([[1.0, 0.0], [3.0, 3.0], [0.0, 1.0]])
    images = np.array([
        [1.0, 0.1],    # dot product prefers text 1 (3.3 vs 1.0); cosine prefers text 0
        [0.1, 1.0],    # cosine: text 2
        [2.0, 2.0],    # exactly along text 1
        [0.9, 1.0],    # dot product prefers text 1, and so does cosine (0.999 vs 0.74 for text 2)
        [0.0, 0.0],    # all similarities 0: the first text wins
    ])
    assert design_study.top1_correct(images, texts, [0, 2, 1, 1, 0]) == 5
    assert design_study.top1_correct(images, texts, [1, 2, 1, 1, 2]) == 3  # images 0 and 4 miss
    assert design_study.top1_accuracy(images, texts, [1, 2, 1, 1, 2]) == pytest.approx(0.6)
    assert design_study.top1_accuracy(np.zeros((0, 2)), texts, []) == 0.0


# ------------------------------------------------------------------------------ input
def test_coco_captions_give_one_pair_per_image_with_its_first_caption(coco):
    captions, images = coco
    pairs = design_study.read_pairs(captions, images)
    assert [p.image.name for p in pairs] == [name for k, (name, _) in enumerate(COCO_IMAGES) if k != 6]
    assert pairs[0] == design_study.Pair(images / COCO_IMAGES[0][0], "A photo number 0 of a cat.")
    assert all(p.caption.startswith("A photo number") for p in pairs)


def test_jsonl_pairs_and_bad_files(tmp_path):
    lines = [{"image": "a.jpg", "caption": " a dog "}, {"image": "sub/b.png", "caption": "a cat"}]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    pairs = design_study.read_pairs(path, tmp_path / "img")
    assert pairs == [design_study.Pair(tmp_path / "img" / "a.jpg", "a dog"),
                     design_study.Pair(tmp_path / "img" / "sub" / "b.png", "a cat")]
    single = tmp_path / "one.jsonl"
    single.write_text(json.dumps(lines[0]) + "\n")
    assert len(design_study.read_pairs(single, tmp_path)) == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"img": "a.jpg", "caption": "x"}) + "\n")
    with pytest.raises(design_study.StudyError, match=r"bad\.jsonl: record 1"):
        design_study.read_pairs(bad, tmp_path)
    with pytest.raises(design_study.StudyError, match="captions file not found"):
        design_study.read_pairs(tmp_path / "nope.json", tmp_path)


def test_sample_is_seeded_resized_and_skips_unreadable_images(coco, tmp_path):
    captions, images = coco
    pairs = [p for p in design_study.read_pairs(captions, images) if p.image.is_file()]
    a = design_study.draw_sample(pairs, 4, seed=42, progress=False)
    b = design_study.draw_sample(pairs, 4, seed=42, progress=False)
    assert [p.image for p in a.pairs] == [p.image for p in b.pairs]
    orders = {tuple(p.image.name for p in design_study.draw_sample(pairs, 4, seed=s, progress=False).pairs)
              for s in range(6)}
    assert len(orders) > 1  # the seed matters
    expected = resize_frame(np.asarray(Image.open(a.pairs[0].image).convert("RGB")), 336)
    assert a.images[0].shape == (336, 336, 3) and np.array_equal(a.images[0], expected)

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    with_broken = [design_study.Pair(broken, "broken")] + pairs
    drawn = design_study.draw_sample(with_broken, len(with_broken), seed=1, progress=False)
    assert len(drawn.pairs) == len(pairs) and drawn.unreadable[0][0] == str(broken)


# ------------------------------------------------------------------------------ stamping
def test_image_i_carries_number_i_mod_100():
    style = StampStyle(40, "red", "bottom_right")
    base = np.full((336, 336, 3), 200, np.uint8)
    stamped = design_study.stamp_images(Stamper(style), [base] * 4, first_index=98)
    for image, number in zip(stamped, (98, 99, 0, 1)):
        assert np.array_equal(image, Stamper(style).stamp(base, number))
    assert not np.array_equal(stamped[0], stamped[1]) and not np.array_equal(stamped[2], base)
    assert np.array_equal(base, np.full((336, 336, 3), 200, np.uint8))  # the originals stay clean
    assert design_study.stamp_images(None, [base], 0)[0] is base


def test_clip_sees_the_resized_images_stamped_with_their_numbers(coco, tiny_clip, tmp_path, monkeypatch):
    calls = CountingScorer(monkeypatch)
    assert study(coco, tiny_clip, tmp_path / "out", "--sizes", "60", "--colors", "blue", "--positions", "tl",
                 "--no_baseline") == 0
    fed = [image for batch in calls.batches for image in batch]
    assert [len(batch) for batch in calls.batches] == [2, 2, 1]  # --batch_size 2, n = 5
    captions, images = coco
    pairs = [p for p in design_study.read_pairs(captions, images) if p.image.is_file()]
    sample = design_study.draw_sample(pairs, 5, seed=42, progress=False)
    stamper = Stamper(StampStyle(60, "blue", "top_left"))
    for i, (image, pair) in enumerate(zip(fed, sample.pairs)):
        resized = resize_frame(np.asarray(Image.open(pair.image).convert("RGB")), 336)
        assert np.array_equal(image, stamper.stamp(resized, i % 100))


# ------------------------------------------------------------------------------ the command
def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_study_writes_one_row_per_style_and_the_figure(coco, tiny_clip, tmp_path, capsys):
    out = tmp_path / "out"
    assert study(coco, tiny_clip, out) == 0
    err = capsys.readouterr().err
    assert "1 of 7 images listed" in err and MISSING in err

    rows = json.loads((out / "design_study.json").read_text())
    styles = [(r["font_size"], r["color"], r["position"]) for r in rows]
    assert styles == [(s, c, p) for s in (20, 40) for c in ("red", "black") for p in ("bottom_right", "center")] + [
        (0, "none", "none")]
    assert rows[-1]["style"] == "unstamped"
    for row in rows:
        assert set(design_study.COLUMNS) <= set(row)
        assert row["n"] == 5
        assert 0 <= row["number_accuracy"] <= 1 and 0 <= row["caption_accuracy"] <= 1
        assert row["number_accuracy"] == row["number_correct"] / 5
        assert row["caption_accuracy"] == row["caption_correct"] / 5
    table = _read_csv(out / "design_study.csv")
    assert [r["style"] for r in table] == [r["style"] for r in rows]
    assert float(table[0]["caption_accuracy"]) == rows[0]["caption_accuracy"] and table[0]["n"] == "5"
    with Image.open(out / "design_study.png") as png:
        assert png.format == "PNG" and png.size[0] > 500
    run = json.loads((out / "design_study_run.json").read_text())
    assert run["images_missing"] == 1 and run["computed_now"] == len(rows) and run["settings"]["n"] == 5

    # The baseline recomputed by hand: caption i of the sample is image i's target, number i mod 100.
    captions, images = coco
    sample = design_study.draw_sample([p for p in design_study.read_pairs(captions, images) if p.image.is_file()],
                                      5, seed=42, progress=False)
    scorer = ClipScorer(str(tiny_clip))
    embedded = scorer.embed_images(sample.images)
    numbers = scorer.embed_texts([str(k) for k in range(100)])
    texts = scorer.embed_texts([p.caption for p in sample.pairs])
    assert rows[-1]["caption_correct"] == design_study.top1_correct(embedded, texts, range(5))
    assert rows[-1]["number_correct"] == design_study.top1_correct(embedded, numbers, range(5))


def test_rerun_resumes_and_other_settings_recompute(coco, tiny_clip, tmp_path, monkeypatch):
    out = tmp_path / "out"
    calls = CountingScorer(monkeypatch)
    assert study(coco, tiny_clip, out) == 0
    first = (out / "design_study.json").read_text()
    assert len(calls.batches) == 9 * 3  # 8 styles + baseline, 3 batches each

    calls.batches.clear()
    assert study(coco, tiny_clip, out) == 0
    assert calls.batches == [] and (out / "design_study.json").read_text() == first

    results = out / design_study.RESULTS_FILE
    lines = results.read_text().splitlines()
    dropped = json.loads(lines[2])["style"]
    results.write_text("\n".join(lines[:2] + lines[3:]) + "\n" + lines[2][: len(lines[2]) // 2])  # killed mid-write
    assert study(coco, tiny_clip, out) == 0
    assert len(calls.batches) == 3 and (out / "design_study.json").read_text() == first
    assert sum(json.loads(line)["style"] == dropped for line in results.read_text().splitlines()) == 1

    calls.batches.clear()
    assert study(coco, tiny_clip, out, "--seed", "7") == 0  # another sample: nothing reused
    assert len(calls.batches) == 9 * 3


# ------------------------------------------------------------------------------ errors
def test_bad_inputs_exit_2_with_one_line_naming_the_file(coco, tiny_clip, tmp_path, capsys):
    captions, images = coco

    def run(*argv: str) -> tuple[int, str]:
        code = cli.main(["design-study", "--output", str(tmp_path / "out"), "--quiet", *argv])
        return code, capsys.readouterr().err.strip()

    base = ["--clip", str(tiny_clip)]
    code, err = run("--captions", str(tmp_path / "nope.json"), "--images", str(images), *base)
    assert code == 2 and err == f"error: captions file not found: {tmp_path / 'nope.json'}"
    code, err = run("--captions", str(captions), "--images", str(tmp_path / "none"), *base)
    assert code == 2 and err == f"error: images folder not found: {tmp_path / 'none'}"
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = run("--captions", str(captions), "--images", str(empty), *base)
    assert code == 2 and "none of the 7 images" in err and str(empty) in err and "\n" not in err
    code, err = run("--captions", str(captions), "--images", str(images), "--clip", str(tmp_path / "no-clip"))
    assert code == 2 and err == f"error: CLIP model folder not found: {tmp_path / 'no-clip'}"
    code, err = run("--captions", str(captions), "--images", str(images), "--clip", str(empty))
    assert code == 2 and "no config.json" in err
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    code, err = run("--captions", str(captions), "--images", str(images), "--clip", str(other))
    assert code == 2 and "not a CLIP checkpoint" in err and "config.json" in err
    broken = tmp_path / "broken-clip"
    shutil.copytree(tiny_clip, broken)
    (broken / "model.safetensors").write_bytes((tiny_clip / "model.safetensors").read_bytes()[:500])
    code, err = run("--captions", str(captions), "--images", str(images), "--clip", str(broken), "--pairs", "2")
    assert code == 2 and err.splitlines()[-1].startswith(f"error: cannot load CLIP model {broken}: ")
    assert not (tmp_path / "out" / "design_study.json").exists()


@pytest.mark.parametrize("flag", [["--pairs", "0"], ["--sizes", "40", "-3"], ["--batch_size", "x"],
                                  ["--colors", "reddish"], ["--positions", "middle"]])
def test_numeric_and_style_flags_are_validated(coco, tmp_path, flag, capsys):
    captions, images = coco
    with pytest.raises(SystemExit) as exit_:
        cli.main(["design-study", "--captions", str(captions), "--images", str(images), "--output", str(tmp_path),
                  *flag])
    assert exit_.value.code == 2 and flag[0] in capsys.readouterr().err
