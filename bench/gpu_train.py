"""Short GPU training throughput run (``graph.use_gpu=true``), self-contained: it generates its own
planted graph in memory (no lake, no model hub), saves it as the run's graph, then measures

* a bare single-process loop on the GPU (same model, sampler and step), and
* the Ray Train loop (``TorchTrainer``, ``ScalingConfig(num_workers, use_gpu=True)``, NCCL),

reporting labelled training edges/s (evaluation excluded) of the last epoch next to the sampler's
own batches/s. Weights are random-initialised and trained for a few hundred steps: the throughput
is what matters; the accuracy numbers are only a sanity check.

    python bench/gpu_train.py                      # on a GPU machine (H100/H200)
    python bench/gpu_train.py --cpu --users 3000   # smoke run of the same code path on CPU

Writes ``gpu_train.json`` to ``--out`` (default: $OUT if set, else bench/out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=200_000)
    ap.add_argument("--subreddits", type=int, default=20_000)
    ap.add_argument("--communities", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--fanout", default="15, 10")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--image-dim", type=int, default=768, help="CLIP ViT-L/14 width")
    ap.add_argument("--steps", type=int, default=60, help="steps per epoch and rank")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1, help="Ray Train workers (one GPU each)")
    ap.add_argument("--cpus-per-worker", type=int, default=4)
    ap.add_argument("--loader-workers", type=int, default=4, help="DataLoader processes per worker (sampling)")
    ap.add_argument("--cpu", action="store_true", help="smoke run without a GPU")
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--out", default=os.environ.get("OUT") or str(REPO / "bench" / "out"))
    args = ap.parse_args()

    import torch

    from zipp.config import load_config
    from zipp.graph.build import GoldTables, build_graph
    from zipp.graph.sampler import pyg_sampler_available
    from zipp.graph.synthetic import planted_graph
    from zipp.graph.train import graph_path, make_loader, run_training, train_local
    from zipp.runtime import Runtime

    use_gpu = not args.cpu
    if use_gpu and not torch.cuda.is_available():
        # `make bench` runs every bench script: on a CPU-only machine this one has nothing to measure
        print("gpu_train: SKIPPED, no CUDA device (use --cpu for a smoke run of the same code path)")
        return
    torch.set_num_threads(args.cpus_per_worker)  # as in a Ray worker with that many CPUs
    out_dir = Path(args.out)
    root = out_dir / "gpu_train_scratch"
    n_cpus = os.cpu_count() or 2
    overrides = [
        f"paths.work={root}", f"paths.lake={root / 'lake'}", f"paths.runs={root / 'runs'}",
        f"graph.batch_size={args.batch_size}", f"graph.fanout=[{args.fanout}]", f"graph.hidden_dim={args.hidden}",
        f"graph.heads={args.heads}", f"graph.steps_per_epoch={args.steps}", f"graph.epochs={args.epochs}",
        "graph.patience=100", "graph.eval_max_users=2000", f"graph.use_gpu={str(use_gpu).lower()}",
        f"graph.num_workers={args.workers}", f"graph.cpus_per_worker={args.cpus_per_worker}",
        f"graph.loader_workers={args.loader_workers}", "graph.infer_batch_nodes=65536",
        f"runtime.ray_num_cpus={n_cpus}", "runtime.ray_object_store_gb=4.0",
    ]
    cfg = load_config("local", overrides, conf_dir=REPO / "conf")

    t0 = time.perf_counter()
    pg = planted_graph(n_users=args.users, n_subreddits=args.subreddits, n_communities=args.communities,
                       min_degree=4, max_degree=20, image_dim=args.image_dim, images_per_user=2, seed=0)
    graph = build_graph(GoldTables(pg.users, pg.subreddits, pg.edges, pg.image_embeddings), cfg.graph, split=True)
    # the run's graph artifact, so `zipp train`'s driver reuses it instead of reading a lake
    graph.meta["split_config"] = {k: getattr(cfg.graph, k) for k in ("val_frac", "test_frac", "min_degree_holdout", "split_seed", "image_model_id")}
    run_dir = root / "runs" / "gpu"
    graph.save(graph_path(run_dir))
    gen_s = time.perf_counter() - t0
    print(f"graph: {graph.meta['num_users']} users, {graph.meta['num_subreddits']} subreddits, "
          f"{graph.meta['num_edges']} edges in {gen_s:.1f}s", flush=True)

    device = "cuda" if use_gpu else "cpu"
    res: dict = {
        "device": torch.cuda.get_device_name(0) if use_gpu else platform.processor() or "cpu",
        "torch": torch.__version__, "pyg_sampler": pyg_sampler_available(), "args": vars(args),
        "graph": {k: graph.meta[k] for k in ("num_users", "num_subreddits", "num_edges", "num_train")},
        "graph_build_s": gen_s,
    }

    loader = make_loader(graph, cfg.graph, graph.split["train"])
    it = iter(loader)
    next(it)
    t0 = time.perf_counter()
    for _ in range(20):
        next(it)
    res["sampler_batches_per_s"] = 20 / (time.perf_counter() - t0)
    del it, loader

    bare = train_local(cfg, graph, epochs=args.epochs, device=device, evaluate=False)
    res["bare"] = {"train_edges_per_s": bare[-1]["train_edges_per_s"], "epoch_seconds": bare[-1]["epoch_seconds"]}
    if use_gpu:
        res["bare"]["max_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
    print(f"bare loop: {res['bare']}", flush=True)

    if not args.skip_ray:
        with Runtime(cfg.runtime) as rt:
            t0 = time.perf_counter()
            summary = run_training(cfg, run_dir, rt)
            res["ray_wall_s"] = time.perf_counter() - t0
        recs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        res["ray"] = {k: recs[-1].get(k) for k in ("train_edges_per_s", "sampled_edges_per_s", "epoch_seconds", "world_size", "val_acc", "val_pop_acc")}
        res["ray"]["vs_bare"] = res["ray"]["train_edges_per_s"] / res["bare"]["train_edges_per_s"]
        res["test"] = summary["test"]
        print(f"ray train: {res['ray']}", flush=True)

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "gpu_train.json").write_text(json.dumps(res, indent=2, default=str))
    print(json.dumps(res, indent=2, default=str))


if __name__ == "__main__":
    main()
