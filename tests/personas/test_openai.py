"""The openai backend against a loopback OpenAI-compatible server: 429/500 backoff, garbage
replies retried with the error, schema failures and HTTP errors become failed rows."""

from __future__ import annotations

from zipp.personas.backends import make_backend
from zipp.personas.evidence import Community, Snippet, UserInputs


def _user(mode: str) -> UserInputs:
    stats = dict(n_comments=5, n_submissions=1, n_image_posts=0, score_sum=10, active_months=2)
    return UserInputs(f"user_{mode}", 1, "attention", [
        Community(f"mode_{mode}", 0.7, stats, [Snippet("t1_a", "comment", "I live in Toronto and love film cameras.", 3, 1)]),
        Community("analog", 0.3, stats, [Snippet("t1_b", "comment", "Portra 400 forever.", 1, 1)]),
    ])


def test_openai_backend_retries_http_and_bad_replies(llm_server, pcfg, counter):
    cfg = pcfg("personas.backend=openai", "personas.max_retries=2", "personas.openai.backoff_s=0.01",
               "personas.openai.http_retries=3", "personas.openai.concurrency=3", "personas.token_budget=1500")
    backend = make_backend(cfg, counter)
    backend.setup()
    modes = ["ok", "flaky", "garbage", "badjson", "reject", "bodyjunk"]
    res = {r.user_key: r for r in backend.personas([_user(m) for m in modes])}

    assert res["user_ok"].status == "ok" and res["user_ok"].attempts == 1
    assert res["user_ok"].persona.demographics.location.value == "Toronto, Canada"
    assert res["user_ok"].prompt_tokens == 100 and res["user_ok"].completion_tokens == 20  # the server's usage
    # 429 then 500 were retried at the HTTP level; the garbage reply was re-asked with the error
    assert res["user_flaky"].status == "ok" and res["user_flaky"].attempts == 2
    assert res["user_bodyjunk"].status == "ok"
    assert backend.stats["http_retries"] >= 3
    retry_turns = [c["messages"] for c in llm_server.calls if c["mode"] == "flaky" and c["retry"]]
    assert retry_turns and "no JSON object" in retry_turns[0][-1]["content"]
    assert retry_turns[0][-2]["role"] == "assistant" and "lorem ipsum" in retry_turns[0][-2]["content"]
    # bounded: 1 + max_retries attempts, then failed with the reason
    assert res["user_garbage"].status == "failed"
    assert res["user_garbage"].error.startswith("invalid output after 3 attempts: the reply contains no JSON object")
    assert sum(1 for c in llm_server.calls if c["mode"] == "garbage") == 3
    assert res["user_badjson"].status == "failed" and "schema errors" in res["user_badjson"].error
    # a non-retryable HTTP error fails only that row
    assert res["user_reject"].status == "failed" and "HTTP 400" in res["user_reject"].error
    assert sum(1 for c in llm_server.calls if c["mode"] == "reject") == 1
    assert all(c["auth"] == "Bearer test-key" for c in llm_server.calls)
    # every prompt fit the budget, retries included (by the configured tokenizer)
    for c in llm_server.calls:
        assert counter.count_prompt(c["messages"]) <= 1500


def test_openai_gives_up_after_bounded_http_retries(llm_server, pcfg, counter, monkeypatch):
    monkeypatch.setenv("ZIPP_LLM_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens on the discard port
    cfg = pcfg("personas.backend=openai", "personas.openai.backoff_s=0.01", "personas.openai.http_retries=2",
               "personas.openai.timeout_s=2", "personas.token_budget=1500")
    backend = make_backend(cfg, counter)
    backend.setup()
    [r] = backend.personas([_user("ok")])
    assert r.status == "failed" and "gave up after 3 HTTP attempts" in r.error
