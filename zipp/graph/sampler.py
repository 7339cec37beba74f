"""Neighbour sampling for link prediction that needs neither pyg-lib nor torch-sparse.

:class:`TorchNeighborSampler` is a vectorised pure-PyTorch :class:`~torch_geometric.sampler.BaseSampler`
over CSC adjacency with PyG's hetero semantics (for each hop and edge type, the destination-type
nodes added in the previous hop draw up to ``fanout[hop]`` incoming edges; row = local source
index, col = local destination index, edge = original edge id; seeds come first in ``node``).
It reuses PyG's own ``edge_sample``/``node_sample`` wrappers, so it plugs into ``LinkLoader`` and
``NodeLoader`` unchanged (``neg_sampling="binary"`` included).

Per destination node with degree ``d`` and fanout ``k``: ``d <= k`` takes every edge;
``k < d <= 4k`` draws ``k`` distinct edges uniformly without replacement (random keys);
``d > 4k`` draws ``2k`` with replacement, removes duplicates and keeps ``k`` of the distinct ones
at random (exactly ``k`` except with negligible probability). Never more than ``k``.

:class:`LinkNeighborSampler` wraps either that sampler or PyG's ``NeighborSampler`` (when pyg-lib or
torch-sparse is importable) and adds what link training here needs: per-user negatives
(the positive's user with a random subreddit, known training edges re-drawn) and removal of the
batch's own positive edges from its message passing (``exclude_seed_edges``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch_geometric.sampler import (
    BaseSampler,
    EdgeSamplerInput,
    HeteroSamplerOutput,
    NegativeSampling,
    NodeSamplerInput,
)
from torch_geometric.sampler.neighbor_sampler import edge_sample, node_sample

from zipp.graph.build import EDGE, REV, SUB, USER


def pyg_sampler_available() -> bool:
    import torch_geometric.typing as t

    return bool(t.WITH_PYG_LIB or t.WITH_TORCH_SPARSE)


class TorchNeighborSampler(BaseSampler):
    def __init__(self, data, num_neighbors: list[int]):
        self.node_types, self.edge_types = data.metadata()
        self.num_nodes = {nt: int(data[nt].num_nodes) for nt in self.node_types}
        self.num_neighbors = [int(k) for k in num_neighbors]
        self.colptr: dict[Any, Tensor] = {}
        self.row: dict[Any, Tensor] = {}
        self.eid: dict[Any, Tensor] = {}
        for et in self.edge_types:
            ei = data[et].edge_index
            dst = ei[1]
            perm = torch.argsort(dst, stable=True)
            counts = torch.bincount(dst, minlength=self.num_nodes[et[-1]])
            self.colptr[et] = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
            self.row[et] = ei[0][perm].contiguous()
            self.eid[et] = perm
        # scratch global->local maps, reset after every batch (O(sampled) instead of O(num_nodes))
        self._local = {nt: torch.full((n,), -1, dtype=torch.long) for nt, n in self.num_nodes.items()}

    @property
    def edge_permutation(self):
        return None  # `edge` already holds original edge ids

    def sample_from_edges(self, inputs: EdgeSamplerInput, neg_sampling: NegativeSampling | None = None) -> HeteroSamplerOutput:
        return edge_sample(inputs, self._sample, self.num_nodes, False, None, neg_sampling)

    def sample_from_nodes(self, inputs: NodeSamplerInput) -> HeteroSamplerOutput:
        return node_sample(inputs, self._sample)

    # ------------------------------------------------------------------ internals
    def _pick(self, et, frontier: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """For each frontier (destination) node, positions in the CSC arrays of <= k incoming edges.
        Returns (index into frontier, CSC position)."""
        colptr = self.colptr[et]
        start = colptr[frontier]
        deg = colptr[frontier + 1] - start
        ar = torch.arange(frontier.numel())
        out_idx, out_pos = [], []

        small = deg <= k  # every edge
        if bool(small.any()):
            fs, ds = ar[small], deg[small]
            idx = torch.repeat_interleave(fs, ds)
            seg = torch.repeat_interleave(torch.cumsum(ds, 0) - ds, ds)
            out_idx.append(idx)
            out_pos.append(start[idx] + torch.arange(idx.numel()) - seg)

        mid = (deg > k) & (deg <= 4 * k)  # exact without replacement: k smallest random keys
        if bool(mid.any()):
            fm, dm = ar[mid], deg[mid]
            width = int(dm.max())
            keys = torch.rand(fm.numel(), width)
            keys[torch.arange(width).unsqueeze(0) >= dm.unsqueeze(1)] = 2.0
            offs = keys.topk(k, dim=1, largest=False).indices
            out_idx.append(fm.repeat_interleave(k))
            out_pos.append((start[fm].unsqueeze(1) + offs).reshape(-1))

        big = deg > 4 * k  # 2k draws with replacement, dedup, k distinct at random
        if bool(big.any()):
            fb, db = ar[big], deg[big]
            draws = (torch.rand(fb.numel(), 2 * k) * db.unsqueeze(1)).long().clamp_max_(db.unsqueeze(1) - 1)
            draws, _ = draws.sort(dim=1)
            prio = torch.rand(draws.shape)
            prio[:, 1:][draws[:, 1:] == draws[:, :-1]] = 2.0
            sel_prio, sel = prio.topk(k, dim=1, largest=False)
            offs = draws.gather(1, sel)
            keep = (sel_prio < 2.0).reshape(-1)
            out_idx.append(fb.repeat_interleave(k)[keep])
            out_pos.append((start[fb].unsqueeze(1) + offs).reshape(-1)[keep])

        if not out_idx:
            empty = torch.empty(0, dtype=torch.long)
            return empty, empty
        return torch.cat(out_idx), torch.cat(out_pos)

    def _sample(self, seed: dict[str, Tensor], seed_time=None, **kwargs) -> HeteroSamplerOutput:
        if seed_time is not None:
            raise NotImplementedError("temporal sampling is not supported by TorchNeighborSampler")
        nodes: dict[str, list[Tensor]] = {nt: [] for nt in self.node_types}
        count = {nt: 0 for nt in self.node_types}
        frontier: dict[str, Tensor] = {}
        num_sampled_nodes = {nt: [] for nt in self.node_types}
        for nt in self.node_types:
            s = seed.get(nt, torch.empty(0, dtype=torch.long)).to(torch.long)
            self._local[nt][s] = torch.arange(s.numel())
            nodes[nt].append(s)
            count[nt] = s.numel()
            frontier[nt] = s
            num_sampled_nodes[nt].append(s.numel())
        rows = {et: [] for et in self.edge_types}
        cols = {et: [] for et in self.edge_types}
        edges = {et: [] for et in self.edge_types}
        num_sampled_edges = {et: [] for et in self.edge_types}
        try:
            for k in self.num_neighbors:
                new_front: dict[str, list[Tensor]] = {nt: [] for nt in self.node_types}
                for et in self.edge_types:
                    src_t, _, dst_t = et
                    f = frontier[dst_t]
                    if f.numel() == 0 or k == 0:
                        num_sampled_edges[et].append(0)
                        continue
                    fi, pos = self._pick(et, f, k)
                    src = self.row[et][pos]
                    loc = self._local[src_t]
                    fresh = src[loc[src] < 0].unique()
                    loc[fresh] = torch.arange(count[src_t], count[src_t] + fresh.numel())
                    count[src_t] += fresh.numel()
                    nodes[src_t].append(fresh)
                    new_front[src_t].append(fresh)
                    rows[et].append(loc[src])
                    cols[et].append(self._local[dst_t][f[fi]])
                    edges[et].append(self.eid[et][pos])
                    num_sampled_edges[et].append(pos.numel())
                for nt in self.node_types:
                    frontier[nt] = torch.cat(new_front[nt]) if new_front[nt] else torch.empty(0, dtype=torch.long)
                    num_sampled_nodes[nt].append(frontier[nt].numel())
            node = {nt: torch.cat(v) for nt, v in nodes.items()}
        finally:
            for nt, v in nodes.items():
                for t in v:
                    self._local[nt][t] = -1
        empty = torch.empty(0, dtype=torch.long)
        return HeteroSamplerOutput(
            node=node,
            row={et: torch.cat(v) if v else empty for et, v in rows.items()},
            col={et: torch.cat(v) if v else empty for et, v in cols.items()},
            edge={et: torch.cat(v) if v else empty for et, v in edges.items()},
            batch=None,
            num_sampled_nodes=num_sampled_nodes,
            num_sampled_edges=num_sampled_edges,
        )


def make_neighbor_sampler(data, fanout: list[int], backend: str = "auto") -> BaseSampler:
    """``torch``: :class:`TorchNeighborSampler`; ``pyg``: PyG's ``NeighborSampler`` (needs pyg-lib or
    torch-sparse); ``auto``: PyG's when importable, else the pure-torch one."""
    if backend == "pyg" or (backend == "auto" and pyg_sampler_available()):
        from torch_geometric.sampler import NeighborSampler

        if not pyg_sampler_available():
            raise ImportError("graph.sampler=pyg needs pyg-lib or torch-sparse; use graph.sampler=torch")
        return NeighborSampler(data, num_neighbors={et: list(fanout) for et in data.edge_types})
    return TorchNeighborSampler(data, fanout)


