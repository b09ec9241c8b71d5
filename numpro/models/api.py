"""The API backend: any model behind an OpenAI-compatible chat-completions endpoint.

GPT-4o (the paper's GPT-4o rows, eval/gpt4o_mr.py and eval/gpt4o_hd.py) and any server that
speaks the same protocol (vLLM, SGLang, LMDeploy, `transformers serve`, Azure OpenAI's v1
endpoint) through the official `openai` client. The frames and prompts are the local scripts'
own: the runner decodes and stamps the frames, the preprocessor (api_images.py) turns each query
into one user message of image parts followed by the text, and `generate` sends a batch's
requests concurrently.

Greedy settings: temperature 0, max_tokens = the script's max_new_tokens, and a seed when one is
given. Failed requests are retried with exponential backoff on 429, 5xx, timeouts, connection
errors and malformed responses, honouring Retry-After; after the last retry the query gets the
status `api_error` with the server's message and the run goes on. The API key is read from an
environment variable at load time, handed to the client and nowhere else: it is not in the run
record, the records, the dry-run files or any message (every error text is scrubbed of it).
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import json
import math
import os
import queue
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..argtypes import nonnegative_int, positive_float, positive_int
from .api_images import (IMAGE_DETAILS, IMAGE_FORMATS, ApiPreprocessor, ApiRequest, ImageEncoding,
                         abbreviate_images, estimate_prompt_tokens)
from ..cli_args import flag_names
from ..jsonio import write_text
from .base import Answer, PreparedBatch, VideoLanguageModel

OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
API_ERROR = "api_error"
DRY_RUN = "dry_run"
MAX_ERROR_CHARS = 600


# ----- command line -----------------------------------------------------------------------------

def _flag(name: str) -> list[str]:
    return flag_names(f"--{name}")


def add_arguments(parser: argparse.ArgumentParser, *, api_only: bool) -> argparse._ArgumentGroup:
    """The "API backend" flags. `api_only` scripts (GPT-4o) always use the API; the others use it
    when --api_base is given, and load --model_path locally otherwise."""
    group = parser.add_argument_group(
        "API backend",
        "OpenAI-compatible chat completions: every numbered frame is sent as an image, in order, then the prompt."
        + ("" if api_only else " Given --api_base, the model is not loaded here; the server answers."))
    base_default = (os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL) if api_only else None
    group.add_argument(*_flag("api_base"), dest="api_base", default=base_default, metavar="URL",
                       help="base URL of the API, e.g. http://localhost:8000/v1"
                       + ("; default $OPENAI_BASE_URL, else OpenAI's: %(default)s" if api_only
                          else "; unset: the local model runs"))
    group.add_argument(*_flag("api_model"), dest="api_model", default=DEFAULT_MODEL if api_only else None, metavar="NAME",
                       help="model name the server serves" + ("" if api_only else "; unset: --model_path"))
    group.add_argument(*_flag("api_key_env"), dest="api_key_env", default=DEFAULT_KEY_ENV, metavar="VAR",
                       help="environment variable holding the API key (never recorded; local servers need none)")
    group.add_argument("--concurrency", type=positive_int, default=4,
                       help="requests in flight at once (also the batch size of API runs)")
    group.add_argument(*_flag("image_format"), dest="image_format", choices=IMAGE_FORMATS, default="png",
                       help="how frames travel: png is lossless (the exact numbered frames), jpeg is smaller")
    group.add_argument(*_flag("jpeg_quality"), dest="jpeg_quality", type=positive_int, default=95,
                       help="JPEG quality 1..100 (with --image_format jpeg)")
    group.add_argument(*_flag("image_detail"), dest="image_detail", choices=IMAGE_DETAILS, default="auto",
                       help="OpenAI's image detail setting sent with each frame (other servers may ignore it)")
    group.add_argument("--seed", type=nonnegative_int, default=None, help="sent with each request when given")
    group.add_argument(*_flag("max_retries"), dest="max_retries", type=nonnegative_int, default=6,
                       help="retries of a request after 429, 5xx, timeouts, connection errors or malformed answers")
    group.add_argument(*_flag("request_timeout"), dest="request_timeout", type=positive_float, default=300.0,
                       metavar="SECONDS", help="timeout of one request")
    group.add_argument(*_flag("price_per_mtok_in"), dest="price_per_mtok_in", type=float, default=None,
                       metavar="USD", help="price per million prompt tokens, for the cost estimate in the summary")
    group.add_argument(*_flag("price_per_mtok_out"), dest="price_per_mtok_out", type=float, default=None,
                       metavar="USD", help="price per million completion tokens, for the cost estimate")
    group.add_argument(*_flag("dry_run"), dest="dry_run", type=Path, default=None, metavar="DIR",
                       help="send nothing: write each request (images as size + sha256) to DIR/requests/ and "
                            "summarise the image and token counts (with an estimated cost when prices are given)")
    return group


def enabled(args: argparse.Namespace) -> bool:
    """True when the run goes through an API (--api_base given or defaulted)."""
    return bool(getattr(args, "api_base", None))


class ApiConfigError(ValueError):
    """Flags that cannot work (one line, naming the flag; the key itself is never shown)."""


def validate(args: argparse.Namespace) -> None:
    """Stop with one line on flags that cannot work, before any request is built."""
    if not enabled(args):
        return
    if not model_name(args):
        raise ApiConfigError("--api_model is required with --api_base (the model name the server serves)")
    if urlsplit(args.api_base).scheme not in ("http", "https"):
        raise ApiConfigError(f"--api_base {redact_url(args.api_base)!r}: expected an http(s) URL such as "
                             "http://localhost:8000/v1")
    if not 1 <= args.jpeg_quality <= 100:
        raise ApiConfigError(f"--jpeg_quality {args.jpeg_quality}: must be 1..100")
    for name in ("price_per_mtok_in", "price_per_mtok_out"):
        value = getattr(args, name)
        if value is not None and not (value >= 0 and math.isfinite(value)):
            raise ApiConfigError(f"--{name} {value}: must be 0 or more")
    if args.dry_run is None and needs_key(args.api_base) and not os.environ.get(args.api_key_env):
        raise ApiConfigError(f"${args.api_key_env} is not set: export your API key in it (or name another "
                             "variable with --api_key_env); --dry_run DIR shows the requests without one")


def model_name(args: argparse.Namespace) -> str | None:
    """--api_model, else --model_path (vLLM and transformers serve name a model by its path or hub id)."""
    return getattr(args, "api_model", None) or getattr(args, "model_path", None)


def needs_key(base_url: str) -> bool:
    """OpenAI's own endpoints refuse requests without a key; self-hosted servers accept any."""
    return (urlsplit(base_url).hostname or "").endswith("openai.com")


