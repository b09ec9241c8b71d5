"""`python -m numpro data ...` as a user runs it: outputs, messages, exit statuses."""

import json
import subprocess
import sys
from pathlib import Path

from numpro import cli

REPO = Path(__file__).resolve().parents[1]


def run(*args):
    return cli.main(["data", *map(str, args)])


def test_help_from_the_shell():
    result = subprocess.run([sys.executable, "-m", "numpro", "data", "--help"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0
    for tool in ("charades", "anet", "didemo", "qvhighlights", "vtimellm", "check"):
        assert tool in result.stdout
    top = subprocess.run([sys.executable, "-m", "numpro", "--help"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert top.returncode == 0 and "data" in top.stdout


def test_charades_writes_the_test_file(tmp_path, capsys):
    (tmp_path / "sta.txt").write_text("AAAAA 1 2##a.\nAAAAA 3 40##b.\n")
    (tmp_path / "info.csv").write_text("id,length\nAAAAA,30\n")
    out = tmp_path / "data" / "charades_test.json"
    assert run("charades", "--annotations", tmp_path / "sta.txt", "--video-info", tmp_path / "info.csv", "--output", out) == 0
    assert [r["id"] for r in json.loads(out.read_text())] == ["AAAAA_0", "AAAAA_1"]
    printed = capsys.readouterr().out
    assert "2 records over 1 videos" in printed and "1 ends past the video length" in printed


def test_malformed_input_exits_2_naming_the_place(tmp_path, capsys):
    (tmp_path / "val_2.json").write_text(json.dumps({"v_a": {"duration": 5, "timestamps": [[0, 1]]}}))
    assert run("anet", "--annotations", tmp_path / "val_2.json", "--output", tmp_path / "o.json") == 2
    err = capsys.readouterr().err
    assert "val_2.json: video 'v_a': missing field 'sentences'" in err and "Traceback" not in err
    assert not (tmp_path / "o.json").exists()


def test_missing_hash_file_is_named(tmp_path, capsys):
    (tmp_path / "t.json").write_text("[]")
    assert run("didemo", "--annotations", tmp_path / "t.json", "--hash_file", tmp_path / "h.txt", "--output", tmp_path / "o.json") == 2
    assert "h.txt: no such file (--hash_file)" in capsys.readouterr().err


def test_didemo_probes_real_durations(tmp_path, capsys):
    from numpro import synthetic

    (tmp_path / "h.txt").write_text("4253489686\thashA\n")
    (tmp_path / "t.json").write_text(json.dumps(
        [{"annotation_id": 1, "video": "26292851@N04_4253489686_265c3c8051.m4v", "times": [[5, 5]] * 2, "description": "d"}]))
    synthetic.write_video(tmp_path / "videos" / "26292851@N04_4253489686_265c3c8051.mp4", 270, 10)  # 27 s, original name
    out = tmp_path / "o.json"
    args = ["didemo", "--annotations", tmp_path / "t.json", "--hash_file", tmp_path / "h.txt", "--output", out]
    assert run(*args, "--videos", tmp_path / "videos", "--workers", 1) == 0
    (record,) = json.loads(out.read_text())
    assert record["video"] == "hashA.mp4" and record["duration"] == 27.0 and record["end_time"] == 27.0


def test_qvhighlights_and_vtimellm(tmp_path, capsys):
    line = {"qid": 1, "query": "q", "duration": 10, "vid": "v", "relevant_clip_ids": [0], "saliency_scores": [[1, 2, 3]], "relevant_windows": [[0, 2]]}
    (tmp_path / "qv.jsonl").write_text(json.dumps(line) + "\n")
    assert run("qvhighlights", "--annotations", tmp_path / "qv.jsonl", "--output", tmp_path / "copy.jsonl") == 0
    assert json.loads((tmp_path / "copy.jsonl").read_text()) == line
    assert "valid, 1 queries over 1 videos" in capsys.readouterr().out

    sample = {"id": "yt1", "source": "internvid", "meta": {"duration": 20, "token": {"<s0>": 4, "<e0>": 8}},
              "conversations": [{"from": "human", "value": "<video>\nWhen?"}, {"from": "gpt", "value": "<s0> - <e0>."}]}
    (tmp_path / "stage2.json").write_text(json.dumps([sample]))
    assert run("vtimellm", "--annotations", tmp_path / "stage2.json", "--output", tmp_path / "sft.json") == 0
    (converted,) = json.loads((tmp_path / "sft.json").read_text())
    assert converted["conversations"][1]["value"] == "From 2 to 4."


def test_check_strict_and_missing_list(tmp_path, capsys):
    records = [{"id": "a", "video": "a.mp4", "query": "q", "start_time": 0, "end_time": 1, "duration": 5}]
    (tmp_path / "test.json").write_text(json.dumps(records))
    (tmp_path / "videos").mkdir()
    args = ["check", "--annotations", tmp_path / "test.json", "--videos", tmp_path / "videos", "--no_progress"]
    assert run(*args) == 0
    assert run(*args, "--strict", "--missing_list", tmp_path / "missing.txt") == 1
    assert (tmp_path / "missing.txt").read_text() == "a.mp4\n"
    out = capsys.readouterr().out
    assert "videos missing" in out and "result: 1 problem of 1 kind" in out
    (tmp_path / "videos" / "a.mp4").write_bytes(b"")  # present but empty: unreadable
    assert run(*args, "--strict", "--workers", 2) == 1  # through worker processes
    assert "file is empty" in capsys.readouterr().out
