"""The manga page: numbered frames in a grid, exactly the pixels the model is given."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import prompts, timeline
from ..frames import DEFAULT_STYLE, NumberedVideo, numbered_frames
from ..stamp import StampStyle
from ..video import SampledVideo, VideoError
from .style import GT_COLOR, fonts, wrap, format_seconds, save_image

MANGA_COLS = 6
MANGA_MAX_FRAMES = 24


@dataclass
class MangaPage:
    image: "Image.Image"  # noqa: F821  (PIL, imported lazily)
    boxes: list[tuple[int, int, int, int]]  # (x0, y0, x1, y1) of each panel, in frame order
    numbers: list[int]


_GAP = 16  # gutter between panels; wide enough for a highlight outline
_MARGIN = 28
_CAPTION = 30  # caption strip under each panel
_OUTLINE = 6


def _header_lines(header: Sequence[tuple[str, str]], width: int) -> list[tuple[str, object, str]]:
    """(text, font, colour) of each wrapped header line; the first paragraph is the title."""
    lines = []
    for i, (text, color) in enumerate(header):
        font = fonts(38)[1] if i == 0 else fonts(26)[0]
        lines.extend((line, font, color) for line in wrap(text, font, width))
    return lines


def _draw_panel(page, draw, frame: np.ndarray, number: int, x0: int, y0: int, fps: float, marked: bool) -> None:
    """One frame pasted as is, outlined when marked, captioned with the time its number means."""
    from PIL import Image

    height, width = frame.shape[:2]
    page.paste(Image.fromarray(frame), (x0, y0))
    regular, bold = fonts(22)
    color, font = (GT_COLOR, bold) if marked else ("#444444", regular)
    if marked:  # drawn in the gutter only: the panel's pixels stay the model's input
        draw.rectangle((x0 - _OUTLINE, y0 - _OUTLINE, x0 + width + _OUTLINE - 1, y0 + height + _OUTLINE - 1),
                       outline=GT_COLOR, width=_OUTLINE)
    caption = f"frame {number} = {format_seconds(timeline.frame_to_seconds(number, fps))} s"
    draw.text((x0 + width / 2, y0 + height + _OUTLINE + 2), caption, font=font, fill=color, anchor="mt")


def manga_page(
    pixels: np.ndarray,
    numbers: Sequence[int],
    fps: float,
    cols: int = MANGA_COLS,
    header: Sequence[tuple[str, str]] = (),
    highlight: Sequence[int] = (),
) -> MangaPage:
    """Numbered frames in a grid, with `header` paragraphs (text, colour) above them.

    Panels are pasted pixel for pixel (no resampling), so the page shows exactly what the model
    sees. Panels whose number is in `highlight` get a green outline in the gutter around them.
    """
    from PIL import Image, ImageDraw

    if len(pixels) == 0:
        raise ValueError("no frames to draw")
    cols = max(1, min(cols, len(pixels)))
    n_rows = -(-len(pixels) // cols)
    height, width = pixels.shape[1:3]
    page_width = 2 * _MARGIN + cols * width + (cols - 1) * _GAP
    lines = _header_lines(header, page_width - 2 * _MARGIN)
    line_heights = [int(font.size * 1.35) for _, font, _ in lines]
    top = _MARGIN + sum(line_heights) + (_MARGIN // 2 if lines else 0)
    page_height = top + n_rows * (height + _CAPTION) + (n_rows - 1) * _GAP + _MARGIN

    page = Image.new("RGB", (page_width, page_height), "white")
    draw = ImageDraw.Draw(page)
    y = _MARGIN
    for (text, font, color), line_height in zip(lines, line_heights):
        draw.text((_MARGIN, y), text, font=font, fill=color)
        y += line_height

    marked = set(highlight)
    boxes = []
    for i, (frame, number) in enumerate(zip(pixels, numbers)):
        row, col = divmod(i, cols)
        x0, y0 = _MARGIN + col * (width + _GAP), top + row * (height + _CAPTION + _GAP)
        _draw_panel(page, draw, frame, int(number), x0, y0, fps, number in marked)
        boxes.append((x0, y0, x0 + width, y0 + height))
    return MangaPage(page, boxes, [int(n) for n in numbers])


def manga_header(video_name: str, sampled: SampledVideo, query: str | None = None) -> list[tuple[str, str]]:
    """Title and explanation paragraphs for a manga page (its style and labels are read from a
    NumberedVideo; a plain SampledVideo is described as stamped in the default style)."""
    fps = format_seconds(sampled.fps)
    total = timeline.num_sampled_frames(sampled.info.duration, sampled.fps)
    kept = len(sampled.frames)
    size = f"{sampled.pixels.shape[2]}x{sampled.pixels.shape[1]}"
    count = f"{kept} frames" if kept == total else f"{kept} of its {total} frames (evenly spread)"
    style, stamp_text = _labels(sampled)
    instruction, question = ((prompts.INSTRUCTION_SECONDS, prompts.MR_QUESTION_SECONDS) if stamp_text == "seconds"
                             else (prompts.INSTRUCTION, prompts.MR_QUESTION))
    prompt = prompts.mr_prompt(query or "<query>", instruction, question)
    return [
        ("NumPro: number every frame, then ask the model for frame numbers", "black"),
        (f"{video_name} ({format_seconds(sampled.info.duration)} s) at {fps} FPS: {count}, resized to {size}, "
         f"{_stamped_with(style, stamp_text)}; frame k is at k / {fps} s.", "#222222"),
        (f'The model reads the numbers like manga panels. Prompt: "{prompt}"', "#1f4e9c"),
    ]


def _labels(sampled: SampledVideo) -> tuple[StampStyle | None, str]:
    if isinstance(sampled, NumberedVideo):
        return sampled.style, sampled.stamp_text
    return DEFAULT_STYLE, "number"


def _stamped_with(style: StampStyle | None, stamp_text: str) -> str:
    if style is None:
        return "left plain (no numbers)"
    what = "its time k / fps (e.g. 12s)" if stamp_text == "seconds" else "its number k"
    return f"each stamped with {what} ({style.color}, {style.position.replace('_', '-')})"


def draw_manga(video: str | Path, output: str | Path, fps: float = 1.0, max_frames: int | None = MANGA_MAX_FRAMES,
               cols: int = MANGA_COLS, style: StampStyle | None = DEFAULT_STYLE,
               stamp_text: str = "number") -> MangaPage:
    """Manga page of any video, written to `output`: its frames as numpro.frames gives them to a model."""
    sampled = numbered_frames(video, fps, max_frames=max_frames, style=style, stamp_text=stamp_text)
    if not sampled.frames:
        raise VideoError(video, f"too short to sample a frame at {fps} FPS")
    page = manga_page(sampled.pixels, sampled.numbers, fps, cols, manga_header(Path(video).name, sampled))
    save_image(page.image, output)
    return page
