"""The transformers backend end to end on a tiny random-weight Llama (outputs NOT meaningful):
the real from_pretrained loading path, real generation, and rows that are schema-valid or
explicitly failed with the reason."""

from __future__ import annotations

from zipp.personas.backends import make_backend
from zipp.personas.evidence import EvidenceSource, resolve_plan
from zipp.personas.schema import Persona


def test_tiny_llama_rows_are_valid_or_explicitly_failed(planted_lake, pcfg, counter):
    lake, truth = planted_lake
    cfg = pcfg(f"paths.lake={lake}", "personas.backend=transformers", "personas.token_budget=1200",
               "personas.max_new_tokens=24", "personas.max_retries=1", "personas.temperature=1.0", "personas.batch_size=4")
    keys = truth.column("user_key").to_pylist()[:4]
    src = EvidenceSource(lake, cfg.personas, resolve_plan(lake, cfg.personas))
    inputs = src.load(keys)
    backend = make_backend(cfg, counter)
    backend.setup()
    assert type(backend.model).__name__ == "LlamaForCausalLM"
    results = backend.personas([inputs[k] for k in keys])
    assert [r.user_key for r in results] == keys
    for r in results:
        assert r.completion_tokens > 0 and r.prompt_tokens > 0
        assert r.evidence.prompt_tokens <= 1200  # the last (retry) prompt fit too
        if r.status == "ok":
            Persona.model_validate(r.persona.model_dump())
        else:
            assert r.status == "failed" and r.error.startswith("invalid output after 2 attempts: ")
            assert r.attempts == 2 and r.persona is None
