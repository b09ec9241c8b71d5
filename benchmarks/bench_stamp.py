"""Stamping cost against decoding cost, measured in one run on the same machine.

Prints microseconds per frame for: PyAV decoding one source frame (H.264, the resolution given),
our stamper on one 336x336 frame (glyph masks cached, as in a real run), and upstream's
approach (a PIL draw.text per frame). Usage: python benchmarks/bench_stamp.py [--width 1280 --height 720]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from numpro import synthetic
from numpro.stamp import Stamper, StampStyle, find_font, text_origin


def per_frame_us(fn, count: int) -> float:
    start = time.perf_counter()
    fn(count)
    return (time.perf_counter() - start) / count * 1e6


def decode_all(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def textured(index: int, width: int, height: int) -> np.ndarray:
    """Moving noise-like texture so the encoder has real work (flat frames decode unrealistically fast)."""
    y, x = np.mgrid[0:height, 0:width]
    base = ((x * 3 + y * 5 + index * 7) % 256).astype(np.uint8)
    noise = np.random.default_rng(index).integers(0, 64, (height, width), dtype=np.uint8)
    return np.dstack([base, base // 2 + noise, 255 - base])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--frames", type=int, default=300, help="source frames to decode")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = synthetic.write_video(Path(tmp) / "src.mp4", args.frames, Fraction(30000, 1001),
                                     (args.width, args.height), frame_fn=textured, options={"preset": "veryfast"})
        decode_all(path)  # warm the file cache
        start = time.perf_counter()
        decoded = decode_all(path)
        decode_us = (time.perf_counter() - start) / decoded * 1e6

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (60, 336, 336, 3), dtype=np.uint8)
    stamper = Stamper(StampStyle())
    stamper.stamp_all(frames, range(60))  # a real run stamps the same numbers in every video

    def ours(n):
        for i in range(n):
            stamper.stamp(frames[i % 60], i % 60, inplace=True)

    font = ImageFont.truetype(str(find_font()), 40)

    def upstream(n):
        for i in range(n):
            image = Image.fromarray(frames[i % 60])
            draw = ImageDraw.Draw(image)
            draw.text(text_origin(draw, str(i % 60), font, 336, 336, "bottom_right"), str(i % 60), font=font, fill="red")
            np.asarray(image)

    stamp_us = per_frame_us(ours, 3000)
    pil_us = per_frame_us(upstream, 500)
    print(f"decode one {args.width}x{args.height} H.264 source frame (PyAV): {decode_us:8.1f} us")
    print(f"stamp one 336x336 frame (numpro.stamp, cached glyphs): {stamp_us:8.1f} us"
          f"  = {stamp_us / decode_us:.1%} of a decode")
    print(f"stamp one 336x336 frame (PIL draw.text per frame, upstream): {pil_us:8.1f} us"
          f"  = {pil_us / stamp_us:.1f}x ours")


if __name__ == "__main__":
    main()
