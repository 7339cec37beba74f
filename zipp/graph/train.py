"""Link prediction + ImageAlign training under Ray Train (``TorchTrainer``, DDP).

Layout of a run folder (``<paths.runs>/<run>``)::

    graph/graph.pt       the built graph (split, id maps, feature stats); reused on resubmission so a
                         resumed run keeps exactly the same held-out edges
    ray/train/           Ray Train storage: checkpoints + run snapshot (resume after a crash, a
                         worker kill or a resubmitted job with the same run name)
    metrics.jsonl        one line per epoch: loss parts, posting accuracy, AUC, Hits@k, the
                         popularity baseline, throughput; ``attempt`` names the worker-group attempt
                         that wrote it and ``resumed_from`` the checkpoint epoch it started from
    model/model.pt       the exported best model (weights, spec, feature stats, id maps, config)
    model/metrics.json   test metrics of the exported model (and the baseline)

Each rank trains on its own equal-size slice of the training edges; rank 0 evaluates on the
validation edges after every epoch, decides early stopping (broadcast to all ranks) and reports the
checkpoint. ``paths.runs`` must be storage every worker can reach (shared FS on a cluster).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from zipp.config import GraphConfig, ZippConfig
from zipp.graph.build import (
    EDGE,
    Graph,
    activity_stats,
    build_graph,
    edge_activity,
    load_gold,
    pair_keys,
)

log = logging.getLogger("zipp.graph.train")

RAY_RUN_NAME = "train"


@dataclass
class EarlyStopping:
    """Stop after ``patience`` epochs without the (higher-is-better) metric improving by ``min_delta``.
    Its state travels in every checkpoint, so a resumed run keeps counting where it was."""

    patience: int
    min_delta: float = 1e-4
    best: float = -math.inf
    best_epoch: int = 0
    bad_epochs: int = 0

    def update(self, epoch: int, value: float) -> bool:
        """Record an epoch's metric; True when it is the new best (NaN never is)."""
        if not math.isnan(value) and value > self.best + self.min_delta:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def stop(self) -> bool:
        return self.bad_epochs >= self.patience


# ----------------------------------------------------------------------------- pieces shared with benches
def graph_path(run_dir: Path) -> Path:
    return Path(run_dir) / "graph" / "graph.pt"


def prepare_graph(cfg: ZippConfig, run_dir: Path) -> tuple[Path, Graph]:
    """Build the training graph from the lake once per run; later calls (resume, resubmission) reuse it."""
    path = graph_path(run_dir)
    wanted = {k: getattr(cfg.graph, k) for k in ("val_frac", "test_frac", "min_degree_holdout", "split_seed", "image_model_id")}
    if path.is_file():
        graph = Graph.load(path)
        if graph.meta.get("split_config") != wanted:
            raise ValueError(
                f"{path} was built with split settings {graph.meta.get('split_config')}, not {wanted}: "
                "use a new --run name (a different split would leak held-out edges into training)"
            )
        log.info("graph: reusing %s (%s)", path, {k: graph.meta[k] for k in ("num_users", "num_subreddits", "num_train")})
        return path, graph
    graph = build_graph(load_gold(cfg.paths.lake), cfg.graph, split=True)
    graph.meta["split_config"] = wanted
    graph.meta["lake"] = str(cfg.paths.lake)
    graph.save(path)
    log.info("graph: built %s", graph.meta)
    return path, graph


def rank_slice(edges: torch.Tensor, rank: int, world: int, seed: int) -> torch.Tensor:
    """This rank's equal-size slice of ``edges`` ([2, E]); padded by wrap-around so every rank runs
    the same number of steps (DDP would otherwise wait forever at the last all-reduce)."""
    n = edges.size(1)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    pad = (-n) % world
    idx = torch.cat([perm, perm[:pad]])
    return edges[:, idx[rank::world]]


