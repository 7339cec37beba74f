"""Gold tables of a user–subreddit graph with planted interest communities.

Used by the graph tests, ``bench/train.py`` and ``bench/gpu_train.py`` so that training can be
checked (and timed) without the ETL: every subreddit belongs to one interest community (or to a
small set of generic, very popular subreddits), every user has one or two planted interests, and
most of a user's edges fall in those interests — with more comments there — while the rest go to
generic or random subreddits. Users with images get CLIP-like vectors near their interest's
centroid, so ImageAlign carries signal. ``truth`` gives the planted interests for evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from zipp import tables as T


@dataclass
class PlantedGraph:
    users: pa.Table
    subreddits: pa.Table
    edges: pa.Table
    image_embeddings: pa.Table
    user_interests: dict[int, set[int]] = field(default_factory=dict)  # user_id -> communities
    subreddit_community: dict[int, int] = field(default_factory=dict)  # subreddit_id -> community (-1 generic)

    def write(self, lake) -> None:
        from zipp.lake import write_arrow

        write_arrow(lake, T.GOLD_USERS, self.users, schema=T.GOLD_USERS_SCHEMA)
        write_arrow(lake, T.GOLD_SUBREDDITS, self.subreddits, schema=T.GOLD_SUBREDDITS_SCHEMA)
        write_arrow(lake, T.GOLD_EDGES, self.edges, schema=T.GOLD_EDGES_SCHEMA)
        if self.image_embeddings.num_rows:
            write_arrow(lake, T.GOLD_IMAGE_EMBEDDINGS, self.image_embeddings, schema=T.GOLD_IMAGE_EMBEDDINGS_SCHEMA)


def planted_graph(
    n_users: int = 300,
    n_subreddits: int = 60,
    n_communities: int = 6,
    n_generic: int = 4,
    min_degree: int = 3,
    max_degree: int = 14,
    p_interest: float = 0.8,
    image_user_share: float = 0.6,
    images_per_user: int = 3,
    image_dim: int = 32,
    image_noise: float = 0.8,
    failed_image_share: float = 0.05,
    seed: int = 0,
    on_topic_comments: float = 6.0,
    off_topic_comments: float = 1.5,
    on_topic_submissions: float = 1.5,
    off_topic_submissions: float = 0.3,
    user_id_offset: int = 0,
    model_id: str = "planted-clip",
) -> PlantedGraph:
    """Build the gold tables. ``user_id_offset`` makes disjoint extra users (a later 'nightly').
    ``on_topic_*`` / ``off_topic_*``: mean comment / submission counts (Poisson; comments + 1) on
    interest vs other edges. Equal values take the interest signal out of the edge counts, leaving
    the graph structure (and images) to carry it."""
    rng = np.random.default_rng(seed)
    n_topical = n_subreddits - n_generic
    if n_topical < n_communities:
        raise ValueError("need at least one topical subreddit per community")
    # subreddits: ids 0..n_generic-1 generic (community -1), then topical round-robin over communities
    sub_comm = np.concatenate([np.full(n_generic, -1), np.arange(n_topical) % n_communities])
    sub_ids = np.arange(n_subreddits, dtype=np.int64) + 1000
    names = [f"generic{i}" if c < 0 else f"c{c}_sub{i}" for i, c in enumerate(sub_comm)]
    # within-community Zipf popularity; generic subs are the most popular of all
    pop = 1.0 / (1 + np.arange(n_subreddits)) ** 0.6
    rng.shuffle(pop[n_generic:])
    pop[:n_generic] = pop.max() * 3
    image_heavy = rng.random(n_communities) < 0.5
    comm_centroid = rng.normal(size=(n_communities, image_dim))
    comm_centroid /= np.linalg.norm(comm_centroid, axis=1, keepdims=True)

    uids = np.arange(n_users, dtype=np.int64) + 1 + user_id_offset
    ukeys = np.array([f"{u:016x}" for u in uids], dtype=object)
    t_end = int(datetime(2016, 2, 28, tzinfo=UTC).timestamp() * 1e6)
    t_start = int(datetime(2015, 11, 1, tzinfo=UTC).timestamp() * 1e6)
    month_us = int(30.4 * 86400 * 1e6)

    # planted interests: one or two communities per user (second = -1 when only one)
    comms = np.stack([rng.integers(0, n_communities, n_users), rng.integers(0, n_communities, n_users)], 1)
    comms[rng.random(n_users) < 0.5, 1] = -1
    comms[comms[:, 1] == comms[:, 0], 1] = -1
    interests = {int(u): {int(c) for c in cs if c >= 0} for u, cs in zip(uids, comms)}

    # edge slots (oversampled, deduplicated afterwards)
    deg = rng.integers(min_degree, max_degree + 1, n_users)
    slots = np.repeat(np.arange(n_users), (deg * 1.3).astype(np.int64) + 1)
    topical = rng.random(slots.size) < p_interest
    pick2 = (rng.random(slots.size) < 0.5) & (comms[slots, 1] >= 0)
    comm_of_slot = np.where(pick2, comms[slots, 1], comms[slots, 0])
    # sample a subreddit within a community by popularity: one concatenated CDF, community c in [c, c+1)
    order = np.lexsort((np.arange(n_subreddits), sub_comm))
    order = order[sub_comm[order] >= 0]
    cdf = np.empty(order.size)
    for c in range(n_communities):
        m = sub_comm[order] == c
        w = np.cumsum(pop[order[m]])
        cdf[m] = c + w / w[-1]
    in_comm = order[np.minimum(np.searchsorted(cdf, comm_of_slot + rng.random(slots.size) * 0.999999), order.size - 1)]
    gcdf = np.cumsum(pop) / pop.sum()
    noise = np.minimum(np.searchsorted(gcdf, rng.random(slots.size)), n_subreddits - 1)
    sub = np.where(topical, in_comm, noise)
    # dedup (user, subreddit), keep at most deg[u] per user
    key = slots * n_subreddits + sub
    _, first_pos = np.unique(key, return_index=True)
    first_pos.sort()
    slots, sub = slots[first_pos], sub[first_pos]
    rank = np.arange(slots.size) - np.searchsorted(slots, slots)
    keep = rank < deg[slots]
    slots, sub = slots[keep], sub[keep]
    n_edges = slots.size
    c_of = sub_comm[sub]
    on_topic = (c_of >= 0) & ((c_of == comms[slots, 0]) | (c_of == comms[slots, 1]))

    n_com = rng.poisson(np.where(on_topic, on_topic_comments, off_topic_comments)) + 1
    n_sub = rng.poisson(np.where(on_topic, on_topic_submissions, off_topic_submissions))
    img_p = np.where((c_of >= 0) & image_heavy[np.maximum(c_of, 0)], 0.7, 0.1)
    n_img = rng.binomial(n_sub, img_p)
    first = rng.integers(t_start, t_end - month_us, n_edges)
    last = np.minimum(t_end, first + rng.integers(0, 3 * month_us, n_edges))
    rows = {
        "user_id": uids[slots], "subreddit_id": sub_ids[sub],
        "user_key": ukeys[slots], "subreddit": np.asarray(names, dtype=object)[sub],
        "n_submissions": n_sub.astype(np.int64), "n_comments": n_com.astype(np.int64),
        "n_image_posts": n_img.astype(np.int64),
        "score_sum": (rng.integers(-5, 50, n_edges) * (n_com + n_sub)).astype(np.int64),
        "first_ts": first, "last_ts": last,
        "active_months": (1 + (last - first) // month_us).astype(np.int32),
    }

    # images: users with images get vectors near one of their interests' centroid; a few failed fetches
    img_users = np.flatnonzero(rng.random(n_users) < image_user_share)
    iu = np.repeat(img_users, images_per_user)
    j = np.tile(np.arange(images_per_user), img_users.size)
    pick2 = (rng.random(iu.size) < 0.5) & (comms[iu, 1] >= 0)
    ic = np.where(pick2, comms[iu, 1], comms[iu, 0])
    v = comm_centroid[ic] + image_noise * 3 * rng.normal(size=(iu.size, image_dim)) / np.sqrt(image_dim)
    v = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    failed = rng.random(iu.size) < failed_image_share
    urls = [f"https://i.example.com/{uids[u]}_{k}.jpg" for u, k in zip(iu, j)]
    img_rows = {
        "url": urls, "user_id": uids[iu], "user_key": ukeys[iu],
        "sha256": [None if f else f"{i:064x}" for i, f in enumerate(failed)],
        "status": np.where(failed, "http_error", "ok").astype(object),
        "embedding": [None if f else row for f, row in zip(failed, v.tolist())],
        "model_id": [model_id] * iu.size,
    }

    ts = pa.timestamp("us", tz="UTC")
    edges = pa.table({
        k: pa.array(v, type=T.GOLD_EDGES_SCHEMA.field(k).type if k not in ("first_ts", "last_ts") else pa.int64())
        for k, v in rows.items()
    })
    edges = edges.set_column(edges.schema.get_field_index("first_ts"), "first_ts", edges["first_ts"].cast(ts))
    edges = edges.set_column(edges.schema.get_field_index("last_ts"), "last_ts", edges["last_ts"].cast(ts))

    e_sid = rows["subreddit_id"]
    ncom, nsub, nimg = rows["n_comments"], rows["n_submissions"], rows["n_image_posts"]
    uidx = slots
    users = pa.table({
        "user_id": uids,
        "user_key": ukeys.tolist(),
        "n_comments": np.bincount(uidx, ncom, n_users).astype(np.int64),
        "n_submissions": np.bincount(uidx, nsub, n_users).astype(np.int64),
        "n_image_posts": np.bincount(uidx, nimg, n_users).astype(np.int64),
        "n_subreddits": np.bincount(uidx, minlength=n_users).astype(np.int64),
        "first_ts": pa.array(_group_min(uidx, first, n_users), pa.int64()).cast(ts),
        "last_ts": pa.array(-_group_min(uidx, -last, n_users), pa.int64()).cast(ts),
    })
    sidx = np.searchsorted(sub_ids, e_sid)
    nsfw = np.zeros(n_subreddits)
    nsfw[rng.choice(n_subreddits, size=max(1, n_subreddits // 10), replace=False)] = 1.0
    subreddits = pa.table({
        "subreddit_id": sub_ids,
        "subreddit": names,
        "n_users": np.bincount(sidx, minlength=n_subreddits).astype(np.int64),
        "n_comments": np.bincount(sidx, ncom, n_subreddits).astype(np.int64),
        "n_submissions": np.bincount(sidx, nsub, n_subreddits).astype(np.int64),
        "n_image_posts": np.bincount(sidx, nimg, n_subreddits).astype(np.int64),
        "nsfw_share": nsfw * rng.random(n_subreddits),
    })
    images = pa.table(
        {k: pa.array(v, type=T.GOLD_IMAGE_EMBEDDINGS_SCHEMA.field(k).type) for k, v in img_rows.items()},
        schema=T.GOLD_IMAGE_EMBEDDINGS_SCHEMA,
    )
    return PlantedGraph(
        users=users, subreddits=subreddits, edges=edges, image_embeddings=images,
        user_interests=interests,
        subreddit_community={int(s): int(c) for s, c in zip(sub_ids, sub_comm)},
    )


def _group_min(idx: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(out, idx, values)
    out[out == np.iinfo(np.int64).max] = 0
    return out
