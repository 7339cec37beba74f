"""The one place where the ETL reads and writes Delta tables from Spark.

:func:`backend` picks how, once per session:

- ``spark-delta`` when ``io.delta.sql.DeltaSparkSessionExtension`` is configured (a cluster with the
  jars): Spark writes Delta itself (``replaceWhere`` for months, ``MERGE`` for upserts);
- ``delta-rs`` otherwise (this machine cannot fetch the jars): Spark (or an Arrow task) writes Parquet
  into a staging folder, the files are moved into the table folder and committed with delta-rs as
  ONE transaction of add actions (zero copy: nothing is read back or rewritten); the files of the
  replaced partitions are removed by the same commit. A run killed before the commit leaves the
  table as it was (the moved files are not in the log; ``vacuum`` deletes them).

Either way the tables are plain Delta, partitioned by ``month`` where they have one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"


def backend(spark: "SparkSession") -> str:
    """'spark-delta' when the session has the Delta extension (and its jars), else 'delta-rs'."""
    try:
        exts = spark.conf.get("spark.sql.extensions", "") or ""
    except Exception:  # noqa: BLE001
        exts = ""
    if DELTA_EXTENSION in exts:
        try:
            import delta  # noqa: F401  (the delta-spark Python package)

            return "spark-delta"
        except ImportError:
            log.warning("%s is configured but the delta-spark package is missing: using delta-rs", DELTA_EXTENSION)
    return "delta-rs"


def describe(spark: "SparkSession", text: str) -> None:
    """Name the next Spark jobs in the UI (no-op where there is no SparkContext, e.g. Spark Connect)."""
    try:
        spark.sparkContext.setJobDescription(text)
    except Exception:  # noqa: BLE001
        pass


def table_path(lake: str | Path, name: str) -> str:
    return str(Path(lake) / name)


def exists(lake: str | Path, name: str) -> bool:
    from deltalake import DeltaTable

    return DeltaTable.is_deltatable(table_path(lake, name))


# ----------------------------------------------------------------------------- types


def spark_type(t: pa.DataType):
    from pyspark.sql import types as T

    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return T.StringType()
    if pa.types.is_int64(t):
        return T.LongType()
    if pa.types.is_int32(t):
        return T.IntegerType()
    if pa.types.is_boolean(t):
        return T.BooleanType()
    if pa.types.is_float64(t):
        return T.DoubleType()
    if pa.types.is_float32(t):
        return T.FloatType()
    if pa.types.is_timestamp(t):
        return T.TimestampType()
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return T.BinaryType()
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return T.ArrayType(spark_type(t.value_type), True)
    raise TypeError(f"no Spark type for Arrow {t}")


def spark_schema(schema: pa.Schema):
    from pyspark.sql import types as T

    return T.StructType([T.StructField(f.name, spark_type(f.type), True) for f in schema])


def conform(df: "DataFrame", schema: pa.Schema, keep: tuple[str, ...] = ()) -> "DataFrame":
    """Exactly the schema's columns, in its order, cast to its types (missing ones are null), then ``keep``."""
    from pyspark.sql import functions as F

    cols = []
    for f in schema:
        st = spark_type(f.type)
        c = F.col(f"`{f.name}`") if f.name in df.columns else F.lit(None)
        cols.append(c.cast(st).alias(f.name))
    return df.select(*cols, *[F.col(k) for k in keep])


# ----------------------------------------------------------------------------- read


def read_table(spark: "SparkSession", lake: str | Path, name: str, schema: pa.Schema | None = None,
               months: list[str] | None = None, exclude_months: list[str] | None = None) -> "DataFrame":
    """The table (or only ``months``, or all but ``exclude_months``) as a Spark DataFrame; an empty one
    with ``schema`` if it does not exist."""
    path = table_path(lake, name)
    if not exists(lake, name):
        if schema is None:
            raise FileNotFoundError(f"Delta table {path} does not exist")
        return spark.createDataFrame([], spark_schema(schema))
    if backend(spark) == "spark-delta":
        df = spark.read.format("delta").load(path)
        from pyspark.sql import functions as F

        if months is not None:
            df = df.where(F.col("month").isin(months))
        if exclude_months:
            df = df.where(~F.col("month").isin(exclude_months))
        return df
    from deltalake import DeltaTable

    dt = DeltaTable(path)
    arrow = pa.schema(dt.schema().to_arrow())
    sschema = spark_schema(arrow)
    if months is not None and not months:
        return spark.createDataFrame([], sschema)
    uris = dt.file_uris(partition_filters=_month_filters(months, exclude_months))
    if not uris:
        return spark.createDataFrame([], sschema)
    return spark.read.schema(sschema).option("basePath", path).parquet(*uris)


