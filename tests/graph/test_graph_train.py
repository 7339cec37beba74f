import json

import pytest
import torch
from graph_fixtures import graph_config

from zipp.graph.train import graph_path, prepare_graph, rank_slice

EPOCH_KEYS = {
    "epoch", "loss", "bce", "align", "train_edges", "train_edges_per_s", "world_size", "resumed_from",
    "val_acc", "val_auc", "val_hits", "val_pop_acc", "val_pop_auc", "val_pop_hits", "best_epoch", "early_stopped",
}


def _records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_ray_train_run_writes_metrics_checkpoints_and_model(trained_run):
    run_dir = trained_run["run_dir"]
    recs = _records(run_dir)
    assert [r["epoch"] for r in recs] == [1, 2]
    for r in recs:
        assert EPOCH_KEYS <= set(r)
        assert r["world_size"] == 2
        assert 0.0 <= r["val_acc"] <= 1.0 and 0.0 <= r["val_pop_acc"] <= 1.0
        assert r["train_edges"] > 0 and r["loss"] > 0
    art = torch.load(run_dir / "model" / "model.pt", weights_only=False)
    assert {"state", "spec", "stats", "id_maps", "config", "epoch", "checkpoint", "test"} <= set(art)
    assert art["config"]["graph"]["num_workers"] == 2
    assert {"test_acc", "test_auc", "test_hits", "test_pop_acc"} <= set(art["test"])
    ckpts = sorted(p for p in (run_dir / "ray" / "train").glob("checkpoint_*") if p.is_dir())
    assert 1 <= len(ckpts) <= 2 and all((c / "state.pt").is_file() for c in ckpts)  # checkpoints_to_keep=2
    stats = json.loads((run_dir / "stats" / "train.json").read_text())
    assert stats["rows_out"] > 0 and stats["extra"]["best_epoch"] in (1, 2)


def test_resubmitting_a_run_resumes_from_its_latest_checkpoint(trained_run):
    """The fixture trained 1 epoch, then ran the stage again asking for 2: the second attempt
    continued at epoch 2 from the epoch-1 checkpoint and reused the graph (and so the split)."""
    recs = _records(trained_run["run_dir"])
    assert recs[0]["resumed_from"] is None
    assert recs[1]["resumed_from"] == 1 and recs[1]["epoch"] == 2
    assert trained_run["graph_mtime_before"] == trained_run["graph_mtime_after"]


def test_changing_the_split_of_an_existing_run_is_refused(trained_run):
    root = trained_run["root"]
    cfg = graph_config(root, "graph.val_frac=0.2")
    with pytest.raises(ValueError, match="new --run name"):
        prepare_graph(cfg, trained_run["run_dir"])
    assert graph_path(trained_run["run_dir"]).is_file()


def test_rank_slices_are_equal_disjoint_and_cover_every_edge():
    edges = torch.stack([torch.arange(11), torch.arange(11) * 10])
    parts = [rank_slice(edges, r, 3, seed=0) for r in range(3)]
    assert {p.size(1) for p in parts} == {4}  # 11 edges padded to 12: same step count on every rank
    seen = torch.cat([p[0] for p in parts])
    assert set(seen.tolist()) == set(range(11))
    assert torch.equal(rank_slice(edges, 1, 3, seed=0), parts[1])


def test_early_stopping_counts_epochs_without_improvement():
    from zipp.graph.train import EarlyStopping

    s = EarlyStopping(patience=2)
    assert s.update(1, 0.70) and s.update(2, 0.75)
    assert not s.update(3, 0.75) and not s.stop  # equal is not better
    assert not s.update(4, float("nan")) and s.stop  # NaN never improves
    assert (s.best, s.best_epoch) == (0.75, 2)
    assert s.update(5, 0.8) and not s.stop and s.bad_epochs == 0


@pytest.mark.slow
def test_training_stops_early_and_a_stopped_run_is_not_extended(tmp_path, planted_small, ray_cluster):
    from zipp.graph.stage import TrainStage
    from zipp.runtime import Runtime
    from zipp.stage import StageContext, run_stage

    planted_small.write(tmp_path / "lake")
    run_dir = tmp_path / "runs" / "es"
    # a learning rate too small to change any metric: no epoch after the first is an improvement
    cfg = graph_config(tmp_path, "graph.epochs=6", "graph.patience=1", "graph.lr=1e-12")
    run_stage(TrainStage(), StageContext(cfg=cfg, run_dir=run_dir, runtime=Runtime(cfg.runtime)))
    recs = _records(run_dir)
    assert [r["epoch"] for r in recs] == [1, 2]
    assert recs[-1]["early_stopped"] and recs[-1]["best_epoch"] == 1
    cfg = graph_config(tmp_path, "graph.epochs=8", "graph.patience=1", "graph.lr=1e-12")
    res = run_stage(TrainStage(), StageContext(cfg=cfg, run_dir=run_dir, runtime=Runtime(cfg.runtime)))
    assert len(_records(run_dir)) == 2  # nothing retrained
    assert res.extra["best_epoch"] == 1 and res.extra["early_stopped"]
