"""Exact full-neighbourhood inference, one layer at a time, in chunks of destination nodes.

Layer ``l`` is computed for every node before layer ``l+1``; each chunk takes a contiguous range of
destination nodes together with *all* their incoming edges (CSC order), so GATv2's softmax over a
node's incoming edges is complete inside the chunk: attention sums to exactly 1 per destination and
head, and the result equals a full-batch forward. Memory is bounded by ``batch_nodes`` /
``batch_edges`` per chunk (a node whose in-degree alone exceeds ``batch_edges`` gets its own chunk).
"""

from __future__ import annotations

import torch
from torch import Tensor

from zipp.graph.build import REV, SUB, USER
from zipp.graph.model import RELATIONS, ZippGAT


def csc(edge_index: Tensor, num_dst: int) -> tuple[Tensor, Tensor, Tensor]:
    """(colptr, src sorted by dst, original edge id sorted by dst)."""
    perm = torch.argsort(edge_index[1], stable=True)
    counts = torch.bincount(edge_index[1], minlength=num_dst)
    colptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    return colptr, edge_index[0][perm], perm


def chunks(colptr: Tensor, max_nodes: int, max_edges: int) -> list[tuple[int, int]]:
    """Split destination nodes [0, N) into contiguous ranges of <= max_nodes nodes and, unless a single
    node is larger, <= max_edges incoming edges."""
    n = colptr.numel() - 1
    out, a = [], 0
    while a < n:
        b_nodes = min(n, a + max_nodes)
        b_edges = int(torch.searchsorted(colptr, colptr[a] + max_edges, right=True)) - 1
        b = max(a + 1, min(b_nodes, b_edges))
        out.append((a, b))
        a = b
    return out


@torch.no_grad()
def layerwise_embed(
    model: ZippGAT,
    data,
    batch_nodes: int = 4096,
    batch_edges: int = 1_000_000,
    attention: bool = False,
    device: str | torch.device = "cpu",
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Final embeddings {user: [U, h], subreddit: [S, h]} (on CPU) and, with ``attention``,
    {layer_name: alpha [E, heads]} of the subreddit->user relation indexed by edge id of ``data``'s
    reverse edges (user is the destination, so each user's alphas sum to 1 per head)."""
    was_training = model.training
    model.eval()
    try:
        h = {
            USER: _rows(lambda x: model.encode_users(x.to(device)), data[USER].x, batch_nodes),
            SUB: _rows(lambda x, i: model.encode_subreddits(x.to(device), i.to(device)), data[SUB].x, batch_nodes, data[SUB].emb_idx),
        }
        adj = {}
        for rel, et, src_t, dst_t in RELATIONS:
            adj[rel] = csc(data[et].edge_index, data[dst_t].num_nodes)
        attn: dict[str, Tensor] = {}
        for layer in range(model.spec.num_layers):
            heads = model.layer_heads(layer)
            new = {}
            for rel, et, src_t, dst_t in RELATIONS:
                colptr, src_sorted, eid_sorted = adj[rel]
                want = attention and rel == "s2u"
                out = torch.empty_like(h[dst_t])
                alpha_all = torch.zeros((data[et].edge_index.size(1), heads)) if want else None
                edge_attr = data[et].edge_attr
                for a, b in chunks(colptr, batch_nodes, batch_edges):
                    lo, hi = int(colptr[a]), int(colptr[b])
                    src = src_sorted[lo:hi]
                    eid = eid_sorted[lo:hi]
                    dst_local = torch.repeat_interleave(torch.arange(b - a), colptr[a + 1:b + 1] - colptr[a:b])
                    uniq, inv = torch.unique(src, return_inverse=True)
                    ei = torch.stack([inv, dst_local]).to(device)
                    res, alpha = model.conv_step(
                        layer, rel, dst_t, h[src_t][uniq].to(device), h[dst_t][a:b].to(device), ei,
                        edge_attr[eid].to(device), return_attention=want,
                    )
                    out[a:b] = res.cpu()
                    if want:
                        alpha_all[eid] = alpha.float().cpu()
                new[dst_t] = out
                if want:
                    attn[model.layer_names[layer]] = alpha_all
            h = new
        if model.hist_ctx is not None:  # FISM-style history path: weighted sums over edge chunks
            rev = data[REV]
            n_users = h[USER].size(0)
            num = torch.zeros((n_users, model.spec.history_dim), device=device)
            den = torch.zeros(n_users, device=device)
            emb_idx = data[SUB].emb_idx
            for a in range(0, rev.edge_index.size(1), batch_edges):
                src, dst = rev.edge_index[0][a:a + batch_edges], rev.edge_index[1][a:a + batch_edges]
                n_, d_ = model.history_sums(emb_idx[src].to(device), rev.edge_attr[a:a + batch_edges].to(device), dst.to(device), n_users)
                num += n_
                den += d_
            out = model.add_history({USER: h[USER].to(device), SUB: h[SUB].to(device)}, num, den, emb_idx.to(device))
            h = {k: v.cpu() for k, v in out.items()}
        return h, attn
    finally:
        model.train(was_training)


def _rows(fn, x: Tensor, n: int, *extra: Tensor) -> Tensor:
    parts = [fn(x[a:a + n], *(e[a:a + n] for e in extra)).cpu() for a in range(0, x.size(0), n)]
    return torch.cat(parts) if parts else fn(x[:0], *(e[:0] for e in extra)).cpu()
