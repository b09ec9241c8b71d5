"""A small real Qwen2 tokenizer, trained here, for the tiny local models (DESIGN 4).

Same class, pre-tokenizer (Qwen2's split regex + byte-level BPE) and special tokens as the
real checkpoints, with a vocabulary of a few hundred merges so tiny models stay a few MB.
Token ids differ from the real 151k vocabulary; configs take them from the tokenizer.
"""

from __future__ import annotations

from . import _corpus

QWEN2_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QWEN2_VL_SPECIAL_TOKENS = ["<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]


def build_qwen2_tokenizer(extra_special_tokens: list[str] | tuple[str, ...] = (), vocab_size: int = 700):
    """Train a byte-level BPE on a built-in English corpus and wrap it as a Qwen2Tokenizer."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
    from transformers import AddedToken
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX, Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>"],
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus.lines(), trainer)
    vocab = bpe.get_vocab()
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in _merges(bpe)]
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges, errors="replace")
    specials = [t for t in QWEN2_SPECIAL_TOKENS + list(extra_special_tokens) if t != "<|endoftext|>"]
    tokenizer.add_special_tokens({"additional_special_tokens": [AddedToken(t, special=True) for t in specials]})
    return tokenizer


def _merges(bpe) -> list:
    import json

    return json.loads(bpe.to_str())["model"]["merges"]
