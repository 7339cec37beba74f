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
    """:func:`zipp.graph.evaluate.attention_vs_interests` against the planted interest communities,
    with the subreddit with the most comments as the activity baseline."""
    from zipp.graph.evaluate import attention_vs_interests

    df = att.to_pandas()
    edges = pg.edges.to_pandas()[["user_id", "subreddit_id", "n_comments"]]
    df = df.merge(edges, on=["user_id", "subreddit_id"], how="left")
    comm = pg.subreddit_community
    df["on"] = [comm[s] in pg.user_interests.get(u, ()) for u, s in zip(df["user_id"], df["subreddit_id"])]
    return attention_vs_interests(df, activity="n_comments")