class LinkNeighborSampler(BaseSampler):
    """User-anchored negatives + neighbour sampling + removal of the batch's own positive edges."""

    def __init__(
        self,
        base: BaseSampler,
        num_nodes: dict[str, int],
        neg_ratio: float = 1.0,
        known_keys: Tensor | None = None,
        exclude_seed_edges: bool = True,
        resample_rounds: int = 20,
        neg_weights: Tensor | None = None,
    ):
        self.base = base
        # per-subreddit weights of the negatives' subreddits (None: uniform)
        self.neg_weights = None if neg_weights is None else neg_weights.to(torch.float64)
        self.num_nodes = dict(num_nodes)
        self.neg_ratio = float(neg_ratio)
        self.known_keys = known_keys.sort().values if known_keys is not None else None
        self.exclude_seed_edges = exclude_seed_edges
        self.resample_rounds = resample_rounds

    @property
    def edge_permutation(self):
        return self.base.edge_permutation

    def _is_known(self, keys: Tensor) -> Tensor:
        if self.known_keys is None or self.known_keys.numel() == 0:
            return torch.zeros_like(keys, dtype=torch.bool)
        pos = torch.searchsorted(self.known_keys, keys).clamp_max_(self.known_keys.numel() - 1)
        return self.known_keys[pos] == keys

    def negatives(self, src: Tensor) -> tuple[Tensor, Tensor]:
        n_sub = self.num_nodes[SUB]
        num_neg = math.ceil(src.numel() * self.neg_ratio)
        neg_src = src[torch.arange(num_neg) % max(src.numel(), 1)]
        neg_dst = self._draw_subreddits(num_neg, n_sub)
        for _ in range(self.resample_rounds):
            bad = self._is_known(neg_src * n_sub + neg_dst)
            if not bool(bad.any()):
                break
            neg_dst[bad] = self._draw_subreddits(int(bad.sum()), n_sub)
        return neg_src, neg_dst

    def _draw_subreddits(self, n: int, n_sub: int) -> Tensor:
        if self.neg_weights is None or n == 0:
            return torch.randint(n_sub, (n,))
        return torch.multinomial(self.neg_weights, n, replacement=True)

    def sample_from_edges(self, inputs: EdgeSamplerInput, neg_sampling: NegativeSampling | None = None) -> HeteroSamplerOutput:
        if neg_sampling is not None:
            raise ValueError("LinkNeighborSampler draws its own negatives (neg_ratio); pass neg_sampling=None")
        src, dst = inputs.row.to(torch.long), inputs.col.to(torch.long)
        neg_src, neg_dst = self.negatives(src)
        label = torch.cat([torch.ones(src.numel()), torch.zeros(neg_src.numel())])
        full = EdgeSamplerInput(
            input_id=inputs.input_id, row=torch.cat([src, neg_src]), col=torch.cat([dst, neg_dst]),
            label=label, time=None, input_type=inputs.input_type,
        )
        out = edge_sample(full, self.base._sample, self.num_nodes, False, None, None)
        if self.exclude_seed_edges:
            out = drop_pairs(out, src * self.num_nodes[SUB] + dst, self.num_nodes[SUB])
        return out

    def sample_from_nodes(self, inputs: NodeSamplerInput) -> HeteroSamplerOutput:
        return self.base.sample_from_nodes(inputs)


