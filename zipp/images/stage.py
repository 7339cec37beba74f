"""Pipeline stage: ``gold/user_images`` -> fetch -> CLIP on Ray Data -> ``gold/image_embeddings``.

One output row per distinct (url, user_id). Idempotent and incremental: a (url, user) that already
has ``status = ok`` with the current ``model_id`` is left alone; missing, failed, or other-model rows
are redone (failed URLs are retried on every run). Bytes already in the content-addressed cache (an
ok row from another model) are re-embedded without downloading again. Changed rows are upserted with
a Delta MERGE per shard; a URL failing again with the same status is not rewritten, so a rerun with nothing
new commits nothing. Work is done and committed in shards of ``images.commit_every`` URLs, so a
crash loses at most the shard in flight (its downloaded bytes stay in the cache).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from zipp import lake as lk
from zipp.config import ImagesConfig
from zipp.images.fetch import NOT_IMAGE, OK, STATUSES, Fetcher, ImageCache, url_rewriter
from zipp.stage import Resources, Stage, StageContext, StageResult
from zipp.tables import (
    GOLD_IMAGE_EMBEDDINGS,
    GOLD_IMAGE_EMBEDDINGS_SCHEMA,
    GOLD_USER_IMAGES,
)

log = logging.getLogger(__name__)

_KEYS = ["url", "user_id"]


def stage_resources(cfg: ImagesConfig) -> Resources:
    """What the stage asks for at most: its actor pool (+1 CPU for the fetching driver)."""
    return Resources(cpus=1 + cfg.actors * cfg.actor_cpus, gpus=cfg.actors * cfg.num_gpus, memory_gb=cfg.memory_gb)


@dataclass
class Plan:
    todo: pa.Table  # distinct (url, user_id, user_key) to (re)do
    known: dict[str, str]  # url -> sha256 of an earlier ok download (reusable from the cache)
    failed: dict[tuple[str, int], str]  # (url, user_id) -> earlier failure status with this model


def plan(pairs: pa.Table, previous: pa.Table | None, current_model_id: str) -> Plan:
    """What a run has to do, given ``pairs`` (distinct url, user_id, user_key from gold/user_images)
    and ``previous`` (the existing output table, or None)."""
    if previous is None or previous.num_rows == 0:
        return Plan(pairs, {}, {})
    is_ok = pc.equal(previous["status"], OK)
    same_model = pc.equal(previous["model_id"], current_model_id)
    done = previous.filter(pc.and_(is_ok, same_model)).select(_KEYS)
    todo = pairs.join(done, keys=_KEYS, join_type="left anti") if done.num_rows else pairs
    ok_rows = previous.filter(pc.and_(is_ok, pc.is_valid(previous["sha256"])))
    known = dict(zip(ok_rows["url"].to_pylist(), ok_rows["sha256"].to_pylist(), strict=True))
    bad = previous.filter(pc.and_(pc.invert(is_ok), same_model))
    failed = {(u, i): st for u, i, st in zip(bad["url"].to_pylist(), bad["user_id"].to_pylist(), bad["status"].to_pylist(), strict=True)}
    return Plan(todo, known, failed)


class EmbedImagesStage(Stage):
    name = "embed_images"
    resources = stage_resources(ImagesConfig())

    def __init__(self, cfg: ImagesConfig | None = None):
        if cfg is not None:
            self.resources = stage_resources(cfg)

    def setup(self, ctx: StageContext) -> None:
        # The model loads in each Ray actor (ClipEmbedder.__init__), not here: the driver only fetches.
        self.resources = stage_resources(ctx.cfg.images)

    def run(self, ctx: StageContext) -> StageResult:
        from zipp.images.clip import model_id
        from zipp.logs import progress_bar

        cfg = ctx.cfg.images
        mid = model_id(cfg.model, cfg.pretrained, cfg.seed)
        src = lk.read_arrow(ctx.lake, GOLD_USER_IMAGES, columns=["url", "user_id", "user_key"])
        src = src.filter(pc.and_(pc.is_valid(src["url"]), pc.not_equal(src["url"], "")))
        pairs = src.group_by(["url", "user_id", "user_key"], use_threads=False).aggregate([])
        previous = (lk.read_arrow(ctx.lake, GOLD_IMAGE_EMBEDDINGS, columns=["url", "user_id", "sha256", "status", "model_id"])
                    if lk.exists(ctx.lake, GOLD_IMAGE_EMBEDDINGS) else None)
        p = plan(pairs, previous, mid)
        todo = p.todo
        result = StageResult(rows_in=pairs.num_rows, extra={"model_id": mid, "up_to_date": pairs.num_rows - todo.num_rows})
        if todo.num_rows == 0:
            result.extra.update(written=False, table_version=lk.version(ctx.lake, GOLD_IMAGE_EMBEDDINGS))
            return result

        # 1-3 per shard of URLs, each shard committed before the next starts: a run that dies after
        # hours of downloading keeps every committed shard, and its rerun plans only what is left
        cache = ImageCache(ctx.cfg.paths.cache)
        urls = list(dict.fromkeys(todo["url"].to_pylist()))
        shards = [urls[i:i + cfg.commit_every] for i in range(0, len(urls), cfg.commit_every)]
        log.info("images: %d (url, user) rows, %d up to date; %d URLs to do in %d shard(s) of <= %d",
                 pairs.num_rows, pairs.num_rows - todo.num_rows, len(urls), len(shards), cfg.commit_every)
        totals = {"rows_out": 0, "fetched": 0, "embedded": 0, "row_status": {st: 0 for st in STATUSES},
                  "url_status": {st: 0 for st in STATUSES}}
        with url_rewriter(cfg) as rewrite, progress_bar("fetch + embed images", total=len(urls)) as advance:
            fetcher = Fetcher(cfg, cache, rewrite=rewrite)
            for n, shard in enumerate(shards):
                rows = todo.filter(pc.is_in(todo["url"], value_set=pa.array(shard, pa.string())))
                self._shard(ctx, rows, shard, p, cache, fetcher, mid, totals)
                advance(len(shard))
                if os.environ.get("ZIPP_IMAGES_FAIL_AFTER_SHARD") == str(n):  # failpoint for the resume test
                    raise RuntimeError(f"injected failure after committing image shard {n}")

        for st in STATUSES:
            if st != OK:
                result.drop(st, totals["row_status"][st])
        result.rows_out = totals["rows_out"]
        result.extra.update(
            written=totals["rows_out"] > 0, unchanged_failures=todo.num_rows - totals["rows_out"], urls=len(urls),
            urls_fetched=totals["fetched"], urls_from_cache=len(urls) - totals["fetched"], shards=len(shards),
            url_status=totals["url_status"], images_embedded=totals["embedded"],
            table_version=lk.version(ctx.lake, GOLD_IMAGE_EMBEDDINGS),
        )
        return result

    @staticmethod
    def _shard(ctx: StageContext, todo: pa.Table, urls: list[str], p: Plan, cache: ImageCache,
               fetcher: Fetcher, mid: str, totals: dict) -> None:
        """Fetch, embed and commit the rows of one shard of URLs."""
        cfg = ctx.cfg.images
        # 1. fetch what the cache cannot answer
        status: dict[str, tuple[str, str | None]] = {u: (OK, p.known[u]) for u in urls if cache.has(p.known.get(u))}
        to_fetch = [u for u in urls if u not in status]
        if to_fetch:
            fetched = fetcher.fetch_all(to_fetch)
            status.update({u: (r.status, r.sha256) for u, r in fetched.items()})
        totals["fetched"] += len(to_fetch)

        # 2. embed each distinct ok image once, on Ray Data actors
        shas = sorted({sha for st, sha in status.values() if st == OK and sha})
        if shas:
            items = pa.table({"sha256": shas, "path": [str(cache.path(s)) for s in shas]})
            from zipp.images.embed import embed_files

            emb = embed_files(ctx.runtime.ray(), items, cfg)
        else:
            from zipp.images.embed import EMBED_SCHEMA

            emb = EMBED_SCHEMA.empty_table()
        emb = emb.filter(pc.is_valid(emb["embedding"]))
        embedded = set(emb["sha256"].to_pylist())
        totals["embedded"] += len(embedded)

        # 3. one row per (url, user); an image that fetched but would not embed becomes not_image
        row_status, row_sha = [], []
        for u in todo["url"].to_pylist():
            st, sha = status[u]
            if st == OK and sha not in embedded:
                st, sha = NOT_IMAGE, None
            row_status.append(st)
            row_sha.append(sha if st == OK else None)
        sha_arr = pa.array(row_sha, pa.string())
        idx = pc.index_in(sha_arr, value_set=emb["sha256"])
        out = pa.table({
            "url": todo["url"], "user_id": todo["user_id"], "user_key": todo["user_key"],
            "sha256": sha_arr, "status": pa.array(row_status, pa.string()),
            "embedding": emb["embedding"].take(idx), "model_id": pa.array([mid] * todo.num_rows, pa.string()),
        }).cast(GOLD_IMAGE_EMBEDDINGS_SCHEMA)
        # a URL failing again the same way is no news: rewriting its row would only add a version
        keys = zip(todo["url"].to_pylist(), todo["user_id"].to_pylist(), row_status, strict=True)
        changed = pa.array([p.failed.get((u, i)) != st for u, i, st in keys], pa.bool_())
        out = out.filter(changed)
        if out.num_rows:
            upsert(ctx.lake, out)
        totals["rows_out"] += out.num_rows
        for st in row_status:
            totals["row_status"][st] += 1
        for st, _ in status.values():
            totals["url_status"][st] += 1


def upsert(lake, rows: pa.Table) -> None:
    """Create ``gold/image_embeddings`` or MERGE ``rows`` into it on (url, user_id)."""
    if not lk.exists(lake, GOLD_IMAGE_EMBEDDINGS):
        lk.write_arrow(lake, GOLD_IMAGE_EMBEDDINGS, rows, mode="overwrite", schema=GOLD_IMAGE_EMBEDDINGS_SCHEMA)
        return
    from deltalake import DeltaTable

    (
        DeltaTable(lk.table_uri(lake, GOLD_IMAGE_EMBEDDINGS))
        .merge(rows, predicate="t.url = s.url AND t.user_id = s.user_id", source_alias="s", target_alias="t")
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )
