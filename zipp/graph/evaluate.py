"""Link metrics on held-out edges, for the model and for a popularity baseline.

* **posting accuracy**: held-out (user, subreddit) edges vs an equal number of negatives (the same
  users with random subreddits they never posted in), threshold 0.5 on the predicted probability;
* **AUC** over the same pairs;
* **Hits@k**: per held-out edge, whether its subreddit ranks in the top k among that subreddit and
  every subreddit the user never posted in (filtered ranking; ties count half).

Negatives and ranked users come from a fixed seed, so epochs are compared on the same pairs. The
popularity baseline scores a pair by the subreddit's training degree; its accuracy threshold is
the one that is best on training edges vs training-style negatives (it never sees held-out data).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from zipp.graph.build import Graph, pair_keys


def eval_negatives(graph: Graph, pos: Tensor, seed: int = 0, rounds: int = 20) -> Tensor:
    """Same users as ``pos``, random subreddits the user has no edge to (in any split)."""
    g = torch.Generator().manual_seed(seed)
    n_sub = graph.num_subreddits
    known = pair_keys(graph.all_edges, n_sub).sort().values
    users = pos[0].clone()
    subs = torch.randint(n_sub, (users.numel(),), generator=g)
    for _ in range(rounds):
        keys = users * n_sub + subs
        p = torch.searchsorted(known, keys).clamp_max_(known.numel() - 1)
        bad = known[p] == keys
        if not bool(bad.any()):
            break
        subs[bad] = torch.randint(n_sub, (int(bad.sum()),), generator=g)
    return torch.stack([users, subs])


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if pos.size == 0 or neg.size == 0:
        return float("nan")
    return float(roc_auc_score(np.r_[np.ones(pos.size), np.zeros(neg.size)], np.r_[pos, neg]))


def _known_mask(graph: Graph, users: Tensor) -> Tensor:
    """[len(users), S] True where the user has an edge in any split."""
    n_sub = graph.num_subreddits
    local = torch.full((graph.num_users,), -1, dtype=torch.long)
    local[users] = torch.arange(users.numel())
    u, s = graph.all_edges
    sel = local[u] >= 0
    mask = torch.zeros((users.numel(), n_sub), dtype=torch.bool)
    mask[local[u[sel]], s[sel]] = True
    return mask


def hits_at_k(score_rows, graph: Graph, pos: Tensor, k: int, max_users: int, seed: int = 0, chunk: int = 512) -> float:
    """``score_rows(users) -> [len(users), S]`` scores. Mean over held-out edges of the ranked users."""
    users = pos[0].unique()
    if users.numel() > max_users:
        g = torch.Generator().manual_seed(seed)
        users = users[torch.randperm(users.numel(), generator=g)[:max_users]].sort().values
    hits, total = 0.0, 0
    for a in range(0, users.numel(), chunk):
        us = users[a:a + chunk]
        scores = score_rows(us).float()
        known = _known_mask(graph, us)
        local = torch.full((graph.num_users,), -1, dtype=torch.long)
        local[us] = torch.arange(us.numel())
        sel = local[pos[0]] >= 0
        row, col = local[pos[0][sel]], pos[1][sel]
        target = scores[row, col]
        cand = scores.masked_fill(known, float("-inf"))[row]  # non-edges only
        greater = (cand > target[:, None]).sum(1).float()
        ties = (cand == target[:, None]).sum(1).float()
        rank = greater + 0.5 * ties
        hits += float((rank < k).sum())
        total += row.numel()
    return hits / max(total, 1)


@torch.no_grad()
def model_metrics(model, graph: Graph, z: dict[str, Tensor], part: str, k: int, max_users: int, seed: int = 0,
                  device: str | torch.device = "cpu") -> dict[str, float]:
    """Metrics of ``model``'s decoder on embeddings ``z`` (computed on ``device``, where the model is)."""
    from zipp.graph.build import SUB, USER

    pos = graph.split[part]
    if pos.size(1) == 0:
        return {}
    zu, zs = z[USER].to(device), z[SUB].to(device)
    neg = eval_negatives(graph, pos, seed)
    bias = model.subreddit_logit_bias(graph.data[SUB].emb_idx.to(device))  # [S] or None

    def prob(pairs):
        s = pairs[1].to(device)
        return torch.sigmoid(model.decode(zu[pairs[0].to(device)], zs[s], None if bias is None else bias[s])).float().cpu().numpy()

    p_pos, p_neg = prob(pos), prob(neg)
    acc = float(((p_pos > 0.5).sum() + (p_neg <= 0.5).sum()) / (p_pos.size + p_neg.size))
    hits = hits_at_k(lambda us: model.score_all(zu[us.to(device)], zs, sub_bias=bias).cpu(), graph, pos, k, max_users, seed)
    out = {f"{part}_acc": acc, f"{part}_auc": _auc(p_pos, p_neg), f"{part}_hits": hits}
    if getattr(model, "align_proj", None) is not None and graph.images is not None:
        out[f"{part}_align_top1"] = image_retrieval_top1(model, graph, zu, pos[0].unique(), seed)
    return out


