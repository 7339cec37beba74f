"""How predictable are held-out posting edges of a generated dump at all? Popularity vs references.

Reads a lake built from a ``zipp generate-dump`` dump (gold tables) and that dump's ``truth/``, builds
the training graph exactly as ``zipp train`` does (same per-user split, ``graph.*`` defaults) and
scores the test edges against the same sampled negatives as the trainer's posting accuracy:

* ``popularity``: the trainer's baseline (subreddit training degree, threshold fit on training edges);
* ``item_knn``: log-count cosine item-to-item co-occurrence on training edges, summed with the
  user's activity shares, + log popularity (logistic regression fit on the validation edges);
* ``fism``: a bag-of-subreddits factorisation (user = count-weighted mean of subreddit context
  vectors, target vector + bias), trained with the trainer's negatives; full batch, 300 steps;
* ``true_communities``: the user's visible activity share in each planted community (truth) + log
  popularity: what a model that recovered the communities perfectly could reach from the visible graph;
* ``true_interests``: the user's planted interests (truth, not visible in the graph) + log popularity.

It also breaks held-out edges down by kind: home subreddits (the user's planted favourites and
city/country), general subreddits and other communities' subreddits (noise activity), and other
subreddits of the user's interests.

    python bench/graph_ceiling.py --lake work/lake --truth work/dump/truth [--salt zipp-local-dev-salt]

No GPU, a few seconds for the 500-user default. Writes bench/out/graph_ceiling.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lake", required=True)
    ap.add_argument("--truth", required=True, help="the dump's truth/ folder (users.parquet, subreddits.parquet)")
    ap.add_argument("--salt", default="zipp-local-dev-salt", help="etl.user_salt the lake was built with")
    ap.add_argument("--out", default=str(REPO / "bench" / "out"))
    args = ap.parse_args()

    out = references(args.lake, args.truth, args.salt)
    print(json.dumps(out, indent=1))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "graph_ceiling.json").write_text(json.dumps(out, indent=2))


def references(lake: str | Path, truth: str | Path, salt: str, gcfg=None) -> dict:
    """Edge kinds of train/test edges and the test posting accuracy (+ AUC) of every reference;
    ``gcfg``: the trainer's GraphConfig (its split settings), default GraphConfig()."""
    import numpy as np
    import pandas as pd
    import torch
    import torch.nn.functional as F
    from sklearn.linear_model import LogisticRegression

    from zipp.config import GraphConfig
    from zipp.graph.build import EDGE, build_graph, load_gold
    from zipp.graph.evaluate import _auc, eval_negatives, popularity_metrics
    from zipp.identity import user_key

    torch.manual_seed(0)
    gold = load_gold(lake)
    g = build_graph(gold, gcfg or GraphConfig(), split=True)
    U, S = g.num_users, g.num_subreddits
    tr, val, test = g.split["train"], g.split["val"], g.split["test"]
    vneg, tneg = eval_negatives(g, val, 7), eval_negatives(g, test, 0)  # test negatives = the trainer's (seed 0)

    subs = pd.read_parquet(Path(truth) / "subreddits.parquet")
    users = pd.read_parquet(Path(truth) / "users.parquet")
    kind_of = dict(zip(subs.subreddit.str.lower(), subs.community))
    names = np.array([str(n).lower() for n in g.sub_names], dtype=object)
    kind = np.array([kind_of.get(n, "?") for n in names], dtype=object)
    by_key = {user_key(a, salt): r for a, r in zip(users.author, users.itertuples())}
    interests = [set(by_key[k].interests) if k in by_key else set() for k in g.user_keys]
    home = [{s.lower() for s in by_key[k].home_subreddits} if k in by_key else set() for k in g.user_keys]

    def edge_kind(u: int, s: int) -> str:
        if names[s] in home[u]:
            return "home_location" if kind[s] == "location" else "home_interest"
        if kind[s] == "general":
            return "general"
        if kind[s] == "location":
            return "other_location"
        return "interest_other_sub" if kind[s] in interests[u] else "other_community"

    out: dict = {"graph": {k: g.meta[k] for k in ("num_users", "num_subreddits", "num_train", "num_val", "num_test")}}
    for part, ei in (("train", tr), ("test", test)):
        ks = pd.Series([edge_kind(u, s) for u, s in ei.T.tolist()])
        out[f"{part}_edge_kinds"] = ks.value_counts(normalize=True).round(3).to_dict()

    # activity counts of training edges
    ed = gold.edges.to_pandas()
    ui, si = np.searchsorted(g.user_ids, ed.user_id.values), np.searchsorted(g.sub_ids, ed.subreddit_id.values)
    counts = torch.zeros(U, S)
    counts[ui, si] = torch.tensor((ed.n_comments + ed.n_submissions).values, dtype=torch.float)
    W = torch.zeros(U, S)
    W[tr[0], tr[1]] = counts[tr[0], tr[1]]
    share = W / W.sum(1, keepdim=True).clamp_min(1)
    logpop = torch.log1p(torch.bincount(tr[1], minlength=S).float())

    def fit_eval(*scores: torch.Tensor) -> dict:
        def X(p):
            return np.stack([logpop[p[1]].numpy()] + [s[p[0], p[1]].numpy() for s in scores], 1)
        lr = LogisticRegression().fit(np.r_[X(val), X(vneg)], np.r_[np.ones(val.size(1)), np.zeros(vneg.size(1))])
        y = np.r_[np.ones(test.size(1)), np.zeros(tneg.size(1))]
        p = lr.predict_proba(np.r_[X(test), X(tneg)])[:, 1]
        return {"acc": float(((p > 0.5) == y).mean()), "auc": _auc(p[y == 1], p[y == 0])}

    pop = popularity_metrics(g, "test", 10, 5000)
    res = {"popularity": {"acc": pop["test_pop_acc"], "auc": pop["test_pop_auc"]}}
    A = torch.log1p(W)
    C = A.T @ A
    d = C.diag().clamp_min(1e-9)
    cos = C / (d[:, None].sqrt() * d[None, :].sqrt())
    cos.fill_diagonal_(0)
    res["item_knn"] = fit_eval(share @ cos)
    res["fism"] = _fism(g, U, S, EDGE, F, torch, _auc, vneg)
    comms = sorted({k for k in kind if k not in ("general", "location", "?")})
    M = torch.zeros(S, len(comms))
    for s, k in enumerate(kind):
        if k in comms:
            M[s, comms.index(k)] = 1.0
    res["true_communities"] = fit_eval((share @ M) @ M.T)
    truth_int = torch.tensor([[kind[s] in interests[u] for s in range(S)] for u in range(U)], dtype=torch.float)
    res["true_interests"] = fit_eval(truth_int)
    out["test_posting_accuracy"] = res
    return out


