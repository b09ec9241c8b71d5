"""numpro.timeline: which frames are sampled and what their numbers mean (SPEC 2)."""

import math

import numpy as np
import pytest

from numpro import timeline


@pytest.mark.parametrize(
    "duration, fps, expected",
    [
        (120.0, 0.5, 60),  # t = 0, 2, ..., 118
        (3596 / (30000 / 1001), 0.5, 60),  # a 120 s video at 29.97 fps (119.987 s)
        (120.02, 0.5, 61),  # t = 120 < 120.02 is sampled too
        (118.0, 0.5, 59),  # t = 118 is not < 118
        (0.1, 0.5, 1),  # frame 0 always exists when there is any video
        (4.0, 2.0, 8),
        (10.0, 1.0, 10),
        (0.0, 0.5, 0),
    ],
)
def test_num_sampled_frames_counts_k_with_time_below_duration(duration, fps, expected):
    assert timeline.num_sampled_frames(duration, fps) == expected
    times = timeline.sample_times(duration, fps)
    assert len(times) == expected
    assert np.allclose(times, np.arange(expected) / fps)


def test_rejects_non_positive_fps():
    with pytest.raises(ValueError):
        timeline.num_sampled_frames(10, 0)


def test_nearest_index_ties_go_to_the_earlier_frame():
    times = timeline.source_times(100, 25)
    # 0.5 s * 25 = 12.5: frames 12 and 13 are equally near; 0.52 s -> 13; 0.1 s -> 2 (2.5 tie -> 2)
    assert timeline.nearest_indices(times, [0.5, 0.52, 0.1, 0.0]).tolist() == [12, 13, 2, 0]


def test_nearest_index_clamps_past_the_last_frame():
    times = timeline.source_times(10, 10)  # last frame at 0.9 s
    assert timeline.nearest_indices(times, [0.97, 5.0]).tolist() == [9, 9]


def test_nearest_index_uses_real_timestamps_for_variable_frame_rate():
    times = [0.0, 0.1, 0.5, 1.9, 2.05, 4.0]
    assert timeline.nearest_indices(times, [0.0, 2.0, 4.0, 1.0]).tolist() == [0, 4, 5, 2]


def test_plan_at_29_97_fps_picks_the_frame_nearest_each_two_seconds():
    rate = 30000 / 1001
    plan = timeline.plan_frames(3596 / rate, 0.5, num_source_frames=3596, source_fps=rate)
    assert [f.number for f in plan] == list(range(60))
    for frame in plan:
        assert frame.time == pytest.approx(2 * frame.number)
        assert abs(frame.source_index / rate - frame.time) <= 0.5 / rate + 1e-9
    # upstream's drift bug would step by int(2 * 29.97) = 59 frames: frame 45 must be 2697, not 2655
    assert plan[45].source_index == round(90 * rate) == 2697
    assert plan[0].as_dict() == {"number": 0, "source_index": 0, "time": 0.0}


def test_plan_needs_times_or_rate():
    with pytest.raises(ValueError):
        timeline.plan_frames(10, 0.5)


@pytest.mark.parametrize("k", [0, 1, 239, 240])
def test_cap_keeps_every_frame_up_to_240(k):
    assert timeline.cap_frames(k).tolist() == list(range(k))


def test_cap_above_240_takes_truncated_linspace():
    kept = timeline.cap_frames(1000)
    assert len(kept) == 240
    assert kept[0] == 0 and kept[-1] == 999
    # linspace(0, 999, 240)[1] = 4.179... -> 4 (truncated, not rounded)
    assert kept[1] == 4 and kept[2] == 8 and kept[3] == 12 and kept[4] == 16 and kept[5] == 20
    assert kept[6] == int(6 * 999 / 239)
    assert timeline.cap_frames(1000, None).tolist() == list(range(1000))
    assert timeline.cap_frames(300, 100).tolist() == [int(i * 299 / 99) for i in range(100)]


def test_frame_numbers_to_seconds_and_spans():
    assert timeline.frame_to_seconds(7, 0.5) == 14.0
    assert timeline.frame_to_seconds(7, 1.0) == 7.0
    # "From 3 to 7" at 0.5 FPS: [6 s, 14 s]; the end is the last frame's time, not +1
    assert timeline.span_to_seconds(3, 7, 0.5) == (6.0, 14.0)
    assert timeline.seconds_to_frame(14.0, 0.5) == 7
    assert timeline.seconds_to_frame(14.9, 0.5) == 7
    assert timeline.seconds_to_frame(15.0, 0.5) == 8


def test_highlight_clips():
    # at 0.5 FPS frame k is clip k; at 1 FPS frames 2c and 2c+1 are clip c
    assert [timeline.frame_to_clip(k, 0.5) for k in range(5)] == [0, 1, 2, 3, 4]
    assert [timeline.frame_to_clip(k, 1.0) for k in range(5)] == [0, 0, 1, 1, 2]
    assert timeline.num_clips(150) == 75
    assert timeline.num_clips(151.9) == 75
    assert timeline.num_clips(1.5) == 0


def test_float_fps_modulo_bug_is_not_reproduced():
    # upstream kept frames with frame_count % (fps * 2) == 0: only frame 0 at 29.97 fps
    rate = 30000 / 1001
    upstream = [i for i in range(3596) if math.isclose(i % (rate * 2), 0)]
    assert upstream == [0]
    plan = timeline.plan_frames(3596 / rate, 0.5, num_source_frames=3596, source_fps=rate)
    assert len(plan) == 60


def test_frame_labels_for_numbers_and_seconds():
    from numpro.timeline import frame_label

    assert frame_label(12, 1.0) == "12" and frame_label(12, 1.0, "number") == "12"
    assert [frame_label(k, 0.5, "seconds") for k in range(3)] == ["0s", "2s", "4s"]
    assert [frame_label(k, 2.0, "seconds") for k in (0, 1, 24)] == ["0s", "0.5s", "12s"]
    assert frame_label(15, 2.0, "seconds") == "7.5s"
    with pytest.raises(ValueError):
        frame_label(1, 1.0, "minutes")
