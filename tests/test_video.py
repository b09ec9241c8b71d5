"""numpro.video: timing, frame choice and decoding on synthetic H.264 videos."""

from __future__ import annotations

import numpy as np
import pytest

from numpro import synthetic, timeline, video
from numpro.video import VideoError

from conftest import RATES
from fractions import Fraction

BACKENDS = ["decord", "pyav", "opencv"]


def expected_count(num_source: int, rate: float, fps: float) -> int:
    """SPEC 2 by brute force: every k with k / fps < num_source / rate."""
    duration = num_source / rate
    k = 0
    while k / fps < duration - 1e-9:
        k += 1
    return k


def check_choice(sampled: video.SampledVideo, rate: float) -> None:
    """Each number k sits on the source frame nearest to k / fps, and the pixels are that frame's."""
    last = sampled.info.num_frames - 1
    for frame, pixels in zip(sampled.frames, sampled.pixels):
        t = frame.number / sampled.fps
        assert frame.time == pytest.approx(t)
        if t <= last / rate:
            assert abs(frame.source_index / rate - t) <= 0.5 / rate + 1e-6
        else:  # between the last frame and the end of the video: the last frame is nearest
            assert frame.source_index == last
        assert synthetic.read_index(pixels) == frame.source_index


@pytest.mark.parametrize("fps_name", list(RATES))
@pytest.mark.parametrize("seconds", [2, 9.5, 120])
def test_sampling_at_half_fps_all_backends(make_video, fps_name, seconds):
    path = make_video(fps_name, seconds)
    rate = float(RATES[fps_name])
    num_source = round(seconds * RATES[fps_name])
    results = {}
    for backend in BACKENDS:
        sampled = video.read_sampled(path, 0.5, backend=backend)
        assert sampled.info.num_frames == num_source
        assert sampled.info.fps == pytest.approx(rate, rel=1e-6)
        assert len(sampled.frames) == expected_count(num_source, rate, 0.5)
        assert sampled.numbers == list(range(len(sampled.frames)))
        assert sampled.pixels.shape == (len(sampled.frames), 336, 336, 3)
        assert sampled.pixels.dtype == np.uint8
        check_choice(sampled, rate)
        results[backend] = [f.source_index for f in sampled.frames]
    assert results["decord"] == results["pyav"] == results["opencv"]


@pytest.mark.parametrize("fps_name", ["29.97", "30"])
def test_two_minutes_give_sixty_frames(make_video, fps_name):
    sampled = video.read_sampled(make_video(fps_name, 120), 0.5)
    assert len(sampled.frames) == 60


def test_three_minutes_at_one_fps(make_video):
    rate = RATES["23.976"]
    sampled = video.read_sampled(make_video("23.976", 180), 1.0)
    # round(180 * 23.976) = 4316 frames = 180.01 s, so t = 180 is still inside the video
    assert len(sampled.frames) == expected_count(4316, float(rate), 1.0) == 181
    check_choice(sampled, float(rate))


def test_cap_keeps_240_frames_with_their_own_numbers(make_video):
    path = make_video("25", 130)
    sampled = video.read_sampled(path, 2.0, max_frames=240)  # 260 frames before the cap
    assert len(sampled.frames) == 240
    assert sampled.numbers == timeline.cap_frames(260, 240).tolist()
    check_choice(sampled, 25.0)


def test_probe_reports_timing(make_video):
    info = video.probe(make_video("29.97", 9.5))
    assert info.num_frames == 285
    assert info.duration == pytest.approx(285 / (30000 / 1001))
    assert (info.width, info.height) == (64, 48)
    assert info.frame_times[1] == pytest.approx(1001 / 30000)


