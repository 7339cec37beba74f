import pytest
import torch
from torch_geometric.utils import scatter

from zipp.config import GraphConfig
from zipp.graph.build import EDGE, REV, SUB, USER
from zipp.graph.layerwise import chunks, csc, layerwise_embed
from zipp.graph.model import ModelSpec, ZippGAT, spec_from_config


def _model(graph, **kw):
    torch.manual_seed(0)
    g = GraphConfig(hidden_dim=16, heads=2, subreddit_id_dim=4, **kw)
    return ZippGAT(spec_from_config(g, graph))


def test_attention_is_a_softmax_over_each_destinations_incoming_edges(small_graph):
    model = _model(small_graph).eval()
    with torch.no_grad():
        z, attn = model.embed(small_graph.data, return_attention=True)
    assert z[USER].shape == (small_graph.num_users, 16) and z[SUB].shape == (small_graph.num_subreddits, 16)
    assert set(attn) == {("conv1", "u2s"), ("conv1", "s2u"), ("conv2", "u2s"), ("conv2", "s2u")}
    for (layer, rel), (ei, alpha) in attn.items():
        et = EDGE if rel == "u2s" else REV
        assert torch.equal(ei, small_graph.data[et].edge_index)  # no self loops were added
        assert alpha.shape == (ei.size(1), 2)
        sums = scatter(alpha, ei[1], dim=0, reduce="sum")
        has_edges = torch.bincount(ei[1], minlength=sums.size(0)) > 0
        assert torch.allclose(sums[has_edges], torch.ones_like(sums[has_edges]), atol=1e-5)


def test_layerwise_inference_equals_the_full_batch_forward(small_graph):
    model = _model(small_graph).eval()
    with torch.no_grad():
        full, attn = model.embed(small_graph.data, return_attention=True)
    # tiny chunks: many destination ranges per layer, one node alone when its degree is over the edge budget
    z, lw_attn = layerwise_embed(model, small_graph.data, batch_nodes=7, batch_edges=20, attention=True)
    assert torch.allclose(z[USER], full[USER], atol=1e-5) and torch.allclose(z[SUB], full[SUB], atol=1e-5)
    assert set(lw_attn) == {"conv1", "conv2"}
    for layer in ("conv1", "conv2"):
        assert torch.allclose(lw_attn[layer], attn[(layer, "s2u")][1], atol=1e-5)


def test_chunks_cover_every_node_once_within_budgets():
    colptr, _, _ = csc(torch.tensor([[0, 1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 2, 3]]), 5)
    parts = chunks(colptr, max_nodes=2, max_edges=3)
    assert parts[0] == (0, 1)  # node 0 alone: 5 edges > budget
    covered = [n for a, b in parts for n in range(a, b)]
    assert covered == list(range(5))
    assert all(b - a <= 2 for a, b in parts)


def test_users_need_no_id_embedding_and_unknown_subreddits_share_a_row(small_graph):
    model = _model(small_graph)
    assert model.sub_id.num_embeddings == len(small_graph.stats["sub_vocab"]) + 1
    assert not any("user" in n and "emb" in n for n, _ in model.named_parameters())
    x = small_graph.data[SUB].x[:2]
    oov = torch.tensor([len(small_graph.stats["sub_vocab"])] * 2)
    h = model.encode_subreddits(x, oov)
    assert h.shape == (2, 16)


def test_image_align_is_infonce_with_a_learnable_temperature(small_graph):
    model = _model(small_graph, image_align_weight=0.5)
    assert model.spec.image_dim == small_graph.images.shape[1]
    z = torch.randn(8, 16)
    with torch.no_grad():
        target = torch.nn.functional.normalize(model.align_proj(z), dim=-1)
    aligned = model.image_align_loss(z, target)
    shuffled = model.image_align_loss(z, target.roll(1, 0))
    assert aligned < shuffled
    aligned.backward()
    assert model.logit_scale.grad is not None and model.logit_scale.grad != 0
    # fewer than two users: zero loss, but every head parameter still gets a (zero) gradient
    model.zero_grad()
    one = model.image_align_loss(z[:1], target[:1])
    one.backward()
    assert one.item() == 0.0 and all(p.grad is not None for p in model.align_proj.parameters())


def test_lambda_zero_builds_no_image_head(small_graph):
    model = _model(small_graph, image_align_weight=0.0)
    assert model.align_proj is None and model.spec.image_dim is None
    with pytest.raises(RuntimeError, match="without an ImageAlign head"):
        model.image_align_loss(torch.randn(3, 16), torch.randn(3, 4))


@pytest.mark.parametrize("decoder", ["dot", "mlp"])
def test_score_all_matches_pairwise_decode(small_graph, decoder):
    model = _model(small_graph, decoder=decoder).eval()
    zu, zs = torch.randn(5, 16), torch.randn(7, 16)
    with torch.no_grad():
        full = model.score_all(zu, zs, max_pairs=10)
        pair = model.decode(zu[3].expand(7, -1), zs)
    assert full.shape == (5, 7)
    assert torch.allclose(full[3], pair, atol=1e-5)


