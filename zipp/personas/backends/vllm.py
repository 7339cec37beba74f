"""``vllm``: offline batch generation with ``vllm.LLM`` held by Ray Data actors (one replica per
actor, ``personas.workers`` replicas, ``personas.vllm.tensor_parallel_size`` GPUs each).

vLLM's PyPI wheel is CUDA-only and pins its own torch, so it lives in the ``gpu`` extra / GPU image;
where it is missing, ``setup()`` raises :class:`BackendUnavailable` with what to do. Text prompts are
encoded with the same chat template the budget was counted with and sent as token ids, so the
budget the packer enforced is exactly what the engine sees. Multimodal requests go through
``LLM.chat`` with ``image_url`` parts (the model must take images, e.g. Qwen2-VL).
"""

from __future__ import annotations

import logging
from typing import Sequence

from zipp.personas.backends.base import BackendUnavailable, ChatBackend, ChatRequest, Generation
from zipp.personas.tokens import TokenCounter, model_path, tokenizer_path

log = logging.getLogger(__name__)


def import_vllm():
    try:
        import vllm  # noqa: F401
    except ImportError as e:
        raise BackendUnavailable(
            "personas.backend=vllm needs the vllm package, which is CUDA-only on PyPI and pins its own torch: "
            "run it in the GPU image (`pip install 'zipp[gpu]'`), or use personas.backend=openai against a "
            f"`vllm serve` endpoint, or personas.backend=transformers. ({e})"
        ) from None
    return vllm


def engine_kwargs(cfg) -> dict:
    """vllm.LLM(...) arguments from config (shared with bench/gpu_personas.py)."""
    p, v = cfg.personas, cfg.personas.vllm
    kw = dict(
        model=model_path(cfg), tokenizer=tokenizer_path(cfg), tensor_parallel_size=v.tensor_parallel_size,
        dtype=v.dtype, gpu_memory_utilization=v.gpu_memory_utilization, seed=p.seed,
        max_model_len=v.max_model_len or (p.token_budget + (p.max_retries + 1) * p.max_new_tokens + 64),
        load_format=v.load_format, enforce_eager=v.enforce_eager,
    )
    if v.max_num_seqs:
        kw["max_num_seqs"] = v.max_num_seqs
    if p.multimodal:
        kw["limit_mm_per_prompt"] = {"image": max(1, p.max_images)}
    return kw


def sampling_params(cfg):
    vllm = import_vllm()
    p = cfg.personas
    return vllm.SamplingParams(
        max_tokens=p.max_new_tokens, temperature=p.temperature, top_p=p.top_p, seed=p.seed,
        ignore_eos=p.vllm.ignore_eos,
    )


class VllmBackend(ChatBackend):
    name = "vllm"

    def setup(self) -> None:
        vllm = import_vllm()
        kw = engine_kwargs(self.cfg)
        log.info("vllm: loading %s (tp=%d, load_format=%s)", kw["model"], kw["tensor_parallel_size"], kw["load_format"])
        self.llm = vllm.LLM(**kw)
        self.sp = sampling_params(self.cfg)
        self.model_tok = self.counter if self.counter.path == kw["tokenizer"] else TokenCounter(kw["tokenizer"])

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation | Exception]:
        out: list[Generation | Exception | None] = [None] * len(requests)
        text_idx = [i for i, r in enumerate(requests) if not r.images]
        mm_idx = [i for i, r in enumerate(requests) if r.images]
        try:
            if text_idx:
                prompts = [{"prompt_token_ids": self.model_tok.encode_prompt(requests[i].messages)} for i in text_idx]
                for i, o in zip(text_idx, self.llm.generate(prompts, self.sp, use_tqdm=False)):
                    out[i] = self._gen(o)
            if mm_idx:
                convs = [self._mm_messages(requests[i]) for i in mm_idx]
                for i, o in zip(mm_idx, self.llm.chat(convs, self.sp, use_tqdm=False)):
                    out[i] = self._gen(o)
        except Exception as e:  # engine failure: every row of this batch fails with the reason
            log.warning("vllm generate failed: %s", e)
            return [e] * len(requests)
        return out  # type: ignore[return-value]

    @staticmethod
    def _gen(o) -> Generation:
        c = o.outputs[0]
        return Generation(text=c.text or "", prompt_tokens=len(o.prompt_token_ids or []), completion_tokens=len(c.token_ids))

    @staticmethod
    def _mm_messages(r: ChatRequest) -> list[dict]:
        msgs = [dict(m) for m in r.messages]
        msgs[1] = {"role": msgs[1]["role"], "content": [{"type": "text", "text": msgs[1]["content"]}] + [
            {"type": "image_url", "image_url": {"url": u}} for u in r.image_sources()]}
        return msgs
