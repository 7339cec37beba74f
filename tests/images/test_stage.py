"""gold/user_images -> fetch -> Ray Data CLIP actors -> gold/image_embeddings, on a real local Ray
cluster and real Delta tables. Tiny random-weight CLIP: embeddings are not meaningful."""

import shutil

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from zipp.images.embed import embed_files
from zipp.images.fetch import ImageCache
from zipp.images.stage import EmbedImagesStage
from zipp.lake import read_arrow, version
from zipp.runtime import Runtime
from zipp.stage import StageContext, run_stage
from zipp.tables import GOLD_IMAGE_EMBEDDINGS, GOLD_IMAGE_EMBEDDINGS_SCHEMA

pytestmark = pytest.mark.ray


def _run(cfg, tmp_path, name="run"):
    ctx = StageContext(cfg=cfg, run_dir=tmp_path / "runs" / name, runtime=Runtime(cfg.runtime))
    return run_stage(EmbedImagesStage(cfg.images), ctx)


def _table(cfg):
    t = read_arrow(cfg.paths.lake, GOLD_IMAGE_EMBEDDINGS)
    assert t.schema == GOLD_IMAGE_EMBEDDINGS_SCHEMA
    return {(r["url"], r["user_id"]): r for r in t.to_pylist()}


def test_embed_files_on_ray_data_actors(ray_cluster, make_config, tmp_path, images):
    cfg = make_config("images.batch_size=2").images
    cache = ImageCache(tmp_path / "cache")
    shas = [cache.put(b) for b in images.values()]
    (tmp_path / "bad").write_bytes(b"not an image")
    items = pa.table({"sha256": shas + ["bad"], "path": [str(cache.path(s)) for s in shas] + [str(tmp_path / "bad")]})
    out = {r["sha256"]: r["embedding"] for r in embed_files(ray_cluster, items, cfg).to_pylist()}
    assert set(out) == set(shas) | {"bad"}
    assert out["bad"] is None  # an undecodable file gives a null, not a failed batch
    emb = np.array([out[s] for s in shas], dtype=np.float32)
    assert emb.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # the actors built the same seeded model as this process
    from PIL import Image

    from zipp.images.clip import get_clip

    local = get_clip(cfg).embed_images([Image.open(cache.path(s)) for s in shas])
    np.testing.assert_allclose(emb, local, atol=1e-5)


def test_stage_writes_one_row_per_url_and_user_and_is_idempotent(ray_cluster, make_config, tmp_path, image_server, fast_fetch, user_images):
    cfg = make_config(*fast_fetch, "images.batch_size=2")
    u = image_server.url
    user_images(cfg.paths.lake, [
        (1, u("/img/red.png")), (1, u("/img/blue.jpg")), (1, u("/img/red.png")),  # a repeated (url, user) is one row
        (2, u("/img/red.png")),  # the same URL for another user: fetched once, two rows
        (2, u("/img/red-copy.png")),  # other URL, identical bytes
        (3, u("/img/green.png")),
    ])
    res = _run(cfg, tmp_path)
    assert (res.rows_in, res.rows_out, res.drops) == (5, 5, {})
    assert res.extra["url_status"]["ok"] == 4 and res.extra["images_embedded"] == 3  # 4 URLs, 3 distinct images
    assert image_server.hits["/img/red.png"] == 1
    rows = _table(cfg)
    assert len(rows) == 5
    assert {r["status"] for r in rows.values()} == {"ok"}
    assert {r["model_id"] for r in rows.values()} == {"zipp-tiny-clip/random-init"}
    emb = np.array([r["embedding"] for r in rows.values()], dtype=np.float32)
    assert emb.shape == (5, 32)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    red1, red2, copy = rows[(u("/img/red.png"), 1)], rows[(u("/img/red.png"), 2)], rows[(u("/img/red-copy.png"), 2)]
    assert red1["sha256"] == copy["sha256"] and red1["embedding"] == red2["embedding"] == copy["embedding"]
    assert red1["user_key"] == "key0001" and red2["user_key"] == "key0002"
    v0 = version(cfg.paths.lake, GOLD_IMAGE_EMBEDDINGS)

    # nothing new: no download, no commit
    res = _run(cfg, tmp_path, "again")
    assert (res.rows_out, res.extra["written"], res.extra["up_to_date"]) == (0, False, 5)
    assert version(cfg.paths.lake, GOLD_IMAGE_EMBEDDINGS) == v0
    assert sum(image_server.hits.values()) == 4

    # a new image: only it is fetched, one MERGE commit
    user_images(cfg.paths.lake, [(4, u("/img/blue.jpg")), (5, u("/flaky.png"))], mode="append")
    res = _run(cfg, tmp_path, "new")
    assert (res.rows_in, res.rows_out, res.extra["urls_fetched"], res.extra["urls_from_cache"]) == (7, 2, 1, 1)
    assert image_server.hits["/img/blue.jpg"] == 1  # a known URL for a new user comes from the cache
    assert version(cfg.paths.lake, GOLD_IMAGE_EMBEDDINGS) == v0 + 1
    rows = _table(cfg)
    assert len(rows) == 7 and rows[(u("/flaky.png"), 5)]["status"] == "ok"



