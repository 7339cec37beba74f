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
