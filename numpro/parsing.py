"""Model answers -> frame numbers.

Moment retrieval: "From Frame x to Frame y" -> (x, y). The first rule is upstream's regex
(SPEC 4), so every answer upstream parsed gets upstream's numbers; the later rules only rescue
answers upstream scored as failures ("Frames 3-7", "3.5 to 7", "between 3 and 7").

Highlight detection: "The highlight frames are in the 80, 81, ... frames. Their saliency scores
are 1.3, ..." -> frame numbers and scores, paired by position.

Every parse keeps the raw answer and says whether it succeeded; nothing here converts frame
numbers to seconds or clips (that is numpro.timeline's job).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

UPSTREAM_SPAN_PATTERN = r"from\s*(?:frame\s*)?(\d+)\s*to\s*(?:frame\s*)?(\d+)"

_NUM = r"(\d+(?:\.\d+)?)"
_DASH = r"(?:-|–|—|~)"
_FRAME = r"(?:frames?\s*(?:number\s*|no\.?\s*|#\s*)?)"

# (name, pattern), tried in order; the first rule with a match wins, and within a rule the
# first match in the text.
_SPAN_RULES: tuple[tuple[str, re.Pattern], ...] = (
    ("upstream", re.compile(UPSTREAM_SPAN_PATTERN, re.IGNORECASE)),
    ("from_to", re.compile(rf"from\s*{_FRAME}?{_NUM}\s*(?:to|until|till|through|{_DASH})\s*{_FRAME}?{_NUM}", re.IGNORECASE)),
    ("between", re.compile(rf"between\s*{_FRAME}?{_NUM}\s*and\s*{_FRAME}?{_NUM}", re.IGNORECASE)),
    ("frames_range", re.compile(rf"{_FRAME}{_NUM}\s*(?:to|through|{_DASH})\s*{_FRAME}?{_NUM}", re.IGNORECASE)),
    ("bare_range", re.compile(rf"(?<![\d.]){_NUM}\s*(?:to|{_DASH})\s*{_NUM}(?!\.?\d)", re.IGNORECASE)),
)


# Answers of --stamp_text seconds runs ("From 12s to 20.5 seconds"): the headline rule there, as
# upstream's regex is for frame numbers (it reads neither decimals nor units).
_SECONDS = r"\s*(?:s\b|secs?\b|seconds?\b)?"
SECONDS_SPAN_RULE = ("seconds", re.compile(rf"from\s*{_NUM}{_SECONDS}\s*(?:to|until|till|{_DASH})\s*{_NUM}{_SECONDS}",
                                           re.IGNORECASE))
UNITS = ("frames", "seconds")


def _number(text: str) -> int | float:
    return float(text) if "." in text else int(text)


def _as_text(answer: Any) -> str:
    """Answers are strings; upstream's HD files hold a one-element list; None means no answer."""
    if answer is None:
        return ""
    if isinstance(answer, (list, tuple)):
        return "\n".join(_as_text(part) for part in answer)
    return str(answer)


@dataclass(frozen=True)
class SpanAnswer:
    """A moment-retrieval answer parsed to (start, end) frame numbers."""

    raw: str
    ok: bool
    start: int | float | None = None
    end: int | float | None = None
    rule: str | None = None  # which rule matched (see _SPAN_RULES); None when not parsed
    reversed: bool = False  # the answer gave end < start
    swapped: bool = False  # ... and start/end were swapped on request

    @property
    def span(self) -> tuple[int | float, int | float] | None:
        return (self.start, self.end) if self.ok else None


def parse_span(answer: Any, *, swap_reversed: bool = False, strict: bool = False, units: str = "frames") -> SpanAnswer:
    """Parse a moment-retrieval answer to (start, end) frame numbers (or seconds, `units="seconds"`).

    `strict` uses the first rule only: upstream's regex for frame numbers (upstream's exact parse),
    the seconds rule for seconds. A reversed span (end < start) is kept as given, so it scores
    IoU 0 as upstream, unless `swap_reversed`.
    """
    if units not in UNITS:
        raise ValueError(f"unknown answer units {units!r}; choose one of {', '.join(UNITS)}")
    raw = _as_text(answer)
    rules = _SPAN_RULES if units == "frames" else (SECONDS_SPAN_RULE, *_SPAN_RULES[1:])
    for name, pattern in rules[:1] if strict else rules:
        match = pattern.search(raw)
        if match is None:
            continue
        start, end = _number(match.group(1)), _number(match.group(2))
        is_reversed = end < start
        if is_reversed and swap_reversed:
            return SpanAnswer(raw, True, end, start, name, reversed=True, swapped=True)
        return SpanAnswer(raw, True, start, end, name, reversed=is_reversed)
    return SpanAnswer(raw, False)


