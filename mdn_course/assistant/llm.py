"""Optional: phrase answers with a language model behind an OpenAI-compatible chat-completions endpoint.

Off unless ``MDN_COURSE_LLM_URL`` is set (a base URL such as ``http://localhost:11434/v1`` for a
local Ollama, or an instructor's server); ``MDN_COURSE_LLM_MODEL`` names the model and
``MDN_COURSE_LLM_KEY`` (optional) is sent as a bearer token. ``MDN_COURSE_LLM_TIMEOUT`` (seconds,
default 20) bounds the wait.

What is sent: the question and the course passages retrieved for it, never the whole notebook.
The student's answer cell is added only when they opt in. Any failure (no connection, timeout,
HTTP error, a reply that is not the expected JSON, an empty reply or a refusal) raises
:class:`LLMUnavailable` with a one-line reason; the caller then gives the offline answer.
Only the standard library is used (``urllib``), so the option costs no dependency.
"""
from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import List, Optional, Sequence

from .corpus import Passage

__all__ = ["LLMConfig", "LLMUnavailable", "config", "complete", "build_messages", "privacy_line"]

URL_ENV, MODEL_ENV, KEY_ENV, TIMEOUT_ENV = ("MDN_COURSE_LLM_URL", "MDN_COURSE_LLM_MODEL",
                                           "MDN_COURSE_LLM_KEY", "MDN_COURSE_LLM_TIMEOUT")
MAX_PASSAGE_CHARS = 1500
SYSTEM_PROMPT = (
    "You are the teaching assistant of a short course on Mixture Density Network RNNs (the memory of a "
    "World Model). Answer the student's question in at most 150 words, using only the course passages "
    "given, and say so if they do not contain the answer. Write maths in plain text. If the student "
    "shares their exercise code, point out what is wrong in words and formulas; never write the "
    "corrected code or a complete solution.")


class LLMUnavailable(RuntimeError):
    """The language model gave no usable answer; the message is a one-line reason for the student."""


@dataclass(frozen=True)
class LLMConfig:
    url: str
    model: str
    key: Optional[str]
    timeout: float

    @property
    def endpoint(self) -> str:
        base = self.url.rstrip("/")
        return base if base.endswith("/chat/completions") else base + "/chat/completions"

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.endpoint).netloc or self.url


def config() -> Optional[LLMConfig]:
    """The endpoint from the environment, or None when ``MDN_COURSE_LLM_URL`` is unset (the default)."""
    url = os.environ.get(URL_ENV, "").strip()
    if not url:
        return None
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"{URL_ENV}={url!r} is not an http(s) URL; set it to a base URL such as "
                         "http://localhost:11434/v1, or unset it to stay offline")
    model = os.environ.get(MODEL_ENV, "").strip()
    if not model:
        raise ValueError(f"{URL_ENV} is set but {MODEL_ENV} is not; set it to the model's name "
                         f"(for example llama3.1), or unset {URL_ENV} to stay offline")
    raw_timeout = os.environ.get(TIMEOUT_ENV, "20")
    try:
        timeout = float(raw_timeout)
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV}={raw_timeout!r} is not a number of seconds") from None
    return LLMConfig(url, model, os.environ.get(KEY_ENV) or None, timeout)


def privacy_line() -> str:
    """One sentence for the panel: does anything leave this machine?"""
    cfg = config()
    if cfg is None:
        return "Offline: answers come from the course's own text, and nothing you type leaves this computer."
    return (f"Language model on: your question and the course passages found for it are sent to {cfg.host} "
            f"(model {cfg.model}); your answer cell is sent only if you tick the box.")


def build_messages(question: str, passages: Sequence[Passage], answer_cell: Optional[str] = None) -> List[dict]:
    """The chat messages: instructions, then the retrieved passages, the question, and the answer cell if opted in."""
    blocks = []
    for i, p in enumerate(passages, 1):
        body = p.text if len(p.text) <= MAX_PASSAGE_CHARS else p.text[:MAX_PASSAGE_CHARS] + " …"
        blocks.append(f"[{i}] {p.notebook}, section \"{p.section}\":\n{body}")
    user = "Course passages:\n\n" + "\n\n".join(blocks) + f"\n\nStudent's question: {question}"
    if answer_cell is not None:
        user += f"\n\nThe student's answer cell (shared at their request):\n{answer_cell}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def complete(question: str, passages: Sequence[Passage], answer_cell: Optional[str] = None,
             cfg: Optional[LLMConfig] = None) -> str:
    """Ask the configured model; return its answer text or raise :class:`LLMUnavailable`."""
    cfg = cfg or config()
    if cfg is None:
        raise LLMUnavailable(f"no language model is configured ({URL_ENV} is unset)")
    body = json.dumps({"model": cfg.model, "temperature": 0, "stream": False,
                       "messages": build_messages(question, passages, answer_cell)}).encode()
    headers = {"Content-Type": "application/json"}
    if cfg.key:
        headers["Authorization"] = f"Bearer {cfg.key}"
    request = urllib.request.Request(cfg.endpoint, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=cfg.timeout) as response:
            raw = response.read(2_000_000)
    except urllib.error.HTTPError as exc:
        raise LLMUnavailable(f"the language model at {cfg.host} answered HTTP {exc.code}") from None
    except (socket.timeout, TimeoutError):
        raise LLMUnavailable(f"the language model at {cfg.host} did not answer within {cfg.timeout:g} s") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise LLMUnavailable(f"the language model at {cfg.host} did not answer within {cfg.timeout:g} s") from None
        raise LLMUnavailable(f"cannot reach the language model at {cfg.host} ({reason})") from None
    return _read_reply(raw, cfg.host)


def _read_reply(raw: bytes, host: str) -> str:
    try:
        reply = json.loads(raw)
        choice = reply["choices"][0]
        message = choice["message"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise LLMUnavailable(f"the reply from {host} was not a chat-completions answer") from None
    if not isinstance(message, dict):
        raise LLMUnavailable(f"the reply from {host} was not a chat-completions answer")
    if message.get("refusal") or choice.get("finish_reason") == "content_filter":
        raise LLMUnavailable(f"the language model at {host} declined to answer")
    content = message.get("content")
    if not isinstance(content, str) or not content.strip():
        raise LLMUnavailable(f"the language model at {host} sent an empty answer")
    return content.strip()
