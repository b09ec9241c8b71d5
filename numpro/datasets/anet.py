"""ActivityNet Captions: `val_1.json` / `val_2.json` / `train.json` -> NumPro test records.

The file maps a video key to `{duration, timestamps, sentences}`; every sentence becomes one
record, id `<key>_<k>` with k the sentence's index in the video's list (stable, unique).

Video names: the keys carry ActivityNet's `v_` prefix (`v_uqiMw7tQ1Cc`), and the official
ActivityNet video downloads are named the same way (`v_uqiMw7tQ1Cc.mp4`), so by default the
video is `<key>.mp4`. Copies fetched straight from YouTube are named by the bare YouTube id:
`strip_v_prefix=True` writes `uqiMw7tQ1Cc.mp4` instead. `numpro data check` finds a video under
either name.
"""

from __future__ import annotations

from pathlib import Path

from .records import NUMBER, Conversion, DataError, Tally, check_type, load_json, moment, need, tally_span, where

V_PREFIX = "v_"


def video_name(key: str, strip_v_prefix: bool = False, extension: str = ".mp4") -> str:
    if strip_v_prefix and key.startswith(V_PREFIX):
        key = key[len(V_PREFIX) :]
    return key + extension


def convert(annotations: str | Path, strip_v_prefix: bool = False, extension: str = ".mp4") -> Conversion:
    path = Path(annotations)
    data = load_json(path)
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object mapping video ids to annotations, got {type(data).__name__}")
    tally = Tally()
    records = []
    for key, entry in data.items():
        at = where(path, f"video {key!r}")
        duration = float(need(entry, "duration", NUMBER, at))
        if duration <= 0:
            raise DataError(f"{at}: field 'duration' must be positive, got {duration!r}")
        timestamps = need(entry, "timestamps", list, at)
        sentences = need(entry, "sentences", list, at)
        if len(timestamps) != len(sentences):
            raise DataError(f"{at}: {len(timestamps)} timestamps but {len(sentences)} sentences")
        for k, (span, sentence) in enumerate(zip(timestamps, sentences)):
            item = f"{at}, sentence {k}"
            check_type(span, "timestamps", list, item)
            if len(span) != 2:
                raise DataError(f"{item}: field 'timestamps' must hold [start, end], got {span!r}")
            start, end = (float(check_type(t, "timestamps", NUMBER, item)) for t in span)
            query = check_type(sentence, "sentences", str, item).strip()
            if not query:
                raise DataError(f"{item}: field 'sentences' is empty")
            id_ = f"{key}_{k}"
            records.append(moment(id_, video_name(key, strip_v_prefix, extension), query, start, end, duration))
            tally_span(tally, start, end, duration, id_)
    return Conversion(records, tally)
