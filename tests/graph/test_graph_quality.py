"""Done-when figures on a planted-community graph, through the real stages (Ray Train + export):
posting accuracy vs the popularity baseline, the ImageAlign ablation, and whether top-attention
subreddits match the planted interests more often than chance."""

import json

import pytest

from graph_fixtures import attention_match, graph_config, planted
from zipp import tables as T
from zipp.lake import read_arrow

pytestmark = pytest.mark.slow

QUALITY = ["graph.hidden_dim=64", "graph.heads=4", "graph.subreddit_id_dim=16", "graph.batch_size=256",
           "graph.fanout=[10, 5]", "graph.epochs=8", "graph.patience=3", "graph.eval_max_users=5000"]


def quality_run(root, seed: int, image_align_weight: float, ray_cluster=None) -> dict:
    """Train + embed on a planted graph; returns test metrics, baseline and attention match."""
    from zipp.graph.stage import EmbedUsersStage, TrainStage
    from zipp.runtime import Runtime
    from zipp.stage import StageContext, run_stage

    pg = planted(seed=seed, n_users=1000, n_subreddits=100, n_communities=8, n_generic=5, image_dim=32)
    pg.write(root / "lake")
    cfg = graph_config(root, *QUALITY, f"graph.seed={seed}", f"graph.split_seed={seed}",
                       f"graph.image_align_weight={image_align_weight}")
    ctx = StageContext(cfg=cfg, run_dir=root / "runs" / "q", runtime=Runtime(cfg.runtime))
    train = run_stage(TrainStage(), ctx).extra
    run_stage(EmbedUsersStage(), ctx)
    att = read_arrow(root / "lake", T.GOLD_ATTENTION)
    return {"test": train["test"], "val": train["val"], "best_epoch": train["best_epoch"],
            "attention": attention_match(att, pg)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, ray_cluster):
    out = {lam: quality_run(tmp_path_factory.mktemp(f"q{lam}"), 0, lam) for lam in (0.1, 0.0)}
    print(json.dumps(out, indent=1, default=float))
    return out


def test_posting_accuracy_is_clearly_above_the_popularity_baseline(runs):
    t = runs[0.1]["test"]
    assert t["test_acc"] >= t["test_pop_acc"] + 0.08, t
    assert t["test_auc"] > t["test_pop_auc"] and t["test_hits"] > t["test_pop_hits"], t


def test_top_attention_subreddits_match_planted_interests_more_than_chance(runs):
    for layer, res in runs[0.1]["attention"].items():
        m = res["mixed"]
        assert m["users"] > 100
        assert m["top_attention_on_interest"] > m["chance"] + 0.05, (layer, m)


def test_image_align_learns_to_retrieve_a_users_images(runs):
    with_align, without = runs[0.1]["test"], runs[0.0]["test"]
    assert with_align["test_align_top1"] > 5 / 256  # chance is 1/256
    assert "test_align_top1" not in without  # lambda = 0: no head at all
