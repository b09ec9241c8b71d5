"""LLaVA-OneVision-7B and LLaVA-Video-7B (training-free NumPro) through transformers' own class.

Hub ids: llava-hf/llava-onevision-qwen2-7b-ov-hf and llava-hf/LLaVA-Video-7B-Qwen2-hf. The
numbered frames are passed in memory as one video; the checkpoint's processor resizes them for
SigLIP and expands the <video> placeholder. Greedy decoding, left padding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .base import PreparedBatch, Preprocessor, VideoLanguageModel
from .hf import default_attention, greedy_generate, pretrained, resolve_dtype

# The llava-hf OneVision checkpoints' chat template: media placeholders, then the text.
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + ' '}}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}{{ '<video>' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ '\n' + content['text'] }}"
    "{% endfor %}{{'<|im_end|>\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class LlavaOnevisionPreprocessor(Preprocessor):
    def __init__(self, processor):
        self.processor = processor
        self.processor.tokenizer.padding_side = "left"

    def render(self, text: str) -> str:
        messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}]
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def __call__(self, videos: Sequence[np.ndarray], texts: Sequence[str], fps: float) -> PreparedBatch:
        """The processor stacks videos into one tensor, so requests are grouped by frame count:
        tensors["groups"] is a list of (request positions, model inputs)."""
        prompts = [self.render(text) for text in texts]
        by_length: dict[int, list[int]] = {}
        for position, frames in enumerate(videos):
            by_length.setdefault(len(frames), []).append(position)
        groups = []
        for positions in by_length.values():
            inputs = self.processor(text=[prompts[i] for i in positions], videos=[np.asarray(videos[i]) for i in positions],
                                    padding=True, return_tensors="pt")
            groups.append((positions, dict(inputs)))
        return PreparedBatch({"groups": groups}, prompts)


class LlavaOnevisionModel(VideoLanguageModel):
    family = "llava_onevision"

    def __init__(self, model, processor):
        self.model = model
        self.preprocessor = LlavaOnevisionPreprocessor(processor)
        self.tokenizer = processor.tokenizer

    def generate(self, batch: PreparedBatch, max_new_tokens: int) -> list[str]:
        answers: list[str] = [""] * len(batch.prompts)
        for positions, tensors in batch.tensors["groups"]:
            texts = greedy_generate(self.model, self.tokenizer, tensors, max_new_tokens)
            for position, text in zip(positions, texts):
                answers[position] = text
        return answers


def load(
    model_path: str | Path,
    device: str = "cpu",
    dtype=None,
    random_init: bool = False,
    attn_implementation: str | None = None,
    device_map: str | None = None,
    processor_path: str | Path | None = None,
) -> LlavaOnevisionModel:
    import torch
    import transformers

    cls = transformers.LlavaOnevisionForConditionalGeneration
    dtype = resolve_dtype(device, dtype)
    attn_implementation = attn_implementation or default_attention(device)
    processor = transformers.AutoProcessor.from_pretrained(processor_path or model_path)
    if random_init:
        config = transformers.AutoConfig.from_pretrained(model_path)
        with torch.device(device):
            model = cls._from_config(config, dtype=dtype, attn_implementation=attn_implementation)
    else:
        model = pretrained(cls, model_path, device, dtype, attn_implementation, device_map)
    model.eval()
    return LlavaOnevisionModel(model, processor)


def build_tiny(output_dir: str | Path, seed: int = 0) -> Path:
    """A randomly initialised few-MB LLaVA-OneVision in the llava-hf layout (SigLIP + Qwen2)."""
    import torch
    import transformers

    from .tokenizer import build_qwen2_tokenizer

    output_dir = Path(output_dir)
    tokenizer = build_qwen2_tokenizer(["<image>", "<video>"])
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ["<|endoftext|>", "<|im_end|>", "<image>", "<video>"]}
    config = transformers.LlavaOnevisionConfig(
        vision_config={"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64,
                       "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 384, "patch_size": 14},
        text_config={"model_type": "qwen2", "vocab_size": len(tokenizer), "hidden_size": 32,
                     "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "num_key_value_heads": 1, "eos_token_id": ids["<|im_end|>"],
                     "pad_token_id": ids["<|endoftext|>"]},
        image_token_index=ids["<image>"], video_token_index=ids["<video>"],
        vision_feature_select_strategy="full", vision_feature_layer=-1,
    )
    torch.manual_seed(seed)
    model = transformers.LlavaOnevisionForConditionalGeneration(config)
    model.generation_config = transformers.GenerationConfig(
        eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"], do_sample=False
    )
    model.save_pretrained(output_dir)
    processor = transformers.LlavaOnevisionProcessor(
        image_processor=transformers.LlavaOnevisionImageProcessor(),
        video_processor=transformers.LlavaOnevisionVideoProcessor(),
        tokenizer=tokenizer, chat_template=CHAT_TEMPLATE, num_image_tokens=729,
        vision_feature_select_strategy="full",
    )
    processor.save_pretrained(output_dir)
    return output_dir
