"""Command lines of the eval/ scripts: upstream's flag names and defaults, plus ours (DESIGN 2).

Each script in eval/ is one ScriptSpec; they differ only in the task, the model family and
upstream's names for the annotation and video flags.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import prompts, timeline
from ..argtypes import positive_float, positive_int
from ..cli_args import add_flag, add_progress, add_sampling, add_stamp_style, add_workers, stamp_style
from ..jsonio import JsonInputError, read_json, write_json
from ..models.qwen2_vl import FRAME_RULES
from ..upstream_io import MODES as VIDEO_IO_MODES
from ..video import BACKENDS
from . import run_record
from .runner import RunError, RunOptions, run
from .tasks import HighlightDetection, MomentRetrieval


@dataclass(frozen=True)
class ScriptSpec:
    task: str  # "mr" or "hd"
    description: str
    model_path: str
    annotations: str
    videos: str
    annotation_flags: tuple[str, ...]  # upstream's names first; --annotations is always added
    video_flags: tuple[str, ...]
    fps: float
    max_new_tokens: int
    family: str | None = None  # None: from the checkpoint's config
    max_frames: int | None = None
    api_only: bool = False  # the GPT-4o scripts: the OpenAI-compatible API backend, no local model


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the script's docstring as written and shows every default."""


def build_parser(spec: ScriptSpec) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=spec.description, formatter_class=_HelpFormatter)
    data = parser.add_argument_group("data")
    add_flag(data, *spec.annotation_flags, "--annotations", dest="annotations", default=spec.annotations,
                      help="test annotations (NumPro JSON list for moment retrieval, QVHighlights JSONL for highlights)")
    add_flag(data, *spec.video_flags, "--videos", dest="videos", default=spec.videos, help="folder of the videos")
    add_flag(data, "--limit", type=positive_int, default=None, help="evaluate only the first N queries")

    out = parser.add_argument_group("output")
    default_name = "<annotations>_<model>[_<adapter>]_<numpro|plain>_<fps>fps.jsonl"
    if spec.task == "hd":
        add_flag(out, "--output_dir", default="results", help="folder of the predictions")
        add_flag(out, "--output_name", default=None, help=f"predictions file name (.jsonl added); default {default_name}")
        add_flag(out, "--save_path", default=None, help="predictions file (overrides --output_dir/--output_name)")
    else:
        add_flag(out, "--save_path", default=None, help=f"predictions file (JSON Lines); default results/{default_name}")
    add_flag(out, "--overwrite", action="store_true",
                     help="discard the predictions, metrics and run record already at the save path and start afresh "
                          "(without it a rerun resumes, and only a run with the same answer-changing settings)")
    add_flag(out, "--dump_frames", type=Path, default=None,
                     help="also write the exact numbered frames fed to the model as PNG to DIR/<video>/")
    add_flag(out, "--debug", action="store_true", help="show the full traceback of an error (or set NUMPRO_DEBUG=1)")

    if spec.api_only:
        _add_api_arguments(parser, spec)
        _add_protocol_arguments(parser, spec)
        _add_speed_arguments(parser, spec)
        return parser
    model = parser.add_argument_group("model")
    add_flag(model, "--model_path", default=spec.model_path, help="checkpoint folder or hub id")
    if spec.family == "longva":
        add_flag(model, "--lora_path", default=None, help="NumPro-FT LoRA checkpoint to merge (released layout)")
    add_flag(model, "--device", default=None, help="cuda:N or cpu (default: this rank's GPU, else cpu)")
    if spec.family != "longva":
        add_flag(model, "--device_map", default=None, help="'auto' spreads a model too large for one GPU")
    add_flag(model, "--dtype", default=None, choices=["bfloat16", "float16", "float32"],
                       help="default on GPU: float16 for LongVA (as upstream), bfloat16 otherwise; float32 on CPU")
    add_flag(model, "--attn_implementation", default=None, help="default: flash_attention_2 if installed, else sdpa")
    add_flag(model, "--random_init", action="store_true",
                       help="build the model from --model_path's config without weights (speed measurements only)")
    add_flag(model, "--processor_path", default=None, help="tokenizer/processor folder for --random_init")
    if spec.family != "longva":
        _add_api_arguments(parser, spec)
    _add_protocol_arguments(parser, spec)
    _add_speed_arguments(parser, spec)
    return parser


