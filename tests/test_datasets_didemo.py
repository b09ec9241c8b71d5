"""DiDeMo json -> NumPro records: consensus span, 5-s inclusive segments, hashed video names."""

import json

import pytest

from numpro.datasets import didemo
from numpro.datasets.records import DataError

HASHES = "4253489686\thashA\n8544469262\thashB\n"


def entry(annotation_id, times, video="26292851@N04_4253489686_265c3c8051.m4v", segments=6, text="a dog runs"):
    return {"annotation_id": annotation_id, "video": video, "times": times, "num_segments": segments, "description": text}


def write(tmp_path, entries, name="test_data.json"):
    path = tmp_path / name
    path.write_text(json.dumps(entries))
    (tmp_path / "hash.txt").write_text(HASHES)
    return path, didemo.read_hash_file(tmp_path / "hash.txt")


@pytest.mark.parametrize(
    "times, span, tied",
    [
        ([[4, 4], [4, 4], [0, 0], [4, 4]], (4, 4), False),  # most frequent
        ([[2, 2], [1, 2], [1, 1], [2, 2]], (2, 2), False),
        ([[3, 4], [1, 2], [1, 2], [3, 4]], (1, 2), True),  # tie -> earliest start
        ([[1, 3], [1, 2]], (1, 2), True),  # tie, same start -> earliest end
        ([[3, 1], [3, 1], [2, 2]], (2, 2), False),  # reversed spans do not vote
        ([[3, 1], [3, 1], [4, 2]], (3, 1), False),  # all reversed: kept, reported by convert
    ],
)
def test_consensus(times, span, tied):
    result = didemo.consensus([tuple(t) for t in times])
    assert result.span == span and result.tied == tied


def test_consensus_ignores_annotator_order():
    times = [(3, 4), (1, 2), (1, 2), (3, 4)]
    assert didemo.consensus(times).span == didemo.consensus(times[::-1]).span


def test_records_in_seconds_with_hashed_names(tmp_path):
    path, hashes = write(tmp_path, [entry(7, [[4, 4], [4, 4], [0, 0]]), entry(8, [[0, 1]] * 3, segments=5)])
    result = didemo.convert(path, hashes)
    assert result.records == [
        {"id": "7", "video": "hashA.mp4", "query": "a dog runs", "start_time": 20.0, "end_time": 25.0, "duration": 30.0},
        {"id": "8", "video": "hashA.mp4", "query": "a dog runs", "start_time": 0.0, "end_time": 10.0, "duration": 25.0},
    ]
    assert not result.tally


def test_name_ending_in_a_dot_and_unknown_hash(tmp_path):
    path, hashes = write(
        tmp_path,
        [entry(1, [[0, 0]], video="58792004@N06_8544469262_fd25eddb2e."), entry(2, [[0, 0]], video="1@N01_999_abc.mov")],
    )
    result = didemo.convert(path, hashes)
    assert [r["video"] for r in result.records] == ["hashB.mp4", "1@N01_999_abc.mov"]
    assert result.tally["videos not in the hash file (original name kept)"] == 1
    assert didemo.convert(path, None).records[0]["video"] == "58792004@N06_8544469262_fd25eddb2e."


def test_real_durations_clamp_the_end(tmp_path):
    path, hashes = write(tmp_path, [entry(1, [[5, 5]] * 2), entry(2, [[0, 0]] * 2, video="5@N01_8544469262_ab.mp4")])
    result = didemo.convert(path, hashes, durations={"hashA.mp4": 27.5})
    first, second = result.records
    assert (first["start_time"], first["end_time"], first["duration"]) == (25.0, 27.5, 27.5)
    assert second["duration"] == 30.0  # unknown video: the num_segments bound
    assert result.tally["ends clamped to the real video length"] == 1
    assert "real durations for 1 of 2 queries" in result.notes[-1]


def test_span_past_num_segments_and_reversed_consensus(tmp_path):
    path, hashes = write(tmp_path, [entry(1, [[4, 5]] * 2, segments=5), entry(2, [[3, 1], [3, 1]])])
    result = didemo.convert(path, hashes)
    assert result.records[0]["end_time"] == 25.0  # clamped to the 5-segment bound
    assert result.tally["spans past num_segments (end clamped)"] == 1
    assert result.tally["consensus spans with end < start (kept)"] == 1
    assert result.tally["annotator spans with end < start (left out of the vote)"] == 2
    assert (result.records[1]["start_time"], result.records[1]["end_time"]) == (15.0, 10.0)


def test_several_files_and_duplicate_ids(tmp_path):
    first, hashes = write(tmp_path, [entry(1, [[0, 0]])], "train_data.json")
    second, _ = write(tmp_path, [entry(2, [[1, 1]])], "val_data.json")
    assert [r["id"] for r in didemo.convert([first, second], hashes).records] == ["1", "2"]
    third, _ = write(tmp_path, [entry(1, [[1, 1]])], "test_data.json")
    with pytest.raises(DataError, match="test_data.json: record 1 .*duplicate annotation_id"):
        didemo.convert([first, third], hashes)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"video": "a.mp4", "times": [[0, 0]], "description": "x"}, "record 1: missing field 'annotation_id'"),
        ({"annotation_id": 1, "video": "a.mp4", "description": "x"}, r"record 1 \(annotation_id 1\): missing field 'times'"),
        (entry(1, []), "field 'times' is empty"),
        (entry(1, [[0]]), r"must hold \[start, end\] segment pairs"),
        (entry(1, [[0, 1.5]]), "field 'times' must be an integer"),
        (entry(1, [[0, 0]], segments=7), "field 'num_segments' must be 1..6"),
        (entry(1, [[0, 0]], text=" "), "field 'description' is empty"),
    ],
)
def test_malformed(tmp_path, bad, message):
    path, hashes = write(tmp_path, [bad])
    with pytest.raises(DataError, match=message):
        didemo.convert(path, hashes)


def test_hash_file_and_flickr_id(tmp_path):
    (tmp_path / "h.txt").write_text("1\taaa\n\n2 bbb\n")
    assert didemo.read_hash_file(tmp_path / "h.txt") == {"1": "aaa", "2": "bbb"}
    (tmp_path / "bad.txt").write_text("1\taaa\n2\n")
    with pytest.raises(ValueError, match="bad.txt:2"):
        didemo.read_hash_file(tmp_path / "bad.txt")
    assert didemo.flickr_id("26292851@N04_4253489686_265c3c8051.m4v") == "4253489686"
    assert didemo.flickr_id("4253489686.mp4") == "4253489686"
