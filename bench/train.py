"""Training throughput: the Ray Train loop vs a bare single-process loop, 1 vs 2 workers on CPU.

Same planted graph (gold tables written to a scratch lake), same model, same sampler and the same
``train_epoch`` step in every variant; throughput is labelled (positive + negative) training edges
per second of training time (evaluation excluded), summed over ranks, from the last epoch (the
first one warms up). Also: the pure-torch sampler alone, and against PyG's sampler when pyg-lib or
torch-sparse is importable (neither is on PyPI for this torch).

    python bench/train.py [--users 20000 --subreddits 2000 --steps 30 --workers 1,2]

``--compare-torch-sparse DIR`` runs only the sampler comparison, in a subprocess whose ``sys.path``
starts with DIR (a ``pip install --no-deps --target DIR`` of torch-scatter/torch-sparse wheels built
once against this torch; never installed into the venv, never run in CI): PyG's own
``LinkNeighborLoader`` (torch-sparse backend, pyg-lib being absent) vs zipp's pure-torch sampler in
``LinkLoader``, same graph, fanout, batch size and 1:1 binary negatives, alternating runs; it prints
sampled (message-passing) edges per second of each and their ratio, and writes
bench/out/sampler_torch_sparse.json.

    nice -n 10 .venv/bin/pip wheel --no-build-isolation --no-deps torch-scatter==2.1.2 torch-sparse==0.6.18 -w /work/wheels
    .venv/bin/pip install --no-deps --target /work/torchsparse-site /work/wheels/*.whl
    python bench/train.py --compare-torch-sparse /work/torchsparse-site

Prints a table and writes bench/out/train.json. Timings on a shared machine are noisy: rerun, and
compare numbers from the same run only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _cfg(root: Path, args, *extra: str):
    from zipp.config import load_config

    return load_config("local", [
        f"paths.lake={root / 'lake'}", f"paths.runs={root / 'runs'}", f"paths.work={root}",
        f"graph.batch_size={args.batch_size}", f"graph.fanout=[{args.fanout}]", f"graph.hidden_dim={args.hidden}",
        f"graph.heads={args.heads}", f"graph.steps_per_epoch={args.steps}", f"graph.epochs={args.epochs}",
        "graph.patience=100", "graph.eval_max_users=500", "graph.cpus_per_worker=1", "graph.sampler=torch",
        f"runtime.ray_num_cpus={args.ray_cpus}", "runtime.ray_object_store_gb=1.0", *extra,
    ], conf_dir=REPO / "conf")


def sampler_only(graph, args, backend: str) -> float:
    """Batches per second of the link loader alone (sampling + feature gather, no model)."""
    from zipp.graph.train import make_loader

    cfg = _cfg(Path("/nonexistent"), args, f"graph.sampler={backend}")
    loader = make_loader(graph, cfg.graph, graph.split["train"])
    it = iter(loader)
    next(it)
    t0 = time.perf_counter()
    n = 0
    for _ in range(args.steps):
        try:
            next(it)
        except StopIteration:
            break
        n += 1
    return n / (time.perf_counter() - t0)


def _planted(args, lake: Path):
    from zipp.graph.synthetic import planted_graph

    planted_graph(n_users=args.users, n_subreddits=args.subreddits, n_communities=args.communities,
                  min_degree=4, max_degree=16, seed=0).write(lake)


def _loader_rate(loader, steps: int) -> tuple[float, float]:
    """(sampled message-passing edges/s, batches/s) over ``steps`` batches after one warm-up batch."""
    it = iter(loader)
    next(it)
    n = edges = 0
    t0 = time.perf_counter()
    for _ in range(steps):
        try:
            b = next(it)
        except StopIteration:
            break
        edges += sum(b[et].edge_index.size(1) for et in b.edge_types)
        n += 1
    dt = time.perf_counter() - t0
    return edges / dt, n / dt


def torch_sparse_child(args) -> None:
    """Runs in the subprocess started by ``--compare-torch-sparse`` (torch-sparse on sys.path)."""
    import torch
    import torch_geometric.typing as pygt
    from torch_geometric.loader import LinkNeighborLoader

    from zipp.graph.build import EDGE, build_graph, load_gold
    from zipp.graph.train import make_loader

    if not pygt.WITH_TORCH_SPARSE or pygt.WITH_PYG_LIB:
        raise SystemExit(f"need torch-sparse without pyg-lib (torch_sparse={pygt.WITH_TORCH_SPARSE}, pyg_lib={pygt.WITH_PYG_LIB})")
    import torch_sparse

    torch.set_num_threads(1)
    root = Path(args.out) / "sampler_scratch"
    shutil.rmtree(root, ignore_errors=True)
    _planted(args, root / "lake")
    cfg = _cfg(root, args)
    graph = build_graph(load_gold(cfg.paths.lake), cfg.graph, split=True)
    train = graph.split["train"]
    fan = [int(x) for x in args.fanout.split(",")]
    loaders = {
        "zipp_torch": lambda: make_loader(graph, cfg.graph, train),
        "pyg_torch_sparse": lambda: LinkNeighborLoader(
            graph.data, num_neighbors=fan, edge_label_index=(EDGE, train), batch_size=args.batch_size,
            shuffle=True, neg_sampling="binary"),  # 1:1 negatives, like neg_ratio=1
    }
    runs: dict[str, list] = {k: [] for k in loaders}
    for _ in range(args.rounds):
        for name, make in loaders.items():
            torch.manual_seed(0)
            runs[name].append(_loader_rate(make(), args.steps))

    def med(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2]

    res = {
        "graph": {k: graph.meta[k] for k in ("num_users", "num_subreddits", "num_train")},
        "fanout": fan, "batch_size": args.batch_size, "steps": args.steps, "rounds": args.rounds,
        "torch": torch.__version__, "torch_sparse": torch_sparse.__version__, "torch_threads": 1,
    }
    for name, rs in runs.items():
        res[name] = {"sampled_edges_per_s": med([r[0] for r in rs]), "batches_per_s": med([r[1] for r in rs]),
                     "rounds_edges_per_s": [round(r[0]) for r in rs]}
    res["ratio_zipp_over_pyg"] = res["zipp_torch"]["sampled_edges_per_s"] / res["pyg_torch_sparse"]["sampled_edges_per_s"]
    print(json.dumps(res))
    shutil.rmtree(root, ignore_errors=True)


def compare_torch_sparse(args) -> None:
    import subprocess

    site = Path(args.compare_torch_sparse).resolve()
    if not (site / "torch_sparse").is_dir():
        raise SystemExit(f"{site} holds no torch_sparse package (see the module docstring for how to build it)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(REPO)]))
    argv = [sys.executable, str(Path(__file__).resolve()), "--torch-sparse-child", "--users", str(args.users),
            "--subreddits", str(args.subreddits), "--communities", str(args.communities), "--batch-size", str(args.batch_size),
            "--fanout", args.fanout, "--steps", str(args.steps), "--rounds", str(args.rounds), "--out", args.out]
    proc = subprocess.run(argv, check=False, env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(proc.returncode)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    g = res["graph"]
    print(f"graph: {g['num_users']} users, {g['num_subreddits']} subreddits, {g['num_train']} train edges; "
          f"fanout {res['fanout']}, batch {res['batch_size']} (+1:1 negatives), {res['steps']} batches x {res['rounds']} rounds, 1 thread")
    print(f"{'sampler':<34}{'sampled edges/s':>16}{'batches/s':>11}")
    for name, label in (("zipp_torch", "zipp pure-torch (LinkLoader)"), ("pyg_torch_sparse", f"PyG LinkNeighborLoader (torch-sparse {res['torch_sparse']})")):
        print(f"{label:<34}{res[name]['sampled_edges_per_s']:>16.0f}{res[name]['batches_per_s']:>11.2f}")
    print(f"ratio zipp / PyG+torch-sparse (sampled edges/s): {res['ratio_zipp_over_pyg']:.2f}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sampler_torch_sparse.json").write_text(json.dumps(res, indent=2))
    print(f"wrote {out / 'sampler_torch_sparse.json'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=20000)
    ap.add_argument("--subreddits", type=int, default=2000)
    ap.add_argument("--communities", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--fanout", default="10, 5")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--steps", type=int, default=30, help="training steps per epoch and rank")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workers", default="1,2", help="Ray Train worker counts to run")
    ap.add_argument("--ray-cpus", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "bench" / "out"))
    ap.add_argument("--compare-torch-sparse", metavar="DIR", default=None,
                    help="only compare the samplers, with torch-sparse imported from DIR (a pip --target folder)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of the sampler comparison")
    ap.add_argument("--torch-sparse-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_sparse_child:
        return torch_sparse_child(args)
    if args.compare_torch_sparse:
        return compare_torch_sparse(args)

    import torch

    from zipp.graph.build import build_graph, load_gold
    from zipp.graph.sampler import pyg_sampler_available
    from zipp.graph.train import run_training, train_local
    from zipp.runtime import Runtime

    # one intra-op thread everywhere, like a 1-CPU Ray worker (more threads than free cores makes
    # OpenMP spin-wait: the small ops of sampling then run tens of times slower on a busy machine)
    torch.set_num_threads(1)
    out_dir = Path(args.out)
    root = out_dir / "train_scratch"
    shutil.rmtree(root, ignore_errors=True)
    t0 = time.perf_counter()
    _planted(args, root / "lake")
    cfg = _cfg(root, args)
    graph = build_graph(load_gold(cfg.paths.lake), cfg.graph, split=True)
    print(f"graph: {graph.meta['num_users']} users, {graph.meta['num_subreddits']} subreddits, "
          f"{graph.meta['num_edges']} edges ({graph.meta['num_train']} train) in {time.perf_counter() - t0:.1f}s")
    results: dict = {"graph": {k: graph.meta[k] for k in ("num_users", "num_subreddits", "num_edges", "num_train")},
                     "args": vars(args), "torch_threads_bare": 1}

    # sampler alone
    results["sampler_batches_per_s"] = {"torch": sampler_only(graph, args, "torch")}
    if pyg_sampler_available():
        results["sampler_batches_per_s"]["pyg"] = sampler_only(graph, args, "pyg")
    else:
        results["sampler_batches_per_s"]["pyg"] = "skipped: neither pyg-lib nor torch-sparse is importable"

    def median_after_warmup(recs):
        vals = sorted(r["train_edges_per_s"] for r in recs[1:]) or [recs[0]["train_edges_per_s"]]
        return vals[len(vals) // 2] if len(vals) % 2 else 0.5 * (vals[len(vals) // 2 - 1] + vals[len(vals) // 2])

    # bare single-process loop (1 thread, like a 1-CPU Ray worker)
    bare = train_local(cfg, graph, epochs=args.epochs, evaluate=False)
    results["bare_before"] = {"train_edges_per_s": median_after_warmup(bare), "epochs": [r["train_edges_per_s"] for r in bare]}

    # Ray Train loops
    with Runtime(cfg.runtime) as rt:
        for w in [int(x) for x in args.workers.split(",") if x]:
            wcfg = _cfg(root, args, f"graph.num_workers={w}")
            run_dir = root / "runs" / f"ray{w}"
            run_training(wcfg, run_dir, rt)
            recs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
            results[f"ray_{w}_workers"] = {
                "train_edges_per_s": median_after_warmup(recs), "epochs": [r["train_edges_per_s"] for r in recs],
                "val_acc": recs[-1]["val_acc"],
            }
    bare = train_local(cfg, graph, epochs=args.epochs, evaluate=False)
    results["bare_after"] = {"train_edges_per_s": median_after_warmup(bare), "epochs": [r["train_edges_per_s"] for r in bare]}

    bare_eps = 0.5 * (results["bare_before"]["train_edges_per_s"] + results["bare_after"]["train_edges_per_s"])
    results["bare_mean"] = bare_eps
    print(f"\n{'variant':<26}{'edges/s':>10}{'vs bare':>10}")
    for name in ("bare_before", "bare_after"):
        eps = results[name]["train_edges_per_s"]
        print(f"{name.replace('_', ' ') + ' (1 process)':<26}{eps:>10.0f}{eps / bare_eps:>10.2f}")
    for w in [int(x) for x in args.workers.split(",") if x]:
        eps = results[f"ray_{w}_workers"]["train_edges_per_s"]
        results[f"ray_{w}_workers"]["vs_bare"] = eps / bare_eps
        print(f"{f'Ray Train, {w} worker(s)':<26}{eps:>10.0f}{eps / bare_eps:>10.2f}")
    print(f"\nsampler alone (batches/s): {results['sampler_batches_per_s']}")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "train.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"wrote {out_dir / 'train.json'}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