def _add_api_arguments(parser: argparse.ArgumentParser, spec: ScriptSpec) -> None:
    from ..models import api

    api.add_arguments(parser, api_only=spec.api_only)


def _add_protocol_arguments(parser: argparse.ArgumentParser, spec: ScriptSpec) -> None:
    protocol = parser.add_argument_group("protocol")
    if spec.task == "mr":
        add_flag(protocol, "--input_format", default=None,
                              help="question template ({} = query); default: upstream's frame question, or its "
                                   "seconds counterpart with --stamp_text seconds")
        add_flag(protocol, "--instruction", default=None,
                              help="prepended to the question, no space; default: upstream's sentence about the "
                                   "red numbers (for --stamp_text seconds: that they give the time in seconds)")
    else:
        add_flag(protocol, "--input_format", default=None,
                              help="full prompt template ({} = query); default: the model family's upstream prompt")
    add_flag(protocol, "--no_numbers", action="store_true",
                          help="baseline: same frames without stamped numbers and without the instruction")
    add_flag(protocol, "--max_new_tokens", type=positive_int, default=spec.max_new_tokens)
    add_flag(protocol, "--number_fraction", type=_fraction, default=1.0,
                          help="number only this fraction of the sampled frames (paper Fig. 7); the rest stay plain")
    add_flag(protocol, "--number_sampling", default="uniform", choices=timeline.NUMBER_SAMPLINGS,
                          help="which frames carry numbers under --number_fraction: evenly spaced, or a seeded choice")
    add_flag(protocol, "--number_seed", type=int, default=0, help="seed of --number_sampling random")
    add_flag(protocol, "--video_io", default="exact", choices=VIDEO_IO_MODES,
                          help="exact: the stamped frames go to the model as they are; upstream: first written "
                               "with OpenCV's mp4v and decoded again, as upstream's scripts did (lossy)")
    add_sampling(parser, fps=spec.fps, max_frames=spec.max_frames)
    # moment retrieval may show times instead of numbers (Tab. 9); highlight answers name frames
    add_stamp_style(parser, title="number style" + ("" if spec.task == "mr" else " (--stamp_text number only)"))
    if spec.family is None and not spec.api_only:
        add_flag(protocol, "--frame_rule", default="upstream", choices=FRAME_RULES,
                              help="Qwen2-VL: upstream = the frames qwen-vl-utils 0.0.8 fed the paper's runs (an even "
                                   "count: odd K drops one middle frame; smaller frames from 342 on); plain = all K")


def _fraction(text: str) -> float:
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _add_speed_arguments(parser: argparse.ArgumentParser, spec: ScriptSpec) -> None:
    speed = parser.add_argument_group("speed")
    add_flag(speed, "--batch_size", type=positive_int, default=1,
                       help="queries per generate() call (left padding); API backend: requests sent together")
    add_workers(speed, cap=2, what="DataLoader processes decoding the next batches")
    add_flag(speed, "--backend", default="auto", choices=BACKENDS, help="video decoder")
    add_progress(speed)




def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-." else "_" for c in str(text).strip("/"))
    return keep.strip("_.") or "model"


def default_save_path(spec: ScriptSpec, args) -> Path:
    """results/<annotations>_<model>[_<adapter>]_<numpro|seconds|plain>_<fps>fps[_<other settings>].jsonl:
    runs of other models, adapters or protocols never share a default file (the run record would
    refuse to mix them); every protocol flag away from its default adds a part to the name."""
    if _uses_api(spec, args):
        from ..models import api

        model = api.model_name(args)
    else:
        model = Path(str(args.model_path).rstrip("/")).name
    parts = [Path(args.annotations).stem, _slug(model)]
    if getattr(args, "lora_path", None):
        parts.append(_slug(Path(str(args.lora_path).rstrip("/")).name))
    labels = "plain" if args.no_numbers else ("seconds" if args.stamp_text == "seconds" else "numpro")
    parts.append(f"{labels}_{args.fps:g}fps")
    parts += _protocol_parts(spec, args)
    name = "_".join(parts) + ".jsonl"
    return Path(getattr(args, "output_dir", None) or "results") / name