def make_loader(graph: Graph, g: GraphConfig, edges: torch.Tensor, shuffle: bool = True):
    from torch_geometric.loader import LinkLoader

    from zipp.graph.sampler import LinkNeighborSampler, make_neighbor_sampler

    base = make_neighbor_sampler(graph.data, g.fanout, g.sampler)
    num_nodes = {nt: int(graph.data[nt].num_nodes) for nt in graph.data.node_types}
    sampler = LinkNeighborSampler(
        base, num_nodes, neg_ratio=g.neg_ratio,
        known_keys=pair_keys(graph.split["train"], graph.num_subreddits),  # training edges only: no held-out knowledge
        exclude_seed_edges=g.exclude_seed_edges, neg_weights=negative_weights(graph, g),
    )
    weights = positive_weights(graph, g, edges)
    order = {"shuffle": shuffle} if weights is None else {
        "sampler": torch.utils.data.WeightedRandomSampler(weights, num_samples=weights.numel(), replacement=True)}
    return LinkLoader(
        graph.data, link_sampler=sampler, edge_label_index=(EDGE, edges), batch_size=g.batch_size,
        num_workers=g.loader_workers, persistent_workers=g.loader_workers > 0, **order,
    )


def positive_weights(graph: Graph, g: GraphConfig, edges: torch.Tensor) -> torch.Tensor | None:
    """Sampling weights of training positives ``edges`` (message-passing edges of ``graph``):
    None (uniform), or log1p(comments + submissions) or that count itself, recovered from the standardised edge features."""
    if g.positive_weighting == "uniform":
        return None
    store = graph.data[EDGE]
    activity = edge_activity(store.edge_attr.double(), activity_stats(graph.stats))
    keys = pair_keys(store.edge_index, graph.num_subreddits)
    order = keys.argsort()
    pos = torch.searchsorted(keys[order], pair_keys(edges, graph.num_subreddits)).clamp_max(max(keys.numel() - 1, 0))
    act = activity[order][pos].round()
    return torch.log1p(act) if g.positive_weighting == "log_activity" else act.clamp_min(1.0)


def negative_weights(graph: Graph, g: GraphConfig) -> torch.Tensor | None:
    """Per-subreddit weights of training negatives: (training degree + 1) ** exponent, or None (uniform)."""
    if g.neg_popularity_exponent <= 0:
        return None
    deg = torch.bincount(graph.split["train"][1], minlength=graph.num_subreddits).double()
    return (deg + 1.0) ** g.neg_popularity_exponent


def build_model(g: GraphConfig, graph: Graph, seed: int | None = None):
    from zipp.graph.model import ZippGAT, spec_from_config

    if seed is not None:
        torch.manual_seed(seed)
    return ZippGAT(spec_from_config(g, graph))


