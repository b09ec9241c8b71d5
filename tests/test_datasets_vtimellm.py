"""VTimeLLM stage-2/3 samples -> NumPro-FT samples with 0.5-FPS frame numbers."""

import json

import pytest

from numpro import timeline
from numpro.datasets import vtimellm
from numpro.datasets.records import DataError

# The shape of VTimeLLM's published stage-2 example (docs/data.md).
STAGE2 = {
    "source": "internvid",
    "id": "3n3oCNerzV0",
    "conversations": [
        {"from": "human", "value": "<video>\nI'd appreciate it if you could describe the events at different timestamps."},
        {"from": "gpt", "value": "From <s0> to <e0>, woman is counting money. From <s1> to <e1>, two people shake hands."},
    ],
    "meta": {"split": [129.8, 184.0], "duration": 54.2, "token": {"<s0>": 0, "<e0>": 9.4, "<s1>": 49.4, "<e1>": 53.2}},
}
STAGE3 = {
    "source": "anet",
    "id": "v_abc",
    "conversations": [
        {"from": "human", "value": "<video>\nWhen does he jump?"},
        {"from": "gpt", "value": "between <s0> and <e0>."},
        {"from": "human", "value": "What happens during <s1> - <e1>?"},
        {"from": "gpt", "value": "<s1> - <e1>: he lands. At <s2> he waves, and during <s0> to <e0> he jumps."},
    ],
    "meta": {"duration": 100.0, "token": {"<s0>": 10.2, "<e0>": 20.9, "<s1>": 99.5, "<e1>": 101, "<s2>": 50}},
}
CHAT = {"source": "anet", "id": "v_def", "conversations": [{"from": "human", "value": "Describe it.\n<video>"}, {"from": "gpt", "value": "A cat."}]}


def convert(tmp_path, *samples, **kwargs):
    path = tmp_path / "stage.json"
    path.write_text(json.dumps(list(samples)))
    return vtimellm.convert(path, **kwargs)


def test_stage2_clip_mode(tmp_path):
    result = convert(tmp_path, STAGE2)
    (record,) = result.records
    frame = lambda s: timeline.seconds_to_frame(s, 0.5)  # noqa: E731
    assert record["video"] == "3n3oCNerzV0_129.8_184.0" and record["source"] == "internvid"
    assert record["conversations"][1]["value"] == (
        f"From {frame(0)} to {frame(9.4)}, woman is counting money. From {frame(49.4)} to {frame(53.2)}, two people shake hands."
    )
    assert record["conversations"][1]["value"].startswith("From 0 to 5,")
    assert record["conversations"][0]["value"].startswith("<image>\nI'd")
    assert record["duration"] == 54.2 and record["split"] == [129.8, 184.0]
    assert not result.tally


def test_stage2_full_mode_counts_from_the_video_start(tmp_path):
    (record,) = convert(tmp_path, STAGE2, split_mode="full").records
    assert record["video"] == "3n3oCNerzV0" and "duration" not in record
    start = timeline.seconds_to_frame(129.8, 0.5)
    assert record["conversations"][1]["value"].startswith(f"From {start} to {timeline.seconds_to_frame(139.2, 0.5)},")


def test_ranges_rephrased_and_times_clamped(tmp_path):
    result = convert(tmp_path, STAGE3)
    turns = [t["value"] for t in result.records[0]["conversations"]]
    last = timeline.num_sampled_frames(100.0, 0.5) - 1  # 49
    assert turns[1] == "from 5 to 10."
    assert turns[2] == f"What happens during {last} - {last}?"  # questions keep their wording
    assert turns[3] == f"From {last} to {last}: he lands. At 25 he waves, and from 5 to 10 he jumps."
    assert result.tally["placeholder times outside the clip (clamped)"] == 1


def test_samples_without_timestamps_kept(tmp_path):
    result = convert(tmp_path, CHAT)
    assert result.records[0] == {
        "id": "v_def", "video": "v_def", "source": "anet",
        "conversations": [{"from": "human", "value": "Describe it.\n<image>"}, {"from": "gpt", "value": "A cat."}],
    }
    assert result.tally["samples without timestamps (kept as they are)"] == 1


def test_image_token_added_when_absent(tmp_path):
    sample = dict(CHAT, conversations=[{"from": "human", "value": "Describe it."}, {"from": "gpt", "value": "A cat."}])
    assert convert(tmp_path, sample).records[0]["conversations"][0]["value"] == "<image>\nDescribe it."


def test_didemo_renamed_through_hash(tmp_path):
    sample = dict(CHAT, source="didemo", id="26292851@N04_4253489686_265c3c8051")
    assert convert(tmp_path, sample, hashes={"4253489686": "hashA"}).records[0]["video"] == "hashA"
    result = convert(tmp_path, sample, hashes={})
    assert result.records[0]["video"] == sample["id"] and result.tally["DiDeMo videos not in the hash file (id kept)"] == 1


@pytest.mark.parametrize(
    "change, message",
    [
        ({"meta": None}, r"record 1 \(id 3n3oCNerzV0\): missing field 'meta'"),
        ({"meta": {"duration": 54.2, "token": {"<s0>": 0}}}, "placeholder <e0> has no time in field 'meta.token'"),
        ({"meta": {"token": {}}}, "meta: missing field 'duration'"),
        ({"meta": dict(STAGE2["meta"], split=[5, 1])}, "field 'split' must have end > start"),
        ({"meta": dict(STAGE2["meta"], token={"<s0>": "0"})}, "field 'token <s0>' must be"),
        ({"conversations": [{"from": "bot", "value": "x"}]}, "turn 0: field 'from' must be 'human' or 'gpt'"),
        ({"conversations": [{"from": "human"}]}, "turn 0: missing field 'value'"),
        ({"id": None}, "record 1: missing field 'id'"),
    ],
)
def test_malformed(tmp_path, change, message):
    sample = {k: v for k, v in {**STAGE2, **change}.items() if v is not None}
    with pytest.raises(DataError, match=message):
        convert(tmp_path, sample)


def test_phrase_ranges():
    assert vtimellm.phrase_ranges("<s0>-<e0> a man runs. then <s1> to <e1> he rests") == (
        "From <s0> to <e0> a man runs. then from <s1> to <e1> he rests"
    )
    assert vtimellm.phrase_ranges("At <s0> he stops; <s0> - <e1> differ.") == "At <s0> he stops; <s0> - <e1> differ."
