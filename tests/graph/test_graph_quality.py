"""Done-when figures on planted-community graphs, through the real stages (Ray Train + export):
posting accuracy vs the popularity baseline, the ImageAlign ablation, and whether top-attention
subreddits match the planted interests more often than chance.

Attention is checked on a graph whose edge counts carry no interest signal (same comment and
submission rates on and off interest): with the default generator, a user's most-commented
subreddit is already on-interest ~99% of the time, and attention that follows the counts proves
little. Here chance and the most-comments heuristic coincide, so beating chance means the model
used the graph structure."""

import json

import pytest
from graph_fixtures import attention_match, graph_config, planted

from zipp import tables as T
from zipp.lake import read_arrow

pytestmark = pytest.mark.slow

QUALITY = ["graph.hidden_dim=64", "graph.heads=4", "graph.subreddit_id_dim=16", "graph.batch_size=256",
           "graph.fanout=[10, 5]", "graph.epochs=8", "graph.patience=3", "graph.eval_max_users=5000"]
NO_COUNT_SIGNAL = {"on_topic_comments": 2.0, "off_topic_comments": 2.0, "on_topic_submissions": 0.5, "off_topic_submissions": 0.5}


def quality_run(root, seed: int, image_align_weight: float, **graph_kw) -> dict:
    """Train + embed on a planted graph; returns test metrics, the baseline and the attention match."""
    from zipp.graph.stage import EmbedUsersStage, TrainStage
    from zipp.runtime import Runtime
    from zipp.stage import StageContext, run_stage

    pg = planted(seed=seed, n_users=1000, n_subreddits=100, n_communities=8, n_generic=5, image_dim=32, **graph_kw)
    pg.write(root / "lake")
    cfg = graph_config(root, *QUALITY, f"graph.seed={seed}", f"graph.split_seed={seed}",
                       f"graph.image_align_weight={image_align_weight}")
    ctx = StageContext(cfg=cfg, run_dir=root / "runs" / "q", runtime=Runtime(cfg.runtime))
    train = run_stage(TrainStage(), ctx).extra
    run_stage(EmbedUsersStage(), ctx)
    att = read_arrow(root / "lake", T.GOLD_ATTENTION)
    return {"test": train["test"], "best_epoch": train["best_epoch"], "attention": attention_match(att, pg)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, ray_cluster):
    out = {
        "align": quality_run(tmp_path_factory.mktemp("qa"), 0, 0.1),
        "no_align": quality_run(tmp_path_factory.mktemp("qn"), 0, 0.0),
        "structure_only": quality_run(tmp_path_factory.mktemp("qs"), 0, 0.1, **NO_COUNT_SIGNAL),
    }
    print(json.dumps(out, indent=1, default=float))
    return out


def test_posting_accuracy_is_clearly_above_the_popularity_baseline(runs):
    for name in ("align", "no_align", "structure_only"):
        t = runs[name]["test"]
        assert t["test_acc"] >= t["test_pop_acc"] + 0.08, (name, t)
        assert t["test_auc"] > t["test_pop_auc"] and t["test_hits"] > t["test_pop_hits"], (name, t)


def test_top_attention_subreddits_match_planted_interests_more_than_chance(runs):
    att = runs["structure_only"]["attention"]
    mixed = {layer: res["mixed"] for layer, res in att.items()}
    for m in mixed.values():
        assert m["users"] > 100
        assert abs(m["most_activity"] - m["chance"]) < 0.05  # counts really carry no signal here
    best = max(m["top_attention_on_interest"] - m["chance"] for m in mixed.values())
    assert best > 0.08, mixed
    assert all(m["top_attention_on_interest"] > m["chance"] for m in mixed.values()), mixed


def test_image_align_learns_to_retrieve_a_users_images(runs):
    assert runs["align"]["test"]["test_align_top1"] > 5 / 256  # chance: 1/256
    assert "test_align_top1" not in runs["no_align"]["test"]  # lambda = 0: no head at all
