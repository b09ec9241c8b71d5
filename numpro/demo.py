"""`python -m numpro demo`: NumPro end to end on this machine in seconds, nothing downloaded.

1. writes a 30 s synthetic video (29.97 fps, 320x240) in which a blue ball rolls across the
   frame from 12 s to 20 s, and a NumPro test file with two queries about it;
2. numbers its frames with the real pipeline (1 FPS, 336x336, red numbers) and draws them as a
   manga page (manga.png);
3. runs the training-free moment-retrieval evaluation (the code behind eval/qwen2_vl_7b_mr.py)
   with a tiny random Qwen2-VL built locally: predictions.jsonl and metrics.json;
4. draws ground truth vs prediction over the numbered frames (timeline.png).

The tiny model is untrained, so its answers are noise: the demo shows the pipeline working,
not NumPro's accuracy. The printed command runs the real Qwen2-VL-7B-Instruct on the same files.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import jsonio, prompts, synthetic, timeline, viz
from .metrics.report import MR_KEYS, default_out_path, format_table

SECONDS = 30
SOURCE_FPS = Fraction(30000, 1001)  # 29.97, the usual NTSC rate: sampling by time matters here
SIZE = (320, 240)
EVENT = (12.0, 20.0)  # the ball is in view from 12 s to 20 s
PROTOCOL_FPS = 1.0  # training-free moment retrieval samples 1 frame per second (SPEC 2)
VIDEO_NAME = "ball.mp4"
MODEL_DIR = "tiny_qwen2_vl"
REAL_MODEL = "Qwen/Qwen2-VL-7B-Instruct"

# (id, query, start, end): the ball crosses at constant speed, so it is right of centre from 16 s
QUERIES = (
    ("ball_crosses", "a blue ball rolling across the frame", EVENT[0], EVENT[1]),
    ("ball_right_half", "the blue ball in the right half of the frame", 16.0, EVENT[1]),
)


# ------------------------------------------------------------------------------ the scene
@lru_cache(maxsize=2)
def _background(width: int, height: int) -> np.ndarray:
    """Sky over grass, three clouds: plain, so the ball is the only thing that changes."""
    ground = int(0.72 * height)
    frame = np.empty((height, width, 3), dtype=np.float64)
    sky = np.linspace(0, 1, ground)[:, None, None]
    frame[:ground] = (1 - sky) * np.array([130, 185, 235]) + sky * np.array([215, 232, 248])
    grass = np.linspace(0, 1, height - ground)[:, None, None]
    frame[ground:] = (1 - grass) * np.array([110, 175, 90]) + grass * np.array([70, 135, 60])
    yy, xx = np.mgrid[0:height, 0:width]
    for cx, cy, rx, ry in ((0.25, 0.2, 0.11, 0.05), (0.33, 0.17, 0.08, 0.06), (0.7, 0.3, 0.12, 0.045)):
        inside = ((xx - cx * width) / (rx * width)) ** 2 + ((yy - cy * height) / (ry * height)) ** 2
        frame[inside <= 1] = (248, 250, 252)
    return np.round(frame).astype(np.uint8)


def ball_x(t: float, width: int, radius: float) -> float | None:
    """Ball centre (pixels) at time t: touches the left edge at 12 s and the right edge at 20 s."""
    start, end = EVENT
    if not start <= t <= end:
        return None
    return radius + (width - 2 * radius) * (t - start) / (end - start)


def _disc(xx, yy, cx, cy, rx, ry) -> np.ndarray:
    """Anti-aliased coverage (0..1) of an ellipse."""
    distance = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
    return np.clip((1 - distance) * min(rx, ry) + 0.5, 0, 1)[..., None]


def scene(index: int, width: int, height: int) -> np.ndarray:
    """Frame `index` of the demo video (frame_fn for synthetic.write_video)."""
    frame = _background(width, height).copy()
    radius = height / 9
    x = ball_x(index / float(SOURCE_FPS), width, radius)
    if x is None:
        return frame
    ground = int(0.72 * height)
    y = ground - radius
    # Only the box around the ball and its shadow changes: drawing there keeps the video fast to make.
    x0, x1 = max(0, int(x - radius) - 2), min(width, int(x + radius) + 3)
    y0, y1 = max(0, int(y - radius) - 2), min(height, int(ground + radius * 0.4) + 2)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    patch = frame[y0:y1, x0:x1].astype(np.float64)
    patch *= 1 - 0.35 * _disc(xx, yy, x, ground + radius * 0.15, radius * 0.9, radius * 0.22)  # shadow
    ball = _disc(xx, yy, x, y, radius, radius)
    light = np.hypot(xx - x + radius / 3, yy - y + radius / 3)[..., None] / (1.6 * radius)
    patch = patch * (1 - ball) + ball * np.clip(1.25 - light, 0.4, 1) * np.array([45, 90, 235])
    frame[y0:y1, x0:x1] = np.clip(patch + 0.5, 0, 255).astype(np.uint8)
    return frame


# ------------------------------------------------------------------------------ the steps
@dataclass
class DemoResult:
    output: Path
    video: Path
    annotations: Path
    manga: viz.MangaPage
    predictions: Path
    metrics: dict
    timeline: Path
    records: list[dict]


def write_inputs(output: Path) -> tuple[Path, Path]:
    """The demo video and its NumPro test file (JSON list, times in seconds)."""
    num_frames = round(SECONDS * SOURCE_FPS)
    video = synthetic.write_video(output / "videos" / VIDEO_NAME, num_frames, SOURCE_FPS, SIZE, frame_fn=scene)
    duration = round(num_frames / float(SOURCE_FPS), 3)
    records = [{"id": key, "video": VIDEO_NAME, "query": query, "start_time": start, "end_time": end,
                "duration": duration} for key, query, start, end in QUERIES]
    annotations = output / "test.json"
    jsonio.write_json(annotations, records)
    return video, annotations


def draw_manga(video: Path, output: Path) -> tuple[viz.MangaPage, viz.Strip]:
    """All numbered frames at 1 FPS, the ground truth of the first query outlined."""
    sampled = viz.numbered_frames(video, PROTOCOL_FPS)
    _, query, start, end = QUERIES[0]
    first, last = timeline.seconds_to_frame(start, PROTOCOL_FPS), timeline.seconds_to_frame(end, PROTOCOL_FPS)
    header = viz.manga_header(VIDEO_NAME, sampled, query)
    header.append((f"Ground truth (outlined in green): {viz.format_seconds(start)} s to {viz.format_seconds(end)} s, "
                   f"so the right answer is 'From Frame {first} to Frame {last}'.", viz.GT_COLOR))
    page = viz.manga_page(sampled.pixels, sampled.numbers, PROTOCOL_FPS, viz.MANGA_COLS, header,
                          highlight=range(first, last + 1))
    viz.save_image(page.image, output / "manga.png")
    return page, viz.strip_from(sampled)


@contextlib.contextmanager
def _one_torch_thread():
    """The tiny model gains nothing from threads, and on a busy CPU torch's thread pool waits on
    descheduled threads (ten times slower here): one thread keeps the demo fast. Restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def tiny_model(output: Path) -> Path:
    """The tiny random Qwen2-VL, built once into the output folder and reused.

    Built under a temporary name and renamed when complete, so an interrupted build is never
    taken for a finished model.
    """
    from .models import tiny

    path = output / MODEL_DIR
    if path.is_dir():
        return path
    partial = output / f"{MODEL_DIR}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    with _one_torch_thread():
        tiny.build("qwen2_vl", partial)
    os.replace(partial, path)
    return path