def _protocol_parts(spec: ScriptSpec, args) -> list[str]:
    """Name parts for the protocol flags that differ from their defaults."""
    from .. import protocol as p

    parts = []
    if args.size != p.FRAME_SIZE:
        parts.append(f"{args.size}px")
    if (args.max_frames or None) != spec.max_frames:
        parts.append(f"mf{args.max_frames or 'all'}")
    if not args.no_numbers:
        style = (args.font_size, args.color, args.position)
        if style != (p.FONT_SIZE, p.COLOR, p.POSITION):
            parts.append(_slug(f"{args.font_size}-{args.color}-{args.position}"))
        if args.font:
            parts.append(_slug("font-" + Path(args.font).stem))
        if args.number_fraction < 1:
            seed = f"{args.number_seed}" if args.number_sampling == "random" else ""
            parts.append(f"nf{args.number_fraction:g}{args.number_sampling}{seed}")
    if getattr(args, "frame_rule", "upstream") != "upstream":
        parts.append(f"{args.frame_rule}frames")
    if args.video_io != "exact":
        parts.append("mp4v")
    return parts


def _save_path(spec: ScriptSpec, args) -> Path:
    if args.save_path:
        return Path(args.save_path)
    if spec.task == "hd" and args.output_name:
        name = args.output_name if Path(args.output_name).suffix else args.output_name + ".jsonl"
        return Path(args.output_dir) / name
    return default_save_path(spec, args)


def _uses_api(spec: ScriptSpec, args) -> bool:
    return spec.api_only or getattr(args, "api_base", None) is not None


def resolve_family(spec: ScriptSpec, args) -> str:
    """The checkpoint's family, checked against what the script is for (no weights are read)."""
    from ..models.base import FAMILIES, ModelError, check_checkpoint, detect_family

    if _uses_api(spec, args):
        from ..models import api

        api.validate(args)
        return "api"
    hub = FAMILIES[spec.family].hub if spec.family else True
    family = detect_family(args.model_path, hub) if not (spec.family and args.random_init) else spec.family
    script = FAMILIES[family].scripts.format(task=spec.task)
    if spec.family == "longva" and family != "longva":
        raise ModelError(f"{args.model_path} is a {family} checkpoint; this script expects LongVA (LLaVA layout, "
                         f"model_type llava_qwen): use {script}")
    if spec.family is None and family == "longva":
        raise ModelError(f"{args.model_path} is a LongVA checkpoint; this script loads transformers-native families "
                         f"(Qwen2-VL, Qwen2.5-VL, LLaVA-OneVision/Video): use {script}")
    check_checkpoint(args.model_path, family, lora_path=getattr(args, "lora_path", None),
                     processor_path=args.processor_path, random_init=args.random_init)
    return family


def _check_template(template: str | None) -> None:
    """--input_format holds the query's place as one `{}`; anything else would drop or break it."""
    if template is None:
        return
    try:
        filled = template.format("\x00")
    except (IndexError, KeyError, ValueError):
        filled = ""
    if template.count("{}") != 1 or filled.count("\x00") != 1:
        raise RunError(f"--input_format must hold exactly one {{}} where the query goes (write {{{{ and }}}} for "
                       f"literal braces); got {template!r}", exit_code=2)


def _task(spec: ScriptSpec, args, family: str):
    _check_template(args.input_format)
    if spec.task == "mr":
        seconds = args.stamp_text == "seconds"
        question = args.input_format or (prompts.MR_QUESTION_SECONDS if seconds else prompts.MR_QUESTION)
        instruction = args.instruction or (prompts.INSTRUCTION_SECONDS if seconds else prompts.INSTRUCTION)
        return MomentRetrieval(question, None if args.no_numbers else instruction,
                               units="seconds" if seconds and not args.no_numbers else "frames")
    from ..models.base import hd_prompt_style

    return HighlightDetection(args.input_format, numbers=not args.no_numbers, style=hd_prompt_style(family))


