"""Reading JSON / JSON Lines records, appending JSON Lines and writing whole files atomically."""

import json

import numpy as np
import pytest

from numpro.jsonio import (
    JsonInputError,
    JsonlWriter,
    append_jsonl,
    iter_jsonl,
    located_records,
    read_json,
    read_records,
    write_json,
    write_jsonl,
)


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


def test_write_jsonl_replaces_the_file_atomically(tmp_path):
    path = tmp_path / "sub" / "out.jsonl"
    write_jsonl(path, [{"id": 1, "score": np.float32(0.5)}, {"id": 2, "text": "é"}])
    assert read_records(path) == [{"id": 1, "score": 0.5}, {"id": 2, "text": "é"}]
    write_jsonl(path, [{"id": 3}])  # a rewrite replaces, never appends
    assert path.read_text(encoding="utf-8") == '{"id": 3}\n' and not (path.parent / "out.jsonl.tmp").exists()


def test_located_records_name_the_line_or_the_record(tmp_path):
    lines = tmp_path / "a.jsonl"
    lines.write_text('{"id": 1}\n\n{"id": 2}\n')
    assert located_records(lines) == [("line 1", {"id": 1}), ("line 3", {"id": 2})]
    listed = tmp_path / "a.json"
    listed.write_text('[{"id": 1}, {"id": 2}]')
    assert [position for position, _ in located_records(listed)] == ["record 1", "record 2"]
