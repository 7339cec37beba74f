"""Indexed Arrow tasks: how silver's id shuffles and gold's key-range passes use Spark.

Spark runs ``work(i)`` for ``i`` in ``range(n)``, one task each (``mapInArrow`` over
``spark.range``); a task reads and writes staged Parquet itself and returns a small Arrow table,
which comes back to the driver. Spark schedules, retries and spreads the tasks; no rows go through a
Spark SQL shuffle.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

import pyarrow as pa

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl
    from pyspark.sql import SparkSession


def _indexed(work: Callable[[int], pa.Table], schema: pa.Schema):
    def run(batches):
        import zipp.etl.parse  # noqa: F401  (sets POLARS_MAX_THREADS=1 before polars loads: one task, one core)

        for b in batches:
            for i in b.column("id").to_pylist():
                yield from work(i).cast(schema).to_batches()

    return run


def run_indexed(spark: "SparkSession", n: int, work: Callable[[int], pa.Table], schema: pa.Schema, what: str) -> list:
    """The rows every ``work(i)`` returned (``schema``), ``i`` in ``range(n)``, one Spark task each."""
    from zipp.etl.delta import describe, spark_schema

    describe(spark, what)
    return spark.range(0, n, 1, n).mapInArrow(_indexed(work, schema), spark_schema(schema)).collect()


def task_count(spark: "SparkSession", rows: int, rows_per_task: int) -> int:
    """At least the session's shuffle parallelism, more when ``rows`` would put more than
    ``rows_per_task`` in one task (bounds a task's memory)."""
    return max(1, int(spark.conf.get("spark.sql.shuffle.partitions")), math.ceil(rows / rows_per_task))


def scan_files(files: list[str]) -> "pl.LazyFrame":
    """A table's Parquet files in a task; ``month`` is a partition column, so it comes from the path
    (``month=YYYY-MM``), always as a string."""
    import polars as pl

    return pl.scan_parquet(files, hive_partitioning=True, hive_schema={"month": pl.String})
