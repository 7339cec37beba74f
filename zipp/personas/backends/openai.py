"""``openai``: any OpenAI-compatible ``/chat/completions`` endpoint (``vllm serve``, a hosted model).

Base URL and key come from the environment variables named by ``personas.openai.base_url_env`` /
``api_key_env`` (falling back to ``personas.openai.base_url``); ``personas.model`` is sent as the
model name. Requests run ``personas.openai.concurrency`` at a time per worker; 429, 5xx, timeouts,
connection errors and unreadable bodies are retried with exponential backoff (``Retry-After``
wins) up to ``http_retries`` times. Other HTTP errors fail that user's row only.
Stdlib HTTP only (no client library needed).
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from zipp.personas.backends.base import BackendUnavailable, ChatBackend, ChatRequest, Generation

log = logging.getLogger(__name__)
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class HTTPStatusError(RuntimeError):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status


class _Transient(RuntimeError):
    def __init__(self, msg: str, retry_after: float | None = None):
        super().__init__(msg)
        self.retry_after = retry_after


class OpenAIBackend(ChatBackend):
    name = "openai"

    def setup(self) -> None:
        o = self.pcfg.openai
        base = os.environ.get(o.base_url_env) or o.base_url
        if not base:
            raise BackendUnavailable(
                f"personas.backend=openai needs a base URL: set ${o.base_url_env} (or personas.openai.base_url), "
                "e.g. http://127.0.0.1:8000/v1 for `vllm serve`"
            )
        self.url = base.rstrip("/") + "/chat/completions"
        self.key = os.environ.get(o.api_key_env)
        self.stats = {"http_retries": 0}
        self._rng = random.Random(self.pcfg.seed)

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation | Exception]:
        def one(r: ChatRequest):
            try:
                return self._complete(r)
            except Exception as e:  # isolated per request
                return e

        with ThreadPoolExecutor(max_workers=self.pcfg.openai.concurrency) as pool:
            return list(pool.map(one, requests))

    def _payload_messages(self, r: ChatRequest) -> list[dict]:
        if not r.images:
            return r.messages
        msgs = [dict(m) for m in r.messages]
        # images ride with the evidence turn, in placeholder order
        msgs[1] = {"role": msgs[1]["role"], "content": [{"type": "text", "text": msgs[1]["content"]}] + [
            {"type": "image_url", "image_url": {"url": u}} for u in r.image_sources()]}
        return msgs

    def _complete(self, r: ChatRequest) -> Generation:
        o = self.pcfg.openai
        body = {
            "model": self.pcfg.model,
            "messages": self._payload_messages(r),
            "max_tokens": self.pcfg.max_new_tokens,
            "temperature": self.pcfg.temperature,
            "top_p": self.pcfg.top_p,
            "seed": self.pcfg.seed,
        }
        if o.json_mode:
            body["response_format"] = {"type": "json_object"}
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        delay = o.backoff_s
        for attempt in range(o.http_retries + 1):
            try:
                return self._post(data, headers, r)
            except _Transient as e:
                if attempt >= o.http_retries:
                    raise RuntimeError(f"gave up after {attempt + 1} HTTP attempts: {e}") from None
                wait = e.retry_after if e.retry_after is not None else delay * (1 + 0.25 * self._rng.random())
                wait = min(wait, o.backoff_max_s)
                self.stats["http_retries"] += 1
                log.debug("openai: %s; retrying in %.2fs", e, wait)
                time.sleep(wait)
                delay = min(delay * 2, o.backoff_max_s)
        raise AssertionError("unreachable")

    def _post(self, data: bytes, headers: dict, r: ChatRequest) -> Generation:
        req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.pcfg.openai.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            text = e.read().decode("utf-8", "replace") if e.fp else ""
            if e.code in RETRY_STATUS:
                ra = e.headers.get("Retry-After") if e.headers else None
                raise _Transient(f"HTTP {e.code}", float(ra) if ra and ra.replace(".", "", 1).isdigit() else None) from None
            raise HTTPStatusError(e.code, text) from None
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as e:
            raise _Transient(f"connection: {e}") from None
        try:
            obj = json.loads(raw)
            content = obj["choices"][0]["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise _Transient(f"unreadable response body: {raw[:120]!r}") from None
        usage = obj.get("usage") or {}
        pt = int(usage.get("prompt_tokens") or r.prompt_tokens)
        ct = int(usage.get("completion_tokens") or self.counter.count(content))
        return Generation(text=content, prompt_tokens=pt, completion_tokens=ct)