def settings_from_args(args: argparse.Namespace) -> "ApiSettings":
    validate(args)
    return ApiSettings(
        base_url=args.api_base,
        model=model_name(args),
        key_env=args.api_key_env,
        concurrency=args.concurrency,
        encoding=ImageEncoding(args.image_format, args.jpeg_quality, args.image_detail),
        seed=args.seed,
        max_retries=args.max_retries,
        request_timeout=args.request_timeout,
        dry_run=args.dry_run,
    )


def describe(args: argparse.Namespace) -> dict:
    """For the run record. `request`: what changes the answers (model, image encoding, seed,
    temperature); `transport`: where and how requests go (may differ when a run resumes).
    The key is never here, only the name of its variable."""
    return settings_from_args(args).describe()


def load(args: argparse.Namespace) -> "ApiModel":
    return ApiModel(settings_from_args(args))


# ----- settings and the model -------------------------------------------------------------------

_SECRET_QUERY_WORDS = ("key", "token", "secret", "sig", "password")


def redact_url(url: str) -> str:
    """The URL without user:password and without the values of key-like query parameters."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if ":" in netloc:  # IPv6 literal
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    if parts.username or parts.password:
        netloc = "***@" + netloc
    query = [(k, "***" if any(w in k.lower() for w in _SECRET_QUERY_WORDS) else v)
             for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="*"), ""))


@dataclass
class ApiSettings:
    base_url: str
    model: str
    key_env: str = DEFAULT_KEY_ENV
    concurrency: int = 4
    encoding: ImageEncoding = field(default_factory=ImageEncoding)
    seed: int | None = None
    max_retries: int = 6
    request_timeout: float = 300.0
    dry_run: Path | None = None
    backoff: float = 1.0  # first retry waits about this long, then doubles (with jitter) ...
    max_backoff: float = 60.0  # ... up to this
    max_retry_after: float = 600.0  # a server's Retry-After is honoured up to this many seconds

    def describe(self) -> dict:
        request = {"model": self.model, "temperature": 0, **self.encoding.describe(), "seed": self.seed,
                   "messages": "one user message: every frame as an image_url part, in order, then the prompt"}
        transport = {"base_url": redact_url(self.base_url), "key_env": self.key_env, "concurrency": self.concurrency,
                     "max_retries": self.max_retries, "request_timeout": self.request_timeout,
                     "client": f"openai {_openai_version()}", "dry_run": self.dry_run is not None}
        return {"request": request, "transport": transport}


def _openai_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("openai")
    except metadata.PackageNotFoundError:
        return None


class MalformedResponse(Exception):
    """A 2xx answer that is not a chat completion with a message."""


def _read_key(settings: ApiSettings) -> str:
    key = os.environ.get(settings.key_env, "")
    if key or settings.dry_run is not None:
        return key
    if needs_key(settings.base_url):
        raise ApiConfigError(f"${settings.key_env} is not set: export your API key in it "
                             "(or name another variable with --api_key_env)")
    return "EMPTY"  # self-hosted servers (vLLM, SGLang, transformers serve) accept any key


class ApiModel(VideoLanguageModel):
    family = "api"

    def __init__(self, settings: ApiSettings, *, log=None):
        self.settings = settings
        self.preprocessor = ApiPreprocessor(settings.encoding)
        key = _read_key(settings)
        self._secrets = tuple(s for s in (key,) if len(s) >= 4 and s != "EMPTY")
        self._log = log or _log
        self._client = None
        if settings.dry_run is None:
            import openai

            # retries are ours (bounded, logged, Retry-After honoured), so the client makes one attempt
            self._client = openai.OpenAI(api_key=key, base_url=settings.base_url, max_retries=0,
                                         timeout=settings.request_timeout)
        self._closing = threading.Event()

    def __repr__(self) -> str:
        return f"ApiModel(model={self.settings.model!r}, base_url={redact_url(self.settings.base_url)!r})"

    # what is sent
    def request_body(self, request: ApiRequest, max_new_tokens: int) -> dict:
        body = {"model": self.settings.model, "messages": request.messages(), "temperature": 0,
                "max_tokens": max_new_tokens}
        if self.settings.seed is not None:
            body["seed"] = self.settings.seed
        return body

    def generate(self, batch: PreparedBatch, max_new_tokens: int) -> list[Answer]:
        answers: list[Answer | None] = [None] * len(batch.tensors["requests"])
        for index, answer in self.generate_each(batch, max_new_tokens):
            answers[index] = answer
        return answers

    def generate_each(self, batch: PreparedBatch, max_new_tokens: int) -> Iterator[tuple[int, Answer]]:
        """(request index, answer) as each answer arrives, so the runner flushes it at once."""
        requests: Sequence[ApiRequest] = batch.tensors["requests"]
        if self.settings.dry_run is not None:
            yield from ((i, self._dry_run(request, max_new_tokens)) for i, request in enumerate(requests))
            return
        yield from self._concurrently(requests, max_new_tokens)

    def _concurrently(self, requests: Sequence[ApiRequest], max_new_tokens: int) -> Iterator[tuple[int, Answer]]:
        """At most `concurrency` requests in flight, on daemon threads: Ctrl-C stops the run at once
        instead of waiting for open requests (and their retries) to end."""
        results: queue.SimpleQueue = queue.SimpleQueue()

        def work(index: int, request: ApiRequest) -> None:
            try:
                results.put((index, self._ask(request, max_new_tokens), None))
            except BaseException as err:  # handed to the caller's thread
                results.put((index, None, err))

        pending = list(enumerate(requests))[::-1]
        running = 0
        try:
            while pending or running:
                while pending and running < self.settings.concurrency:
                    threading.Thread(target=work, args=pending.pop(), daemon=True, name="api-request").start()
                    running += 1
                index, answer, err = results.get()
                running -= 1
                if err is not None:
                    raise err
                yield index, answer
        except GeneratorExit:  # the caller stopped reading: nothing to tear down for later batches
            raise
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop: no new attempts, waiting retries end, open connections are closed."""
        self._closing.set()
        if self._client is not None:
            self._client.close()

    # sending, with retries
    def _ask(self, request: ApiRequest, max_new_tokens: int) -> Answer:
        body = self.request_body(request, max_new_tokens)
        attempt = 0
        while not self._closing.is_set():
            try:
                return self._answer(self._client.chat.completions.create(**body))
            except Exception as err:  # noqa: BLE001 (classified below; anything else is a bug and re-raised)
                retry, message, wait = self._classify(err)
                if message is None:
                    raise
            message = self.scrub(message)
            if not retry or attempt >= self.settings.max_retries:
                tries = f" (after {attempt + 1} attempts)" if attempt else ""
                return Answer(None, API_ERROR, message + tries)
            if wait is None:
                wait = min(self.settings.backoff * 2 ** attempt, self.settings.max_backoff) * (1 - 0.25 * random.random())
            attempt += 1
            if self._closing.is_set():
                break
            self._log(f"API request failed: {message}; retry {attempt} of {self.settings.max_retries} in {wait:.1f} s")
            self._closing.wait(wait)
        return Answer(None, API_ERROR, "interrupted before an answer came")

    def _answer(self, completion: Any) -> Answer:
        choices = getattr(completion, "choices", None)
        if isinstance(completion, str):  # the client hands back a body that is not JSON as text
            raise MalformedResponse(f"not JSON: {' '.join(completion.split())[:200]!r}")
        if not choices or getattr(choices[0], "message", None) is None:
            raise MalformedResponse("a chat completion without choices or message")
        choice = choices[0]
        message = choice.message
        usage = getattr(completion, "usage", None)
        extra: dict[str, Any] = {
            "usage": None if usage is None else {"prompt_tokens": usage.prompt_tokens,
                                                 "completion_tokens": usage.completion_tokens},
            "finish_reason": choice.finish_reason,
            "served_model": getattr(completion, "model", None),
        }
        refusal = getattr(message, "refusal", None)
        if refusal:
            extra["refusal"] = refusal
        return Answer(message.content or "", "ok", None, extra)

    def _classify(self, err: Exception) -> tuple[bool, str | None, float | None]:
        """(retry?, message, server-requested wait) for a failed request; message None: not an API failure."""
        import openai

        if isinstance(err, MalformedResponse):
            return True, f"malformed response: {err}", None
        if isinstance(err, openai.APITimeoutError):
            return True, f"request timed out after {self.settings.request_timeout:g} s", None
        if isinstance(err, openai.APIConnectionError):
            cause = err.__cause__ or err.__context__
            return True, f"connection error: {cause or err}", None
        if isinstance(err, openai.APIStatusError):
            status = err.status_code
            text = _server_message(err.body) or err.message
            retry = status in (408, 409, 429) or status >= 500
            if status == 429 and isinstance(err.body, dict) and err.body.get("code") == "insufficient_quota":
                retry = False  # the account is out of credit: waiting does not help
            wait = _retry_after(err.response.headers, self.settings.max_retry_after) if retry else None
            return retry, f"HTTP {status}: {text}", wait
        if isinstance(err, (openai.APIResponseValidationError, ValueError)):  # incl. a body that is not JSON
            return True, f"malformed response: {type(err).__name__}: {err}", None
        return False, None, None

    def scrub(self, text: str) -> str:
        """Any text with the key removed (a server may echo what it received)."""
        for secret in self._secrets:
            text = text.replace(secret, "[key hidden]")
        return text[:MAX_ERROR_CHARS] + ("..." if len(text) > MAX_ERROR_CHARS else "")

    # --dry_run
    def _dry_run(self, request: ApiRequest, max_new_tokens: int) -> Answer:
        body = abbreviate_images(self.request_body(request, max_new_tokens))
        text = json.dumps(body, ensure_ascii=False, indent=1)
        name = f"requests/{hashlib.sha256(text.encode()).hexdigest()[:20]}.json"
        path = Path(self.settings.dry_run) / name
        if not path.is_file():
            write_text(path, text + "\n")
        estimate = {"prompt_tokens": estimate_prompt_tokens(request, self.settings.encoding.detail),
                    "completion_tokens_max": max_new_tokens, "images": len(request.images)}
        return Answer(None, DRY_RUN, None, {"request_file": name, "usage_estimate": estimate})


