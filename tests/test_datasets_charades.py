"""Charades-STA txt + csv -> NumPro moment-retrieval records."""

import pytest

from numpro.datasets import charades
from numpro.datasets.records import DataError, PAST_END, REVERSED

CSV = "id,subject,scene,length\nAAAAA,S1,Kitchen,30.5\nBBBBB,S2,\"Hall, big\",12.25\n"
TXT = (
    "AAAAA 1.0 5.5##person opens a door.\n"
    "AAAAA 20 31.2##person sits down.\n"  # end past the 30.5 s video
    "\n"
    "BBBBB 8 6##someone ## laughs \n"  # reversed span; '##' inside the sentence
)


def write(tmp_path, txt=TXT, csv=CSV):
    (tmp_path / "sta.txt").write_text(txt)
    (tmp_path / "info.csv").write_text(csv)
    return tmp_path / "sta.txt", tmp_path / "info.csv"


def test_records_ids_and_durations(tmp_path):
    txt, csv = write(tmp_path)
    result = charades.convert(txt, charades.read_lengths(csv))
    assert result.records == [
        {"id": "AAAAA_0", "video": "AAAAA.mp4", "query": "person opens a door.", "start_time": 1.0, "end_time": 5.5, "duration": 30.5},
        {"id": "AAAAA_1", "video": "AAAAA.mp4", "query": "person sits down.", "start_time": 20.0, "end_time": 31.2, "duration": 30.5},
        {"id": "BBBBB_0", "video": "BBBBB.mp4", "query": "someone ## laughs", "start_time": 8.0, "end_time": 6.0, "duration": 12.25},
    ]
    assert result.videos == 2


def test_anomalies_reported_not_fixed(tmp_path):
    txt, csv = write(tmp_path)
    result = charades.convert(txt, charades.read_lengths(csv))
    assert result.tally[PAST_END] == 1 and "AAAAA_1 (line 2)" in result.tally.examples[PAST_END][0]
    assert result.tally[REVERSED] == 1
    assert result.records[1]["end_time"] == 31.2  # kept as published


def test_without_lengths_durations_are_null(tmp_path):
    txt, _ = write(tmp_path)
    result = charades.convert(txt, None)
    assert all(r["duration"] is None for r in result.records)
    assert result.tally[PAST_END] == 0


@pytest.mark.parametrize(
    "line, message",
    [
        ("AAAAA 1.0 5.5 person opens\n", "sta.txt: line 1: expected 'VID start end##sentence'"),
        ("AAAAA one 5.5##x\n", "sta.txt: line 1: field 'start' must be a number"),
        ("AAAAA 1 2##   \n", "sta.txt: line 1: field 'sentence' is empty"),
        ("ZZZZZ 1 2##x\n", "sta.txt: line 1: video 'ZZZZZ' has no length"),
    ],
)
def test_malformed_lines_name_file_line_and_field(tmp_path, line, message):
    txt, csv = write(tmp_path, txt=line)
    with pytest.raises(DataError, match=message):
        charades.convert(txt, charades.read_lengths(csv))


@pytest.mark.parametrize(
    "csv, message",
    [
        ("id,scene\nAAAAA,x\n", "line 1: missing column 'length'"),
        ("id,length\nAAAAA,long\n", "line 2: field 'length' must be a number"),
        ("id,length\nAAAAA,0\n", "line 2: field 'length' must be positive"),
    ],
)
def test_malformed_csv(tmp_path, csv, message):
    _, path = write(tmp_path, csv=csv)
    with pytest.raises(DataError, match=message):
        charades.read_lengths(path)
