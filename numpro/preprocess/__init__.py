"""Preprocessing: turn raw videos into numbered clips (the engine behind preprocess/*.py).

For each video NAME.* it writes NAME.mp4 (frames sampled by numpro.timeline, resized, stamped
with their numbers by numpro.stamp through numpro.frames, written at the sampling rate) or a
folder NAME/ of PNG frames, then the manifest NAME.json. Guarantees:
- atomic outputs: clips are written under a hidden temporary name and renamed when complete;
  the manifest comes last, so "NAME.json exists" means "NAME is finished";
- resumable: a rerun skips finished videos, redoes unfinished ones and removes stale
  temporary files of the videos it owns;
- shards: `shard=(i, n)` takes the videos whose output name hashes to i (mod n), a partition
  that does not depend on which other files a machine sees;
- nothing is lost silently: missing inputs, duplicate names, unlisted and failed videos are
  counted, printed and written to the report file;
- a finished clip counts only when every setting that changes its bytes matches this run's
  (Settings.recorded); one made otherwise is reported, never taken nor overwritten;
- stopping is clean: SIGINT or SIGTERM stops the workers, then the report is written with
  `interrupted: true` and the clips found finished on disk; a worker whose parent was killed
  exits without finishing its clip (numpro.parallel);
- `--no_numbers` writes the same clips without numbers, into their own folder (videos_0.5FPS);
  `--stamp_text seconds` stamps each frame's time instead of its number (videos_0.5FPS_seconds_...).

Modules: settings (how clips are made, folder names), layout (the output folder: paths,
finished-clip check), discovery (videos, output names, shards), plan (what a run will do),
worker (one video), pool (a whole run: crash-recovering workers, report, signals), datasets
(the scripts' defaults), cli (the command line; the only module that prints).
"""

from .cli import build_parser, main, script_main
from .datasets import DATASETS, Dataset
from .discovery import Found, Namer, UnnamedVideo, find_videos, hash_namer, listed_names, parse_shard, shard_of, stem_name
from .layout import clip_path, manifest_path, output_problem, report_path
from .plan import Job, Plan, make_plan
from .pool import Interrupted, Report, execute, signals_stop_the_run
from .settings import POSITION_CODES, Settings
from .worker import ClipError, process_video

__all__ = [
    "DATASETS", "POSITION_CODES", "ClipError", "Dataset", "Found", "Interrupted", "Job", "Namer", "Plan", "Report",
    "Settings", "UnnamedVideo", "build_parser", "clip_path", "execute", "find_videos", "hash_namer", "listed_names",
    "main", "make_plan", "manifest_path", "output_problem", "parse_shard", "process_video", "report_path",
    "script_main", "shard_of", "signals_stop_the_run", "stem_name",
]
