"""The runtime switch reuses what is already running and starts only what is missing."""

import pytest

from zipp.runtime import Runtime, get_spark


@pytest.mark.spark
def test_active_spark_session_is_reused(spark, runtime_cfg):
    session, owned = get_spark(runtime_cfg)
    assert session is spark
    assert owned is False
    rt = Runtime(runtime_cfg)
    assert rt.spark is spark
    rt.stop()  # not owned: must not stop the shared session
    assert spark.range(3).count() == 3


@pytest.mark.ray
def test_existing_ray_connection_is_reused(ray_cluster, runtime_cfg, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    rt = Runtime(runtime_cfg)
    ray = rt.ray()
    assert ray.is_initialized()
    assert ray.cluster_resources().get("CPU") == 2
    rt.stop()  # not owned: the shared cluster stays up
    assert ray.is_initialized()


def test_spark_connect_is_refused_with_a_clear_message(tmp_path):
    """The ETL's tasks need SparkContext, which Spark Connect lacks: `zipp ingest` under SPARK_REMOTE
    stops before any work with a message saying so (not a NOT_IMPLEMENTED error deep in a stage)."""
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "dump").mkdir()
    env = {**os.environ, "SPARK_REMOTE": "sc://127.0.0.1:1"}
    res = subprocess.run([sys.executable, "-m", "zipp.cli", "ingest", "--input", str(tmp_path / "dump"),
                          "--lake", str(tmp_path / "lake"), f"paths.runs={tmp_path / 'runs'}"],
                         env=env, capture_output=True, text=True, timeout=120)
    out = " ".join((res.stdout + res.stderr).split())
    assert res.returncode == 2, out
    assert "Spark Connect (SPARK_REMOTE=sc://127.0.0.1:1) cannot run zipp's ETL" in out and "RDD API" in out
    (manifest,) = (tmp_path / "runs").glob("ingest-*/manifest.json")  # the failed run is on record, with why
    run = json.loads(manifest.read_text())
    assert run["status"] == "failed" and "Spark Connect" in run["error"]
    assert sorted(p.name for p in (tmp_path / "lake").iterdir()) == ["_etl"]  # no table was started
