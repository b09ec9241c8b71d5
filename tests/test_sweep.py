"""`python -m numpro sweep`: one eval run per number style with a tiny Qwen2-VL, resumable, Tab. 3 tables."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import pytest

from numpro import cli, results, synthetic

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "eval" / "qwen2_vl_7b_mr.py"
GRID = ["--sizes", "20", "40", "--colors", "red", "--positions", "bottom_right"]


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    model = root / "qwen2_vl"
    done = subprocess.run([sys.executable, "-m", "numpro", "tiny", "--family", "qwen2_vl", "--output", str(model)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    synthetic.write_video(root / "videos" / "vid0.mp4", 100, Fraction(25), (64, 48))
    queries = [{"id": f"vid0_{j}", "video": "vid0.mp4", "query": f"person {j} sits", "start_time": 1.0 + j,
                "end_time": 3.0 + j, "duration": 4.0} for j in range(3)]
    (root / "charades_test.json").write_text(json.dumps(queries))
    script_args = ["--data_path", str(root / "charades_test.json"), "--video_path", str(root / "videos"),
                   "--model_path", str(model), "--limit", "2", "--max_new_tokens", "4", "--workers", "0"]
    return root, script_args


def sweep(output: Path, script_args: list[str], *extra: str, script: Path = SCRIPT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "numpro", "sweep", "--script", str(script), *GRID, "--output",
                           str(output), *extra, "--", *script_args],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_dry_run_prints_one_command_per_style_and_runs_nothing(tiny_setup):
    root, script_args = tiny_setup
    output = root / "dry"
    done = sweep(output, script_args, "--dry_run")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2 and not output.exists()
    for line, size in zip(lines, ("20", "40")):
        assert str(SCRIPT) in line and "--model_path" in line
        assert f"--font_size {size} --color red --position bottom_right" in line
        assert line.endswith(f"--save_path {output / f'{size}_red_bottom_right.jsonl'}")


def test_sweep_runs_each_style_writes_the_tables_and_a_rerun_skips_or_resumes(tiny_setup):
    root, script_args = tiny_setup
    output = root / "grid"
    done = sweep(output, script_args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    metrics = {}
    for size in (20, 40):
        name = f"{size}_red_bottom_right"
        record = json.loads((output / f"{name}_run.json").read_text())
        stamp = record["protocol"]["stamp"]
        assert (stamp["font_size"], stamp["color"], stamp["position"]) == (size, "red", "bottom_right")
        assert record["arguments"]["save_path"] == str(output / f"{name}.jsonl")
        metrics[size] = json.loads((output / f"{name}_metrics.json").read_text())
        assert metrics[size]["n"] == 2 and metrics[size]["run"]["protocol"]["stamp"]["font_size"] == size
        assert len((output / f"{name}.jsonl").read_text().splitlines()) == 2

    rows = list(csv.DictReader((output / "sweep.csv").open()))
    assert [(r["font_size"], r["color"], r["position"]) for r in rows] == [("20", "red", "bottom_right"),
                                                                          ("40", "red", "bottom_right")]
    for row, size in zip(rows, (20, 40)):
        for key in ("R@0.3", "R@0.5", "R@0.7", "mIoU"):
            assert float(row[key]) == metrics[size][key]
        assert row["status"] == "ok"
    # the paper's Tab. 3 values, only where the paper gives them
    assert [rows[0][f"paper_{k}"] for k in ("R@0.3", "R@0.5", "R@0.7", "mIoU")] == ["53.6", "34.0", "14.0", "34.6"]
    assert [rows[1][f"paper_{k}"] for k in ("R@0.3", "R@0.5", "R@0.7", "mIoU")] == ["", "", "", "38.5"]
    md = (output / "sweep.md").read_text()
    assert "| 20 | red | bottom_right |" in md and "| 53.6 | 34.0 | 14.0 | 34.6 |" in md
    assert "| 40 | red | bottom_right |" in md and "| – | – | – | 38.5 |" in md
    assert "only the first queries (--limit)" in md

    # the sweep's runs are read by `results` too: each style in its own row
    table = results.build([output])
    assert {run.label for run in table.runs} == {"qwen2_vl + NumPro (numbers 20/red/bottom_right)", "qwen2_vl + NumPro"}

    # a style cut short (killed) resumes through the script's own resume; a finished one is skipped
    cut = output / "40_red_bottom_right.jsonl"
    cut.write_text(cut.read_text().splitlines()[0] + "\n")
    (output / "40_red_bottom_right_metrics.json").unlink()
    finished_log = (output / "20_red_bottom_right.log").read_text()
    again = sweep(output, script_args[:-2] + ["--workers", "1"])  # speed settings may differ
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "20_red_bottom_right: done, skipped" in again.stdout
    assert "2 queries, 1 already answered, 1 to run" in again.stdout
    assert (output / "20_red_bottom_right.log").read_text() == finished_log
    assert len(cut.read_text().splitlines()) == 2 and (output / "40_red_bottom_right_metrics.json").is_file()
    assert len(list(csv.DictReader((output / "sweep.csv").open()))) == 2

    # an answer-changing argument differs: nothing counts as done
    dry = sweep(output, script_args[:-4] + ["--max_new_tokens", "5"], "--dry_run")
    assert dry.returncode == 0 and "# done" not in dry.stdout
    dry = sweep(output, script_args, "--dry_run")
    assert dry.stdout.count("# done, skipped: ") == 2


FAKE_SCRIPT = textwrap.dedent("""
    import argparse, json, sys
    from pathlib import Path
    p = argparse.ArgumentParser()
    p.add_argument("--font_size", type=int); p.add_argument("--color"); p.add_argument("--position")
    p.add_argument("--save_path")
    a = p.parse_args()
    if a.font_size == 40:
        print("error: boom at size 40", file=sys.stderr)
        sys.exit(3)
    save = Path(a.save_path)
    stamp = {"font_size": a.font_size, "color": a.color, "position": a.position}
    run = {"script": "fake_mr.py", "task": "mr", "protocol": {"numbers": True, "stamp": stamp}, "arguments": {}}
    save.with_name(save.stem + "_run.json").write_text(json.dumps(run))
    metrics = {"R@0.3": 1.0, "R@0.5": 2.0, "R@0.7": 3.0, "mIoU": 4.0, "n": 1, "run": run}
    save.with_name(save.stem + "_metrics.json").write_text(json.dumps(metrics))
