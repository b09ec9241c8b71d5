"""The run record: exactly what produced a predictions file, and whether a rerun may resume it.

Every eval run writes `<save_path stem>_run.json` before its first query (DESIGN 2, contract).
A rerun into the same predictions file compares the answer-changing parts of the new record
with the stored one (ANSWER_FIELDS) and refuses to mix runs that differ; settings that only
change speed (batch size, workers, device, world size, --limit) may differ.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import jsonio

# Dotted paths of the record whose values change the answers; everything else may differ.
ANSWER_FIELDS = ("model.family", "model.identity", "model.adapter", "model.dtype", "model.attn_implementation",
                 "model.random_init", "model.api.request", "protocol", "prompt", "generation")

_PACKAGES = ("torch", "transformers", "peft", "qwen-vl-utils", "accelerate", "openai", "numpro")
_WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "non_lora_trainables.bin")


class RunMismatch(Exception):
    """The predictions file holds answers of a run with other answer-changing settings."""


def record_path(save_path: str | os.PathLike) -> Path:
    save_path = Path(save_path)
    return save_path.with_name(f"{save_path.stem}_run.json")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def model_identity(model_path: str | os.PathLike) -> dict:
    """sha256 of config.json and of the weights index (or the single weights file); a hub id as is.

    Two fine-tuned checkpoints of one architecture share config and index byte for byte, so a
    sharded checkpoint is also fingerprinted by its shards' sizes and the first and last MiB of
    each (cheap, and different wherever the weights differ)."""
    folder = Path(model_path)
    if not folder.is_dir():
        return {"hub_id": str(model_path)}
    identity: dict[str, Any] = {}
    if (folder / "config.json").is_file():
        identity["config_sha256"] = sha256_file(folder / "config.json")
    for name in _WEIGHT_INDEXES + _WEIGHT_FILES:
        if (folder / name).is_file():
            identity["weights_file"] = name
            identity["weights_sha256"] = sha256_file(folder / name)
            if name in _WEIGHT_INDEXES:
                identity["shards_fingerprint"] = shards_fingerprint(folder, folder / name)
            break
    return identity


def shards_fingerprint(folder: Path, index: Path, edge: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    try:
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values()))
    except (OSError, ValueError, AttributeError):
        return ""
    for name in shards:
        path = folder / name
        if not path.is_file():
            digest.update(f"{name}:missing".encode())
            continue
        size = path.stat().st_size
        digest.update(f"{name}:{size}".encode())
        with open(path, "rb") as handle:
            digest.update(handle.read(edge))
            handle.seek(max(0, size - edge))
            digest.update(handle.read(edge))
    return digest.hexdigest()


def adapter_identity(lora_path: str | os.PathLike | None) -> dict | None:
    if lora_path is None:
        return None
    folder = Path(lora_path)
    return {name: sha256_file(folder / name) for name in _ADAPTER_FILES if (folder / name).is_file()}


def read_generation_config(model_path: str | os.PathLike) -> dict:
    """The checkpoint's generation_config.json (repetition penalty, eos ids) without loading a model:
    from the folder, or for a hub id from the local hub cache (nothing is downloaded here)."""
    path = Path(model_path) / "generation_config.json"
    if not path.is_file() and not Path(model_path).exists():
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(str(model_path), "generation_config.json")
        except Exception:  # not a valid repo id, no hub library: nothing cached to read
            cached = None
        path = Path(cached) if isinstance(cached, str) else path
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def versions() -> dict:
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    found["git_revision"] = git_revision()
    return found


def git_revision() -> str | None:
    """The checkout's commit (with '+dirty' when files differ), or None outside a git checkout."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def plain(value: Any) -> Any:
    """Arguments as JSON values (paths become strings)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def script_name() -> str:
    return Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"


def _get(record: dict, dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _leaves(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(_leaves(value[key], f"{prefix}.{key}"))
        return out or {prefix: {}}
    return {prefix: value}


def differences(stored: dict, new: dict) -> list[str]:
    """'field: stored X, now Y' for every answer-changing leaf that differs."""
    lines = []
    for field in ANSWER_FIELDS:
        old, cur = _leaves(_get(stored, field), field), _leaves(_get(new, field), field)
        for key in sorted(set(old) | set(cur)):
            if old.get(key) != cur.get(key):
                lines.append(f"{key}: stored {_short(old.get(key))}, now {_short(cur.get(key))}")
    return lines


def _short(value: Any, limit: int = 90) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_resume(save_path: Path, new: dict, has_predictions: bool) -> dict | None:
    """The stored record when the new run may resume it; RunMismatch naming each difference if not."""
    path = record_path(save_path)
    ways_out = "use another --save_path, or --overwrite to discard them and start afresh"
    if not has_predictions:  # a run that stopped before its first answer (say, at loading) leaves nothing to mix
        return None
    if not path.is_file():
        raise RunMismatch(f"{save_path} holds predictions but no run record ({path.name}), so nothing says "
                          f"how they were made; {ways_out}")
    try:
        stored = jsonio.read_json(path)
    except jsonio.JsonInputError as err:
        raise RunMismatch(f"{err}; {ways_out}") from None
    diffs = differences(stored, new)
    if diffs:
        listing = "\n".join(f"  {line}" for line in diffs)
        raise RunMismatch(f"{save_path} holds answers of another run; these answer-changing settings differ:\n"
                          f"{listing}\n{ways_out}")
    return stored


def write(save_path: Path, record: dict, stored: dict | None) -> Path:
    """Write the run record; a resumed run keeps the first start time and lists each resume."""
    if stored is not None:
        record = dict(record, started=stored.get("started", record["started"]),
                      resumed=[*stored.get("resumed", []), record["started"]])
    path = record_path(save_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    jsonio.write_json(path, record)
    return path


def summary_fields(record: dict) -> dict:
    """The parts of a run record a metrics file carries so that it says alone what it measures."""
    keys = ("script", "task", "model", "protocol", "prompt", "generation", "annotations", "videos", "versions",
            "started")
    return {key: record[key] for key in keys if key in record}
