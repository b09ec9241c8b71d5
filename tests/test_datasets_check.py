"""`numpro data check`: missing, unreadable and mis-timed videos, span anomalies, the token cap."""

import json
import shutil

import pytest

from numpro import synthetic
from numpro.datasets import check
from numpro.datasets.check import CUT, INVALID, MISMATCH, MISSING, UNREADABLE, Options
from numpro.datasets.records import PAST_END, REVERSED


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """good.mp4 (3 s), alt.mov and abc.mp4 (copies), short.mp4 (3 s), broken.mp4 (not a video)."""
    root = tmp_path_factory.mktemp("videos")
    synthetic.write_video(root / "good.mp4", 90, 30)
    synthetic.write_video(root / "short.mp4", 30, 10)
    shutil.copy(root / "good.mp4", root / "alt.mov")
    (root / "sub").mkdir()
    shutil.copy(root / "good.mp4", root / "sub" / "abc.mp4")  # ActivityNet name without v_, in a sub-folder
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video" * 10)
    return root


def moment(id_, video, start, end, duration):
    return {"id": id_, "video": video, "query": "q", "start_time": start, "end_time": end, "duration": duration}


MOMENTS = [
    moment("a", "good.mp4", 0, 2, 3.0),
    moment("b", "good.mp4", 2, 1, 3.0),  # reversed
    moment("c", "alt.mp4", 0, 1, 3.0),  # found as alt.mov
    moment("d", "v_abc.mp4", 0, 1, 3.0),  # found as sub/abc.mp4
    moment("e", "broken.mp4", 0, 1, 3.0),
    moment("f", "short.mp4", 25, 31, 30.0),  # the video lasts 3 s; the end is past 30 s too
    moment("g", "missing.mp4", 0, 1, 10.0),
]


