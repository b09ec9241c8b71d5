"""Preprocessing throughput: source frames per second, against the decode floor and a naive loop.

    python benchmarks/preprocess.py                 # a few minutes on 2 cores
    python benchmarks/preprocess.py --videos 2 --seconds 30 --repeats 1   # quick look

Measured in one run on the same synthetic videos (H.264 High profile with B-frames, 640x360 at
29.97 fps, textured and moving so they do not decode unrealistically fast), each figure the best
of --repeats interleaved passes (the machine may be shared: the best pass is the least disturbed),
as wall-clock frames/s and as frames per CPU-second (all threads and worker processes counted):
- decode floor: PyAV decodes every frame and does nothing else (1 process; all cores: one
  process per file, as many at once as there are cores);
- ours: numpro.preprocess (probe, decode the frames the timeline picks, resize, stamp, encode
  the 0.5-FPS mp4, write manifest) with 1 worker, with all cores, and per decoding backend;
- numpro.video.read_sampled alone: the decoding layer ours is built on, so the rest of ours
  (stamping, encoding, writing) is the difference;
- naive: upstream's loop (OpenCV reads every frame, the font is loaded and PIL stamps each
  sampled frame, OpenCV's mp4v writer), fed the same frames the timeline picks.
Ours can beat the floor: its PyAV decoder skips the frames that neither an output nor another
frame needs (numpro.video).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from multiprocessing import get_context
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numpro import synthetic, timeline, video  # noqa: E402
from numpro.preprocess import Settings, execute, make_plan  # noqa: E402

NTSC = Fraction(30000, 1001)
LENGTHS = (150, 120, 100, 90, 75, 60)  # seconds; unequal, as real datasets are


# ------------------------------------------------------------------ synthetic inputs
class _Scene:
    """A textured backdrop that pans, with a few boxes moving over it: about 400 kbit/s H.264."""

    def __init__(self, width: int, height: int):
        import cv2

        rng = np.random.default_rng(0)
        noise = rng.integers(0, 255, size=(height + 200, width + 400, 3), dtype=np.uint8).astype(np.float32)
        base = cv2.normalize(cv2.GaussianBlur(noise, (0, 0), 6), None, 0, 255, cv2.NORM_MINMAX)
        fine = cv2.GaussianBlur(rng.normal(0, 1, size=noise.shape[:2]).astype(np.float32), (0, 0), 1.0)
        self.texture = np.clip(base + 25 * fine[..., None] / fine.std(), 0, 255).astype(np.uint8)

    def __call__(self, i: int, w: int, h: int) -> np.ndarray:
        dx = int(400 * (0.5 + 0.5 * np.sin(i / 300)))
        dy = int(200 * (0.5 + 0.5 * np.cos(i / 450)))
        frame = self.texture[dy : dy + h, dx : dx + w].copy()
        for j in range(4):
            x = int((w - 60) * (0.5 + 0.5 * np.sin(i / (40 + 17 * j) + j)))
            y = int((h - 60) * (0.5 + 0.5 * np.cos(i / (55 + 11 * j) + 2 * j)))
            frame[y : y + 60, x : x + 60] = (60 * j, 255 - 50 * j, 120)
        return frame


def make_videos(folder: Path, count: int, seconds: float | None, size: tuple[int, int]) -> list[Path]:
    """Write (or reuse) the benchmark videos; the file name records how each was made."""
    folder.mkdir(parents=True, exist_ok=True)
    scene = None
    paths = []
    for i in range(count):
        length = seconds if seconds else LENGTHS[i % len(LENGTHS)]
        path = folder / f"bench_{i}_{length:g}s_{size[0]}x{size[1]}_2997.mp4"
        if not path.exists():
            scene = scene or _Scene(*size)
            part = path.with_name(".partial-" + path.name)
            synthetic.write_video(part, round(length * NTSC), NTSC, size, frame_fn=scene,
                                  options={"preset": "veryfast"})  # High profile, B-frames, CABAC
            os.replace(part, path)
        paths.append(path)
    return paths


# ------------------------------------------------------------------ yardsticks
def decode_all(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


def naive_upstream(path: Path, output: Path) -> int:
    """Upstream's per-frame loop, but choosing the timeline's frames (upstream's float modulo
    test keeps only frame 0 at 29.97 fps, which would make it look faster than it is)."""
    import cv2
    from PIL import Image, ImageDraw, ImageFont

    from numpro.stamp import find_font

    font_path = str(find_font())
    info = video.probe(path, "opencv")
    wanted = {f.source_index for f in timeline.plan_frames(info.duration, 0.5, info.frame_times)}
    capture = cv2.VideoCapture(str(path))
    writer = cv2.VideoWriter(str(output / (path.stem + ".mp4")), cv2.VideoWriter_fourcc(*"mp4v"), 0.5, (336, 336))
    index = number = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index in wanted:
            image = Image.fromarray(cv2.cvtColor(cv2.resize(frame, (336, 336)), cv2.COLOR_BGR2RGB))
            draw = ImageDraw.Draw(image)
            font = ImageFont.truetype(font_path, 40)
            text = str(number)
            box = draw.textbbox((0, 0), text, font=font)
            w, h = box[2] - box[0], box[3] - box[1]
            draw.text((336 - w, 336 - h - h / 3), text, font=font, fill="red")
            writer.write(cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR))
            number += 1
        index += 1
    capture.release()
    writer.release()
    return index


def cpu_seconds() -> float:
    """CPU time used so far by this process and its finished child processes."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def in_processes(fn, paths, workers: int) -> None:
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        list(pool.map(fn, paths))