@torch.no_grad()
def image_retrieval_top1(model, graph: Graph, z_user: Tensor, users: Tensor, seed: int = 0, n: int = 256) -> float:
    """Among up to ``n`` users with images, how often a user's projection is closest to its own
    mean image vector (chance = 1/n)."""
    from zipp.graph.build import USER

    idx = graph.data[USER].img_idx[users]
    users, idx = users[idx >= 0], idx[idx >= 0]
    if users.numel() < 2:
        return float("nan")
    g = torch.Generator().manual_seed(seed)
    sel = torch.randperm(users.numel(), generator=g)[:n]
    dev = z_user.device
    p = torch.nn.functional.normalize(model.align_proj(z_user[users[sel].to(dev)]), dim=-1)
    img = torch.nn.functional.normalize(graph.images[idx[sel]].to(dev), dim=-1)
    return float(((p @ img.T).argmax(1) == torch.arange(sel.numel(), device=dev)).float().mean())


def popularity_metrics(graph: Graph, part: str, k: int, max_users: int, seed: int = 0) -> dict[str, float]:
    pos = graph.split[part]
    if pos.size(1) == 0:
        return {}
    train = graph.split["train"]
    pop = torch.log1p(torch.bincount(train[1], minlength=graph.num_subreddits).float())
    # threshold: best accuracy on training edges vs training-style negatives
    tneg = eval_negatives(graph, train, seed + 1)
    s_pos, s_neg = pop[train[1]].numpy(), pop[tneg[1]].numpy()
    cands = np.unique(np.r_[s_pos, s_neg])
    accs = [((s_pos >= t).sum() + (s_neg < t).sum()) / (s_pos.size + s_neg.size) for t in cands]
    thr = float(cands[int(np.argmax(accs))]) if cands.size else 0.0
    neg = eval_negatives(graph, pos, seed)
    v_pos, v_neg = pop[pos[1]].numpy(), pop[neg[1]].numpy()
    acc = float(((v_pos >= thr).sum() + (v_neg < thr).sum()) / (v_pos.size + v_neg.size))
    hits = hits_at_k(lambda us: pop.expand(us.numel(), -1), graph, pos, k, max_users, seed)
    return {f"{part}_pop_acc": acc, f"{part}_pop_auc": _auc(v_pos, v_neg), f"{part}_pop_hits": hits}


def attention_vs_interests(df, activity: str) -> dict:
    """How often a user's top-attention subreddit lies in one of the user's interests, per layer.

    ``df`` (pandas): one row per (user_key, subreddit, layer, head) with ``attention``, ``on`` (the
    subreddit is in one of the user's interests, from ground truth) and an ``activity`` column
    (named by ``activity``). Per layer: for users with >= 2 subreddits (``all``) and those with both
    on- and off-interest subreddits (``mixed``, where the choice is not trivial), the rate of the
    mean head (-1) vs chance (a uniformly random one of the user's subreddits) and vs picking the
    subreddit with the most activity (ties at random); ``per_head``: each head's rate on mixed users."""
    out = {}
    for layer, by_layer in df.groupby("layer"):
        d = by_layer[by_layer["head"] == -1]
        per_user = d.groupby("user_key")["on"].agg(["size", "mean"])
        keep = per_user[per_user["size"] >= 2]
        mixed = keep[(keep["mean"] > 0) & (keep["mean"] < 1)]
        res: dict = {}
        for name, users in (("all", keep.index), ("mixed", mixed.index)):
            du = d[d["user_key"].isin(users)]
            top = du.loc[du.groupby("user_key")["attention"].idxmax()]
            # ties broken at random (a fixed order would favour whichever subreddits sort first)
            shuffled = du.sample(frac=1.0, random_state=0)
            most = shuffled.sort_values(activity, ascending=False, kind="stable").groupby("user_key").head(1)
            res[name] = {"users": len(users), "top_attention_on_interest": float(top["on"].mean()),
                         "chance": float(per_user.loc[users, "mean"].mean()), "most_activity": float(most["on"].mean())}
        heads = by_layer[(by_layer["head"] >= 0) & by_layer["user_key"].isin(mixed.index)]
        res["per_head"] = {int(h): float(dh.loc[dh.groupby("user_key")["attention"].idxmax()]["on"].mean())
                           for h, dh in heads.groupby("head")}
        out[layer] = res
    return out
