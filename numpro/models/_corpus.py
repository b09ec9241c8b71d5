"""Text the tiny tokenizer is trained on: the prompts, answers in their formats, and common words."""

from __future__ import annotations

from .. import prompts

_WORDS = (
    "a person is walking into the room and opens the door then sits down on a chair holding a cup of "
    "coffee while talking on the phone; someone takes a book from the shelf, puts it on the table, "
    "laughs, eats a sandwich, closes the window, turns on the light, runs outside with a dog in the park. "
    "The man and the woman cook food in the kitchen. A girl plays guitar. People dance at a party. "
    "You are a helpful assistant. The video shows what happens. Yes no maybe. From Frame to Frame. "
    "The highlight frames are in the frames. Their saliency scores are"
)


def lines():
    yield prompts.INSTRUCTION
    yield prompts.MR_QUESTION
    yield prompts.HD_PROMPT_QWEN2_VL
    yield prompts.HD_PROMPT_NUMPRO_FT
    yield _WORDS
    for n in range(0, 300):
        yield f"From Frame {n} to Frame {n + 7}. From {n} to {n + 3}. {n}, {n + 1}, {n / 10:.1f}"
