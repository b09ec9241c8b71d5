"""Every number traceable and honest: run records, settings-checked resume, ground truth from the
current annotations, honest exits and clear errors (issue: run layer trust)."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest

from numpro.evaluation import run_record, runner
from numpro.evaluation.cli import build_parser, default_save_path, main
from numpro.evaluation.tasks import MomentRetrieval

from conftest import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "eval"))
import numpro_ft_mr  # noqa: E402
import qwen2_vl_7b_hd  # noqa: E402
import qwen2_vl_7b_mr  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from numpro.models.tiny import build

    return build("qwen2_vl", tmp_path_factory.mktemp("tiny_rr") / "qwen2_vl")


@pytest.fixture()
def data(dataset, tmp_path):
    """A private copy of the test file (tests edit it); the videos are shared."""
    (tmp_path / "test.json").write_text((dataset / "test.json").read_text())
    return tmp_path / "test.json", dataset / "videos"


def args(tiny, data, save, *extra):
    annotations, videos = data
    return ["--data_path", str(annotations), "--video_path", str(videos), "--model_path", str(tiny),
            "--save_path", str(save), "--max_new_tokens", "6", "--workers", "0", "--limit", "2", *extra]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_run_record_says_what_produced_the_numbers(tiny, data, tmp_path):
    save = tmp_path / "out" / "pred.jsonl"
    assert main(qwen2_vl_7b_mr.SPEC, args(tiny, data, save)) == 0
    record = json.loads((tmp_path / "out" / "pred_run.json").read_text())
    assert {"script", "arguments", "protocol", "prompt", "model", "generation", "annotations", "videos",
            "versions", "world_size", "started"} <= set(record)
    assert record["model"]["family"] == "qwen2_vl" and record["model"]["adapter"] is None
    assert record["model"]["identity"]["config_sha256"] == sha256(tiny / "config.json")
    assert record["model"]["identity"]["weights_sha256"] == sha256(tiny / "model.safetensors")
    assert record["model"]["dtype"] == "float32"
    assert record["annotations"] == {"path": str(data[0]), "sha256": sha256(data[0]), "n_queries": 2}
    protocol = record["protocol"]
    assert (protocol["fps"], protocol["size"], protocol["numbers"]) == (1.0, 336, True)
    assert protocol["stamp"]["font_size"] == 40 and protocol["stamp"]["position"] == "bottom_right"
    assert len(protocol["stamp"]["font_sha256"]) == 64
    assert record["prompt"]["template"] == MomentRetrieval().prompt_template()
    assert "{query}" in record["prompt"]["template"]
    generation = record["generation"]
    assert generation["max_new_tokens"] == 6 and generation["do_sample"] is False
    assert generation["repetition_penalty"] == json.loads((tiny / "generation_config.json").read_text()).get(
        "repetition_penalty")
    assert {"python", "torch", "transformers", "peft", "qwen-vl-utils", "numpro"} <= set(record["versions"])
    # the metrics file alone says what it measures
    metrics = json.loads((tmp_path / "out" / "pred_metrics.json").read_text())
    assert metrics["run"]["model"] == record["model"] and metrics["run_record"] == "pred_run.json"
    assert metrics["run"]["annotations"]["n_queries"] == 2  # the record as written, not the one built at start


def test_run_record_is_written_before_the_model_loads(tiny, data, tmp_path):
    save = tmp_path / "early.jsonl"
    seen = []

    def loader(device):
        seen.append(run_record.record_path(save).is_file())
        raise RuntimeError("stop here")

    options = runner.RunOptions(data[0], data[1], save, fps=1.0, workers=0, limit=1, progress=False)
    with pytest.raises(RuntimeError, match="stop here"):
        runner.run(MomentRetrieval(), options, loader, device="cpu",
                   run_record={"model": {"family": "x"}, "started": run_record.now()})
    assert seen == [True]


def test_resume_only_the_same_run(tiny, data, tmp_path, capsys):
    save = tmp_path / "pred.jsonl"
    assert main(qwen2_vl_7b_mr.SPEC, args(tiny, data, save)) == 0
    answers = save.read_text()
    capsys.readouterr()

    # answer-changing settings: refused before any model loads, each difference named
    assert main(qwen2_vl_7b_mr.SPEC, args(tiny, data, save, "--no_numbers", "--fps", "0.5")) == 2
    err = capsys.readouterr().err
    assert "protocol.numbers: stored true, now false" in err and "protocol.fps: stored 1.0, now 0.5" in err
    assert "--save_path" in err and "--overwrite" in err
    assert save.read_text() == answers

    other_model = tmp_path / "other_model"
    shutil.copytree(tiny, other_model)
    (other_model / "generation_config.json").write_text(json.dumps({"repetition_penalty": 1.3}))
    assert main(qwen2_vl_7b_mr.SPEC, args(other_model, data, save)) == 2
    assert "generation.repetition_penalty" in capsys.readouterr().err

    # speed settings and --limit may differ: the run resumes
    assert main(qwen2_vl_7b_mr.SPEC, args(tiny, data, save, "--batch_size", "2", "--limit", "3")) == 0
    assert "3 queries, 2 already answered, 1 to run" in capsys.readouterr().out
    record = json.loads(run_record.record_path(save).read_text())
    assert len(record["resumed"]) == 1 and record["arguments"]["batch_size"] == 2

    # --overwrite starts afresh with the new settings
    assert main(qwen2_vl_7b_mr.SPEC, args(tiny, data, save, "--no_numbers", "--overwrite")) == 0
    assert "2 queries, 0 already answered, 2 to run" in capsys.readouterr().out
    assert len(read_jsonl(save)) == 2
    assert json.loads(run_record.record_path(save).read_text())["protocol"]["numbers"] is False


def test_predictions_without_a_run_record_are_not_resumed(tiny, data, tmp_path, capsys):
    save = tmp_path / "old.jsonl"
    save.write_text(json.dumps({"id": "vid0_0", "response": "From 1 to 2", "status": "ok"}) + "\n")
    assert main(qwen2_vl_7b_mr.SPEC, args(tiny, data, save)) == 2
    assert "no run record" in capsys.readouterr().err


def test_default_save_paths_never_mix_models_adapters_or_protocols():
    def path(spec, *extra):
        parsed = build_parser(spec).parse_args(["--data_path", "data/charades_test.json", *extra])
        return default_save_path(spec, parsed)

    base = path(numpro_ft_mr.SPEC)
    lora = path(numpro_ft_mr.SPEC, "--lora_path", "checkpoints/longva_7b_dpo_NumPro_FT/")
    plain = path(numpro_ft_mr.SPEC, "--no_numbers")
    assert len({base, lora, plain}) == 3
    assert base == Path("results/charades_test_LongVA-7B-DPO_numpro_0.5fps.jsonl")
    assert lora == Path("results/charades_test_LongVA-7B-DPO_longva_7b_dpo_NumPro_FT_numpro_0.5fps.jsonl")
    assert path(qwen2_vl_7b_mr.SPEC) == Path("results/charades_test_Qwen2-VL-7B-Instruct_numpro_1fps.jsonl")
    assert path(qwen2_vl_7b_mr.SPEC, "--model_path", "llava-hf/llava-onevision-qwen2-7b-ov-hf") != \
        path(qwen2_vl_7b_mr.SPEC)


def test_changed_queries_are_answered_again_and_truth_comes_from_the_current_file(tiny, data, tmp_path, capsys):
    save = tmp_path / "pred.jsonl"
    assert main(qwen2_vl_7b_mr.SPEC, args(tiny, data, save, "--limit", "3")) == 0
    capsys.readouterr()
    records = json.loads(data[0].read_text())
    records[0]["query"] = "a person opens a door"  # a new question: answered again
    records[1]["start_time"], records[1]["end_time"] = 0.0, 9.0  # corrected ground truth only
    del records[2]  # no longer in the test file
    data[0].write_text(json.dumps(records))
    assert main(qwen2_vl_7b_mr.SPEC, args(tiny, data, save)) == 0  # ground-truth edits never block a resume
    out = capsys.readouterr().out
    assert "2 queries, 1 already answered, 1 to run" in out
    assert "1 records in the predictions are not among the 2 queries" in out and "vid0_2" in out
    by_id = {r["id"]: r for r in read_jsonl(save)}
    assert by_id["vid0_0"]["query"] == "a person opens a door"
    assert (by_id["vid0_1"]["gt_start"], by_id["vid0_1"]["gt_end"]) == (0.0, 9.0)
    metrics = json.loads(save.with_name("pred_metrics.json").read_text())
    assert metrics["n"] == 2 and metrics["n_left_out"] == 1


def test_a_last_line_cut_inside_a_utf8_character_resumes(tiny, data, tmp_path, capsys):
    save = tmp_path / "pred.jsonl"
    assert main(qwen2_vl_7b_mr.SPEC, args(tiny, data, save)) == 0
    capsys.readouterr()
    lines = save.read_bytes().split(b"\n")
    cut = json.dumps({"id": "vid0_1", "response": "Frame \u00e9\u00e9", "status": "ok"},
                     ensure_ascii=False).encode()
    cut = cut[: cut.index("\u00e9".encode()) + 1]  # half of a two-byte character
    save.write_bytes(lines[0] + b"\n" + cut)
    assert main(qwen2_vl_7b_mr.SPEC, args(tiny, data, save)) == 0
    assert "2 queries, 1 already answered, 1 to run" in capsys.readouterr().out
    assert [r["id"] for r in read_jsonl(save)] == ["vid0_0", "vid0_1"]


def test_runs_that_measure_nothing_exit_non_zero(tiny, data, tmp_path, capsys):
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    assert main(qwen2_vl_7b_mr.SPEC, args(tiny, (empty, data[1]), tmp_path / "a.jsonl")) == 1
    assert "no queries" in capsys.readouterr().err

    no_videos = tmp_path / "no_videos"
    no_videos.mkdir()
    assert main(qwen2_vl_7b_mr.SPEC, args(tiny, (data[0], no_videos), tmp_path / "b.jsonl")) == 1
    captured = capsys.readouterr()
    assert f"none of the 2 queries' videos was found in {no_videos}; is --videos right?" in captured.err
    # a missing video is counted as such, never as a parse failure
    assert "failed to parse 0" in captured.out and "missing_video 2" in captured.out

    for flag, value in [("--max_new_tokens", "0"), ("--limit", "-3"), ("--fps", "0"), ("--size", "0"),
                        ("--workers", "-1"), ("--batch_size", "0")]:
        with pytest.raises(SystemExit) as exit_info:
            main(qwen2_vl_7b_mr.SPEC, args(tiny, data, tmp_path / "c.jsonl", flag, value))
        assert exit_info.value.code == 2
        assert flag in capsys.readouterr().err


def test_the_runner_fails_when_every_answer_is_empty(tmp_path):
    metrics = {"n": 3, "status": {"ok": 3}, "n_empty_answers": 3}
    options = runner.RunOptions(tmp_path, tmp_path, tmp_path / "p.jsonl", fps=1.0, max_new_tokens=1)
    with pytest.raises(runner.RunError, match="every answer is empty.*--max_new_tokens 1"):
        runner._raise_if_useless(metrics, options)
    runner._raise_if_useless(dict(metrics, n_empty_answers=2), options)  # one answer to score: fine


@pytest.fixture(scope="module")
def tiny_longva(tmp_path_factory):
    from numpro.models.tiny import build

    root = tmp_path_factory.mktemp("tiny_lv")
    return build("longva", root / "longva", lora=root / "lora")


def test_bad_model_paths_give_one_line_errors(tiny, tiny_longva, data, tmp_path, capsys):
    not_a_model = tmp_path / "folder"
    not_a_model.mkdir()
    no_tokenizer = tmp_path / "no_tokenizer"
    shutil.copytree(tiny, no_tokenizer)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (no_tokenizer / name).unlink()
    no_adapter = tmp_path / "adapter"
    no_adapter.mkdir()
    ft = ["--test_path", str(data[0]), "--data_path", str(data[1]), "--save_path", str(tmp_path / "ft.jsonl")]
    cases = [
        (qwen2_vl_7b_mr.SPEC, args(tiny, data, tmp_path / "p.jsonl", "--model_path", str(tmp_path / "nope")),
         "nope: no such model folder"),
        (qwen2_vl_7b_mr.SPEC, args(not_a_model, data, tmp_path / "p.jsonl"), "not a model folder (no config.json)"),
        (qwen2_vl_7b_mr.SPEC, args(no_tokenizer, data, tmp_path / "p.jsonl"), "no tokenizer files"),
        (qwen2_vl_7b_mr.SPEC, args(tiny_longva, data, tmp_path / "p.jsonl"), "use eval/numpro_ft_mr.py"),
        (numpro_ft_mr.SPEC, ft + ["--model_path", str(tiny)], "expects LongVA"),
        (numpro_ft_mr.SPEC, ft + ["--model_path", str(tiny_longva), "--lora_path", str(no_adapter)],
         "not an adapter folder (no adapter_config.json)"),
        (qwen2_vl_7b_hd.SPEC, ["--gt_file", str(tmp_path / "missing.jsonl"), "--video_dir", str(data[1]),
                               "--model_path", str(tiny)], "annotation file not found"),
    ]
    for spec, argv, message in cases:
        assert main(spec, argv) == 2, message
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and err.count("\n") <= 2, err
    with pytest.raises(Exception, match="no such model folder"):  # --debug shows the traceback
        main(qwen2_vl_7b_mr.SPEC, args(tiny, data, tmp_path / "p.jsonl", "--model_path", str(tmp_path / "nope"),
                                       "--debug"))


def test_eval_scripts_share_the_stamp_flags_and_aliases(tiny, data, dataset, tmp_path, capsys):
    save = tmp_path / "br.jsonl"
    assert main(qwen2_vl_7b_mr.SPEC, args(tiny, data, save, "--position", "tl", "--font-size", "30",
                                          "--no_progress", "--limit", "1")) == 0
    stamp = json.loads(run_record.record_path(save).read_text())["protocol"]["stamp"]
    assert (stamp["position"], stamp["font_size"]) == ("top_left", 30)
    # highlight answers name frames: time labels are refused there, clearly
    hd = ["--gt_file", str(dataset / "qvh.jsonl"), "--video_dir", str(data[1]), "--model_path", str(tiny),
          "--stamp_text", "seconds"]
    assert main(qwen2_vl_7b_hd.SPEC, hd) == 2
    assert "--stamp_text seconds is for moment retrieval" in capsys.readouterr().err


def test_a_repeated_id_counts_once_the_newest_with_a_warning(tiny, data, tmp_path, capsys):
    save = tmp_path / "pred.jsonl"
    assert main(qwen2_vl_7b_mr.SPEC, args(tiny, data, save)) == 0
    first = read_jsonl(save)
    stale = dict(first[1], response="From Frame 0 to Frame 1", status="decode_error")
    with open(save, "a") as handle:  # an older failed answer of the same id, then the good one again
        handle.write(json.dumps(stale) + "\n" + json.dumps(first[1]) + "\n")
    capsys.readouterr()
    assert main(qwen2_vl_7b_mr.SPEC, args(tiny, data, save, "--batch-size", "2")) == 0  # hyphen alias too
    assert "superseded by newer ones" in capsys.readouterr().err
    assert read_jsonl(save) == first


def test_default_save_paths_name_every_protocol_flag_away_from_its_default():
    def path(*extra):
        parsed = build_parser(qwen2_vl_7b_mr.SPEC).parse_args(["--data_path", "data/charades_test.json", *extra])
        return default_save_path(qwen2_vl_7b_mr.SPEC, parsed).name

    variants = [(), ("--stamp_text", "seconds"), ("--number_fraction", "0.5"), ("--number_fraction", "0.25"),
                ("--number_fraction", "0.5", "--number_sampling", "random"), ("--frame_rule", "plain"),
                ("--video_io", "upstream"), ("--font_size", "20"), ("--position", "tl"), ("--size", "224"),
                ("--max_frames", "64")]
    names = [path(*v) for v in variants]
    assert len(set(names)) == len(names)
    assert names[1] == "charades_test_Qwen2-VL-7B-Instruct_seconds_1fps.jsonl"
    assert names[2] == "charades_test_Qwen2-VL-7B-Instruct_numpro_1fps_nf0.5uniform.jsonl"
    assert path("--position", "br", "--font_size", "40") == names[0]  # the defaults, spelled out


def test_leftover_part_files_never_win_over_newer_answers(tiny, data, tmp_path, capsys):
    first = tmp_path / "first.jsonl"
    assert main(qwen2_vl_7b_mr.SPEC, args(tiny, data, first)) == 0
    answers = read_jsonl(first)
    save = tmp_path / "pred.jsonl"
    shutil.copy(run_record.record_path(first), run_record.record_path(save))
    save.write_text(json.dumps(answers[1]) + "\n")
    # a killed two-process run left its rank-1 part: the first query failed there
    failed = dict(answers[0], response="", status="model_error", error="CUDA out of memory")
    save.with_name("pred.jsonl.rank1-of-2.part").write_text(json.dumps(failed) + "\n")
    assert main(qwen2_vl_7b_mr.SPEC, args(tiny, data, save)) == 0
    assert "2 queries, 1 already answered, 1 to run" in capsys.readouterr().out
    assert [r["status"] for r in read_jsonl(save)] == ["ok", "ok"]
    assert not list(tmp_path.glob("pred.jsonl.rank*"))


def test_a_run_that_stopped_before_its_first_answer_blocks_nothing(tiny, data, tmp_path):
    save = tmp_path / "pred.jsonl"
    stale = {"model": {"family": "qwen2_vl", "attn_implementation": "flash_attention_2"}, "started": "earlier"}
    run_record.record_path(save).write_text(json.dumps(stale))  # e.g. it failed while loading
    save.write_text("")  # and had opened its predictions file
    assert main(qwen2_vl_7b_mr.SPEC, args(tiny, data, save)) == 0
    assert json.loads(run_record.record_path(save).read_text())["model"]["attn_implementation"] == "sdpa"


def test_a_template_without_exactly_one_query_place_is_refused(tiny, data, tmp_path, capsys):
    for template in ("When does {query} happen?", "Where is the dog?", "{} and {}"):
        assert main(qwen2_vl_7b_mr.SPEC, args(tiny, data, tmp_path / "t.jsonl", "--input_format", template)) == 2
        assert "exactly one {}" in capsys.readouterr().err


def test_sharded_checkpoints_with_equal_config_and_index_differ_in_identity(tmp_path):
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    identities = []
    for name, fill in (("step1000", b"\x01"), ("step2000", b"\x02")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text("{}")
        (folder / "model.safetensors.index.json").write_text(json.dumps(index))
        for shard in set(index["weight_map"].values()):
            (folder / shard).write_bytes(b"header" + fill * 4096)
        identities.append(run_record.model_identity(folder))
    assert identities[0]["weights_sha256"] == identities[1]["weights_sha256"]  # the index alone cannot tell
    assert identities[0]["shards_fingerprint"] != identities[1]["shards_fingerprint"]
