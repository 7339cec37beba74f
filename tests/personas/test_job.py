"""The batch job on a real local Ray cluster: Ray Data actors, resume by config hash, per-row
error isolation, throughput in the stats."""

from __future__ import annotations

import json
from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from zipp import tables
from zipp.lake import read_arrow, write_arrow
from zipp.personas import store
from zipp.personas.stage import PersonasStage
from zipp.runtime import Runtime
from zipp.stage import StageContext, run_stage

pytestmark = pytest.mark.ray


def _run(cfg, tmp_path, name="r1"):
    ctx = StageContext(cfg=cfg, run_dir=tmp_path / "runs" / name, runtime=Runtime(cfg.runtime))
    return run_stage(PersonasStage(), ctx), ctx


def test_cli_job_writes_personas_and_resumes(ray_cluster, planted_lake, pcfg, llm_cache, tmp_path):
    from typer.testing import CliRunner

    from zipp.cli import app

    lake, truth = planted_lake
    common = [f"paths.cache={llm_cache}", f"paths.runs={tmp_path / 'runs'}", "personas.write_every=5", "personas.batch_size=4",
              "personas.token_budget=1500"]
    out = CliRunner().invoke(app, ["personas", "--lake", str(lake), "--run", "r1", "personas.sample_users=12", *common])
    assert out.exit_code == 0, out.output
    assert "12 ok, 0 failed, 0 already done" in out.output
    stats = json.loads((tmp_path / "runs" / "r1" / "stats" / "personas.json").read_text())
    assert stats["rows_in"] == 12 and stats["rows_out"] == 12 and stats["drops"] == {}
    assert stats["extra"]["users_per_s"] > 0 and stats["extra"]["tokens_per_s"] > 0
    t = store.read_personas(lake)
    assert t.num_rows == 12 and set(t.column("version").to_pylist()) == {1}
    assert set(t.column("status").to_pylist()) == {"ok"} and max(t.column("evidence_tokens").to_pylist()) < 1500
    assert set(t.column("run").to_pylist()) == {"r1"} and set(t.column("source").to_pylist()) == {"generated"}
    assert set(t.column("user_key").to_pylist()) <= set(truth.column("user_key").to_pylist())
    first_hash = t.column("config_hash")[0].as_py()

    # same config: nothing to do (and no Ray work)
    cfg = pcfg(f"paths.lake={lake}", "personas.sample_users=12", *common[2:])
    res, _ = _run(cfg, tmp_path, "r2")
    assert res.rows_out == 0 and res.extra["skipped_done"] == 12 and store.read_personas(lake).num_rows == 12

    # a bigger sample: only the new users are done (the sample of 12 is inside the sample of 20);
    # speed knobs (workers, batch size) do not change the config hash
    cfg20 = pcfg(f"paths.lake={lake}", "personas.sample_users=20", "personas.workers=2", *common[2:])
    res, _ = _run(cfg20, tmp_path, "r3")
    assert res.extra["skipped_done"] == 12 and res.rows_out == 8
    t = store.read_personas(lake)
    assert t.num_rows == 20 and set(t.column("config_hash").to_pylist()) == {first_hash}
    assert set(t.column("version").to_pylist()) == {1}


def _plant_modes(lake, truth, modes: dict[int, str]):
    """Add a top-ranked snippet naming a loopback-server mode to some users."""
    snips = read_arrow(lake, tables.GOLD_SNIPPETS)
    att = read_arrow(lake, tables.GOLD_ATTENTION)
    extra = []
    for i, mode in modes.items():
        key = truth.column("user_key")[i].as_py()
        mine = att.filter(pc.and_(pc.equal(att["user_key"], key), pc.and_(pc.equal(att["layer"], "conv1"), pc.equal(att["head"], -1))))
        top = max(mine.to_pylist(), key=lambda r: r["attention"])["subreddit"]
        row = snips.filter(pc.and_(pc.equal(snips["user_key"], key), pc.equal(snips["subreddit"], top))).slice(0, 1).to_pylist()[0]
        row.update(snippet_id=f"t1_mode{i}", text=f"mode_{mode} is my favourite word", rank=0, created=row["created"] + timedelta(seconds=1))
        extra.append(row)
    write_arrow(lake, tables.GOLD_SNIPPETS, pa.Table.from_pylist(extra, schema=tables.GOLD_SNIPPETS_SCHEMA), mode="append",
                schema=tables.GOLD_SNIPPETS_SCHEMA)


def test_openai_job_isolates_failing_rows_and_redoes_them_on_request(ray_cluster, llm_server, planted_lake, pcfg, tmp_path):
    lake, truth = planted_lake
    _plant_modes(lake, truth, {0: "reject", 1: "garbage"})
    overrides = [f"paths.lake={lake}", "personas.backend=openai", "personas.batch_size=3", "personas.write_every=4",
                 "personas.max_retries=1", "personas.openai.backoff_s=0.01", "personas.token_budget=1500",
                 "personas.sample_users=40"]
    res, ctx = _run(pcfg(*overrides), tmp_path)
    assert res.rows_in == 40 and res.rows_out == 38
    assert res.drops == {"failed_backend_error": 1, "failed_invalid_output": 1}
    t = store.read_personas(lake)
    failed = {r["user_key"]: r for r in t.to_pylist() if r["status"] == "failed"}
    k0, k1 = truth.column("user_key")[0].as_py(), truth.column("user_key")[1].as_py()
    assert set(failed) == {k0, k1}
    assert "HTTP 400" in failed[k0]["error"] and failed[k1]["error"].startswith("invalid output after 2 attempts")
    assert failed[k1]["persona_json"] is None and failed[k1]["evidence"]  # the evidence that was tried is kept
    assert store.latest_personas(lake).num_rows == 38  # failed rows are never served

    # resume skips failed rows by default; redo_failed retries exactly them
    res, _ = _run(pcfg(*overrides), tmp_path, "again")
    assert res.rows_out == 0 and res.extra["skipped_done"] == 40
    res, _ = _run(pcfg(*overrides, "personas.redo_failed=true"), tmp_path, "redo")
    assert res.rows_in == 40 and res.extra["skipped_done"] == 38 and sum(res.drops.values()) == 2
    assert store.max_versions(lake, [k0, k1]) == {k0: 2, k1: 2}


@pytest.mark.slow
def test_transformers_job_on_ray_data(ray_cluster, planted_lake, pcfg, tmp_path):
    lake, _ = planted_lake
    cfg = pcfg(f"paths.lake={lake}", "personas.backend=transformers", "personas.sample_users=4", "personas.batch_size=2",
               "personas.max_new_tokens=16", "personas.max_retries=1", "personas.token_budget=1100")
    res, _ = _run(cfg, tmp_path)
    t = store.read_personas(lake)
    assert t.num_rows == 4 and res.rows_in == 4
    for r in t.to_pylist():
        assert r["backend"] == "transformers" and r["completion_tokens"] > 0 and r["prompt_tokens"] > 0
        assert (r["status"] == "ok" and r["persona_json"]) or (r["status"] == "failed" and r["error"].startswith("invalid output"))
