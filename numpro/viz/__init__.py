"""`python -m numpro viz`: the two pictures that show what NumPro does, for any data.

manga     the numbered frames of a video in a grid, like manga panels: exactly the pixels the
          model is given (numpro.frames: decoded by numpro.video, stamped by numpro.stamp),
          each panel captioned with the time its number stands for.
timeline  ground-truth span vs predicted span for queries of a moment-retrieval predictions
          file (our JSON Lines or upstream's JSON list): spans in seconds, frame numbers on
          top, IoU in the title, answers that did not parse shown as such.

Examples:
    python -m numpro viz manga data/charades/videos/3MSZA.mp4 --output manga.png
    python -m numpro viz timeline results/charades_test_Qwen2-VL-7B-Instruct_numpro_1fps.jsonl --output worst.png --worst 6
"""

from ..frames import numbered_frames
from .cli import register
from .manga import MANGA_COLS, MANGA_MAX_FRAMES, MangaPage, draw_manga, manga_header, manga_page
from .rows import TIMELINE_FIRST, TimelineRow, select_rows, timeline_rows, timeline_title
from .style import FAIL_COLOR, GT_COLOR, PRED_COLOR, format_seconds, printable, save_image
from .timelines import STRIP_MAX_FRAMES, Strip, draw_timelines, strip_from

__all__ = [
    "FAIL_COLOR", "GT_COLOR", "MANGA_COLS", "MANGA_MAX_FRAMES", "PRED_COLOR", "STRIP_MAX_FRAMES", "TIMELINE_FIRST",
    "MangaPage", "Strip", "TimelineRow", "draw_manga", "draw_timelines", "format_seconds", "manga_header",
    "manga_page", "numbered_frames", "printable", "register", "save_image", "select_rows", "strip_from",
    "timeline_rows", "timeline_title",
]
