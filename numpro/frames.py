"""The frames a model sees: sample -> cap -> stamp, in one function.

`numbered_frames` decodes the frames the timeline samples (after the `max_frames` cap,
numpro.timeline.cap_frames, applied once, here) and draws each one's label with numpro.stamp:
its number, or its time with `stamp_text="seconds"` (timeline.frame_label). Preprocessing,
evaluation, the pictures of `python -m numpro viz` and the demo all take their frames from it,
so a model preprocessor receives frames that are already capped and only checks their count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence, Union

import numpy as np

from . import timeline
from .protocol import FRAME_SIZE
from .stamp import Stamper, StampStyle
from .video import SampledVideo, read_sampled

DEFAULT_STYLE = StampStyle()

# Which of the K kept frames carry a label: positions into them, or a function of K giving them
# (for choices that depend on the count, e.g. timeline.numbered_positions); None: all of them.
Positions = Union[Sequence[int], np.ndarray, Callable[[int], Sequence[int]], None]


@dataclass
class NumberedVideo(SampledVideo):
    """A SampledVideo whose pixels carry their labels (none when `style` is None)."""

    style: StampStyle | None = None
    stamp_text: str = "number"
    stamped: list[int] = field(default_factory=list)  # positions (into `frames`) that carry a label

    @property
    def stamped_numbers(self) -> list[int]:
        """The numbers of the frames that carry a label."""
        return [self.frames[p].number for p in self.stamped]

    @property
    def partial(self) -> bool:
        """Numbered, but some kept frames are left plain (partial numbering, paper Fig. 7)."""
        return self.style is not None and len(self.stamped) < len(self.frames)

    def label(self, position: int) -> str:
        """The text drawn on the frame at `position` (also for a frame left plain)."""
        return timeline.frame_label(self.frames[position].number, self.fps, self.stamp_text)


@lru_cache(maxsize=8)
def stamper(style: StampStyle) -> Stamper:
    """One Stamper per style and process: its glyph masks are reused across videos."""
    return Stamper(style)


def numbered_frames(
    path: str | Path,
    fps: float,
    size: int | Sequence[int] | None = FRAME_SIZE,
    max_frames: int | None = None,
    backend: str = "auto",
    style: StampStyle | None = DEFAULT_STYLE,
    stamp_text: str = "number",
    *,
    positions: Positions = None,
) -> NumberedVideo:
    """Decode the sampled frames of `path` and stamp them; the one "sample -> cap -> stamp" path.

    - fps, size, backend: as numpro.video.read_sampled (frame k is the source frame nearest to
      k / fps; frames are resized to size x size).
    - max_frames: keep at most this many frames, linspace(0, K-1, max_frames), each keeping its
      own number (None or 0: all K).
    - style: how labels are drawn; None leaves every frame plain (the no-numbers baseline).
    - stamp_text: "number" draws k, "seconds" draws k / fps as "12s" or "7.5s".
    - positions: which of the kept frames get a label (positions into them, or a function of
      their count); None: all.

    Raises numpro.video.VideoError naming the file when it cannot be read; ValueError for a
    bad stamp_text or position. A video too short for one frame gives zero frames.
    """
    if stamp_text not in timeline.STAMP_TEXTS:
        raise ValueError(f"unknown stamp text {stamp_text!r}; choose one of {', '.join(timeline.STAMP_TEXTS)}")
    sampled = read_sampled(path, fps, size, backend, max_frames)
    count = len(sampled.frames)
    chosen: list[int] = []
    if style is not None:
        wanted = positions(count) if callable(positions) else positions
        chosen = list(range(count)) if wanted is None else sorted({int(p) for p in wanted})
        if chosen and not 0 <= chosen[0] <= chosen[-1] < count:
            raise ValueError(f"stamp positions must lie in 0..{count - 1}, got {chosen[0]}..{chosen[-1]}")
        draw = stamper(style)
        for p in chosen:
            label = timeline.frame_label(sampled.frames[p].number, fps, stamp_text)
            draw.stamp(sampled.pixels[p], label, inplace=True)
    return NumberedVideo(sampled.info, sampled.fps, sampled.frames, sampled.pixels,
                         style=style, stamp_text=stamp_text, stamped=chosen)
