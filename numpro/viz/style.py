"""What the pictures share: colours, fonts, how times are written, saving."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..stamp import find_font

GT_COLOR = "#1a9641"  # ground truth: green
PRED_COLOR = "#e66101"  # prediction: orange
FAIL_COLOR = "#b2182b"  # unparsed / reversed answers


@lru_cache(maxsize=8)
def fonts(size: int):
    """(regular, bold) DejaVu Sans at `size` pixels, from matplotlib's copy beside the stamp font."""
    from PIL import ImageFont

    bold = find_font()
    return ImageFont.truetype(str(bold.with_name("DejaVuSans.ttf")), size), ImageFont.truetype(str(bold), size)


def wrap(text: str, font, width: float) -> list[str]:
    """Greedy word wrap to `width` pixels."""
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and font.getlength(trial) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + ([line] if line else [])


def format_seconds(seconds: float) -> str:
    return f"{seconds:.2f}".rstrip("0").rstrip(".")


def printable(text: str, limit: int = 90) -> str:
    """One line that the plot font can draw (no glyph-missing boxes): control and non-Latin
    characters become '·', which also keeps an untrained model's byte soup readable."""
    cleaned = "".join(c if c.isprintable() and ord(c) < 0x250 else "·" for c in " ".join(str(text).split()))
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def save_image(image, output: str | Path) -> Path:
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        image.save(output)
    except (ValueError, KeyError) as err:  # PIL: unknown extension
        raise ValueError(f"cannot write {output}: unsupported image format (use .png)") from err
    return output