def _month_filters(months: list[str] | None, exclude_months: list[str] | None) -> list | None:
    filters = [("month", "in", months)] if months is not None else None
    if exclude_months:
        filters = (filters or []) + [("month", "not in", exclude_months)]
    return filters


def table_files(lake: str | Path, name: str, months: list[str] | None = None, exclude_months: list[str] | None = None) -> list[str]:
    """Paths of the table's current data files (of ``months`` / all but ``exclude_months``), for
    Arrow tasks that read them directly; none when the table does not exist."""
    from deltalake import DeltaTable

    if not exists(lake, name) or (months is not None and not months):
        return []
    return [u.removeprefix("file://") for u in DeltaTable(table_path(lake, name)).file_uris(
        partition_filters=_month_filters(months, exclude_months))]


def key_ranges(lake: str | Path, name: str, column: str = "user_key") -> dict[str, tuple[str, str]]:
    """(min, max) of ``column`` per current data file of the table (paths as :func:`table_files`
    gives them), for the files whose Delta log entry records both."""
    from deltalake import DeltaTable

    if not exists(lake, name):
        return {}
    dt = DeltaTable(table_path(lake, name))
    t = pa.table(dt.get_add_actions(flatten=True))
    if f"min.{column}" not in t.column_names:
        return {}
    uris = {u.removeprefix("file://") for u in dt.file_uris()}
    root = table_path(lake, name).rstrip("/")
    out = {}
    for rel, lo, hi in zip(t["path"].to_pylist(), t[f"min.{column}"].to_pylist(), t[f"max.{column}"].to_pylist()):
        path = f"{root}/{rel}"
        if lo is not None and hi is not None and path in uris:
            out[path] = (lo, hi)
    return out


def _parquet_stats(path: Path, column: str = "user_key") -> dict:
    """The Delta stats of a staged Parquet file: its row count, and the (min, max) of ``column``
    where every row group has them (readers skip files by them: :func:`key_ranges`)."""
    import pyarrow.parquet as pq

    md = pq.read_metadata(path)
    stats: dict[str, Any] = {"numRecords": md.num_rows}
    names = [md.schema.column(i).name for i in range(md.num_columns)]
    if column in names and md.num_row_groups:
        j = names.index(column)
        cols = [md.row_group(g).column(j).statistics for g in range(md.num_row_groups)]
        if all(c is not None and c.has_min_max for c in cols):
            stats["minValues"] = {column: min(c.min for c in cols)}
            stats["maxValues"] = {column: max(c.max for c in cols)}
    return stats


# ----------------------------------------------------------------------------- write


@dataclass
class StagedFile:
    path: str
    partition_values: dict[str, str]


def list_staged(stage_dir: str | Path) -> list[StagedFile]:
    """Parquet files under a staging folder written by Spark or Arrow tasks (``col=value`` dirs)."""
    root = Path(stage_dir)
    out = []
    if not root.exists():
        return out
    for p in sorted(root.rglob("*.parquet")):
        rel = p.relative_to(root)
        if any(part.startswith((".", "_")) for part in rel.parts):
            continue
        pv = dict(part.split("=", 1) for part in rel.parts[:-1] if "=" in part)
        out.append(StagedFile(str(p), pv))
    return out


def _commit_props(run_id: str, operation: str, months: list[str] | None, extra: dict | None = None):
    from deltalake import CommitProperties

    meta: dict[str, Any] = {"zipp.run": run_id, "zipp.operation": operation}
    if months is not None:
        meta["zipp.months"] = ",".join(months)
    meta.update(extra or {})
    return CommitProperties(custom_metadata=meta)


