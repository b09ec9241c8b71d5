"""LongVA-7B-DPO ("llava_qwen" LLaVA-format checkpoint) and NumPro-FT on transformers' modules.

What matches upstream (LongVA + NumPro's eval/numpro_ft_*.py), SPEC 5:
- the checkpoint folder as downloaded, read strictly (longva_checkpoint.py); embeddings and
  lm_head cut to len(tokenizer) rows; CLIP weights from the LongVA checkpoint itself;
- the qwen_1_5 prompt with one `<image>` replaced by T*144 visual tokens (longva_inputs.py,
  longva_arch.py); truncation to config.tokenizer_model_max_length; 1-D positions;
- pooling forced to stride 2 / average, as upstream's eval overrides the config;
- greedy decoding with the checkpoint's generation_config.json on top (repetition_penalty
  1.05) over the generated tokens plus one leading bos (`<|endoftext|>`) per request: upstream's
  generate(inputs_embeds=...) on transformers 4.37.2 starts input_ids as [bos], so the penalty
  counts that token too; stop at <|im_end|>; answers stripped;
- NumPro-FT: the released adapter folder (projector + LoRA incl. CLIP q/k/v) merged
  (longva_lora.py); fp16 on GPU by default, the dtype upstream evaluated in; sdpa attention.
Batches are left padded after splicing (upstream ran one request at a time).
"""

from __future__ import annotations

import functools
from pathlib import Path

from ..timeline import DEFAULT_MAX_FRAMES
from .base import PreparedBatch, VideoLanguageModel
from .longva_inputs import STOP_STRING, LongVAPreprocessor
from .longva_tiny import build_tiny  # noqa: F401  (public API)

__all__ = ["LongVAModel", "LongVAPreprocessor", "build_tiny", "leading_bos_repetition_penalty", "load"]

ENDOFTEXT = "<|endoftext|>"

# eval/numpro_ft_*.py pass overwrite_config={"mm_spatial_pool_stride": 2, "mm_spatial_pool_mode": "average"}
EVAL_POOLING = {"mm_spatial_pool_stride": 2, "mm_spatial_pool_mode": "average"}


