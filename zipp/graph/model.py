"""Edge-aware GATv2 encoder on the user–subreddit graph, a link decoder and the ImageAlign head.

Each layer runs two bipartite ``GATv2Conv`` (user→subreddit and subreddit→user) with edge features
(``edge_dim``) and ``add_self_loops=False`` (on bipartite input the default would pair user *i* with
subreddit *i*), followed by residual + LayerNorm per node type. The per-relation convs are called
directly rather than through ``HeteroConv`` so that attention weights can be returned. Layers are
named ``conv1``, ``conv2``, …; ``s2u`` attention (user as destination: GATv2 normalises over the
incoming edges of the destination) is what ranks a user's subreddits.

Users have no id embedding (inductive); subreddits have a learnable id embedding with one shared
out-of-vocabulary row.

Optional, inductive additions (none is a per-user parameter: a user added later gets them from
its edges):

* ``history_dim > 0``: a FISM-style bag-of-subreddits path. The user's representation gets the
  weighted mean of its (message-passing) subreddits' *context* embeddings (a second per-subreddit
  table); edge weights are ``exp(edge_attr · w)`` with ``w`` learned from zero (so: a plain mean that
  can learn to favour heavily used edges). The subreddit side gets its own *target* id embedding,
  so the dot decoder contains FISM's ``<mean context, target>`` term exactly. Both are projected to
  ``hidden_dim`` and added after the GAT layers (the attention path is untouched).
* ``subreddit_bias``: a learnable per-subreddit logit bias in the link decoder (popularity prior).
* ``activity_prior``: attention logits get ``gamma[h] * log1p(comments + submissions)`` of the edge
  (``gamma`` learned per head, from 1), so attention starts as the user's activity share and the
  GATv2 term moves it from there. Link prediction alone has no reason to rank a user's
  subreddits by what the user is about: on generated dumps half of a user's distinct subreddits are
  one-off comments in big subreddits, and some heads learn to attend to those (they say how much
  of a user is drive-by activity), others to the user's interests; see ``bench/graph_quality.py``.

ImageAlign: symmetric InfoNCE between a projection of the user embedding and
the user's mean CLIP embedding, in-batch negatives, learnable temperature (CLIP-style
``logit_scale``, capped at 100).
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zipp.graph.build import EDGE, REV, SUB, USER, activity_stats, edge_activity

RELATIONS = (("u2s", EDGE, USER, SUB), ("s2u", REV, SUB, USER))


@dataclass
class ModelSpec:
    """Everything needed to rebuild the module from a checkpoint."""

    user_in: int
    sub_in: int
    edge_dim: int
    sub_vocab: int
    hidden_dim: int = 64
    heads: int = 4
    last_layer_heads: int | None = None  # heads of the last layer (None: ``heads``)
    num_layers: int = 2
    sub_id_dim: int = 16
    dropout: float = 0.1
    attention_dropout: float = 0.0
    decoder: str = "dot"
    image_dim: int | None = None  # None: no ImageAlign head
    temperature: float = 0.07
    history_dim: int = 0  # FISM-style user history path (0 = off)
    subreddit_bias: bool = False  # learnable per-subreddit bias in the decoder
    # attention logits + gamma_head * log1p(comments + submissions) of the edge; the first two edge
    # features are standardised log1p counts, un-standardised with these (mean0, std0, mean1, std1)
    activity_prior: bool = False
    activity_stats: tuple[float, float, float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def spec_from_config(gcfg, graph) -> ModelSpec:
    data = graph.data
    image_dim = int(graph.images.shape[1]) if (graph.images is not None and gcfg.image_align_weight > 0) else None
    return ModelSpec(
        user_in=int(data[USER].x.size(1)), sub_in=int(data[SUB].x.size(1)), edge_dim=int(data[EDGE].edge_attr.size(1)),
        sub_vocab=len(graph.stats["sub_vocab"]), hidden_dim=gcfg.hidden_dim, heads=gcfg.heads,
        last_layer_heads=gcfg.last_layer_heads,
        num_layers=gcfg.num_layers, sub_id_dim=gcfg.subreddit_id_dim, dropout=gcfg.dropout,
        attention_dropout=gcfg.attention_dropout, decoder=gcfg.decoder, image_dim=image_dim,
        temperature=gcfg.image_align_temperature, history_dim=gcfg.history_dim, subreddit_bias=gcfg.subreddit_bias,
        activity_prior=gcfg.attention_activity_prior, activity_stats=activity_stats(graph.stats),
    )


@functools.cache
def _prior_conv_class():
    """The class, made once (PyG is imported lazily, as in ZippGAT)."""
    from torch_geometric.nn import GATv2Conv
    from torch_geometric.utils import softmax

    class ActivityPriorGATv2Conv(GATv2Conv):
        """GATv2 whose attention logits get ``gamma[h] * log1p(comments + submissions)`` of each
        edge before the softmax: attention over a user's subreddits starts as a share of the
        user's activity and the learned GATv2 term moves it from there (gamma is learned per head,
        from 1). Everything else is PyG's GATv2Conv."""

        def __init__(self, *args, activity_stats: tuple[float, float, float, float], **kw):
            super().__init__(*args, **kw)
            self.register_buffer("act_stats", torch.tensor(activity_stats, dtype=torch.float32), persistent=True)
            self.prior_gamma = nn.Parameter(torch.ones(self.heads))

        def activity_log(self, edge_attr: Tensor) -> Tensor:
            return torch.log1p(edge_activity(edge_attr, self.act_stats))

        def edge_update(self, x_j: Tensor, x_i: Tensor, edge_attr: Tensor | None, index: Tensor, ptr: Tensor | None,
                        dim_size: int | None) -> Tensor:
            x = x_i + x_j + self.lin_edge(edge_attr).view(-1, self.heads, self.out_channels)
            x = F.leaky_relu(x, self.negative_slope)
            logits = (x * self.att).sum(dim=-1) + self.prior_gamma * self.activity_log(edge_attr)[:, None]
            alpha = softmax(logits, index, ptr, dim_size)
            return F.dropout(alpha, p=self.dropout, training=self.training)

    return ActivityPriorGATv2Conv


