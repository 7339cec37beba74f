"""Persona backends behind one interface (zipp.personas.backends.base.Backend), chosen by
``personas.backend``: extractive | transformers | openai | vllm."""

from __future__ import annotations

from zipp.config import ZippConfig
from zipp.personas.backends.base import Backend, BackendUnavailable, ChatBackend, ChatRequest, Generation, PersonaResult
from zipp.personas.tokens import TokenCounter

__all__ = ["Backend", "BackendUnavailable", "ChatBackend", "ChatRequest", "Generation", "PersonaResult", "make_backend"]


def make_backend(cfg: ZippConfig, counter: TokenCounter | None = None) -> Backend:
    """Construct (not set up) the configured backend."""
    from zipp.personas.tokens import tokenizer_path

    counter = counter or TokenCounter(tokenizer_path(cfg))
    name = cfg.personas.backend
    if name == "extractive":
        from zipp.personas.backends.extractive import ExtractiveBackend as cls
    elif name == "transformers":
        from zipp.personas.backends.hf import TransformersBackend as cls
    elif name == "openai":
        from zipp.personas.backends.openai import OpenAIBackend as cls
    elif name == "vllm":
        from zipp.personas.backends.vllm import VllmBackend as cls
    else:  # pragma: no cover - config validation forbids it
        raise ValueError(f"unknown personas.backend {name!r}")
    return cls(cfg, counter)