def commit_files(lake: str | Path, name: str, schema: pa.Schema, files: list[StagedFile], *, run_id: str,
                 partition_by: list[str] | None = None, mode: str = "replace_months",
                 months: list[str] | None = None) -> int:
    """Move staged Parquet files into the table and commit them as one Delta transaction.

    mode: ``replace_months`` (the partitions of ``months`` are replaced, atomically), ``overwrite``
    (the whole table), ``append``. Returns the new table version.
    """
    from deltalake import DeltaTable, Schema
    from deltalake.transaction import AddAction, create_table_with_add_actions

    if mode == "replace_months" and (not partition_by or months is None):
        raise ValueError("replace_months needs partition_by and months")
    root = Path(table_path(lake, name))
    actions = []
    tag = uuid.uuid4().hex[:8]
    for i, f in enumerate(files):
        rel_dir = "/".join(f"{k}={f.partition_values[k]}" for k in (partition_by or []))
        rel = f"{rel_dir}/" if rel_dir else ""
        rel += f"part-{run_id}-{tag}-{i:05d}.parquet"
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(f.path, dest)
        except OSError:  # staging on another filesystem
            shutil.move(f.path, dest)
        st = dest.stat()
        stats = _parquet_stats(dest)
        actions.append(AddAction(
            path=rel, size=st.st_size,
            partition_values={k: f.partition_values[k] for k in (partition_by or [])},
            modification_time=int(st.st_mtime * 1000), data_change=True, stats=json.dumps(stats),
        ))
    props = _commit_props(run_id, mode, months)
    if os.environ.get("ZIPP_ETL_FAIL_BEFORE_COMMIT") == name:  # failpoint for the crash tests
        raise RuntimeError(f"injected failure before committing {name}")
    if not DeltaTable.is_deltatable(str(root)):
        root.mkdir(parents=True, exist_ok=True)
        create_table_with_add_actions(str(root), Schema.from_arrow(schema), actions, mode="error",
                                      partition_by=partition_by, commit_properties=props)
        return 0
    dt = DeltaTable(str(root))
    if mode == "append":
        dt.create_write_transaction(actions, mode="append", schema=schema, partition_by=partition_by, commit_properties=props)
    elif mode == "overwrite":
        dt.create_write_transaction(actions, mode="overwrite", schema=schema, partition_by=partition_by, commit_properties=props)
    else:
        if not months:
            return dt.version()
        dt.create_write_transaction(actions, mode="overwrite", schema=schema, partition_by=partition_by,
                                    partition_filters=[("month", "in", list(months))], commit_properties=props)
    return DeltaTable(str(root)).version()


def stage_dataframe(df: "DataFrame", stage_dir: str | Path, partition_by: list[str] | None = None,
                    compression: str = "snappy") -> list[StagedFile]:
    w = df.write.mode("overwrite").option("compression", compression)
    if partition_by:
        w = w.partitionBy(*partition_by)
    w.parquet(str(stage_dir))
    return list_staged(stage_dir)


def write_table(spark: "SparkSession", lake: str | Path, name: str, schema: pa.Schema, *, run_id: str,
                stage_root: str | Path, df: "DataFrame | None" = None, staged_dir: str | Path | None = None,
                partition_by: list[str] | None = None, mode: str = "replace_months",
                months: list[str] | None = None, compression: str = "snappy") -> int:
    """Write a DataFrame (or Parquet files an Arrow task staged) as table ``name``; see module doc."""
    if (df is None) == (staged_dir is None):
        raise ValueError("give exactly one of df, staged_dir")
    if backend(spark) == "spark-delta":
        if df is None:
            df = spark.read.schema(spark_schema(schema)).parquet(str(staged_dir))
        df = conform(df, schema)
        w = df.write.format("delta")
        if partition_by:
            w = w.partitionBy(*partition_by)
        if mode == "replace_months":
            if not months:
                return -1
            in_list = ", ".join(f"'{m}'" for m in months)
            w = w.mode("overwrite").option("replaceWhere", f"month IN ({in_list})")
        else:
            w = w.mode(mode)
        w.option("userMetadata", json.dumps({"zipp.run": run_id, "zipp.months": months})).save(table_path(lake, name))
        return -1
    if df is not None:
        staged_dir = Path(stage_root) / f"{name.replace('/', '__')}-{uuid.uuid4().hex[:8]}"
        files = stage_dataframe(conform(df, schema), staged_dir, partition_by, compression)
    else:
        files = list_staged(staged_dir)
    try:
        return commit_files(lake, name, schema, files, run_id=run_id, partition_by=partition_by, mode=mode, months=months)
    finally:
        shutil.rmtree(staged_dir, ignore_errors=True)


