import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from graph_fixtures import graph_config, planted
from typer.testing import CliRunner

from zipp import tables as T
from zipp.graph.infer import check_run_name, embed_users
from zipp.lake import read_arrow, write_arrow


@pytest.fixture(scope="module")
def embedded(trained_run, tmp_path_factory):
    """embed-users on a copy of the trained run's lake (so tests may append to it)."""
    root = tmp_path_factory.mktemp("embed")
    shutil.copytree(trained_run["root"] / "lake", root / "lake")
    cfg = graph_config(root)
    out = embed_users(cfg, trained_run["run_dir"], "r1")
    return {"root": root, "cfg": cfg, "out": out, "run_dir": trained_run["run_dir"]}


def _attention_sums(att: pa.Table):
    df = att.to_pandas()
    return df.groupby(["user_id", "layer", "head"])["attention"].sum()


def test_every_user_gets_one_embedding(embedded, planted_small):
    lake = embedded["root"] / "lake"
    emb = read_arrow(lake, T.GOLD_USER_EMBEDDINGS)
    assert emb.schema.equals(T.GOLD_USER_EMBEDDINGS_SCHEMA, check_metadata=False)
    assert emb.num_rows == planted_small.users.num_rows == embedded["out"]["users"]
    assert sorted(emb["user_id"].to_pylist()) == sorted(planted_small.users["user_id"].to_pylist())
    lengths = set(pc.list_value_length(emb["embedding"]).to_pylist())
    assert lengths == {16}  # graph.hidden_dim of the trained run
    vecs = np.stack(emb["embedding"].to_numpy(zero_copy_only=False))
    assert np.isfinite(vecs).all() and vecs.std(0).mean() > 0  # not a constant
    assert set(emb["run"].to_pylist()) == {"r1"}
    assert all(c.startswith(str(embedded["run_dir"])) for c in set(emb["checkpoint"].to_pylist()))


def test_attention_sums_to_one_per_user_layer_and_head(embedded, planted_small):
    att = read_arrow(embedded["root"] / "lake", T.GOLD_ATTENTION)
    assert att.schema.equals(T.GOLD_ATTENTION_SCHEMA, check_metadata=False)
    assert set(att["layer"].to_pylist()) == {"conv1", "conv2"}
    assert set(att["head"].to_pylist()) == {0, 1, -1}
    sums = _attention_sums(att)
    assert np.allclose(sums.to_numpy(), 1.0, atol=1e-4)
    # one row per (user, subreddit) edge for each (layer, head)
    assert att.num_rows == planted_small.edges.num_rows * 2 * 3
    df = att.to_pandas()
    wide = df.pivot_table(index=["user_id", "subreddit_id", "layer"], columns="head", values="attention")
    assert np.allclose(wide[-1], (wide[0] + wide[1]) / 2, atol=1e-6)  # head -1 is the mean over heads
    edges = planted_small.edges.to_pandas().set_index(["user_id", "subreddit_id"]).index
    assert set(zip(df["user_id"], df["subreddit_id"])) == set(edges)


def test_new_users_get_embeddings_without_retraining_and_reruns_replace_rows(embedded, planted_small):
    lake = embedded["root"] / "lake"
    nightly = planted(seed=9, n_users=20, user_id_offset=50_000)  # same subreddit ids, new users
    write_arrow(lake, T.GOLD_USERS, nightly.users, mode="append", schema=T.GOLD_USERS_SCHEMA)
    write_arrow(lake, T.GOLD_EDGES, nightly.edges, mode="append", schema=T.GOLD_EDGES_SCHEMA)
    # another run's rows must survive this run's rewrite
    other = read_arrow(lake, T.GOLD_USER_EMBEDDINGS).slice(0, 3)
    other = other.set_column(other.schema.get_field_index("run"), "run", pa.array(["other"] * 3))
    write_arrow(lake, T.GOLD_USER_EMBEDDINGS, other, mode="append", schema=T.GOLD_USER_EMBEDDINGS_SCHEMA)

    out = embed_users(embedded["cfg"], embedded["run_dir"], "r1")
    assert out["new_users"] == 20
    emb = read_arrow(lake, T.GOLD_USER_EMBEDDINGS)
    mine = emb.filter(pc.equal(emb["run"], "r1"))
    assert mine.num_rows == planted_small.users.num_rows + 20
    assert len(set(mine["user_id"].to_pylist())) == mine.num_rows  # replaced, not duplicated
    assert emb.filter(pc.equal(emb["run"], "other")).num_rows == 3
    new_ids = set(nightly.users["user_id"].to_pylist())
    assert new_ids <= set(mine["user_id"].to_pylist())
    att = read_arrow(lake, T.GOLD_ATTENTION)
    sums = _attention_sums(att)
    assert np.allclose(sums.to_numpy(), 1.0, atol=1e-4)
    assert new_ids <= set(att["user_id"].to_pylist())


def test_embed_users_cli(trained_run, tmp_path):
    from zipp.cli import app

    shutil.copytree(trained_run["root"] / "lake", tmp_path / "lake")
    r = CliRunner().invoke(app, [
        "embed-users", "--run", "r1", "--lake", str(tmp_path / "lake"),
        f"paths.runs={trained_run['root'] / 'runs'}", "runtime.ray_num_cpus=2",
    ])
    assert r.exit_code == 0, r.output
    assert read_arrow(tmp_path / "lake", T.GOLD_USER_EMBEDDINGS).num_rows > 0
    assert (trained_run["run_dir"] / "stats" / "embed_users.json").is_file()


def test_embed_users_needs_a_trained_run(tmp_path):
    cfg = graph_config(tmp_path)
    with pytest.raises(FileNotFoundError, match="zipp train --run nope"):
        embed_users(cfg, tmp_path / "runs" / "nope", "nope")
    with pytest.raises(ValueError, match="run name"):
        check_run_name("x'; drop")