def test_another_model_reembeds_from_the_cache_without_downloading(ray_cluster, make_config, tmp_path, image_server, fast_fetch, user_images):
    cfg = make_config(*fast_fetch)
    u = image_server.url
    user_images(cfg.paths.lake, [(1, u("/img/red.png")), (2, u("/img/blue.jpg")), (3, u("/missing.png"))])
    first = _run(cfg, tmp_path)
    assert first.rows_out == 3 and first.drops == {"http_error": 1}
    before = _table(cfg)
    hits = dict(image_server.hits)

    other = make_config(*fast_fetch, "images.seed=1")  # another random init is another model
    res = _run(other, tmp_path, "seed1")
    assert (res.rows_out, res.extra["up_to_date"], res.extra["urls_from_cache"], res.extra["urls_fetched"]) == (3, 0, 2, 1)
    assert image_server.hits["/img/red.png"] == hits["/img/red.png"]  # bytes came from the cache
    assert image_server.hits["/missing.png"] == hits["/missing.png"] + 1  # the failure is retried
    rows = _table(cfg)
    assert {r["model_id"] for r in rows.values()} == {"zipp-tiny-clip/random-init-seed1"}
    red = (u("/img/red.png"), 1)
    assert rows[red]["sha256"] == before[red]["sha256"] and rows[red]["embedding"] != before[red]["embedding"]


def test_failed_urls_are_recorded_and_retried_on_rerun(ray_cluster, make_config, tmp_path, image_server, fast_fetch, user_images, images):
    cfg = make_config(*fast_fetch)
    u = image_server.url
    bad = {"/missing.png": "http_error", "/slow.png": "timeout", "/page.html": "not_image",
           "/garbage.png": "not_image", "/big.png": "too_large"}
    user_images(cfg.paths.lake, [(1, u("/img/red.png"))] + [(2, u(p)) for p in bad])
    res = _run(cfg, tmp_path)
    assert res.rows_out == 6
    assert res.drops == {"http_error": 1, "timeout": 1, "not_image": 2, "too_large": 1}
    rows = _table(cfg)
    for p, st in bad.items():
        r = rows[(u(p), 2)]
        assert (r["status"], r["embedding"], r["sha256"]) == (st, None, None)
    assert rows[(u("/img/red.png"), 1)]["status"] == "ok"
    v0 = version(cfg.paths.lake, GOLD_IMAGE_EMBEDDINGS)

    # failures are retried on every run, but the same failure again is not rewritten: no commit
    before = dict(image_server.hits)
    res = _run(cfg, tmp_path, "again")
    assert (res.rows_out, res.extra["urls_fetched"], res.extra["unchanged_failures"]) == (0, 5, 5)
    assert image_server.hits["/missing.png"] == before["/missing.png"] + 1
    assert image_server.hits["/img/red.png"] == before["/img/red.png"]  # ok rows are not refetched
    assert version(cfg.paths.lake, GOLD_IMAGE_EMBEDDINGS) == v0

    # the site comes back: the next run fixes that row, in one commit
    image_server.routes["/missing.png"] = images["green"]
    res = _run(cfg, tmp_path, "fixed")
    assert (res.rows_out, res.extra["up_to_date"], res.extra["urls_fetched"]) == (1, 1, 5)
    assert res.drops == {"timeout": 1, "not_image": 2, "too_large": 1}
    assert version(cfg.paths.lake, GOLD_IMAGE_EMBEDDINGS) == v0 + 1
    rows = _table(cfg)
    assert len(rows) == 6 and rows[(u("/missing.png"), 2)]["status"] == "ok"
    assert len(rows[(u("/missing.png"), 2)]["embedding"]) == 32


