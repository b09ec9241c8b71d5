"""numpro.preprocess and preprocess/*.py: numbered clips, end to end, on synthetic videos."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from numpro import preprocess as pp
from numpro import synthetic, timeline, video
from numpro.stamp import Stamper, StampStyle

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = ["anet", "didemo", "internvid", "charades", "qvhighlights"]
NTSC, FILM = Fraction(30000, 1001), Fraction(24000, 1001)
TEST_SET = pp.Dataset(key="anet", title="Test set", inputs=(), root="unused")
GOOD = {  # name: (rate, seconds, relative folder)
    "a_2997": (NTSC, 9.5, ""),
    "b_23976": (FILM, 7.0, ""),
    "c_25": (Fraction(25), 2.5, "sub"),
}


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    """A folder like a partly downloaded dataset: good videos, broken ones and a stray file."""
    root = tmp_path_factory.mktemp("sources")
    for name, (rate, seconds, folder) in GOOD.items():
        synthetic.write_video(root / folder / f"{name}.mp4", round(seconds * rate), rate, (64, 48))
    data = (root / "a_2997.mp4").read_bytes()
    (root / "corrupt.mp4").write_bytes(b"\x00not a video\x00" * 64)
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (root / "readme.txt").write_text("not a video\n")
    return root


def run_cli(argv, dataset=TEST_SET) -> tuple[int, str]:
    lines: list[str] = []
    code = pp.main(dataset, [*argv, "--no_progress"], log=lines.append)
    return code, "\n".join(lines)


def read_report(output: Path, name: str = "preprocess_report.json") -> dict:
    return json.loads((output / name).read_text())


def expected_frames(source: Path) -> tuple[list[timeline.SampledFrame], np.ndarray]:
    """What the clip must hold: the timeline's frames of the source, resized and stamped."""
    sampled = video.read_sampled(source, 0.5, 336)
    return sampled.frames, Stamper(StampStyle()).stamp_all(sampled.pixels, sampled.numbers)


def red_pixels(frame: np.ndarray) -> int:
    region = frame[250:, 200:].astype(int)  # the number's corner
    return int(((region[..., 0] > 180) & (region[..., 1] < 90) & (region[..., 2] < 90)).sum())


# ------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def first_run(sources, tmp_path_factory):
    output = tmp_path_factory.mktemp("out") / "clips"
    missing = sources.parent / "not_downloaded"
    code, text = run_cli(["--input", str(sources), str(missing), "--output", str(output), "--workers", "2"])
    return code, text, output


def test_every_good_video_becomes_the_stamped_timeline_frames(first_run, sources):
    code, text, output = first_run
    for name, (rate, seconds, folder) in GOOD.items():
        source = sources / folder / f"{name}.mp4"
        manifest = json.loads((output / f"{name}.json").read_text())
        frames, stamped = expected_frames(source)
        # SPEC 2: frame k is the source frame nearest to k / 0.5 s, for every k / 0.5 < duration.
        assert len(frames) == int(np.ceil(seconds / 2 - 1e-9))
        assert manifest["frames"] == [f.as_dict() for f in frames]
        assert manifest["source"] == str(source)
        assert manifest["source_fps"] == pytest.approx(float(rate))
        assert manifest["source_frames"] == round(seconds * rate)
        assert manifest["duration"] == pytest.approx(round(seconds * rate) / float(rate))
        assert (manifest["fps"], manifest["size"], manifest["format"]) == (0.5, 336, "mp4")
        assert manifest["style"] == StampStyle().as_dict()

        clip = output / f"{name}.mp4"
        info = video.probe(clip, "pyav")
        assert (info.num_frames, info.width, info.height) == (len(frames), 336, 336)
        assert info.fps == pytest.approx(0.5)
        assert info.frame_times.tolist() == pytest.approx([2.0 * k for k in range(len(frames))])
        decoded = video.decode(clip, range(len(frames)), size=None, backend="pyav")
        for frame, want, got in zip(frames, stamped, decoded):
            assert synthetic.read_index(got) == frame.source_index  # the right source frame...
            assert np.abs(got.astype(int) - want).mean() < 4  # ...stamped, and only lightly compressed
            assert red_pixels(got) > 0.5 * red_pixels(want) > 50  # the number survives encoding


