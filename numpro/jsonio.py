"""Reading JSON / JSON Lines record files and writing them, with errors that say where.

`read_records` accepts either a JSON list (upstream's result files) or JSON Lines (ours, the
QVHighlights files) and tells them apart by the first non-blank character. `JsonlWriter`
appends one record per line and flushes each, so a killed run loses at most the line it was
writing; on opening it drops such a half-written last line so that it is never read as a record.
`write_json` and `write_jsonl` replace a whole file atomically.

`JsonInputError` is the package's one error for malformed input files (the annotation tools know
it as `datasets.records.DataError`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence


class JsonInputError(ValueError):
    """Malformed input: a file that is not what we expect. The message names the file, the line
    or record, and the field."""


def _to_builtin(obj: Any) -> Any:
    # numpy scalars and arrays (and anything else with tolist/item) become plain JSON values.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def dumps_line(record: Any) -> str:
    """One record as a single JSON line (no trailing newline)."""
    return json.dumps(record, ensure_ascii=False, default=_to_builtin)


def read_json(path: str | os.PathLike) -> Any:
    """Load a whole JSON document."""
    path = Path(path)
    return _parse_json(path, _read_text(path))


def _parse_json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise JsonInputError(f"{path}: line {err.lineno}, column {err.colno}: invalid JSON ({err.msg})") from None


def read_json_object(path: str | os.PathLike) -> dict:
    """An optional side file (a run record, a sweep's state): its JSON object, or {} when the file is
    missing, unreadable or not an object, since such a file only adds information."""
    try:
        loaded = read_json(path)
    except JsonInputError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def iter_jsonl(path: str | os.PathLike, *, allow_partial_tail: bool = False) -> Iterator[tuple[int, Any]]:
    """Yield (line number, record) for each non-blank line of a JSON Lines file.

    With `allow_partial_tail`, an unparsable last line without a trailing newline (a run killed
    mid-write) is skipped instead of raising.
    """
    path = Path(path)
    yield from _jsonl_lines(path, _read_text(path, allow_partial_tail=allow_partial_tail), allow_partial_tail)


def _jsonl_lines(path: Path, text: str, allow_partial_tail: bool) -> Iterator[tuple[int, Any]]:
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as err:
            is_tail = number == len(lines)  # no newline after it
            if allow_partial_tail and is_tail:
                return
            hint = " (the file looks cut short: was the run killed?)" if is_tail else ""
            raise JsonInputError(f"{path}: line {number}, column {err.colno}: invalid JSON ({err.msg}){hint}") from None


def located_records(path: str | os.PathLike, *, allow_partial_tail: bool = False) -> list[tuple[str, dict]]:
    """(position, record) for each record (JSON object) of a JSON list or a JSON Lines file,
    detected by content; the position ("line 3" or "record 3") is what error messages name."""
    path = Path(path)
    text = _read_text(path, allow_partial_tail=allow_partial_tail)
    if text.lstrip().startswith("["):  # the text in hand is parsed: each file is read once
        data = _parse_json(path, text)
        if not isinstance(data, list):
            raise JsonInputError(f"{path}: expected a JSON list of records")
        records = [(f"record {number}", record) for number, record in enumerate(data, start=1)]
    else:
        lines = _jsonl_lines(path, text, allow_partial_tail)
        records = [(f"line {number}", record) for number, record in lines]
    for position, record in records:
        if not isinstance(record, dict):
            raise JsonInputError(f"{path}: {position}: expected a JSON object, got {type(record).__name__}")
    return records


def read_records(path: str | os.PathLike, *, allow_partial_tail: bool = False) -> list[dict]:
    """Records (JSON objects) from a JSON list or a JSON Lines file, detected by content."""
    return [record for _, record in located_records(path, allow_partial_tail=allow_partial_tail)]


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file atomically (a temporary file of this process, then rename): a half-written
    file never takes the place of a finished one. Parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_json(path: str | os.PathLike, data: Any, *, indent: int = 2, sort_keys: bool = False) -> None:
    """Write a JSON document atomically (see write_text)."""
    write_text(path, json.dumps(data, ensure_ascii=False, indent=indent, sort_keys=sort_keys,
                                default=_to_builtin) + "\n")


def write_csv(path: str | os.PathLike, rows: Iterable[dict], columns: Sequence[str]) -> Path:
    """Rows as a CSV file with a header, atomically (see write_text); fields not in `columns` are left out."""
    import csv
    import io

    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())


def write_jsonl(path: str | os.PathLike, records: Iterable[Any]) -> Path:
    """Write records as a JSON Lines file atomically (temporary file, then rename), so a
    half-written file never takes the place of a finished one; parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(dumps_line(record) + "\n")
    os.replace(tmp, path)
    return path


class JsonlWriter:
    """Append records to a JSON Lines file, one flushed line each.

    Use as a context manager. `fsync=True` also forces each line to disk (slower; for runs
    where a machine crash, not just a killed process, must not lose finished records).
    """

    def __init__(self, path: str | os.PathLike, *, fsync: bool = False):
        self.path = Path(path)
        self.fsync = fsync
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_partial_tail(self.path)
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, record: Any) -> None:
        # One write call per line keeps a concurrent reader from seeing half a record
        # more often than unavoidable; the flush makes it visible to a resumed run.
        self._file.write(dumps_line(record) + "\n")
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())

    def write_many(self, records: Iterable[Any]) -> None:
        for record in records:
            self.write(record)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def append_jsonl(path: str | os.PathLike, records: Iterable[Any]) -> None:
    """Append records to a JSON Lines file (see JsonlWriter)."""
    with JsonlWriter(path) as writer:
        writer.write_many(records)


def _read_text(path: Path, *, allow_partial_tail: bool = False) -> str:
    """The file as text. With `allow_partial_tail`, a last line without a newline may be cut
    anywhere, even inside a multi-byte character: it decodes with replacement characters, so it
    fails to parse and is dropped like any half-written record."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise JsonInputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise JsonInputError(f"{path}: is a folder, expected a file") from None
    body, tail = data, b""
    if allow_partial_tail and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        body, tail = data[:cut], data[cut:]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise JsonInputError(f"{path}: not UTF-8 text (byte {err.start})") from None
    return text + tail.decode("utf-8", errors="replace")


def _drop_partial_tail(path: Path) -> None:
    """Make the file end with a newline before appending.

    A last line without a newline that is not valid JSON is a record whose write never
    finished: cut it. One that is valid JSON (a file written by hand) gets its newline.
    """
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data.endswith(b"\n"):
            return
        start = data.rfind(b"\n") + 1
        try:
            json.loads(data[start:])
        except ValueError:
            f.truncate(start)
        else:
            f.write(b"\n")
