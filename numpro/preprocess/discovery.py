"""Finding the work: video files under the inputs, their output names, shards and listed names."""

from __future__ import annotations

import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ..jsonio import read_records
from ..video import VIDEO_EXTENSIONS


@dataclass
class Found:
    videos: list[Path] = field(default_factory=list)  # input order, sorted within each folder
    missing: list[str] = field(default_factory=list)
    ignored: int = 0  # files without a video extension


def find_videos(inputs: Iterable[str | Path], exclude: str | Path | None = None) -> Found:
    """Video files under each input folder (recursively) or given directly, in input order.

    `exclude` (the output folder) is never searched: clips are not inputs, even when the output
    folder lies inside an input folder.
    """
    found = Found()
    skip = Path(exclude).resolve() if exclude is not None else None
    for entry in inputs:
        path = Path(entry)
        if path.is_file():
            found.videos.append(path)  # named explicitly: taken whatever its extension
        elif path.is_dir():
            _walk(path, skip, found)
        else:
            found.missing.append(str(path))
    return found


def _walk(folder: Path, skip: Path | None, found: Found) -> None:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and Path(root, d).resolve() != skip)
        for file in sorted(files):
            if file.startswith("."):
                continue
            if file.lower().endswith(VIDEO_EXTENSIONS):
                found.videos.append(Path(root) / file)
            else:
                found.ignored += 1


# ------------------------------------------------------------------ output names
class UnnamedVideo(Exception):
    """A video whose output name cannot be determined (e.g. no DiDeMo hash); reported as failed."""


Namer = Callable[[Path], str]


def stem_name(path: Path) -> str:
    return path.stem


def hash_namer(hash_file: str | Path) -> Namer:
    """DiDeMo: name each output by the hash of its Flickr id (yfcc100m_hash.txt), as upstream."""
    from ..datasets.didemo import flickr_id, read_hash_file

    mapping = read_hash_file(hash_file)

    def name(path: Path) -> str:
        key = flickr_id(path.name)
        if key not in mapping:
            raise UnnamedVideo(f"no hash for Flickr id {key!r} in {hash_file}, so no output name")
        return mapping[key]

    return name


def listed_names(path: str | Path, source: str | None = None) -> set[str]:
    """Video names referenced by a training or annotation file (JSON list or JSON Lines).

    A record names its video in "video" (training files, test files), "vid" (QVHighlights) or
    "id" (VTimeLLM); records whose "source" is another dataset are left out.
    """
    names = set()
    for record in read_records(path):
        if source is not None and record.get("source", source) != source:
            continue
        value = record.get("video", record.get("vid", record.get("id")))
        if value is None:
            continue
        name = Path(str(value)).name
        names.add(name[: -len(Path(name).suffix)] if name.lower().endswith(VIDEO_EXTENSIONS) else name)
    return names


# ------------------------------------------------------------------ shards
def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' (I counted from 0) -> (I, N)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise ValueError(f"shard must look like I/N (e.g. 0/8), got {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard {text!r}: need 0 <= I < N (I counts from 0)")
    return index, count


def shard_of(name: str, count: int) -> int:
    """The shard owning output `name`: a stable hash, so every machine agrees without a shared list."""
    return zlib.crc32(name.encode("utf-8")) % count
