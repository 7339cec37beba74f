"""Shared fixtures: the real-data folder, one local Spark session and one local Ray cluster per
test session (both real, never mocked), and tmp lakes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the repo (real Reddit samples, prompts, WPP, photos)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present on this machine")
    return SHARED_DATA


@pytest.fixture(scope="session")
def runtime_cfg():
    from zipp.config import RuntimeConfig

    return RuntimeConfig(spark_master="local[2]", spark_driver_memory="2g", spark_shuffle_partitions=4, ray_num_cpus=2, ray_object_store_gb=1.0)


@pytest.fixture(scope="session")
def spark(runtime_cfg):
    from zipp.runtime import get_spark

    session, owned = get_spark(runtime_cfg)
    yield session
    if owned:
        session.stop()


@pytest.fixture(scope="session")
def ray_cluster(runtime_cfg):
    """A real local Ray cluster shared by the test session."""
    import ray

    from zipp.runtime import init_ray

    owned = init_ray(runtime_cfg) if not ray.is_initialized() else False
    yield ray
    if owned:
        ray.shutdown()


@pytest.fixture
def make_config(tmp_path):
    """Build a validated ZippConfig rooted in tmp_path, with key=value overrides."""
    from zipp.config import load_config

    def _make(*overrides: str):
        base = [
            f"paths.work={tmp_path}",
            f"paths.dump={tmp_path / 'dump'}",
            f"paths.lake={tmp_path / 'lake'}",
            f"paths.runs={tmp_path / 'runs'}",
            f"paths.cache={tmp_path / 'cache'}",
            "runtime.spark_driver_memory=2g",
            "runtime.ray_num_cpus=2",
            "runtime.ray_object_store_gb=1.0",
        ]
        return load_config(env="local", overrides=base + list(overrides), conf_dir=REPO / "conf")

    return _make