def test_work_is_committed_per_shard_and_a_crashed_run_resumes_where_it_stopped(
        ray_cluster, make_config, tmp_path, image_server, fast_fetch, user_images, monkeypatch):
    cfg = make_config(*fast_fetch, "images.commit_every=2")
    u = image_server.url
    paths = ["/img/red.png", "/img/blue.jpg", "/img/green.png", "/img/red-copy.png", "/missing.png"]
    user_images(cfg.paths.lake, [(i + 1, u(p)) for i, p in enumerate(paths)])
    monkeypatch.setenv("ZIPP_IMAGES_FAIL_AFTER_SHARD", "0")
    with pytest.raises(RuntimeError, match="after committing image shard 0"):
        _run(cfg, tmp_path, "dies")
    monkeypatch.delenv("ZIPP_IMAGES_FAIL_AFTER_SHARD")
    first = _table(cfg)
    assert len(first) == 2 and {r["status"] for r in first.values()} == {"ok"}  # shard 0 survived the crash
    v0 = version(cfg.paths.lake, GOLD_IMAGE_EMBEDDINGS)

    res = _run(cfg, tmp_path, "resumes")
    assert (res.rows_in, res.extra["up_to_date"], res.extra["urls"], res.extra["shards"]) == (5, 2, 3, 2)
    assert res.rows_out == 3 and res.drops == {"http_error": 1}
    assert version(cfg.paths.lake, GOLD_IMAGE_EMBEDDINGS) == v0 + 2  # one commit per shard
    assert {p: image_server.hits[p] for p in paths} == {p: 1 for p in paths}  # shard 0 was not fetched again
    rows = _table(cfg)
    assert len(rows) == 5 and rows[(u("/missing.png"), 5)]["status"] == "http_error"
    assert all(rows[k] == v for k, v in first.items())


@pytest.mark.realdata
def test_cli_embeds_the_real_photos_through_a_mirror_dir(ray_cluster, make_config, tmp_path, shared_data, user_images):
    """`zipp embed-images` on synthetic-dump-style https URLs resolved by images.mirror_dir."""
    from zipp.cli import app

    mirror = tmp_path / "mirror" / "i.redd.it"
    mirror.mkdir(parents=True)
    photos = sorted(p for p in (shared_data / "images").iterdir() if p.suffix in (".png", ".jpg"))
    assert len(photos) == 14
    for p in photos:
        shutil.copy(p, mirror / p.name)
    lake = tmp_path / "lake"
    user_images(lake, [(i % 4, f"https://i.redd.it/{p.name}?width=640&s=abc") for i, p in enumerate(photos)])
    args = ["embed-images", "--lake", str(lake), f"paths.runs={tmp_path / 'runs'}", f"paths.cache={tmp_path / 'cache'}",
            f"images.mirror_dir={tmp_path / 'mirror'}", "images.per_host_rps=null", "images.batch_size=4"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "14 written" in r.output
    t = read_arrow(lake, GOLD_IMAGE_EMBEDDINGS).to_pylist()
    assert len(t) == 14 and {x["status"] for x in t} == {"ok"}
    emb = np.array([x["embedding"] for x in t], dtype=np.float32)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert (tmp_path / "runs" / "embed-images" / "stats" / "embed_images.json").is_file()
