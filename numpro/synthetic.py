"""Synthetic videos whose frames say which frame they are.

Each frame carries its own index as a grid of black/white blocks that survive H.264 and any
resize, so a test (or the demo) can decode a video and read back exactly which source frames
were picked. Used by the tests, the benchmarks and the demo; nothing is downloaded.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

INDEX_BITS = 16
_GRID = (4, 4)  # rows, cols of index blocks (16 bits)


def index_pattern(index: int, width: int, height: int, background: Sequence[int] = (40, 90, 160)) -> np.ndarray:
    """An RGB frame whose upper 80% encodes `index` in 16 blocks (white = 1, black = 0)."""
    if not 0 <= index < 2**INDEX_BITS:
        raise ValueError(f"index {index} does not fit in {INDEX_BITS} bits")
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[:] = np.asarray(background, dtype=np.uint8)
    rows, cols = _GRID
    code_h = int(height * 0.8)
    for bit in range(INDEX_BITS):
        r, c = divmod(bit, cols)
        y0, y1 = r * code_h // rows, (r + 1) * code_h // rows
        x0, x1 = c * width // cols, (c + 1) * width // cols
        frame[y0:y1, x0:x1] = 255 if (index >> bit) & 1 else 0
    return frame


def read_index(frame: np.ndarray) -> int:
    """Inverse of `index_pattern`, for a frame of any size (after compression and resizing)."""
    height, width = frame.shape[:2]
    rows, cols = _GRID
    code_h = int(height * 0.8)
    value = 0
    for bit in range(INDEX_BITS):
        r, c = divmod(bit, cols)
        y0, y1 = r * code_h // rows, (r + 1) * code_h // rows
        x0, x1 = c * width // cols, (c + 1) * width // cols
        # Centre half of the block: away from edges blurred by compression and resizing.
        dy, dx = (y1 - y0) // 4, (x1 - x0) // 4
        if frame[y0 + dy : y1 - dy, x0 + dx : x1 - dx].mean() > 127:
            value |= 1 << bit
    return value


def write_video(
    path: str | Path,
    num_frames: int,
    fps: float | Fraction = 30,
    size: tuple[int, int] = (64, 48),
    *,
    frame_fn: Callable[[int, int, int], np.ndarray] = index_pattern,
    frame_times: Sequence[float] | None = None,
    codec: str = "libx264",
    pix_fmt: str | None = None,
    options: dict | None = None,
) -> Path:
    """Write `num_frames` frames made by frame_fn(index, width, height) with PyAV.

    `fps` is the nominal rate (use Fraction(30000, 1001) for 29.97). With `frame_times`
    (seconds, ascending) the frames get those timestamps instead: a variable-frame-rate file.
    """
    import av  # only here: the package does not need PyAV at import time

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
    width, height = size
    if pix_fmt is None:
        # 4:2:0 needs even sizes; odd sizes are written in 4:4:4.
        pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = {"preset": "ultrafast", **(options or {})} if codec == "libx264" else dict(options or {})
        if frame_times is not None:
            stream.codec_context.time_base = Fraction(1, 90000)
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(frame_fn(i, width, height), format="rgb24")
            if frame_times is not None:
                frame.pts = int(round(frame_times[i] * 90000))
                frame.time_base = Fraction(1, 90000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
