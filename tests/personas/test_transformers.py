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


def test_tiny_qwen2_vl_sees_the_images_and_counts_them_as_packed(mm_lake, pcfg, vlm_dir):
    """Multimodal through the transformers backend: AutoModelForImageTextToText + AutoProcessor load
    the tiny Qwen2-VL offline; each request's images go in from their local files and the model's
    own prompt length (image tokens included) equals zipp's accounting, within the budget."""
    lake, truth = mm_lake
    budget = 1300
    cfg = pcfg(f"paths.lake={lake}", "personas.backend=transformers", f"personas.model={vlm_dir}", "personas.multimodal=true",
               "personas.max_images=3", f"personas.token_budget={budget}", "personas.max_new_tokens=16",
               "personas.max_retries=0", "personas.batch_size=4")
    from zipp.personas.tokens import TokenCounter

    src = EvidenceSource(lake, cfg.personas, resolve_plan(lake, cfg.personas), image_cache=cfg.paths.cache)
    inputs = src.load(truth.column("user_key").to_pylist())
    keys = [k for k in sorted(inputs) if inputs[k].images][:4]
    backend = make_backend(cfg, TokenCounter(vlm_dir))
    backend.setup()
    assert type(backend.model).__name__ == "Qwen2VLForConditionalGeneration" and backend.packer.images.source == "processor"
    results = backend.personas([inputs[k] for k in keys])
    assert sum(1 for r in results if r.evidence.images) >= 3
    for r in results:
        assert r.attempts == 1 and r.completion_tokens > 0
        assert r.prompt_tokens == r.evidence.prompt_tokens <= budget  # the model's count == zipp's
        assert r.status == "ok" or r.error.startswith("invalid output after 1 attempts: ")
