"""QVHighlights jsonl: validated as it is, structural faults stop, odd values are counted."""

import json

import pytest

from numpro.datasets import qvhighlights
from numpro.datasets.records import DataError


def line(**changes):
    record = {
        "qid": 1, "query": "a girl cooks", "duration": 150, "vid": "abc_60.0_210.0",
        "relevant_clip_ids": [41, 42, 43], "saliency_scores": [[1, 1, 2], [1, 1, 3], [4, 0, 3]],
        "relevant_windows": [[82, 88]],
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not None}


def write(tmp_path, *records, raw=None):
    path = tmp_path / "val.jsonl"
    path.write_text(raw if raw is not None else "\n".join(json.dumps(r) for r in records) + "\n")
    return path


def test_valid_file_kept_as_is(tmp_path):
    records = [line(), line(qid=2, relevant_clip_ids=[0], saliency_scores=[[2, 2, 2]], relevant_windows=[[0, 2]])]
    result = qvhighlights.read(write(tmp_path, *records))
    assert result.records == records and not result.tally
    assert qvhighlights.video_name(records[0]) == "abc_60.0_210.0.mp4"


def test_test_split_has_no_labels(tmp_path):
    unlabelled = line(relevant_clip_ids=None, saliency_scores=None, relevant_windows=None)
    assert qvhighlights.read(write(tmp_path, unlabelled)).records == [unlabelled]


def test_value_anomalies_counted(tmp_path):
    result = qvhighlights.read(
        write(
            tmp_path,
            line(qid=1, relevant_clip_ids=[75], saliency_scores=[[1, 1, 1]], relevant_windows=[[150, 152]]),
            line(qid=2, relevant_windows=[[82, 86]]),
            line(qid=3, relevant_clip_ids=[0], saliency_scores=[[1, 1, 1]], relevant_windows=[[2, 0]]),
        )
    )
    assert result.tally["clip ids past int(duration / 2)"] == 1
    assert result.tally["windows outside the video"] == 1
    assert result.tally["clip ids that do not match the windows"] == 2  # qid 2 and 3
    assert result.tally["windows with end <= start"] == 1
    assert len(result.records) == 3


@pytest.mark.parametrize(
    "record, message",
    [
        (line(query=None), r"line 1 \(qid 1\): missing field 'query'"),
        (line(duration="150"), "field 'duration' must be"),
        (line(relevant_windows=None), "missing field 'relevant_windows'"),
        (line(saliency_scores=[[1, 1, 1]]), "'saliency_scores' has 1 entries for 3 relevant_clip_ids"),
        (line(saliency_scores=[[1, 1], [1, 1, 1], [1, 1, 1]]), r"one \[a1, a2, a3\] per clip"),
        (line(saliency_scores=[[1, 1, 5], [1, 1, 1], [1, 1, 1]]), "holds 5, outside 0..4"),
        (line(relevant_clip_ids=[1, "2", 3]), "field 'relevant_clip_ids' must be an integer"),
    ],
)
def test_malformed(tmp_path, record, message):
    with pytest.raises(DataError, match=message):
        qvhighlights.read(write(tmp_path, record))


def test_bad_line_and_duplicates(tmp_path):
    with pytest.raises(DataError, match=r"val.jsonl: line 2.*invalid JSON"):
        qvhighlights.read(write(tmp_path, raw=json.dumps(line()) + "\n{oops\n"))
    with pytest.raises(DataError, match="line 2: duplicate qid '1'"):
        qvhighlights.read(write(tmp_path, line(), line()))
    with pytest.raises(DataError, match="line 2: expected a JSON object"):
        qvhighlights.read(write(tmp_path, raw=json.dumps(line()) + "\n[1, 2]\n"))


def test_a_json_list_is_read_too(tmp_path):
    records = [line(), line(qid=2)]
    path = tmp_path / "val.json"
    path.write_text(json.dumps(records))
    assert qvhighlights.read(path).records == records
    path.write_text(json.dumps([line(), line()]))
    with pytest.raises(DataError, match=r"val.json: record 2: duplicate qid '1' \(first at .*val.json: record 1\)"):
        qvhighlights.read(path)
