"""Gold tables -> PyG ``HeteroData`` (user, subreddit; ``posts_in`` + reverse) with edge, subreddit and
user features, id maps and a per-user train/val/test edge split.

Leakage rules this module guarantees (and tests check):

* only *training* edges are in message passing (``data[EDGE]`` / ``data[REV]``); validation and
  test edges live in ``graph.split`` and nowhere else;
* user features are computed from the message-passing edges only, so a held-out edge does not
  show up in its user's degree or counts;
* edge features belong to message-passing edges; decoders never see an edge's own features.

Users have no id embedding (their features and neighbourhood define them), so a user added by a
later rebuild gets an embedding without retraining. Subreddits have a learnable id embedding
indexed by ``emb_idx``, fixed at training time by the checkpoint's subreddit vocabulary; subreddits
that appear later map to a shared out-of-vocabulary row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from zipp import tables as T
from zipp.config import GraphConfig

log = logging.getLogger(__name__)

USER, SUB = "user", "subreddit"
EDGE = (USER, "posts_in", SUB)
REV = (SUB, "rev_posts_in", USER)

EDGE_FEATURES = [
    "log_comments", "log_submissions", "log_image_posts", "image_share",
    "log_recency_days", "log_span_days", "log_active_months", "signed_log_score",
]
SUB_FEATURES = ["log_users", "log_comments", "log_submissions", "image_share", "nsfw_share"]
USER_FEATURES = [
    "log_degree", "log_comments", "log_submissions", "image_share",
    "mean_log_recency_days", "mean_log_active_months",
]
_DAY_US = 86400 * 1e6


@dataclass
class GoldTables:
    users: pa.Table
    subreddits: pa.Table
    edges: pa.Table
    image_embeddings: pa.Table | None = None


def load_gold(lake: str | Path) -> GoldTables:
    from zipp.lake import exists, read_arrow

    for name in (T.GOLD_EDGES, T.GOLD_USERS, T.GOLD_SUBREDDITS):
        if not exists(lake, name):
            raise FileNotFoundError(f"{name} not found in lake {lake}: run the ETL first")
    images = None
    if exists(lake, T.GOLD_IMAGE_EMBEDDINGS):
        images = read_arrow(lake, T.GOLD_IMAGE_EMBEDDINGS, columns=["user_id", "status", "embedding", "model_id"])
    return GoldTables(
        users=read_arrow(lake, T.GOLD_USERS, columns=["user_id", "user_key"]),
        subreddits=read_arrow(lake, T.GOLD_SUBREDDITS, columns=T.GOLD_SUBREDDITS_SCHEMA.names),
        edges=read_arrow(lake, T.GOLD_EDGES, columns=T.GOLD_EDGES_SCHEMA.names),
        image_embeddings=images,
    )


@dataclass
class Graph:
    """A built graph: message-passing ``data``, id maps, split, image table and feature stats."""

    data: Any  # torch_geometric.data.HeteroData
    user_ids: np.ndarray  # node index -> gold user_id (sorted)
    user_keys: np.ndarray
    sub_ids: np.ndarray  # node index -> gold subreddit_id (sorted)
    sub_names: np.ndarray
    split: dict[str, torch.Tensor]  # train/val/test -> [2, E] (user idx, subreddit idx)
    all_edges: torch.Tensor  # [2, E_all] every gold edge (for negative filtering / ranking masks)
    images: torch.Tensor | None  # [n_users_with_images, D] mean L2-normalised CLIP vectors
    stats: dict[str, Any]  # feature standardisation + subreddit vocabulary (kept with the checkpoint)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_users(self) -> int:
        return int(self.user_ids.size)

    @property
    def num_subreddits(self) -> int:
        return int(self.sub_ids.size)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(self.__dict__, tmp)
        tmp.replace(path)  # atomic: a crash never leaves half a graph that a resume would trust

    @classmethod
    def load(cls, path: str | Path) -> Graph:
        return cls(**torch.load(path, weights_only=False))

    def id_maps(self) -> dict[str, Any]:
        return {"user_ids": self.user_ids, "sub_ids": self.sub_ids, "sub_names": self.sub_names}


def _np(col: pa.ChunkedArray, dtype=None) -> np.ndarray:
    arr = col.to_numpy(zero_copy_only=False)
    return arr.astype(dtype) if dtype is not None else arr


def _ts_us(col: pa.ChunkedArray) -> np.ndarray:
    return _np(pc.cast(col.cast(pa.timestamp("us", tz="UTC")), pa.int64()).fill_null(0), np.int64)


def _standardize(x: np.ndarray, stats: dict | None, key: str, out: dict) -> np.ndarray:
    if stats is None:
        mean = x.mean(0) if len(x) else np.zeros(x.shape[1])
        std = x.std(0) if len(x) else np.ones(x.shape[1])
        std = np.where(std < 1e-6, 1.0, std)
    else:
        mean, std = np.asarray(stats[key]["mean"]), np.asarray(stats[key]["std"])
    out[key] = {"mean": mean.tolist(), "std": std.tolist()}
    return ((x - mean) / std).astype(np.float32)


def activity_stats(stats: dict) -> tuple[float, float, float, float]:
    """(mean, std) of the log1p(comments) and log1p(submissions) edge features, as standardised."""
    m, sd = stats["edge"]["mean"], stats["edge"]["std"]
    return (float(m[0]), float(sd[0]), float(m[1]), float(sd[1]))


def edge_activity(edge_attr: torch.Tensor, stats) -> torch.Tensor:
    """comments + submissions of each edge, recovered from its first two (standardised log1p) features;
    ``stats``: :func:`activity_stats` (a tuple or a tensor)."""
    m0, s0, m1, s1 = stats
    return (torch.expm1(edge_attr[:, 0] * s0 + m0).clamp_min(0) + torch.expm1(edge_attr[:, 1] * s1 + m1).clamp_min(0))


def edge_feature_matrix(edges: pa.Table, now_us: int) -> np.ndarray:
    ncom = _np(edges["n_comments"], np.float64)
    nsub = _np(edges["n_submissions"], np.float64)
    nimg = _np(edges["n_image_posts"], np.float64)
    first, last = _ts_us(edges["first_ts"]), _ts_us(edges["last_ts"])
    score = _np(edges["score_sum"], np.float64)
    return np.stack([
        np.log1p(ncom), np.log1p(nsub), np.log1p(nimg), nimg / np.maximum(nsub, 1.0),
        np.log1p(np.maximum(now_us - last, 0) / _DAY_US), np.log1p(np.maximum(last - first, 0) / _DAY_US),
        np.log1p(_np(edges["active_months"], np.float64)), np.sign(score) * np.log1p(np.abs(score)),
    ], 1) if edges.num_rows else np.zeros((0, len(EDGE_FEATURES)))


def split_edges(user_idx: np.ndarray, n_users: int, cfg: GraphConfig) -> np.ndarray:
    """Per-user split: 0 = train, 1 = val, 2 = test. Users with fewer than ``min_degree_holdout``
    edges keep everything for training; every other user keeps at least one training edge."""
    n = user_idx.size
    rng = np.random.default_rng(cfg.split_seed)
    order = np.lexsort((rng.random(n), user_idx))
    u_sorted = user_idx[order]
    rank = np.arange(n) - np.searchsorted(u_sorted, u_sorted)
    deg = np.bincount(user_idx, minlength=n_users)[u_sorted]
    ok = deg >= cfg.min_degree_holdout
    n_test = np.where(ok & (cfg.test_frac > 0), np.maximum(1, np.round(deg * cfg.test_frac)), 0).astype(np.int64)
    n_val = np.where(ok & (cfg.val_frac > 0), np.maximum(1, np.round(deg * cfg.val_frac)), 0).astype(np.int64)
    budget = np.maximum(deg - 1, 0)  # keep >= 1 training edge per user
    n_test = np.minimum(n_test, budget)
    n_val = np.minimum(n_val, budget - n_test)
    part_sorted = np.where(rank < n_test, 2, np.where(rank < n_test + n_val, 1, 0))
    part = np.empty(n, dtype=np.int8)
    part[order] = part_sorted
    return part


def _mean_images(images: pa.Table | None, user_ids: np.ndarray, model_id: str | None) -> tuple[np.ndarray, torch.Tensor | None, str | None]:
    """Mean of each user's ok image embeddings (re-normalised) -> (img_idx per user, table, model_id)."""
    img_idx = np.full(user_ids.size, -1, dtype=np.int64)
    if images is None or images.num_rows == 0:
        return img_idx, None, None
    ok = images.filter(pc.and_(pc.equal(images["status"], "ok"), pc.invert(pc.is_null(images["embedding"]))))
    if ok.num_rows == 0:
        return img_idx, None, None
    if model_id is None:
        counts = pc.value_counts(ok["model_id"]).to_pylist()
        model_id = max(counts, key=lambda d: d["counts"])["values"]
    ok = ok.filter(pc.equal(ok["model_id"], model_id))
    uid = _np(ok["user_id"], np.int64)
    pos = np.searchsorted(user_ids, uid)
    known = (pos < user_ids.size) & (user_ids[np.minimum(pos, user_ids.size - 1)] == uid)
    emb = np.stack(ok["embedding"].to_numpy(zero_copy_only=False)).astype(np.float32)[known] if ok.num_rows else None
    pos = pos[known]
    if emb is None or pos.size == 0:
        return img_idx, None, model_id
    users_with, inv = np.unique(pos, return_inverse=True)
    sums = np.zeros((users_with.size, emb.shape[1]), dtype=np.float64)
    np.add.at(sums, inv, emb)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    table = (sums / np.maximum(norms, 1e-12)).astype(np.float32)
    img_idx[users_with] = np.arange(users_with.size)
    return img_idx, torch.from_numpy(table), model_id


