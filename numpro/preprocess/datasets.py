"""The preprocessing scripts' datasets: upstream's input folders and output roots (DESIGN 2)."""

from __future__ import annotations

from dataclasses import dataclass

from ..datasets.didemo import HASH_FILE as DIDEMO_HASH_FILE


@dataclass(frozen=True)
class Dataset:
    """A preprocessing script's defaults: upstream's folders for one dataset."""

    key: str  # the "source" value of its records in training files
    title: str
    inputs: tuple[str, ...]
    root: str  # the default output folder is ROOT/<settings.folder_name()>
    hash_file: str | None = None  # DiDeMo: rename outputs to their hash
    notes: str = ""


DATASETS = {dataset.key: dataset for dataset in (
    Dataset("anet", "ActivityNet",
            ("data/anet/v1-2/val", "data/anet/v1-2/train", "data/anet/v1-2/test", "data/anet/v1-3/train_val",
             "data/anet/v1-3/test"),
            "data/anet",
            notes="A video present in several input folders (v1-2 and v1-3 overlap) is made once, from the first "
                  "folder."),
    Dataset("didemo", "DiDeMo", ("data/didemo/train",), "data/didemo", hash_file=str(DIDEMO_HASH_FILE),
            notes="Outputs are named by the hash of the Flickr id in each file name (OWNER@N00_ID_SECRET.ext)."),
    Dataset("internvid", "InternVid", ("data/internvid/train",), "data/internvid",
            notes="Use --only_listed TRAIN_JSON to make only the videos a training file references."),
    Dataset("charades", "Charades-STA", ("data/charades/videos",), "data/charades",
            notes="Training-free moment retrieval samples at 1 FPS: add --fps 1 to see those frames."),
    Dataset("qvhighlights", "QVHighlights", ("data/qvhighlights/videos",), "data/qvhighlights",
            notes="QVHighlights annotations (JSON Lines) name videos in 'vid': --only_listed accepts them."),
)}
