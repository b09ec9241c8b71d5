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
from typing import Iterable

from .. import video
from ..parallel import run_parallel

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
class Found:
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

    def find(self, name: str, expected: str | None = None) -> Found | None:
        """Locate `name`; `expected` is the exact file name a consumer will open (default: name)."""
        expected = expected or name
        if expected in self.by_name:
            return Found(self.by_name[expected], True)
        if name in self.by_name:
            return Found(self.by_name[name], False)
        stem, _ = split_name(name)
        for candidate in aliases(stem):
            if candidate in self.by_stem:
                return Found(self.by_stem[candidate], False)
        return None


def probe_duration(path: str) -> float:
    """Duration in seconds (module-level: it runs in worker processes)."""
    try:
        return video.probe(path).duration
    except video.VideoError:
        raise
    except Exception as exc:  # anything else may not survive pickling back from the worker
        raise RuntimeError(f"{path}: {type(exc).__name__}: {exc}") from None


def probe_all(paths: Iterable[str | Path], workers: int = 1, progress: bool = True) -> tuple[dict[str, float], dict[str, str]]:
    """Probe videos in parallel: ({path: duration}, {path: reason it could not be read})."""
    durations: dict[str, float] = {}
    failures: dict[str, str] = {}
    unique = sorted({str(p) for p in paths})
    for outcome in run_parallel(probe_duration, unique, workers, desc="probing videos", unit="video", progress=progress):
        if outcome.ok:
            durations[outcome.item] = outcome.result
        else:
            failures[outcome.item] = str(outcome.error)
    return durations, failures


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))
