"""`--video_io upstream`: the lossy detour upstream's eval scripts take before the model sees a frame.

Upstream writes the numbered frames to an mp4 with OpenCV's `mp4v` codec (MPEG-4 Part 2) at the
sampling rate and decodes that file again with decord (LongVA's frame loader; qwen-vl-utils 0.0.8's
video reader), SPEC 10. We feed the stamped frames exactly by default; this module reproduces the
round trip so its effect on the numbers can be measured. The decoder is video.py's, as everywhere.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

MODES = ("exact", "upstream")


def write_mp4v(pixels: np.ndarray, fps: float, path: Path) -> Path:
    """RGB frames written as upstream's scripts write them: OpenCV's VideoWriter, fourcc mp4v, at `fps`."""
    import cv2

    height, width = pixels.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot open an mp4v writer (its FFmpeg build lacks the MPEG-4 encoder)")
    try:
        for frame in pixels:
            writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path


def mp4v_round_trip(pixels: np.ndarray, fps: float, backend: str = "decord") -> np.ndarray:
    """The frames after writing them with write_mp4v and decoding every frame back."""
    from .video import decode

    if len(pixels) == 0:
        return pixels
    with tempfile.TemporaryDirectory(prefix="numpro_mp4v_") as folder:
        path = write_mp4v(pixels, fps, Path(folder) / "numbered.mp4")
        return decode(path, range(len(pixels)), size=None, backend=backend)
