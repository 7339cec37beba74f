"""The vllm backend in the main venv: vLLM is CUDA-only there, so the guard must say what to do; its
engine arguments come from config (the GPU run is bench/gpu_personas.py; a real CPU engine runs in
test_vllm_cpu.py, marker vllmcpu)."""

from __future__ import annotations

import importlib.util

import pytest

from zipp.personas.backends import BackendUnavailable, make_backend
from zipp.personas.backends.vllm import engine_kwargs
from zipp.personas.job import preflight

no_vllm = pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed: the guard is not reached")


@no_vllm
def test_vllm_backend_without_vllm_fails_fast_with_what_to_do(pcfg, counter):
    cfg = pcfg("personas.backend=vllm")
    with pytest.raises(BackendUnavailable, match=r"zipp\[gpu\].*personas.backend=openai"):
        make_backend(cfg, counter).setup()
    with pytest.raises(BackendUnavailable):
        preflight(cfg)  # the job stops in the driver, before any Ray work


def test_engine_arguments_come_from_config(pcfg):
    cfg = pcfg("personas.backend=vllm", "personas.token_budget=3000", "personas.max_new_tokens=200", "personas.max_retries=2",
               "personas.vllm.tensor_parallel_size=2", "personas.vllm.load_format=dummy", "personas.vllm.dtype=bfloat16",
               "personas.multimodal=true", "personas.max_images=3", "personas.vllm.max_num_seqs=64")
    kw = engine_kwargs(cfg)
    assert kw["max_model_len"] == 3000 + 3 * 200 + 64  # room for the retry turns
    assert kw["tensor_parallel_size"] == 2 and kw["load_format"] == "dummy" and kw["dtype"] == "bfloat16"
    assert kw["limit_mm_per_prompt"] == {"image": 3} and kw["max_num_seqs"] == 64
    assert kw["model"].endswith("tiny-llama") and kw["tokenizer"] == kw["model"]


def test_vllm_workers_ask_ray_for_gpus_only_where_the_cluster_has_them(pcfg):
    from zipp.personas.job import worker_gpus

    p = pcfg("personas.backend=vllm", "personas.vllm.tensor_parallel_size=2").personas
    assert worker_gpus(p, cluster_gpus=8) == 2.0  # one replica spans tp GPUs
    assert worker_gpus(p, cluster_gpus=0) == 0.0  # a CPU build (vllm-cpu): asking for a GPU would wait forever
    assert worker_gpus(pcfg("personas.backend=vllm", "personas.gpus_per_worker=0.5").personas, cluster_gpus=0) == 0.5  # explicit wins
    assert worker_gpus(pcfg("personas.backend=openai").personas, cluster_gpus=8) == 0.0
