"""Benchmark the image stage's two halves on generated images.

1. Fetch: images/s and MB/s of ``Fetcher.fetch_all`` from a loopback ``MirrorServer``
   (``images.workers`` threads, no rate limit, cold cache).
2. Embed: images/s of the Ray Data actor path (``zipp.images.embed.embed_files``) vs a bare
   single-process open_clip loop over the same cached files (read + decode + preprocess + forward,
   the same work per image), with the same CPU count. Ray Data is reported end to end (actor start
   and model load included, as a stage run pays them) and steady-state (the time of a one-batch
   run subtracted); the bare loop warm (model loaded) and with its model load, run before and after
   Ray and averaged (the machine is shared).

Random weights (``--model zipp-tiny-clip`` by default; ``--model ViT-B-32``/``ViT-L-14`` builds the
real architecture with random weights): throughput does not depend on weight values.

    python bench/images.py [--n 512] [--model ViT-B-32] [--out work/bench/images.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_images(folder: Path, n: int, size: int, seed: int = 0) -> list[str]:
    """n JPEG/PNG photos-ish (noise over a colour gradient) under folder/i.example.com/."""
    from PIL import Image

    rng = random.Random(seed)
    host = folder / "i.example.com"
    host.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        w, h = size + rng.randint(-size // 4, size // 4), size + rng.randint(-size // 4, size // 4)
        base = Image.linear_gradient("L").resize((w, h)).convert("RGB")
        tint = Image.new("RGB", (w, h), tuple(rng.randrange(256) for _ in range(3)))
        noise = Image.effect_noise((w, h), 30).convert("RGB")
        im = Image.blend(Image.blend(base, tint, 0.5), noise, 0.3)
        name = f"{i:05d}.{'jpg' if i % 4 else 'png'}"
        buf = io.BytesIO()
        im.save(buf, format="JPEG" if i % 4 else "PNG", **({"quality": 90} if i % 4 else {}))
        (host / name).write_bytes(buf.getvalue())
        names.append(name)
    return [f"https://i.example.com/{n}?width={size}" for n in names]


def bench_fetch(urls, folder: Path, cache_dir: Path, workers: int) -> dict:
    from zipp.config import ImagesConfig
    from zipp.images.fetch import OK, Fetcher, ImageCache, url_rewriter

    cfg = ImagesConfig(workers=workers, per_host_rps=None, mirror_dir=str(folder))
    with url_rewriter(cfg) as rewrite:
        t0 = time.perf_counter()
        res = Fetcher(cfg, ImageCache(cache_dir), rewrite=rewrite).fetch_all(urls)
        secs = time.perf_counter() - t0
    assert all(r.status == OK for r in res.values()), {u: r.error for u, r in res.items() if r.status != OK}
    nbytes = sum(r.nbytes for r in res.values())
    return {"workers": workers, "images": len(urls), "seconds": round(secs, 3),
            "images_per_s": round(len(urls) / secs, 1), "mb_per_s": round(nbytes / secs / 1e6, 1)}, res


def bench_bare(paths, model: str, batch_size: int, threads: int) -> dict:
    import torch
    from PIL import Image

    from zipp.images.clip import Clip

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    clip = Clip(model, pretrained=None, device="cpu", batch_size=batch_size)
    load = time.perf_counter() - t0
    clip.embed_images([Image.new("RGB", (64, 64))] * 2)  # warm-up
    t0 = time.perf_counter()
    for i in range(0, len(paths), batch_size):
        ims = []
        for p in paths[i:i + batch_size]:
            with Image.open(p) as im:
                ims.append(im.convert("RGB"))
        clip.embed_images(ims)
    secs = time.perf_counter() - t0
    return {"threads": threads, "load_s": round(load, 2), "seconds": round(secs, 3),
            "images_per_s_warm": round(len(paths) / secs, 1),
            "images_per_s_with_load": round(len(paths) / (secs + load), 1)}


def bench_ray(ray, items, model: str, batch_size: int, actors: int, actor_cpus: float) -> dict:
    """Two stage-like runs: one batch (actor start + model load + one batch) and all images.
    Steady state = the extra images / the extra time. (The arrival time of the first batch at the
    driver is no start marker: Ray Data buffers outputs, so it lags the actor's first result.)"""
    from zipp.config import ImagesConfig
    from zipp.images.embed import embed_files

    cfg = ImagesConfig(model=model, batch_size=batch_size, actors=actors, actor_cpus=actor_cpus)
    t0 = time.perf_counter()
    embed_files(ray, items.slice(0, batch_size), cfg)
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = embed_files(ray, items, cfg)
    secs = time.perf_counter() - t0
    assert out.num_rows == items.num_rows and out["embedding"].null_count == 0
    return {"actors": actors, "actor_cpus": actor_cpus, "seconds": round(secs, 3), "one_batch_s": round(one, 2),
            "images_per_s_end_to_end": round(items.num_rows / secs, 1),
            "images_per_s_steady": round((items.num_rows - batch_size) / max(secs - one, 1e-9), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1024, help="images")
    ap.add_argument("--size", type=int, default=256, help="image side in pixels (+-25%%)")
    ap.add_argument("--model", default="zipp-tiny-clip", help="open_clip model name (random weights)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=16, help="fetch threads")
    ap.add_argument("--cpus", type=int, default=min(2, os.cpu_count() or 1), help="CPUs for both embed paths")
    ap.add_argument("--out", default="work/bench/images.json")
    args = ap.parse_args()

    import pyarrow as pa
    import torch

    from zipp.config import RuntimeConfig
    from zipp.images.fetch import ImageCache
    from zipp.runtime import init_ray

    report = {"bench": "images", "model": f"{args.model} (random weights)", "n": args.n, "size": args.size,
              "batch_size": args.batch_size, "cpus": args.cpus, "cuda": torch.cuda.is_available(),
              "host_cpus": os.cpu_count(), "loadavg_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="zipp-bench-images-") as tmp:
        tmp = Path(tmp)
        urls = make_images(tmp / "mirror", args.n, args.size)
        report["fetch"], res = bench_fetch(urls, tmp / "mirror", tmp / "cache", args.workers)
        print("fetch:", report["fetch"], flush=True)

        cache = ImageCache(tmp / "cache")
        shas = [res[u].sha256 for u in urls]
        paths = [str(cache.path(s)) for s in shas]
        bare = [bench_bare(paths, args.model, args.batch_size, args.cpus)]
        print("bare loop:", bare[0], flush=True)

        import ray

        init_ray(RuntimeConfig(ray_num_cpus=args.cpus, ray_object_store_gb=1.0))
        try:
            items = pa.table({"sha256": shas, "path": paths})
            # warm-up, not counted: the first Ray Data run of a cluster pays one-off costs (worker
            # pool, Ray Data init) that would otherwise inflate the one-batch baseline
            bench_ray(ray, items.slice(0, 2 * args.batch_size), args.model, args.batch_size, 1, float(args.cpus))
            report["ray"] = []
            for actors in sorted({1, args.cpus}):
                r = bench_ray(ray, items, args.model, args.batch_size, actors, args.cpus / actors)
                print("ray data:", r, flush=True)
                report["ray"].append(r)
        finally:
            ray.shutdown()
        # again after Ray: the machine is shared, so average out drift between the two paths
        bare.append(bench_bare(paths, args.model, args.batch_size, args.cpus))
        print("bare loop:", bare[1], flush=True)
        report["bare_runs"] = bare
        report["bare"] = {k: round(sum(b[k] for b in bare) / len(bare), 2) for k in ("images_per_s_warm", "images_per_s_with_load")}
    for r in report["ray"]:
        r["ratio_steady_vs_bare_warm"] = round(r["images_per_s_steady"] / report["bare"]["images_per_s_warm"], 2)
        r["ratio_end_to_end_vs_bare_with_load"] = round(r["images_per_s_end_to_end"] / report["bare"]["images_per_s_with_load"], 2)
    report["loadavg_end"] = os.getloadavg()[0]  # other work on a shared machine skews every figure
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps({"model": report["model"], "n": report["n"], "bare": report["bare"],
                      "ray": [{k: r[k] for k in ("actors", "actor_cpus", "ratio_steady_vs_bare_warm", "ratio_end_to_end_vs_bare_with_load")} for r in report["ray"]]}))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
