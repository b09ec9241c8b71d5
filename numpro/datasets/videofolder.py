"""Find an annotation's videos in a folder, whatever their extension, and probe them in parallel.

Annotation files name videos in several ways: `3MSZA.mp4` (test files), `v_uqiMw7tQ1Cc` (training
files give the name without extension), `..._fd25eddb2e.` (DiDeMo's names ending in a dot).
A folder is indexed once (recursively, as ActivityNet keeps train/val in sub-folders); a name is
found as it is, or by its stem under any common video extension, or, for ActivityNet, with the
`v_` prefix added or removed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple

from .. import video
from ..parallel import run_parallel

PROBE_WORKERS_CAP = 8  # default processes probing videos: probing is I/O bound, more only contend for the disk
_EXTENSION_RANK = {ext: rank for rank, ext in enumerate(video.VIDEO_EXTENSIONS)}


def split_name(name: str) -> tuple[str, str]:
    """(stem, extension) with the extension only when it is a common video one (lower case)."""
    name = name.rstrip(".")
    stem, ext = os.path.splitext(name)
    if ext.lower() in _EXTENSION_RANK:
        return stem, ext.lower()
    return name, ""


def aliases(stem: str) -> list[str]:
    """The stem and its ActivityNet twin (`v_` prefix toggled)."""
    twin = stem[2:] if stem.startswith("v_") else "v_" + stem
    return [stem, twin]


@dataclass(frozen=True)
class Located:
    path: Path
    exact: bool  # found under the very name expected (no other extension or prefix)


class VideoIndex:
    """The video files under one folder, looked up by name or stem."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.exists = self.folder.is_dir()
        self.by_name: dict[str, Path] = {}
        self.by_stem: dict[str, Path] = {}
        if not self.exists:
            return
        for root, _, files in os.walk(self.folder):
            for file in sorted(files):
                path = Path(root) / file
                relative = path.relative_to(self.folder).as_posix()
                self.by_name.setdefault(relative, path)
                self.by_name.setdefault(file, path)
                stem, ext = split_name(file)
                if not ext:
                    continue
                # Several files with one stem (a.mp4, a.mkv): prefer the earlier common extension.
                known = self.by_stem.get(stem)
                if known is None or _EXTENSION_RANK[ext] < _EXTENSION_RANK[split_name(known.name)[1]]:
                    self.by_stem[stem] = path

    def __len__(self) -> int:
        return len(self.by_stem)

    def find(self, name: str, expected: str | None = None) -> Located | None:
        """Locate `name`; `expected` is the exact file name a consumer will open (default: name)."""
        expected = expected or name
        if expected in self.by_name:
            return Located(self.by_name[expected], True)
        if name in self.by_name:
            return Located(self.by_name[name], False)
        stem, _ = split_name(name)
        for candidate in aliases(stem):
            if candidate in self.by_stem:
                return Located(self.by_stem[candidate], False)
        return None


class VideoLength(NamedTuple):
    duration: float  # seconds
    frames: int


def probe_length(job: tuple[str, str]) -> VideoLength:
    """(path, backend) -> the video's length (module level: it runs in worker processes)."""
    path, backend = job
    try:
        info = video.probe(path, backend)
    except video.VideoError:
        raise
    except Exception as exc:  # anything else may not survive pickling back from the worker
        raise RuntimeError(f"{path}: {type(exc).__name__}: {exc}") from None
    if info.num_frames <= 0:
        raise video.VideoError(path, "no video frames")
    return VideoLength(info.duration, info.num_frames)


def probe_all(
    paths: Iterable[str | Path], workers: int = 1, progress: bool = True, backend: str = "auto",
    desc: str = "probing videos",
) -> tuple[dict[str, VideoLength], dict[str, str]]:
    """Probe videos in parallel: ({path: length}, {path: reason it could not be read})."""
    lengths: dict[str, VideoLength] = {}
    failures: dict[str, str] = {}
    jobs = sorted({(str(p), backend) for p in paths})
    for outcome in run_parallel(probe_length, jobs, workers, desc=desc, unit="video", progress=progress):
        if outcome.ok:
            lengths[outcome.item[0]] = outcome.result
        else:
            failures[outcome.item[0]] = str(outcome.error)
    return lengths, failures
