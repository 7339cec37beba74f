"""Token counting with the configured LLM's own tokenizer (``transformers.AutoTokenizer``).

Budgets are enforced on the prompt exactly as the model will see it: the chat template applied to
the messages, then encoded. ``personas.tokenizer`` (default: ``personas.model``) may be a hub id, a
local folder, or ``local:tiny-llama`` (built under ``paths.cache``).
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import Sequence

from zipp.config import ZippConfig
from zipp.personas.untrusted import trim_partial_entity

log = logging.getLogger(__name__)

Message = dict  # {"role": str, "content": str}


def model_path(cfg: ZippConfig) -> str:
    from zipp.models.tiny_llm import resolve_model

    return resolve_model(cfg.personas.model, cfg.paths.cache)


def tokenizer_path(cfg: ZippConfig) -> str:
    from zipp.models.tiny_llm import resolve_model

    return resolve_model(cfg.personas.tokenizer or cfg.personas.model, cfg.paths.cache)


class TokenCounter:
    """Counts, truncates and renders with one tokenizer. Picklable by path (Ray ships the path)."""

    def __init__(self, path: str):
        self.path = path

    @cached_property
    def tok(self):
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(self.path)
        if not getattr(tok, "chat_template", None):
            log.warning("tokenizer %s has no chat template: prompts use a plain 'role: content' layout", self.path)
        return tok

    def __getstate__(self):
        return {"path": self.path}

    def __setstate__(self, state):
        self.path = state["path"]

    @cached_property
    def special_tokens(self) -> list[str]:
        tok = self.tok
        specials = set(getattr(tok, "all_special_tokens", []) or [])
        for t in (getattr(tok, "added_tokens_decoder", {}) or {}).values():
            if getattr(t, "special", False):
                specials.add(str(t.content) if hasattr(t, "content") else str(t))
        return sorted(specials)

    def count(self, text: str) -> int:
        return len(self.tok(text, add_special_tokens=False)["input_ids"]) if text else 0

    def count_many(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        enc = self.tok(list(texts), add_special_tokens=False)["input_ids"]
        return [len(x) for x in enc]

    def render(self, messages: Sequence[Message]) -> str:
        """The prompt string the model sees (chat template + generation prompt)."""
        tok = self.tok
        if getattr(tok, "chat_template", None):
            return tok.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "

    def encode_prompt(self, messages: Sequence[Message]) -> list[int]:
        return list(self.tok(self.render(messages), add_special_tokens=False)["input_ids"])

    def count_prompt(self, messages: Sequence[Message]) -> int:
        return len(self.encode_prompt(messages))

    def truncate(self, text: str, max_tokens: int, marker: str = "") -> str | None:
        """The longest prefix of ``text`` cut at a token boundary such that prefix + marker fits
        ``max_tokens`` by this tokenizer; None when not even one token fits."""
        if max_tokens <= 0:
            return None
        ids = self.tok(text, add_special_tokens=False)["input_ids"]
        room = max_tokens - self.count(marker)
        if room <= 0:
            return None
        n = min(len(ids), room)
        while n > 0:
            piece = self.tok.decode(ids[:n], skip_special_tokens=False, clean_up_tokenization_spaces=False)
            piece = trim_partial_entity(piece.rstrip("\ufffd")).rstrip()  # no half character / entity
            cand = piece + marker
            if piece and self.count(cand) <= max_tokens:
                return cand
            n -= 1 if n < 8 else max(1, n // 16)  # BPE is not prefix-stable: shrink and re-check
        return None

    def decode(self, ids: Sequence[int]) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=True)

    def head(self, text: str, max_tokens: int) -> str:
        """First ``max_tokens`` tokens of ``text`` (for echoing a bad reply back on a retry)."""
        ids = self.tok(text or "", add_special_tokens=False)["input_ids"]
        return text if len(ids) <= max_tokens else self.tok.decode(ids[:max_tokens], skip_special_tokens=True)
