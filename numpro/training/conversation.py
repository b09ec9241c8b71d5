"""A training conversation as token ids and labels: the qwen_1_5 (ChatML) template and its mask.

Rendering is the evaluation prompt's, extended to every turn (numpro.models.longva_inputs):
    <|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n
    <|im_start|>user\\n<image>\\n{question}<|im_end|>\\n
    <|im_start|>assistant\\n{answer}<|im_end|>\\n   ... more turns ...
so the first user turn tokenises exactly as the evaluation prompt does.

Supervision (SPEC 5): the text of every assistant turn, plus the `<|im_end|>` that closes the
final assistant turn. The system block, the user turns, the role headers, the other turn ends
and the video placeholder are not targets (label IGNORE_INDEX).

The `<image>` placeholder is moved to the front of its turn, followed by a newline, as LLaVA's
preprocess_multimodal does; a conversation must hold exactly one.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models.longva_inputs import IGNORE_INDEX, IMAGE_TOKEN, tokenizer_image_token

SYSTEM_BLOCK = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
USER_HEADER = "<|im_start|>user\n"
ASSISTANT_HEADER = "<|im_start|>assistant\n"
TURN_END = "<|im_end|>"
ROLES = {"human": "user", "gpt": "assistant"}


class ConversationError(ValueError):
    """A conversation that cannot be trained on (its message says why)."""


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]  # with one IMAGE_TOKEN_INDEX (-200) where the video goes
    labels: list[int]  # IGNORE_INDEX where not supervised
    supervised_end: int  # one past the last supervised position in input_ids

    def __len__(self) -> int:
        return len(self.input_ids)


def place_image_token(turns: list[dict]) -> list[dict]:
    """LLaVA's placement: the turn holding `<image>` starts with `<image>\\n`; exactly one placeholder."""
    count = sum(turn["value"].count(IMAGE_TOKEN) for turn in turns)
    if count != 1:
        raise ConversationError(f"expected one {IMAGE_TOKEN} placeholder in the conversation, found {count}")
    placed = []
    for index, turn in enumerate(turns):
        value = turn["value"]
        if IMAGE_TOKEN in value:
            if turn["from"] != "human":
                raise ConversationError(f"turn {index}: the {IMAGE_TOKEN} placeholder must be in a user ('human') turn")
            value = (IMAGE_TOKEN + "\n" + value.replace(IMAGE_TOKEN, "").strip()).strip()
        placed.append({"from": turn["from"], "value": value})
    return placed


def segments(turns: list[dict]) -> list[tuple[str, bool]]:
    """The rendered conversation as (text, supervised) pieces, in order."""
    assistant_turns = [i for i, turn in enumerate(turns) if turn["from"] == "gpt"]
    if not assistant_turns:
        raise ConversationError("the conversation has no assistant ('gpt') turn")
    last = assistant_turns[-1]
    pieces: list[tuple[str, bool]] = [(SYSTEM_BLOCK, False)]
    for index, turn in enumerate(turns):
        role = turn["from"]
        if role not in ROLES:
            raise ConversationError(f"turn {index}: unknown role {role!r}")
        if role == "human":
            pieces.append((USER_HEADER + turn["value"] + TURN_END + "\n", False))
        else:
            pieces += [(ASSISTANT_HEADER, False), (turn["value"], True), (TURN_END, index == last), ("\n", False)]
    return pieces


def render(turns: list[dict]) -> str:
    """The full training text (placeholder placed)."""
    return "".join(text for text, _ in segments(place_image_token(turns)))


def encode(turns: list[dict], tokenizer) -> Encoded:
    """Token ids and labels of a conversation (list of {"from", "value"})."""
    pieces = segments(place_image_token(turns))
    # Neighbouring pieces with the same role in the mask are tokenised together, so the ids are
    # those of the whole text tokenised at once (pieces only meet at special tokens or newlines).
    merged: list[tuple[str, bool]] = []
    for text, supervised in pieces:
        if not text:
            continue
        if merged and merged[-1][1] == supervised:
            merged[-1] = (merged[-1][0] + text, supervised)
        else:
            merged.append((text, supervised))
    input_ids: list[int] = []
    labels: list[int] = []
    supervised_end = 0
    for text, supervised in merged:
        ids = tokenizer_image_token(text, tokenizer)
        input_ids += ids
        labels += ids if supervised else [IGNORE_INDEX] * len(ids)
        if supervised and ids:
            supervised_end = len(input_ids)
    if not any(text.strip() for text, supervised in pieces if supervised and text != TURN_END):
        raise ConversationError("the assistant turns are empty: nothing to supervise but a turn end")
    return Encoded(input_ids, labels, supervised_end)
