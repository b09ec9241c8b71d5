"""numpro.stamp: pixel-identical to upstream's PIL drawing (SPEC 3), for every style."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from numpro import synthetic
from numpro.stamp import POSITIONS, FontNotFoundError, Stamper, StampStyle, find_font

NUMBERS = [0, 7, 10, 99, 240, 1000, 9999]


def reference(frame: np.ndarray, number: int, size: int, color: str, position: str) -> np.ndarray:
    """SPEC 3 written out: upstream's geometry and one PIL draw.text call."""
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(find_font()), size)
    text = str(number)
    bbox = draw.textbbox((0, 0), text, font)
    w, h = bbox[2] - bbox[0], bbox[3] - bbox[1]
    W, H = image.size
    if position == "top_left":
        x, y = 0, 0
    elif position == "top_right":
        x, y = W - w, 0
    elif position == "bottom_left":
        x, y = 0, H - h
        y -= h / 3
    elif position == "bottom_right":
        x, y = W - w, H - h
        y -= h / 3
    else:
        x, y = (W - w) // 2, (H - h) // 2
    draw.text((x, y), text, font=font, fill=color)
    return np.asarray(image)


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("size", [20, 33, 40, 60, 80])
@pytest.mark.parametrize("color", ["red", "blue", "black", "green"])
def test_pixel_identical_to_upstream_drawing(position, size, color):
    rng = np.random.default_rng(size)
    stamper = Stamper(StampStyle(size, color, position))
    for number in NUMBERS + [int(n) for n in rng.integers(0, 10000, 3)]:
        frame = rng.integers(0, 256, (336, 336, 3), dtype=np.uint8)
        ours = stamper.stamp(frame, number)
        assert np.array_equal(ours, reference(frame, number, size, color, position)), (number, size, color, position)


def test_identical_on_other_frame_sizes_and_reused_glyphs():
    stamper = Stamper()
    rng = np.random.default_rng(1)
    for shape in [(336, 336), (51, 67), (480, 640), (336, 336)]:
        frame = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        for number in [5, 5, 123]:
            assert np.array_equal(stamper.stamp(frame, number), reference(frame, number, 40, "red", "bottom_right"))


def test_red_is_pure_red_and_only_the_corner_changes():
    frame = np.full((336, 336, 3), 128, dtype=np.uint8)
    out = Stamper().stamp(frame, 42)
    changed = np.argwhere((out != frame).any(axis=2))
    assert changed.size
    assert changed[:, 0].min() > 336 // 2 and changed[:, 1].min() > 336 // 2  # bottom-right quadrant
    assert (out.reshape(-1, 3) == [255, 0, 0]).all(axis=1).any()  # fully covered glyph pixels
    assert np.array_equal(frame, np.full((336, 336, 3), 128, dtype=np.uint8))  # input untouched


def test_inplace_and_batch_stamping():
    frames = np.zeros((3, 336, 336, 3), dtype=np.uint8)
    stamper = Stamper()
    out = stamper.stamp_all(frames, [0, 1, 2])
    assert not frames.any() and out.any()
    for i in range(3):
        assert np.array_equal(out[i], reference(frames[i], i, 40, "red", "bottom_right"))
    stamper.stamp_all(frames, [0, 1, 2], inplace=True)
    assert np.array_equal(frames, out)
    with pytest.raises(ValueError):
        stamper.stamp_all(frames, [0, 1])


def test_stamped_frame_keeps_its_synthetic_index():
    # the synthetic index code sits in the top 80% of the frame, away from bottom-right numbers
    frame = np.asarray(Image.fromarray(synthetic.index_pattern(1234, 64, 48)).resize((336, 336)))
    assert synthetic.read_index(Stamper().stamp(frame, 9999)) == 1234


def test_style_validation():
    assert StampStyle(position="br").position == "bottom_right"
    with pytest.raises(ValueError, match="position"):
        StampStyle(position="middle")
    with pytest.raises(ValueError):
        StampStyle(color="not-a-colour")
    with pytest.raises(ValueError):
        StampStyle(font_size=0)
    with pytest.raises(ValueError, match="RGB uint8"):
        Stamper().stamp(np.zeros((10, 10), dtype=np.uint8), 1)


def test_font_resolution():
    default = find_font()
    assert default.name == "DejaVuSans-Bold.ttf" and "matplotlib" in str(default)
    assert find_font(default) == default
    with pytest.raises(FontNotFoundError, match="font file not found"):
        find_font("no/such/font.ttf")
    with pytest.raises(FontNotFoundError):
        Stamper(StampStyle(font_path="no/such/font.ttf"))


def test_missing_default_font_says_how_to_fix(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FontNotFoundError, match="pip install matplotlib"):
        find_font()


@pytest.mark.parametrize("position", POSITIONS)
def test_time_labels_use_the_same_geometry(position):
    # --stamp_text seconds (paper Tab. 9): "12s" drawn exactly as upstream would draw the text
    frame = synthetic.index_pattern(7, 336, 336)
    for label in ("12s", "7.5s", "0s"):
        ours = Stamper(StampStyle(position=position)).stamp(frame, label)
        assert np.array_equal(ours, reference(frame, label, 40, "red", position))
