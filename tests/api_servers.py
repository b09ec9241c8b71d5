"""Local OpenAI-compatible servers for the API backend's tests (127.0.0.1 only).

- ChatServer: a small chat-completions server of the tests' own (http.server in a thread). It
  records every request it receives (headers and JSON body) and answers from a script of actions,
  so tests can inject 429 with Retry-After, 5xx, hangs (client timeouts) and malformed bodies.
- serve_process: `transformers serve` (the installed transformers CLI) on a free port.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import numpy as np


@dataclass
class Action:
    """What the server does with one request."""

    kind: str = "answer"  # answer | status | hang | raw
    text: str = "From Frame 1 to Frame 3"
    status: int = 200
    headers: dict = field(default_factory=dict)
    body: bytes | dict | None = None
    seconds: float = 0.0  # hang: sleep this long, then answer normally


def answer(text="From Frame 1 to Frame 3") -> Action:
    return Action("answer", text=text)


def status(code: int, message: str = "try again", headers: dict | None = None, code_name: str | None = None) -> Action:
    error = {"message": message, "type": "server_error"}
    if code_name:
        error["code"] = code_name
    return Action("status", status=code, headers=headers or {}, body={"error": error})


def hang(seconds: float) -> Action:
    return Action("hang", seconds=seconds)


def raw(body: bytes, code: int = 200, content_type: str = "application/json") -> Action:
    return Action("raw", status=code, body=body, headers={"Content-Type": content_type})


@dataclass
class Received:
    path: str
    headers: dict
    body: dict
    time: float

    @property
    def content(self) -> list[dict]:
        return self.body["messages"][0]["content"]

    @property
    def images(self) -> list[str]:
        return [part["image_url"]["url"] for part in self.content if part["type"] == "image_url"]

    @property
    def text(self) -> str:
        texts = [part["text"] for part in self.content if part["type"] == "text"]
        assert len(texts) == 1
        return texts[0]


def completion(text: str, body: dict, prompt_tokens: int) -> dict:
    return {"id": "cmpl-test", "object": "chat.completion", "created": int(time.time()), "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 7, "total_tokens": prompt_tokens + 7}}


class ChatServer:
    """Chat completions on 127.0.0.1:<free port>. `script` actions are used in order, then
    `default(received)` answers; `respond` (if set) decides every request instead."""

    def __init__(self):
        self.received: list[Received] = []
        self.script: list[Action] = []
        self.default: Callable[[Received], Action] = lambda r: answer()
        self.respond: Callable[[Received], Action] | None = None
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests being handled at once
        self.events: list[threading.Event] = []  # set when a hang is released (on close)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                payload = self.rfile.read(length)
                try:
                    body = json.loads(payload)
                except ValueError:
                    body = {"unparsable": payload[:200].decode("latin-1")}
                item = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                with server.lock:
                    server.received.append(item)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    if server.respond is not None:
                        action = server.respond(item)
                    elif server.script:
                        action = server.script.pop(0)
                    else:
                        action = server.default(item)
                try:
                    server.perform(self, action, item)
                finally:
                    with server.lock:
                        server.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def perform(self, handler: BaseHTTPRequestHandler, action: Action, item: Received) -> None:
        if action.kind == "hang":
            event = threading.Event()
            self.events.append(event)
            event.wait(action.seconds)
            action = answer()
        if action.kind == "answer":
            n_images = len(item.images) if "messages" in item.body else 0
            data = json.dumps(completion(action.text, item.body, 100 * n_images + 10)).encode()
            headers = {"Content-Type": "application/json"}
            code = 200
        elif action.kind == "status":
            data = json.dumps(action.body).encode()
            headers = {"Content-Type": "application/json", **action.headers}
            code = action.status
        else:  # raw
            data = action.body if isinstance(action.body, bytes) else json.dumps(action.body).encode()
            headers = dict(action.headers)
            code = action.status
        try:
            handler.send_response(code)
            for key, value in headers.items():
                handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:  # the client gave up (timeout test)
            pass

    def __enter__(self) -> "ChatServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for event in self.events:
            event.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_health(url: str, process: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"transformers serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"transformers serve did not answer {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


class ServeProcess:
    """`transformers serve` on 127.0.0.1:<free port>, CPU, offline; stopped on exit.

    No model is pinned: the server loads the one a request names (a local folder) on first use,
    so the server can start while the tests build that folder. `start()` returns at once,
    `wait()` until /health answers."""

    def __init__(self, log: Path):
        self.log = log
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.model: Path | None = None  # the folder the tests serve (requests name it)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "ServeProcess":
        cli = Path(sys.executable).with_name("transformers")
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        with open(self.log, "w") as handle:
            self.process = subprocess.Popen(
                [str(cli), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu",
                 "--dtype", "float32", "--log-level", "warning"],
                stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        return self

    def wait(self) -> "ServeProcess":
        try:
            wait_for_health(f"http://127.0.0.1:{self.port}/health", self.process, self.log)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # its own session: the server and nothing else
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)


def frames(n: int, size: int = 48, seed: int = 0) -> np.ndarray:
    """n distinct random RGB frames, (n, size, size, 3) uint8."""
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
