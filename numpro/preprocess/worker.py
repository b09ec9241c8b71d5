"""One video -> one clip and its manifest; runs in a worker process."""

from __future__ import annotations

import os
from pathlib import Path

from .. import clip_writer
from ..jsonio import write_json
from ..parallel import check_parent
from .layout import clip_path, manifest_path, remove, temporary_clip_path
from .plan import Job


class ClipError(Exception):
    """A video that could not be made into a clip. One message argument, so it crosses processes."""


def process_video(job: Job) -> dict:
    """Make one clip and its manifest; returns a summary.

    Any failure is raised as ClipError carrying a message that names the file: decoder
    exceptions are not all picklable, and one that is not would break the worker pool.
    """
    try:
        return _make_clip(job)
    except Exception as exc:
        raise ClipError(describe(exc, job.source)) from None


def describe(error: BaseException, source: str) -> str:
    """The error as one line that names the source file."""
    from ..video import VideoError

    text = str(error) if isinstance(error, (VideoError, ClipError)) else f"{type(error).__name__}: {error}"
    return text if source in text else f"{source}: {text}"


def _make_clip(job: Job) -> dict:
    from ..frames import numbered_frames  # decoders load in the worker, not when the scripts parse arguments

    s = job.settings
    output = Path(job.output)
    final, manifest = clip_path(output, job.name, s.format), manifest_path(output, job.name)
    # No manifest means any clip present is from an unfinished run: neither may survive it.
    remove(manifest)
    remove(final)
    video = numbered_frames(job.source, s.fps, s.size, None, s.backend, s.style, s.stamp_text)
    temp = temporary_clip_path(output, job.name, s.format)
    try:
        _write_clip(temp, video.pixels, job)
        # Commit only for a live run: a worker whose parent was killed must not finish clips
        # that nobody will count (raises WorkerStopped, a BaseException, in that case).
        check_parent()
        os.replace(temp, final)
        check_parent()
        write_json(manifest, _manifest(job, video, final.name))
    except BaseException:
        # Stopped or failed before the manifest: leave nothing that looks like a result.
        if not manifest.exists():
            remove(final)
            remove(manifest.with_name(manifest.name + ".tmp"))  # write_json's temporary file
        raise
    finally:
        remove(temp)
    return {"name": job.name, "frames": len(video.frames), "source_frames": video.info.num_frames}


def _write_clip(temp: Path, pixels, job: Job) -> None:
    """Encode the frames to `temp` and check that every one of them is there."""
    s = job.settings
    if s.format == "mp4":
        clip_writer.write_mp4(temp, pixels, s.fps, crf=s.crf, preset=s.preset)
        written = clip_writer.count_mp4_frames(temp)
    else:
        written = clip_writer.write_pngs(temp, pixels)
    if written != len(pixels):
        raise ClipError(f"{job.source}: wrote {written} frames instead of {len(pixels)}")


def _manifest(job: Job, video, file_name: str) -> dict:
    info = video.info
    return {
        "source": job.source,
        "source_fps": info.fps,
        "source_frames": info.num_frames,
        "duration": info.duration,
        **job.settings.recorded(),
        "backend": job.settings.backend,
        "file": file_name,
        "num_frames": len(video.frames),
        "frames": [frame.as_dict() for frame in video.frames],
    }