def _fism(g, U, S, EDGE, F, torch, _auc, vneg, dim: int = 32, steps: int = 300) -> dict:
    """Bag-of-subreddits factorisation; the step with the best validation AUC is scored on test."""
    from zipp.graph.evaluate import eval_negatives

    ei, w = g.data[EDGE].edge_index, g.data[EDGE].edge_attr[:, 0]  # standardised log comments
    E = torch.nn.Parameter(torch.randn(S, dim) * 0.1)
    Q = torch.nn.Parameter(torch.randn(S, dim) * 0.1)
    b = torch.nn.Parameter(torch.zeros(S))
    a = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([E, Q, b, a], lr=0.01)

    def users(mask=None):
        wt = torch.exp(a * w) * (1.0 if mask is None else mask)
        num = torch.zeros(U, dim).index_add_(0, ei[0], wt[:, None] * Q[ei[1]])
        return num / torch.zeros(U).index_add_(0, ei[0], wt).clamp_min(1e-6)[:, None]

    def score(z, p):
        return torch.sigmoid((z[p[0]] * E[p[1]]).sum(1) + b[p[1]]).detach().numpy()

    val, test = g.split["val"], g.split["test"]
    tneg = eval_negatives(g, test, 0)
    best = (-1.0, None)
    for step in range(steps):
        held = torch.rand(ei.size(1)) < 0.1  # targets leave the user's bag, like exclude_seed_edges
        z = users((~held).float())
        pu, ps = ei[0][held], ei[1][held]
        ns = torch.randint(S, (pu.numel(),))
        logits = torch.cat([(z[pu] * E[ps]).sum(1) + b[ps], (z[pu] * E[ns]).sum(1) + b[ns]])
        loss = F.binary_cross_entropy_with_logits(logits, torch.cat([torch.ones(pu.numel()), torch.zeros(pu.numel())]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 24:
            with torch.no_grad():
                z = users()
                vauc = _auc(score(z, val), score(z, vneg))
                if vauc > best[0]:
                    sp, sn = score(z, test), score(z, tneg)
                    best = (vauc, {"acc": float(((sp > 0.5).sum() + (sn <= 0.5).sum()) / (sp.size + sn.size)),
                                   "auc": _auc(sp, sn), "step": step + 1})
    return best[1]


if __name__ == "__main__":
    main()