def build_graph(
    gold: GoldTables,
    cfg: GraphConfig,
    *,
    split: bool = True,
    stats: dict[str, Any] | None = None,
) -> Graph:
    """Build the graph. ``split=True`` (training) holds out val/test edges and fits the feature
    stats; ``split=False`` (inference) puts every edge in message passing and must get the
    checkpoint's ``stats`` (standardisation + subreddit vocabulary)."""
    from torch_geometric.data import HeteroData

    if not split and stats is None:
        raise ValueError("inference builds need the training stats (from the checkpoint)")
    edges = gold.edges
    # dedupe defensively on (user_id, subreddit_id): gold promises uniqueness
    e_uid = _np(edges["user_id"], np.int64)
    e_sid = _np(edges["subreddit_id"], np.int64)
    _, first = np.unique(np.stack([e_uid, e_sid], 1), axis=0, return_index=True)
    n_dupes = edges.num_rows - first.size
    if n_dupes:
        log.warning("graph: %d duplicate (user, subreddit) edges dropped", n_dupes)
        first.sort()
        edges = edges.take(pa.array(first))
        e_uid, e_sid = e_uid[first], e_sid[first]

    # ---- nodes and id maps (union of node tables and edge endpoints, sorted by gold id)
    u_tab_ids = _np(gold.users["user_id"], np.int64)
    user_ids, u_first = np.unique(np.concatenate([u_tab_ids, e_uid]), return_index=True)
    all_keys = np.concatenate([_np(gold.users["user_key"]).astype(object), _np(edges["user_key"]).astype(object)])
    user_keys = all_keys[u_first]
    s_tab_ids = _np(gold.subreddits["subreddit_id"], np.int64)
    sub_ids, s_first = np.unique(np.concatenate([s_tab_ids, e_sid]), return_index=True)
    all_names = np.concatenate([_np(gold.subreddits["subreddit"]).astype(object), _np(edges["subreddit"]).astype(object)])
    sub_names = all_names[s_first]
    n_users, n_subs = user_ids.size, sub_ids.size
    u = np.searchsorted(user_ids, e_uid)
    s = np.searchsorted(sub_ids, e_sid)

    part = split_edges(u, n_users, cfg) if split else np.zeros(u.size, dtype=np.int8)
    mp = part == 0
    now_us = int(_ts_us(edges["last_ts"]).max()) if edges.num_rows else 0

    new_stats: dict[str, Any] = {}
    # ---- edge features (message-passing edges only)
    mp_edges = edges.filter(pa.array(mp))
    ef = _standardize(edge_feature_matrix(mp_edges, now_us), stats, "edge", new_stats)

    # ---- subreddit features (from gold/subreddits; subreddits missing there get zeros before scaling)
    sf = np.zeros((n_subs, len(SUB_FEATURES)))
    sp = np.searchsorted(sub_ids, s_tab_ids)
    st = gold.subreddits
    nsub_s = _np(st["n_submissions"], np.float64)
    sf[sp] = np.stack([
        np.log1p(_np(st["n_users"], np.float64)), np.log1p(_np(st["n_comments"], np.float64)), np.log1p(nsub_s),
        _np(st["n_image_posts"], np.float64) / np.maximum(nsub_s, 1.0), np.nan_to_num(_np(st["nsfw_share"], np.float64)),
    ], 1) if st.num_rows else sf[sp]
    sf = _standardize(sf, stats, "subreddit", new_stats)

    # ---- user features from message-passing edges only (no held-out edge leaks into a degree)
    um = u[mp]
    raw = edge_feature_matrix(mp_edges, now_us)
    deg = np.bincount(um, minlength=n_users).astype(np.float64)
    ncom = np.bincount(um, _np(mp_edges["n_comments"], np.float64), n_users)
    nsub = np.bincount(um, _np(mp_edges["n_submissions"], np.float64), n_users)
    nimg = np.bincount(um, _np(mp_edges["n_image_posts"], np.float64), n_users)
    safe = np.maximum(deg, 1.0)
    uf = np.stack([
        np.log1p(deg), np.log1p(ncom), np.log1p(nsub), nimg / np.maximum(nsub, 1.0),
        np.bincount(um, raw[:, 4], n_users) / safe, np.bincount(um, raw[:, 6], n_users) / safe,
    ], 1) if n_users else np.zeros((0, len(USER_FEATURES)))
    uf = _standardize(uf, stats, "user", new_stats)

    # ---- subreddit vocabulary for the id embedding (fixed by the training build)
    vocab = np.asarray(stats["sub_vocab"], dtype=np.int64) if stats is not None else sub_ids.copy()
    new_stats["sub_vocab"] = vocab.tolist()
    pos = np.searchsorted(vocab, sub_ids)
    in_vocab = (pos < vocab.size) & (vocab[np.minimum(pos, max(vocab.size - 1, 0))] == sub_ids) if vocab.size else np.zeros(n_subs, bool)
    emb_idx = np.where(in_vocab, pos, vocab.size)  # OOV row = len(vocab)

    img_idx, images, model_id = _mean_images(gold.image_embeddings, user_ids, cfg.image_model_id if stats is None else stats.get("image_model_id"))
    new_stats["image_model_id"] = model_id

    data = HeteroData()
    data[USER].x = torch.from_numpy(uf)
    data[USER].img_idx = torch.from_numpy(img_idx)
    data[SUB].x = torch.from_numpy(sf)
    data[SUB].emb_idx = torch.from_numpy(emb_idx.astype(np.int64))
    ei = torch.from_numpy(np.stack([u[mp], s[mp]]).astype(np.int64))
    attr = torch.from_numpy(ef)
    data[EDGE].edge_index = ei
    data[EDGE].edge_attr = attr
    data[REV].edge_index = ei.flip(0)  # edge i of REV is edge i of EDGE reversed: same id, same features
    data[REV].edge_attr = attr

    both = torch.from_numpy(np.stack([u, s]).astype(np.int64))
    part_t = torch.from_numpy(part)
    splits = {name: both[:, part_t == k] for k, name in enumerate(("train", "val", "test"))}
    meta = {
        "num_users": int(n_users), "num_subreddits": int(n_subs), "num_edges": int(u.size),
        "num_train": int(splits["train"].size(1)), "num_val": int(splits["val"].size(1)),
        "num_test": int(splits["test"].size(1)), "users_with_images": int((img_idx >= 0).sum()),
        "image_model_id": model_id, "duplicates_dropped": int(n_dupes),
        "subreddits_out_of_vocab": int((~in_vocab).sum()),
    }
    return Graph(
        data=data, user_ids=user_ids, user_keys=user_keys, sub_ids=sub_ids, sub_names=sub_names,
        split=splits, all_edges=both, images=images, stats=new_stats, meta=meta,
    )


def pair_keys(edge_index: torch.Tensor, num_subreddits: int) -> torch.Tensor:
    """(user, subreddit) -> one int64 key, for membership tests with ``torch.isin``/``searchsorted``."""
    return edge_index[0].to(torch.int64) * num_subreddits + edge_index[1].to(torch.int64)