def _model_loader(spec: ScriptSpec, args, family: str, save_path: Path | None = None):
    def load(device: str):
        model = _load(device)
        if save_path is not None and family != "api":
            _complete_generation_record(args.model_path, save_path)
        return model

    def _load(device: str):
        import torch

        from ..models.base import FAMILIES, load_model

        if family == "api":
            from ..models import api

            return api.load(args)
        kwargs = dict(device=args.device or device, random_init=args.random_init,
                      attn_implementation=args.attn_implementation, **FAMILIES[family].load_args(args))
        if args.dtype:
            kwargs["dtype"] = getattr(torch, args.dtype)
        return load_model(args.model_path, family, **kwargs)

    return load


def _complete_generation_record(model_path: str, save_path: Path) -> None:
    """A hub model not yet in the local cache when the run started has its generation settings
    readable only once downloaded: write them into the run record then, read the same way a
    resume reads them (from the cache), so that the two compare equal."""
    from .runner import Dist

    path = run_record.record_path(save_path)
    if Path(model_path).exists() or Dist.from_env().rank != 0 or not path.is_file():
        return
    record = read_json(path)
    generation = record.get("generation", {})
    config = run_record.read_generation_config(model_path)
    if config and generation.get("repetition_penalty") is None and generation.get("eos_token_id") is None:
        generation.update(repetition_penalty=config.get("repetition_penalty"), eos_token_id=config.get("eos_token_id"))
        write_json(path, dict(record, generation=generation))


def _model_section(spec: ScriptSpec, args, family: str, device: str) -> dict:
    """Model identity and numerics, as the run record states them (no weights are loaded)."""
    if family == "api":
        from ..models import api

        return {"family": "api", "identity": {"api_model": api.model_name(args)}, "adapter": None,
                "api": api.describe(args)}
    from ..models.base import FAMILIES
    from ..models.hf import default_attention

    declared = FAMILIES[family]
    dtype = args.dtype or (declared.gpu_dtype if str(device).startswith("cuda") else "float32")
    attn = args.attn_implementation or declared.attention or default_attention(device)
    lora = getattr(args, "lora_path", None)
    return {
        "path": str(args.model_path),
        "family": family,
        "identity": run_record.model_identity(args.model_path),
        "adapter": None if lora is None else {"path": str(lora), "sha256": run_record.adapter_identity(lora)},
        "dtype": dtype,
        "attn_implementation": attn,
        "random_init": bool(args.random_init),
        "processor_path": None if args.processor_path is None else str(args.processor_path),
    }


def _generation_section(args, family: str) -> dict:
    if family == "api":
        return {"temperature": 0, "max_tokens": args.max_new_tokens, "seed": getattr(args, "seed", None)}
    config = run_record.read_generation_config(args.model_path)
    section = {"max_new_tokens": args.max_new_tokens, "do_sample": False,
               "repetition_penalty": config.get("repetition_penalty"), "eos_token_id": config.get("eos_token_id")}
    if _family(family).stop_strings:
        section["stop_strings"] = list(_family(family).stop_strings)
    return section


def build_run_record(spec: ScriptSpec, args, task, options: RunOptions, family: str, device: str) -> dict:
    """Everything that produced the predictions (DESIGN 2: run records, contract)."""
    from ..stamp import find_font
    from .runner import Dist

    font = find_font(args.font)
    annotations = Path(args.annotations)
    return {
        "script": run_record.script_name(),
        "task": spec.task,
        "arguments": run_record.plain({k: v for k, v in vars(args).items() if k != "debug"}),
        "protocol": {
            "fps": options.fps,
            "size": options.size,
            "max_frames": options.max_frames or None,
            "frame_rule": "frame k = source frame nearest to k/fps; over max_frames keep linspace(0, K-1, max_frames) "
                          "truncated, each keeping its number",
            "frame_selection": "all" if family == "api" else _family(family).frame_selection(args),
            "video_io": options.video_io,
            "numbers": options.numbers,
            "stamp_text": options.stamp_text if options.numbers else None,
            "number_fraction": options.number_fraction,
            "number_sampling": options.number_sampling if options.number_fraction < 1 else None,
            "number_seed": options.number_seed if options.number_sampling == "random" and options.number_fraction < 1
            else None,
            "stamp": dict(options.style.as_dict(), font_sha256=run_record.sha256_file(font)) if options.numbers else None,
        },
        "prompt": {"template": task.prompt_template()},
        "model": _model_section(spec, args, family, device),
        "generation": _generation_section(args, family),
        "annotations": {"path": str(annotations), "sha256": run_record.sha256_file(annotations)},
        "videos": {"path": str(args.videos)},
        "versions": run_record.versions(),
        "world_size": Dist.from_env().world,
        "started": run_record.now(),
    }


