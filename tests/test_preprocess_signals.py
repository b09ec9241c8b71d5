"""Stopping a preprocessing run: signals to the main process, a killed parent, the report.

Real processes on real synthetic videos: preprocess/anet.py is started as a user starts it, the
signal goes to its main process (or to its whole process group, as Ctrl-C in a terminal does),
and the worker processes are watched through /proc.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from numpro import preprocess as pp
from numpro import synthetic

REPO = Path(__file__).resolve().parents[1]
VIDEOS = 8
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="watches processes through /proc")


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """Enough work that a run is still busy when its first clip is finished (about 0.5 s a clip)."""
    root = tmp_path_factory.mktemp("videos")
    for i in range(VIDEOS):
        synthetic.write_video(root / f"v{i}.mp4", 1800, 30, (64, 48))
    return root


# ------------------------------------------------------------------ processes, via /proc
def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")  # a zombie has stopped running


def wait_gone(pids: list[int], seconds: float) -> list[int]:
    """The processes still running after up to `seconds`."""
    deadline = time.monotonic() + seconds
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    return [pid for pid in pids if running(pid)]


def wait_for(condition, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def start(args: list[str], script: Path = REPO / "preprocess" / "anet.py") -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # as a user runs it
    # Its own session: a signal to the group reaches it and its workers, not pytest.
    return subprocess.Popen([sys.executable, str(script), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def finished(out: Path) -> set[str]:
    return {p.stem for p in out.glob("v*.json")}


def assert_only_finished_clips(out: Path, extra: tuple[str, ...] = ()) -> None:
    """Every manifest has its clip, and nothing else is there: no temporary or half-made file."""
    names = finished(out)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{n}.mp4" for n in names] + [f"{n}.json" for n in names] + list(extra))


# ------------------------------------------------------------------ signals to the main process
@pytest.mark.parametrize("signum, group", [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
                         ids=["SIGINT-to-main", "SIGTERM-to-main", "ctrl-c-to-the-group"])
def test_a_stop_signal_stops_the_workers_and_the_report_counts_the_disk(videos, tmp_path, signum, group):
    out = tmp_path / "out"
    run = start(["--input", str(videos), "--output", str(out), "--workers", "2", "--no_progress"])
    wait_for(lambda: finished(out) or run.poll() is not None)
    workers = children(run.pid)
    assert len(workers) >= 2  # the two workers (and multiprocessing's resource tracker)
    (os.killpg if group else os.kill)(run.pid, signum)
    assert wait_gone(workers, 5.0) == []
    stdout, stderr = run.communicate(timeout=10)
    assert run.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr

    report = json.loads((out / "preprocess_report.json").read_text())
    made = finished(out)
    assert report["interrupted"] is True and report["signal"] == signal.Signals(signum).name
    assert report["done"] == len(made) >= 1  # what the workers finished, even if not yet reported
    assert report["done"] + report["left"] == VIDEOS and report["left"] >= 1
    assert report["failed"] == []  # a worker's Ctrl-C is not a failed video
    assert report["source_frames"] == 1800 * len(made)
    assert_only_finished_clips(out, ("preprocess_report.json",))
    assert f"{len(made)} clips finished in this run, {VIDEOS - len(made)} left" in stdout
    time.sleep(0.5)
    assert finished(out) == made  # and nothing more appears later

    if signum == signal.SIGTERM:  # the rerun does the rest, each video once
        rerun = start(["--input", str(videos), "--output", str(out), "--workers", "2", "--no_progress"])
        stdout, stderr = rerun.communicate(timeout=120)
        report = json.loads((out / "preprocess_report.json").read_text())
        assert rerun.returncode == 0, stderr
        assert (report["done"], report["skipped"], report["interrupted"]) == (VIDEOS - len(made), len(made), False)


def test_a_killed_main_process_takes_its_workers_with_it(videos, tmp_path):
    out = tmp_path / "out"
    run = start(["--input", str(videos), "--output", str(out), "--workers", "2", "--no_progress"])
    wait_for(lambda: finished(out) or run.poll() is not None)
    workers = children(run.pid)
    assert len(workers) >= 2
    run.kill()
    run.wait()
    time.sleep(0.05)  # a worker past its last check may still be renaming its manifest
    at_kill = finished(out)
    assert wait_gone(workers, 5.0) == []
    assert finished(out) == at_kill  # no clip finished once the parent was gone
    assert_only_finished_clips(out)  # the workers removed their half-made clips


COMMIT_AFTER_THE_PARENT_DIES = textwrap.dedent("""
    import os, signal, sys, time
    from pathlib import Path
    from numpro import preprocess as pp

    def make_once_orphaned(job):
        # Deaf to SIGTERM (the kernel's and the watcher's): only the check before committing
        # an output can stop this worker.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        parent = os.getppid()
        Path(sys.argv[3], job.name).touch()
        while os.getppid() == parent:
            time.sleep(0.01)
        return pp.process_video(job)

    if __name__ == "__main__":
        settings = pp.Settings()
        plan = pp.make_plan([sys.argv[1]], sys.argv[2], settings)
        pp.execute(plan, sys.argv[2], settings, workers=2, progress=False, worker_fn=make_once_orphaned)
""")


def test_an_orphaned_worker_never_commits_its_clip(videos, tmp_path):
    """A worker that outlives its parent decodes and encodes, but does not finish the clip."""
    script, out, started = tmp_path / "driver.py", tmp_path / "out", tmp_path / "started"
    script.write_text(COMMIT_AFTER_THE_PARENT_DIES)
    started.mkdir()
    inputs = tmp_path / "two"
    inputs.mkdir()
    for name in ("v0.mp4", "v1.mp4"):
        (inputs / name).symlink_to(videos / name)
    run = start([str(inputs), str(out), str(started)], script=script)
    wait_for(lambda: len(list(started.iterdir())) == 2 or run.poll() is not None)
    workers = children(run.pid)
    run.kill()
    run.wait()
    assert wait_gone(workers, 20.0) == []  # each made its clip (about a second), then stopped
    assert sorted(p.name for p in out.iterdir()) == []  # no clip, no manifest, no temporary file


# ------------------------------------------------------------------ the report, from the disk
def finish_v0_then_stop_the_parent(job: pp.Job) -> dict:
    """v0 is made, then the parent is told to stop; no result ever comes back to it."""
    if job.name == "v0":
        pp.process_video(job)
        os.kill(os.getppid(), signal.SIGTERM)
    time.sleep(60)
    raise AssertionError("the worker should have been stopped")


def test_clips_finished_but_not_yet_reported_are_counted(videos, tmp_path):
    inputs = [str(videos / "v0.mp4"), str(videos / "v1.mp4")]
    settings = pp.Settings()
    plan = pp.make_plan(inputs, tmp_path, settings)
    before = signal.getsignal(signal.SIGTERM)
    began = time.monotonic()
    with pp.signals_stop_the_run(), pytest.raises(pp.Interrupted):
        pp.execute(plan, tmp_path, settings, workers=2, progress=False, worker_fn=finish_v0_then_stop_the_parent)
    assert time.monotonic() - began < 30  # the sleeping workers were stopped, not waited for
    report = json.loads((tmp_path / "preprocess_report.json").read_text())
    assert (report["done"], report["left"], report["interrupted"], report["signal"]) == (1, 1, True, "SIGTERM")
    assert report["source_frames"] == json.loads((tmp_path / "v0.json").read_text())["source_frames"] == 1800
    assert finished(tmp_path) == {"v0"}
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored afterwards
