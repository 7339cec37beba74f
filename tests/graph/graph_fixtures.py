"""Helpers for the graph tests (imported by conftest.py and the tests): planted gold tables made in
code with ``zipp.graph.synthetic``, tiny model settings, configs rooted in a tmp folder."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# a tiny model and short training: the default suite checks plumbing, not quality
TINY = [
    "graph.hidden_dim=16", "graph.heads=2", "graph.subreddit_id_dim=4", "graph.batch_size=64",
    "graph.epochs=2", "graph.fanout=[6, 3]", "graph.eval_max_users=200", "graph.infer_batch_nodes=64",
]


def planted(seed: int = 0, **kw):
    from zipp.graph.synthetic import planted_graph

    args = {"n_users": 160, "n_subreddits": 30, "n_communities": 4, "n_generic": 3, "image_dim": 16, "seed": seed}
    args.update(kw)
    return planted_graph(**args)


def graph_config(root: Path, *overrides: str):
    from zipp.config import load_config

    base = [
        f"paths.work={root}", f"paths.lake={root / 'lake'}", f"paths.runs={root / 'runs'}",
        f"paths.cache={root / 'cache'}", "runtime.ray_num_cpus=2", "runtime.ray_object_store_gb=1.0",
    ]
    return load_config(env="local", overrides=base + TINY + list(overrides), conf_dir=REPO / "conf")


def gold_of(pg):
    from zipp.graph.build import GoldTables

    return GoldTables(users=pg.users, subreddits=pg.subreddits, edges=pg.edges, image_embeddings=pg.image_embeddings)


def attention_match(att, pg) -> dict:
    """How often a user's top-attention subreddit (mean head) lies in one of the user's planted
    interest communities, per layer, vs chance (a uniformly random one of the user's subreddits)
    and vs picking the subreddit with the most comments. Users with >= 2 subreddits; ``mixed``:
    only users with both on- and off-interest subreddits (where the choice is not trivial)."""
    df = att.to_pandas()
    df = df[df["head"] == -1]
    edges = pg.edges.to_pandas()[["user_id", "subreddit_id", "n_comments"]]
    df = df.merge(edges, on=["user_id", "subreddit_id"], how="left")
    comm = pg.subreddit_community
    df["on"] = [comm[s] in pg.user_interests.get(u, ()) for u, s in zip(df["user_id"], df["subreddit_id"])]
    out = {}
    for layer, d in df.groupby("layer"):
        per_user = d.groupby("user_id")["on"].agg(["size", "mean"])
        keep = per_user[per_user["size"] >= 2]
        mixed = keep[(keep["mean"] > 0) & (keep["mean"] < 1)]
        res = {}
        for name, users in (("all", keep.index), ("mixed", mixed.index)):
            du = d[d["user_id"].isin(users)]
            top = du.loc[du.groupby("user_id")["attention"].idxmax()]
            # ties broken at random (a fixed order would favour whichever subreddits sort first)
            shuffled = du.sample(frac=1.0, random_state=0)
            most = shuffled.sort_values("n_comments", ascending=False, kind="stable").groupby("user_id").head(1)
            res[name] = {
                "users": len(users), "top_attention_on_interest": float(top["on"].mean()),
                "chance": float(per_user.loc[users, "mean"].mean()), "most_comments_baseline": float(most["on"].mean()),
            }
        out[layer] = res
    return out