def _family(name: str):
    from ..models.base import FAMILIES

    return FAMILIES[name]


def _debug(args) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get("NUMPRO_DEBUG") == "1"


class _Console(logging.Handler):
    """The run's messages as plain lines: INFO on stdout, warnings on stderr (looked up per line,
    so a caller that swaps sys.stdout, as pytest does, sees them)."""

    def emit(self, record: logging.LogRecord) -> None:
        stream = sys.stdout if record.levelno < logging.WARNING else sys.stderr
        stream.write(self.format(record) + "\n")
        stream.flush()


def console_logging() -> None:
    """Show the package's INFO messages (the runner's progress lines and summary); idempotent."""
    logger = logging.getLogger("numpro")
    if not any(isinstance(h, _Console) for h in logger.handlers):
        logger.addHandler(_Console())
        logger.setLevel(logging.INFO)
        logger.propagate = False


def main(spec: ScriptSpec, argv=None) -> int:
    args = build_parser(spec).parse_args(argv)
    console_logging()
    try:
        return _main(spec, args)
    except (JsonInputError, run_record.RunMismatch, ValueError, OSError) as err:  # DataError is a JsonInputError
        # a bad path or file: one message naming it, no traceback (unless --debug)
        if _debug(args):
            raise
        from ..models.base import ModelError

        ours = isinstance(err, (JsonInputError, run_record.RunMismatch, ModelError))
        hint = "" if ours else f" ({type(err).__name__}; --debug shows where)"
        print(f"error: {err}{hint}", file=sys.stderr)
        return 2
    except RunError as err:
        if _debug(args):
            raise
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code


def _main(spec: ScriptSpec, args) -> int:
    for path, what, flag in [(Path(args.annotations), "annotation file", "--annotations"),
                             (Path(args.videos), "video folder", "--videos")]:
        if not path.exists():
            raise RunError(f"{what} not found: {path} (see data/README.md, or pass {flag})", exit_code=2)
    if spec.task == "hd" and args.stamp_text != "number":
        raise RunError("--stamp_text seconds is for moment retrieval (paper Tab. 9); highlight answers name frame "
                       "numbers", exit_code=2)
    family = resolve_family(spec, args)
    options = RunOptions(
        annotations=Path(args.annotations),
        videos=Path(args.videos),
        save_path=_save_path(spec, args),
        fps=args.fps,
        size=args.size,
        max_frames=args.max_frames or None,
        numbers=not args.no_numbers,
        style=stamp_style(args),
        batch_size=args.concurrency if family == "api" else args.batch_size,  # API: requests sent together
        max_new_tokens=args.max_new_tokens,
        limit=args.limit,
        workers=args.workers,
        backend=args.backend,
        dump_frames=args.dump_frames,
        progress=not args.no_progress,
        video_io=args.video_io,
        number_fraction=args.number_fraction,
        stamp_text=args.stamp_text,
        number_sampling=args.number_sampling,
        number_seed=args.number_seed,
        overwrite=args.overwrite,
    )
    if family == "api" and args.dry_run is not None:
        # --dry_run: the requests go to files in DIR, and their dry_run records stay there too
        options.save_path, options.overwrite = Path(args.dry_run) / "predictions.jsonl", True
    task = _task(spec, args, family)
    from .runner import Dist, default_device

    device = getattr(args, "device", None) or default_device(Dist.from_env())
    record = build_run_record(spec, args, task, options, family, device)
    if family != "api":  # the loader uses exactly the dtype and attention the record states
        args.dtype, args.attn_implementation = record["model"]["dtype"], record["model"]["attn_implementation"]
    if family == "api":
        from ..models import api

        options.usage_summary = lambda records: api.usage_summary(
            records, args.price_per_mtok_in, args.price_per_mtok_out)
    run(task, options, _model_loader(spec, args, family, options.save_path), device=getattr(args, "device", None), run_record=record)
    return 0
