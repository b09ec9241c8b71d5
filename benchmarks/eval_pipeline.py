"""Evaluation overhead per query, outside the model's forward passes, measured in one run.

Ours: each video decoded once (only the 1-FPS frames), resized and stamped in memory, then the
model's CPU preprocessing (qwen-vl-utils bounds + the processor) for every query of the video.
Upstream's approach (eval/qwen2_vl_7b_mr.py): for every query, OpenCV reads every native frame,
PIL stamps each one, an mp4v file is written, qwen-vl-utils decodes it again at 1 FPS, then the
processor runs. Both on the same synthetic Charades-like set with the tiny Qwen2-VL.

Usage: python benchmarks/eval_pipeline.py [--videos 3] [--queries 3] [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from numpro import prompts, synthetic
from numpro.evaluation.runner import BatchDataset, RunOptions, group_by_video, make_units
from numpro.evaluation.tasks import MomentRetrieval
from numpro.models.qwen2_vl import MAX_PIXELS, MIN_PIXELS, load
from numpro.models.tiny import build
from numpro.stamp import find_font, text_origin


def scene(index: int, width: int, height: int) -> np.ndarray:
    """Textured moving content (flat frames would make decoding unrealistically cheap)."""
    y, x = np.mgrid[0:height, 0:width]
    base = ((x * 2 + y * 3 + index * 5) % 256).astype(np.uint8)
    noise = np.random.default_rng(index).integers(0, 48, (height, width), dtype=np.uint8)
    return np.dstack([base, base // 2 + noise, 255 - base])


def make_dataset(root: Path, videos: int, queries: int, seconds: float) -> Path:
    rate = Fraction(30000, 1001)
    records = []
    for v in range(videos):
        synthetic.write_video(root / "videos" / f"v{v}.mp4", round(seconds * rate), rate, (640, 360),
                              frame_fn=scene, options={"preset": "veryfast"})
        for q in range(queries):
            records.append({"id": f"v{v}_{q}", "video": f"v{v}.mp4", "query": f"a person does thing {q}",
                            "start_time": 3.0, "end_time": 9.0, "duration": seconds})
    (root / "test.json").write_text(json.dumps(records))
    return root


def ours(root: Path, model) -> tuple[float, int]:
    task = MomentRetrieval()
    options = RunOptions(root / "test.json", root / "videos", root / "unused.jsonl", fps=1.0)
    queries = task.load(options.annotations)
    dataset = BatchDataset(make_units(group_by_video(queries), 1), task, options, model.preprocessor)
    start = time.perf_counter()
    for index in range(len(dataset)):
        dataset[index]
    return time.perf_counter() - start, len(queries)


def upstream_query(video: Path, text: str, processor, tmp: Path) -> None:
    import cv2
    from PIL import Image, ImageDraw, ImageFont
    from qwen_vl_utils import fetch_video

    font = ImageFont.truetype(str(find_font()), 40)
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS)
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    out_path = tmp / video.name
    writer = cv2.VideoWriter(str(out_path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    count = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        image = Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        draw = ImageDraw.Draw(image)
        draw.text(text_origin(draw, str(count), font, width, height, "bottom_right"), str(count), font=font, fill="red")
        writer.write(cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR))
        count += 1
    capture.release()
    writer.release()
    frames = fetch_video({"type": "video", "video": str(out_path), "fps": 1.0,
                          "min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS})
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}]
    prompt = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    processor(text=[prompt], videos=[frames], padding=True, return_tensors="pt", cap_pixels_per_frame=False)


def upstream(root: Path, processor) -> tuple[float, int]:
    records = json.loads((root / "test.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        for record in records:
            text = prompts.mr_prompt(record["query"])
            upstream_query(root / "videos" / record["video"], text, processor, Path(tmp))
        return time.perf_counter() - start, len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--queries", type=int, default=3, help="queries per video")
    parser.add_argument("--seconds", type=float, default=30.0, help="video length")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_dataset(Path(tmp), args.videos, args.queries, args.seconds)
        model = load(build("qwen2_vl", Path(tmp) / "tiny"))
        ours_s, n = ours(root, model)
        upstream_s, _ = upstream(root, model.preprocessor.processor)
    print(f"{args.videos} videos x {args.queries} queries, {args.seconds:.0f} s at 29.97 fps, 640x360; tiny Qwen2-VL")
    print(f"ours:     {ours_s / n * 1000:8.1f} ms per query (decode once per video, stamp in memory)")
    print(f"upstream: {upstream_s / n * 1000:8.1f} ms per query (stamp every frame, write mp4, decode again)")
    print(f"ours is {upstream_s / ours_s:.1f}x less overhead")


if __name__ == "__main__":
    main()
