"""What a run has to redo, from gold/user_images pairs and the existing output (no network, no Ray)."""

import numpy as np
import pyarrow as pa

from zipp.images.embed import embeddings_to_arrow
from zipp.images.stage import plan

M = "zipp-tiny-clip/random-init"


def _pairs(*rows):
    return pa.table({"url": [u for u, _ in rows], "user_id": pa.array([i for _, i in rows], pa.int64()),
                     "user_key": [f"k{i}" for _, i in rows]})


def _previous(*rows):
    url, uid, sha, status, model = zip(*rows, strict=True)
    return pa.table({"url": list(url), "user_id": pa.array(uid, pa.int64()), "sha256": list(sha),
                     "status": list(status), "model_id": list(model)})


def test_first_run_does_everything():
    pairs = _pairs(("a", 1), ("b", 2))
    p = plan(pairs, None, M)
    assert p.todo.num_rows == 2 and p.known == {} and p.failed == {}


def test_only_missing_failed_and_other_model_rows_are_redone():
    pairs = _pairs(("ok", 1), ("ok", 2), ("fail", 1), ("old", 1), ("new", 3))
    prev = _previous(
        ("ok", 1, "s1", "ok", M),
        ("fail", 1, None, "timeout", M),
        ("old", 1, "s2", "ok", "ViT-B-32/openai"),
        ("gone", 9, "s3", "ok", M),  # no longer in user_images: left alone
    )
    p = plan(pairs, prev, M)
    todo = sorted(zip(p.todo["url"].to_pylist(), p.todo["user_id"].to_pylist(), strict=True))
    assert todo == [("fail", 1), ("new", 3), ("ok", 2), ("old", 1)]  # ("ok", 2): same URL, new user
    assert p.known == {"ok": "s1", "old": "s2", "gone": "s3"}  # reusable bytes, whatever the model
    assert p.failed == {("fail", 1): "timeout"}


def test_embeddings_to_arrow_puts_nulls_where_not_ok():
    emb = np.arange(6, dtype=np.float32).reshape(2, 3)
    arr = embeddings_to_arrow(emb, 3, np.array([True, False, True]))
    assert arr.type == pa.list_(pa.float32())
    assert arr.to_pylist() == [[0.0, 1.0, 2.0], None, [3.0, 4.0, 5.0]]
    assert embeddings_to_arrow(None, 2, np.array([False, False])).to_pylist() == [None, None]
