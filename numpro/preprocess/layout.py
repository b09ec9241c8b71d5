"""The output folder: where clips, manifests, reports and temporary files go, and what counts
as finished.

NAME.mp4 (or the folder NAME/ of PNG frames) is written under a hidden temporary name and
renamed when complete; the manifest NAME.json comes last, so "NAME.json exists" means "NAME is
finished".
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

from ..jsonio import JsonInputError, read_json
from .settings import recorded_before

REPORT_NAME = "preprocess_report"
# Temporary outputs: ".NAME.mp4.partial-<pid>-<hex>" / ".NAME.frames.partial-..." (hidden, so
# `*.mp4` globs never see them) and jsonio's "NAME.json.tmp".
_TEMP = re.compile(r"^(?:\.(?P<clip>.+)\.(?:mp4|frames)\.partial-[0-9]+-[0-9a-f]+|(?P<manifest>.+)\.json\.tmp)$")


def clip_path(output: Path, name: str, fmt: str) -> Path:
    return output / (f"{name}.mp4" if fmt == "mp4" else name)


def manifest_path(output: Path, name: str) -> Path:
    return output / f"{name}.json"


def temporary_clip_path(output: Path, name: str, fmt: str) -> Path:
    """A fresh hidden name for a clip being written, unique to this process."""
    kind = "mp4" if fmt == "mp4" else "frames"
    return output / f".{name}.{kind}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def report_path(output: Path, shard: tuple[int, int] = (0, 1)) -> Path:
    """OUTPUT/preprocess_report.json; one file per shard so shards never overwrite each other."""
    index, count = shard
    suffix = "" if count == 1 else f".shard{index}of{count}"
    return output / f"{REPORT_NAME}{suffix}.json"


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def is_done(output: Path, name: str, fmt: str, wanted: dict) -> bool:
    """True when NAME is finished (manifest and clip present) with the settings `wanted`.

    Raises ValueError when its manifest records other settings, even if its clip is gone or is
    of another format: never mix two kinds of clip in one folder.
    """
    manifest = manifest_path(output, name)
    if not manifest.is_file():
        return False
    try:
        recorded = read_json(manifest)
    except JsonInputError:
        return False  # unreadable manifest: redo the clip
    if not isinstance(recorded, dict):
        return False
    made = {key: recorded_before(recorded, key) for key in wanted}
    different = [key for key in wanted if made[key] != wanted[key]]
    if different:
        diffs = ", ".join(f"{key}={made[key]!r} (this run: {wanted[key]!r})" for key in different)
        raise ValueError(f"{manifest} was made with other settings: {diffs}; use another --output or delete it")
    return clip_path(output, name, fmt).exists()


def sweep_stale(output: Path, owned: set[str]) -> int:
    """Remove temporary files left by killed runs, for the names this run owns only."""
    if not output.is_dir():
        return 0
    removed = 0
    for entry in output.iterdir():
        match = _TEMP.match(entry.name)
        if match and (match.group("clip") or match.group("manifest")) in owned:
            remove(entry)
            removed += 1
    return removed


def output_problem(folder: Path) -> str | None:
    """Why clips cannot be written to `folder` (created when missing), or None when they can.

    Asked before any video is decoded: a run must not spend hours decoding for a folder it
    cannot write. A real file is created and removed, since permission bits alone do not tell
    (read-only mounts, ACLs, root).
    """
    if folder.exists() and not folder.is_dir():
        return f"the output folder {folder} is a file, not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create the output folder {folder}: {exc.strerror or exc}"
    try:
        handle, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        return f"cannot write to the output folder {folder}: {exc.strerror or exc}"
    return None
