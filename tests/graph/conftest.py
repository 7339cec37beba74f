"""Graph-test fixtures: small gold lakes with planted interest communities, one built graph and one
trained run (real Ray Train, 2 workers) shared by the session."""

from __future__ import annotations

import pytest
from graph_fixtures import gold_of, graph_config, planted


@pytest.fixture(scope="session")
def planted_small():
    return planted()


@pytest.fixture
def planted_lake(tmp_path, planted_small):
    """A tmp lake holding gold/users, gold/subreddits, gold/user_subreddit_edges, gold/image_embeddings."""
    planted_small.write(tmp_path / "lake")
    return tmp_path


@pytest.fixture(scope="session")
def small_graph(planted_small):
    from zipp.config import GraphConfig
    from zipp.graph.build import build_graph

    return build_graph(gold_of(planted_small), GraphConfig(), split=True)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, planted_small, ray_cluster):
    """One real Ray Train run on the planted lake (2 workers), shared by the session: the stage runs
    for 1 epoch, then again asking for 2 epochs, which resumes from the epoch-1 checkpoint (as a
    resubmitted job would)."""
    from zipp.graph.stage import TrainStage
    from zipp.graph.train import graph_path
    from zipp.runtime import Runtime
    from zipp.stage import StageContext, run_stage

    root = tmp_path_factory.mktemp("trained")
    planted_small.write(root / "lake")
    run_dir = root / "runs" / "r1"
    cfg1 = graph_config(root, "graph.num_workers=2", "graph.epochs=1")
    run_stage(TrainStage(), StageContext(cfg=cfg1, run_dir=run_dir, runtime=Runtime(cfg1.runtime)))
    mtime_before = graph_path(run_dir).stat().st_mtime_ns
    cfg = graph_config(root, "graph.num_workers=2", "graph.epochs=2")
    ctx = StageContext(cfg=cfg, run_dir=run_dir, runtime=Runtime(cfg.runtime))
    result = run_stage(TrainStage(), ctx)
    return {
        "root": root, "cfg": cfg, "run_dir": run_dir, "result": result, "ctx": ctx,
        "graph_mtime_before": mtime_before, "graph_mtime_after": graph_path(run_dir).stat().st_mtime_ns,
    }
