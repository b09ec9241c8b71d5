"""Write numbered frames to disk: an H.264 mp4 at the sampling rate, or lossless PNG files.

This module only encodes to the path it is given. Placing the result atomically (temporary
name, then rename) is the caller's job, which is why the container format is passed explicitly
rather than guessed from the file name.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np

FORMATS = ("mp4", "frames")
DEFAULT_CRF = 20  # near-transparent at 336x336 (about 35 dB PSNR on textured frames)
DEFAULT_PRESET = "ultrafast"  # half the CPU of "veryfast": encoding must stay small next to decoding
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")
MAX_CRF = 51  # x264's range for 8-bit video is 0..51
PNG_PATTERN = "{:06d}.png"


def rate_fraction(fps: float) -> Fraction:
    """The sampling rate as the exact fraction the encoder's time base needs (0.5 -> 1/2)."""
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return Fraction(fps).limit_denominator(1001)


def write_mp4(
    path: str | Path,
    frames: np.ndarray | Sequence[np.ndarray],
    fps: float,
    *,
    crf: int = DEFAULT_CRF,
    preset: str = DEFAULT_PRESET,
) -> int:
    """Encode RGB uint8 frames (H, W, 3) as H.264 (yuv420p) in an mp4, frame k at k / fps s.

    Returns the number of video packets written (one per frame).
    """
    import av

    if preset not in PRESETS:
        raise ValueError(f"unknown x264 preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if not 0 <= crf <= MAX_CRF:
        raise ValueError(f"crf must be in 0..{MAX_CRF}, got {crf}")
    if len(frames) == 0:
        raise ValueError("no frames to write")
    height, width = frames[0].shape[:2]
    # 4:2:0 needs even sizes; odd ones are written in 4:4:4 (players read both).
    pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    rate = rate_fraction(fps)
    packets = 0
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = {"preset": preset, "crf": str(crf)}
        stream.codec_context.time_base = 1 / rate  # pts k is frame k: k / fps seconds
        for number, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
            frame.pts = number
            frame.time_base = stream.codec_context.time_base
            for packet in stream.encode(frame):
                container.mux(packet)
                packets += 1
        for packet in stream.encode():
            container.mux(packet)
            packets += 1
    return packets


def count_mp4_frames(path: str | Path) -> int:
    """Video packets in a finished mp4 (demuxed, not decoded): one per frame for H.264."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for p in container.demux(stream) if p.size and not p.is_discard)


def write_pngs(folder: str | Path, frames: np.ndarray | Sequence[np.ndarray]) -> int:
    """Write frame k as folder/000000.png... (lossless RGB). Returns how many were written."""
    import cv2

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for number, pixels in enumerate(frames):
        target = folder / PNG_PATTERN.format(number)
        # OpenCV wants BGR; compression level 1 is its fast default and still lossless.
        if not cv2.imwrite(str(target), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)):
            raise OSError(f"{target}: could not write PNG")
    return len(frames)