def write(tmp_path, data, name="test.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_moment_file(tmp_path, folder):
    options = Options(video_folder=str(folder), workers=2, progress=False)  # worker processes
    report = check.check(write(tmp_path, MOMENTS), options=options)
    tally = report.tallies[check.NO_SOURCE]
    assert report.format == "moments"
    assert report.videos[check.NO_SOURCE] == 6 and report.found[check.NO_SOURCE] == 5
    assert report.renamed[check.NO_SOURCE] == 2
    assert tally[MISSING] == 1 and report.missing[check.NO_SOURCE] == ["missing.mp4"]
    assert tally[UNREADABLE] == 1 and "broken.mp4" in tally.examples[UNREADABLE][0]
    assert tally[MISMATCH] == 1 and "short.mp4" in tally.examples[MISMATCH][0]
    assert tally[REVERSED] == 1 and tally[PAST_END] == 1
    assert report.problems == {MISSING: 1, UNREADABLE: 1, MISMATCH: 1, REVERSED: 1, PAST_END: 1}
    table = check.render(report, options)
    for label in ("videos missing", "videos unreadable", "durations disagreeing with the file (>2 s)", "result: 5 problems of 5 kinds"):
        assert label in table


def test_clean_file(tmp_path, folder):
    options = Options(video_folder=str(folder), progress=False)
    report = check.check(write(tmp_path, MOMENTS[:1] + MOMENTS[2:4]), options=options)
    assert report.problems == {}
    assert check.render(report, options).endswith("result: no problems found")


def test_without_a_folder_only_annotations_are_checked(tmp_path):
    report = check.check(write(tmp_path, MOMENTS), options=Options(progress=False))
    assert report.found[check.NO_SOURCE] is None and report.problems == {REVERSED: 1, PAST_END: 1}
    table = check.render(report)
    assert "not given: videos not checked" in table
    assert [line.split()[-1] for line in table.splitlines() if line.strip().startswith("videos missing")] == ["-"]


def test_missing_folder_is_a_problem(tmp_path):
    report = check.check(write(tmp_path, MOMENTS), options=Options(video_folder=str(tmp_path / "nope"), progress=False))
    assert report.problems["video folders missing"] == 1 and report.problems[MISSING] == 6


def test_no_probe(tmp_path, folder):
    report = check.check(write(tmp_path, MOMENTS), options=Options(video_folder=str(folder), probe=False))
    assert report.problems == {MISSING: 1, REVERSED: 1, PAST_END: 1}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Numbered 0.5-FPS clips: long.mp4 (30 frames = 60 s), clip.mp4 (5 frames)."""
    root = tmp_path_factory.mktemp("anet_clips")
    synthetic.write_video(root / "long.mp4", 30, 0.5)
    synthetic.write_video(root / "clip.mp4", 5, 0.5)
    return root


def sample(video, answer, source="anet", **extra):
    return {"video": video, "source": source, "conversations": [
        {"from": "human", "value": "<image>\nDuring which frames does it happen?"}, {"from": "gpt", "value": answer}], **extra}


def test_training_file(tmp_path, clips):
    data = [
        sample("long", "From 3 to 9."),  # 30 frames * 144 = 4320 tokens: the answer is cut
        sample("clip", "From 2 to 7."),  # the clip has frames 0..4
        sample("clip", "From 4 to 1."),
        sample("gone", "From 1 to 2."),
        sample("x", "From 1 to 2.", source="internvid"),  # its folder does not exist
        sample("y", "From 1 to 2.", source=None, duration=70.0),  # no folder: length from the file
    ]
    options = Options(source_folders={"anet": str(clips), "internvid": str(tmp_path / "none")}, progress=False)
    report = check.check(write(tmp_path, data, "train_sft.json"), options=options)
    assert report.format == "training"
    assert report.columns == ["anet", "internvid", check.NO_SOURCE]
    anet, internvid, generic = (report.tallies[c] for c in report.columns)
    assert anet[CUT] == 1 and "record 1 (long): 30 frames" in anet.examples[CUT][0]
    assert anet[PAST_END] == 1 and anet[REVERSED] == 1 and anet[MISSING] == 1
    assert internvid["video folders missing"] == 1 and internvid[MISSING] == 1
    assert generic[CUT] == 1  # 35 frames from the 70 s duration
    table = check.render(report, options)
    assert "answer cut by the cap (4096)" in table and "total" in table
    # A bigger cap keeps every answer.
    options.model_max_length = 8192
    assert CUT not in check.check(write(tmp_path, data, "train_sft.json"), options=options).problems


def test_conversations_training_cannot_use_are_counted_by_its_reason(tmp_path, clips):
    gpt_first = sample("clip", "From 1 to 2.")
    gpt_first["conversations"].reverse()
    two_images = sample("clip", "From 1 to 2.")
    two_images["conversations"][0]["value"] = "<image>\n<image>\nWhen?"
    data = [sample("clip", "From 1 to 2."), gpt_first, two_images]
    options = Options(source_folders={"anet": str(clips)}, progress=False)
    report = check.check(write(tmp_path, data, "train_sft.json"), options=options)
    tally = report.tallies["anet"]
    assert report.problems == {INVALID: 2}
    assert [example.split(":")[:2] for example in tally.examples[INVALID]] == [
        ["record 2 (clip)", " first turn not human"], ["record 3 (clip)", " several <image>"]]
    table = check.render(report, options)
    assert "conversation invalid" in table and "token counts estimated" in table


def test_a_malformed_training_record_stops_with_its_place(tmp_path):
    data = [sample("clip", "From 1 to 2."), {"video": "x", "conversations": [{"from": "human"}]}]
    with pytest.raises(check.DataError, match=r"train_sft.json: record 2, turn 0: missing field 'value'"):
        check.check(write(tmp_path, data, "train_sft.json"), options=Options(progress=False))


@pytest.mark.parametrize(
    "name, content, fmt",
    [
        ("a.txt", "AAAAA 1 2##x\n", "charades"),
        ("a.json", {"v_a": {"duration": 1, "timestamps": [], "sentences": []}}, "anet"),
        ("a.json", [{"annotation_id": 1, "video": "v", "times": [[0, 0]], "description": "d"}], "didemo"),
        ("a.jsonl", None, "qvhighlights"),
        ("a.json", [{"id": "x", "conversations": [], "meta": {}}], "vtimellm"),
        ("a.json", [{"video": "x", "conversations": []}], "training"),
        ("a.json", MOMENTS, "moments"),
    ],
)
def test_detect_format(tmp_path, name, content, fmt):
    path = tmp_path / name
    if content is None:
        path.write_text(json.dumps({"qid": 1, "query": "q", "duration": 10, "vid": "v"}) + "\n")
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    assert check.detect_format(path) == fmt


def test_a_source_training_has_no_folder_for_gets_none_here_either(tmp_path, clips):
    from numpro.datasets.training import sample_source
    from numpro.training.preflight import _source

    data = [sample("clip", "From 1 to 2."), sample("clip", "From 1 to 2.", source="youtube")]
    assert [sample_source(s) for s in data] == ["anet", "youtube"] == [_source(s) for s in data]
    # the generic folder holds the clip, but training would not look there for a "youtube" sample
    options = Options(source_folders={"anet": str(clips)}, video_folder=str(clips), progress=False)
    report = check.check(write(tmp_path, data, "train_sft.json"), options=options)
    assert report.columns == ["anet", "youtube"]
    assert report.folders["youtube"].startswith("not given")


def test_bad_numbers_for_the_check_are_usage_errors(tmp_path, capsys):
    from numpro import cli

    annotations = write(tmp_path, [sample("clip", "From 1 to 2.")], "train_sft.json")
    for flag, value in [("--max_frames", "-1"), ("--model_max_length", "0"), ("--duration_tolerance", "-2")]:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["data", "check", "--annotations", str(annotations), flag, value])
        assert exit_info.value.code == 2 and flag in capsys.readouterr().err
