"""CLIP embedding of cached images on Ray Data actors.

Input rows are ``(sha256, path)`` of files in the content-addressed cache (``paths.cache`` is a
shared filesystem on clusters, so actors read the bytes themselves and only paths travel through
the object store). ``map_batches`` runs :class:`ClipEmbedder`, a callable class that loads the model
once per actor, on an autoscaling ``ActorPoolStrategy`` of up to ``images.actors`` actors, each with
``images.num_gpus`` GPUs when the Ray cluster has any.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from zipp.config import ImagesConfig

log = logging.getLogger(__name__)

EMBED_SCHEMA = pa.schema([("sha256", pa.string()), ("embedding", pa.list_(pa.float32()))])


def embeddings_to_arrow(emb: np.ndarray | None, n: int, ok: np.ndarray | None = None) -> pa.Array:
    """(k, dim) array for the rows where ``ok`` -> list<float32> column of length n (null elsewhere)."""
    dim = emb.shape[1] if emb is not None and emb.ndim == 2 else 0
    if ok is None:
        ok = np.ones(n, dtype=bool)
    values = pa.array(np.ascontiguousarray(emb, dtype=np.float32).reshape(-1) if emb is not None else np.zeros(0, np.float32))
    offsets = np.zeros(n + 1, dtype=np.int32)
    offsets[1:] = np.cumsum(ok.astype(np.int32) * dim)
    mask = pa.array(~ok)
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=mask)


class ClipEmbedder:
    """Ray Data callable class: ``__init__`` loads CLIP once per actor; ``__call__`` embeds one
    batch of ``(sha256, path)`` rows into ``(sha256, embedding)``, embedding null where the file is
    missing or does not decode."""

    def __init__(self, model: str, pretrained: str | None, seed: int, batch_size: int, cpu_threads: int = 1,
                 device: str | None = None):
        import torch

        from zipp.images.clip import Clip, default_device

        device = device or default_device()
        if device == "cpu":
            torch.set_num_threads(max(1, cpu_threads))
        self.clip = Clip(model, pretrained, device=device, seed=seed, batch_size=batch_size)

    def __call__(self, batch: pa.Table) -> pa.Table:
        from PIL import Image

        images, ok = [], np.zeros(batch.num_rows, dtype=bool)
        for i, path in enumerate(batch.column("path").to_pylist()):
            try:
                with Image.open(path) as im:
                    im.load()
                    images.append(im.convert("RGB"))
                ok[i] = True
            except Exception as e:  # noqa: BLE001 - one bad file must not fail the batch
                log.warning("images: cannot decode %s: %s", path, e)
        emb = self.clip.embed_images(images) if images else None
        return pa.table({"sha256": batch.column("sha256"), "embedding": embeddings_to_arrow(emb, batch.num_rows, ok)},
                        schema=EMBED_SCHEMA)


def embed_files(ray, items: pa.Table, cfg: ImagesConfig, progress: Callable[[int], None] | None = None) -> pa.Table:
    """Embed ``items`` (columns sha256, path) on Ray Data; returns ``(sha256, embedding)`` in any order.
    ``ray`` is the connected module (``Runtime.ray()``)."""
    from ray.data import ActorPoolStrategy, from_arrow

    if items.num_rows == 0:
        return EMBED_SCHEMA.empty_table()
    has_gpu = ray.cluster_resources().get("GPU", 0) > 0
    num_gpus = cfg.num_gpus if has_gpu else 0.0
    if cfg.num_gpus and not has_gpu:
        log.info("images: no GPU in the Ray cluster; embedding on CPU")
    # one block per model batch so the actor pool can spread the work
    n_blocks = max(1, math.ceil(items.num_rows / cfg.batch_size))
    blocks = [items.slice(i * cfg.batch_size, cfg.batch_size) for i in range(n_blocks)]
    ds = from_arrow(blocks).map_batches(
        ClipEmbedder,
        fn_constructor_kwargs={"model": cfg.model, "pretrained": cfg.pretrained, "seed": cfg.seed,
                               "batch_size": cfg.batch_size, "cpu_threads": max(1, int(cfg.actor_cpus)),
                               "device": "cuda" if num_gpus else "cpu"},
        batch_size=cfg.batch_size,
        batch_format="pyarrow",
        compute=ActorPoolStrategy(min_size=1, max_size=cfg.actors),
        num_cpus=cfg.actor_cpus,
        num_gpus=num_gpus,
    )
    parts = []
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        parts.append(batch)
        if progress:
            progress(batch.num_rows)
    return pa.concat_tables(parts).cast(EMBED_SCHEMA) if parts else EMBED_SCHEMA.empty_table()