def merge_staged(spark: "SparkSession", lake: str | Path, name: str, schema: pa.Schema, upserts: list[str],
                 deletes: list[str], keys: list[str], *, run_id: str, stage_root: str | Path, delete_col: str = "_delete") -> dict:
    """MERGE staged Parquet into the table on ``keys``: rows of ``upserts`` (the table's schema)
    update their match or are inserted, the keys in ``deletes`` delete theirs. A table that does
    not exist yet is created from the upsert files as they are (moved, not copied)."""
    if backend(spark) == "spark-delta":
        from pyspark.sql import functions as F

        parts = []
        if upserts:
            parts.append(spark.read.schema(spark_schema(schema)).parquet(*upserts).withColumn(delete_col, F.lit(False)))
        if deletes:
            key_schema = pa.schema([schema.field(k) for k in keys])
            parts.append(spark.read.schema(spark_schema(key_schema)).parquet(*deletes).withColumn(delete_col, F.lit(True)))
        if not parts:
            return {"num_source_rows": 0}
        df = parts[0]
        for p in parts[1:]:
            df = df.unionByName(p, allowMissingColumns=True)
        if not exists(lake, name):
            write_table(spark, lake, name, schema, run_id=run_id, stage_root=stage_root, df=df.where(~F.col(delete_col)),
                        mode="overwrite")
            return {"created": True}
        from delta.tables import DeltaTable as SparkDeltaTable

        cond = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        values = {c: f"s.{c}" for c in schema.names}
        (SparkDeltaTable.forPath(spark, table_path(lake, name)).alias("t")
         .merge(conform(df, schema, keep=(delete_col,)).alias("s"), cond)
         .whenMatchedDelete(f"s.{delete_col}").whenMatchedUpdate(set=values)
         .whenNotMatchedInsert(condition=f"NOT s.{delete_col}", values=values).execute())
        return {}
    if not exists(lake, name):
        commit_files(lake, name, schema, [StagedFile(p, {}) for p in upserts], run_id=run_id, mode="overwrite")
        return {"created": True}
    if not upserts and not deletes:
        return {"num_source_rows": 0}
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    dt = DeltaTable(table_path(lake, name))
    target = pa.schema(dt.schema().to_arrow())
    src_schema = target.append(pa.field(delete_col, pa.bool_()))

    def batches():  # streamed: the source is never whole in memory
        for path, deleting in [(p, False) for p in upserts] + [(p, True) for p in deletes]:
            for batch in pq.ParquetFile(path).iter_batches():
                n = batch.num_rows
                cols = {f.name: (batch.column(f.name).cast(f.type) if f.name in batch.schema.names else pa.nulls(n, f.type))
                        for f in target}
                cols[delete_col] = pa.array([deleting] * n, pa.bool_())
                yield pa.RecordBatch.from_pydict(cols, schema=src_schema)

    reader = pa.RecordBatchReader.from_batches(src_schema, batches())
    values = {c: f"s.{c}" for c in schema.names}
    return (dt.merge(reader, " AND ".join(f"t.{k} = s.{k}" for k in keys), source_alias="s", target_alias="t",
                     commit_properties=_commit_props(run_id, "merge", None))
            .when_matched_delete(predicate=f"s.{delete_col}")
            .when_matched_update(updates=values)
            .when_not_matched_insert(updates=values, predicate=f"NOT s.{delete_col}")
            .execute())


def count_rows(lake: str | Path, name: str, months: list[str] | None = None) -> int:
    """Rows of the table (or of ``months``) from the log's file statistics; no data is read."""
    from deltalake import DeltaTable

    if not exists(lake, name):
        return 0
    dt = DeltaTable(table_path(lake, name))
    acts = pa.table(dt.get_add_actions(flatten=True)).to_pydict()
    n = 0
    for i, recs in enumerate(acts.get("num_records", [])):
        if months is not None and acts.get("partition.month", [None] * (i + 1))[i] not in months:
            continue
        n += int(recs or 0)
    return n


# ----------------------------------------------------------------------------- log


def commit_partitions(lake: str | Path, name: str, version: int) -> dict:
    """What one commit of the Delta log touched: operation, and the partition values of its added
    and removed files (read from ``_delta_log/<version>.json``)."""
    p = Path(table_path(lake, name)) / "_delta_log" / f"{version:020d}.json"
    out: dict[str, Any] = {"version": version, "operation": None, "added": set(), "removed": set(), "n_added": 0, "n_removed": 0}
    for line in p.read_text().splitlines():
        a = json.loads(line)
        if "commitInfo" in a:
            out["operation"] = a["commitInfo"].get("operation")
            out["metadata"] = {k: v for k, v in a["commitInfo"].items() if k.startswith("zipp.")}
        for kind, key in (("add", "added"), ("remove", "removed")):
            if kind in a:
                out[f"n_{key}"] += 1
                pv = a[kind].get("partitionValues") or {}
                out[key].add(tuple(sorted(pv.items())))
    return out
