"""Frame numbers <-> time: the one place that decides which source frames are sampled.

Rule (SPEC 2): sampled frame k (k = 0, 1, ...) is the source frame nearest to t_k = k / fps,
for every t_k < duration. Its stamped number is k, so a predicted number n means n / fps
seconds, and the answer "From x to y" means the span [x / fps, y / fps].

Highlight clips are 2 seconds long (QVHighlights): frame n falls in clip floor(n / fps / 2),
so at 0.5 FPS frame k is clip k.

Nothing else in the package multiplies or divides frame numbers by a rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .protocol import CLIP_SECONDS  # QVHighlights clip length, re-exported
from .protocol import MAX_FRAMES as DEFAULT_MAX_FRAMES  # LongVA's frame cap (SPEC 2)

# Relative tolerance for "t_k < duration": durations are ratios of integers read from
# containers (e.g. 3596 / 29.97), so k / fps and duration can differ by float noise only.
_EPS = 1e-9


def num_sampled_frames(duration: float, fps: float) -> int:
    """How many k >= 0 satisfy k / fps < duration."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if not duration > 0:  # also rejects NaN
        return 0
    return max(0, math.ceil(duration * fps * (1 - _EPS)))


def sample_times(duration: float, fps: float) -> np.ndarray:
    """Times t_k = k / fps (seconds) of the sampled frames, for t_k < duration."""
    return np.arange(num_sampled_frames(duration, fps), dtype=np.float64) / fps


def source_times(num_frames: int, source_fps: float) -> np.ndarray:
    """Presentation times of a constant-frame-rate video's frames, first frame at 0."""
    if source_fps <= 0:
        raise ValueError(f"source fps must be positive, got {source_fps}")
    return np.arange(num_frames, dtype=np.float64) / source_fps


