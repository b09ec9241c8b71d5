"""ActivityNet Captions json -> one NumPro record per sentence."""

import json

import pytest

from numpro.datasets import anet
from numpro.datasets.records import BEFORE_ZERO, PAST_END, REVERSED, DataError

DATA = {
    "v_abc": {"duration": 55.15, "timestamps": [[0, 4.14], [4.14, 55.16]], "sentences": ["A man talks.", " He lifts."]},
    "v_def": {"duration": 10, "timestamps": [[5, 3], [-1, 2], [2, 9.999999999]], "sentences": ["x", "y", "z"]},
}


def write(tmp_path, data=DATA):
    path = tmp_path / "val_2.json"
    path.write_text(json.dumps(data))
    return path


def test_one_record_per_sentence(tmp_path):
    result = anet.convert(write(tmp_path))
    assert [r["id"] for r in result.records] == ["v_abc_0", "v_abc_1", "v_def_0", "v_def_1", "v_def_2"]
    assert result.records[1] == {
        "id": "v_abc_1", "video": "v_abc.mp4", "query": "He lifts.", "start_time": 4.14, "end_time": 55.16, "duration": 55.15,
    }


def test_v_prefix_convention(tmp_path):
    records = anet.convert(write(tmp_path), strip_v_prefix=True).records
    assert records[0]["video"] == "abc.mp4" and records[0]["id"] == "v_abc_0"  # ids keep the key


def test_anomalies(tmp_path):
    tally = anet.convert(write(tmp_path)).tally
    assert tally[PAST_END] == 1  # 55.16 > 55.15; 9.999999999 <= 10 is float noise
    assert tally[REVERSED] == 1 and tally[BEFORE_ZERO] == 1


@pytest.mark.parametrize(
    "data, message",
    [
        ([], "expected a JSON object mapping video ids"),
        ({"v_x": {"timestamps": [], "sentences": []}}, "video 'v_x': missing field 'duration'"),
        ({"v_x": {"duration": 3, "timestamps": [[0, 1]], "sentences": []}}, "video 'v_x': 1 timestamps but 0 sentences"),
        ({"v_x": {"duration": 3, "timestamps": [[0, "1"]], "sentences": ["a"]}}, "sentence 0: field 'timestamps' must be"),
        ({"v_x": {"duration": 3, "timestamps": [[0]], "sentences": ["a"]}}, r"must hold \[start, end\]"),
        ({"v_x": {"duration": 3, "timestamps": [[0, 1]], "sentences": [" "]}}, "field 'sentences' is empty"),
    ],
)
def test_malformed(tmp_path, data, message):
    with pytest.raises(DataError, match=message):
        anet.convert(write(tmp_path, data))


def test_bad_json_names_line(tmp_path):
    path = tmp_path / "val_2.json"
    path.write_text('{\n "v_x": {"duration": 3,,}\n}')
    with pytest.raises(DataError, match=r"val_2.json: line 2"):
        anet.convert(path)
