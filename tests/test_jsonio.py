"""Reading JSON / JSON Lines records and appending JSON Lines."""

import json

import numpy as np
import pytest

from numpro.jsonio import JsonInputError, JsonlWriter, append_jsonl, iter_jsonl, read_json, read_records, write_json


def test_detects_list_and_lines(tmp_path):
    records = [{"id": 1}, {"id": 2}]
    as_list = tmp_path / "a.json"
    as_list.write_text("\n  " + json.dumps(records, indent=2))
    as_lines = tmp_path / "b.jsonl"
    as_lines.write_text('{"id": 1}\n\n{"id": 2}\n')
    assert read_records(as_list) == records == read_records(as_lines)


def test_single_line_without_newline(tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_text('{"id": 1}')
    assert read_records(path) == [{"id": 1}]


def test_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 1}\n{"id": \n{"id": 3}\n')
    with pytest.raises(JsonInputError, match=r"bad\.jsonl: line 2"):
        read_records(path)
    listing = tmp_path / "bad.json"
    listing.write_text('[\n {"id": 1},\n {"id" 2}\n]')
    with pytest.raises(JsonInputError, match=r"bad\.json: line 3"):
        read_records(listing)


def test_non_object_records_are_rejected(tmp_path):
    path = tmp_path / "nums.jsonl"
    path.write_text("1\n2\n")
    with pytest.raises(JsonInputError, match="line 1: expected a JSON object"):
        read_records(path)
    listing = tmp_path / "nums.json"
    listing.write_text('[{"a": 1}, 5]')
    with pytest.raises(JsonInputError, match="record 2: expected a JSON object"):
        read_records(listing)


def test_missing_file(tmp_path):
    with pytest.raises(JsonInputError, match="no such file"):
        read_records(tmp_path / "absent.jsonl")


def test_partial_tail(tmp_path):
    path = tmp_path / "cut.jsonl"
    path.write_text('{"id": 1}\n{"id": 2, "resp')
    with pytest.raises(JsonInputError, match="line 2.*cut short"):
        read_records(path)
    assert read_records(path, allow_partial_tail=True) == [{"id": 1}]
    assert [n for n, _ in iter_jsonl(path, allow_partial_tail=True)] == [1]


def test_writer_appends_flushes_and_repairs_tail(tmp_path):
    path = tmp_path / "sub" / "out.jsonl"
    with JsonlWriter(path) as writer:
        writer.write({"id": 1, "score": np.float32(0.5), "frames": np.arange(2)})
        # flushed: visible before the writer is closed
        assert read_records(path) == [{"id": 1, "score": 0.5, "frames": [0, 1]}]
    with open(path, "a") as f:
        f.write('{"id": 2, "half')  # a run killed mid-write
    append_jsonl(path, [{"id": 3}])
    assert read_records(path) == [{"id": 1, "score": 0.5, "frames": [0, 1]}, {"id": 3}]


def test_writer_keeps_a_complete_last_line_without_newline(tmp_path):
    path = tmp_path / "hand.jsonl"
    path.write_text('{"id": 1}')
    append_jsonl(path, [{"id": 2}])
    assert read_records(path) == [{"id": 1}, {"id": 2}]


def test_write_json_roundtrip(tmp_path):
    path = tmp_path / "m.json"
    write_json(path, {"a": np.int64(3)})
    assert read_json(path) == {"a": 3}
    assert not (tmp_path / "m.json.tmp").exists()
