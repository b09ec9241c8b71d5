"""`python -m numpro sweep`: one eval run per number style, then the paper's design table (Tab. 3).

    python -m numpro sweep --script eval/qwen2_vl_7b_mr.py --sizes 20 40 60 80 \\
        --positions top_left top_right center bottom_left bottom_right --colors red blue black green \\
        --output results/sweep -- --data_path data/charades_test.json --video_path data/charades/videos

The grid is the product of the three lists. Each style runs the script as a subprocess with
`--font_size/--color/--position` and its own `--save_path OUTPUT/<size>_<color>_<position>.jsonl`
(so each has its own predictions, run record and metrics file, and its output in `<...>.log`);
everything after `--` goes to the script unchanged. A style whose metrics file exists and whose run
record matches (same script, same style, the same arguments apart from speed settings such as
--batch_size and --workers) is skipped; any other style is run, and a killed one resumes through the
script's own resume (which refuses to mix answers of other settings). A failed style is reported
and the others still run; the exit status is then non-zero. At the end `OUTPUT/sweep.csv` and
`OUTPUT/sweep.md` hold one row per style beside the paper's values (numpro/paper.py: Tab. 3,
Qwen2-VL-7B on Charades-STA, where the paper gives them). `--dry_run` prints the commands.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import itertools
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import paper
from .argtypes import positive_int
from .cli_args import parse_color, parse_position
from .jsonio import JsonInputError, read_json, read_json_object, write_csv, write_json, write_text
from .stamp import POSITIONS

# Flags the sweep sets itself for every style.
OWN_FLAGS = ("--font_size", "--color", "--position", "--save_path", "--output_dir", "--output_name")
# Resolved arguments that change only speed or where files go, never the answers: may differ on a rerun.
SPEED_ARGUMENTS = {"batch_size", "workers", "backend", "device", "device_map", "dump_frames", "overwrite", "debug",
                   "save_path", "output_dir", "output_name", "concurrency", "max_retries", "request_timeout",
                   "price_per_mtok_in", "price_per_mtok_out", "no_progress"}


class SweepError(Exception):
    """A sweep that cannot start (bad script, flags the sweep sets itself)."""


@dataclass(frozen=True)
class Style:
    font_size: int
    color: str
    position: str

    @property
    def name(self) -> str:
        color = re.sub(r"[^A-Za-z0-9]", "", self.color) or "color"
        return f"{self.font_size}_{color}_{self.position}"

    def flags(self) -> list[str]:
        return ["--font_size", str(self.font_size), "--color", self.color, "--position", self.position]

    def matches(self, stamp: dict | None) -> bool:
        return bool(stamp) and (stamp.get("font_size"), str(stamp.get("color")).lower(), stamp.get("position")) == (
            self.font_size, self.color.lower(), self.position)


@dataclass
class Outcome:
    style: Style
    state: str  # "skipped" (already done), "done", "failed"
    reason: str = ""
    metrics: dict = field(default_factory=dict)


def _unique(values: list) -> list:
    return list(dict.fromkeys(values))


def grid(sizes: list[int], colors: list[str], positions: list[str]) -> list[Style]:
    return [Style(s, c, p) for s, c, p in itertools.product(_unique(sizes), _unique(colors), _unique(positions))]


def paths(output: Path, style: Style) -> dict[str, Path]:
    save = output / f"{style.name}.jsonl"
    return {"save": save, "metrics": output / f"{style.name}_metrics.json", "record": output / f"{style.name}_run.json",
            "log": output / f"{style.name}.log"}


def command(python: str, script: Path, script_args: list[str], output: Path, style: Style) -> list[str]:
    return [python, str(script), *script_args, *style.flags(), "--save_path", str(paths(output, style)["save"])]


def load_spec(script: Path):
    """The eval script's ScriptSpec (its SPEC), or None for a script that is not one of ours.

    Only a script built on numpro.evaluation (eval/*.py: `SPEC = script(__name__, ...)`, which runs
    only as `__main__`) is imported, to read SPEC; any other script is never executed here."""
    try:
        text = script.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    ours = "numpro.evaluation.scripts" in text and "script(__name__" in text
    guarded = "numpro.evaluation.cli" in text and "__name__ == \"__main__\"" in text
    if not (ours or guarded):
        return None
    try:
        module_spec = importlib.util.spec_from_file_location(f"_numpro_sweep_{script.stem}", script)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    except (Exception, SystemExit):  # we only look; the subprocess reports the script's own errors
        return None
    return getattr(module, "SPEC", None)


def resolved_arguments(spec, argv: list[str]) -> dict | None:
    """The arguments the script would record for `argv` (None when they cannot be worked out here)."""
    if spec is None:
        return None
    try:
        from .evaluation.cli import build_parser
        from .evaluation.run_record import plain

        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            args = build_parser(spec).parse_args(argv)
    except (Exception, SystemExit):
        return None
    return plain({k: v for k, v in vars(args).items() if k != "debug"})


def finished(output: Path, style: Style, script: Path, expected: dict | None, failed_before: bool) -> tuple[bool, str]:
    """(True, "") when the style's metrics exist and its run record matches the run asked for now."""
    p = paths(output, style)
    if not p["metrics"].is_file():
        return False, "no metrics yet"
    if failed_before:
        return False, "its last run failed"
    try:
        metrics, record = read_json(p["metrics"]), read_json(p["record"])
    except JsonInputError as err:
        return False, str(err)
    if not isinstance(metrics, dict) or not isinstance(record, dict) or "run" not in metrics:
        return False, "metrics without a run record"
    if record.get("script") != script.name:
        return False, f"made by {record.get('script')}"
    if not style.matches((record.get("protocol") or {}).get("stamp")):
        return False, "the run record has another number style"
    if expected is None:
        return False, "the script's arguments cannot be checked here; its own resume decides"
    stored = record.get("arguments") or {}
    differing = sorted(k for k in set(stored) | set(expected)
                       if k not in SPEED_ARGUMENTS and stored.get(k) != expected.get(k))
    if differing:
        return False, "arguments differ: " + ", ".join(differing)
    return True, ""


def _run_logged(cmd: list[str], log: Path) -> int:
    """Run the command, its output shown here and kept in `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as sink:
        sink.write(("$ " + shlex.join(cmd) + "\n").encode())
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            while chunk := os.read(process.stdout.fileno(), 65536):
                sink.write(chunk)
                sink.flush()
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
        except BaseException:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            raise
        finally:
            process.stdout.close()
        return process.wait()


def _reason(log: Path, returncode: int) -> str:
    try:
        lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    last_run = lines[max((i for i, line in enumerate(lines) if line.startswith("$ ")), default=0):]
    errors = [line for line in last_run if line.startswith("error:") or "Error" in line.split(":")[0]]
    detail = (errors or last_run[-1:] or ["no output"])[-1]
    return f"exit status {returncode}: {detail[:300]} (log: {log})"


def _metric_keys(task: str) -> tuple[str, ...]:
    return paper.HD_KEYS if task == "hd" else paper.MR_KEYS


def write_tables(output: Path, outcomes: list[Outcome], task: str) -> tuple[Path, Path]:
    """sweep.csv and sweep.md: one row per style, ours beside the paper's (Tab. 3) where it has them."""
    keys = _metric_keys(task)
    with_paper = task == "mr"
    rows = []
    for outcome in outcomes:
        s = outcome.style
        row: dict[str, Any] = {"font_size": s.font_size, "color": s.color, "position": s.position}
        ok = outcome.state != "failed"
        for key in keys:
            row[key] = outcome.metrics.get(key, "") if ok else ""
        if with_paper:
            theirs = paper.design_ablation(s.font_size, s.color, s.position)
            for key in keys:
                row[f"paper_{key}"] = theirs.get(key, "")
        row["n"] = outcome.metrics.get("n", "") if ok else ""
        row["status"] = "ok" if ok else f"failed: {outcome.reason}"
        row["metrics_file"] = str(paths(output, s)["metrics"].name) if ok else ""
        rows.append(row)
    columns = list(rows[0]) if rows else ["font_size", "color", "position", *keys]
    csv_path, md_path = output / "sweep.csv", output / "sweep.md"
    write_csv(csv_path, rows, columns)

    def cell(value: Any) -> str:
        if value == "" or value is None:
            return "–"
        return f"{value:.2f}" if isinstance(value, float) else str(value).replace("|", "\\|")

    names = {"HL-min-VeryGood-mAP": "mAP", "HL-min-VeryGood-Hit1": "HIT@1"}
    header = ["Font size", "Colour", "Position", *(names.get(k, k) for k in keys)]
    if with_paper:
        header += [f"paper {k}" for k in keys]
    header += ["Ours from"]
    lines = ["| " + " | ".join(header) + " |", "|---|---|---|" + "---:|" * (len(header) - 4) + "---|"]
    for row in rows:
        values = [row["font_size"], row["color"], row["position"], *(row[k] for k in keys)]
        if with_paper:
            values += [f"{row[f'paper_{k}']:.1f}" if row[f"paper_{k}"] != "" else "" for k in keys]
        values.append(f"`{row['metrics_file']}`" if row["metrics_file"] else row["status"])
        lines.append("| " + " | ".join(cell(v) for v in values) + " |")
    notes = ["", "Ours: each style's metrics file (upstream's answer parser, as the paper's) and run record "
                 "(`<style>_run.json`) are in this folder."]
    if with_paper:
        notes.append("Paper: Tab. 3, Qwen2-VL-7B + NumPro on Charades-STA, one factor varied at a time with the "
                     "others at 40 / red / bottom_right; –: not given in the paper.")
        notes += _comparability_notes(output, outcomes)
    write_text(md_path, "\n".join(lines + notes) + "\n")
    return csv_path, md_path


def _comparability_notes(output: Path, outcomes: list[Outcome]) -> list[str]:
    """Say so when the runs are not the paper's setting (another model or dataset, a --limit)."""
    from .results import dataset_of, model_name, paper_model_name

    notes = []
    for outcome in outcomes:
        run = outcome.metrics.get("run")
        if not isinstance(run, dict):
            continue
        model = paper_model_name(model_name(run)) or model_name(run)
        dataset = dataset_of(run, paths(output, outcome.style)["metrics"])[1]
        if model != "Qwen2-VL-7B" or dataset != "Charades-STA":
            notes.append(f"Note: these runs are {model} on {dataset}, not the paper's setting.")
        break
    limited = []
    for outcome in outcomes:
        try:
            record = read_json(paths(output, outcome.style)["record"])
        except JsonInputError:
            continue
        if isinstance(record, dict) and (record.get("arguments") or {}).get("limit"):
            limited.append(outcome.style.name)
    if limited:
        notes.append(f"Note: {', '.join(limited)} evaluated only the first queries (--limit); not comparable to the "
                     "paper's full test set.")
    return notes


def run_sweep(args) -> tuple[list[Outcome], int]:
    script, script_args = _script_and_arguments(args)
    output = Path(args.output)
    styles = grid(args.sizes, args.colors, args.positions)
    spec = load_spec(script)
    task = getattr(spec, "task", "mr")
    state_path = output / "sweep.json"
    state = _read_state(state_path)
    runs_state: dict = state.get("styles", {})
    plan = _plan(args.python, script, script_args, output, styles, spec, runs_state)

    if args.dry_run:
        for style, cmd, done, why in plan:
            print(("# done, skipped: " if done else "") + shlex.join(cmd))
        return [], 0

    def save_state() -> None:
        write_json(state_path, dict(state, script=str(script), script_args=script_args, styles=runs_state))

    output.mkdir(parents=True, exist_ok=True)
    save_state()
    outcomes = _run_plan(plan, output, task, runs_state, save_state)
    failed = sum(o.state == "failed" for o in outcomes)
    csv_path, md_path = write_tables(output, outcomes, task)
    print(md_path.read_text(encoding="utf-8"), end="")
    print(f"wrote {csv_path} and {md_path} ({len(outcomes)} styles: "
          f"{sum(o.state == 'skipped' for o in outcomes)} already done, {sum(o.state == 'done' for o in outcomes)} run, "
          f"{failed} failed)")
    return outcomes, failed


def _script_and_arguments(args) -> tuple[Path, list[str]]:
    """The eval script and its arguments, refused when it is missing or they hold a flag the sweep sets."""
    script = Path(args.script)
    if not script.is_file():
        raise SweepError(f"eval script not found: {script}")
    script_args = list(args.script_args)
    for word in script_args:
        flag = word.split("=", 1)[0]
        if flag in OWN_FLAGS or flag.replace("-", "_") in OWN_FLAGS:
            raise SweepError(f"{flag} is set by the sweep for each style; leave it out of the script's arguments")
    return script, script_args


def _read_state(path: Path) -> dict:
    """The sweep's saved state (each style's last status); empty when there is none or it cannot be read."""
    return read_json_object(path)


def _plan(python: str, script: Path, script_args: list[str], output: Path, styles: list[Style], spec,
          runs_state: dict) -> list[tuple[Style, list[str], bool, str]]:
    """(style, command, already done, why it runs) for every style of the grid."""
    plan = []
    for style in styles:
        cmd = command(python, script, script_args, output, style)
        expected = resolved_arguments(spec, cmd[2:])
        failed_before = runs_state.get(style.name, {}).get("status") == "failed"
        done, why = finished(output, style, script, expected, failed_before)
        plan.append((style, cmd, done, why))
    return plan


def _run_plan(plan: list[tuple[Style, list[str], bool, str]], output: Path, task: str, runs_state: dict,
              save_state) -> list[Outcome]:
    """Run every style not yet done, one after the other, saving the state after each."""
    outcomes: list[Outcome] = []
    for index, (style, cmd, done, why) in enumerate(plan, start=1):
        p = paths(output, style)
        if done:
            print(f"[{index}/{len(plan)}] {style.name}: done, skipped ({p['metrics']})", flush=True)
            outcomes.append(Outcome(style, "skipped", metrics=read_json(p["metrics"])))
            continue
        print(f"[{index}/{len(plan)}] {style.name}: {why}; running\n$ {shlex.join(cmd)}", flush=True)
        try:
            returncode = _run_logged(cmd, p["log"])
        except KeyboardInterrupt:
            print(f"interrupted during {style.name}; rerun the same command to resume", file=sys.stderr)
            write_tables(output, outcomes, task)  # the styles finished so far keep their table
            raise
        outcome = _outcome(style, returncode, p)
        outcomes.append(outcome)
        runs_state[style.name] = {"status": outcome.state, "command": cmd}
        if outcome.state == "failed":
            runs_state[style.name]["reason"] = outcome.reason
        save_state()
    return outcomes


def _outcome(style: Style, returncode: int, p: dict[str, Path]) -> Outcome:
    """A finished run is done only with exit status 0 and a metrics file."""
    if returncode == 0 and p["metrics"].is_file():
        metrics = read_json(p["metrics"])
        return Outcome(style, "done", metrics=metrics if isinstance(metrics, dict) else {})
    reason = _reason(p["log"], returncode) if returncode else "exit status 0 but no metrics file was written"
    print(f"{style.name}: failed, {reason}", file=sys.stderr, flush=True)
    return Outcome(style, "failed", reason=reason)


def register(subparsers, name: str, help_text: str) -> None:
    parser = subparsers.add_parser(name, help=help_text, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--script", required=True, metavar="FILE", help="the eval script, e.g. eval/qwen2_vl_7b_mr.py")
    parser.add_argument("--sizes", type=positive_int, nargs="+", default=[paper.DEFAULT_STYLE[0]], metavar="PX",
                        help="font sizes (default %(default)s)")
    parser.add_argument("--colors", type=parse_color, nargs="+", default=[paper.DEFAULT_STYLE[1]], metavar="COLOR",
                        help="number colours (default %(default)s)")
    parser.add_argument("--positions", type=parse_position, nargs="+", default=[paper.DEFAULT_STYLE[2]], metavar="POSITION",
                        help=f"positions: {', '.join(POSITIONS)} (default %(default)s)")
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="folder of every style's predictions, run record, metrics and log, and the tables")
    parser.add_argument("--dry_run", "--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--python", default=sys.executable, help="interpreter running the script (default: this one)")
    parser.add_argument("script_args", nargs="*", metavar="-- SCRIPT_ARGS",
                        help="after --: arguments passed to the script unchanged (data, model, --limit, ...)")
    parser.set_defaults(func=_command)


def _command(args) -> int:
    try:
        _outcomes, failed = run_sweep(args)
    except SweepError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    if failed:
        print(f"error: {failed} style(s) failed; see above (rerun the same command to retry them)", file=sys.stderr)
        return 1
    return 0