""")


def test_a_failed_style_is_reported_the_others_run_and_the_exit_is_nonzero(tmp_path):
    script = tmp_path / "fake_mr.py"
    script.write_text(FAKE_SCRIPT)
    done = sweep(tmp_path / "out", [], script=script)
    assert done.returncode == 1
    assert "40_red_bottom_right: failed, exit status 3: error: boom at size 40" in done.stderr
    rows = list(csv.DictReader((tmp_path / "out" / "sweep.csv").open()))
    assert rows[0]["status"] == "ok" and rows[0]["mIoU"] == "4.0"
    assert rows[1]["status"].startswith("failed: exit status 3: error: boom") and rows[1]["mIoU"] == ""
    assert "failed: exit status 3" in (tmp_path / "out" / "sweep.md").read_text()


def test_flags_the_sweep_sets_are_refused_in_the_script_arguments(tmp_path, capsys):
    assert cli.main(["sweep", "--script", str(SCRIPT), "--output", str(tmp_path), "--", "--font_size", "30"]) == 2
    assert "--font_size is set by the sweep" in capsys.readouterr().err
    assert cli.main(["sweep", "--script", str(tmp_path / "nope.py"), "--output", str(tmp_path)]) == 2
    assert "eval script not found" in capsys.readouterr().err
