"""A training conversation as token ids and labels: the qwen_1_5 (ChatML) template and its mask.

Rendering is the evaluation prompt's, extended to every turn (numpro.models.longva_inputs):
    <|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n
    <|im_start|>user\\n<image>\\n{question}<|im_end|>\\n
    <|im_start|>assistant\\n{answer}<|im_end|>\\n   ... more turns ...
so the first user turn tokenises exactly as the evaluation prompt does.

Supervision (SPEC 5, SPEC 10): the text of every assistant turn, plus the `<|im_end|>` that
closes the final assistant turn and the newline after it (upstream's preprocess_qwen leaves that
newline supervised: its offsets for the last round run past the end of the mask). The system
block, the user turns, the role headers, the other turn ends and the video placeholder are not
targets (label IGNORE_INDEX).

A conversation trains only as intended: user and assistant turns alternate, starting with the
user and ending with an answer; exactly one `<image>` placeholder, in a user turn; no empty
answer. Anything else raises ConversationError with a short `reason` (the pre-flight scan skips
and counts the sample). The placeholder is moved to the front of its turn, followed by a
newline, as LLaVA's preprocess_multimodal does.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..datasets.records import DataError, check_type, need
from ..models.longva_inputs import IGNORE_INDEX, IMAGE_TOKEN, tokenizer_image_token

SYSTEM_BLOCK = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
USER_HEADER = "<|im_start|>user\n"
ASSISTANT_HEADER = "<|im_start|>assistant\n"
TURN_END = "<|im_end|>"
ROLES = {"human": "user", "gpt": "assistant"}

# Why a conversation cannot be trained on (ConversationError.reason; counted by the pre-flight scan)
MALFORMED = "malformed record"
UNKNOWN_ROLE = "unknown role"
FIRST_NOT_USER = "first turn not human"
NOT_ALTERNATING = "turns do not alternate"
LAST_NOT_ANSWER = "last turn not an answer"
NO_IMAGE = "no <image>"
SEVERAL_IMAGES = "several <image>"
IMAGE_IN_ANSWER = "<image> in an answer"
EMPTY_ANSWER = "empty answer"
REASONS = (MALFORMED, UNKNOWN_ROLE, FIRST_NOT_USER, NOT_ALTERNATING, LAST_NOT_ANSWER, NO_IMAGE, SEVERAL_IMAGES,
           IMAGE_IN_ANSWER, EMPTY_ANSWER)


class ConversationError(ValueError):
    """A conversation that cannot be trained on: `reason` (one of REASONS) and a message saying where."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]  # with one IMAGE_TOKEN_INDEX (-200) where the video goes
    labels: list[int]  # IGNORE_INDEX where not supervised
    supervised_end: int  # one past the last supervised position in input_ids

    def __len__(self) -> int:
        return len(self.input_ids)


def check(turns) -> list[dict]:
    """The conversation's turns if it trains as intended; otherwise ConversationError (first problem found)."""
    try:
        check_type(turns, "conversations", list, "the sample")
        for index, turn in enumerate(turns):
            need(turn, "from", str, f"turn {index}")
            need(turn, "value", str, f"turn {index}")
    except DataError as exc:
        raise ConversationError(MALFORMED, str(exc)) from None
    if not turns:
        raise ConversationError(MALFORMED, "the conversation has no turns")
    for index, turn in enumerate(turns):
        if turn["from"] not in ROLES:
            raise ConversationError(UNKNOWN_ROLE, f"turn {index}: unknown role {turn['from']!r} (expected "
                                                  "'human' or 'gpt')")
    if turns[0]["from"] != "human":
        raise ConversationError(FIRST_NOT_USER, f"turn 0 is from {turns[0]['from']!r}: the question comes first")
    for index in range(1, len(turns)):
        if turns[index]["from"] == turns[index - 1]["from"]:
            raise ConversationError(NOT_ALTERNATING, f"turns {index - 1} and {index} are both from "
                                                     f"{turns[index]['from']!r}")
    if turns[-1]["from"] != "gpt":
        raise ConversationError(LAST_NOT_ANSWER, f"turn {len(turns) - 1} is a question with no answer after it")
    count = sum(turn["value"].count(IMAGE_TOKEN) for turn in turns)
    if count != 1:
        raise ConversationError(NO_IMAGE if count == 0 else SEVERAL_IMAGES,
                                f"expected one {IMAGE_TOKEN} placeholder in the conversation, found {count}")
    for index, turn in enumerate(turns):
        if turn["from"] == "gpt" and IMAGE_TOKEN in turn["value"]:
            raise ConversationError(IMAGE_IN_ANSWER, f"turn {index}: the {IMAGE_TOKEN} placeholder must be in a "
                                                     "user ('human') turn")
        if turn["from"] == "gpt" and not turn["value"].strip():
            raise ConversationError(EMPTY_ANSWER, f"turn {index}: the answer is empty")
    return turns


def place_image_token(turns: list[dict]) -> list[dict]:
    """LLaVA's placement: the turn holding `<image>` starts with `<image>\\n` (a checked conversation)."""
    placed = []
    for turn in check(turns):
        value = turn["value"]
        if IMAGE_TOKEN in value:
            value = (IMAGE_TOKEN + "\n" + value.replace(IMAGE_TOKEN, "").strip()).strip()
        placed.append({"from": turn["from"], "value": value})
    return placed


def segments(turns: list[dict]) -> list[tuple[str, bool]]:
    """The rendered conversation (checked, placeholder placed) as (text, supervised) pieces, in order."""
    last = len(turns) - 1  # a checked conversation ends with an answer
    pieces: list[tuple[str, bool]] = [(SYSTEM_BLOCK, False)]
    for index, turn in enumerate(turns):
        if turn["from"] == "human":
            pieces.append((USER_HEADER + turn["value"] + TURN_END + "\n", False))
        else:
            final = index == last
            pieces += [(ASSISTANT_HEADER, False), (turn["value"], True), (TURN_END, final), ("\n", final)]
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
    return Encoded(input_ids, labels, supervised_end)
