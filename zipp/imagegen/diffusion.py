"""Diffusion on Ray Data actors.

:class:`DiffusionGenerator` is a Ray Data callable class: ``__init__`` loads the pipeline once per
actor with ``DiffusionPipeline.from_pretrained(model)`` (a hub id on a GPU cluster, a local folder
here), ``__call__`` renders one batch of prompts with per-row seeds and writes PNGs named by
``image_id`` into the output folder. A file that already exists is not rendered again, so a rerun
after a crash only does what is missing. Without ``imagegen.model`` a tiny random-weight pipeline is
built locally (:mod:`zipp.models.tiny_sd`); its images are not meaningful.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from zipp.config import ImageGenConfig

log = logging.getLogger(__name__)

RANDOM_INIT = "random-init"


def resolve_model(cfg: ImageGenConfig, cache_dir: str | Path) -> tuple[str, str]:
    """(path or hub id to load, model_id to record)."""
    if cfg.model:
        return cfg.model, cfg.model
    from zipp.models.tiny_sd import TINY_SD_NAME, build_tiny_sd

    path = build_tiny_sd(Path(cache_dir) / "models" / TINY_SD_NAME, seed=cfg.seed)
    return str(path), f"{TINY_SD_NAME}/{RANDOM_INIT}"


def image_id(model_id: str, prompt: str, seed: int, cfg: ImageGenConfig) -> str:
    key = "\x1f".join([model_id, prompt, str(seed), str(cfg.steps), str(cfg.guidance_scale), str(cfg.height), str(cfg.width)])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class DiffusionGenerator:
    """Ray Data callable class: rows (image_id, prompt, seed) -> the same rows plus ``path``."""

    def __init__(self, model: str, out_dir: str, cfg: dict, cpu_threads: int = 1):
        import torch
        from diffusers import DiffusionPipeline

        self.cfg = ImageGenConfig.model_validate(cfg)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cpu":
            torch.set_num_threads(max(1, cpu_threads))
        dtype = getattr(torch, self.cfg.dtype) if self.device == "cuda" else torch.float32
        self.pipe = DiffusionPipeline.from_pretrained(model, dtype=dtype)
        self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)

    def __call__(self, batch: pa.Table) -> pa.Table:
        import torch

        ids = batch.column("image_id").to_pylist()
        prompts = batch.column("prompt").to_pylist()
        seeds = batch.column("seed").to_pylist()
        paths = [self.out / f"{i}.png" for i in ids]
        todo = [k for k, p in enumerate(paths) if not p.is_file()]
        if todo:
            gens = [torch.Generator(device=self.device).manual_seed(int(seeds[k])) for k in todo]
            images = self.pipe(
                [prompts[k] for k in todo], generator=gens, num_inference_steps=self.cfg.steps,
                guidance_scale=self.cfg.guidance_scale, height=self.cfg.height, width=self.cfg.width,
            ).images
            for k, im in zip(todo, images, strict=True):
                tmp = paths[k].with_suffix(".png.partial")
                im.save(tmp, format="PNG")
                tmp.replace(paths[k])  # atomic: a half-written file never looks done
        return batch.append_column("path", pa.array([str(p) for p in paths]))


def render(ray, rows: pa.Table, model: str, out_dir: str | Path, cfg: ImageGenConfig,
           progress: Callable[[int], None] | None = None) -> pa.Table:
    """Render ``rows`` (image_id, prompt, seed) on a Ray Data actor pool; returns rows + path."""
    import ray.data

    if rows.num_rows == 0:
        return rows.append_column("path", pa.array([], pa.string()))
    has_gpu = ray.cluster_resources().get("GPU", 0) > 0
    n = max(1, math.ceil(rows.num_rows / cfg.batch_size))
    blocks = [rows.slice(i * cfg.batch_size, cfg.batch_size) for i in range(n)]
    ds = ray.data.from_arrow(blocks).map_batches(
        DiffusionGenerator,
        fn_constructor_kwargs={"model": model, "out_dir": str(out_dir), "cfg": cfg.model_dump(),
                               "cpu_threads": max(1, int(cfg.actor_cpus))},
        batch_size=cfg.batch_size, batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=cfg.actors),
        num_cpus=cfg.actor_cpus, num_gpus=cfg.num_gpus if has_gpu else 0.0,
    )
    parts = []
    for b in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        parts.append(b)
        if progress:
            progress(b.num_rows)
    return pa.concat_tables(parts)
