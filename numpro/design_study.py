"""`python -m numpro design-study`: how readable each number style is to CLIP, and what it costs (Fig. 5).

Images of image-caption pairs are resized to 336x336 (as every frame is) and stamped by
numpro.stamp in each candidate style; image i of the seeded sample carries the number i mod 100,
as upstream. With a CLIP model:
  Number Accuracy   share of images whose embedding is closest (cosine) to the text of its own
                    number among "0".."99": can the model read the number?
  Caption Accuracy  share of images closest to their own caption among all captions of the
                    sample: does the number leave the picture's content intact?
The paper used CLIP ViT-B/32 and 1,000 MS-COCO image-caption pairs and chose 40 / red / bottom-right.

Outputs in --output: design_study.csv and design_study.json (one row per style, and an
"unstamped" baseline row with font_size 0), design_study.png (Number vs Caption Accuracy),
design_study_run.json (settings), and design_study_results.jsonl, where each style's result is
appended as it finishes: a rerun with the same settings skips the styles already there.

Example:
    python -m numpro design-study --captions data/coco/annotations/captions_val2017.json \\
        --images data/coco/val2017 --output results/design_study
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .argtypes import positive_int
from .jsonio import JsonInputError, JsonlWriter, iter_jsonl, read_json, read_records, write_json
from .jsonio import write_csv as write_csv_file
from .cli_args import parse_color, parse_position
from .evaluation.run_record import sha256_file
from .stamp import POSITIONS, Stamper, StampStyle, find_font, normalize_position

DEFAULT_CLIP = "openai/clip-vit-base-patch32"
DEFAULT_SIZES = (20, 40, 60, 80)
DEFAULT_COLORS = ("red", "blue", "black", "green")
IMAGE_SIZE = 336
NUMBERS = 100  # image i carries i mod 100; the candidate texts are "0".."99"
BASELINE = "unstamped"
RESULTS_FILE = "design_study_results.jsonl"
COLUMNS = ("style", "font_size", "color", "position", "number_accuracy", "caption_accuracy", "n",
           "number_correct", "caption_correct")
_FORMAT_VERSION = 1  # part of the settings fingerprint: bump when results change meaning
_POSITION_ABBR = {"top_left": "TL", "top_right": "TR", "bottom_left": "BL", "bottom_right": "BR", "center": "C"}
_POSITION_MARKERS = {"top_left": "^", "top_right": "v", "bottom_left": "<", "bottom_right": "o", "center": "s"}


class StudyError(ValueError):
    """Input the study cannot use; the message names the file."""


@dataclass(frozen=True)
class Pair:
    image: Path
    caption: str


# ------------------------------------------------------------------------------ input
def read_pairs(captions: str | Path, images: str | Path) -> list[Pair]:
    """Every image-caption pair of the file, in file order.

    MS-COCO caption annotations ({"images": [{id, file_name}], "annotations": [{image_id,
    caption}]}): one pair per image, with the first of its captions in the file. Otherwise
    JSON Lines (or a JSON list) of {"image": path relative to `images`, "caption": text}.
    """
    captions, images = Path(captions), Path(images)
    if not captions.is_file():
        raise StudyError(f"captions {'path is not a file' if captions.exists() else 'file not found'}: {captions}")
    try:
        with open(captions, encoding="utf-8") as f:
            first = f.read(4096).lstrip()[:1]
        if first == "{":
            try:
                data = read_json(captions)
            except JsonInputError:
                data = None  # several JSON documents: JSON Lines
            if isinstance(data, dict) and ("annotations" in data or "images" in data):
                return _coco_pairs(data, captions, images)
        return _jsonl_pairs(read_records(captions), captions, images)
    except (JsonInputError, UnicodeDecodeError) as err:
        raise StudyError(f"{captions}: {err}" if isinstance(err, UnicodeDecodeError) else str(err)) from None


def _coco_pairs(data: dict, path: Path, images: Path) -> list[Pair]:
    if not isinstance(data.get("images"), list) or not isinstance(data.get("annotations"), list):
        raise StudyError(f"{path}: MS-COCO captions need lists 'images' and 'annotations'")
    first: dict = {}
    for k, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or "image_id" not in ann or not isinstance(ann.get("caption"), str):
            raise StudyError(f"{path}: annotation {k}: expected {{'image_id', 'caption'}}")
        first.setdefault(ann["image_id"], ann["caption"].strip())
    pairs = []
    for k, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image or not isinstance(image.get("file_name"), str):
            raise StudyError(f"{path}: image {k}: expected {{'id', 'file_name'}}")
        if image["id"] in first:  # images without a caption cannot be scored
            pairs.append(Pair(images / image["file_name"], first[image["id"]]))
    return pairs


def _jsonl_pairs(records: list[dict], path: Path, images: Path) -> list[Pair]:
    pairs = []
    for k, record in enumerate(records, start=1):
        if not isinstance(record.get("image"), str) or not isinstance(record.get("caption"), str):
            raise StudyError(f"{path}: record {k}: expected {{'image': path, 'caption': text}}")
        pairs.append(Pair(images / record["image"], record["caption"].strip()))
    return pairs


def load_image(path: str | Path, size: int = IMAGE_SIZE) -> np.ndarray:
    """An image file as RGB uint8, resized like every frame of the pipeline (cv2, bilinear)."""
    from PIL import Image

    from .video import resize_frame

    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"))
    return resize_frame(rgb, size)


@dataclass
class Sample:
    pairs: list[Pair]
    images: list[np.ndarray]  # resized, unstamped
    unreadable: list[tuple[str, str]]  # (file, reason) of images skipped while drawing


def draw_sample(pairs: Sequence[Pair], count: int, seed: int, size: int = IMAGE_SIZE, progress: bool = True) -> Sample:
    """The first `count` readable images of a seeded shuffle of `pairs`, loaded and resized.

    An image that cannot be decoded is skipped (and reported), so the sample keeps its size
    when the folder has enough readable images.
    """
    from tqdm import tqdm

    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    sample = Sample([], [], [])
    bar = tqdm(total=min(count, len(pairs)), desc="loading images", unit="img", disable=not progress,
               dynamic_ncols=True)
    try:
        for index in order:
            if len(sample.pairs) == count:
                break
            pair = pairs[index]
            try:
                image = load_image(pair.image, size)
            except (OSError, ValueError) as err:  # PIL: truncated, not an image, too large
                sample.unreadable.append((str(pair.image), str(err).splitlines()[0] if str(err) else type(err).__name__))
                continue
            sample.pairs.append(pair)
            sample.images.append(image)
            bar.update(1)
    finally:
        bar.close()
    return sample


# ------------------------------------------------------------------------------ styles
def style_grid(sizes: Iterable[int], colors: Iterable[str], positions: Iterable[str]) -> list[StampStyle]:
    """Every combination, sizes outermost; repeated values are dropped."""
    unique = lambda values: list(dict.fromkeys(values))  # noqa: E731
    return [StampStyle(size, color, position) for size, color, position in
            itertools.product(unique(sizes), unique(colors), unique(normalize_position(p) for p in positions))]


def style_label(style: StampStyle | None) -> str:
    return BASELINE if style is None else f"{style.font_size}/{style.color}/{style.position}"


def _style_fields(style: StampStyle | None) -> dict:
    if style is None:  # no number drawn: font size 0, no colour, no position
        return {"style": BASELINE, "font_size": 0, "color": "none", "position": "none"}
    return {"style": style_label(style), "font_size": style.font_size, "color": style.color, "position": style.position}


def stamp_images(stamper: Stamper | None, images: Sequence[np.ndarray], first_index: int) -> list[np.ndarray]:
    """Copies of `images` (sample positions first_index...), each carrying its number i mod 100."""
    if stamper is None:
        return list(images)
    return [stamper.stamp(image, (first_index + k) % NUMBERS) for k, image in enumerate(images)]


# ------------------------------------------------------------------------------ CLIP
def top1_correct(image_embeddings, text_embeddings, targets) -> int:
    """How many images have their target text as the nearest (cosine) text; ties go to the first text."""
    import torch
    import torch.nn.functional as F

    images = F.normalize(torch.as_tensor(image_embeddings, dtype=torch.float32), dim=-1)
    texts = F.normalize(torch.as_tensor(text_embeddings, dtype=torch.float32, device=images.device), dim=-1)
    targets = torch.as_tensor(targets, device=images.device)
    return int((images @ texts.T).argmax(dim=-1).eq(targets).sum())


def top1_accuracy(image_embeddings, text_embeddings, targets) -> float:
    """Share of images whose nearest (cosine) text is their target (0 for no images)."""
    n = len(targets)
    return top1_correct(image_embeddings, text_embeddings, targets) / n if n else 0.0


def _pooled(output):
    # transformers 5 returns the model output with the projected embedding as pooler_output;
    # older versions return the tensor itself.
    return getattr(output, "pooler_output", output)


class ClipScorer:
    """A CLIP model and its processor: embeddings of texts and of RGB uint8 images."""

    def __init__(self, model: str, device: str = "cpu", dtype: str = "float32"):
        import torch
        from transformers import CLIPModel, CLIPProcessor

        self.device = device
        self.processor = CLIPProcessor.from_pretrained(model)
        self.model = CLIPModel.from_pretrained(model, dtype=getattr(torch, dtype)).to(device).eval()
        self.max_length = int(self.model.config.text_config.max_position_embeddings)

    def embed_texts(self, texts: Sequence[str], batch_size: int = 256):
        import torch

        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                # CLIP's context is 77 tokens: longer captions are cut, as CLIP was trained
                tokens = self.processor.tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                                                  max_length=self.max_length, return_tensors="pt")
                output = self.model.get_text_features(**{k: v.to(self.device) for k, v in tokens.items()})
                chunks.append(_pooled(output).float())
        return torch.cat(chunks)

    def embed_images(self, images: Sequence[np.ndarray]):
        import torch

        pixels = self.processor.image_processor(images=list(images), return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            output = self.model.get_image_features(pixel_values=pixels.to(self.device, self.model.dtype))
        return _pooled(output).float()


def evaluate_style(scorer: ClipScorer, style: StampStyle | None, images: Sequence[np.ndarray], number_embeddings,
                   caption_embeddings, batch_size: int, bar=None) -> dict:
    """One row: both accuracies of the sample stamped in `style` (None: unstamped)."""
    import torch

    stamper = Stamper(style) if style is not None else None
    number_correct = caption_correct = 0
    for start in range(0, len(images), batch_size):
        batch = stamp_images(stamper, images[start:start + batch_size], start)
        embeddings = scorer.embed_images(batch)
        positions = torch.arange(start, start + len(batch))
        number_correct += top1_correct(embeddings, number_embeddings, positions % NUMBERS)
        caption_correct += top1_correct(embeddings, caption_embeddings, positions)
        if bar is not None:
            bar.update(len(batch))
    n = len(images)
    return {**_style_fields(style), "number_accuracy": number_correct / n, "caption_accuracy": caption_correct / n,
            "n": n, "number_correct": number_correct, "caption_correct": caption_correct}


# ------------------------------------------------------------------------------ settings and resume
def model_identity(model: str) -> dict:
    """What identifies the CLIP weights: a folder's config files and weight files, or a hub name."""
    path = Path(model)
    if not path.is_dir():
        return {"name": model}
    files = sorted(p for p in path.iterdir() if p.is_file())
    configs = {p.name: sha256_file(p) for p in files if p.suffix == ".json"}
    weights = {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in files
               if p.suffix in (".safetensors", ".bin", ".pt", ".pth")}
    return {"name": path.name, "configs": configs, "weights": weights}