def run_moment_retrieval(annotations: Path, videos: Path, model_path: Path, output: Path) -> tuple[Path, dict]:
    """The training-free evaluation exactly as eval/qwen2_vl_7b_mr.py runs it (1 FPS, 336x336)."""
    from .evaluation.runner import RunOptions, run
    from .evaluation.tasks import MomentRetrieval
    from .models.base import load_model

    predictions = output / "predictions.jsonl"
    predictions.unlink(missing_ok=True)  # the runner resumes; the demo always answers afresh
    options = RunOptions(annotations=annotations, videos=videos, save_path=predictions, fps=PROTOCOL_FPS,
                         workers=0, progress=False)
    with _one_torch_thread():  # the runner logs its summary; the demo prints its own report
        metrics = run(MomentRetrieval(), options, lambda device: load_model(model_path, "qwen2_vl", device=device),
                      device="cpu")
    metrics_file = output / "metrics.json"
    os.replace(default_out_path(predictions), metrics_file)
    return predictions, metrics


def draw_timeline(predictions: Path, strip: viz.Strip, output: Path) -> tuple[Path, list[dict]]:
    records = jsonio.read_records(predictions)
    rows = viz.timeline_rows(records, source=str(predictions))
    title = ("Demo: tiny UNTRAINED Qwen2-VL (random weights): its answers are noise. "
             "Green: ground truth, orange: prediction.")
    path = viz.draw_timelines(rows, output / "timeline.png", {str(row.id): strip for row in rows}, title)
    return path, records


