"""One runtime switch for Spark and Ray.

Spark: reuse the active session (spark-submit, notebooks), else start an owned ``local[N]`` one.
Ray: join ``RAY_ADDRESS`` (``auto``, ``ray://host:10001`` or a head started with ``ray start``)
if set, else start a local cluster. Nothing is started at import time; both are lazy.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

from zipp.config import ConfigError, RuntimeConfig

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, cfg: RuntimeConfig | None = None):
        self.cfg = cfg or RuntimeConfig()
        self._spark: SparkSession | None = None
        self._owns_spark = False
        self._owns_ray = False

    # ------------------------------------------------------------------ Spark
    @property
    def spark(self) -> "SparkSession":
        if self._spark is None:
            self._spark, self._owns_spark = get_spark(self.cfg)
        return self._spark

    @property
    def has_spark(self) -> bool:
        return self._spark is not None

    # ------------------------------------------------------------------ Ray
    def ray(self):
        """Connect to (or start) Ray and return the module."""
        import ray

        if not ray.is_initialized():
            self._owns_ray = init_ray(self.cfg)
        return ray

    def stop(self) -> None:
        if self._spark is not None and self._owns_spark:
            self._spark.stop()
        self._spark = None
        if self._owns_ray:
            import ray

            ray.shutdown()
            self._owns_ray = False

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


SPARK_CONNECT = ("Spark Connect ({what}) cannot run zipp's ETL: it schedules its tasks with Spark's RDD API "
                 "(SparkContext), which Spark Connect does not offer. Unset SPARK_REMOTE and run under "
                 "spark-submit, on a classic cluster session, or on local[N]")


def get_spark(cfg: RuntimeConfig) -> tuple["SparkSession", bool]:
    """(session, owned). The active session wins so the same code runs under spark-submit."""
    if os.environ.get("SPARK_REMOTE") or os.environ.get("SPARK_CONNECT_MODE_ENABLED") == "1":
        raise ConfigError(SPARK_CONNECT.format(what=f"SPARK_REMOTE={os.environ.get('SPARK_REMOTE', '')}"))
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        if type(active).__module__.startswith("pyspark.sql.connect"):
            raise ConfigError(SPARK_CONNECT.format(what="the active session"))
        return active, False
    master = os.environ.get("ZIPP_SPARK_MASTER", cfg.spark_master)
    b = (
        SparkSession.builder.appName("zipp")
        .master(master)
        .config("spark.driver.memory", cfg.spark_driver_memory)
        .config("spark.sql.shuffle.partitions", str(cfg.spark_shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        # delta-rs commits what Spark writes; it needs microsecond timestamps
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    if master.startswith("local"):
        b = (
            b.config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            # local Python workers must be this interpreter (the venv), not whatever python3 is on PATH
            .config("spark.pyspark.python", sys.executable)
            .config("spark.pyspark.driver.python", sys.executable)
        )
    for k, v in cfg.spark_conf.items():
        b = b.config(k, v)
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    log.info("spark: started %s (%s)", master, spark.version)
    return spark, True


def init_ray(cfg: RuntimeConfig) -> bool:
    """Connect to RAY_ADDRESS / cfg.ray_address, else start a local cluster. Returns True if we own it."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    address = os.environ.get("RAY_ADDRESS") or cfg.ray_address
    if address:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=True)
        log.info("ray: connected to %s", address)
        return False
    ray.init(
        num_cpus=cfg.ray_num_cpus,
        object_store_memory=int(cfg.ray_object_store_gb * 2**30),
        include_dashboard=False,
        ignore_reinit_error=True,
        log_to_driver=True,
    )
    log.info("ray: started a local cluster")
    return True