def test_bad_inputs_are_reported_and_fail_the_run(first_run, sources):
    code, text, output = first_run
    report = read_report(output)
    assert code == 1
    assert report["done"] == 3 and report["skipped"] == 0
    failed = {Path(f["source"]).name: f["error"] for f in report["failed"]}
    assert set(failed) == {"corrupt.mp4", "truncated.mp4"}
    assert all(name in error for name, error in failed.items())  # each error names its file
    assert report["missing_inputs"] == [str(sources.parent / "not_downloaded")]
    assert report["ignored_files"] == 1
    assert f"missing input folder (skipped): {sources.parent / 'not_downloaded'}" in text
    assert "FAILED" in text and "corrupt.mp4" in text
    # Nothing else is left in the output folder: no clip or temporary file for the bad videos.
    assert sorted(p.name for p in output.iterdir()) == sorted(
        [f"{n}.mp4" for n in GOOD] + [f"{n}.json" for n in GOOD] + ["preprocess_report.json"]
    )


def test_frames_format_writes_the_exact_stamped_frames(sources, tmp_path):
    from PIL import Image  # not cv2.imread: it cannot inflate PNGs once decord is loaded

    source = sources / "b_23976.mp4"
    code, _ = run_cli(["--input", str(source), "--output", str(tmp_path), "--format", "frames", "--workers", "1"])
    assert code == 0
    frames, stamped = expected_frames(source)
    pngs = sorted((tmp_path / "b_23976").iterdir())
    assert [p.name for p in pngs] == [f"{k:06d}.png" for k in range(len(frames))]
    for png, want in zip(pngs, stamped):
        assert np.array_equal(np.asarray(Image.open(png).convert("RGB")), want)  # lossless
    assert json.loads((tmp_path / "b_23976.json").read_text())["format"] == "frames"


def test_other_rate_and_size_follow_the_flags(sources, tmp_path):
    code, _ = run_cli(["--input", str(sources / "a_2997.mp4"), "--output", str(tmp_path),
                       "--fps", "1", "--size", "111", "--position", "tl", "--workers", "1"])
    assert code == 0
    manifest = json.loads((tmp_path / "a_2997.json").read_text())
    assert (manifest["fps"], manifest["size"], manifest["style"]["position"]) == (1.0, 111, "top_left")
    info = video.probe(tmp_path / "a_2997.mp4", "pyav")
    assert (info.num_frames, info.width) == (10, 111)  # odd size: written in 4:4:4
    assert info.frame_times.tolist() == pytest.approx(list(range(10)))


# ------------------------------------------------------------------ resuming
def test_rerun_after_a_kill_does_each_video_exactly_once(sources, tmp_path):
    out = tmp_path / "clips"
    good = [str(sources / f"{n}.mp4") for n in ("a_2997", "b_23976")] + [str(sources / "sub")]
    code, _ = run_cli(["--input", *good, "--output", str(out), "--workers", "1"])
    assert code == 0 and read_report(out)["done"] == 3
    finished = (out / "c_25.mp4").stat().st_mtime_ns
    # A kill leaves: a clip renamed into place but no manifest yet (a_2997); a half-written
    # temporary clip (b_23976, whose finished files are gone); a half-written manifest.
    (out / "a_2997.json").unlink()
    (out / "a_2997.mp4").write_bytes(b"half a clip")
    for name in ("b_23976.json", "b_23976.mp4"):
        (out / name).unlink()
    (out / ".b_23976.mp4.partial-4242-0123abcd").write_bytes(b"partial")
    (out / "b_23976.json.tmp").write_text('{"source": ')

    code, text = run_cli(["--input", *good, "--output", str(out), "--workers", "1"])
    report = read_report(out)
    assert code == 0
    assert (report["done"], report["skipped"], report["stale_removed"]) == (2, 1, 2)
    assert "already done: 1; to process: 2" in text
    assert (out / "c_25.mp4").stat().st_mtime_ns == finished  # untouched
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{n}{ext}" for n in GOOD for ext in (".mp4", ".json")
    ) + ["preprocess_report.json"]
    for name in ("a_2997", "b_23976"):
        frames, _ = expected_frames(sources / f"{name}.mp4")
        assert video.probe(out / f"{name}.mp4", "pyav").num_frames == len(frames)

    code, text = run_cli(["--input", *good, "--output", str(out), "--workers", "1"])
    assert code == 0 and (read_report(out)["done"], read_report(out)["skipped"]) == (0, 3)


