import numpy as np
import pyarrow as pa
import pytest
import torch
from graph_fixtures import gold_of, planted

from zipp.config import GraphConfig
from zipp.graph.build import (
    EDGE,
    REV,
    SUB,
    USER,
    Graph,
    build_graph,
    load_gold,
    pair_keys,
    split_edges,
)


def _pairs(ei):
    return set(zip(ei[0].tolist(), ei[1].tolist()))


def test_nodes_id_maps_and_feature_shapes(small_graph, planted_small):
    g = small_graph
    assert g.num_users == planted_small.users.num_rows
    assert g.num_subreddits == planted_small.subreddits.num_rows
    assert np.all(np.diff(g.user_ids) > 0) and np.all(np.diff(g.sub_ids) > 0)  # sorted, unique
    d = g.data
    assert d[USER].x.shape == (g.num_users, 6)
    assert d[SUB].x.shape == (g.num_subreddits, 5)
    assert d[EDGE].edge_attr.shape == (d[EDGE].edge_index.size(1), 8)
    assert torch.isfinite(d[EDGE].edge_attr).all() and torch.isfinite(d[USER].x).all()
    # subreddit id embedding index = position in the training vocabulary
    assert torch.equal(d[SUB].emb_idx, torch.arange(g.num_subreddits))
    # every gold edge is accounted for, in exactly one split
    total = sum(p.size(1) for p in g.split.values())
    assert total == planted_small.edges.num_rows == g.all_edges.size(1)


def test_heldout_edges_are_never_in_message_passing(small_graph):
    g = small_graph
    mp = _pairs(g.data[EDGE].edge_index)
    val, test, train = _pairs(g.split["val"]), _pairs(g.split["test"]), _pairs(g.split["train"])
    assert mp == train
    assert not (mp & val) and not (mp & test) and not (val & test)
    assert len(val) > 0 and len(test) > 0
    # the reverse relation is the same edges flipped, with the same ids and features
    assert torch.equal(g.data[REV].edge_index, g.data[EDGE].edge_index.flip(0))
    assert torch.equal(g.data[REV].edge_attr, g.data[EDGE].edge_attr)


def test_split_is_per_user_and_keeps_a_training_edge():
    cfg = GraphConfig(val_frac=0.2, test_frac=0.2, min_degree_holdout=3)
    users = np.repeat(np.arange(6), [1, 2, 3, 4, 10, 20])
    part = split_edges(users, 6, cfg)
    for u in range(6):
        p = part[users == u]
        deg = p.size
        if deg < 3:
            assert (p == 0).all()  # too few edges to hold any out
        else:
            assert (p == 0).sum() >= 1 and (p == 1).sum() >= 1 and (p == 2).sum() >= 1
    assert (part[users == 5] == 2).sum() == 4 and (part[users == 5] == 1).sum() == 4
    assert np.array_equal(part, split_edges(users, 6, cfg))  # deterministic for a seed
    assert not np.array_equal(part, split_edges(users, 6, GraphConfig(val_frac=0.2, test_frac=0.2, split_seed=1)))


def test_user_features_come_from_training_edges_only(small_graph):
    g = small_graph
    mean, std = g.stats["user"]["mean"][0], g.stats["user"]["std"][0]
    log_degree = g.data[USER].x[:, 0].double() * std + mean
    train_deg = torch.bincount(g.split["train"][0], minlength=g.num_users).double()
    assert torch.allclose(log_degree, torch.log1p(train_deg), atol=1e-4)
    all_deg = torch.bincount(g.all_edges[0], minlength=g.num_users).double()
    assert not torch.allclose(log_degree, torch.log1p(all_deg), atol=1e-4)


def test_image_table_is_the_normalised_mean_of_ok_embeddings(planted_small):
    pg = planted_small
    users = pg.users.slice(0, 3)
    uid = users["user_id"].to_pylist()
    rows = [  # user 0: two ok + one failed; user 1: only a failed one; user 2: another model id
        (uid[0], "ok", [1.0, 0.0, 0.0], "m"), (uid[0], "ok", [0.0, 1.0, 0.0], "m"),
        (uid[0], "http_error", None, "m"), (uid[1], "timeout", None, "m"), (uid[2], "ok", [0.0, 0.0, 1.0], "other"),
    ]
    images = pa.table({
        "user_id": pa.array([r[0] for r in rows], pa.int64()), "status": [r[1] for r in rows],
        "embedding": pa.array([r[2] for r in rows], pa.list_(pa.float32())), "model_id": [r[3] for r in rows],
    })
    gold = gold_of(pg)
    gold.image_embeddings = images
    g = build_graph(gold, GraphConfig(), split=True)
    idx = g.data[USER].img_idx
    pos = np.searchsorted(g.user_ids, uid)
    assert g.meta["image_model_id"] == "m"  # the most frequent model id among ok rows
    assert idx[pos[0]] >= 0 and idx[pos[1]] == -1 and idx[pos[2]] == -1
    assert (idx >= 0).sum() == 1
    v = g.images[idx[pos[0]]]
    assert torch.allclose(v, torch.tensor([1.0, 1.0, 0.0]) / 2**0.5, atol=1e-6)


def test_inference_build_reuses_stats_and_maps_new_subreddits_to_oov(small_graph, planted_small):
    # a later nightly: more users, one new subreddit
    later = planted(n_subreddits=31, seed=5, user_id_offset=10_000)
    import pyarrow as pa

    gold = gold_of(planted_small)
    gold.users = pa.concat_tables([planted_small.users, later.users])
    gold.edges = pa.concat_tables([planted_small.edges, later.edges])
    gold.subreddits = later.subreddits  # same ids 1000..1029 plus 1030
    inf = build_graph(gold, GraphConfig(), split=False, stats=small_graph.stats)
    assert inf.num_users == small_graph.num_users + later.users.num_rows
    assert inf.split["val"].size(1) == 0 and inf.data[EDGE].edge_index.size(1) == gold.edges.num_rows
    vocab = len(small_graph.stats["sub_vocab"])
    emb_idx = inf.data[SUB].emb_idx
    assert int((emb_idx == vocab).sum()) == 1 == inf.meta["subreddits_out_of_vocab"]
    assert inf.stats["user"] == small_graph.stats["user"] and inf.stats["edge"] == small_graph.stats["edge"]
    with pytest.raises(ValueError, match="training stats"):
        build_graph(gold, GraphConfig(), split=False)


def test_duplicate_edges_are_dropped(planted_small):
    gold = gold_of(planted_small)
    gold.edges = pa.concat_tables([planted_small.edges, planted_small.edges.slice(0, 5)])
    g = build_graph(gold, GraphConfig(), split=True)
    assert g.meta["duplicates_dropped"] == 5
    assert g.all_edges.size(1) == planted_small.edges.num_rows
    assert pair_keys(g.all_edges, g.num_subreddits).unique().numel() == g.all_edges.size(1)


def test_save_load_roundtrip_and_load_from_lake(planted_lake, tmp_path):
    gold = load_gold(planted_lake / "lake")
    g = build_graph(gold, GraphConfig(), split=True)
    g.save(tmp_path / "g" / "graph.pt")
    h = Graph.load(tmp_path / "g" / "graph.pt")
    assert torch.equal(h.split["test"], g.split["test"]) and np.array_equal(h.sub_names, g.sub_names)
    assert torch.equal(h.data[EDGE].edge_attr, g.data[EDGE].edge_attr)
    with pytest.raises(FileNotFoundError, match="gold/user_subreddit_edges"):
        load_gold(tmp_path / "empty-lake")
