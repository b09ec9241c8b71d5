"""Numbered frames as chat-completion requests: each frame an image part, then the text.

This is the API backend's preprocessor (it runs in DataLoader worker processes, so frames are
encoded while earlier requests are in flight). One request is one user message: every frame
in order as an `image_url` part holding a data URL (PNG, lossless by default, or JPEG), then
one text part with the exact prompt the local scripts build.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .base import PreparedBatch, Preprocessor

IMAGE_FORMATS = ("png", "jpeg")
IMAGE_DETAILS = ("low", "high", "auto")


@dataclass(frozen=True)
class ImageEncoding:
    format: str = "png"
    jpeg_quality: int = 95
    detail: str = "auto"

    def __post_init__(self):
        if self.format not in IMAGE_FORMATS:
            raise ValueError(f"image format {self.format!r}: choose one of {', '.join(IMAGE_FORMATS)}")
        if self.detail not in IMAGE_DETAILS:
            raise ValueError(f"image detail {self.detail!r}: choose one of {', '.join(IMAGE_DETAILS)}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"JPEG quality {self.jpeg_quality}: must be 1..100")

    @property
    def mime(self) -> str:
        return f"image/{self.format}"

    def encode(self, frame: np.ndarray) -> bytes:
        """One (H, W, 3) uint8 RGB frame as PNG or JPEG bytes."""
        from PIL import Image

        image = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8), mode="RGB")
        buffer = io.BytesIO()
        if self.format == "png":
            image.save(buffer, format="PNG")
        else:  # no chroma subsampling: the red digits keep their edges
            image.save(buffer, format="JPEG", quality=self.jpeg_quality, subsampling=0)
        return buffer.getvalue()

    def data_url(self, frame: np.ndarray) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.encode(frame)).decode('ascii')}"

    def describe(self) -> dict:
        out = {"image_format": self.format, "image_detail": self.detail}
        if self.format == "jpeg":
            out["jpeg_quality"] = self.jpeg_quality
        return out


@dataclass
class ApiRequest:
    """One query's user message: frames (as image parts, shared by a video's queries) then text."""

    images: list[dict]  # [{"type": "image_url", "image_url": {"url": ..., "detail": ...}}, ...]
    text: str
    sizes: list[tuple[int, int]]  # (width, height) of each frame, for the token estimate

    def messages(self) -> list[dict]:
        return [{"role": "user", "content": [*self.images, {"type": "text", "text": self.text}]}]


class ApiPreprocessor(Preprocessor):
    """Numbered frames + user text -> one ApiRequest per query (picklable, no client, no key)."""

    def __init__(self, encoding: ImageEncoding):
        self.encoding = encoding

    def image_parts(self, frames: np.ndarray) -> list[dict]:
        return [{"type": "image_url", "image_url": {"url": self.encoding.data_url(frame), "detail": self.encoding.detail}}
                for frame in frames]

    def __call__(self, videos: Sequence[np.ndarray], texts: Sequence[str], fps: float) -> PreparedBatch:
        encoded: dict[int, list[dict]] = {}  # a video's queries share one encoding (and one pickled copy)
        requests = []
        for frames, text in zip(videos, texts):
            key = id(frames)
            if key not in encoded:
                encoded[key] = self.image_parts(frames)
            sizes = [(int(frames.shape[2]), int(frames.shape[1]))] * len(frames)
            requests.append(ApiRequest(encoded[key], text, sizes))
        return PreparedBatch({"requests": requests}, list(texts))


def decode_data_url(url: str) -> tuple[str, bytes]:
    """(mime type, bytes) of a base64 data URL."""
    head, _, payload = url.partition(",")
    if not head.startswith("data:") or not head.endswith(";base64"):
        raise ValueError(f"not a base64 data URL: {url[:40]}...")
    return head[len("data:") : -len(";base64")], base64.b64decode(payload)


def abbreviate_images(body: dict) -> dict:
    """A request body with each data URL replaced by its type, size and sha256 (for --dry_run files)."""
    messages = []
    for message in body["messages"]:
        content = []
        for part in message["content"]:
            if part.get("type") == "image_url":
                mime, data = decode_data_url(part["image_url"]["url"])
                url = f"data:{mime};base64,<{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}>"
                part = {"type": "image_url", "image_url": dict(part["image_url"], url=url)}
            content.append(part)
        messages.append(dict(message, content=content))
    return dict(body, messages=messages)


def estimate_image_tokens(width: int, height: int, detail: str) -> int:
    """GPT-4o's published image rule: 85 tokens at low detail; at high detail the image is fitted in
    2048x2048, its short side brought down to 768 px, and each 512 px tile adds 170 tokens.
    'auto' is counted as high (an upper bound). Other servers count images their own way."""
    if detail == "low":
        return 85
    scale = min(1.0, 2048 / max(width, height))
    width, height = width * scale, height * scale
    scale = min(1.0, 768 / min(width, height))
    width, height = width * scale, height * scale
    return 85 + 170 * math.ceil(width / 512) * math.ceil(height / 512)


def estimate_prompt_tokens(request: ApiRequest, detail: str) -> int:
    """A rough prompt size: images by the rule above, text at about 4 characters a token."""
    images = sum(estimate_image_tokens(w, h, detail) for w, h in request.sizes)
    return images + math.ceil(len(request.text) / 4) + 7  # + the message's own framing tokens
