"""The tools on the public reference annotations (skipped when the folder is absent)."""

import os
from pathlib import Path

import pytest

from numpro.datasets import anet, charades, check, didemo, qvhighlights
from numpro.datasets.records import PAST_END


def reference_dir() -> Path | None:
    env = os.environ.get("NUMPRO_REFERENCE_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "reference"
    return path if path.is_dir() else None


REF = reference_dir()
pytestmark = pytest.mark.skipif(
    REF is None, reason="reference annotations not found: set NUMPRO_REFERENCE_DIR or place them in ../shared/reference"
)


@pytest.fixture(scope="module")
def empty(tmp_path_factory):
    return tmp_path_factory.mktemp("no_videos")


def options(folder, **kwargs):
    return check.Options(video_folder=str(folder), progress=False, **kwargs)


def test_charades(empty):
    sta = REF / "charades_sta" / "charades_sta_test.txt"
    csv = REF / "charades_sta" / "Charades_v1_test.csv"
    result = charades.convert(sta, charades.read_lengths(csv))
    assert len(result.records) == 3720 and result.videos == 1334
    assert result.tally[PAST_END] == 562
    assert len({r["id"] for r in result.records}) == 3720
    report = check.check(sta, options=options(empty, video_info=str(csv)))
    assert report.problems == {check.MISSING: 1334, PAST_END: 562}


def test_anet(empty, tmp_path):
    result = anet.convert(REF / "activitynet" / "val_2.json")
    assert len(result.records) == 17031 and len({r["id"] for r in result.records}) == 17031
    report = check.check(REF / "activitynet" / "val_2.json", options=options(empty))
    assert report.problems == {check.MISSING: result.videos, PAST_END: result.tally[PAST_END]}


def test_didemo(empty):
    hashes = didemo.read_hash_file(REF / "didemo" / "yfcc100m_hash.txt")
    result = didemo.convert(REF / "didemo" / "test_data.json", hashes)
    assert len(result.records) == 4021 and not result.tally  # every test video has a hash
    assert all(0 <= r["start_time"] < r["end_time"] <= r["duration"] <= 30 for r in result.records)
    report = check.check(REF / "didemo" / "test_data.json", options=options(empty, hash_file=str(REF / "didemo" / "yfcc100m_hash.txt")))
    assert report.problems == {check.MISSING: result.videos}


def test_qvhighlights(empty):
    result = qvhighlights.read(REF / "qvhighlights" / "highlight_val_release.jsonl")
    assert len(result.records) == 1550 and not result.tally
    report = check.check(REF / "qvhighlights" / "highlight_val_release.jsonl", options=options(empty))
    assert report.problems == {check.MISSING: len({r["vid"] for r in result.records})}