# Highlight answers ---------------------------------------------------------------------------

MAX_RANGE_FRAMES = 10_000  # a "range" longer than this is read as its two end numbers

_FRAMES_KEY = re.compile(r"\bhighlight\s*frames?\b", re.IGNORECASE)
_SCORES_KEY = re.compile(r"\b(?:saliency\s*)?scores?\b", re.IGNORECASE)
_SEP = r"\s*(?:,|;|&|\band\b|\s)\s*"
_FRAME_ITEM = rf"{_FRAME}?\d+(?:\s*(?:to|through|{_DASH})\s*\d+)?"
_FRAME_LIST = re.compile(rf"{_FRAME_ITEM}(?:{_SEP}{_FRAME_ITEM})*", re.IGNORECASE)
_ITEM_RANGE = re.compile(rf"(\d+)(?:\s*(?:to|through|{_DASH})\s*(\d+))?", re.IGNORECASE)
_SCORE_LIST = re.compile(rf"\d+(?:\.\d+)?(?:{_SEP}\d+(?:\.\d+)?)*")


@dataclass(frozen=True)
class HighlightAnswer:
    """A highlight answer parsed to frame numbers and their saliency scores (paired)."""

    raw: str
    ok: bool
    frames: tuple[int, ...] = ()
    scores: tuple[float, ...] = ()
    n_frames_listed: int = 0  # frame numbers the answer gave (ranges expanded)
    n_scores_listed: int = 0
    unpaired: int = 0  # listed frames or scores left without a partner
    error: str | None = None

    @property
    def mismatch(self) -> bool:
        """Some listed frame or score was left without a partner."""
        return self.unpaired > 0


def _frame_items(text: str) -> list[list[int]]:
    """The first list of frame numbers in `text`; each item is one number or an expanded range."""
    start = re.search(r"\d", text)
    if start is None:
        return []
    match = _FRAME_LIST.match(text, start.start())
    items = []
    for item in _ITEM_RANGE.finditer(match.group(0)):
        first = int(item.group(1))
        last = int(item.group(2)) if item.group(2) is not None else first
        if first <= last <= first + MAX_RANGE_FRAMES:
            items.append(list(range(first, last + 1)))
        else:
            items.append([first, last])
    return items


def _score_list(text: str) -> list[float]:
    start = re.search(r"\d", text)
    if start is None:
        return []
    match = _SCORE_LIST.match(text, start.start())
    return [float(x) for x in re.findall(r"\d+(?:\.\d+)?", match.group(0))]


def parse_highlight(answer: Any) -> HighlightAnswer:
    """Parse a highlight answer to (frame numbers, saliency scores).

    Frames are the first list of numbers after "highlight frames" (or from the start), up to
    the word "score(s)"; "80-85" and "80 to 85" expand to every frame in between. Scores are
    the first list of numbers after "score(s)". They pair by position; surplus frames or
    scores are dropped and counted in `unpaired`. When there is one score per listed item and
    some items are ranges, each range takes its item's score.
    """
    raw = _as_text(answer)
    frames_key = _FRAMES_KEY.search(raw)
    frames_from = frames_key.end() if frames_key else 0
    scores_key = _SCORES_KEY.search(raw, frames_from)
    frames_text = raw[frames_from : scores_key.start() if scores_key else len(raw)]
    items = _frame_items(frames_text)
    frames = [frame for item in items for frame in item]
    scores = _score_list(raw[scores_key.end() :]) if scores_key else []
    n_frames, n_scores = len(frames), len(scores)

    if not frames:
        return HighlightAnswer(raw, False, n_scores_listed=n_scores, error="no frame numbers found")
    if not scores:
        error = "no saliency scores found" if scores_key is None else "no numbers after 'scores'"
        return HighlightAnswer(raw, False, n_frames_listed=n_frames, unpaired=n_frames, error=error)

    if n_scores == len(items) and n_scores != n_frames:
        paired_scores = [score for item, score in zip(items, scores) for _ in item]
        paired_frames = frames
    else:
        n = min(n_frames, n_scores)
        paired_frames, paired_scores = frames[:n], scores[:n]
    unpaired = n_frames - len(paired_frames) + max(0, n_scores - len(paired_scores))
    return HighlightAnswer(
        raw,
        True,
        tuple(paired_frames),
        tuple(paired_scores),
        n_frames_listed=n_frames,
        n_scores_listed=n_scores,
        unpaired=unpaired,
    )