def test_a_real_kill_then_rerun(tmp_path):
    """SIGKILL a run as soon as its first clip is finished; the rerun does the rest, once each."""
    import signal
    import time

    videos = tmp_path / "videos"
    for i in range(6):
        synthetic.write_video(videos / f"v{i}.mp4", 1800, 30, (64, 48))
    out = tmp_path / "out"
    args = ["--input", str(videos), "--output", str(out), "--workers", "1", "--no_progress"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    first = subprocess.Popen([sys.executable, str(REPO / "preprocess" / "anet.py"), *args], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(out.glob("*.json")) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    first.send_signal(signal.SIGKILL)
    first.wait()
    finished = {p.stem: p.stat().st_mtime_ns for p in out.glob("v*.json")}
    assert 1 <= len(finished) < 6

    code, _ = run_cli(args[:-1])
    report = read_report(out)
    assert code == 0 and report["skipped"] == len(finished) and report["done"] == 6 - len(finished)
    assert {p.stem: p.stat().st_mtime_ns for p in out.glob("v*.json") if p.stem in finished} == finished
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"v{i}.mp4" for i in range(6)] + [f"v{i}.json" for i in range(6)] + ["preprocess_report.json"])
    for i in range(6):
        assert video.probe(out / f"v{i}.mp4", "pyav").num_frames == 30


@pytest.fixture(scope="module")
def one_clip(sources, tmp_path_factory) -> tuple[list[str], Path]:
    """A folder holding one finished clip made with the default settings."""
    output = tmp_path_factory.mktemp("one") / "clips"
    args = ["--input", str(sources / "sub" / "c_25.mp4"), "--workers", "1"]
    assert run_cli([*args, "--output", str(output)])[0] == 0
    return args, output


# Every flag that changes a clip's bytes, with the manifest field that records it.
CHANGES_THE_CLIP = [
    ("crf", ["--crf", "30"]),
    ("preset", ["--preset", "veryfast"]),
    ("size", ["--size", "224"]),
    ("fps", ["--fps", "1"]),
    ("style", ["--font_size", "20"]),
    ("style", ["--color", "blue"]),
    ("style", ["--position", "tl"]),
    ("format", ["--format", "frames"]),
    ("numbers", ["--no_numbers"]),
    ("stamp_text", ["--stamp_text", "seconds"]),
]


@pytest.mark.parametrize("field, flags", CHANGES_THE_CLIP, ids=[" ".join(flags) for _, flags in CHANGES_THE_CLIP])
def test_finished_clips_made_with_other_settings_are_not_taken(one_clip, tmp_path, field, flags):
    args, made = one_clip
    output = tmp_path / "clips"
    shutil.copytree(made, output)
    before = {p.name: p.read_bytes() for p in output.iterdir() if p.name != "preprocess_report.json"}
    code, text = run_cli([*args, "--output", str(output), *flags])
    assert code == 1
    [failure] = read_report(output)["failed"]
    assert "other settings" in failure["error"] and f"{field}=" in failure["error"]
    assert {p.name: p.read_bytes() for p in output.iterdir() if p.name != "preprocess_report.json"} == before