def _server_message(body: Any) -> str | None:
    """The server's own words from an error body ({"error": {"message": ...}} or {"detail": ...})."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            for key in ("message", "detail", "msg"):
                if inner.get(key):
                    value = inner[key]
                    return value if isinstance(value, str) else json.dumps(value)
        elif isinstance(inner, str):
            return inner
        return json.dumps(body)[:MAX_ERROR_CHARS]
    if isinstance(body, str) and body.strip():
        return " ".join(body.split())
    return None


def _retry_after(headers, cap: float) -> float | None:
    """Seconds the server asks us to wait (retry-after-ms, Retry-After seconds or HTTP date), capped."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            parsed = email.utils.parsedate_tz(value)
            if parsed is None:
                continue
            seconds = email.utils.mktime_tz(parsed) - time.time()
        if math.isfinite(seconds):
            return min(max(seconds, 0.0), cap)
    return None


def _log(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


# ----- the summary ------------------------------------------------------------------------------

def usage_summary(records: Sequence[dict], price_in: float | None = None,
                  price_out: float | None = None) -> tuple[str, dict]:
    """Token totals from the records (and a cost estimate when prices are given): a printed line and
    the dict the metrics file carries. Dry-run records give the estimated bill instead."""
    answered = [r for r in records if r.get("status") == "ok"]
    usages = [r["usage"] for r in answered if isinstance(r.get("usage"), dict)]
    prompt = sum(int(u.get("prompt_tokens") or 0) for u in usages)
    completion = sum(int(u.get("completion_tokens") or 0) for u in usages)
    priced = price_in is not None or price_out is not None
    pin, pout = price_in or 0.0, price_out or 0.0
    out: dict[str, Any] = {"queries_with_usage": len(usages), "prompt_tokens": prompt, "completion_tokens": completion}
    if len(usages) < len(answered):
        out["answered_without_usage"] = len(answered) - len(usages)
    errors = sum(r.get("status") == API_ERROR for r in records)
    if errors:
        out["api_errors"] = errors
    parts = [f"API usage: {prompt:,} prompt + {completion:,} completion tokens over {len(usages)} answered queries"]
    if priced:
        out.update(price_per_mtok_in=price_in, price_per_mtok_out=price_out,
                   cost_estimate=round(prompt / 1e6 * pin + completion / 1e6 * pout, 4))
        parts.append(f"about ${out['cost_estimate']:,.2f}")
    if errors:
        parts.append(f"{errors} failed with {API_ERROR}")

    estimates = [r["usage_estimate"] for r in records if r.get("status") == DRY_RUN and isinstance(r.get("usage_estimate"), dict)]
    if estimates:
        est_prompt = sum(int(e.get("prompt_tokens") or 0) for e in estimates)
        est_completion = sum(int(e.get("completion_tokens_max") or 0) for e in estimates)
        images = sum(int(e.get("images") or 0) for e in estimates)
        dry = {"requests": len(estimates), "images": images, "prompt_tokens_estimate": est_prompt,
               "completion_tokens_max": est_completion,
               "rule": "GPT-4o's image-token rule (auto counted as high), text at 4 characters a token"}
        line = (f"dry run: {len(estimates)} requests, {images:,} images, about {est_prompt:,} prompt tokens "
                f"and at most {est_completion:,} completion tokens")
        if priced:
            dry["cost_estimate_max"] = round(est_prompt / 1e6 * pin + est_completion / 1e6 * pout, 4)
            line += f", at most about ${dry['cost_estimate_max']:,.2f}"
        out["dry_run"] = dry
        parts = [line] if not usages else parts + [line]
    return "; ".join(parts), out