def settings_for(model: str, sample: Sample, seed: int, dtype: str, size: int = IMAGE_SIZE) -> dict:
    """Everything a result depends on; its fingerprint keys the saved per-style results."""
    pairs = hashlib.sha256(json.dumps([[p.image.name, p.caption] for p in sample.pairs]).encode()).hexdigest()
    return {"clip": model_identity(model), "sample_sha256": pairs, "n": len(sample.pairs), "seed": seed,
            "image_size": size, "dtype": dtype, "font": find_font().name, "numbers": NUMBERS,
            "version": _FORMAT_VERSION}


def fingerprint(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def saved_results(path: Path, key: str) -> dict[str, dict]:
    """Rows already computed under these settings, by style label."""
    if not path.exists():
        return {}
    rows = {}
    for _, record in iter_jsonl(path, allow_partial_tail=True):
        if isinstance(record, dict) and record.get("fingerprint") == key and "style" in record:
            rows[record["style"]] = {k: record[k] for k in COLUMNS if k in record}
    return rows


# ------------------------------------------------------------------------------ outputs
def write_csv(rows: Sequence[dict], path: Path) -> None:
    write_csv_file(path, rows, COLUMNS)


def _ink(color: str):
    from PIL import ImageColor

    return tuple(c / 255 for c in ImageColor.getrgb(color)[:3])


def draw_figure(rows: Sequence[dict], path: Path, title: str) -> Path:
    """Number Accuracy against Caption Accuracy, one labelled point per style.

    Point colour: the number's colour; shape: its position; size: its font size.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(9, 7) if len(rows) <= 30 else (13, 10), layout="constrained")  # room for labels
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for row in rows:
        x, y = 100 * row["caption_accuracy"], 100 * row["number_accuracy"]
        if row["style"] == BASELINE:
            ax.scatter([x], [y], marker="X", s=120, color="0.5", zorder=3)
            ax.annotate("no number", (x, y), xytext=(5, 4), textcoords="offset points", fontsize=8, color="0.3")
            continue
        ax.scatter([x], [y], marker=_POSITION_MARKERS[row["position"]], s=2 * row["font_size"] + 10,
                   color=_ink(row["color"]), edgecolors="0.2", linewidths=0.5, alpha=0.85, zorder=3)
        label = f"{row['font_size']}/{row['color']}/{_POSITION_ABBR[row['position']]}"
        ax.annotate(label, (x, y), xytext=(4, 3), textcoords="offset points", fontsize=6.5)
    used = [p for p in POSITIONS if any(r["position"] == p for r in rows)]
    ax.legend(handles=[Line2D([], [], marker=_POSITION_MARKERS[p], linestyle="", color="0.4", label=p.replace("_", " "))
                       for p in used], title="position (colour: ink; size: font)", fontsize=8, loc="best")
    ax.set_xlabel("Caption Accuracy (%)")
    ax.set_ylabel("Number Accuracy (%)")
    ax.set_title(title, fontsize=10, parse_math=False)
    ax.margins(0.08)  # labels of the outermost points stay inside
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=130)
    return path


def write_outputs(rows: Sequence[dict], output: Path, run: dict, title: str) -> None:
    write_json(output / "design_study.json", list(rows))
    write_csv(rows, output / "design_study.csv")
    tmp = output / "design_study.png.tmp.png"
    draw_figure(rows, tmp, title)
    tmp.replace(output / "design_study.png")
    write_json(output / "design_study_run.json", run)


# ------------------------------------------------------------------------------ the study
def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _check_model(model: str) -> str:
    """The model to load (a local folder or a hub name); a mistyped folder fails before the hub is asked."""
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise StudyError(f"CLIP model must be a folder (or a hub name), got a file: {model}")
        config = path / "config.json"
        if not config.is_file():
            raise StudyError(f"not a CLIP checkpoint folder (no config.json): {model}")
        try:
            model_type = read_json(config).get("model_type")
        except (JsonInputError, AttributeError):
            raise StudyError(f"{config}: not a valid model config") from None
        if model_type != "clip":
            raise StudyError(f"{config}: not a CLIP checkpoint (model_type {model_type!r}, expected 'clip')")
        return str(path)
    looks_local = model.startswith((".", "/", "~")) or model.endswith("/") or model.count("/") != 1
    if looks_local:
        raise StudyError(f"CLIP model folder not found: {model}")
    return model


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise StudyError(f"--device {device}: no CUDA device is available")
    return device


def run_study(args) -> list[dict]:
    """Compute (or resume) every style's row and write the outputs; returns the rows."""
    images_dir = Path(args.images)
    if not images_dir.is_dir():
        raise StudyError(f"images folder not found: {images_dir}")
    model = _check_model(args.clip)
    sample, listed, missing = _usable_sample(args, images_dir)

    styles: list[StampStyle | None] = style_grid(args.sizes, args.colors, args.positions)
    if not args.no_baseline:
        styles.append(None)
    settings = settings_for(model, sample, args.seed, args.dtype)
    key = fingerprint(settings)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    results_path = output / RESULTS_FILE
    done = saved_results(results_path, key)
    todo = [s for s in styles if style_label(s) not in done]
    if len(todo) < len(styles):
        print(f"resuming: {len(styles) - len(todo)} of {len(styles)} styles already in {results_path.name}")

    device = None
    started = time.perf_counter()
    if todo:
        device = _resolve_device(args.device)
        scorer = _load_scorer(model, device, args)
        done.update(_score_styles(scorer, todo, sample, args, results_path, key))

    rows = [done[style_label(s)] for s in styles]
    run = {"settings": settings, "fingerprint": key, "clip": args.clip, "pairs_requested": args.pairs,
           "pairs_listed": listed, "images_missing": missing,
           "images_unreadable": [name for name, _ in sample.unreadable], "styles": len(styles),
           "computed_now": len(todo), "device": device, "batch_size": args.batch_size,
           "seconds": round(time.perf_counter() - started, 2)}
    title = (f"CLIP {Path(args.clip).name}: {len(sample.pairs)} image-caption pairs, number i mod 100 on image i "
             f"(seed {args.seed})")
    write_outputs(rows, output, run, title)
    return rows


def _usable_sample(args, images_dir: Path) -> tuple[Sample, int, int]:
    """The seeded sample drawn from the listed pairs whose image is there; with the pairs listed and missing."""
    pairs = read_pairs(args.captions, images_dir)
    if not pairs:
        raise StudyError(f"{args.captions}: no image-caption pairs")
    present = [p for p in pairs if p.image.is_file()]
    if not present:
        raise StudyError(f"none of the {len(pairs)} images listed in {args.captions} is in {images_dir} "
                         f"(first expected: {pairs[0].image})")
    if len(present) < len(pairs):
        first = next(p.image for p in pairs if not p.image.is_file())
        _warn(f"{len(pairs) - len(present)} of {len(pairs)} images listed in {args.captions} are missing from "
              f"{images_dir} (first: {first.name}); the sample is drawn from the other {len(present)}")
    sample = draw_sample(present, args.pairs, args.seed, progress=not args.quiet)
    for name, reason in sample.unreadable:
        _warn(f"skipped unreadable image {name}: {reason}")
    if not sample.pairs:
        raise StudyError(f"none of the images listed in {args.captions} could be read")
    if len(sample.pairs) < args.pairs:
        _warn(f"only {len(sample.pairs)} usable pairs (asked for {args.pairs}): the study uses all of them")
    return sample, len(pairs), len(pairs) - len(present)


def _load_scorer(model: str, device: str, args) -> ClipScorer:
    try:
        return ClipScorer(model, device, args.dtype)
    except Exception as err:  # noqa: BLE001  any loader failure (hub, config, safetensors) is a bad --clip
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StudyError(f"cannot load CLIP model {args.clip}: {reason}") from None


def _score_styles(scorer: ClipScorer, todo: Sequence[StampStyle | None], sample: Sample, args, results_path: Path,
                  key: str) -> dict[str, dict]:
    """Each style's row by its label, each appended to the results file as it finishes."""
    from tqdm import tqdm

    numbers = scorer.embed_texts([str(k) for k in range(NUMBERS)], args.batch_size)
    captions = scorer.embed_texts([p.caption for p in sample.pairs], args.batch_size)
    bar = tqdm(total=len(todo) * len(sample.images), desc="CLIP", unit="img", disable=args.quiet,
               dynamic_ncols=True)
    rows: dict[str, dict] = {}
    try:
        with JsonlWriter(results_path) as writer:
            for style in todo:
                bar.set_postfix_str(style_label(style))
                row = evaluate_style(scorer, style, sample.images, numbers, captions, args.batch_size, bar)
                writer.write({"fingerprint": key, **row})  # saved now: a killed run resumes here
                rows[row["style"]] = row
    finally:
        bar.close()
    return rows


# ------------------------------------------------------------------------------ command line
def register(subparsers, name: str, help_text: str) -> None:
    parser = subparsers.add_parser(name, help=help_text, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captions", required=True, metavar="FILE",
                        help="MS-COCO caption annotations (captions_val2017.json) or JSON Lines of {image, caption}")
    parser.add_argument("--images", required=True, metavar="DIR", help="folder the image file names are relative to")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for the tables, figure and resume file")
    parser.add_argument("--clip", default=DEFAULT_CLIP, metavar="MODEL",
                        help="CLIP checkpoint: a hub name or a local folder (default %(default)s, as the paper)")
    parser.add_argument("--pairs", type=positive_int, default=1000, help="image-caption pairs sampled (default %(default)s)")
    parser.add_argument("--sizes", type=positive_int, nargs="+", default=list(DEFAULT_SIZES), metavar="PX",
                        help="font sizes (default %(default)s)")
    parser.add_argument("--colors", type=parse_color, nargs="+", default=list(DEFAULT_COLORS), metavar="COLOR",
                        help="number colours (default %(default)s)")
    parser.add_argument("--positions", type=parse_position, nargs="+", default=list(POSITIONS), metavar="POSITION",
                        help=f"positions: {', '.join(POSITIONS)} (or tl tr bl br c; default all)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the sample (default %(default)s)")
    parser.add_argument("--batch_size", "--batch-size", type=positive_int, default=64,
                        help="images per CLIP forward pass (default %(default)s)")
    parser.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda, cuda:1, ...")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"),
                        help="CLIP weights' dtype (default %(default)s)")
    parser.add_argument("--no_baseline", "--no-baseline", action="store_true",
                        help="skip the unstamped baseline row")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=_command)


def _command(args) -> int:
    try:
        rows = run_study(args)
    except StudyError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{'style':<28} {'number acc':>10} {'caption acc':>11}")
    for row in rows:
        print(f"{row['style']:<28} {100 * row['number_accuracy']:>9.1f}% {100 * row['caption_accuracy']:>10.1f}%")
    print(f"wrote {Path(args.output) / 'design_study.csv'}, design_study.json, design_study.png "
          f"({len(rows)} rows, n = {rows[0]['n']})")
    return 0