def test_settings_that_do_not_change_the_clip_still_resume(one_clip, tmp_path):
    args, made = one_clip
    output = tmp_path / "clips"
    shutil.copytree(made, output)
    code, _ = run_cli([*args, "--output", str(output), "--backend", "auto", "--workers", "2"])
    assert code == 0 and (read_report(output)["done"], read_report(output)["skipped"]) == (0, 1)


def test_manifest_records_every_setting_that_changes_the_clip(one_clip):
    manifest = json.loads((one_clip[1] / "c_25.json").read_text())
    assert {k: manifest[k] for k in ("fps", "size", "numbers", "stamp_text", "format", "crf", "preset")} == {
        "fps": 0.5, "size": 336, "numbers": True, "stamp_text": "number", "format": "mp4", "crf": 20,
        "preset": "ultrafast"}
    assert manifest["style"] == StampStyle().as_dict()


def test_clips_made_before_stamp_text_was_recorded_still_count(one_clip, tmp_path):
    """Every clip was numbered before --stamp_text existed: a manifest without it means "number"."""
    args, made = one_clip
    output = tmp_path / "clips"
    shutil.copytree(made, output)
    manifest = json.loads((output / "c_25.json").read_text())
    del manifest["stamp_text"]
    (output / "c_25.json").write_text(json.dumps(manifest))
    code, _ = run_cli([*args, "--output", str(output)])
    assert code == 0 and (read_report(output)["done"], read_report(output)["skipped"]) == (0, 1)
    code, _ = run_cli([*args, "--output", str(output), "--stamp_text", "seconds"])
    assert code == 1 and "stamp_text='number'" in read_report(output)["failed"][0]["error"]


# ------------------------------------------------------------------ times instead of numbers
def test_stamp_text_seconds_burns_each_frames_time_in_its_own_folder(tmp_path):
    from PIL import Image

    source = synthetic.write_video(tmp_path / "long.mp4", 140, 10, (64, 48))  # 14 s: frames 0..6 at 0.5 FPS
    dataset = pp.Dataset(key="anet", title="Test set", inputs=(str(source),), root=str(tmp_path))
    code, text = run_cli(["--workers", "1", "--format", "frames", "--stamp-text", "seconds", "--position", "br"],
                         dataset)
    assert code == 0 and "clips stamped with their times" in text
    folder = tmp_path / "videos_0.5FPS_seconds_red_40_br"
    manifest = json.loads((folder / "long.json").read_text())
    assert (manifest["stamp_text"], manifest["numbers"]) == ("seconds", True)
    sampled = video.read_sampled(source, 0.5, 336)
    assert sampled.numbers == list(range(7))
    pngs = sorted((folder / "long").iterdir())
    stamper = Stamper(StampStyle())
    for png, frame, number in zip(pngs, sampled.pixels, sampled.numbers):
        # frame 6 at 0.5 FPS is 12 s: "12s", same font, size, colour and place as a number
        assert np.array_equal(np.asarray(Image.open(png).convert("RGB")), stamper.stamp(frame, f"{2 * number}s"))
    assert not np.array_equal(stamper.stamp(sampled.pixels[6], "12s"), stamper.stamp(sampled.pixels[6], 6))


# ------------------------------------------------------------------ without numbers
def test_no_numbers_writes_the_same_clips_unnumbered_in_their_own_folder(sources, tmp_path):
    source = sources / "b_23976.mp4"
    dataset = pp.Dataset(key="anet", title="Test set", inputs=(str(source),), root=str(tmp_path))
    assert run_cli(["--workers", "1"], dataset)[0] == 0
    assert run_cli(["--workers", "1", "--no_numbers"], dataset)[0] == 0
    numbered, plain = tmp_path / "videos_0.5FPS_number_red_40_br", tmp_path / "videos_0.5FPS"
    assert sorted(p.name for p in plain.iterdir()) == ["b_23976.json", "b_23976.mp4", "preprocess_report.json"]

    manifest = json.loads((plain / "b_23976.json").read_text())
    assert (manifest["numbers"], manifest["style"]) == (False, None)
    assert manifest["frames"] == json.loads((numbered / "b_23976.json").read_text())["frames"]
    sampled = video.read_sampled(source, 0.5, 336)
    decoded = video.decode(plain / "b_23976.mp4", range(len(sampled.frames)), size=None, backend="pyav")
    assert len(decoded) == len(sampled.frames) >= 3
    for want, got in zip(sampled.pixels, decoded):
        assert np.abs(got.astype(int) - want).mean() < 4  # the resized source frame...
        assert red_pixels(got) == 0  # ...with no number on it
    assert read_report(plain)["settings"]["numbers"] is False


