import math

import pytest
import torch
from graph_fixtures import graph_config
from torch_geometric.data import HeteroData
from torch_geometric.loader import LinkLoader
from torch_geometric.sampler import EdgeSamplerInput, NodeSamplerInput

from zipp.graph.build import EDGE, REV, SUB, USER, pair_keys
from zipp.graph.sampler import (
    LinkNeighborSampler,
    TorchNeighborSampler,
    drop_pairs,
    make_neighbor_sampler,
    pyg_sampler_available,
)
from zipp.graph.train import make_loader


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)  # sampling is random: make every test here deterministic


def _global_pairs(batch, et):
    """(user, subreddit) global ids of the sampled edges of ``et``."""
    ei = batch[et].edge_index
    if et == EDGE:
        return batch[USER].n_id[ei[0]], batch[SUB].n_id[ei[1]]
    return batch[USER].n_id[ei[1]], batch[SUB].n_id[ei[0]]


def _star_graph(n_users: int = 100, extra_subs: int = 3) -> HeteroData:
    """Subreddit 0 has every user; subreddits 1.. have a few users each."""
    u = [*range(n_users), *[i % n_users for i in range(extra_subs * 4)]]
    s = [0] * n_users + [1 + i // 4 for i in range(extra_subs * 4)]
    d = HeteroData()
    d[USER].x = torch.zeros(n_users, 1)
    d[SUB].x = torch.zeros(1 + extra_subs, 1)
    ei = torch.tensor([u, s])
    d[EDGE].edge_index = ei
    d[EDGE].edge_attr = torch.arange(ei.size(1)).float().unsqueeze(1)
    d[REV].edge_index = ei.flip(0)
    d[REV].edge_attr = d[EDGE].edge_attr
    return d


def test_pure_torch_sampler_plugs_into_link_loader_and_samples_real_edges(small_graph):
    data = small_graph.data
    sampler = TorchNeighborSampler(data, [6, 3])
    loader = LinkLoader(data, link_sampler=sampler, edge_label_index=(EDGE, data[EDGE].edge_index),
                        neg_sampling="binary", batch_size=64, shuffle=True)
    mp = set(zip(*(t.tolist() for t in data[EDGE].edge_index)))
    n_batches = 0
    for batch in loader:
        n_batches += 1
        for et in (EDGE, REV):
            u, s = _global_pairs(batch, et)
            assert set(zip(u.tolist(), s.tolist())) <= mp  # every sampled edge exists in the graph
            e_id = batch[et].e_id
            assert e_id.unique().numel() == e_id.numel()  # no edge twice
            orig = data[et].edge_index[:, e_id]  # e_id points at the same edge and its features
            assert torch.equal(orig, torch.stack([batch[et[0]].n_id[batch[et].edge_index[0]], batch[et[2]].n_id[batch[et].edge_index[1]]]))
            assert torch.equal(batch[et].edge_attr, data[et].edge_attr[e_id])
    assert n_batches == math.ceil(data[EDGE].edge_index.size(1) / 64)


def test_binary_negative_sampling_has_pygs_label_layout(small_graph):
    data = small_graph.data
    sampler = TorchNeighborSampler(data, [4, 2])
    loader = LinkLoader(data, link_sampler=sampler, edge_label_index=(EDGE, data[EDGE].edge_index),
                        neg_sampling={"mode": "binary", "amount": 2}, batch_size=50, shuffle=False)
    batch = next(iter(loader))
    store = batch[EDGE]
    assert torch.equal(store.edge_label, torch.cat([torch.ones(50), torch.zeros(100)]))
    assert torch.equal(store.input_id, torch.arange(50))
    eli = store.edge_label_index
    pos = torch.stack([batch[USER].n_id[eli[0, :50]], batch[SUB].n_id[eli[1, :50]]])
    assert torch.equal(pos, data[EDGE].edge_index[:, :50])  # positives are the input edges, in order
    # the label endpoints are the seeds, and seeds come first in the node lists
    n_seed_users = batch[USER].num_sampled_nodes[0]
    assert set(eli[0].tolist()) == set(range(n_seed_users))


def test_fanout_is_respected_per_hop_and_exact_when_degree_allows():
    data = _star_graph(n_users=100)  # subreddit 0: degree 100 (> 4k); subreddits 1-3: degree 4 (<= k)
    k = 5
    sampler = TorchNeighborSampler(data, [k, k])
    full_fanout = 0
    for _ in range(50):
        out = sampler._sample({SUB: torch.tensor([0, 1, 2, 3]), USER: torch.empty(0, dtype=torch.long)})
        for et in data.edge_types:
            bounds = [0, *torch.tensor(out.num_sampled_edges[et]).cumsum(0).tolist()]
            for hop in range(2):
                cols = out.col[et][bounds[hop]:bounds[hop + 1]]
                if cols.numel():
                    assert int(torch.bincount(cols).max()) <= k  # never more than the fanout per node and hop
        n0 = out.num_sampled_edges[EDGE][0]
        per_seed = torch.bincount(out.col[EDGE][:n0], minlength=4)
        assert per_seed[1:].tolist() == [4, 4, 4]  # degree <= k: every edge
        assert 1 <= int(per_seed[0]) <= k
        full_fanout += int(per_seed[0]) == k
        # hop 2: each sampled user expands all of its (<= 2) subreddits
        n1 = out.num_sampled_edges[REV][1]
        users = out.node[USER][out.col[REV][:n1]].unique()
        deg = sampler.colptr[REV][users + 1] - sampler.colptr[REV][users]
        assert n1 == int(deg.sum())
    assert full_fanout >= 45  # high degree: k distinct edges except with small probability
    # k < degree <= 4k: exactly k distinct edges, drawn without replacement
    mid = TorchNeighborSampler(_star_graph(n_users=12), [k])
    for _ in range(20):
        out = mid._sample({SUB: torch.tensor([0]), USER: torch.empty(0, dtype=torch.long)})
        assert out.row[EDGE].numel() == k and out.edge[EDGE].unique().numel() == k


def test_high_degree_sampling_is_close_to_uniform():
    data = _star_graph(n_users=100)
    sampler = TorchNeighborSampler(data, [5])
    counts = torch.zeros(100)
    total = 0
    for _ in range(2000):
        out = sampler._sample({SUB: torch.tensor([0]), USER: torch.empty(0, dtype=torch.long)})
        users = out.node[USER][out.row[EDGE]]
        counts += torch.bincount(users, minlength=100)[:100].float()
        total += users.numel()
    assert total >= 2000 * 5 * 0.99  # (almost) always the full fanout
    expected = total / 100
    assert counts.min() > 0.5 * expected and counts.max() < 1.5 * expected


def test_full_neighbourhood_when_fanout_exceeds_every_degree(small_graph):
    data = small_graph.data
    big = int(torch.bincount(data[EDGE].edge_index[1]).max()) + 1
    sampler = TorchNeighborSampler(data, [big])
    seeds = {USER: torch.tensor([0, 5, 9]), SUB: torch.tensor([2])}
    out = sampler._sample(seeds)
    got = set(out.edge[REV].tolist())  # incoming edges of the seed users
    want = set(torch.nonzero(torch.isin(data[REV].edge_index[1], seeds[USER])).flatten().tolist())
    assert got == want
    got = set(out.edge[EDGE].tolist())
    want = set(torch.nonzero(data[EDGE].edge_index[1] == 2).flatten().tolist())
    assert got == want


def test_node_sampling_through_the_same_sampler(small_graph):
    sampler = TorchNeighborSampler(small_graph.data, [3, 2])
    out = sampler.sample_from_nodes(NodeSamplerInput(input_id=None, node=torch.tensor([4, 1, 8]), input_type=USER))
    assert out.node[USER][:3].tolist() == [4, 1, 8]
    assert out.num_sampled_nodes[USER][0] == 3


def test_training_batches_never_contain_heldout_or_their_own_edges(tmp_path, small_graph):
    cfg = graph_config(tmp_path)
    graph = small_graph
    n_sub = graph.num_subreddits
    held_out = set(pair_keys(torch.cat([graph.split["val"], graph.split["test"]], 1), n_sub).tolist())
    train_keys = set(pair_keys(graph.split["train"], n_sub).tolist())
    loader = make_loader(graph, cfg.graph, graph.split["train"])
    for batch in loader:
        eli, label = batch[EDGE].edge_label_index, batch[EDGE].edge_label
        seed_keys = set((batch[USER].n_id[eli[0]] * n_sub + batch[SUB].n_id[eli[1]])[label == 1].tolist())
        for et in (EDGE, REV):
            u, s = _global_pairs(batch, et)
            keys = set((u * n_sub + s).tolist())
            assert not keys & held_out  # no leak of validation/test edges
            assert not keys & seed_keys  # the edges being predicted are not in their own message passing
        # negatives: the positive's user, a subreddit that is not one of its training edges
        neg = label == 0
        assert int(neg.sum()) == int((label == 1).sum())
        neg_keys = (batch[USER].n_id[eli[0][neg]] * n_sub + batch[SUB].n_id[eli[1][neg]]).tolist()
        assert not set(neg_keys) & train_keys
        assert torch.equal(batch[USER].n_id[eli[0][neg]], batch[USER].n_id[eli[0][~neg]])


def test_link_sampler_rejects_loader_negatives(small_graph):
    base = TorchNeighborSampler(small_graph.data, [2])
    s = LinkNeighborSampler(base, {USER: small_graph.num_users, SUB: small_graph.num_subreddits})
    inp = EdgeSamplerInput(input_id=torch.arange(2), row=torch.tensor([0, 1]), col=torch.tensor([0, 1]), input_type=EDGE)
    from torch_geometric.sampler import NegativeSampling

    with pytest.raises(ValueError, match="own negatives"):
        s.sample_from_edges(inp, NegativeSampling("binary"))


def test_drop_pairs_keeps_per_hop_counts_consistent(small_graph):
    sampler = TorchNeighborSampler(small_graph.data, [1000, 1000])  # full neighbourhoods: the seed edges are sampled
    ei = small_graph.data[EDGE].edge_index[:, :10]
    out = sampler._sample({USER: ei[0].unique(), SUB: ei[1].unique()})
    n_sub = small_graph.num_subreddits
    before = {et: out.row[et].numel() for et in (EDGE, REV)}
    out = drop_pairs(out, pair_keys(ei, n_sub), n_sub)
    for et in (EDGE, REV):
        assert sum(out.num_sampled_edges[et]) == out.row[et].numel() == out.col[et].numel() == out.edge[et].numel()
        assert out.row[et].numel() < before[et]


def test_backend_choice_follows_what_is_installed(small_graph):
    s = make_neighbor_sampler(small_graph.data, [2, 2], "auto")
    if pyg_sampler_available():
        assert not isinstance(s, TorchNeighborSampler)
    else:
        assert isinstance(s, TorchNeighborSampler)
        with pytest.raises(ImportError, match="graph.sampler=torch"):
            make_neighbor_sampler(small_graph.data, [2, 2], "pyg")
    assert isinstance(make_neighbor_sampler(small_graph.data, [2, 2], "torch"), TorchNeighborSampler)


def test_activity_weighted_positives_are_each_edges_own_activity(tmp_path, planted_small, small_graph):
    from zipp.graph.train import positive_weights

    graph, train = small_graph, small_graph.split["train"]
    edges = planted_small.edges.to_pandas()
    activity = dict(zip(zip(edges.user_id, edges.subreddit_id), edges.n_comments + edges.n_submissions))
    want = torch.tensor([float(activity[(graph.user_ids[u], graph.sub_ids[s])]) for u, s in train.T.tolist()],
                        dtype=torch.float64)
    assert positive_weights(graph, graph_config(tmp_path, "graph.positive_weighting=uniform").graph, train) is None
    got_log = positive_weights(graph, graph_config(tmp_path, "graph.positive_weighting=log_activity").graph, train)
    got_lin = positive_weights(graph, graph_config(tmp_path, "graph.positive_weighting=activity").graph, train)
    assert torch.allclose(got_log, torch.log1p(want)) and torch.equal(got_lin, want.clamp_min(1.0))
    part = train[:, 5:17]  # a rank's slice: weights follow its edges, not the table order
    assert torch.equal(positive_weights(graph, graph_config(tmp_path, "graph.positive_weighting=activity").graph, part),
                       want[5:17].clamp_min(1.0))


def test_weighted_positives_are_drawn_by_activity(tmp_path, small_graph):
    cfg = graph_config(tmp_path, "graph.positive_weighting=activity", "graph.batch_size=4096")
    graph, n_sub = small_graph, small_graph.num_subreddits
    from zipp.graph.train import positive_weights

    w = positive_weights(graph, cfg.graph, graph.split["train"])
    heavy = set(pair_keys(graph.split["train"][:, w >= w.median()], n_sub).tolist())
    drawn = []
    for _ in range(20):
        for batch in make_loader(graph, cfg.graph, graph.split["train"]):
            eli, label = batch[EDGE].edge_label_index, batch[EDGE].edge_label
            drawn += (batch[USER].n_id[eli[0]] * n_sub + batch[SUB].n_id[eli[1]])[label == 1].tolist()
    share_heavy = sum(k in heavy for k in drawn) / len(drawn)
    expected = float(w[w >= w.median()].sum() / w.sum())  # uniform would give about half
    assert abs(share_heavy - expected) < 0.03 and expected > 0.6


def test_popularity_weighted_negatives_follow_training_degree(small_graph):
    n_sub = small_graph.num_subreddits
    deg = torch.bincount(small_graph.split["train"][1], minlength=n_sub).double()
    num_nodes = {USER: small_graph.num_users, SUB: n_sub}
    known = pair_keys(small_graph.split["train"], n_sub)
    src = torch.zeros(20000, dtype=torch.long)  # user 0 against everything it never posted in
    counts = {}
    for weights in (None, deg + 1.0):
        s = LinkNeighborSampler(make_neighbor_sampler(small_graph.data, [2, 2], "torch"), num_nodes, known_keys=known,
                                neg_weights=weights)
        neg_src, neg_dst = s.negatives(src)
        assert not set((neg_src * n_sub + neg_dst).tolist()) & set(known.tolist())
        counts[weights is None] = torch.bincount(neg_dst, minlength=n_sub).double()
    free = torch.ones(n_sub, dtype=torch.bool)
    free[small_graph.split["train"][1][small_graph.split["train"][0] == 0]] = False
    popular, rare = torch.argmax(torch.where(free, deg, -1.0)), torch.argmin(torch.where(free, deg, 1e9))
    weighted, uniform = (float(counts[k][popular] / counts[k][rare].clamp_min(1.0)) for k in (False, True))
    want = float((deg[popular] + 1) / (deg[rare] + 1))
    assert weighted > 2.0 * uniform  # uniform: about 1
    assert abs(weighted - want) < 0.35 * want
