"""The API backend (GPT-4o and OpenAI-compatible servers) against a local server of the tests' own.

The server (tests/api_servers.py) listens on 127.0.0.1 only, records what it receives and injects
failures: 429 with Retry-After, 5xx, hangs past the client's timeout, malformed bodies.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from numpro import prompts, timeline
from numpro.models import api
from numpro.models.api_images import ImageEncoding, decode_data_url, estimate_image_tokens

from api_servers import ChatServer, answer, frames, hang, raw, status
from conftest import EVAL_VIDEOS, read_jsonl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "eval"))
import gpt4o_hd  # noqa: E402
import gpt4o_mr  # noqa: E402
import qwen2_vl_7b_mr  # noqa: E402

from numpro.evaluation.cli import main  # noqa: E402

KEY = "sk-test-NEVER-WRITE-ME-0123456789"


@pytest.fixture
def server():
    with ChatServer() as chat:
        yield chat


def model_for(server, **overrides) -> api.ApiModel:
    settings = dict(base_url=server.url, model="test-model", max_retries=3, request_timeout=5.0, backoff=0.01)
    settings.update(overrides)
    return api.ApiModel(api.ApiSettings(**settings))


def ask(model, videos, texts, max_new_tokens=16):
    return model.generate(model.preprocessor(videos, texts, 1.0), max_new_tokens)


def decode(url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(decode_data_url(url)[1])).convert("RGB"))


# ----- what is sent --------------------------------------------------------------------------------

def test_one_user_message_frames_in_order_then_the_exact_text(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    video = frames(5, seed=1)
    text = prompts.mr_prompt("a person opens a door")
    [reply] = ask(model_for(server, seed=7), [video], [text], max_new_tokens=128)
    assert (reply.status, reply.text) == ("ok", "From Frame 1 to Frame 3")
    assert reply.extra["usage"] == {"prompt_tokens": 510, "completion_tokens": 7}
    assert reply.extra["finish_reason"] == "stop"

    [got] = server.received
    assert got.path == "/v1/chat/completions"
    assert got.headers["authorization"] == f"Bearer {KEY}"  # the key goes to the server, and nowhere else
    body = got.body
    assert {k: body[k] for k in ("model", "temperature", "max_tokens", "seed")} == {
        "model": "test-model", "temperature": 0, "max_tokens": 128, "seed": 7}
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert [p["type"] for p in got.content] == ["image_url"] * 5 + ["text"]
    assert got.text == text
    assert all(p["image_url"]["detail"] == "auto" for p in got.content[:5])
    for url, frame in zip(got.images, video):  # lossless PNG: every pixel of every frame, in order
        assert url.startswith("data:image/png;base64,")
        assert np.array_equal(decode(url), frame)


def test_no_seed_unless_given_and_jpeg_when_asked(server):
    video = frames(2, size=64, seed=2)
    encoding = ImageEncoding("jpeg", jpeg_quality=90, detail="low")
    ask(model_for(server, encoding=encoding), [video], ["q"])
    [got] = server.received
    assert "seed" not in got.body
    for url, frame in zip(got.images, video):
        assert url.startswith("data:image/jpeg;base64,")
        assert decode(url).shape == frame.shape
    assert [p["image_url"]["detail"] for p in got.content[:2]] == ["low", "low"]


def test_a_videos_queries_share_one_encoding_and_each_gets_its_own_request(server):
    a, b = frames(3, seed=3), frames(4, seed=4)
    batch = model_for(server).preprocessor([a, a, b], ["first", "second", "third"], 1.0)
    requests = batch.tensors["requests"]
    assert requests[0].images is requests[1].images and requests[2].images is not requests[0].images
    replies = model_for(server).generate(batch, 8)
    assert [r.status for r in replies] == ["ok"] * 3
    by_text = {r.text: r for r in server.received}
    assert set(by_text) == {"first", "second", "third"}
    assert [len(by_text[t].images) for t in ("first", "second", "third")] == [3, 3, 4]
    assert np.array_equal(decode(by_text["third"].images[3]), b[3])


def test_requests_of_a_batch_are_in_flight_together(server):
    server.default = lambda received: hang(0.3)
    model = model_for(server, concurrency=4)
    start = time.monotonic()
    replies = ask(model, [frames(1, seed=i) for i in range(4)], [f"q{i}" for i in range(4)])
    assert [r.status for r in replies] == ["ok"] * 4
    assert server.max_in_flight == 4
    assert time.monotonic() - start < 1.0  # not 4 x 0.3 s one after another


# ----- retries and failures ------------------------------------------------------------------------

def test_429_waits_as_long_as_retry_after_says_then_succeeds(server):
    server.script = [status(429, "slow down", {"Retry-After": "1"})]
    [reply] = ask(model_for(server, backoff=0.01), [frames(2)], ["q"])
    assert reply.status == "ok"
    first, second = server.received
    assert second.time - first.time >= 0.95  # honoured Retry-After, not the 10 ms backoff
    assert first.body == second.body  # the identical request again


@pytest.mark.parametrize("failure", [
    status(500, "internal error"),
    status(503, "overloaded"),
    raw(b'{"choices": [ broken json'),
    raw(b"<html>bad gateway</html>", content_type="text/html"),
    raw(b'{"object": "chat.completion"}'),  # JSON without choices
    hang(3.0),  # past the client's timeout
], ids=["500", "503", "malformed-json", "html", "no-choices", "timeout"])
def test_transient_failures_are_retried(server, failure):
    server.script = [failure]
    [reply] = ask(model_for(server, request_timeout=0.5), [frames(1)], ["q"])
    assert (reply.status, reply.text) == ("ok", "From Frame 1 to Frame 3")
    assert len(server.received) == 2


def test_after_the_last_retry_the_query_gets_api_error_with_the_servers_message(server):
    server.default = lambda received: status(503, "model overloaded, try later")
    logged = []
    model = model_for(server, max_retries=2)
    model._log = logged.append
    [reply] = ask(model, [frames(1)], ["q"])
    assert reply.status == "api_error" and reply.text is None
    assert reply.error == "HTTP 503: model overloaded, try later (after 3 attempts)"
    assert len(server.received) == 3 and len(logged) == 2
    assert "retry 1 of 2" in logged[0]


@pytest.mark.parametrize("failure, message", [
    (status(400, "too many images"), "HTTP 400: too many images"),
    (status(404, "model 'x' not found"), "HTTP 404: model 'x' not found"),
    (status(429, "You exceeded your current quota", code_name="insufficient_quota"),
     "HTTP 429: You exceeded your current quota"),
], ids=["400", "404", "quota"])
def test_errors_that_waiting_cannot_fix_are_not_retried(server, failure, message):
    server.default = lambda received: failure
    [reply] = ask(model_for(server), [frames(1)], ["q"])
    assert (reply.status, reply.error) == ("api_error", message)
    assert len(server.received) == 1


def test_connection_refused_is_an_api_error_not_a_crash():
    with ChatServer() as gone:
        url = gone.url
    model = api.ApiModel(api.ApiSettings(url, "m", max_retries=1, backoff=0.01, request_timeout=2))
    [reply] = ask(model, [frames(1)], ["q"])
    assert reply.status == "api_error" and reply.error.startswith("connection error")


def test_the_key_is_scrubbed_from_what_a_server_echoes(server, monkeypatch):
    monkeypatch.setenv("MY_KEY", KEY)
    server.default = lambda received: status(401, f"invalid key: {received.headers['authorization']}")
    model = model_for(server, key_env="MY_KEY")
    [reply] = ask(model, [frames(1)], ["q"])
    assert reply.status == "api_error" and KEY not in reply.error and "[key hidden]" in reply.error
    assert KEY not in repr(model) and KEY not in json.dumps(model.settings.describe())


# ----- command line, run record, summary -----------------------------------------------------------

def parse(api_only: bool, *argv):
    parser = argparse.ArgumentParser()
    api.add_arguments(parser, api_only=api_only)
    parser.add_argument("--model_path", default="Qwen/Qwen2-VL-7B-Instruct")
    return parser.parse_args(list(argv))


def test_arguments_defaults_aliases_and_validation(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    local = parse(False)
    assert not api.enabled(local)
    served = parse(False, "--api-base", "http://127.0.0.1:8000/v1")
    assert api.enabled(served) and api.model_name(served) == "Qwen/Qwen2-VL-7B-Instruct"
    gpt = parse(True, "--image-format", "jpeg", "--jpeg-quality", "80", "--seed", "3")
    assert gpt.api_base == api.OPENAI_BASE_URL and gpt.api_model == "gpt-4o"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert parse(True).api_base == "http://127.0.0.1:9/v1"

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(api.ApiConfigError, match=r"\$OPENAI_API_KEY is not set"):
        api.validate(gpt)
    api.validate(parse(True, "--dry_run", "out"))  # a dry run needs no key
    api.validate(served)  # nor does a self-hosted server
    for bad in (["--api_base", "localhost:8000"], ["--api_base", "http://h/v1", "--jpeg_quality", "101"],
                ["--api_base", "http://h/v1", "--price_per_mtok_in", "-1"]):
        with pytest.raises(api.ApiConfigError):
            api.validate(parse(False, *bad))


def test_describe_separates_what_changes_answers_and_never_holds_the_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    args = parse(True, "--api_base", "https://user:pw@example.invalid/v1?api-key=abc&v=1", "--image_format", "jpeg",
                 "--seed", "5", "--concurrency", "8")
    described = api.describe(args)
    assert described["request"] == {
        "model": "gpt-4o", "temperature": 0, "image_format": "jpeg", "image_detail": "auto", "jpeg_quality": 95,
        "seed": 5, "messages": "one user message: every frame as an image_url part, in order, then the prompt"}
    transport = described["transport"]
    assert transport["base_url"] == "https://***@example.invalid/v1?api-key=***&v=1"
    assert transport["concurrency"] == 8 and transport["key_env"] == "OPENAI_API_KEY"
    text = json.dumps(described)
    assert KEY not in text and "pw" not in text and "abc" not in text


def test_usage_summary_totals_and_cost():
    records = [{"status": "ok", "usage": {"prompt_tokens": 1000, "completion_tokens": 10}},
               {"status": "ok", "usage": {"prompt_tokens": 3000, "completion_tokens": 30}},
               {"status": "ok", "usage": None},
               {"status": "api_error"}, {"status": "missing_video"}]
    line, summary = api.usage_summary(records, 2.5, 10.0)
    assert summary == {"queries_with_usage": 2, "prompt_tokens": 4000, "completion_tokens": 40,
                       "answered_without_usage": 1, "api_errors": 1, "price_per_mtok_in": 2.5,
                       "price_per_mtok_out": 10.0, "cost_estimate": 0.0104}
    assert line.startswith("API usage: 4,000 prompt + 40 completion tokens over 2 answered queries")
    assert "$0.01" in line and "1 failed with api_error" in line
    assert "cost_estimate" not in api.usage_summary(records)[1]


def test_gpt4o_image_token_rule():
    # OpenAI's published examples, and our frames
    assert estimate_image_tokens(1024, 1024, "high") == 765
    assert estimate_image_tokens(2048, 4096, "high") == 1105
    assert estimate_image_tokens(4096, 8192, "low") == 85
    assert estimate_image_tokens(336, 336, "high") == estimate_image_tokens(336, 336, "auto") == 255


def test_dry_run_writes_the_requests_and_sends_nothing(server, tmp_path):
    model = model_for(server, dry_run=tmp_path / "dry")
    video = frames(3, seed=5)
    replies = ask(model, [video, video], ["one", "two"], max_new_tokens=128)
    assert server.received == []
    assert [r.status for r in replies] == ["dry_run", "dry_run"]
    request = json.loads((tmp_path / "dry" / replies[0].extra["request_file"]).read_text())
    assert request["max_tokens"] == 128 and request["messages"][0]["content"][-1] == {"type": "text", "text": "one"}
    urls = [p["image_url"]["url"] for p in request["messages"][0]["content"][:-1]]
    png = ImageEncoding().encode(video[1])
    assert urls[1] == f"data:image/png;base64,<{len(png)} bytes, sha256 {hashlib.sha256(png).hexdigest()}>"
    line, summary = api.usage_summary([{"status": "dry_run", **r.extra} for r in replies], 2.5, 10.0)
    est = replies[0].extra["usage_estimate"]
    assert est["images"] == 3 and est["prompt_tokens"] == 3 * 255 + 1 + 7  # auto counts as high: one tile each
    assert summary["dry_run"]["requests"] == 2 and summary["dry_run"]["completion_tokens_max"] == 256
    assert line.startswith("dry run: 2 requests, 6 images")


# ----- end to end through the eval scripts ---------------------------------------------------------

def api_args(data: Path, save: Path, server, *extra) -> list[str]:
    return ["--data_path", str(data / "test.json"), "--video_path", str(data / "videos"), "--save_path", str(save),
            "--api_base", server.url, "--workers", "1", *extra]


def n_frames(name: str, fps: float) -> int:
    rate, seconds = {n: (r, s) for n, r, s in EVAL_VIDEOS}[name]
    return timeline.num_sampled_frames(round(seconds * rate) / rate, fps)


def frames_of(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))]


def test_gpt4o_mr_script_end_to_end(server, dataset, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    save = tmp_path / "pred.jsonl"
    server.default = lambda received: hang(0.05)
    code = main(gpt4o_mr.SPEC, api_args(dataset, save, server, "--concurrency", "3", "--dump_frames",
                                        str(tmp_path / "frames"), "--price_per_mtok_in", "2.5",
                                        "--price_per_mtok_out", "10"))
    assert code == 0
    records = read_jsonl(save)
    assert len(records) == 10 and sum(r["status"] == "ok" for r in records) == 9
    assert server.max_in_flight >= 2  # a batch's requests go out together
    assert len(server.received) == 9  # the missing video costs nothing
    for record in records:
        if record["status"] != "ok":
            continue
        assert (record["pred_start"], record["pred_end"], record["pred_start_sec"]) == (1, 3, 1.0)
        assert record["usage"]["completion_tokens"] == 7
        text = prompts.INSTRUCTION + prompts.MR_QUESTION.format(record["query"])
        dumped = frames_of(tmp_path / "frames" / Path(record["video"]).stem)
        assert len(dumped) == n_frames(record["video"][:-4], 1.0)
        sent = [r for r in server.received if r.text == text and len(r.images) == len(dumped)
                and all(np.array_equal(decode(url), frame) for url, frame in zip(r.images, dumped))]
        assert len(sent) == 1  # exactly one request per query, with every numbered frame in order

    metrics = json.loads(save.with_name("pred_metrics.json").read_text())
    assert metrics["usage"]["queries_with_usage"] == 9 and metrics["usage"]["completion_tokens"] == 63
    assert metrics["usage"]["cost_estimate"] == round(metrics["usage"]["prompt_tokens"] * 2.5e-6 + 63e-5, 4)
    run = json.loads(save.with_name("pred_run.json").read_text())
    assert run["model"]["api"]["request"]["model"] == "gpt-4o"
    out, err = capfd.readouterr()
    assert "API usage:" in out
    for path in tmp_path.rglob("*.json*"):
        assert KEY not in path.read_text(), path
    assert KEY not in out + err


def test_dry_run_through_the_script_sends_nothing_and_prints_the_bill(server, dataset, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # a dry run needs no key
    dry = tmp_path / "dry"
    argv = api_args(dataset, tmp_path / "pred.jsonl", server, "--dry_run", str(dry), "--price_per_mtok_in", "2.5",
                    "--price_per_mtok_out", "10")
    assert main(gpt4o_mr.SPEC, argv) == 0
    assert server.received == []
    assert len(list((dry / "requests").glob("*.json"))) == 9  # one per query with a video
    out = capsys.readouterr().out
    assert "dry run: 9 requests, " in out and "at most about $" in out


def test_gpt4o_hd_script_end_to_end(server, dataset, tmp_path):
    server.default = lambda received: answer("The highlight frames are in the 1, 2 frames. "
                                             "Their saliency scores are 3.0, 4.0")
    save = tmp_path / "hd.jsonl"
    code = main(gpt4o_hd.SPEC, ["--gt_file", str(dataset / "qvh.jsonl"), "--video_dir", str(dataset / "videos"),
                                "--save_path", str(save), "--api_base", server.url, "--workers", "0"])
    assert code == 0
    records = read_jsonl(save)
    assert [r["status"] for r in records] == ["ok"] * 3
    assert records[0]["pred_saliency_scores"][:3] == [0.0, 3.0, 4.0]
    by_text = {r.text: r for r in server.received}
    for i, (name, _, _) in enumerate(EVAL_VIDEOS):  # 0.5 FPS: frame k is 2-second clip k
        assert len(by_text[prompts.hd_prompt(f"query {i}", "qwen2_vl")].images) == n_frames(name, 0.5)


def test_a_local_script_evaluates_a_served_model_with_api_base(server, dataset, tmp_path):
    save = tmp_path / "served.jsonl"
    code = main(qwen2_vl_7b_mr.SPEC, api_args(dataset, save, server, "--limit", "2"))
    assert code == 0
    assert {r.body["model"] for r in server.received} == {"Qwen/Qwen2-VL-7B-Instruct"}  # --model_path's name
    assert [r["status"] for r in read_jsonl(save)] == ["ok", "ok"]


def test_failed_queries_are_recorded_and_the_run_goes_on_and_a_rerun_asks_only_them(server, dataset, tmp_path):
    save = tmp_path / "pred.jsonl"
    server.respond = lambda r: status(400, "bad request") if "number 1" in r.text else answer()
    assert main(gpt4o_mr.SPEC, api_args(dataset, save, server, "--max_retries", "0")) == 0
    records = {r["id"]: r for r in read_jsonl(save)}
    failed = sorted(k for k, r in records.items() if r["status"] == "api_error")
    assert failed == ["vid0_1", "vid1_1", "vid2_1"]
    assert records["vid0_1"]["error"] == "HTTP 400: bad request" and records["vid0_1"]["response"] == ""
    metrics = json.loads(save.with_name("pred_metrics.json").read_text())
    assert metrics["usage"]["api_errors"] == 3

    server.received.clear()
    server.respond = None
    assert main(gpt4o_mr.SPEC, api_args(dataset, save, server)) == 0
    assert sorted(r.text for r in server.received) == [prompts.mr_prompt("person number 1 sits")] * 3
    assert all(r["status"] in ("ok", "missing_video") for r in read_jsonl(save))


def test_resume_after_a_kill_never_resends_an_answered_query(server, dataset, tmp_path):
    """A run killed (SIGKILL) mid-way keeps what it flushed, each answer as it arrived (the third
    request of the first batch of four never ends); the rerun asks only the rest."""
    save = tmp_path / "pred.jsonl"
    answered_before_kill = 2
    server.respond = lambda r: answer() if len(server.received) <= answered_before_kill else hang(60)
    argv = [sys.executable, str(ROOT / "eval" / "gpt4o_mr.py"),
            *api_args(dataset, save, server, "--concurrency", "4", "--workers", "0")]
    env = dict(os.environ, OPENAI_API_KEY=KEY, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(server.received) <= answered_before_kill and time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            time.sleep(0.05)
        time.sleep(0.5)  # the 3rd request hangs: the first two answers are on disk already
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # the run and its DataLoader workers, nothing else
        process.wait(timeout=10)
    flushed = read_jsonl(save)
    assert sum(r["status"] == "ok" for r in flushed) == answered_before_kill
    assert {r["status"] for r in flushed} <= {"ok", "missing_video"}
    sent_before = [(r.text, len(r.images)) for r in server.received]

    server.received.clear()
    server.respond = None
    assert main(gpt4o_mr.SPEC, api_args(dataset, save, server)) == 0
    records = read_jsonl(save)
    assert [r["id"] for r in records] == [r["id"] for r in json.loads((dataset / "test.json").read_text())]
    asked_again = {(r.text, len(r.images)) for r in server.received}
    assert len(server.received) == len(asked_again) == 9 - answered_before_kill
    assert not asked_again & set(sent_before[:answered_before_kill])
