"""Pipeline stage: rewritten prompts -> images (``gold/generated_images`` + PNG files).

For each base prompt one shared non-personalized image, and for each (user, base prompt) one
personalized image, both with the same seed so a pair differs only by the prompt. Retry-safe: an
``image_id`` (model, prompt, seed, sampler settings) already in the table or on disk is not redone.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from zipp import lake as lk
from zipp.config import ImageGenConfig
from zipp.imagegen.diffusion import image_id, render, resolve_model
from zipp.stage import Resources, Stage, StageContext, StageResult
from zipp.tables import GOLD_GENERATED_IMAGES, GOLD_GENERATED_IMAGES_SCHEMA, GOLD_REWRITTEN_PROMPTS

log = logging.getLogger(__name__)


def pair_seed(cfg: ImageGenConfig, prompt_id: str) -> int:
    return (cfg.seed * 1_000_003 + int(prompt_id[:8], 16)) % (2**31 - 1)


def plan_images(prompts: pa.Table, cfg: ImageGenConfig, model_id: str) -> list[dict]:
    """Rows to render: one base image per prompt_id, one personalized image per ok rewrite."""
    rows: dict[str, dict] = {}
    for r in prompts.to_pylist():
        seed = pair_seed(cfg, r["prompt_id"])
        for variant, user, text in (("base", "", r["base_prompt"]), ("personalized", r["user_key"], r["rewritten"])):
            iid = image_id(model_id, text, seed, cfg)
            key = f"{variant}:{user}:{r['prompt_id']}:{iid}"
            rows.setdefault(key, {"image_id": iid, "user_key": user, "prompt_id": r["prompt_id"], "variant": variant,
                                  "prompt": text, "seed": seed, "model_id": model_id})
    return list(rows.values())


class GenerateImagesStage(Stage):
    name = "generate_images"
    resources = Resources(cpus=1, gpus=0)

    def setup(self, ctx: StageContext) -> None:
        cfg = ctx.cfg.imagegen
        self.resources = Resources(cpus=1 + cfg.actors * cfg.actor_cpus, gpus=cfg.actors * cfg.num_gpus)
        # Building the tiny local pipeline (or checking the configured one) happens once, here.
        self.model, self.model_id = resolve_model(cfg, Path(ctx.cfg.paths.cache))

    def run(self, ctx: StageContext) -> StageResult:
        from zipp.logs import progress_bar

        cfg = ctx.cfg.imagegen
        res = StageResult()
        prompts = lk.read_arrow(ctx.lake, GOLD_REWRITTEN_PROMPTS, columns=["user_key", "prompt_id", "base_prompt", "rewritten", "status"])
        res.rows_in = prompts.num_rows
        failed = pc.sum(pc.not_equal(prompts["status"], "ok")).as_py() or 0
        res.drop("rewrite_failed", failed)
        prompts = prompts.filter(pc.equal(prompts["status"], "ok"))
        wanted = plan_images(prompts, cfg, self.model_id)
        have = set()
        if lk.exists(ctx.lake, GOLD_GENERATED_IMAGES):
            t = lk.read_arrow(ctx.lake, GOLD_GENERATED_IMAGES, columns=["image_id", "user_key", "variant"])
            have = set(zip(t["image_id"].to_pylist(), t["user_key"].to_pylist(), t["variant"].to_pylist()))
        todo = [w for w in wanted if (w["image_id"], w["user_key"], w["variant"]) not in have]
        res.drop("already_generated", len(wanted) - len(todo))
        if todo:
            # one render per distinct image_id (the base image of a prompt is shared by all users)
            uniq = {w["image_id"]: w for w in todo}
            req = pa.table({"image_id": list(uniq), "prompt": [w["prompt"] for w in uniq.values()],
                            "seed": pa.array([w["seed"] for w in uniq.values()], pa.int64())})
            out_dir = Path(ctx.cfg.paths.images)
            with progress_bar("generate images", total=req.num_rows) as advance:
                done = render(ctx.runtime.ray(), req, self.model, out_dir, cfg, progress=advance)
            paths = dict(zip(done["image_id"].to_pylist(), done["path"].to_pylist(), strict=True))
            now = datetime.now(timezone.utc)
            rows = [{**w, "path": paths[w["image_id"]], "created_at": now} for w in todo]
            lk.write_arrow(ctx.lake, GOLD_GENERATED_IMAGES, pa.Table.from_pylist(rows, schema=GOLD_GENERATED_IMAGES_SCHEMA),
                           mode="append", schema=GOLD_GENERATED_IMAGES_SCHEMA)
        res.rows_out = len(todo)
        res.extra = {"model_id": self.model_id, "images_rendered": len({w["image_id"] for w in todo}),
                     "note": "random-weight model: images are not meaningful" if self.model_id.endswith("random-init") else ""}
        return res
