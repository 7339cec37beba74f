"""``embed-users``: embeddings for every user and per-(user, subreddit) attention from a trained run.

The graph is rebuilt from the *current* lake with every edge in message passing and the training
run's feature stats and subreddit vocabulary, so users (and edges) added by a later nightly rebuild
get embeddings without retraining; subreddits the run never saw share the out-of-vocabulary row.
Attention is the subreddit->user relation of each layer (user as destination, GATv2's softmax is
over a node's incoming edges), so for each user it sums to 1 over the user's subreddits for every
(layer, head); head = -1 is the mean over heads (it sums to 1 as well).

Both tables are written per run (``run`` column) with a replaceWhere on that run: a rerun replaces
its own rows and leaves other runs' rows alone.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from zipp import tables as T
from zipp.config import ZippConfig

log = logging.getLogger("zipp.graph.infer")
_RUN_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def check_run_name(run: str) -> str:
    if not _RUN_NAME.match(run):
        raise ValueError(f"run name {run!r}: use letters, digits, '_', '.', '-' only")
    return run


def _write_per_run(lake: Path, name: str, schema: pa.Schema, run: str, parts: Iterable[pa.Table]) -> int:
    """Replace this run's rows of ``name`` with ``parts`` (first part: replaceWhere, the rest: append)."""
    from zipp.lake import exists, write_arrow

    n, first = 0, True
    for part in parts:
        if first:
            if exists(lake, name):
                write_arrow(lake, name, part, mode="overwrite", predicate=f"run = '{run}'", schema=schema)
            else:
                write_arrow(lake, name, part, mode="overwrite", schema=schema)
            first = False
        else:
            write_arrow(lake, name, part, mode="append", schema=schema)
        n += part.num_rows
    if first:  # nothing to write: still clear this run's old rows
        write_arrow(lake, name, schema.empty_table(), mode="overwrite", predicate=f"run = '{run}'" if exists(lake, name) else None, schema=schema)
    return n


def _list_f32(mat: np.ndarray) -> pa.Array:
    mat = np.ascontiguousarray(mat, dtype=np.float32)
    flat = pa.array(mat.reshape(-1), type=pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, mat.shape[1] if mat.ndim == 2 else 0).cast(pa.list_(pa.float32()))


def embed_users(cfg: ZippConfig, run_dir: Path, run: str, rows_per_write: int = 2_000_000) -> dict[str, Any]:
    import torch

    from zipp.graph.build import REV, build_graph, load_gold
    from zipp.graph.layerwise import layerwise_embed
    from zipp.graph.train import load_model_artifact
    from zipp.logs import progress_bar

    check_run_name(run)
    g = cfg.graph
    lake = Path(cfg.paths.lake)
    model, art = load_model_artifact(run_dir)
    graph = build_graph(load_gold(lake), g, split=False, stats=art["stats"])
    device = "cuda" if (g.use_gpu and torch.cuda.is_available()) else "cpu"
    model.to(device)
    z, attn = layerwise_embed(model, graph.data, g.infer_batch_nodes, g.infer_batch_edges, attention=True, device=device)
    checkpoint = f"{art['checkpoint']}#epoch={art['epoch']}"
    trained_users = np.asarray(art["id_maps"]["user_ids"])
    new_users = int((~np.isin(graph.user_ids, trained_users)).sum())

    n_users = graph.num_users
    step = max(1, rows_per_write // max(model.spec.hidden_dim, 1))

    def emb_parts():
        for a in range(0, n_users, step):
            b = min(n_users, a + step)
            yield pa.table({
                "user_id": pa.array(graph.user_ids[a:b], pa.int64()),
                "user_key": pa.array(graph.user_keys[a:b].tolist(), pa.string()),
                "embedding": _list_f32(z["user"][a:b].numpy()),
                "run": pa.array([run] * (b - a), pa.string()),
                "checkpoint": pa.array([checkpoint] * (b - a), pa.string()),
            })

    rev = graph.data[REV].edge_index  # [2, E]: (subreddit idx, user idx)
    e_sub, e_user = rev[0].numpy(), rev[1].numpy()
    heads = max(a.size(1) for a in attn.values()) if attn else model.spec.heads

    def attn_parts():
        estep = max(1, rows_per_write // ((heads + 1) * max(len(attn), 1)))
        order = np.lexsort((e_sub, e_user))  # rows grouped by user
        with progress_bar("attention rows", total=len(order)) as advance:
            for a in range(0, len(order), estep):
                idx = order[a:a + estep]
                u, s = e_user[idx], e_sub[idx]
                cols: dict[str, list] = {k: [] for k in ("u", "s", "layer", "head", "att")}
                for layer, alpha in attn.items():
                    al = alpha[torch.from_numpy(idx)].numpy()
                    for h in [*range(al.shape[1]), -1]:
                        cols["u"].append(u)
                        cols["s"].append(s)
                        cols["layer"].append(np.full(idx.size, layer, dtype=object))
                        cols["head"].append(np.full(idx.size, h, dtype=np.int32))
                        cols["att"].append(al[:, h] if h >= 0 else al.mean(1))
                uu = np.concatenate(cols["u"])
                ss = np.concatenate(cols["s"])
                yield pa.table({
                    "user_id": pa.array(graph.user_ids[uu], pa.int64()),
                    "user_key": pa.array(graph.user_keys[uu].tolist(), pa.string()),
                    "subreddit_id": pa.array(graph.sub_ids[ss], pa.int64()),
                    "subreddit": pa.array(graph.sub_names[ss].tolist(), pa.string()),
                    "layer": pa.array(np.concatenate(cols["layer"]).tolist(), pa.string()),
                    "head": pa.array(np.concatenate(cols["head"]), pa.int32()),
                    "attention": pa.array(np.concatenate(cols["att"]).astype(np.float32), pa.float32()),
                    "run": pa.array([run] * uu.size, pa.string()),
                })
                advance(idx.size)

    n_emb = _write_per_run(lake, T.GOLD_USER_EMBEDDINGS, T.GOLD_USER_EMBEDDINGS_SCHEMA, run, emb_parts())
    n_att = _write_per_run(lake, T.GOLD_ATTENTION, T.GOLD_ATTENTION_SCHEMA, run, attn_parts())
    log.info("embed-users: %d users (%d not seen in training), %d attention rows", n_emb, new_users, n_att)
    return {
        "users": n_emb, "new_users": new_users, "attention_rows": n_att, "edges": int(rev.size(1)),
        "layers": list(attn), "heads": {layer: int(a.size(1)) for layer, a in attn.items()}, "checkpoint": checkpoint,
        "subreddits_out_of_vocab": graph.meta["subreddits_out_of_vocab"],
    }
