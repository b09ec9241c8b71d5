"""`python -m numpro results`: the paper-vs-ours table from metrics files and their run records."""

from __future__ import annotations

import json
import re
from pathlib import Path

from numpro import cli, jsonio, paper, results

STYLE = {"font_size": 40, "color": "red", "position": "bottom_right", "font": "DejaVuSans-Bold.ttf",
         "font_sha256": "f" * 64}


def make_run(folder: Path, name: str, *, model="Qwen/Qwen2-VL-7B-Instruct", family="qwen2_vl",
             annotations="data/charades_test.json", task="mr", numbers=True, style=None, fps=1.0, size=336,
             max_frames=None, adapter=None, started="2025-01-01T10:00:00+00:00", values=None, limit=None,
             record=True, run_key=True, identity=None, protocol=None) -> Path:
    """A metrics file (and its run record) as an eval run leaves them beside `name`.jsonl."""
    folder.mkdir(parents=True, exist_ok=True)
    model_section = {"path": model, "family": family, "identity": identity or {"hub_id": model},
                     "adapter": adapter, "dtype": "bfloat16", "random_init": False}
    if family == "api":
        model_section = {"family": "api", "identity": {"api_model": model}, "adapter": None}
    run = {
        "script": "qwen2_vl_7b_mr.py" if task == "mr" else "qwen2_vl_7b_hd.py",
        "task": task,
        "model": model_section,
        "protocol": {"fps": fps, "size": size, "max_frames": max_frames, "frame_rule": "...", "numbers": numbers,
                     "stamp": dict(STYLE, **(style or {})) if numbers else None, **(protocol or {})},
        "prompt": {"template": "..."},
        "generation": {"max_new_tokens": 128},
        "annotations": {"path": annotations, "sha256": "a" * 64},
        "videos": {"path": "data/videos"},
        "versions": {"python": "3.11"},
        "started": started,
    }
    if values is None:
        values = {"R@0.3": 50.0, "R@0.5": 30.0, "R@0.7": 10.0, "mIoU": 33.33} if task == "mr" else {
            "HL-min-VeryGood-mAP": 22.5, "HL-min-VeryGood-Hit1": 40.0}
    metrics = dict(values, n=100, n_parsed=90, status={"ok": 100})
    if run_key:
        metrics["run"] = run
        metrics["run_record"] = f"{name}_run.json"
    if record:
        (folder / f"{name}_run.json").write_text(json.dumps(dict(run, arguments={"limit": limit})))
    path = folder / f"{name}_metrics.json"
    path.write_text(json.dumps(metrics))
    return path