def test_no_numbers_folder_names():
    assert pp.Settings(style=None).folder_name() == "videos_0.5FPS"
    assert pp.Settings(fps=1.0, size=224, style=None).folder_name() == "videos_1FPS_224px"
    assert pp.Settings(style=None).describe() == "0.5 fps, 336x336, no numbers, mp4"


# ------------------------------------------------------------------ flags and the output folder
@pytest.mark.parametrize("flags", [
    ["--fps", "0"], ["--fps", "-1"], ["--fps", "nan"], ["--fps", "abc"], ["--size", "0"], ["--size", "-5"],
    ["--workers", "-1"], ["--limit", "0"], ["--limit", "-3"], ["--crf", "52"], ["--preset", "quick"],
    ["--font_size", "0"],
], ids=lambda flags: " ".join(flags))
def test_bad_numbers_are_usage_errors(flags, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        pp.main(TEST_SET, ["--input", str(tmp_path), "--output", str(tmp_path / "o"), *flags])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument {flags[0]}" in err.strip().splitlines()[-1] and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_workers_0_runs_in_this_process(sources, tmp_path):
    code, text = run_cli(["--input", str(sources / "sub" / "c_25.mp4"), "--output", str(tmp_path), "--workers", "0"])
    assert code == 0 and "to process: 1 in this process" in text and read_report(tmp_path)["done"] == 1


@pytest.mark.parametrize("where", ["is a file", "under a file"])
def test_an_unwritable_output_folder_stops_before_any_work(sources, tmp_path, where):
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder\n")
    output = blocker if where == "is a file" else blocker / "clips"
    result = run_script("anet", "--input", str(sources), "--output", str(output), cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith("anet.py: error: ") and str(output) in line
    assert "to process" not in result.stdout  # stopped before planning, decoding or writing
    assert blocker.read_text() == "a file, not a folder\n"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="permission bits do not bind root")
def test_a_read_only_output_folder_stops_before_any_work(sources, tmp_path):
    output = tmp_path / "clips"
    output.mkdir()
    output.chmod(0o555)
    try:
        result = run_script("anet", "--input", str(sources), "--output", str(output), cwd=tmp_path)
    finally:
        output.chmod(0o755)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert f"cannot write to the output folder {output}" in line
    assert list(output.iterdir()) == []


# ------------------------------------------------------------------ choosing the work
@pytest.fixture()
def many_names(tmp_path) -> Path:
    """Files that are only named like videos: planning never decodes."""
    root = tmp_path / "videos"
    root.mkdir()
    for i in range(40):
        (root / f"v_{i:03d}.mp4").write_bytes(b"")
    return root


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_shards_partition_the_videos(many_names, tmp_path, count):
    everything = {job.name for job in pp.make_plan([many_names], tmp_path / "o", pp.Settings()).jobs}
    assert len(everything) == 40
    parts = [{job.name for job in pp.make_plan([many_names], tmp_path / "o", pp.Settings(), shard=(i, count)).jobs}
             for i in range(count)]
    assert set().union(*parts) == everything
    assert sum(len(p) for p in parts) == 40  # disjoint
    again = [{job.name for job in pp.make_plan([many_names], tmp_path / "o", pp.Settings(), shard=(i, count)).jobs}
             for i in range(count)]
    assert again == parts  # deterministic
    # A machine that sees fewer files still agrees on who owns the ones it sees.
    fewer = [job.name for job in pp.make_plan(sorted(many_names.iterdir())[:10], tmp_path / "o", pp.Settings(),
                                              shard=(0, count)).jobs]
    assert set(fewer) <= parts[0]


def test_shard_and_limit_flags(many_names, tmp_path):
    assert pp.parse_shard("2/5") == (2, 5)
    for bad in ("5/5", "1", "a/b", "0/0"):
        with pytest.raises(ValueError, match="shard"):
            pp.parse_shard(bad)
    plan = pp.make_plan([many_names], tmp_path, pp.Settings(), limit=5)
    assert [job.name for job in plan.jobs] == [f"v_{i:03d}" for i in range(5)] and plan.over_limit == 35
    with pytest.raises(SystemExit):
        pp.main(TEST_SET, ["--input", str(many_names), "--shard", "4/4"])


def test_only_listed_takes_what_a_training_file_references(many_names, tmp_path):
    train = tmp_path / "train_sft.json"
    train.write_text(json.dumps([
        {"video": "v_001", "source": "anet", "conversations": []},
        {"video": "v_002.mp4", "source": "anet", "conversations": []},
        {"video": "v_003", "source": "didemo", "conversations": []},
        {"video": "v_004", "conversations": []},  # no source: belongs to any folder
        {"video": "v_999", "source": "anet", "conversations": []},
    ]))
    listed = pp.listed_names(train, "anet")
    assert listed == {"v_001", "v_002", "v_004", "v_999"}
    plan = pp.make_plan([many_names], tmp_path / "o", pp.Settings(), listed=listed)
    assert [job.name for job in plan.jobs] == ["v_001", "v_002", "v_004"]
    assert plan.not_found == ["v_999"] and plan.unlisted == 37
    qvh = tmp_path / "val.jsonl"
    qvh.write_text('{"qid": 1, "vid": "v_005"}\n{"qid": 2, "vid": "v_005"}\n')
    assert pp.listed_names(qvh, "qvhighlights") == {"v_005"}


def test_same_name_in_two_inputs_is_made_once(many_names, tmp_path):
    other = tmp_path / "v1-3"
    other.mkdir()
    (other / "v_000.mkv").write_bytes(b"")
    plan = pp.make_plan([many_names, other], tmp_path / "o", pp.Settings())
    assert len(plan.jobs) == 40
    assert plan.duplicates == [{"source": str(other / "v_000.mkv"), "kept": str(many_names / "v_000.mp4")}]


def test_output_folder_is_never_read_as_input_nor_overwrites_a_source(many_names, tmp_path):
    inside = many_names / "videos_0.5FPS_number_red_40_br"
    inside.mkdir()
    (inside / "v_000.mp4").write_bytes(b"a clip")
    plan = pp.make_plan([many_names], inside, pp.Settings())
    assert len(plan.jobs) == 40 and not plan.duplicates  # the clip folder is not searched
    with pytest.raises(ValueError, match="also an input"):
        pp.make_plan([many_names], many_names, pp.Settings())
    plan = pp.make_plan([many_names / "v_001.mp4"], many_names, pp.Settings())
    assert not plan.jobs and "replace its own source" in plan.failed[0]["error"]
    assert (many_names / "v_001.mp4").exists()


def test_didemo_outputs_are_named_by_hash(tmp_path):
    from numpro.datasets.didemo import read_hash_file

    shipped = read_hash_file(REPO / "preprocess" / "yfcc100m_hash.txt")
    assert len(shipped) == 10464 and shipped["6010978700"] == "5b85c5f263745fa9ff83787ba78cfb"
    hashes = tmp_path / "hash.txt"
    hashes.write_text("4253489686\tabc123\n")
    videos = tmp_path / "train"
    videos.mkdir()
    (videos / "26292851@N04_4253489686_265c3c8051.m4v").write_bytes(b"")
    (videos / "51035693821@N01_7071386095_a7350f43e0.mpg").write_bytes(b"")
    plan = pp.make_plan([videos], tmp_path / "o", pp.Settings(), namer=pp.hash_namer(hashes))
    assert [job.name for job in plan.jobs] == ["abc123"]
    assert len(plan.failed) == 1 and "7071386095" in plan.failed[0]["error"]  # reported, not dropped
    shards = [pp.make_plan([videos], tmp_path / "o", pp.Settings(), namer=pp.hash_namer(hashes), shard=(i, 3))
              for i in range(3)]
    assert sum(len(p.failed) for p in shards) == 1  # by exactly one shard


def test_default_output_folder_is_upstreams():
    assert pp.Settings().folder_name() == "videos_0.5FPS_number_red_40_br"
    assert pp.Settings(fps=1.0).folder_name() == "videos_1FPS_number_red_40_br"
    assert pp.Settings(stamp_text="seconds").folder_name() == "videos_0.5FPS_seconds_red_40_br"
    assert pp.Settings(style=None, stamp_text="seconds").folder_name() == "videos_0.5FPS"


# ------------------------------------------------------------------ a crashing decoder
def die_on_corrupt(job: pp.Job) -> dict:
    """A worker function that dies the way a segfaulting decoder does, for one video."""
    if job.name == "corrupt":
        os._exit(3)
    return pp.process_video(job)


def test_a_worker_that_dies_is_named_and_the_rest_still_done(sources, tmp_path):
    inputs = [str(sources / "corrupt.mp4"), str(sources / "sub" / "c_25.mp4"), str(sources / "b_23976.mp4")]
    settings = pp.Settings()
    plan = pp.make_plan(inputs, tmp_path, settings)
    report = pp.execute(plan, tmp_path, settings, workers=2, progress=False, worker_fn=die_on_corrupt)
    assert report.done == 2
    assert [f["source"] for f in report.failed] == [inputs[0]]
    assert "worker process died" in report.failed[0]["error"]


# ------------------------------------------------------------------ the scripts
def run_script(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # as a user runs them
    return subprocess.run([sys.executable, str(REPO / "preprocess" / f"{name}.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", SCRIPTS)
def test_scripts_help(name, tmp_path):
    result = run_script(name, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for flag in ("--input", "--output", "--workers", "--shard", "--limit", "--only_listed", "--fps", "--size",
                 "--font_size", "--color", "--position", "--format", "--backend", "--no_numbers", "--crf", "--preset"):
        assert flag in result.stdout
    assert f"data/{'anet/v1-3/train_val' if name == 'anet' else name}" in result.stdout


def test_no_argument_run_on_the_upstream_layout(tmp_path, sources):
    for folder in ("v1-2/val", "v1-2/train", "v1-2/test", "v1-3/train_val", "v1-3/test"):
        (tmp_path / "data" / "anet" / folder).mkdir(parents=True)
    result = run_script("anet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "found 0 videos in 5 inputs" in result.stdout and "to process: 0" in result.stdout
    output = tmp_path / "data" / "anet" / "videos_0.5FPS_number_red_40_br"
    assert read_report(output)["done"] == 0

    # A user without the v1-2 folders: they are named once, the rest is done.
    shutil.rmtree(tmp_path / "data" / "anet" / "v1-2")
    shutil.copy(sources / "sub" / "c_25.mp4", tmp_path / "data" / "anet" / "v1-3" / "train_val" / "v_c.mp4")
    result = run_script("anet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "missing input folders (skipped): data/anet/v1-2/val, data/anet/v1-2/train, data/anet/v1-2/test" \
        in result.stdout
    assert "done: 1 new" in result.stdout
    assert (output / "v_c.mp4").is_file() and (output / "v_c.json").is_file()


def test_no_argument_run_without_any_data(tmp_path):
    result = run_script("didemo", cwd=tmp_path)
    assert result.returncode == 2  # bad input (numpro.cli_args): one line on stderr, no traceback
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("didemo.py: error: none of the inputs exist (data/didemo/train)")
    assert not (tmp_path / "data").exists()