def train_epoch(model, loader, opt, images, g: GraphConfig, device, max_steps: int | None = None) -> dict[str, float]:
    """One pass over ``loader``. Returns sums (loss parts, labelled edges, steps) and seconds."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    acc = torch.zeros(4, dtype=torch.float64, device=device)  # loss, bce, align, align_users: one host sync per epoch
    edges = sampled = steps = 0
    t0 = time.perf_counter()
    for step, batch in enumerate(loader):
        if max_steps is not None and step >= max_steps:
            break
        batch = batch.to(device)
        out = model(batch, images)
        bce = F.binary_cross_entropy_with_logits(out["logits"], out["label"])
        loss = bce
        align = align_users = torch.zeros((), device=device)
        if "align_loss" in out:
            loss = loss + g.image_align_weight * out["align_loss"]
            align, align_users = out["align_loss"], out["align_users"]
        # every parameter gets a gradient on every step, even when a tiny batch leaves a relation
        # without edges: DDP (find_unused_parameters=False) would otherwise stall
        loss = loss + 0.0 * sum(p.sum() for p in params)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        acc += torch.stack([loss.detach(), bce.detach(), align.detach(), align_users.detach().to(loss.dtype)]).double()
        edges += out["label"].numel()
        sampled += sum(batch[et].edge_index.size(1) for et in batch.edge_types)
        steps += 1
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    loss_sum, bce_sum, align_sum, users_sum = acc.tolist()
    s = {"loss": loss_sum, "bce": bce_sum, "align": align_sum, "align_users": users_sum,
         "edges": float(edges), "sampled_edges": float(sampled), "steps": float(steps)}
    s["seconds"] = time.perf_counter() - t0
    return s


def evaluate_model(model, graph: Graph, g: GraphConfig, part: str, device="cpu") -> dict[str, float]:
    """Exact (layer-wise, full-neighbourhood) embeddings, then link metrics; the model stays on ``device``."""
    from zipp.graph.evaluate import model_metrics
    from zipp.graph.layerwise import layerwise_embed

    z, _ = layerwise_embed(model, graph.data, g.infer_batch_nodes, g.infer_batch_edges, device=device)
    was_training = model.training
    model.eval()
    try:
        return model_metrics(model, graph, z, part, g.hits_k, g.eval_max_users, seed=g.seed, device=device)
    finally:
        model.train(was_training)


def _state_dict(model) -> dict[str, torch.Tensor]:
    m = model.module if hasattr(model, "module") else model
    return {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}


def _append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record, default=float) + "\n")
        f.flush()
        os.fsync(f.fileno())


def train_local(cfg: ZippConfig, graph: Graph, epochs: int | None = None, device: str = "cpu", evaluate: bool = True) -> list[dict[str, Any]]:
    """The same model, sampler and step as the Ray Train loop, in this process without Ray or DDP
    (benchmarks' bare baseline, quick experiments). Returns one record per epoch."""
    g = cfg.graph
    model = build_model(g, graph, seed=g.seed).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=g.lr, weight_decay=g.weight_decay)
    loader = make_loader(graph, g, rank_slice(graph.split["train"], 0, 1, g.seed))
    images = graph.images.to(device) if (graph.images is not None and model.spec.image_dim) else None
    out = []
    for epoch in range(1, (epochs or g.epochs) + 1):
        torch.manual_seed(g.seed * 1_000_003 + epoch * 1000)
        s = train_epoch(model, loader, opt, images, g, device, g.steps_per_epoch)
        steps = max(s["steps"], 1.0)
        rec = {
            "epoch": epoch, "loss": s["loss"] / steps, "bce": s["bce"] / steps, "align": s["align"] / steps,
            "train_edges_per_s": s["edges"] / s["seconds"], "sampled_edges_per_s": s["sampled_edges"] / s["seconds"],
            "epoch_seconds": s["seconds"],
        }
        if evaluate:
            rec.update(evaluate_model(model, graph, g, "val", device))
        out.append(rec)
    return out