def test_spec_roundtrip_rebuilds_the_same_module(small_graph):
    model = _model(small_graph)
    clone = ZippGAT(ModelSpec(**model.spec.to_dict()))
    clone.load_state_dict(model.state_dict())
    x = small_graph.data[USER].x[:4]
    assert torch.equal(clone.encode_users(x), model.encode_users(x))


def test_history_path_and_subreddit_bias_are_inductive_and_exact_layerwise(small_graph):
    model = _model(small_graph, history_dim=8, subreddit_bias=True).eval()
    with torch.no_grad():
        model.sub_bias.weight.normal_()  # zero-initialised: make it matter
        model.hist_edge_w.normal_()
    assert not any("user" in n and "emb" in n for n, _ in model.named_parameters())
    vocab = len(small_graph.stats["sub_vocab"]) + 1
    assert model.hist_ctx.num_embeddings == vocab and model.sub_bias.num_embeddings == vocab
    with torch.no_grad():
        full = model.embed(small_graph.data)
    z, _ = layerwise_embed(model, small_graph.data, batch_nodes=7, batch_edges=20)
    assert torch.allclose(z[USER], full[USER], atol=1e-5) and torch.allclose(z[SUB], full[SUB], atol=1e-5)
    # the history changes the user embedding, and a user's history is its subreddits' mean
    without = ZippGAT(ModelSpec(**{**model.spec.to_dict(), "history_dim": 0, "subreddit_bias": False}))
    without.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith(("hist", "sub_bias"))})
    with torch.no_grad():
        base = without.eval().embed(small_graph.data)
    assert not torch.allclose(base[USER], full[USER])
    bias = model.subreddit_logit_bias(small_graph.data[SUB].emb_idx)
    with torch.no_grad():
        all_ = model.score_all(z[USER][:3], z[SUB], sub_bias=bias)
        pair = model.decode(z[USER][1].expand(z[SUB].size(0), -1), z[SUB], bias)
    assert torch.allclose(all_[1], pair, atol=1e-5)


def test_activity_prior_starts_attention_at_each_users_activity_share(planted_small, small_graph):
    """With the learned GATv2 term zeroed, attention over a user's subreddits is
    (1 + activity) / sum(1 + activity) for gamma = 1; gamma is learned, and inference layer by layer
    gives the same attention as the full forward."""
    model = _model(small_graph, attention_activity_prior=True).eval()
    assert sum(p.numel() for n, p in model.named_parameters() if n.endswith("prior_gamma")) == 2 * 2 * 2  # layers x relations x heads
    with torch.no_grad():
        for conv in model.convs:
            for c in conv.values():
                c.att.zero_()
        _, attn = model.embed(small_graph.data, return_attention=True)
    edges = planted_small.edges.to_pandas()
    activity = dict(zip(zip(edges.user_id, edges.subreddit_id), edges.n_comments + edges.n_submissions))
    ei, alpha = attn[("conv2", "s2u")]  # (subreddit, user) edges
    act = torch.tensor([float(activity[(small_graph.user_ids[u], small_graph.sub_ids[s])]) for s, u in ei.T.tolist()])
    want = (1 + act) / scatter(1 + act, ei[1], dim=0, reduce="sum", dim_size=small_graph.num_users)[ei[1]]
    assert torch.allclose(alpha, want[:, None].expand_as(alpha), atol=1e-4)
    assert not torch.allclose(want, 1 / torch.bincount(ei[1]).float()[ei[1]])  # counts differ: not uniform
    z, lw = layerwise_embed(model, small_graph.data, batch_nodes=7, batch_edges=20, attention=True)
    assert torch.allclose(lw["conv2"], alpha, atol=1e-5)
    clone = ZippGAT(ModelSpec(**model.spec.to_dict()))  # the spec carries the feature standardisation
    clone.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.allclose(clone.eval().embed(small_graph.data)[USER], z[USER], atol=1e-5)


def test_last_layer_can_have_its_own_head_count(small_graph):
    model = _model(small_graph, last_layer_heads=1).eval()
    with torch.no_grad():
        full, attn = model.embed(small_graph.data, return_attention=True)
    assert attn[("conv1", "s2u")][1].shape[1] == 2 and attn[("conv2", "s2u")][1].shape[1] == 1
    assert full[USER].shape == (small_graph.num_users, 16)  # one head of width hidden_dim
    z, lw = layerwise_embed(model, small_graph.data, batch_nodes=7, batch_edges=20, attention=True)
    assert torch.allclose(z[USER], full[USER], atol=1e-5)
    assert torch.allclose(lw["conv2"], attn[("conv2", "s2u")][1], atol=1e-5) and lw["conv1"].shape[1] == 2