def drop_pairs(out: HeteroSamplerOutput, pair_keys: Tensor, num_subreddits: int) -> HeteroSamplerOutput:
    """Remove sampled edges (both directions) whose (user, subreddit) pair is in ``pair_keys``."""
    pair_keys = pair_keys.unique()  # sorted
    for et in (EDGE, REV):
        if et not in out.row or out.row[et].numel() == 0:
            continue
        row, col = out.row[et], out.col[et]
        if et == EDGE:
            users, subs = out.node[USER][row], out.node[SUB][col]
        else:
            subs, users = out.node[SUB][row], out.node[USER][col]
        keys = users * num_subreddits + subs
        pos = torch.searchsorted(pair_keys, keys).clamp_max_(max(pair_keys.numel() - 1, 0))
        keep = pair_keys[pos] != keys if pair_keys.numel() else torch.ones_like(keys, dtype=torch.bool)
        if bool(keep.all()):
            continue
        if out.num_sampled_edges is not None and et in out.num_sampled_edges:
            bounds = torch.tensor([0, *out.num_sampled_edges[et]]).cumsum(0)
            kept = keep.to(torch.long).cumsum(0)
            kept = torch.cat([torch.zeros(1, dtype=torch.long), kept])
            out.num_sampled_edges[et] = (kept[bounds[1:]] - kept[bounds[:-1]]).tolist()
        out.row[et], out.col[et] = row[keep], col[keep]
        if out.edge is not None and out.edge.get(et) is not None:
            out.edge[et] = out.edge[et][keep]
    return out
