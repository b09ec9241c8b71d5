"""How every clip of a run is made, and the names that follow from it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .. import clip_writer, protocol, timeline
from ..stamp import POSITION_ALIASES, StampStyle
from ..video import BACKENDS

POSITION_CODES = {name: code for code, name in POSITION_ALIASES.items()}  # bottom_right -> br (folder names)


@dataclass(frozen=True)
class Settings:
    """How every clip of a run is made; recorded in each manifest."""

    fps: float = protocol.NUMPRO_FT_FPS
    size: int = protocol.FRAME_SIZE
    # None: the frames are not numbered (--no_numbers, the "+ FT without numbers" ablation)
    style: StampStyle | None = field(default_factory=StampStyle)
    format: str = "mp4"
    backend: str = "pyav"  # decodes each file once, front to back: the fastest for sparse sampling
    crf: int = clip_writer.DEFAULT_CRF
    preset: str = clip_writer.DEFAULT_PRESET
    stamp_text: str = "number"  # "seconds": each frame carries its time k / fps (paper Tab. 9)

    def __post_init__(self):
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f"fps must be a positive number, got {self.fps}")
        if self.size <= 0:
            raise ValueError(f"size must be positive, got {self.size}")
        for name, value, allowed in (("format", self.format, clip_writer.FORMATS), ("backend", self.backend, BACKENDS),
                                     ("x264 preset", self.preset, clip_writer.PRESETS),
                                     ("stamp text", self.stamp_text, timeline.STAMP_TEXTS)):
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
        if not 0 <= self.crf <= clip_writer.MAX_CRF:
            raise ValueError(f"crf must be in 0..{clip_writer.MAX_CRF}, got {self.crf}")

    @property
    def numbers(self) -> bool:
        return self.style is not None

    def recorded(self) -> dict:
        """Every setting that changes a clip's bytes: a finished clip must share them to count as done.

        The decoder is left out: every backend returns the frames the timeline picks.
        """
        fields = {"fps": self.fps, "size": self.size, "numbers": self.numbers,
                  "style": self.style.as_dict() if self.numbers else None,
                  "stamp_text": self.stamp_text if self.numbers else None, "format": self.format}
        if self.format == "mp4":  # PNG frames are lossless: the encoder settings do not touch them
            fields.update(crf=self.crf, preset=self.preset)
        return fields

    def folder_name(self) -> str:
        """Upstream's output folder name for these settings: videos_0.5FPS_number_red_40_br.

        Times instead of numbers: videos_0.5FPS_seconds_red_40_br. Without numbers: videos_0.5FPS,
        beside the numbered folder, so the kinds never mix.
        """
        name = f"videos_{self.fps:g}FPS"
        if self.numbers:
            color = self.style.color
            color = color.lstrip("#") if isinstance(color, str) else "rgb" + "_".join(map(str, color))
            name += f"_{self.stamp_text}_{color}_{self.style.font_size}_{POSITION_CODES[self.style.position]}"
        return name if self.size == protocol.FRAME_SIZE else f"{name}_{self.size}px"

    def kind(self) -> str:
        if not self.numbers:
            return "clips without numbers"
        return "numbered clips" if self.stamp_text == "number" else "clips stamped with their times"

    def describe(self) -> str:
        s = self.style
        stamp = "no numbers" if s is None else f"{s.color} {s.font_size} {s.position}"
        if s is not None and self.stamp_text != "number":
            stamp += f", {self.stamp_text}"
        return f"{self.fps:g} fps, {self.size}x{self.size}, {stamp}, {self.format}"


def recorded_before(manifest: dict, key: str):
    """What a manifest written before `key` was recorded implies: every clip then was numbered,
    with its number, and mp4 was the only format. Other missing fields are unknown (None), so
    they count as different."""
    numbered = manifest.get("numbers", True)
    implied = {"format": "mp4", "numbers": True, "stamp_text": "number" if numbered else None}
    return manifest.get(key, implied.get(key))
