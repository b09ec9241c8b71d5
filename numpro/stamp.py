"""Draw frame numbers on frames: the one stamping implementation (SPEC 3).

Pixel-identical to upstream's PIL drawing:
    bbox = draw.textbbox((0, 0), text, font); w, h = bbox[2] - bbox[0], bbox[3] - bbox[1]
    bottom_right: (W - w, H - h - h / 3), then draw.text((x, y), text, font=font, fill=color)
but fast: each number's anti-aliased glyph mask is rendered once per style and frame size
(by PIL itself, so positions and rasterisation are PIL's), then blended into frames with
PIL's own integer blend, out = DIV255(src * (255 - a) + ink * a).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont

from . import protocol

POSITIONS = ("top_left", "top_right", "bottom_left", "bottom_right", "center")
POSITION_ALIASES = {"tl": "top_left", "tr": "top_right", "bl": "bottom_left", "br": "bottom_right", "c": "center"}
FONT_FILE = "DejaVuSans-Bold.ttf"


class FontNotFoundError(FileNotFoundError):
    pass


def find_font(font_path: str | Path | None = None) -> Path:
    """The font to draw with: `font_path` if given, else DejaVu Sans Bold shipped in matplotlib."""
    if font_path is not None:
        path = Path(font_path)
        if not path.is_file():
            raise FontNotFoundError(f"font file not found: {path}")
        return path
    spec = importlib.util.find_spec("matplotlib")  # locate without importing matplotlib
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / FONT_FILE
        if path.is_file():
            return path
    raise FontNotFoundError(
        f"{FONT_FILE} not found: install matplotlib (it ships the font: pip install matplotlib) "
        "or pass the path of a TrueType font (--font PATH)"
    )


def normalize_position(position: str) -> str:
    name = POSITION_ALIASES.get(position, position).replace("-", "_")
    if name not in POSITIONS:
        raise ValueError(f"unknown position {position!r}; choose one of {', '.join(POSITIONS)}")
    return name


@dataclass(frozen=True)
class StampStyle:
    font_size: int = protocol.FONT_SIZE
    color: str | tuple[int, int, int] = protocol.COLOR
    position: str = protocol.POSITION
    font_path: str | None = None  # None: DejaVu Sans Bold from matplotlib

    def __post_init__(self):
        object.__setattr__(self, "position", normalize_position(self.position))
        if self.font_size <= 0:
            raise ValueError(f"font size must be positive, got {self.font_size}")
        self.rgb  # validates the colour now rather than at the first frame

    @property
    def rgb(self) -> tuple[int, int, int]:
        color = self.color
        rgb = ImageColor.getrgb(color) if isinstance(color, str) else tuple(color)
        return tuple(int(c) for c in rgb[:3])

    def as_dict(self) -> dict:
        return {"font_size": self.font_size, "color": self.color, "position": self.position,
                "font": find_font(self.font_path).name}


def text_origin(draw: ImageDraw.ImageDraw, text: str, font, width: int, height: int, position: str):
    """Where upstream draws `text` (SPEC 3); y may be fractional for bottom positions."""
    bbox = draw.textbbox((0, 0), text, font)
    w, h = bbox[2] - bbox[0], bbox[3] - bbox[1]
    if position == "top_left":
        return 0, 0
    if position == "top_right":
        return width - w, 0
    if position == "center":
        return (width - w) // 2, (height - h) // 2
    x = 0 if position == "bottom_left" else width - w
    return x, height - h - h / 3


@lru_cache(maxsize=16)
def _load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@dataclass(frozen=True)
class _Glyph:
    y0: int
    x0: int
    alpha: np.ndarray  # (h, w) uint16 coverage 0..255 of the label's pixels


class Stamper:
    """Stamps labels on RGB uint8 frames (H, W, 3) in one style; caches a mask per label.

    A label is a frame number (drawn as str(number)) or any text such as timeline.frame_label's
    "12s"; the geometry is the same (SPEC 3)."""

    def __init__(self, style: StampStyle | None = None):
        self.style = style or StampStyle()
        self._font = _load_font(str(find_font(self.style.font_path)), self.style.font_size)
        self._ink = np.asarray(self.style.rgb, dtype=np.uint32)
        self._glyphs: dict[tuple[str, int, int], _Glyph | None] = {}

    def _glyph(self, text: str, width: int, height: int) -> _Glyph | None:
        key = (text, width, height)
        if key not in self._glyphs:
            # Draw with PIL on a blank single-channel canvas of the frame's size: its value at
            # each pixel is exactly the coverage PIL blends with, clipping included.
            canvas = Image.new("L", (width, height), 0)
            draw = ImageDraw.Draw(canvas)
            draw.text(text_origin(draw, text, self._font, width, height, self.style.position),
                      text, font=self._font, fill=255)
            box = canvas.getbbox()
            if box is None:  # entirely outside the frame
                self._glyphs[key] = None
            else:
                x0, y0, x1, y1 = box
                alpha = np.asarray(canvas, dtype=np.uint16)[y0:y1, x0:x1]
                self._glyphs[key] = _Glyph(y0, x0, alpha)
        return self._glyphs[key]

    def stamp(self, frame: np.ndarray, number: int | str, inplace: bool = False) -> np.ndarray:
        """The frame with `number` (or a text label) drawn on it (a copy unless `inplace`)."""
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 frame (H, W, 3), got {frame.dtype} {frame.shape}")
        out = frame if inplace else frame.copy()
        glyph = self._glyph(number if isinstance(number, str) else str(int(number)), frame.shape[1], frame.shape[0])
        if glyph is None:
            return out
        h, w = glyph.alpha.shape
        region = out[glyph.y0 : glyph.y0 + h, glyph.x0 : glyph.x0 + w]
        a = glyph.alpha[..., None].astype(np.uint32)
        # PIL's DIV255 rounding: t = x + 128; (t + (t >> 8)) >> 8
        t = region.astype(np.uint32) * (255 - a) + self._ink * a + 128
        region[...] = ((t + (t >> 8)) >> 8).astype(np.uint8)
        return out

    def stamp_all(self, frames: np.ndarray | Sequence[np.ndarray], numbers: Iterable[int | str], inplace: bool = False):
        """Stamp each frame with its number (or label); returns an array like `frames`."""
        numbers = list(numbers)
        if len(numbers) != len(frames):
            raise ValueError(f"{len(frames)} frames but {len(numbers)} numbers")
        out = frames if inplace and isinstance(frames, np.ndarray) else np.array(frames, dtype=np.uint8, copy=True)
        for frame, number in zip(out, numbers):
            self.stamp(frame, number, inplace=True)
        return out
