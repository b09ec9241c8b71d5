"""numpro.frames.numbered_frames: sample -> cap -> stamp, the one path to the frames a model sees."""

from __future__ import annotations

import numpy as np
import pytest

from numpro import synthetic, timeline
from numpro.frames import numbered_frames
from numpro.stamp import Stamper, StampStyle
from numpro.video import VideoError, read_sampled


@pytest.fixture(scope="module")
def video(make_video):
    return make_video("25", 16.0, size=(64, 48))  # 16 s: frames 0..15 at 1 FPS, 0..7 at 0.5 FPS


def test_every_frame_carries_its_number_by_default(video):
    got = numbered_frames(video, 1.0)
    plain = read_sampled(video, 1.0, 336)
    stamper = Stamper(StampStyle())
    assert got.numbers == plain.numbers == list(range(16)) and got.stamped == list(range(16))
    assert got.info.num_frames == plain.info.num_frames and got.frames == plain.frames
    for frame, number, want in zip(got.pixels, got.numbers, plain.pixels):
        assert np.array_equal(frame, stamper.stamp(want, number))
        assert synthetic.read_index(frame) == number * 25


@pytest.mark.parametrize("fps, number", [(1.0, 12), (0.5, 6)], ids=["frame 12 at 1 FPS", "frame 6 at 0.5 FPS"])
def test_seconds_burn_the_frames_time_with_the_same_geometry(video, fps, number):
    style = StampStyle(30, "blue", "tl")
    got = numbered_frames(video, fps, style=style, stamp_text="seconds")
    plain = read_sampled(video, fps, 336)
    assert got.label(number) == "12s"
    assert np.array_equal(got.pixels[number], Stamper(style).stamp(plain.pixels[number], "12s"))
    assert not np.array_equal(got.pixels[number], Stamper(style).stamp(plain.pixels[number], number))


def test_half_seconds_have_one_decimal(video):
    got = numbered_frames(video, 2.0, max_frames=None, stamp_text="seconds")
    plain = read_sampled(video, 2.0, 336)
    assert got.label(15) == "7.5s"
    assert np.array_equal(got.pixels[15], Stamper(StampStyle()).stamp(plain.pixels[15], "7.5s"))


def test_the_cap_is_applied_once_and_each_frame_keeps_its_number(video):
    got = numbered_frames(video, 1.0, max_frames=4)
    kept = timeline.cap_frames(16, 4)
    assert got.numbers == kept.tolist() == [0, 5, 10, 15]
    assert len(got.pixels) == 4
    for frame, number in zip(got.pixels, got.numbers):
        assert synthetic.read_index(frame) == number * 25
    assert numbered_frames(video, 1.0, max_frames=0).numbers == list(range(16))  # 0: no cap


def test_positions_choose_which_frames_are_stamped(video):
    plain = read_sampled(video, 1.0, 336)
    stamper = Stamper(StampStyle())
    got = numbered_frames(video, 1.0, positions=[3, 0, 3])
    assert got.stamped == [0, 3] and got.stamped_numbers == [0, 3] and got.partial
    for position, (frame, want) in enumerate(zip(got.pixels, plain.pixels)):
        assert np.array_equal(frame, stamper.stamp(want, position) if position in (0, 3) else want)

    counts = []

    def half(count: int):  # a choice that depends on the count, as timeline.numbered_positions does
        counts.append(count)
        return timeline.numbered_positions(count, 0.5)

    got = numbered_frames(video, 1.0, max_frames=10, positions=half)
    assert counts == [10]  # called with the count after the cap
    assert got.stamped == timeline.numbered_positions(10, 0.5).tolist()
    with pytest.raises(ValueError, match="positions must lie in 0..15"):
        numbered_frames(video, 1.0, positions=[16])


def test_no_style_leaves_the_frames_plain(video):
    got = numbered_frames(video, 1.0, style=None)
    assert np.array_equal(got.pixels, read_sampled(video, 1.0, 336).pixels)
    assert got.stamped == [] and not got.partial


def test_errors_name_the_problem(video, tmp_path):
    with pytest.raises(ValueError, match="stamp text 'minutes'"):
        numbered_frames(video, 1.0, stamp_text="minutes")
    missing = tmp_path / "absent.mp4"
    with pytest.raises(VideoError, match="absent.mp4"):
        numbered_frames(missing, 1.0)
