"""open_clip loading and L2-normalised image/text embeddings, shared by the image stage, CLIPScore /
CMMD evaluation and the ImageAlign head.

The model always loads through ``open_clip.create_model_and_transforms(model, pretrained=...)``:
``ViT-L-14``/``openai`` on clusters, the locally registered ``zipp-tiny-clip`` with random weights
here. Random weights are drawn from a fixed seed so every process (each Ray actor, a rerun, the
evaluation) builds the *same* model; their ``model_id`` ends in ``/random-init`` so nothing
downstream mistakes their outputs for meaningful ones.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from zipp.config import ImagesConfig

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

RANDOM_INIT = "random-init"


def model_id(model: str, pretrained: str | None, seed: int = 0) -> str:
    """``ViT-L-14/openai``; ``zipp-tiny-clip/random-init`` when there are no trained weights
    (``random-init-seed<N>`` for another init seed, since that is another model)."""
    if pretrained:
        return f"{model}/{pretrained}"
    return f"{model}/{RANDOM_INIT}" + (f"-seed{seed}" if seed else "")


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Clip:
    """One loaded CLIP model with its preprocessing and tokenizer. Build it once per process
    (a Ray actor's ``__init__``, :func:`get_clip`), then call :meth:`embed_images` /
    :meth:`embed_texts` as often as needed."""

    def __init__(self, model: str, pretrained: str | None = None, device: str | None = None, seed: int = 0,
                 batch_size: int = 32):
        import open_clip
        import torch

        from zipp.models import tiny_clip

        tiny_clip.register()  # makes the local tiny config resolvable in this process; no-op otherwise
        self.model_name, self.pretrained, self.batch_size = model, pretrained, batch_size
        self.model_id = model_id(model, pretrained, seed)
        self.device = device or default_device()
        if pretrained:
            net, _, preprocess = open_clip.create_model_and_transforms(model, pretrained=pretrained, device=self.device)
        else:
            # random init happens on the CPU generator; fork it so callers' RNG state is untouched
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                net, _, preprocess = open_clip.create_model_and_transforms(model, pretrained=None, device="cpu")
            net = net.to(self.device)
        self.net = net.eval()
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(model)
        self.dim = int(open_clip.get_model_config(model)["embed_dim"])

    def embed_images(self, images: Sequence[Image]) -> np.ndarray:
        """(N, dim) float32, each row L2-normalised. Images are converted to the model's input
        with open_clip's own preprocessing (mode conversion included)."""
        import torch

        if len(images) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        with torch.inference_mode():
            for i in range(0, len(images), self.batch_size):
                x = torch.stack([self.preprocess(im) for im in images[i:i + self.batch_size]]).to(self.device)
                out.append(self._normed(self.net.encode_image(x)))
        return np.concatenate(out)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(N, dim) float32, each row L2-normalised (open_clip tokenizer, truncated to its context)."""
        import torch

        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                tokens = self.tokenizer(list(texts[i:i + self.batch_size])).to(self.device)
                out.append(self._normed(self.net.encode_text(tokens)))
        return np.concatenate(out)

    @staticmethod
    def _normed(x) -> np.ndarray:
        import torch.nn.functional as F

        return F.normalize(x.float(), dim=-1).cpu().numpy().astype(np.float32, copy=False)


_lock = threading.Lock()


@lru_cache(maxsize=4)
def _cached(model: str, pretrained: str | None, device: str, seed: int, batch_size: int) -> Clip:
    return Clip(model, pretrained, device=device, seed=seed, batch_size=batch_size)


def get_clip(cfg: ImagesConfig | None = None, device: str | None = None) -> Clip:
    """The process-wide :class:`Clip` for ``images.model``/``images.pretrained`` (loaded once)."""
    cfg = cfg or ImagesConfig()
    with _lock:
        return _cached(cfg.model, cfg.pretrained, device or default_device(), cfg.seed, cfg.batch_size)


def embed_images(images: Sequence[Image], cfg: ImagesConfig | None = None) -> np.ndarray:
    """L2-normalised CLIP embeddings of PIL images with the configured model: (N, dim) float32."""
    return get_clip(cfg).embed_images(images)


def embed_texts(texts: Sequence[str], cfg: ImagesConfig | None = None) -> np.ndarray:
    """L2-normalised CLIP embeddings of texts with the configured model: (N, dim) float32."""
    return get_clip(cfg).embed_texts(texts)