def run_demo(output: str | Path = "demo_output") -> DemoResult:
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    video, annotations = write_inputs(output)
    page, strip = draw_manga(video, output)
    model_path = tiny_model(output)
    predictions, metrics = run_moment_retrieval(annotations, video.parent, model_path, output)
    timeline_png, records = draw_timeline(predictions, strip, output)
    return DemoResult(output, video, annotations, page, predictions, metrics, timeline_png, records)


def _quiet_libraries() -> None:
    """Keep the command's output to what it made: no progress bars from transformers, no DeepSpeed
    notice about falling back to the CPU (the demo runs on the CPU on purpose)."""
    logging.getLogger("DeepSpeed").addFilter(lambda record: record.levelno >= logging.ERROR)
    with contextlib.suppress(ImportError):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()


# ------------------------------------------------------------------------------ the report
def _made(result: DemoResult) -> list[str]:
    out = result.output
    made = [
        (result.video, f"synthetic {SECONDS} s video, 29.97 fps, {SIZE[0]}x{SIZE[1]}: a blue ball rolls across "
                       f"from {EVENT[0]:g} s to {EVENT[1]:g} s"),
        (result.annotations, f"{len(QUERIES)} moment-retrieval queries in the NumPro test format"),
        (out / "manga.png", f"the {len(result.manga.numbers)} numbered frames the model sees (1 FPS, 336x336)"),
        (out / MODEL_DIR, "tiny random Qwen2-VL in the real checkpoint's layout (built here, nothing downloaded)"),
        (result.predictions, "the model's answers, parsed to frame numbers and seconds"),
        (out / "metrics.json", "R@0.3, R@0.5, R@0.7, mIoU"),
        (result.timeline, "ground truth vs predicted span over the numbered frames"),
    ]
    width = max(len(str(path)) for path, _ in made)
    return ["NumPro demo: made", *(f"  {str(path):<{width}}  {what}" for path, what in made)]


def _answers(result: DemoResult) -> list[str]:
    lines = ["Prompt (first query): " + prompts.mr_prompt(QUERIES[0][1]), "Answers of the tiny model:"]
    for record in result.records:
        got = (f"From Frame {record['pred_start']} to Frame {record['pred_end']} = "
               f"{record['pred_start_sec']:g}-{record['pred_end_sec']:g} s" if record["parsed"]
               else "no span in the answer (scores IoU 0)")
        first, last = (timeline.seconds_to_frame(record[key], record["fps"]) for key in ("gt_start", "gt_end"))
        lines.append(f"  {record['id']}: ground truth {record['gt_start']:g}-{record['gt_end']:g} s "
                     f"(From Frame {first} to Frame {last}); model: {got}; "
                     f"raw answer: {viz.printable(record['response'], 60)!r}")
    return lines + ["Metrics:", format_table(result.metrics, MR_KEYS)]


def _next_steps(result: DemoResult) -> list[str]:
    out, videos = result.output, result.video.parent
    real = out / "predictions_qwen2_vl_7b.jsonl"
    return [
        "The tiny model is UNTRAINED (random weights): its answers are noise and these metrics mean nothing.",
        "The demo shows the pipeline working end to end, not NumPro's accuracy. To run the real model on the",
        f"same files ({REAL_MODEL}, about 16 GB download, a GPU advised):",
        f"  python eval/qwen2_vl_7b_mr.py --model_path {REAL_MODEL} --data_path {result.annotations} "
        f"--video_path {videos} --save_path {real}",
        f"  python -m numpro viz timeline {real} --output {out / 'timeline_qwen2_vl_7b.png'} --videos {videos}",
        "A manga page of your own video: python -m numpro viz manga VIDEO --output manga.png",
    ]


def summary(result: DemoResult) -> str:
    """What the demo made, what the model answered, and how to run the real model."""
    return "\n".join([*_made(result), "", *_answers(result), "", *_next_steps(result)])


def register(subparsers, name: str, help_text: str) -> None:
    parser = subparsers.add_parser(name, help=help_text, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="demo_output", help="folder for everything the demo makes "
                        "(default: %(default)s)")
    parser.set_defaults(func=_command)


def _command(args) -> int:
    _quiet_libraries()
    print(summary(run_demo(args.output)))
    return 0
