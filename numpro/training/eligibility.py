"""Whether a training sample trains as intended: the one rule behind `numpro data check` and
training's pre-flight scan (SPEC 5), so the check never passes a sample that training skips.

A sample is eligible when
- its conversation is one training can render (conversation.check: the user asks first, turns
  alternate, an answer comes last, exactly one `<image>`, in a question, no empty answer), and
- the model_max_length cap, applied after the visual tokens are spliced in, cuts no supervised
  token: frames x TOKENS_PER_FRAME + the text tokens up to the end of the last answer fit in the
  cap. The frames are the numbered clip's, at most max_frames (LongVA picks them by linspace).

Text tokens are exact with a tokenizer: the conversation tokenised as training tokenises it,
the `<image>` placeholder (replaced by the visual tokens) not counted. Without one they are
estimated from the characters, which is what `numpro data check` does unless given a tokenizer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .. import timeline
from ..protocol import MAX_FRAMES, MODEL_MAX_LENGTH, TOKENS_PER_FRAME
from . import conversation

# The verdicts, in the words of both reports (the pre-flight table and `numpro data check`).
INVALID = "conversation invalid"
CUT = "answer cut by the cap"
# The estimate: about 4 characters a token, plus ChatML around the turns (a system block of
# ~11 tokens, and <|im_start|>role\n ... <|im_end|>\n per turn).
_CHARS_PER_TOKEN = 4
_TEMPLATE_TOKENS = 11
_TURN_TOKENS = 5


@dataclass(frozen=True)
class TextTokens:
    count: int  # text tokens up to and including the last supervised one
    exact: bool  # counted by the tokenizer, not estimated


@dataclass(frozen=True)
class Fit:
    """A sample's spliced length against the cap."""

    frames: int  # frames the model sees (after the cap)
    tokens: int  # visual tokens plus text tokens, up to the last supervised one
    exact: bool
    model_max_length: int

    @property
    def fits(self) -> bool:
        return self.tokens <= self.model_max_length

    @property
    def visual_tokens(self) -> int:
        return self.frames * TOKENS_PER_FRAME

    def __str__(self) -> str:
        return f"{self.frames} frames, {'' if self.exact else '~'}{self.tokens} tokens"


def estimate_text_tokens(turns: list[dict]) -> int:
    """Rough token count of the chat text around the video (no tokenizer needed)."""
    total = _TEMPLATE_TOKENS
    for turn in turns:
        value = turn["value"].replace(conversation.IMAGE_TOKEN + "\n", "").replace(conversation.IMAGE_TOKEN, "")
        total += _TURN_TOKENS + math.ceil(len(value) / _CHARS_PER_TOKEN)
    return total


def text_tokens(turns, tokenizer=None) -> TextTokens:
    """The conversation's text tokens, exact with a tokenizer; ConversationError (with its reason)
    when the conversation cannot train as intended."""
    if tokenizer is None:
        return TextTokens(estimate_text_tokens(conversation.check(turns)), exact=False)
    # supervised_end counts the placeholder's one id, which becomes the visual tokens.
    return TextTokens(conversation.encode(turns, tokenizer).supervised_end - 1, exact=True)


def fit(text: TextTokens, numbered_frames: int, model_max_length: int = MODEL_MAX_LENGTH,
        max_frames: int | None = MAX_FRAMES) -> Fit:
    """The spliced length of a sample whose numbered clip has `numbered_frames` frames."""
    frames = len(timeline.cap_frames(numbered_frames, max_frames))
    return Fit(frames, frames * TOKENS_PER_FRAME + text.count, text.exact, model_max_length)


def load_tokenizer(folder: str | Path):
    """The tokenizer training uses, from a LongVA checkpoint folder (or one holding its tokenizer)."""
    from ..models.longva import load_tokenizer as load_longva_tokenizer
    from ..models.longva_checkpoint import read_config

    folder = Path(folder)
    if not (folder / "tokenizer_config.json").is_file():
        raise FileNotFoundError(f"{folder}: no tokenizer_config.json (expected a LongVA checkpoint folder)")
    raw_config = read_config(folder) if (folder / "config.json").is_file() else {}
    return load_longva_tokenizer(folder, raw_config)
