"""``transformers``: local generation (CPU or GPU) with ``AutoModelForCausalLM``.

The model loads from ``personas.model`` exactly as on a cluster (hub id or folder); tests and the
offline demo point it at ``local:tiny-llama``, a random-weight model whose replies are NOT meaningful
(they are mostly malformed, which exercises the retry / failed path for real).
"""

from __future__ import annotations

import logging
from typing import Sequence

from zipp.personas.backends.base import ChatBackend, ChatRequest, Generation
from zipp.personas.tokens import TokenCounter, model_path

log = logging.getLogger(__name__)


class TransformersBackend(ChatBackend):
    name = "transformers"

    def setup(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        path = model_path(self.cfg)
        # the model's own tokenizer encodes the prompt (the budget counter may be another one)
        self.model_tok = self.counter if self.counter.path == path else TokenCounter(path)
        device = self.pcfg.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = self.pcfg.dtype if self.pcfg.dtype != "auto" else ("auto" if device != "cpu" else torch.float32)
        if isinstance(dtype, str) and dtype != "auto":
            dtype = getattr(torch, dtype)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
        self.device = device
        self._warned_images = False

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation | Exception]:
        out: list[Generation | Exception] = []
        bs = self.pcfg.batch_size
        for i in range(0, len(requests), bs):
            chunk = requests[i: i + bs]
            try:
                out.extend(self._generate(chunk))
            except Exception as e:  # a failing chunk fails its rows, not the job
                log.warning("transformers generate failed for %d requests: %s", len(chunk), e)
                out.extend([e] * len(chunk))
        return out

    def _generate(self, chunk: Sequence[ChatRequest]) -> list[Generation]:
        import torch

        tok = self.model_tok.tok
        if any(r.images for r in chunk) and not self._warned_images:
            log.warning("transformers backend is text-only here: images stay as placeholders")
            self._warned_images = True
        ids = [self.model_tok.encode_prompt(r.messages) for r in chunk]
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        width = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for j, x in enumerate(ids):  # left padding
            input_ids[j, width - len(x):] = torch.tensor(x, dtype=torch.long)
            mask[j, width - len(x):] = 1
        sample = self.pcfg.temperature > 0
        kwargs = dict(max_new_tokens=self.pcfg.max_new_tokens, do_sample=sample, pad_token_id=pad)
        if sample:
            kwargs.update(temperature=self.pcfg.temperature, top_p=self.pcfg.top_p)
        if tok.eos_token_id is not None:
            kwargs["eos_token_id"] = tok.eos_token_id
        torch.manual_seed(self.pcfg.seed)
        with torch.inference_mode():
            gen = self.model.generate(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device), **kwargs)
        new = gen[:, width:].cpu()
        results = []
        for j, row in enumerate(new.tolist()):
            n = len(row)
            for k, t in enumerate(row):
                if t == tok.eos_token_id or (t == pad and pad != tok.eos_token_id):
                    n = k + (1 if t == tok.eos_token_id else 0)
                    break
            text = tok.decode(row[:n], skip_special_tokens=True)
            results.append(Generation(text=text, prompt_tokens=len(ids[j]), completion_tokens=n))
        return results
