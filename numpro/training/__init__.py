"""NumPro-FT training: LoRA on LongVA-7B-DPO over numbered 0.5-FPS clips, with DeepSpeed (SPEC 5).

Entry point: `python -m numpro.training` (scripts/train.sh runs it under DeepSpeed's launcher).
Modules, one job each:
  arguments     upstream's flags as HfArgumentParser dataclasses, and what they may not say
  conversation  the qwen_1_5 rendering of a training conversation and its supervision mask
  eligibility   whether a sample can train: its conversation and the token cap (shared with
                `numpro data check`)
  preflight     what of train_sft.json can train: folders, videos, then eligibility
  data          the dataset of kept samples (every frame, at most 240) and the collator
  lora          which parameters train (LoRA, projector) and their counts by group
  trainer       transformers' Trainer with video inputs, logging and the released save layout
  saving        the released NumPro-FT adapter folder
  train         main(): all of the above in order
  cli           `python -m numpro train FLAGS...` (one process; scripts/train.sh for several GPUs)
"""
