"""Indexed tasks: how bronze's split and parse, silver's id shuffles and gold's key-range passes use Spark.

Spark runs ``work(i)`` for ``i`` in ``range(n)``, one task each; a task reads and writes staged
Parquet itself and returns a small Arrow table, which comes back to the driver. Spark schedules,
retries and spreads the tasks; no rows go through a Spark SQL shuffle.

The tasks are RDD partitions (``parallelize(range(n), n).mapPartitions``), not ``mapInArrow`` over
``spark.range``: no rows flow through Spark here, and a DataFrame job plans and compiles a query
first. Measured on local[2]: 0.11 CPU-s of JVM + worker time per task as a DataFrame job,
0.04 as an RDD job (``bench/etl.py`` runs ~60 such tasks per ingest of a month).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pyarrow as pa

# rows per row group of the key-sorted files: the unit a key-range reader skips. A file holds every
# key range, so with B ranges each reads ~1/B of it; at 65,536 rows a 52k-row file was one group that
# every range decoded (candidates of one range of 64: 0.080 -> 0.043 s over 17 files), at no cost in
# write time and ~1% in size.
_ROW_GROUP = 8_192

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl
    from pyspark.sql import SparkSession


def _indexed(work: Callable[[int], pa.Table], schema: pa.Schema):
    def run(indices):
        import zipp.etl.parse  # noqa: F401  (sets POLARS_MAX_THREADS=1 before polars loads: one task, one core)

        for i in indices:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, schema) as w:
                w.write_table(work(i).cast(schema))
            yield sink.getvalue().to_pybytes()

    return run


def run_indexed(spark: "SparkSession", n: int, work: Callable[[int], pa.Table], schema: pa.Schema, what: str) -> list[dict]:
    """The rows every ``work(i)`` returned (``schema``, as dicts), ``i`` in ``range(n)``, one Spark task each."""
    from zipp.etl.delta import describe

    if n == 0:
        return []
    describe(spark, what)
    parts = spark.sparkContext.parallelize(range(n), n).mapPartitions(_indexed(work, schema)).collect()
    return pa.concat_tables([pa.ipc.open_stream(p).read_all() for p in parts]).to_pylist()


def parallelism(spark: "SparkSession") -> int:
    """The session's shuffle parallelism: how many tasks a pass should offer the cluster at least."""
    return max(1, int(spark.conf.get("spark.sql.shuffle.partitions")))


def task_count(spark: "SparkSession", rows: int, rows_per_task: int) -> int:
    """At least the session's shuffle parallelism, more when ``rows`` would put more than
    ``rows_per_task`` in one task (bounds a task's memory)."""
    return max(parallelism(spark), math.ceil(rows / rows_per_task))


def scan_files(files: list[str]) -> "pl.LazyFrame":
    """A table's Parquet files in a task; ``month`` is a partition column, so it comes from the path
    (``month=YYYY-MM``), always as a string."""
    import polars as pl

    return pl.scan_parquet(files, hive_partitioning=True, hive_schema={"month": pl.String})


def write_part(df: "pl.DataFrame", path: Path, schema: pa.Schema, compression: str, key_sorted: bool = True) -> None:
    """``df`` as Parquet with exactly ``schema``. ``key_sorted`` (and ``df`` has a user_key): sorted
    by user_key in row groups of ``_ROW_GROUP``, so a reader of one key range skips the other row
    groups; else the rows as they come."""
    import pyarrow.parquet as pq

    from zipp.etl.schemas import parquet_write_options

    path.parent.mkdir(parents=True, exist_ok=True)
    layout = {}
    if key_sorted and "user_key" in df.columns:
        df, layout = df.sort("user_key"), {"row_group_size": _ROW_GROUP}
    table = df.select(schema.names).to_arrow().cast(schema)
    pq.write_table(table, path, **layout, **parquet_write_options(table, compression))


def write_by_month(df: "pl.DataFrame", folder: Path, schema: pa.Schema, part: str, compression: str,
                   key_sorted: bool = True) -> None:
    """``df``'s rows of each month as ``folder/month=M/part`` (see :func:`write_part`), with
    ``schema`` less its ``month`` (a partition column)."""
    target = schema.remove(schema.get_field_index("month"))
    for (month,), rows in df.partition_by("month", as_dict=True).items():
        write_part(rows, folder / f"month={month}" / part, target, compression, key_sorted)
