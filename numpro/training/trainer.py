"""transformers' Trainer with what NumPro-FT adds: video inputs, the released save layout, logs.

- Frames arrive as uint8 and are normalised on the device (four times less data to move).
- The loss is the mean over a micro-batch's supervised tokens, divided by the accumulation
  steps: each sample weighs the same, as with the transformers version upstream trained on
  (recent versions weight by token count across the accumulated batch instead).
- A micro-batch whose videos could not be decoded contributes a zero loss through a dummy
  forward (every rank keeps stepping in lock-step); each such sample is counted and logged.
- Saving (checkpoints and the end) writes the released NumPro-FT layout; DeepSpeed's own
  checkpoint (optimizer state) sits beside it in checkpoint-N for resuming.
- Every log line gains samples/s since the previous one and the peak memory (GPU allocated,
  or the process's peak RSS on the CPU), and is appended to OUTPUT/train_log.jsonl, which holds
  one entry per step: a resumed run first drops what came after its checkpoint, a fresh run
  starts the file anew.
- With --group_by_modality_length (the default, as upstream's train.sh) samples come in
  upstream's length-grouped order (sampler.py), megabatches of batch x world x accumulation.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback

from .. import jsonio
from ..models.longva_lora import load_non_lora
from .sampler import ModalityLengthGroupedSampler
from .saving import save_released, trainable_state

logger = logging.getLogger(__name__)
LOG_NAME = "train_log.jsonl"
SKIPPED_NAME = "skipped_during_training.jsonl"


def peak_memory() -> dict[str, float]:
    """Peak memory so far, in GiB: GPU memory allocated by torch, or the process's peak RSS."""
    if torch.cuda.is_available():
        return {"peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 3)}
    import resource

    return {"peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}


class NumProTrainer(Trainer):
    def __init__(self, *args, clip=None, pad_id: int = 0, raw_config: dict | None = None,
                 preflight_numbers: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.clip = clip
        self.pad_id = pad_id
        self.raw_config = raw_config or {}
        self.model_accepts_loss_kwargs = False  # per-micro-batch mean, divided by the accumulation steps
        self._tick: tuple[float, int] | None = None
        self._skipped = 0
        self._sampler: ModalityLengthGroupedSampler | None = None
        self.add_callback(_TrainBegin(self, preflight_numbers or {}))

    # ------------------------------------------------------------------ sample order
    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if not getattr(self.args, "group_by_modality_length", False):
            return super()._get_train_sampler(train_dataset)
        # upstream's world size for the sampler: ranks x accumulation, so a megabatch is one optimizer step
        self._sampler = ModalityLengthGroupedSampler(
            dataset.modality_lengths, self.args.train_batch_size,
            self.args.world_size * self.args.gradient_accumulation_steps,
            self.args.data_seed if self.args.data_seed is not None else self.args.seed)
        return self._sampler

    def _run_epoch(self, *args, **kwargs):
        # On several processes accelerate's set_epoch does not reach the sampler through a resumed
        # run's batch-skipping loader; the epoch's order must still be the one the checkpoint saw.
        if self._sampler is not None and "epoch" in kwargs:
            self._sampler.set_epoch(kwargs["epoch"])
        return super()._run_epoch(*args, **kwargs)

    # ------------------------------------------------------------------ loss
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        skipped = inputs.pop("skipped", [])
        if skipped:
            self._record_skipped(skipped)
        if "frames" not in inputs:
            loss = self._dummy_loss(model)
            return (loss, None) if return_outputs else loss
        dtype = torch.bfloat16 if self.args.bf16 else torch.float16 if self.args.fp16 else None
        inputs["pixel_values"] = self.clip.normalize(inputs.pop("frames"), dtype)
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    def _dummy_loss(self, model):
        """Zero loss that still runs forward and backward, so collective steps stay aligned."""
        ids = torch.full((1, 1), self.pad_id, dtype=torch.long, device=self.args.device)
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        return logits.sum() * 0.0

    def _record_skipped(self, skipped) -> None:
        self._skipped += len(skipped)
        path = Path(self.args.output_dir) / (SKIPPED_NAME if self.args.process_index == 0
                                             else f"skipped_during_training.rank{self.args.process_index}.jsonl")
        jsonio.append_jsonl(path, [{"step": self.state.global_step, "record": index + 1, "video": name,
                                    "error": error} for index, name, error in skipped])
        for index, name, error in skipped:
            logger.warning("record %d (%s) skipped during training: %s", index + 1, name, error)

    # ------------------------------------------------------------------ logging
    def log(self, logs: dict, start_time: float | None = None) -> None:
        if "loss" in logs and self._tick is not None:
            now, step = time.time(), self.state.global_step
            then, last = self._tick
            samples = (step - last) * self.args.per_device_train_batch_size \
                * self.args.gradient_accumulation_steps * self.args.world_size
            if now > then and step > last:
                logs["samples_per_second"] = round(samples / (now - then), 4)
            self._tick = (now, step)
            logs.update(peak_memory())
            if self._skipped:
                logs["skipped_unreadable"] = self._skipped
        super().log(logs, start_time)
        if self.args.should_save:
            jsonio.append_jsonl(Path(self.args.output_dir) / LOG_NAME,
                                [{**logs, "step": self.state.global_step, "time": round(time.time(), 3)}])

    # ------------------------------------------------------------------ saving and resuming
    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        output_dir = output_dir or self.args.output_dir
        state = trainable_state(self.model)  # every rank: under ZeRO-3 it is a collective
        if self.args.should_save:
            save_released(self.model, output_dir, state, self.raw_config)
            torch.save(self.args, os.path.join(output_dir, "training_args.bin"))
            logger.info("saved the adapter in the released NumPro-FT layout to %s", output_dir)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        # Without DeepSpeed only the adapter is restored by transformers; the projector lives in
        # non_lora_trainables.bin (DeepSpeed's own checkpoint restores both).
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        target = model if model is not None else self.model
        network = target.get_base_model() if hasattr(target, "get_base_model") else target
        load_non_lora(network, resume_from_checkpoint)


def truncate_log(path: Path, step: int) -> None:
    """Keep the log entries of steps up to `step` (a resumed checkpoint's); none when `step` is 0."""
    if not path.exists():
        return
    kept = [entry for _, entry in jsonio.iter_jsonl(path, allow_partial_tail=True)
            if entry.get("step", 0) <= step] if step else []
    jsonio.write_jsonl(path, kept)


class _TrainBegin(TrainerCallback):
    """At the start (after a resume's state is restored): start the clock, drop log entries the
    checkpoint superseded, log the pre-flight numbers (once: a resumed run logged them already
    unless the scan now finds something else)."""

    def __init__(self, trainer: NumProTrainer, numbers: dict):
        self.trainer = trainer
        self.numbers = numbers

    def on_train_begin(self, args, state, control, **kwargs):
        self.trainer._tick = (time.time(), state.global_step)
        if args.should_save:
            truncate_log(Path(args.output_dir) / LOG_NAME, state.global_step)
        logged = [{k: v for k, v in entry.items() if k.startswith("preflight/")} for entry in state.log_history]
        if self.numbers and dict(self.numbers) not in logged:
            self.trainer.log(dict(self.numbers))
