"""Persona fixtures: a planted gold lake built in code, a shared tiny-LLM cache, a loopback
OpenAI-compatible server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from zipp.personas.schema import example_persona


@pytest.fixture(scope="session")
def llm_cache(tmp_path_factory):
    """One tiny random-weight Llama for the whole session (built on first use)."""
    return tmp_path_factory.mktemp("llm_cache")


@pytest.fixture
def pcfg(make_config, llm_cache):
    """make_config with the shared model cache; pass key=value overrides."""

    def _make(*overrides: str):
        return make_config(f"paths.cache={llm_cache}", *overrides)

    return _make


@pytest.fixture(scope="session")
def counter(llm_cache):
    from zipp.models.tiny_llm import build_tiny_llm
    from zipp.personas.tokens import TokenCounter

    return TokenCounter(str(build_tiny_llm(llm_cache / "models" / "tiny-llama")))


@pytest.fixture(scope="session")
def vlm_dir(llm_cache) -> str:
    """The tiny random-weight Qwen2-VL (zipp.models.tiny_vlm), built once per session."""
    from zipp.models.tiny_vlm import build_tiny_vlm

    return str(build_tiny_vlm(llm_cache / "models" / "tiny-qwen2-vl"))


@pytest.fixture
def mm_lake(tmp_path, llm_cache):
    """(lake path, truth table) for 40 planted users whose images exist as PNGs of several sizes in
    the image cache under ``llm_cache`` (= ``paths.cache`` of ``pcfg``)."""
    from zipp.personas.synthetic import build_lake

    lake = tmp_path / "lake"
    truth = build_lake(lake, n_users=40, seed=1, image_cache=llm_cache)
    return lake, truth


@pytest.fixture
def planted_lake(tmp_path):
    """(lake path, truth table) for 40 planted users."""
    from zipp.personas.synthetic import build_lake

    lake = tmp_path / "lake"
    truth = build_lake(lake, n_users=40, seed=1)
    return lake, truth


def persona_reply(text: str = "I'm a nurse in Toronto and I shoot film on weekends.") -> str:
    p = example_persona()
    p["persona_text"] = text
    return "Here you go:\n```json\n" + json.dumps(p) + "\n```"


class ScriptedLLM(BaseHTTPRequestHandler):
    """POST /v1/chat/completions. The evidence names a mode (a subreddit ``mode_<x>``):
    ok -> a valid persona; flaky -> 429 (Retry-After 0) then 500 then garbage then valid;
    garbage -> always text that is not JSON; badjson -> JSON that fails the schema; reject -> HTTP 400.
    Any request may also be answered with an unreadable body once per ``mode_bodyjunk`` prompt."""

    calls: list = []
    lock = threading.Lock()
    seen: dict = {}

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(self, code: int, body: bytes, headers: dict | None = None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        req = json.loads(self.rfile.read(n))
        text = json.dumps(req["messages"])
        mode = next((m for m in ("flaky", "garbage", "badjson", "reject", "bodyjunk", "ok") if f"mode_{m}" in text), "ok")
        is_retry = len(req["messages"]) > 2
        with self.lock:
            ScriptedLLM.calls.append({"mode": mode, "retry": is_retry, "messages": req["messages"], "auth": self.headers.get("Authorization")})
            k = (mode, is_retry)
            seen = ScriptedLLM.seen[k] = ScriptedLLM.seen.get(k, 0) + 1
        if mode == "reject":
            return self._send(400, b'{"error": "bad request"}')
        if mode == "flaky" and not is_retry and seen == 1:
            return self._send(429, b"slow down", {"Retry-After": "0"})
        if mode == "flaky" and not is_retry and seen == 2:
            return self._send(500, b"oops")
        if mode == "bodyjunk" and seen == 1:
            return self._send(200, b"<html>proxy error</html>")
        if mode == "garbage" or (mode == "flaky" and not is_retry):
            content = "lorem ipsum, not a persona at all"
        elif mode == "badjson":
            content = json.dumps({"demographics": {}, "interests": []})
        else:
            content = persona_reply()
        body = {"choices": [{"message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20}}
        return self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


@pytest.fixture
def llm_server(monkeypatch):
    """A loopback OpenAI-compatible server; sets the base URL / key env vars the config names."""
    ScriptedLLM.calls = []
    ScriptedLLM.seen = {}
    srv = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedLLM)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    ScriptedLLM.url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    monkeypatch.setenv("ZIPP_LLM_BASE_URL", ScriptedLLM.url)
    monkeypatch.setenv("ZIPP_LLM_API_KEY", "test-key")
    yield ScriptedLLM
    srv.shutdown()
    srv.server_close()