def parse_table(markdown: str) -> tuple[list[str], dict[tuple[str, str], list[str]]]:
    """Header and {(row label, 'paper'|'ours'): cells} of the first Markdown table."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    split = lambda line: [cell.strip() for cell in line.strip().strip("|").split("|")]  # noqa: E731
    header, rows, label = split(lines[0]), {}, None
    for line in lines[2:]:
        cells = split(line)
        label = cells[0] or label
        rows[(label, cells[1])] = cells[2:]
    return header, rows


def sources(markdown: str) -> dict[int, str]:
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^(\d+)\. (.*)$", markdown, flags=re.M)}


def test_paper_numbers_in_their_rows_and_ours_beside_them_with_their_sources(tmp_path):
    make_run(tmp_path / "a", "charades_qwen", values={"R@0.3": 61.0, "R@0.5": 37.25, "R@0.7": 16.0, "mIoU": 38.9})
    make_run(tmp_path / "a", "anet_qwen", annotations="data/activitynet_test.json")
    make_run(tmp_path / "b", "qvh_qwen", task="hd", annotations="data/qvhighlights/highlight_val_release.jsonl",
             fps=0.5)  # highlight detection samples at its own rate: no warning
    make_run(tmp_path / "b", "ft", model="checkpoints/LongVA-7B-DPO/", family="longva", fps=0.5, max_frames=240,
             adapter={"path": "checkpoints/numpro_ft", "sha256": {"adapter_config.json": "b" * 64}})
    make_run(tmp_path / "b", "plain", numbers=False)
    make_run(tmp_path / "b", "gpt", model="gpt-4o-2024-08-06", family="api")
    table = results.build([tmp_path])
    header, rows = parse_table(table.markdown)

    assert header[:3] == ["Model", "", "Charades-STA R@0.3"]
    assert header[2:] == ["Charades-STA R@0.3", "R@0.5", "R@0.7", "mIoU", "ActivityNet R@0.3", "R@0.5", "R@0.7",
                          "mIoU", "QVHighlights mAP", "HIT@1"]
    # every paper row of the main table, in the paper's order, with its numbers
    labels = [label for (label, kind) in rows if kind == "paper"]
    assert labels == list(paper.MAIN)
    assert rows[("Qwen2-VL-7B + NumPro", "paper")] == ["60.7", "36.8", "15.9", "38.5", "44.2", "26.4", "14.4", "31.3",
                                                        "23.6", "43.4"]
    assert rows[("GPT-4o + NumPro", "paper")][-2:] == ["40.5", "70.7"]

    src = sources(table.markdown)
    number = {Path(text.split("`")[1]).name: k for k, text in src.items()}
    k, a, q = number["charades_qwen_metrics.json"], number["anet_qwen_metrics.json"], number["qvh_qwen_metrics.json"]
    assert rows[("Qwen2-VL-7B + NumPro", "ours")] == [
        f"61.00 [{k}]", f"37.25 [{k}]", f"16.00 [{k}]", f"38.90 [{k}]",
        f"50.00 [{a}]", f"30.00 [{a}]", f"10.00 [{a}]", f"33.33 [{a}]", f"22.50 [{q}]", f"40.00 [{q}]"]
    # each source names the metrics file and its run record
    assert "run record `" in src[k] and src[k].split("run record `")[1].startswith(str(tmp_path / "a" / "charades_qwen_run.json"))
    # LoRA -> + NumPro-FT; numbers off -> the baseline row; API model name -> GPT-4o
    ft = number["ft_metrics.json"]
    assert rows[("LongVA-7B-DPO + NumPro-FT", "ours")][:4] == [f"{v} [{ft}]" for v in ("50.00", "30.00", "10.00", "33.33")]
    assert rows[("Qwen2-VL-7B", "ours")][0] == f"50.00 [{number['plain_metrics.json']}]"
    assert rows[("GPT-4o + NumPro", "ours")][0] == f"50.00 [{number['gpt_metrics.json']}]"
    assert rows[("LongVA-7B-DPO", "ours")] == ["–"] * 10
    assert table.warnings == [] and table.without_record == []


def test_model_names_match_the_papers_rows_and_only_them():
    assert results.paper_model_name("Qwen/Qwen2-VL-7B-Instruct") == "Qwen2-VL-7B"
    assert results.paper_model_name("/models/Qwen2-VL-72B-Instruct/") == "Qwen2-VL-72B"
    assert results.paper_model_name("lmms-lab/llava-onevision-qwen2-7b-ov") == "LLaVA-OneVision-7B"
    assert results.paper_model_name("llava-hf/llava-onevision-qwen2-7b-ov-hf") == "LLaVA-OneVision-7B"
    assert results.paper_model_name("lmms-lab/LLaVA-Video-7B-Qwen2") == "LLaVA-Video-7B"
    assert results.paper_model_name("pretrained/LongVA-7B-DPO") == "LongVA-7B-DPO"
    assert results.paper_model_name("gpt-4o") == "GPT-4o"
    for other in ("gpt-4o-mini", "Qwen/Qwen2.5-VL-7B-Instruct", "LongVA-7B", "llava-onevision-qwen2-0.5b-ov", "qwen"):
        assert results.paper_model_name(other) is None, other


def test_unknown_model_and_other_dataset_get_their_own_row_and_column(tmp_path):
    make_run(tmp_path, "mine", model="/ckpt/my-model", annotations="data/didemo_test.json")
    make_run(tmp_path, "mine_styled", model="Qwen/Qwen2-VL-7B-Instruct", style={"font_size": 20, "color": "blue"})
    table = results.build([tmp_path])
    header, rows = parse_table(table.markdown)
    assert header[-4:] == ["didemo_test R@0.3", "R@0.5", "R@0.7", "mIoU"]
    assert ("my-model + NumPro", "paper") not in rows
    assert rows[("my-model + NumPro", "ours")][:10] == ["–"] * 10
    assert rows[("my-model + NumPro", "ours")][10].startswith("50.00 [")
    # a run in another number style is not the main table's run: its own row, no paper numbers
    styled = "Qwen2-VL-7B + NumPro (numbers 20/blue/bottom_right)"
    assert rows[(styled, "ours")][0].startswith("50.00 [") and (styled, "paper") not in rows
    assert rows[("Qwen2-VL-7B + NumPro", "ours")] == ["–"] * 14


def test_warns_when_runs_of_one_row_differ_in_protocol(tmp_path):
    make_run(tmp_path, "charades", fps=1.0)
    make_run(tmp_path, "anet", annotations="data/anet_test.json", fps=0.5, max_frames=96)
    make_run(tmp_path, "qvh", task="hd", annotations="data/highlight_val_release.jsonl", fps=0.5, size=224)
    table = results.build([tmp_path])
    joined = "\n".join(table.warnings)
    assert len(table.warnings) == 3, joined
    assert re.search(r"Qwen2-VL-7B \+ NumPro: runs differ in fps \(moment retrieval\): 0\.5 \[1\] vs 1\.0 \[2\]", joined)
    assert "runs differ in frame cap (moment retrieval): 96 [1] vs none [2]" in joined
    assert re.search(r"runs differ in frame size: 336 \[\d, \d\] vs 224 \[\d\]", joined)
    assert "Warnings:" in table.markdown and "runs differ in fps" in table.markdown


def test_two_runs_for_one_cell_keep_the_newest_and_say_so(tmp_path):
    newer = make_run(tmp_path / "a", "new", started="2025-03-02T08:00:00+00:00", values={"R@0.3": 62.0})
    older = make_run(tmp_path / "b", "old", started="2025-03-01T08:00:00+00:00", values={"R@0.3": 11.0})
    table = results.build([newer, older])  # the newer one listed first: order does not decide
    _, rows = parse_table(table.markdown)
    assert rows[("Qwen2-VL-7B + NumPro", "ours")][0] == "62.00 [1]"
    (warning,) = table.warnings
    assert "Charades-STA: 2 runs fill this cell; kept the newest [1]" in warning
    assert str(older) in warning and "left out" in warning


def test_metrics_without_run_record_are_listed_not_placed(tmp_path, capsys):
    make_run(tmp_path, "upstream", run_key=False, record=False)
    make_run(tmp_path, "ours", annotations="data/anet_test.json")
    assert cli.main(["results", str(tmp_path), "--out", str(tmp_path / "table.md")]) == 0
    out, err = capsys.readouterr()
    _, rows = parse_table(out)
    assert rows[("Qwen2-VL-7B + NumPro", "ours")][:4] == ["–"] * 4  # not guessed into the Charades cell
    assert rows[("Qwen2-VL-7B + NumPro", "ours")][4] == "50.00 [1]"
    assert f"`{tmp_path / 'upstream_metrics.json'}`: no run record" in out
    assert "upstream_metrics.json: no run record" in err
    assert (tmp_path / "table.md").read_text() == out


def test_limited_runs_are_flagged_from_their_run_record(tmp_path):
    make_run(tmp_path, "part", limit=50)
    table = results.build([tmp_path])
    assert any("only the first 50 queries" in w for w in table.warnings)


def test_no_metrics_file_is_an_error_with_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(["results", str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no metrics file" in err
    assert cli.main(["results", str(tmp_path / "missing")]) == 2  # bad input, as every command says it
    assert "no such file or folder" in capsys.readouterr().err
    make_run(tmp_path / "r", "main")
    assert cli.main(["results", str(tmp_path / "r"), "--out", str(tmp_path / "r" / "main_metrics.json" / "x.md")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_sweep_folders_inside_are_left_out_unless_named(tmp_path):
    make_run(tmp_path / "results", "main")
    make_run(tmp_path / "results" / "sweep", "20_red_bottom_right", style={"font_size": 20})
    (tmp_path / "results" / "sweep" / "sweep.json").write_text("{}")
    table = results.build([tmp_path / "results"])
    assert len(table.runs) == 1 and table.skipped_sweeps == [tmp_path / "results" / "sweep"]
    assert "Left out: number-design sweeps" in table.markdown
    assert len(results.build([tmp_path / "results" / "sweep"]).runs) == 1


def test_paper_module_holds_the_design_ablation():
    assert paper.design_ablation(40, "red", "bottom_left") == {"R@0.3": 61.6, "R@0.5": 37.8, "R@0.7": 15.9, "mIoU": 39.3}
    assert paper.design_ablation(20, "Red", "bottom_right") == {"R@0.3": 53.6, "R@0.5": 34.0, "R@0.7": 14.0, "mIoU": 34.6}
    assert paper.design_ablation(60, "red", "bottom_right") == {"mIoU": 37.1}
    assert paper.design_ablation(40, "blue", "center") == {}
    assert len(paper.DESIGN_ABLATION) == 11


def test_ablation_served_and_unmeasured_runs_never_fill_the_papers_cells(tmp_path, capsys):
    make_run(tmp_path, "main")
    for name, protocol in [("seconds", {"stamp_text": "seconds"}), ("fraction", {"number_fraction": 0.5}),
                           ("plain", {"frame_selection": "plain"}), ("mp4v", {"video_io": "upstream"})]:
        make_run(tmp_path, name, protocol=protocol)
    labels = {run.label for run in results.build([tmp_path]).runs}
    assert len(labels) == 5 and "Qwen2-VL-7B + NumPro" in labels
    assert "Qwen2-VL-7B + NumPro (timestamps)" in labels
    served = dict(jsonio.read_json(next(tmp_path.glob("main_metrics.json"))))
    served["run"] = dict(served["run"], model={"family": "api", "identity": {"api_model": "Qwen/Qwen2-VL-7B-Instruct"},
                                               "adapter": None})
    assert results.row_label(served["run"]) == "Qwen2-VL-7B + NumPro (served)"
    nothing = dict(served, measured=False, not_measured_because="no video found")
    (tmp_path / "x").mkdir()
    jsonio.write_json(tmp_path / "x" / "n_metrics.json", nothing)
    table = results.build([tmp_path / "x", tmp_path / "main_metrics.json"])
    assert len(table.runs) == 1 and any("nothing was measured" in text for text in table.unreadable)
