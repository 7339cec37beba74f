"""``transformers``: local generation (CPU or GPU) with ``AutoModelForCausalLM``, or, for a model
that takes images (its config has a ``vision_config``, e.g. Qwen2-VL), with
``AutoModelForImageTextToText`` + the model's ``AutoProcessor``.

The model loads from ``personas.model`` exactly as on a cluster (hub id or folder); tests and the
offline demo point it at ``local:tiny-llama`` / ``local:tiny-qwen2-vl``, random-weight models whose
replies are NOT meaningful (they are mostly malformed, which exercises the retry / failed path for real).

Images (``personas.multimodal``): each request's images ride with the evidence turn as image parts
after its text, in placeholder order, read from their local files (the same pixels the budget was
counted on); the processor expands each into the model's image tokens, and ``prompt_tokens`` is the
length of what the model was given (its own count, image tokens included).
"""

from __future__ import annotations

import logging
from typing import Sequence

from zipp.personas.backends.base import ChatBackend, ChatRequest, Generation
from zipp.personas.tokens import TokenCounter, model_path

log = logging.getLogger(__name__)


def takes_images(path: str) -> bool:
    from transformers import AutoConfig

    try:
        return getattr(AutoConfig.from_pretrained(path), "vision_config", None) is not None
    except Exception:  # noqa: BLE001 - unknown config: treat as text-only
        return False


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
        self.processor = None
        if takes_images(path):
            from transformers import AutoModelForImageTextToText, AutoProcessor

            self.processor = AutoProcessor.from_pretrained(path)
            self.model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype).to(device).eval()
        else:
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

    def _encode_text(self, chunk: Sequence[ChatRequest]) -> dict:
        import torch

        tok = self.model_tok.tok
        if any(r.images for r in chunk) and not self._warned_images:
            log.warning("transformers backend: %s takes no images: images stay as placeholders", self.model_name)
            self._warned_images = True
        ids = [self.model_tok.encode_prompt(r.messages) for r in chunk]
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        width = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for j, x in enumerate(ids):  # left padding
            input_ids[j, width - len(x):] = torch.tensor(x, dtype=torch.long)
            mask[j, width - len(x):] = 1
        return {"input_ids": input_ids, "attention_mask": mask}

    def _encode_mm(self, chunk: Sequence[ChatRequest]) -> dict:
        """Chat template with image parts, then the processor (which expands each image placeholder)."""
        from PIL import Image

        proc = self.processor
        tok = proc.tokenizer
        template = getattr(proc, "chat_template", None) or tok.chat_template
        texts, images = [], []
        for r in chunk:
            msgs = [dict(m) for m in r.messages]
            if r.images:
                files = r.image_files or [None] * len(r.images)
                missing = [u for u, f in zip(r.images, files) if not f]
                if missing:
                    raise ValueError(f"images without a local file cannot be shown to a local model: {missing[:3]}")
                msgs[1] = {"role": msgs[1]["role"], "content": [{"type": "text", "text": msgs[1]["content"]}]
                           + [{"type": "image"} for _ in files]}
                for f in files:
                    with Image.open(f) as im:
                        images.append(im.convert("RGB"))
            texts.append(tok.apply_chat_template(msgs, chat_template=template, tokenize=False, add_generation_prompt=True))
        tok.padding_side = "left"
        return dict(proc(text=texts, images=images or None, return_tensors="pt", padding=True))

    def _generate(self, chunk: Sequence[ChatRequest]) -> list[Generation]:
        import torch

        enc = self._encode_mm(chunk) if self.processor is not None else self._encode_text(chunk)
        tok = self.processor.tokenizer if self.processor is not None else self.model_tok.tok
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        sample = self.pcfg.temperature > 0
        kwargs = dict(max_new_tokens=self.pcfg.max_new_tokens, do_sample=sample, pad_token_id=pad)
        if sample:
            kwargs.update(temperature=self.pcfg.temperature, top_p=self.pcfg.top_p)
        if tok.eos_token_id is not None:
            kwargs["eos_token_id"] = tok.eos_token_id
        torch.manual_seed(self.pcfg.seed)
        width = enc["input_ids"].shape[1]
        with torch.inference_mode():
            gen = self.model.generate(**{k: v.to(self.device) for k, v in enc.items()}, **kwargs)
        new = gen[:, width:].cpu()
        prompt_lens = enc["attention_mask"].sum(dim=1).tolist()  # the model's own count (image tokens included)
        results = []
        for j, row in enumerate(new.tolist()):
            n = len(row)
            for k, t in enumerate(row):
                if t == tok.eos_token_id or (t == pad and pad != tok.eos_token_id):
                    n = k + (1 if t == tok.eos_token_id else 0)
                    break
            text = tok.decode(row[:n], skip_special_tokens=True)
            results.append(Generation(text=text, prompt_tokens=int(prompt_lens[j]), completion_tokens=n))
        return results
