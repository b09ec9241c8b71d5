"""VTimeLLM stage-2/3 data -> NumPro-FT training samples with 0.5-FPS frame numbers.

VTimeLLM writes times as placeholders (`<s0>`, `<e0>`, ...) in the conversation and gives their
seconds in `meta: {duration, token: {"<s0>": seconds, ...}, split: [start, end] (optional)}`.
`split` means the sample's video is that segment of the source video (`id` names the source),
and the token times and `duration` are relative to the segment's start. Stage 3's
Video-ChatGPT part has no placeholders and no `meta`; those samples are kept as they are.

Conversion (seconds -> frame numbers through numpro.timeline):
- each placeholder becomes the number of the 0.5-FPS frame nearest its time, clamped into the
  clip's frames 0..K-1 (K = timeline.num_sampled_frames(duration, 0.5)); clamps are reported.
- `split_mode="clip"` (default): the numbered clip is the segment itself, named
  `<id>_<start>_<end>` (QVHighlights' style, e.g. `3n3oCNerzV0_129.8_184.0`), numbers counted from
  the segment's start. `split_mode="full"`: the whole source video `<id>` is numbered, so numbers
  are counted from the video's start (split start + token time).
- answers use NumPro-FT's phrase: a placeholder pair written as a range ("<s0> - <e0>",
  "between <s0> and <e0>", "during <s0> to <e0>") becomes "from x to y"; other wording and single
  placeholders ("at <s0>") keep their text with the number in place.
- `<video>` becomes LongVA's `<image>`; a first question without it gets `<image>\\n` prepended.
- DiDeMo sources are renamed to their hash (yfcc100m_hash.txt), as NumPro's DiDeMo clips are.
- `source` is kept; `id`, the clip's `duration` and `split` ride along for the check tool.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

from .. import timeline
from ..protocol import NUMPRO_FT_FPS
from .didemo import flickr_id
from .records import NUMBER, TIME_EPS, Conversion, DataError, Tally, check_type, load_list, need, where
from .training import IMAGE_TOKEN, ROLES

SPLIT_MODES = ("clip", "full")
VIDEO_TOKEN = "<video>"
PLACEHOLDER = re.compile(r"<([se])(\d+)>")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n\s*)$")
# A start/end pair written as a range, with an optional leading word that the range replaces.
_RANGE = re.compile(
    r"(?P<lead>\b(?:from|during|in|at|within|over|throughout)\s+(?:the\s+)?)?"
    r"<s(?P<n>\d+)>\s*(?:-|–|—|~|to|until|till)\s*<e(?P=n)>"
    r"|(?P<between>\bbetween\s+)<s(?P<m>\d+)>\s+and\s+<e(?P=m)>",
    re.IGNORECASE,
)


def _range_phrase(match: re.Match) -> str:
    n = match.group("n") or match.group("m")
    lead = match.group("lead") or match.group("between")
    before = match.string[: match.start()]
    capital = lead[0].isupper() if lead else bool(_SENTENCE_START.search(before))
    return f"{'F' if capital else 'f'}rom <s{n}> to <e{n}>"


def phrase_ranges(answer: str) -> str:
    """Rewrite placeholder ranges in an answer as "from <sN> to <eN>" (NumPro-FT's phrase)."""
    return _RANGE.sub(_range_phrase, answer)


def _number(value: Any) -> str:
    return str(float(value))


def _meta(sample: dict, at: str) -> tuple[float, dict[str, float], tuple[float, float] | None]:
    meta = need(sample, "meta", dict, at)
    duration = float(need(meta, "duration", NUMBER, f"{at}, meta"))
    if duration <= 0:
        raise DataError(f"{at}, meta: field 'duration' must be positive, got {duration!r}")
    tokens = need(meta, "token", dict, f"{at}, meta")
    seconds = {key: float(check_type(value, f"token {key}", NUMBER, f"{at}, meta")) for key, value in tokens.items()}
    split = None
    if meta.get("split") is not None:
        raw = need(meta, "split", list, f"{at}, meta")
        if len(raw) != 2:
            raise DataError(f"{at}, meta: field 'split' must be [start, end], got {raw!r}")
        split = tuple(float(check_type(v, "split", NUMBER, f"{at}, meta")) for v in raw)
        if split[1] <= split[0]:
            raise DataError(f"{at}, meta: field 'split' must have end > start, got {raw!r}")
    return duration, seconds, split


def _video(sample_id: str, source: str | None, split, split_mode: str, hashes, tally: Tally) -> str:
    if source == "didemo" and hashes is not None:
        digest = hashes.get(flickr_id(sample_id))
        if digest is not None:
            return digest
        tally.add("DiDeMo videos not in the hash file (id kept)", sample_id)
    if split is not None and split_mode == "clip":
        return f"{sample_id}_{_number(split[0])}_{_number(split[1])}"
    return sample_id


def _checked_turns(sample: dict, at: str) -> tuple[list[dict], list[str]]:
    """The sample's turns (roles checked) and the placeholders they use, in order of use."""
    turns = need(sample, "conversations", list, at)
    if not turns:
        raise DataError(f"{at}: field 'conversations' is empty")
    used: list[str] = []
    for index, turn in enumerate(turns):
        role = need(turn, "from", str, f"{at}, turn {index}")
        if role not in ROLES:
            raise DataError(f"{at}, turn {index}: field 'from' must be 'human' or 'gpt', got {role!r}")
        used += [m.group(0) for m in PLACEHOLDER.finditer(need(turn, "value", str, f"{at}, turn {index}"))]
    return turns, list(dict.fromkeys(used))


def _frame_numbers(
    sample_id: str, seconds: dict[str, float], duration: float, split, split_mode: str, fps: float, tally: Tally
) -> dict[str, int]:
    """Placeholder -> the number of the frame nearest its time, clamped into the numbered clip."""
    offset = split[0] if split is not None and split_mode == "full" else 0.0
    known_length = split is None or split_mode == "clip"  # the numbered video's length is meta.duration
    last = timeline.num_sampled_frames(duration, fps) - 1 if known_length else None
    numbers = {}
    for name, t in seconds.items():
        if t < -TIME_EPS or t > duration + TIME_EPS:
            tally.add("placeholder times outside the clip (clamped)", f"{sample_id} {name}={t:g} of {duration:g} s")
        frame = max(0, timeline.seconds_to_frame(offset + t, fps))
        numbers[name] = frame if last is None else min(frame, last)
    return numbers


def _numbered_turns(turns: list[dict], numbers: dict[str, int]) -> list[dict]:
    """Answers rephrased, placeholders replaced by frame numbers, LongVA's `<image>` in the first turn."""
    converted = []
    for index, turn in enumerate(turns):
        value = turn["value"]
        if turn["from"] == "gpt":
            value = phrase_ranges(value)
        value = PLACEHOLDER.sub(lambda m: str(numbers[m.group(0)]), value)
        if index == 0:
            value = value.replace(VIDEO_TOKEN, IMAGE_TOKEN)
            if IMAGE_TOKEN not in value:
                value = f"{IMAGE_TOKEN}\n{value}"
        converted.append({"from": turn["from"], "value": value})
    return converted


def convert_sample(
    sample: Any,
    at: str,
    tally: Tally,
    hashes: dict[str, str] | None = None,
    split_mode: str = "clip",
    fps: float = NUMPRO_FT_FPS,
) -> dict:
    """One VTimeLLM sample -> one NumPro-FT training sample (see the module docstring)."""
    if split_mode not in SPLIT_MODES:
        raise ValueError(f"split_mode must be one of {SPLIT_MODES}, got {split_mode!r}")
    sample_id = str(need(sample, "id", (str, int), at))
    at = f"{at} (id {sample_id})"
    source = sample.get("source")
    if source is not None:
        check_type(source, "source", str, at)
    turns, used = _checked_turns(sample, at)

    duration = split = None
    numbers: dict[str, int] = {}
    if used or sample.get("meta") is not None:
        duration, seconds, split = _meta(sample, at)
        for name in used:
            if name not in seconds:
                raise DataError(f"{at}: placeholder {name} has no time in field 'meta.token'")
        numbers = _frame_numbers(sample_id, seconds, duration, split, split_mode, fps, tally)
    else:
        tally.add("samples without timestamps (kept as they are)", sample_id)

    record: dict[str, Any] = {"id": sample_id, "video": _video(sample_id, source, split, split_mode, hashes, tally)}
    if source is not None:
        record["source"] = source
    record["conversations"] = _numbered_turns(turns, numbers)
    if duration is not None and (split is None or split_mode == "clip"):
        record["duration"] = duration
    if split is not None:
        record["split"] = list(split)
    return record


def convert(
    annotations: str | Path | Iterable[str | Path],
    hashes: dict[str, str] | None = None,
    split_mode: str = "clip",
    fps: float = NUMPRO_FT_FPS,
) -> Conversion:
    """Convert one or more VTimeLLM JSON files (stage 2 and/or stage 3) into one sample list."""
    paths = [Path(annotations)] if isinstance(annotations, (str, Path)) else [Path(p) for p in annotations]
    tally = Tally()
    records = []
    for path in paths:
        for number, sample in enumerate(load_list(path, "samples"), 1):
            records.append(convert_sample(sample, where(path, f"record {number}"), tally, hashes, split_mode, fps))
    notes = [f"frame numbers at {fps:g} FPS; split mode '{split_mode}'"]
    return Conversion(records, tally, notes)
