"""Token counting with the configured LLM's own tokenizer (``transformers.AutoTokenizer``).

Budgets are enforced on the prompt exactly as the model will see it: the chat template applied to
the messages, then encoded. ``personas.tokenizer`` (default: ``personas.model``) may be a hub id, a
local folder, or ``local:tiny-llama`` / ``local:tiny-qwen2-vl`` (built under ``paths.cache``).

Images (``personas.multimodal``) are counted by :class:`ImageCoster` with the model's own processor
when the model has one (e.g. Qwen2-VL: ``prod(image_grid_thw) // merge_size**2`` for the image's
size after the processor's resize, + the chat template's wrapper tokens); otherwise each image costs
the fixed ``personas.image_tokens``.
"""

from __future__ import annotations

import logging
import os
from functools import cached_property
from pathlib import Path
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


PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) in pixels, from the file header (no full decode)."""
    from PIL import Image

    with Image.open(path) as im:
        w, h = im.size
    return int(h), int(w)


class ImageCoster:
    """Budget cost of one image, as the configured model counts it.

    With an image processor in the model's folder (``processor_config.json`` /
    ``preprocessor_config.json``, loaded by ``AutoProcessor``): the processor's own count of
    placeholder tokens for the image's (height, width) (``_get_num_multimodal_tokens``; for
    Qwen2-VL ``prod(image_grid_thw) // merge_size**2`` after ``smart_resize``) plus the tokens the
    chat template wraps each image in, beyond the one placeholder that expands (Qwen2-VL: 2, for
    ``<|vision_start|>`` / ``<|vision_end|>``). Such a cost needs the image's pixels: an image with
    no local file costs ``None`` (the packer leaves it out: the model could not see it either).
    Without a processor: ``fallback`` (``personas.image_tokens``) per image, file or not.
    ``path`` may also be a hub id (tried only when ``try_hub``: a backend that loads the model).
    Deterministic; picklable by arguments.
    """

    def __init__(self, path: str | None, fallback: int, try_hub: bool = False):
        self.path, self.fallback, self.try_hub = path, int(fallback), try_hub

    def __getstate__(self):
        return {"path": self.path, "fallback": self.fallback, "try_hub": self.try_hub}

    def __setstate__(self, state):
        self.__init__(**state)

    @cached_property
    def processor(self):
        p = self.path
        if not p:
            return None
        if os.path.isdir(p):
            if not any(os.path.isfile(os.path.join(p, f)) for f in PROCESSOR_FILES):
                return None
        elif not self.try_hub:
            return None
        try:
            from transformers import AutoProcessor

            proc = AutoProcessor.from_pretrained(p)
        except Exception as e:  # noqa: BLE001 - any loading failure means: no processor to count with
            log.warning("no image processor loadable from %s (%s: %s): images cost personas.image_tokens=%d",
                        p, type(e).__name__, str(e)[:300], self.fallback)
            return None
        if getattr(proc, "image_processor", None) is None or not hasattr(proc, "_get_num_multimodal_tokens"):
            return None
        return proc

    @property
    def source(self) -> str:
        """``processor`` (counted per image by the model's processor) or ``config`` (fixed fallback)."""
        return "processor" if self.processor is not None else "config"

    @cached_property
    def wrapper_tokens(self) -> int:
        """Tokens the chat template adds per image besides the placeholder that the processor
        expands (measured: the template with one image part minus without, minus one)."""
        proc = self.processor
        tok = proc.tokenizer
        text = [{"type": "text", "text": "x"}]
        with_img = [{"role": "user", "content": text + [{"type": "image"}]}]
        without = [{"role": "user", "content": text}]
        template = getattr(proc, "chat_template", None) or getattr(tok, "chat_template", None)
        if not template:
            return 1  # no template: the processor's own image token only
        a = tok(tok.apply_chat_template(with_img, chat_template=template, tokenize=False), add_special_tokens=False)["input_ids"]
        b = tok(tok.apply_chat_template(without, chat_template=template, tokenize=False), add_special_tokens=False)["input_ids"]
        image_id = getattr(proc, "image_token_id", None)
        pads = sum(1 for t in a if t == image_id) if image_id is not None else 0
        return max(0, len(a) - len(b) - pads)

    def model_tokens(self, height: int, width: int) -> int:
        """Placeholder tokens the processor expands one image of (height, width) into."""
        data = self.processor._get_num_multimodal_tokens(image_sizes=[(int(height), int(width))])
        n = data["num_image_tokens"] if isinstance(data, dict) else data.num_image_tokens
        return int(n[0])

    def cost(self, image_path: str | Path | None) -> int | None:
        if self.processor is None:
            return self.fallback
        if image_path is None or not os.path.isfile(image_path):
            return None
        h, w = image_size(image_path)
        return self.model_tokens(h, w) + self.wrapper_tokens