class ZippGAT(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        from torch_geometric.nn import GATv2Conv

        self.spec = spec
        h = spec.hidden_dim
        self.user_enc = nn.Sequential(nn.Linear(spec.user_in, h), nn.ReLU(), nn.Linear(h, h))
        self.sub_id = nn.Embedding(spec.sub_vocab + 1, spec.sub_id_dim) if spec.sub_id_dim else None
        self.sub_enc = nn.Sequential(nn.Linear(spec.sub_in + spec.sub_id_dim, h), nn.ReLU(), nn.Linear(h, h))
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        conv_cls, extra = GATv2Conv, {}
        if spec.activity_prior:
            if spec.activity_stats is None:
                raise ValueError("activity_prior needs activity_stats (the edge feature standardisation)")
            conv_cls, extra = _prior_conv_class(), {"activity_stats": tuple(spec.activity_stats)}
        for layer in range(spec.num_layers):
            nh = self.layer_heads(layer)
            self.convs.append(nn.ModuleDict({
                rel: conv_cls((h, h), h // nh, heads=nh, edge_dim=spec.edge_dim,
                              add_self_loops=False, dropout=spec.attention_dropout, **extra)
                for rel, *_ in RELATIONS
            }))
            self.norms.append(nn.ModuleDict({USER: nn.LayerNorm(h), SUB: nn.LayerNorm(h)}))
        self.dropout = nn.Dropout(spec.dropout)
        if spec.history_dim:
            d = spec.history_dim
            self.hist_ctx = nn.Embedding(spec.sub_vocab + 1, d)  # what a subreddit says about its users
            self.hist_tgt = nn.Embedding(spec.sub_vocab + 1, d)  # what a user history must match
            nn.init.normal_(self.hist_ctx.weight, std=0.1)
            nn.init.normal_(self.hist_tgt.weight, std=0.1)
            self.hist_edge_w = nn.Parameter(torch.zeros(spec.edge_dim))
            self.hist_user = nn.Linear(d, h, bias=False)
            self.hist_sub = nn.Linear(d, h, bias=False)
        else:
            self.hist_ctx = None
        self.sub_bias = nn.Embedding(spec.sub_vocab + 1, 1) if spec.subreddit_bias else None
        if self.sub_bias is not None:
            nn.init.zeros_(self.sub_bias.weight)
        if spec.decoder == "mlp":
            self.decoder = nn.Sequential(nn.Linear(3 * h, h), nn.ReLU(), nn.Linear(h, 1))
        else:
            self.decoder = None
            self.dot_scale = nn.Parameter(torch.tensor(1.0 / math.sqrt(h)))
            self.dot_bias = nn.Parameter(torch.zeros(()))
        if spec.image_dim:
            self.align_proj = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, spec.image_dim))
            self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / spec.temperature)))
        else:
            self.align_proj = None

    def layer_heads(self, layer: int) -> int:
        """Attention heads of layer ``layer`` (0-based)."""
        last = self.spec.last_layer_heads
        return last if (last and layer == self.spec.num_layers - 1) else self.spec.heads

    @property
    def layer_names(self) -> list[str]:
        return [f"conv{i + 1}" for i in range(self.spec.num_layers)]

    # ------------------------------------------------------------------ encoder pieces
    def encode_users(self, x: Tensor) -> Tensor:
        return self.user_enc(x)

    def encode_subreddits(self, x: Tensor, emb_idx: Tensor) -> Tensor:
        if self.sub_id is not None:
            x = torch.cat([x, self.sub_id(emb_idx.clamp(0, self.spec.sub_vocab))], dim=-1)
        return self.sub_enc(x)

    def conv_step(self, layer: int, rel: str, dst_type: str, x_src: Tensor, x_dst: Tensor, edge_index: Tensor,
                  edge_attr: Tensor, return_attention: bool = False):
        """One relation of one layer: GATv2 message + residual + LayerNorm for the destination nodes."""
        conv = self.convs[layer][rel]
        if return_attention:
            m, (_, alpha) = conv((x_src, x_dst), edge_index, edge_attr, return_attention_weights=True)
        else:
            m, alpha = conv((x_src, x_dst), edge_index, edge_attr), None
        if layer < self.spec.num_layers - 1:
            m = F.elu(m)
        out = self.norms[layer][dst_type](x_dst + self.dropout(m))
        return out, alpha

    def embed(self, batch, return_attention: bool = False):
        """Final embeddings {user, subreddit} of every node in ``batch`` (a sampled or full HeteroData).
        With ``return_attention``: also {(layer_name, rel): (edge_index, alpha[E, heads])}."""
        h = {
            USER: self.encode_users(batch[USER].x),
            SUB: self.encode_subreddits(batch[SUB].x, batch[SUB].emb_idx),
        }
        attn = {}
        for layer in range(self.spec.num_layers):
            new = {}
            for rel, et, src_t, dst_t in RELATIONS:
                ei = batch[et].edge_index
                new[dst_t], alpha = self.conv_step(layer, rel, dst_t, h[src_t], h[dst_t], ei, batch[et].edge_attr, return_attention)
                if return_attention:
                    attn[(self.layer_names[layer], rel)] = (ei, alpha)
            h = new
        if self.hist_ctx is not None:
            rev = batch[REV]
            num, den = self.history_sums(batch[SUB].emb_idx[rev.edge_index[0]], rev.edge_attr, rev.edge_index[1], h[USER].size(0))
            h = self.add_history(h, num, den, batch[SUB].emb_idx)
        return (h, attn) if return_attention else h

    # ------------------------------------------------------------------ history path (FISM-style)
    def history_sums(self, sub_emb_idx: Tensor, edge_attr: Tensor, dst: Tensor, num_users: int) -> tuple[Tensor, Tensor]:
        """Weighted sums (numerator [U, d], denominator [U]) of the context embeddings of each user's
        subreddits over the given subreddit->user edges; sums over edge chunks add up."""
        w = torch.exp((edge_attr @ self.hist_edge_w).clamp(-10.0, 10.0))
        ctx = self.hist_ctx(sub_emb_idx.clamp(0, self.spec.sub_vocab))
        num = ctx.new_zeros((num_users, ctx.size(1))).index_add_(0, dst, w[:, None] * ctx)
        den = w.new_zeros(num_users).index_add_(0, dst, w)
        return num, den

    def add_history(self, h: dict[str, Tensor], num: Tensor, den: Tensor, sub_emb_idx: Tensor) -> dict[str, Tensor]:
        """Final embeddings: GAT output + projected user history / subreddit target embedding.
        A user without edges gets a zero history."""
        hist = num / den.clamp_min(1e-6)[:, None]
        tgt = self.hist_tgt(sub_emb_idx.clamp(0, self.spec.sub_vocab))
        return {USER: h[USER] + self.hist_user(self.dropout(hist)), SUB: h[SUB] + self.hist_sub(tgt)}

    def subreddit_logit_bias(self, sub_emb_idx: Tensor) -> Tensor | None:
        """Per-subreddit decoder bias for these subreddits (None when the model has none)."""
        if self.sub_bias is None:
            return None
        return self.sub_bias(sub_emb_idx.clamp(0, self.spec.sub_vocab)).squeeze(-1)

    # ------------------------------------------------------------------ heads
    def decode(self, z_user: Tensor, z_sub: Tensor, sub_bias: Tensor | None = None) -> Tensor:
        """Logits for aligned pairs (z_user[i], z_sub[i]); ``sub_bias[i]`` (from
        ``subreddit_logit_bias``) is added when given."""
        if self.decoder is not None:
            out = self.decoder(torch.cat([z_user, z_sub, z_user * z_sub], -1)).squeeze(-1)
        else:
            out = self.dot_scale * (z_user * z_sub).sum(-1) + self.dot_bias
        return out if sub_bias is None else out + sub_bias

    def score_all(self, z_user: Tensor, z_sub: Tensor, max_pairs: int = 2_000_000, sub_bias: Tensor | None = None) -> Tensor:
        """Logits [U, S] of every user in ``z_user`` against every subreddit in ``z_sub`` (``sub_bias``: [S])."""
        if sub_bias is not None:
            return self.score_all(z_user, z_sub, max_pairs) + sub_bias[None, :]
        if self.decoder is None:
            return self.dot_scale * (z_user @ z_sub.T) + self.dot_bias
        rows = max(1, max_pairs // max(z_sub.size(0), 1))
        out = []
        for a in range(0, z_user.size(0), rows):
            zu = z_user[a:a + rows]
            u = zu.unsqueeze(1).expand(-1, z_sub.size(0), -1)
            s = z_sub.unsqueeze(0).expand(zu.size(0), -1, -1)
            out.append(self.decode(u, s))
        return torch.cat(out) if out else z_user.new_zeros((0, z_sub.size(0)))

    def image_align_loss(self, z_user: Tensor, images: Tensor) -> Tensor:
        """Symmetric InfoNCE, in-batch negatives. Fewer than two users: a zero that still touches the
        head's parameters (DDP expects every parameter to get a gradient on every rank)."""
        if self.align_proj is None:
            raise RuntimeError("model was built without an ImageAlign head (image_align_weight=0 or no images)")
        if z_user.size(0) < 2:
            return sum(p.sum() for p in self.align_proj.parameters()) * 0.0 + self.logit_scale * 0.0
        p = F.normalize(self.align_proj(z_user), dim=-1)
        logits = self.logit_scale.exp().clamp(max=100.0) * p @ F.normalize(images, dim=-1).T
        target = torch.arange(z_user.size(0), device=z_user.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))

    def forward(self, batch, images: Tensor | None = None) -> dict[str, Tensor]:
        """Training forward on a LinkLoader batch: logits for ``edge_label_index`` and, when the head
        exists, the ImageAlign loss over the batch's positive (seed) users that have images."""
        z = self.embed(batch)
        store = batch[EDGE]
        eli, label = store.edge_label_index, store.edge_label
        bias = self.subreddit_logit_bias(batch[SUB].emb_idx[eli[1]])
        out = {"logits": self.decode(z[USER][eli[0]], z[SUB][eli[1]], bias), "label": label}
        if self.align_proj is not None:
            users = eli[0][label > 0.5].unique()
            idx = batch[USER].img_idx[users]
            has = idx >= 0
            if images is None:
                images = torch.zeros((0, self.spec.image_dim), device=z[USER].device)
            out["align_loss"] = self.image_align_loss(z[USER][users[has]], images[idx[has]])
            out["align_users"] = has.sum()
        return out