@pytest.mark.parametrize("backend", BACKENDS)
def test_odd_size_and_custom_output_size(make_video, backend):
    path = make_video("25", 4, size=(67, 51))
    sampled = video.read_sampled(path, 2.0, size=(120, 90), backend=backend)
    assert sampled.info.width == 67 and sampled.info.height == 51
    assert sampled.pixels.shape == (8, 90, 120, 3)
    check_choice(sampled, 25.0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("frames", [1, 3])
def test_videos_of_a_few_frames(tmp_path, backend, frames):
    path = synthetic.write_video(tmp_path / "few.mp4", frames, 30)
    sampled = video.read_sampled(path, 0.5, backend=backend)
    assert [f.source_index for f in sampled.frames] == [0]
    assert synthetic.read_index(sampled.pixels[0]) == 0


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_variable_frame_rate_uses_real_timestamps(tmp_path, backend):
    gaps = np.random.default_rng(0).choice([1 / 30, 1 / 15, 1 / 10], 199)
    times = np.concatenate([[0.0], np.cumsum(gaps)])
    path = synthetic.write_video(tmp_path / "vfr.mp4", 200, 30, frame_times=times)
    sampled = video.read_sampled(path, 1.0, backend=backend)
    stamps = np.round(times * 90000) / 90000
    expected = [int(np.argmin(np.abs(stamps - k))) for k in range(len(sampled.frames))]
    assert [f.source_index for f in sampled.frames] == expected
    assert [synthetic.read_index(p) for p in sampled.pixels] == expected


def test_decode_returns_frames_in_the_order_asked(make_video):
    path = make_video("30", 2)
    frames = video.decode(path, [10, 3, 10, 0], size=None)
    assert frames.shape == (4, 48, 64, 3)
    assert [synthetic.read_index(f) for f in frames] == [10, 3, 10, 0]
    with pytest.raises(VideoError, match="decodable frames"):
        video.decode(path, [500], backend="pyav")


@pytest.fixture(scope="module")
def broken_files(tmp_path_factory, make_video):
    root = tmp_path_factory.mktemp("broken")
    data = make_video("30", 9.5).read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (root / "notes.mp4").write_text("this is not a video\n")
    (root / "empty.mp4").write_bytes(b"")
    return root


@pytest.mark.parametrize("backend", ["auto", *BACKENDS])
@pytest.mark.parametrize("name", ["truncated.mp4", "notes.mp4", "empty.mp4", "missing.mp4"])
def test_unreadable_files_raise_one_clear_error(broken_files, backend, name):
    path = broken_files / name
    with pytest.raises(VideoError) as caught:
        video.read_sampled(path, 0.5, backend=backend)
    assert str(path) in str(caught.value)
    assert caught.value.path == str(path) and caught.value.reason


@pytest.fixture(scope="module")
def faststart_bytes(tmp_path_factory):
    """A 600-frame mp4 with its index (moov atom) first, as streaming-friendly files are."""
    import av

    root = tmp_path_factory.mktemp("faststart")
    src = synthetic.write_video(root / "src.mp4", 600, 30)
    fast = root / "fast.mp4"
    with av.open(str(src)) as inp, av.open(str(fast), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return fast.read_bytes()


def test_file_truncated_after_an_index_at_the_front(tmp_path, faststart_bytes):
    # the header promises 600 frames the file no longer holds
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(faststart_bytes[: int(len(faststart_bytes) * 0.6)])
    for backend in ["auto", *BACKENDS]:
        with pytest.raises(VideoError, match="truncated"):
            video.read_sampled(cut, 0.5, backend=backend)


@pytest.mark.parametrize("backend", ["auto", "pyav", "opencv"])
def test_header_overstating_the_frame_count_a_little(tmp_path, faststart_bytes, backend):
    # the last ~10 frames are gone: a header off by less than a second is corrected, not fatal
    cut = tmp_path / "short.mp4"
    cut.write_bytes(faststart_bytes[: int(len(faststart_bytes) * 0.98)])
    sampled = video.read_sampled(cut, 30, size=None, backend=backend)  # asks for every frame
    assert 570 < sampled.info.num_frames < 600
    assert len(sampled.frames) == sampled.info.num_frames
    assert [synthetic.read_index(p) for p in sampled.pixels] == [f.source_index for f in sampled.frames]


def test_unknown_backend_is_a_value_error(make_video):
    with pytest.raises(ValueError, match="backend"):
        video.probe(make_video("30", 2), backend="gstreamer")


def test_video_error_crosses_process_boundaries(broken_files):
    import pickle

    from numpro.parallel import run_parallel

    error = pickle.loads(pickle.dumps(VideoError("a.mp4", "bad")))
    assert (error.path, error.reason, str(error)) == ("a.mp4", "bad", "a.mp4: bad")
    outcomes = list(run_parallel(video.probe, [broken_files / "notes.mp4"] * 2, workers=2, progress=False))
    assert all(isinstance(o.error, VideoError) and "notes.mp4" in str(o.error) for o in outcomes)


@pytest.mark.parametrize("preset", ["medium", "veryslow"])
def test_skipping_unneeded_frames_gives_the_same_pixels(tmp_path, preset):
    # B-frames, some of them references (b-pyramid): only frames nobody refers to may be skipped
    path = synthetic.write_video(tmp_path / "b.mp4", 240, Fraction(30000, 1001), (64, 48),
                                 options={"preset": preset, "bf": "3"})
    wanted = np.asarray([0, 1, 7, 59, 60, 61, 119, 200, 239])
    skipping = np.stack(list(video._decode_pyav(path, wanted, None)))
    in_order = np.stack(list(video._decode_pyav_in_order(path, wanted, None)))
    assert np.array_equal(skipping, in_order)
    assert [synthetic.read_index(f) for f in skipping] == wanted.tolist()
