"""Shared fixtures: synthetic videos written once per test session (nothing is downloaded)."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import pytest

from numpro import synthetic

NTSC = Fraction(30000, 1001)  # 29.97
FILM = Fraction(24000, 1001)  # 23.976
RATES = {"29.97": NTSC, "23.976": FILM, "25": Fraction(25), "30": Fraction(30)}


def reference_dir() -> Path | None:
    """The public reference annotations beside the repository (or $NUMPRO_REFERENCE_DIR)."""
    env = os.environ.get("NUMPRO_REFERENCE_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "reference"
    return path if path.is_dir() else None


class VideoFactory:
    """Writes each requested synthetic video once and returns its path."""

    def __init__(self, root: Path):
        self.root = root
        self._made: dict[tuple, Path] = {}

    def __call__(self, fps: str, seconds: float, size=(64, 48), **kwargs) -> Path:
        key = (fps, seconds, size, repr(sorted(kwargs.items())))
        if key not in self._made:
            rate = RATES[fps]
            num_frames = round(seconds * rate)
            name = f"v_{fps}_{seconds}s_{size[0]}x{size[1]}_{len(self._made)}.mp4"
            self._made[key] = synthetic.write_video(self.root / name, num_frames, rate, size, **kwargs)
        return self._made[key]


@pytest.fixture(scope="session")
def make_video(tmp_path_factory) -> VideoFactory:
    return VideoFactory(tmp_path_factory.mktemp("videos"))