class LongVAModel(VideoLanguageModel):
    family = "longva"

    def __init__(self, network, preprocessor: LongVAPreprocessor):
        self.network = network
        self.preprocessor = preprocessor
        self.tokenizer = preprocessor.tokenizer

    @property
    def device(self):
        return self.network.device

    @property
    def dtype(self):
        return self.network.dtype

    def stop_token_ids(self) -> list[int]:
        """generation_config's eos ids plus <|im_end|> (upstream's keyword stop)."""
        eos = self.network.generation_config.eos_token_id
        ids = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
        im_end = self.tokenizer.convert_tokens_to_ids(STOP_STRING)
        return ids + [im_end] if im_end not in ids else ids

    def bos_token_id(self) -> int:
        """The id upstream's generate(inputs_embeds=...) put first in input_ids (transformers 4.37.2).

        4.37.2 takes generation_config.bos_token_id (and raises when it is None); we fall back to
        the tokenizer's `<|endoftext|>`, the bos every Qwen2 / LongVA generation config names.
        """
        bos = self.network.generation_config.bos_token_id
        if isinstance(bos, (list, tuple)):
            bos = bos[0] if bos else None
        if bos is None:
            bos = self.tokenizer.get_vocab().get(ENDOFTEXT)
            if bos is None:
                raise ValueError(f"generation_config has no bos_token_id and the tokenizer has no {ENDOFTEXT}")
        return int(bos)

    def decoding(self, max_new_tokens: int) -> dict:
        """generate() arguments: greedy, with the checkpoint's repetition penalty as upstream applied it.

        The penalty's token history is each row's generated tokens plus one leading bos, as in
        upstream's call (see `leading_bos_repetition_penalty`). It is passed as our own processor:
        transformers' built-in one would skip the first `left padding` generated tokens of padded
        rows when the prompt is given as embeddings.
        """
        from transformers import LogitsProcessorList

        config = self.network.generation_config
        processors = LogitsProcessorList()
        if config.repetition_penalty not in (None, 1.0):
            processors.append(leading_bos_repetition_penalty(float(config.repetition_penalty), self.bos_token_id()))
        pad = config.pad_token_id if config.pad_token_id is not None else self.preprocessor.pad_id
        return dict(
            max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, temperature=None, top_p=None,
            top_k=None, repetition_penalty=1.0, eos_token_id=self.stop_token_ids(), pad_token_id=pad,
            logits_processor=processors,
        )

    def prepare(self, batch: PreparedBatch):
        """Device tensors -> (inputs_embeds, attention_mask) of the spliced, left-padded batch."""
        t = batch.tensors
        pixels = self.preprocessor.clip.normalize(t["frames"].to(self.device), self.dtype)
        return self.network.embed_multimodal(
            t["input_ids"].to(self.device), t["attention_mask"].to(self.device), pixels, t["frame_counts"]
        )

    def generate(self, batch: PreparedBatch, max_new_tokens: int) -> list[str]:
        import torch

        with torch.inference_mode():
            embeds, mask = self.prepare(batch)
            # Only embeddings go in, so the output holds the new tokens alone.
            out = self.network.generate(inputs_embeds=embeds, attention_mask=mask, **self.decoding(max_new_tokens))
        texts = self.tokenizer.batch_decode(out, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        return [text.strip() for text in texts]


@functools.cache
def _leading_bos_class():
    from transformers import RepetitionPenaltyLogitsProcessor

    class LeadingBosRepetitionPenalty(RepetitionPenaltyLogitsProcessor):
        """transformers' repetition penalty over [bos] + the tokens generated so far, per row."""

        def __init__(self, penalty: float, bos_token_id: int):
            super().__init__(penalty)
            self.bos_token_id = int(bos_token_id)

        def __call__(self, input_ids, scores):
            import torch

            bos = torch.full((input_ids.shape[0], 1), self.bos_token_id, dtype=torch.long, device=input_ids.device)
            return super().__call__(torch.cat([bos, input_ids.to(torch.long)], dim=1), scores)

    return LeadingBosRepetitionPenalty


def leading_bos_repetition_penalty(penalty: float, bos_token_id: int):
    """The repetition penalty of upstream's LongVA eval: generate(inputs_embeds=...) on transformers
    4.37.2 starts each row's input_ids as [bos] and appends the generated tokens, and its
    RepetitionPenaltyLogitsProcessor penalises every id in input_ids once (a positive logit is
    divided by the penalty, a negative one multiplied). Newer transformers start from no ids, so
    the bos (`<|endoftext|>`, also a stop id) escapes the penalty there; this puts it back."""
    return _leading_bos_class()(penalty, bos_token_id)


def load_tokenizer(model_path: str | Path, raw_config: dict, processor_path: str | Path | None = None):
    """The checkpoint's tokenizer plus the tokens upstream's builder adds for the config's mm flags."""
    from transformers import Qwen2Tokenizer

    source = processor_path or model_path
    if (Path(source) / "tokenizer_config.json").is_file():
        tokenizer = Qwen2Tokenizer.from_pretrained(source)  # llava_qwen: always Qwen2's tokenizer
    else:
        from .tokenizer import build_qwen2_tokenizer

        # Random-weight measurements from configs/ only: Qwen2's special tokens, small vocabulary.
        tokenizer = build_qwen2_tokenizer()
    if raw_config.get("mm_use_im_patch_token", True):
        tokenizer.add_tokens(["<im_patch>"], special_tokens=True)
    if raw_config.get("mm_use_im_start_end", False):
        tokenizer.add_tokens(["<im_start>", "<im_end>"], special_tokens=True)
    return tokenizer


def read_generation_config(model_path: str | Path):
    from transformers import GenerationConfig

    if (Path(model_path) / "generation_config.json").is_file():
        return GenerationConfig.from_pretrained(model_path)
    return GenerationConfig()


def load(
    model_path: str | Path,
    lora_path: str | Path | None = None,
    device: str = "cpu",
    dtype=None,
    random_init: bool = False,
    max_frames: int | None = DEFAULT_MAX_FRAMES,
    attn_implementation: str | None = None,
    processor_path: str | Path | None = None,
) -> LongVAModel:
    """Load a LongVA checkpoint folder (and a NumPro-FT adapter folder, merged).

    `random_init=True` builds the full network from `model_path`'s config.json without reading
    weights (GPU measurements from configs/longva_7b_dpo); on device "meta" nothing is allocated.
    Its vocabulary keeps config.vocab_size rows; the tokenizer is `processor_path`'s (the eval's --processor_path), else a small
    one with Qwen2's special tokens.
    """
    import torch

    from .longva_checkpoint import build_network, clip_preprocessing, language_config, load_weights, read_config, vision_config
    from .longva_lora import apply_lora

    raw = read_config(model_path)
    tokenizer = load_tokenizer(model_path, raw, processor_path)
    if dtype is None:
        dtype = torch.float16 if str(device).startswith("cuda") else torch.float32
    attn = attn_implementation or "sdpa"  # upstream's eval picks sdpa on torch >= 2.1.2
    config = language_config(raw, attn)
    for key, value in EVAL_POOLING.items():
        setattr(config, key, value)
    rows = int(raw.get("vocab_size", len(tokenizer)))
    if not random_init:
        if len(tokenizer) > rows:
            raise ValueError(f"{model_path}: tokenizer has {len(tokenizer)} tokens, the checkpoint {rows} rows")
        rows = len(tokenizer)
    network = build_network(config, vision_config(raw, model_path, attn), rows, device, dtype, initialize=random_init)
    if not random_init:
        load_weights(network, model_path)
    if lora_path:
        network = apply_lora(network, lora_path)
    network.generation_config = read_generation_config(model_path)
    preprocessor = LongVAPreprocessor(tokenizer, clip_preprocessing(raw, model_path), max_frames)
    return LongVAModel(network.eval(), preprocessor)
