"""Read a video's timing and decode exactly the frames the timeline asks for.

Backends: PyAV ("pyav"), decord and OpenCV ("opencv"); the default "auto" decodes with PyAV, which
skips the frames nobody needs and measured fastest (BENCHMARKS.md), and falls back to decord when
PyAV cannot read the file. OpenCV assumes a constant frame rate. Every failure to open or decode is raised
as `VideoError`, which names the file and the reason.

Frames come back as RGB uint8 arrays, resized with cv2.resize(frame, (W, H)) and its default
(bilinear) interpolation, as upstream does (SPEC 2). Which frames to take is decided in
numpro.timeline, never here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from . import timeline
from .protocol import FRAME_SIZE

BACKENDS = ("auto", "decord", "pyav", "opencv")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg", ".wmv", ".3gp")
_CHUNK = 16  # frames decoded per decord call: bounds memory at full source resolution


class VideoError(RuntimeError):
    """A video that cannot be opened or decoded; str() names the file and the reason."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # picklable, so worker processes can send it back
        return (type(self), (self.path, self.reason))


@dataclass(frozen=True)
class VideoInfo:
    path: str
    fps: float  # average frame rate from the container
    num_frames: int
    width: int
    height: int
    frame_times: np.ndarray = field(repr=False)  # presentation times (s), first frame at 0
    backend: str = "decord"

    @property
    def duration(self) -> float:
        """Seconds covered by the frames: last frame's time plus one frame (n / fps at CFR)."""
        if self.num_frames == 0:
            return 0.0
        return float(self.frame_times[-1]) + 1.0 / self.fps


@dataclass
class SampledVideo:
    """The numbered frames of one video: what gets stamped and fed to a model."""

    info: VideoInfo
    fps: float  # sampling rate
    frames: list[timeline.SampledFrame]  # kept frames (after any cap), in order
    pixels: np.ndarray  # (len(frames), H, W, 3) uint8 RGB

    @property
    def numbers(self) -> list[int]:
        return [f.number for f in self.frames]


