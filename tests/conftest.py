"""Shared fixtures: synthetic videos written once per test session (nothing is downloaded)."""

from __future__ import annotations

import json
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


EVAL_VIDEOS = [("vid0", NTSC, 12), ("vid1", Fraction(25), 9), ("vid2", Fraction(30), 7)]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """Three synthetic videos, nine moment queries plus one with a missing video, three highlight queries."""
    root = tmp_path_factory.mktemp("mr_data")
    records, qvh = [], []
    for i, (name, rate, seconds) in enumerate(EVAL_VIDEOS):
        synthetic.write_video(root / "videos" / f"{name}.mp4", round(seconds * rate), rate, (64, 48))
        for j in range(3):
            records.append({"id": f"{name}_{j}", "video": f"{name}.mp4", "query": f"person number {j} sits",
                            "start_time": 1.0 + j, "end_time": 4.0 + j, "duration": seconds})
        qvh.append({"qid": 100 + i, "query": f"query {i}", "duration": seconds + 1, "vid": name,
                    "relevant_clip_ids": [1, 2], "saliency_scores": [[1, 2, 3], [4, 4, 2]],
                    "relevant_windows": [[2, 6]]})
    records.insert(4, {"id": "gone_0", "video": "gone.mp4", "query": "nothing", "start_time": 0,
                       "end_time": 1, "duration": 5})
    (root / "test.json").write_text(json.dumps(records))
    (root / "qvh.jsonl").write_text("".join(json.dumps(r) + "\n" for r in qvh))
    return root


# The tiny LongVA (numpro.models.longva_tiny, seed 0) is shared by the LongVA, fidelity and training
# tests: building and loading it once saves each module doing it again. Tests only read the
# checkpoint (they copy it before changing it) and restore anything they change on the model.
@pytest.fixture(scope="session")
def tiny_lva_dir(tmp_path_factory) -> Path:
    from numpro.models import longva  # torch is imported only by the tests that need it

    return longva.build_tiny(tmp_path_factory.mktemp("longva") / "model")


@pytest.fixture(scope="session")
def tiny_lva(tiny_lva_dir):
    from numpro.models import longva

    return longva.load(tiny_lva_dir)
