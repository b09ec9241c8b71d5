"""NumPro-FT training: LoRA on LongVA-7B-DPO over numbered clips (`python -m numpro.training`).

One process per GPU under DeepSpeed's launcher (scripts/train.sh), or a single process alone.
Steps: parse upstream's flags; load the LongVA checkpoint as Qwen2 + CLIP (the Qwen2
architecture, not upstream's accidental Llama class, SPEC 5); add LoRA and print the trainable
parameters by group; run the pre-flight scan (main process; the others read its result); train
with transformers' Trainer (DeepSpeed when --deepspeed is given), resuming from the newest
checkpoint-N in output_dir unless told otherwise; save the released NumPro-FT layout.

Files in output_dir: preflight.json (the scan's numbers and every skipped sample),
preflight_samples.json (what trains), train_log.jsonl (every log line), trainer_state.json,
the adapter folder files, and checkpoint-N folders when --save_strategy asks for them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from .. import jsonio
from ..cli_args import default_workers
from ..datasets.videofolder import PROBE_WORKERS_CAP
from ..protocol import TOKENS_PER_FRAME
from . import arguments, preflight
from .lora import add_lora, describe, lora_config

logger = logging.getLogger("numpro.training")
REPORT_NAME = "preflight.json"
KEPT_NAME = "preflight_samples.json"


def setup_logging(training_args) -> None:
    level = logging.INFO if training_args.should_log else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"[numpro rank {training_args.process_index}] %(levelname)s %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def zero_stage(training_args) -> int | None:
    config = training_args.deepspeed
    if not config:
        return None
    if isinstance(config, str):
        with open(config, encoding="utf-8") as handle:
            config = json.load(handle)
    return int(config.get("zero_optimization", {}).get("stage", 0))


def load_network(model_args, data_args, training_args):
    """The LongVA model (numpro.models.longva) in the training dtype, on this rank's GPU when there is one."""
    import torch

    from ..models import longva

    dtype = torch.bfloat16 if training_args.bf16 else torch.float16 if training_args.fp16 else torch.float32
    # ZeRO-3 partitions the weights when the engine starts: keep the full copy off the GPU until then.
    on_gpu = torch.cuda.is_available() and zero_stage(training_args) != 3
    device = f"cuda:{training_args.local_process_index}" if on_gpu else "cpu"
    model = longva.load(model_args.model_name_or_path, device=device, dtype=dtype, max_frames=data_args.max_frames,
                        attn_implementation=model_args.attn_implementation)
    network = model.network
    network.config.use_cache = False
    # upstream sets these from the tokenizer: the cap applies to the spliced sequence
    network.config.tokenizer_model_max_length = training_args.model_max_length
    network.config.tokenizer_padding_side = "right"
    vision = network.vision_config
    side = vision.image_size // vision.patch_size // getattr(network.config, "mm_spatial_pool_stride", 2)
    if side * side != TOKENS_PER_FRAME:
        raise arguments.ArgumentError(f"{model_args.model_name_or_path}: {side * side} visual tokens per frame; "
                                      f"the token-cap rule assumes LongVA's {TOKENS_PER_FRAME}")
    return model


def run_preflight(data_args, training_args, tokenizer) -> tuple[list[preflight.Kept], dict]:
    """The scan on the main process; every other rank waits and reads its result (the same list)."""
    output = Path(training_args.output_dir)
    folders = preflight.source_folders(data_args.anet_video_folder, data_args.didemo_video_folder,
                                       data_args.internvid_video_folder, data_args.video_folder)
    with training_args.main_process_first(local=False, desc="pre-flight scan"):
        if training_args.process_index == 0:
            output.mkdir(parents=True, exist_ok=True)
            return _scan_and_write(data_args, training_args, tokenizer, folders, output)
        return _read_result(output)


def _scan_and_write(data_args, training_args, tokenizer, folders, output: Path):
    workers = data_args.preflight_workers or default_workers(PROBE_WORKERS_CAP)
    report = None
    try:
        report = preflight.scan(data_args.data_path, folders, tokenizer, training_args.model_max_length,
                                data_args.max_frames, data_args.video_decoder, workers,
                                progress=not training_args.disable_tqdm)
        logger.info("%s", report.table())
        jsonio.write_json(output / KEPT_NAME, [vars(k) for k in report.kept])
        preflight.check(report, data_args.strict_data)
    except Exception as exc:
        # The other ranks read this file after the barrier and stop with the same message.
        failed = report.to_json() if report is not None else {}
        jsonio.write_json(output / REPORT_NAME, {"status": "stopped", "error": str(exc), **failed})
        raise
    jsonio.write_json(output / REPORT_NAME, {"status": "ok", **report.to_json()})
    return report.kept, report.numbers()


def _read_result(output: Path):
    result = jsonio.read_json(output / REPORT_NAME)
    if result.get("status") != "ok":
        raise preflight.PreflightError(result.get("error", "the pre-flight scan stopped"))
    kept = [preflight.Kept(**k) for k in jsonio.read_json(output / KEPT_NAME)]
    return kept, preflight.ScanReport.from_json(result, kept).numbers()


def resume_point(training_args) -> str | None:
    """--resume_from_checkpoint PATH, or True (newest), or False/none; unset: newest in output_dir, if any."""
    from transformers.trainer_utils import get_last_checkpoint

    given = training_args.resume_from_checkpoint
    output = training_args.output_dir
    if given is not None and str(given).lower() in ("false", "no", "none"):
        return None
    if given is not None and str(given).lower() not in ("true", "yes"):
        return given
    last = get_last_checkpoint(output) if os.path.isdir(output) else None
    if last is None and given is not None:
        raise FileNotFoundError(f"--resume_from_checkpoint {given}: no checkpoint-N folder in {output}")
    return last


def main(argv=None) -> int:
    import transformers

    from ..models.longva_checkpoint import read_config
    from .data import ClipDataset, Collator
    from .trainer import NumProTrainer

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # DataLoader workers fork after tokenising
    model_args, data_args, training_args = arguments.parse(argv)
    setup_logging(training_args)
    raw_config = read_config(model_args.model_name_or_path)
    for warning in arguments.check(model_args, data_args, training_args, raw_config):
        logger.warning("%s", warning)

    transformers.set_seed(training_args.seed)
    model = load_network(model_args, data_args, training_args)
    peft_model = add_lora(model.network, lora_config(training_args.lora_r, training_args.lora_alpha,
                                                     training_args.lora_dropout, model_args.vision_lora),
                          train_vision=model_args.train_vision_lora)
    logger.info("%s", describe(peft_model))
    logger.info("sample order: %s", "upstream's length-grouped megabatches (--group_by_modality_length True)"
                if training_args.group_by_modality_length else "random (--group_by_modality_length False)")

    tokenizer = model.tokenizer
    kept, numbers = run_preflight(data_args, training_args, tokenizer)
    samples = preflight.read_samples(data_args.data_path)
    dataset = ClipDataset(samples, kept, tokenizer, model.preprocessor.clip, training_args.model_max_length,
                          data_args.max_frames, data_args.video_decoder)
    saved_config = {**raw_config, "tokenizer_model_max_length": training_args.model_max_length}
    trainer = NumProTrainer(model=peft_model, args=training_args, train_dataset=dataset,
                            data_collator=Collator(model.preprocessor.pad_id), clip=model.preprocessor.clip,
                            pad_id=model.preprocessor.pad_id, raw_config=saved_config, preflight_numbers=numbers)
    resume = resume_point(training_args)
    if resume:
        logger.info("resuming from %s", resume)
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_state()
    trainer.save_model(training_args.output_dir)
    return 0