def _size_tuple(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        return (size, size)
    width, height = size
    return (int(width), int(height))


def _resize(frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or (frame.shape[1], frame.shape[0]) == size:
        return np.ascontiguousarray(frame)
    import cv2

    return cv2.resize(frame, size)


def resize_frame(frame: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    """An RGB frame (or still image) resized exactly as decoded frames are (SPEC 2); size: N or (W, H)."""
    return _resize(frame, _size_tuple(size))


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoError(path, "file not found")
    if not path.is_file():
        raise VideoError(path, "not a file")
    if path.stat().st_size == 0:
        raise VideoError(path, "file is empty")


def _rate(fps: float, frame_times: np.ndarray, path: Path) -> float:
    """The container's average rate, or one derived from the timestamps when it is missing."""
    if fps and math.isfinite(fps) and fps > 0:
        return float(fps)
    if frame_times.size >= 2 and frame_times[-1] > 0:
        return float((frame_times.size - 1) / frame_times[-1])
    raise VideoError(path, "frame rate unknown")


# ---------------------------------------------------------------- decord
def _decord_reader(path: Path):
    try:
        import decord
    except ImportError as exc:  # pragma: no cover - decord is in requirements
        raise VideoError(path, f"decord is not installed ({exc})") from exc
    try:
        return decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=0)
    except Exception as exc:  # decord raises its own DECORDError and RuntimeError
        raise VideoError(path, f"cannot open with decord: {exc}") from exc


def _probe_decord(path: Path) -> VideoInfo:
    reader = _decord_reader(path)
    n = len(reader)
    if n == 0:
        raise VideoError(path, "no video frames")
    try:
        stamps = np.asarray(reader.get_frame_timestamp(np.arange(n)), dtype=np.float64)[:, 0]
        height, width = reader[0].shape[:2]
    except Exception as exc:
        raise VideoError(path, f"cannot read frames with decord: {exc}") from exc
    times = np.round(stamps - stamps[0], 6)  # decord's timestamps are float32: drop the noise
    return VideoInfo(str(path), _rate(reader.get_avg_fps(), times, path), n, int(width), int(height), times, "decord")


def _decode_decord(path: Path, indices: np.ndarray, size) -> Iterator[np.ndarray]:
    reader = _decord_reader(path)
    if indices.size and indices[-1] >= len(reader):
        raise _ShortVideo(len(reader))
    for start in range(0, indices.size, _CHUNK):
        chunk = indices[start : start + _CHUNK]
        try:
            batch = reader.get_batch(chunk.tolist()).asnumpy()
        except Exception as exc:
            raise VideoError(path, f"cannot decode frames {chunk[0]}..{chunk[-1]} with decord: {exc}") from exc
        for frame in batch:
            yield _resize(frame, size)


# ---------------------------------------------------------------- PyAV
def _open_av(path: Path):
    import av

    try:
        container = av.open(str(path))
    except Exception as exc:
        raise VideoError(path, f"cannot open with PyAV: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise VideoError(path, "no video stream")
    return container


def _probe_pyav(path: Path) -> VideoInfo:
    container = _open_av(path)
    with container:
        stream = container.streams.video[0]
        # Demux (no decoding) to get every frame's timestamp: exact for variable frame rate and
        # immune to a wrong frame count in the header.
        try:
            pts = [p.pts for p in container.demux(stream) if p.pts is not None and not p.is_discard]
        except Exception as exc:
            raise VideoError(path, f"cannot read packets: {exc}") from exc
        if not pts:
            raise VideoError(path, "no video frames")
        times = np.sort(np.asarray(pts, dtype=np.float64)) * float(stream.time_base)
        times -= times[0]
        declared = stream.frames  # from the header; 0 when unknown
        if declared and declared - len(pts) > _short_tolerance(float(stream.average_rate or 1)):
            raise VideoError(path, f"truncated: header says {declared} frames, only {len(pts)} present")
        rate = float(stream.average_rate) if stream.average_rate else 0.0
        ctx = stream.codec_context
        return VideoInfo(str(path), _rate(rate, times, path), len(pts), ctx.width, ctx.height, times, "pyav")


def _decode_pyav(path: Path, indices: np.ndarray, size) -> Iterator[np.ndarray]:
    """Decode the frames at `indices` with PyAV, skipping the work on frames nobody needs.

    A first pass demuxes (no decoding) to learn each frame's timestamp; then every packet whose
    frame is not wanted is decoded with skip_frame="NONREF": a frame no other frame refers to is
    not decoded at all, which makes sparse sampling cheaper than decoding the whole video.
    Decoded frames are matched to the wanted ones by timestamp. Falls back to decoding every
    frame in order when the container gives no timestamps.
    """
    with _open_av(path) as container:
        stream = container.streams.video[0]
        try:
            pts = [p.pts for p in container.demux(stream) if p.size and not p.is_discard]
        except Exception as exc:
            raise VideoError(path, f"cannot read packets: {exc}") from exc
    if any(p is None for p in pts):
        yield from _decode_pyav_in_order(path, indices, size)
        return
    import av

    order = sorted(pts)
    if indices.size and indices[-1] >= len(order):
        raise _ShortVideo(len(order))
    wanted = {order[i]: i for i in indices.tolist()}
    found: dict[int, np.ndarray] = {}
    with _open_av(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"  # per-packet skip decisions need packets decoded as they come
        codec = stream.codec_context
        try:
            for packet in container.demux(stream):
                # the final empty packet flushes the decoder: decode everything still buffered
                codec.skip_frame = "DEFAULT" if packet.pts is None or packet.pts in wanted else "NONREF"
                try:
                    frames = codec.decode(packet)
                except av.error.InvalidDataError:
                    continue  # a damaged packet (a cut-off file's last one): its frame counts as missing
                for frame in frames:
                    if frame.pts in wanted and frame.pts not in found:
                        found[frame.pts] = _resize(frame.to_ndarray(format="rgb24"), size)
                if len(found) == len(wanted):
                    break
        except Exception as exc:
            raise VideoError(path, f"decoding failed after {len(found)} of {len(wanted)} frames: {exc}") from exc
    missing = [i for p, i in wanted.items() if p not in found]
    if missing:
        raise _ShortVideo(min(missing))
    for i in indices.tolist():
        yield found[order[i]]


def _decode_pyav_in_order(path: Path, indices: np.ndarray, size) -> Iterator[np.ndarray]:
    """Decode every frame in presentation order and keep the wanted positions."""
    with _open_av(path) as container:
        stream = container.streams.video[0]
        wanted = iter(indices.tolist())
        target = next(wanted, None)
        position = -1
        try:
            for position, frame in enumerate(container.decode(stream)):
                if target is None:
                    return
                if position == target:
                    yield _resize(frame.to_ndarray(format="rgb24"), size)
                    target = next(wanted, None)
        except Exception as exc:
            raise VideoError(path, f"decoding failed after frame {position}: {exc}") from exc
        if target is not None:
            raise _ShortVideo(position + 1)


# ---------------------------------------------------------------- OpenCV
def _open_cv(path: Path):
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise VideoError(path, "cannot open with OpenCV")
    return capture


def _probe_opencv(path: Path) -> VideoInfo:
    import cv2

    capture = _open_cv(path)
    try:
        fps = capture.get(cv2.CAP_PROP_FPS)
        n = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))  # from the header: may be an estimate
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        capture.release()
    if n <= 0:
        raise VideoError(path, "OpenCV reports no frames")
    if not fps or fps <= 0:
        raise VideoError(path, "OpenCV reports no frame rate")
    return VideoInfo(str(path), float(fps), n, width, height, timeline.source_times(n, fps), "opencv")


def _decode_opencv(path: Path, indices: np.ndarray, size) -> Iterator[np.ndarray]:
    import cv2

    capture = _open_cv(path)
    try:
        position = 0
        for target in indices.tolist():
            while position < target:  # grab() skips a frame without converting it
                if not capture.grab():
                    raise _ShortVideo(position)
                position += 1
            ok, frame = capture.read()
            if not ok:
                raise _ShortVideo(position)
            position += 1
            yield _resize(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), size)
    finally:
        capture.release()


# ---------------------------------------------------------------- public API
class _ShortVideo(Exception):
    """The file holds fewer frames than its header said (internal: handled in read_sampled)."""

    def __init__(self, available: int):
        self.available = available
        super().__init__(available)


_DECODERS = {"decord": _decode_decord, "pyav": _decode_pyav, "opencv": _decode_opencv}


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def probe(path: str | Path, backend: str = "auto") -> VideoInfo:
    """Frame rate, frame count, size and per-frame timestamps of a video.

    Timing comes from PyAV's demuxer (exact rational timestamps, no decoding) for every backend
    but OpenCV, so decord and PyAV pick the same frames; decord's own float32 timestamps are
    used only when PyAV cannot read the container. OpenCV assumes a constant frame rate.
    """
    _check_backend(backend)
    path = Path(path)
    _check_file(path)
    if backend == "opencv":
        return _probe_opencv(path)
    try:
        info = _probe_pyav(path)
    except VideoError as pyav_error:
        if backend == "pyav" or pyav_error.reason.startswith("truncated"):
            raise
        try:
            return _probe_decord(path)
        except VideoError as decord_error:
            raise VideoError(path, f"{pyav_error.reason}; {decord_error.reason}") from decord_error
    return info if backend in ("pyav", "auto") else replace(info, backend="decord")


def _decode_with(path: Path, indices: np.ndarray, size, backend: str) -> np.ndarray:
    """Decode `indices` (any order, repeats allowed) with one backend, or PyAV then decord for auto.

    Raises _ShortVideo when the file ends before the last index.
    """
    unique, inverse = np.unique(indices, return_inverse=True)
    target = _size_tuple(size)
    names = ("pyav", "decord") if backend == "auto" else (backend,)
    for attempt, name in enumerate(names):
        try:
            frames = list(_DECODERS[name](path, unique, target))
            break
        except VideoError:
            if attempt == len(names) - 1:
                raise
    if not frames:
        return np.zeros((0, target[1], target[0], 3) if target else (0, 0, 0, 3), dtype=np.uint8)
    return np.stack(frames)[inverse]


def decode(
    path: str | Path, indices: Iterable[int], size: int | Sequence[int] | None = FRAME_SIZE, backend: str = "auto"
) -> np.ndarray:
    """Decode the source frames at `indices` (presentation order), resized to `size`.

    Returns an array (len(indices), H, W, 3) of RGB uint8, in the order of `indices`.
    """
    _check_backend(backend)
    path = Path(path)
    _check_file(path)
    wanted = np.asarray(list(indices), dtype=np.int64)
    if wanted.size and wanted.min() < 0:
        raise ValueError("frame indices must be >= 0")
    try:
        return _decode_with(path, wanted, size, backend)
    except _ShortVideo as short:
        raise VideoError(path, f"has only {short.available} decodable frames, frame {wanted.max()} was asked for") from None


def _short_tolerance(fps: float) -> int:
    """Frames a header may overstate before we call the file truncated: about one second."""
    return max(2, int(math.ceil(fps)))


def read_sampled(
    path: str | Path,
    fps: float,
    size: int | Sequence[int] | None = FRAME_SIZE,
    backend: str = "auto",
    max_frames: int | None = None,
) -> SampledVideo:
    """Probe, plan (timeline), and decode the numbered frames of one video.

    Decodes only the frames the timeline keeps (after the `max_frames` cap). A frame count that
    overstates the decodable frames by up to about a second (OpenCV's header estimate, say) is
    corrected and the plan redone; a larger shortfall means a truncated file: VideoError.
    """
    path = Path(path)
    info = probe(path, backend)
    decoder = "opencv" if backend == "opencv" else ("auto" if backend == "auto" else info.backend)
    for _ in range(2):
        plan = timeline.plan_frames(info.duration, fps, info.frame_times)
        kept = [plan[i] for i in timeline.cap_frames(len(plan), max_frames)]
        indices = np.asarray([f.source_index for f in kept], dtype=np.int64)
        try:
            pixels = _decode_with(path, indices, size, decoder)
        except _ShortVideo as short:
            missing = info.num_frames - short.available
            if short.available == 0 or missing > _short_tolerance(info.fps):
                raise VideoError(
                    path, f"truncated: {info.num_frames} frames expected, only {short.available} decodable"
                ) from None
            info = replace(info, num_frames=short.available, frame_times=info.frame_times[: short.available])
            continue
        return SampledVideo(info, fps, kept, pixels)
    raise VideoError(path, "frame count keeps changing while decoding")
