"""What a run will do: every video found, named, filtered (listed, shard, limit) and split into
finished, to do and impossible."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .discovery import Namer, UnnamedVideo, find_videos, shard_of, stem_name
from .layout import clip_path, is_done, sweep_stale
from .settings import Settings


@dataclass(frozen=True)
class Job:
    source: str
    name: str
    output: str
    settings: Settings


@dataclass
class Plan:
    """What a run will do; every video found is in one of its lists or counts."""

    jobs: list[Job] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # finished earlier (manifest present)
    failed: list[dict] = field(default_factory=list)  # cannot even be started
    duplicates: list[dict] = field(default_factory=list)  # same output name as an earlier input
    missing_inputs: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)  # listed but absent from the inputs
    found: int = 0
    ignored: int = 0
    unlisted: int = 0
    other_shards: int = 0
    over_limit: int = 0
    stale_removed: int = 0


def make_plan(
    inputs: Sequence[str | Path],
    output: str | Path,
    settings: Settings,
    *,
    namer: Namer = stem_name,
    listed: set[str] | None = None,
    shard: tuple[int, int] = (0, 1),
    limit: int | None = None,
) -> Plan:
    """Find the videos, name them, filter (listed, shard, limit) and split done from to-do.

    Order: input order decides which of two same-named videos is kept; after that everything is
    sorted by output name, so a plan does not depend on the order folders were listed in.
    """
    output = Path(output)
    if any(Path(entry).resolve() == output.resolve() for entry in inputs):
        raise ValueError(f"the output folder {output} is also an input: choose another --output")
    found = find_videos(inputs, exclude=output)
    plan = Plan(missing_inputs=found.missing, found=len(found.videos), ignored=found.ignored)
    named, duplicates = _name_videos(found.videos, namer, shard, plan)
    if listed is not None:
        plan.not_found = sorted(listed - named.keys())
        plan.unlisted = sum(1 for name in named if name not in listed)
        named = {name: path for name, path in named.items() if name in listed}
    mine = _take_shard(named, duplicates, shard, plan)
    if limit is not None and len(mine) > limit:
        plan.over_limit = len(mine) - limit
        mine = mine[:limit]
    plan.stale_removed = sweep_stale(output, set(mine))
    _split_done(mine, named, output, settings, plan)
    return plan


def _name_videos(videos: list[Path], namer: Namer, shard: tuple[int, int],
                 plan: Plan) -> tuple[dict[str, Path], list[tuple[str, Path]]]:
    """Output name -> first video with it, and the later videos with a name already taken.

    A video that cannot be named fails in the shard its file name hashes to, so exactly one
    shard reports it.
    """
    index, count = shard
    named: dict[str, Path] = {}
    duplicates: list[tuple[str, Path]] = []
    for path in videos:
        try:
            name = namer(path)
        except UnnamedVideo as exc:
            if shard_of(path.name, count) == index:
                plan.failed.append({"source": str(path), "error": f"{path}: {exc}"})
            continue
        if name in named:
            duplicates.append((name, path))
        else:
            named[name] = path
    return named, duplicates


def _take_shard(named: dict[str, Path], duplicates: list[tuple[str, Path]], shard: tuple[int, int],
                plan: Plan) -> list[str]:
    """This shard's names, sorted; the duplicates of its names go into its report."""
    index, count = shard
    mine = sorted(name for name in named if shard_of(name, count) == index)
    plan.other_shards = len(named) - len(mine)
    plan.duplicates = [{"source": str(path), "kept": str(named[name])} for name, path in duplicates
                       if name in named and shard_of(name, count) == index]
    return mine


def _split_done(names: list[str], named: dict[str, Path], output: Path, settings: Settings, plan: Plan) -> None:
    """Each name into plan.skipped (finished), plan.jobs (to do) or plan.failed (cannot be done)."""
    wanted = settings.recorded()
    for name in names:
        source = named[name]
        if clip_path(output, name, settings.format).resolve() == source.resolve():
            plan.failed.append({"source": str(source), "error": f"{source}: the clip would replace its own "
                                "source; choose another --output"})
            continue
        try:
            done = is_done(output, name, settings.format, wanted)
        except ValueError as exc:
            plan.failed.append({"source": str(source), "error": f"{source}: {exc}"})
            continue
        if done:
            plan.skipped.append(name)
        else:
            plan.jobs.append(Job(str(source), name, str(output), settings))