# ----------------------------------------------------------------------------- the Ray Train worker loop
def train_loop_per_worker(config: dict[str, Any]) -> None:
    import tempfile

    import ray.train
    import ray.train.torch
    import torch.distributed as dist

    from zipp.graph.evaluate import popularity_metrics

    cfg = ZippConfig.model_validate(config["cfg"])
    g = cfg.graph
    run_dir = Path(config["run_dir"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(g.cpus_per_worker)
    device = ray.train.torch.get_device()
    graph = Graph.load(config["graph_path"])

    model = build_model(g, graph, seed=g.seed)  # same init on every rank (DDP broadcasts rank 0's anyway)
    state = None
    ckpt = ray.train.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            state = torch.load(Path(d) / "state.pt", weights_only=False)
        model.load_state_dict(state["model"])
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=g.lr, weight_decay=g.weight_decay)
    if state is not None:
        opt.load_state_dict(state["optimizer"])
    start_epoch = state["epoch"] + 1 if state else 1
    best = state["best"] if state else {"epoch": 0, "state": None, "metrics": {}}  # best weights + their metrics
    stopper = EarlyStopping(**state["early_stopping"]) if state else EarlyStopping(g.patience)
    stopper.patience = g.patience  # a resubmission may change it
    resumed_from = state["epoch"] if state else None
    attempt = uuid.uuid4().hex[:8]  # tells worker-group attempts apart in metrics.jsonl (restarts, resubmissions)
    if state is not None and rank == 0:
        log.info("train: resumed from checkpoint of epoch %d", state["epoch"])
    if state is not None and state.get("stopped"):
        start_epoch = g.epochs + 1  # early stopping already decided; nothing left to train
    # the model has no lazy modules (input sizes come from the graph), so it can be wrapped directly
    ddp = ray.train.torch.prepare_model(model, move_to_device=False)
    loader = make_loader(graph, g, rank_slice(graph.split["train"], rank, world, g.seed))
    images = graph.images.to(device) if (graph.images is not None and model.spec.image_dim) else None
    pop = popularity_metrics(graph, "val", g.hits_k, g.eval_max_users, seed=g.seed) if rank == 0 else {}
    metrics_file = run_dir / "metrics.jsonl"

    for epoch in range(start_epoch, g.epochs + 1):
        torch.manual_seed(g.seed * 1_000_003 + epoch * 1000 + rank)  # a resumed epoch samples like the original
        s = train_epoch(ddp, loader, opt, images, g, device, g.steps_per_epoch)
        vec = torch.tensor([s["loss"], s["bce"], s["align"], s["align_users"], s["edges"], s["sampled_edges"], s["steps"]], dtype=torch.float64)
        secs = torch.tensor([s["seconds"]], dtype=torch.float64)
        if world > 1:
            dist.all_reduce(vec)
            dist.all_reduce(secs, op=dist.ReduceOp.MAX)
        loss, bce, align, align_users, edges, sampled, steps = vec.tolist()
        stop = torch.zeros(1)
        metrics: dict[str, Any] = {}
        stopped = False
        if rank == 0:
            steps = max(steps, 1.0)
            metrics = {
                "epoch": epoch, "loss": loss / steps, "bce": bce / steps,
                "align": align / steps if g.image_align_weight > 0 else None,
                "align_users_per_step": align_users / steps, "train_edges": int(edges),
                "train_edges_per_s": edges / max(secs.item(), 1e-9),
                "sampled_edges_per_s": sampled / max(secs.item(), 1e-9), "epoch_seconds": secs.item(),
                "world_size": world, "resumed_from": resumed_from, "attempt": attempt,
            }
            metrics.update(evaluate_model(model, graph, g, "val", device))
            metrics.update(pop)
            if stopper.update(epoch, metrics.get(g.early_stop_metric, float("nan"))):
                best = {"epoch": epoch, "state": _state_dict(model), "metrics": dict(metrics)}
            stopped = stopper.stop
            metrics["best_epoch"] = stopper.best_epoch
            metrics["early_stopped"] = stopped
            _append_jsonl(metrics_file, metrics)
            log.info(
                "epoch %d loss=%.4f val_acc=%.3f val_auc=%.3f val_hits=%.3f (pop acc=%.3f) %.0f edges/s",
                epoch, metrics["loss"], metrics.get("val_acc", float("nan")), metrics.get("val_auc", float("nan")),
                metrics.get("val_hits", float("nan")), metrics.get("val_pop_acc", float("nan")), metrics["train_edges_per_s"],
            )
            stop[0] = float(stopped)
        if world > 1:
            dist.broadcast(stop, src=0)
        # report() is a barrier for every rank; rank 0 attaches the checkpoint, which is copied to the
        # run's storage before report() returns, so the local copy can go with the temp dir
        with tempfile.TemporaryDirectory(prefix="zipp-ckpt-", ignore_cleanup_errors=True) as tmp:
            checkpoint = None
            if rank == 0:
                torch.save({
                    "model": _state_dict(model), "optimizer": opt.state_dict(), "epoch": epoch,
                    "best": best, "early_stopping": asdict(stopper), "stopped": stopped,
                    "spec": model.spec.to_dict(), "stats": graph.stats, "id_maps": graph.id_maps(),
                    "config": config["cfg"],
                }, Path(tmp) / "state.pt")
                checkpoint = ray.train.Checkpoint.from_directory(tmp)
            ray.train.report({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, checkpoint=checkpoint)
        if bool(stop.item()):
            break


# ----------------------------------------------------------------------------- driver side
def run_training(cfg: ZippConfig, run_dir: Path, runtime) -> dict[str, Any]:
    """Build (or reuse) the graph, fit under ``TorchTrainer`` (resuming from the run's latest
    checkpoint if any) and export the best model with its test metrics."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    g = cfg.graph
    run_dir = Path(run_dir).resolve()
    gpath, graph = prepare_graph(cfg, run_dir)
    runtime.ray()
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"cfg": cfg.model_dump(mode="json"), "run_dir": str(run_dir), "graph_path": str(gpath)},
        scaling_config=ScalingConfig(
            num_workers=g.num_workers, use_gpu=g.use_gpu,
            resources_per_worker={"CPU": g.cpus_per_worker, **({"GPU": 1} if g.use_gpu else {})},
        ),
        run_config=RunConfig(
            name=RAY_RUN_NAME, storage_path=str(run_dir / "ray"),
            failure_config=FailureConfig(max_failures=g.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=g.checkpoints_to_keep),
        ),
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError(f"training of {run_dir} ended without a checkpoint")
    with result.checkpoint.as_directory() as d:
        state = torch.load(Path(d) / "state.pt", weights_only=False)
    return export_model(cfg, run_dir, graph, state, result.checkpoint.path)


def export_model(cfg: ZippConfig, run_dir: Path, graph: Graph, state: dict[str, Any], checkpoint_path: str) -> dict[str, Any]:
    from zipp.graph.evaluate import popularity_metrics
    from zipp.graph.model import ModelSpec, ZippGAT

    g = cfg.graph
    best = state["best"]
    weights = best["state"] if best.get("state") is not None else state["model"]
    model = ZippGAT(ModelSpec(**state["spec"]))
    model.load_state_dict(weights)
    test = evaluate_model(model, graph, g, "test")
    test.update(popularity_metrics(graph, "test", g.hits_k, g.eval_max_users, seed=g.seed))
    out_dir = run_dir / "model"
    out_dir.mkdir(parents=True, exist_ok=True)
    artifact = {
        "state": weights, "spec": state["spec"], "stats": state["stats"], "id_maps": state["id_maps"],
        "config": state["config"], "epoch": best.get("epoch") or state["epoch"], "last_epoch": state["epoch"],
        "checkpoint": str(checkpoint_path), "val": {k: v for k, v in best.get("metrics", {}).items()}, "test": test,
    }
    tmp = out_dir / "model.pt.tmp"
    torch.save(artifact, tmp)
    tmp.replace(out_dir / "model.pt")
    summary = {
        "best_epoch": artifact["epoch"], "last_epoch": state["epoch"], "early_stopped": bool(state.get("stopped")),
        "checkpoint": str(checkpoint_path), "val": artifact["val"], "test": test, "graph": graph.meta,
    }
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def load_model_artifact(run_dir: Path):
    """(model in eval mode, artifact dict) from ``<run>/model/model.pt``."""
    from zipp.graph.model import ModelSpec, ZippGAT

    path = Path(run_dir) / "model" / "model.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `zipp train --run {Path(run_dir).name}` first")
    art = torch.load(path, weights_only=False)
    model = ZippGAT(ModelSpec(**art["spec"]))
    model.load_state_dict(art["state"])
    model.eval()
    return model, art