def ours(paths, scratch: Path, workers: int, backend: str) -> None:
    settings = Settings(backend=backend)
    out = scratch / f"ours_{backend}_{workers}"
    plan = make_plan(paths, out, settings)
    report = execute(plan, out, settings, workers=workers, progress=False)
    if report.failed or report.done != len(paths):
        raise RuntimeError(f"preprocessing failed: {report.failed}")


# ------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=6, help="number of synthetic videos")
    parser.add_argument("--seconds", type=float, default=None,
                        help="length of each video (default: 150, 120, 100, 90, 75, 60 s in turn)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--repeats", type=int, default=2, help="interleaved passes; the best counts")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="'all cores' worker count")
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "numpro_bench_preprocess"),
                        help="where the synthetic videos are kept between runs")
    args = parser.parse_args()

    t0 = time.perf_counter()
    paths = make_videos(Path(args.workdir), args.videos, args.seconds, (args.width, args.height))
    frames = sum(video.probe(p, "pyav").num_frames for p in paths)
    print(f"{len(paths)} videos, {frames} source frames ({args.width}x{args.height}, 29.97 fps, "
          f"{frames / float(NTSC):.0f} s), ready in {time.perf_counter() - t0:.0f} s; "
          f"{os.cpu_count()} cores; best of {args.repeats}")

    n = args.workers
    floor1, floorn = "decode floor, 1 process (PyAV, every frame)", f"decode floor, {n} processes"
    methods = [  # (name, processes, run(scratch folder))
        (floor1, 1, lambda s: [decode_all(p) for p in paths]),
        (floorn, n, lambda s: in_processes(decode_all, paths, n)),
        ("ours, 1 worker (default backend: pyav)", 1, lambda s: ours(paths, s, 1, "pyav")),
        (f"ours, {n} workers (default backend: pyav)", n, lambda s: ours(paths, s, n, "pyav")),
        ("ours, 1 worker, --backend decord", 1, lambda s: ours(paths, s, 1, "decord")),
        ("ours, 1 worker, --backend opencv", 1, lambda s: ours(paths, s, 1, "opencv")),
        ("numpro.video.read_sampled alone (pyav), 1 process", 1,
         lambda s: [video.read_sampled(p, 0.5, 336, "pyav") for p in paths]),
        ("naive upstream-style loop, 1 process", 1, lambda s: [naive_upstream(p, s) for p in paths]),
    ]
    best = {name: float("inf") for name, _, _ in methods}
    cpu = {name: float("inf") for name, _, _ in methods}
    for _ in range(args.repeats):
        for name, _, run in methods:
            scratch = Path(tempfile.mkdtemp(prefix="numpro_bench_"))
            try:
                start, used = time.perf_counter(), cpu_seconds()
                run(scratch)
                best[name] = min(best[name], time.perf_counter() - start)
                cpu[name] = min(cpu[name], cpu_seconds() - used)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)

    print(f"\n{'':54s} {'frames/s':>9s} {'vs floor':>9s} {'frames/CPU-s':>13s} {'vs floor':>9s}")
    for name, processes, _ in methods:
        floor = floor1 if processes == 1 else floorn
        rate, per_cpu = frames / best[name], frames / cpu[name]
        print(f"{name:54s} {rate:9.0f} {rate / (frames / best[floor]):8.2f}x "
              f"{per_cpu:13.0f} {per_cpu / (frames / cpu[floor]):8.2f}x")
    print(f"\nvs floor: against the decode floor with as many processes. CPU-s: user + system time of "
          f"this process and its workers (all threads), which other load on the machine barely moves. "
          f"Total {time.perf_counter() - t0:.0f} s")

if __name__ == "__main__":
    main()