def nearest_indices(frame_times: Sequence[float] | np.ndarray, targets: Sequence[float] | np.ndarray) -> np.ndarray:
    """Index of the source frame whose time is nearest to each target (ties: the earlier frame).

    `frame_times` are the source frames' presentation times in seconds, relative to the first
    frame and sorted ascending (constant or variable frame rate alike).
    """
    times = np.asarray(frame_times, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if times.size == 0:
        raise ValueError("video has no frames")
    right = np.searchsorted(times, targets, side="left").clip(0, times.size - 1)
    left = (right - 1).clip(0, times.size - 1)
    # Take the right neighbour only when it is strictly nearer (ties go to the earlier frame).
    take_right = np.abs(times[right] - targets) < np.abs(targets - times[left]) - 1e-12
    return np.where(take_right, right, left).astype(np.int64)


@dataclass(frozen=True)
class SampledFrame:
    number: int  # the number stamped on the frame (k)
    source_index: int  # index of the source frame in presentation order
    time: float  # k / fps, seconds

    def as_dict(self) -> dict:
        return {"number": self.number, "source_index": self.source_index, "time": self.time}


def plan_frames(
    duration: float,
    fps: float,
    frame_times: Sequence[float] | np.ndarray | None = None,
    *,
    num_source_frames: int | None = None,
    source_fps: float | None = None,
) -> list[SampledFrame]:
    """The sampled frames of a video: numbers 0..K-1, their times and source frame indices.

    Give either the source frames' presentation times (`frame_times`, exact for variable
    frame rate) or `num_source_frames` and `source_fps` (constant frame rate).
    """
    if frame_times is None:
        if num_source_frames is None or source_fps is None:
            raise ValueError("give frame_times, or num_source_frames and source_fps")
        frame_times = source_times(num_source_frames, source_fps)
    targets = sample_times(duration, fps)
    if targets.size == 0:
        return []
    indices = nearest_indices(frame_times, targets)
    return [SampledFrame(k, int(i), float(t)) for k, (i, t) in enumerate(zip(indices, targets))]


def cap_frames(num_frames: int, max_frames: int | None = DEFAULT_MAX_FRAMES) -> np.ndarray:
    """Positions (into the K numbered frames) kept under a frame cap.

    Above `max_frames` keep linspace(0, K-1, max_frames) truncated to integers, as LongVA does;
    each kept frame still carries its own number. `None` or 0 means no cap.
    """
    if not max_frames or num_frames <= max_frames:
        return np.arange(num_frames, dtype=np.int64)
    return np.linspace(0, num_frames - 1, max_frames).astype(np.int64)


NUMBER_SAMPLINGS = ("uniform", "random")


def numbered_positions(num_frames: int, fraction: float = 1.0, sampling: str = "uniform", seed: int = 0,
                       key: str = "") -> np.ndarray:
    """Positions (into the K sampled frames) that carry their number when only `fraction` do (Fig. 7).

    round(fraction * K) frames, at least one: "uniform" spreads them evenly (linspace rounded, first
    and last included); "random" draws them with a generator seeded by `seed` and `key` (the video),
    so the choice does not depend on the order videos are processed in.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"the numbered fraction must be in (0, 1], got {fraction}")
    if sampling not in NUMBER_SAMPLINGS:
        raise ValueError(f"unknown number sampling {sampling!r}; choose one of {', '.join(NUMBER_SAMPLINGS)}")
    if num_frames == 0 or fraction == 1:
        return np.arange(num_frames, dtype=np.int64)
    count = min(num_frames, max(1, round(fraction * num_frames)))
    if sampling == "uniform":
        return np.unique(np.round(np.linspace(0, num_frames - 1, count)).astype(np.int64))
    import zlib

    rng = np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
    return np.sort(rng.choice(num_frames, size=count, replace=False)).astype(np.int64)


STAMP_TEXTS = ("number", "seconds")


def frame_label(number: int, fps: float, stamp_text: str = "number") -> str:
    """What is drawn on frame `number`: the number itself, or its time (paper Tab. 9) written as
    whole seconds with an "s" ("12s") or with one decimal when not whole ("7.5s")."""
    if stamp_text == "number":
        return str(int(number))
    if stamp_text != "seconds":
        raise ValueError(f"unknown stamp text {stamp_text!r}; choose one of {', '.join(STAMP_TEXTS)}")
    seconds = frame_to_seconds(number, fps)
    whole = round(seconds)
    return f"{whole}s" if abs(seconds - whole) < _EPS else f"{seconds:.1f}s"


def frame_to_seconds(number: float, fps: float) -> float:
    """Time in seconds of the sampled frame carrying `number`."""
    return float(number) / fps


def seconds_to_frame(seconds: float, fps: float) -> int:
    """Number of the sampled frame nearest to `seconds` (used for training answers)."""
    return int(math.floor(seconds * fps + 0.5))


def span_to_seconds(start: float, end: float, fps: float) -> tuple[float, float]:
    """An answer "From start to end" as seconds: [start / fps, end / fps] (upstream's rule)."""
    return frame_to_seconds(start, fps), frame_to_seconds(end, fps)


def answer_to_seconds(start: float, end: float, fps: float, units: str = "frames") -> tuple[float, float]:
    """An answer's span in seconds: frame numbers through the numbering rate, or seconds as given
    (the answers of --stamp_text seconds runs)."""
    if units == "seconds":
        return float(start), float(end)
    if units != "frames":
        raise ValueError(f"unknown answer units {units!r}")
    return span_to_seconds(start, end, fps)


def frame_to_clip(number: int, fps: float, clip_seconds: float = CLIP_SECONDS) -> int:
    """Highlight clip (2-second window) containing sampled frame `number`."""
    return int(math.floor(frame_to_seconds(number, fps) / clip_seconds + _EPS))


def num_clips(duration: float, clip_seconds: float = CLIP_SECONDS) -> int:
    """Number of highlight clips of a video: int(duration / 2), as the QVHighlights metric."""
    return int(duration / clip_seconds)
