"""Gold, incrementally: a run that (re)builds some months touches only what those months change.

1. ``gold/user_subreddit_months`` (partitioned by silver month) holds what every (user, subreddit)
   pair did in that month; ``gold/snippet_candidates`` each month's best k texts per pair. The silver
   tasks compute both from the rows they write, one set per bronze file, so a pair may have several
   rows in a month: every reader sums (or ranks) them.
2. The pairs a run affects = pairs in the old version of its months + pairs in the new version.
3. For those pairs only, totals are recomputed from the monthly rows (other months from the table,
   these months from the new rows) and MERGEd into ``gold/user_subreddit_edges`` / ``gold/snippets``
   (pairs that vanished or fell under ``min_interactions`` are deleted); the affected users and
   subreddits get new stats by MERGE into ``gold/users`` / ``gold/subreddits``, new ones a new id.
4. ``gold/user_images`` is replaced for the run's months.
5. Last, the new monthly rows replace the run's months in step 1's tables, so a run killed before
   that point recomputes the same affected set when rerun.

Ids are append-only: a new key gets ``max(id, watermark) + rank``, an existing key keeps its id, and
the watermark in ``_etl/id_watermarks`` means ids of forgotten users are never reused.
Eligible activity: author not deleted, not a bot, not forgotten.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from zipp import lake as lakeio
from zipp.config import EtlConfig
from zipp.etl.schemas import (
    ETL_FORGOTTEN,
    ETL_FORGOTTEN_SCHEMA,
    ETL_ID_SEQ,
    ETL_ID_SEQ_SCHEMA,
    GOLD_PAIR_MONTHS,
    GOLD_PAIR_MONTHS_SCHEMA,
    GOLD_SNIPPET_CANDIDATES,
    GOLD_SNIPPET_CANDIDATES_SCHEMA,
    SILVER_SCHEMAS,
    silver_table,
)
from zipp.etl.steps import Steps
from zipp.tables import (
    GOLD_EDGES,
    GOLD_EDGES_SCHEMA,
    GOLD_SNIPPETS,
    GOLD_SNIPPETS_SCHEMA,
    GOLD_SUBREDDITS,
    GOLD_SUBREDDITS_SCHEMA,
    GOLD_USER_IMAGES,
    GOLD_USER_IMAGES_SCHEMA,
    GOLD_USERS,
    GOLD_USERS_SCHEMA,
)

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

# user_images is replaced month by month, so it carries the source month (and the gallery position)
USER_IMAGES_SCHEMA = GOLD_USER_IMAGES_SCHEMA.append(pa.field("image_index", pa.int32())).append(pa.field("month", pa.string()))


def _eligible(df: "DataFrame", forgotten: "DataFrame") -> "DataFrame":
    from pyspark.sql import functions as F

    df = df.where(F.col("user_key").isNotNull() & ~F.col("is_deleted_author") & ~F.col("is_bot")
                  & F.col("subreddit_lc").isNotNull())
    return df.join(forgotten, "user_key", "left_anti")


def _next_id(lake: str | Path, table: str, id_map: str, col: str) -> int:
    """First free id: above every id in the table and the recorded watermark (read with Arrow)."""
    import pyarrow.compute as pc

    mx = None
    if lakeio.exists(lake, table):
        mx = pc.max(lakeio.read_arrow(lake, table, columns=[col]).column(col)).as_py()
    wm = 0
    if lakeio.exists(lake, ETL_ID_SEQ):
        t = lakeio.read_arrow(lake, ETL_ID_SEQ).to_pylist()
        wm = max([r["next_id"] for r in t if r["id_map"] == id_map], default=0)
    return max(wm, (mx + 1) if mx is not None else 0)


def _staged_column(stage_dir: Path, col: str) -> pa.ChunkedArray | None:
    """One column of the Parquet files Spark staged under ``stage_dir`` (None when there are none)."""
    import pyarrow.dataset as ds

    files = [str(p) for p in stage_dir.rglob("*.parquet")]
    return ds.dataset(files, format="parquet").to_table(columns=[col]).column(col) if files else None


def _staged_max(stage_dir: Path, col: str) -> int | None:
    import pyarrow.compute as pc

    values = _staged_column(stage_dir, col)
    return None if values is None else pc.max(values).as_py()


def _value_counts(stage_dir: Path, col: str) -> dict:
    values = _staged_column(stage_dir, col)
    if values is None:
        return {}
    vc = values.value_counts()
    return {v.as_py(): c.as_py() for v, c in zip(vc.field("values"), vc.field("counts"))}


def _staged_rows(stage_dir: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(p).num_rows for p in stage_dir.rglob("*.parquet"))


def _save_watermarks(lake: str | Path, values: dict[str, int]) -> None:
    rows = {}
    if lakeio.exists(lake, ETL_ID_SEQ):
        rows = {r["id_map"]: r["next_id"] for r in lakeio.read_arrow(lake, ETL_ID_SEQ).to_pylist()}
    rows.update({k: max(v, rows.get(k, 0)) for k, v in values.items()})
    lakeio.write_arrow(lake, ETL_ID_SEQ, pa.table({"id_map": list(rows), "next_id": list(rows.values())}, schema=ETL_ID_SEQ_SCHEMA))


def _assign_ids(keys: "DataFrame", existing: "DataFrame", key: str, id_col: str, start: int, stage: Path) -> "DataFrame":
    """key -> id for every key in ``keys``: existing ids kept, new keys numbered from ``start`` in key
    order. The new keys are range-partitioned by key and staged (so partition ids are fixed), each
    partition numbers its rows, and a partition's offset is the count of the partitions before it:
    dense ids without pulling every new key into one partition (23M users on a first build)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from zipp.etl.delta import materialize

    known = keys.join(existing.select(key, id_col), key, "inner")
    n_parts = max(1, int(keys.sparkSession.conf.get("spark.sql.shuffle.partitions")))
    new_dir = stage / f"new_{id_col}"
    new = materialize(keys.join(existing.select(key), key, "left_anti").repartitionByRange(n_parts, key)
                      .withColumn("_part", F.spark_partition_id()), new_dir)
    counts = _value_counts(new_dir, "_part")  # from the staged files: no Spark job
    offsets, acc = {}, start
    for part in sorted(counts):  # range partitions are in key order
        offsets[part] = acc
        acc += counts[part]
    if not offsets:
        return known
    base = F.create_map(*[x for part, off in offsets.items() for x in (F.lit(part), F.lit(off))])
    rank = F.row_number().over(Window.partitionBy("_part").orderBy(key))
    new = new.withColumn(id_col, (base[F.col("_part")] + rank - 1).cast("long")).drop("_part")
    return known.unionByName(new)


def build_gold(spark: "SparkSession", lake: str | Path, etl: EtlConfig, months: list[str], *, run_id: str,
               stage_root: str | Path, partials: dict[str, str]) -> dict:
    """``partials``: staged folders of this run's monthly rows (``pairs``, ``candidates``), written by the
    silver tasks from the same rows (see :func:`zipp.etl.silver.gold_partials`)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from zipp.etl.delta import commit_files, count_rows, list_staged, materialize, read_table, upsert_table, write_table

    stage = Path(stage_root) / f"gold-{uuid.uuid4().hex[:6]}"
    steps = Steps("gold")
    k = etl.snippets_k
    forgotten = read_table(spark, lake, ETL_FORGOTTEN, ETL_FORGOTTEN_SCHEMA).select("user_key").distinct()
    subs = _eligible(read_table(spark, lake, silver_table("submissions"), SILVER_SCHEMAS["submissions"], months), forgotten)

    # ---- 1. this run's monthly rows: staged by the silver tasks, committed last
    pairs_new_dir, cand_new_dir = Path(partials["pairs"]), Path(partials["candidates"])
    pairs_new = read_table_staged(spark, pairs_new_dir, GOLD_PAIR_MONTHS_SCHEMA)
    cand_new = read_table_staged(spark, cand_new_dir, GOLD_SNIPPET_CANDIDATES_SCHEMA)
    order = [F.coalesce("score", F.lit(0)).desc(), F.col("created").asc(), F.col("snippet_id").asc()]

    # ---- 2. affected pairs / users / subreddits
    pairs_old = read_table(spark, lake, GOLD_PAIR_MONTHS, GOLD_PAIR_MONTHS_SCHEMA, months)
    affected = materialize(pairs_old.select("user_key", "subreddit").unionByName(pairs_new.select("user_key", "subreddit"))
                           .distinct(), stage / "affected")
    steps("affected")
    a_users = affected.select("user_key").distinct()
    a_subs = affected.select("subreddit").distinct()

    no_other_months = count_rows(lake, GOLD_PAIR_MONTHS) == count_rows(lake, GOLD_PAIR_MONTHS, months)
    pairs_rest = read_table(spark, lake, GOLD_PAIR_MONTHS, GOLD_PAIR_MONTHS_SCHEMA, exclude_months=months)
    pairs_all = pairs_rest.unionByName(pairs_new)

    def pair_totals(df: "DataFrame") -> "DataFrame":
        return df.groupBy("user_key", "subreddit").agg(
            F.sum("n_submissions").alias("n_submissions"), F.sum("n_comments").alias("n_comments"),
            F.sum("n_image_posts").alias("n_image_posts"), F.sum("n_nsfw_submissions").alias("n_nsfw_submissions"),
            F.sum("score_sum").alias("score_sum"), F.min("first_ts").alias("first_ts"), F.max("last_ts").alias("last_ts"),
            F.countDistinct("month").cast("int").alias("active_months"),  # monthly rows sit in their activity month
        ).withColumn("is_edge", (F.col("n_submissions") + F.col("n_comments")) >= etl.min_interactions)

    # totals of every pair of an affected user or subreddit (users/subreddits stats need them all)
    if no_other_months:  # every pair of pairs_all is affected: nothing to select
        touched = pairs_new
    else:
        touched = (pairs_all.join(a_users.withColumn("_u", F.lit(True)), "user_key", "left")
                   .join(a_subs.withColumn("_s", F.lit(True)), "subreddit", "left")
                   .where(F.col("_u").isNotNull() | F.col("_s").isNotNull()).drop("_u", "_s"))
    totals = materialize(pair_totals(touched), stage / "totals")
    steps("totals")

    # ---- 3. ids (append-only) + users/subreddits stats, MERGEd
    users_existing = read_table(spark, lake, GOLD_USERS, GOLD_USERS_SCHEMA).select("user_key", "user_id")
    subs_existing = read_table(spark, lake, GOLD_SUBREDDITS, GOLD_SUBREDDITS_SCHEMA).select("subreddit", "subreddit_id")
    u_start = _next_id(lake, GOLD_USERS, "user_id", "user_id")
    s_start = _next_id(lake, GOLD_SUBREDDITS, "subreddit_id", "subreddit_id")
    user_ids = materialize(_assign_ids(a_users, users_existing, "user_key", "user_id", u_start, stage), stage / "user_ids")
    sub_ids = materialize(_assign_ids(a_subs, subs_existing, "subreddit", "subreddit_id", s_start, stage), stage / "sub_ids")
    u_next = max(u_start, (_staged_max(stage / "user_ids", "user_id") or -1) + 1)
    s_next = max(s_start, (_staged_max(stage / "sub_ids", "subreddit_id") or -1) + 1)
    _save_watermarks(lake, {"user_id": u_next, "subreddit_id": s_next})
    steps("ids")

    zero = F.lit(0).cast("long")
    u_stats = totals.join(a_users, "user_key", "left_semi").groupBy("user_key").agg(
        F.sum("n_comments").alias("n_comments"), F.sum("n_submissions").alias("n_submissions"),
        F.sum("n_image_posts").alias("n_image_posts"), F.sum(F.col("is_edge").cast("long")).alias("n_subreddits"),
        F.min("first_ts").alias("first_ts"), F.max("last_ts").alias("last_ts"))
    users_src = user_ids.join(u_stats, "user_key", "left").select(
        "user_id", "user_key", *[F.coalesce(c, zero).alias(c) for c in ("n_comments", "n_submissions", "n_image_posts", "n_subreddits")],
        "first_ts", "last_ts", F.lit(False).alias("_delete"))
    m_users = upsert_table(spark, lake, GOLD_USERS, GOLD_USERS_SCHEMA, users_src, ["user_key"], run_id=run_id, stage_root=stage)
    steps("users")

    s_stats = totals.join(a_subs, "subreddit", "left_semi").groupBy("subreddit").agg(
        F.sum(F.col("is_edge").cast("long")).alias("n_users"), F.sum("n_comments").alias("n_comments"),
        F.sum("n_submissions").alias("n_submissions"), F.sum("n_image_posts").alias("n_image_posts"),
        F.sum("n_nsfw_submissions").alias("n_nsfw"))
    subs_src = sub_ids.join(s_stats, "subreddit", "left").select(
        "subreddit_id", "subreddit", *[F.coalesce(c, zero).alias(c) for c in ("n_users", "n_comments", "n_submissions", "n_image_posts")],
        F.when(F.coalesce("n_submissions", zero) > 0, F.col("n_nsfw") / F.col("n_submissions")).otherwise(F.lit(0.0)).alias("nsfw_share"),
        F.lit(False).alias("_delete"))
    m_subs = upsert_table(spark, lake, GOLD_SUBREDDITS, GOLD_SUBREDDITS_SCHEMA, subs_src, ["subreddit"], run_id=run_id, stage_root=stage)
    steps("subreddits")

    # ---- edges of the affected pairs: upsert, or delete when gone / under min_interactions
    a_totals = totals.join(affected, ["user_key", "subreddit"], "left_semi")
    edges_src = (affected.join(a_totals, ["user_key", "subreddit"], "left")
                 .join(user_ids, "user_key", "left").join(sub_ids, "subreddit", "left")
                 .withColumn("_delete", ~F.coalesce(F.col("is_edge"), F.lit(False))))
    m_edges = upsert_table(spark, lake, GOLD_EDGES, GOLD_EDGES_SCHEMA, edges_src, ["user_key", "subreddit"], run_id=run_id, stage_root=stage)
    steps("edges")

    # ---- snippets of the affected pairs: top-k over all months, slots 1..k upserted or deleted
    # the ids go onto the (narrow) edge pairs first, so the candidates' texts are shuffled once, by
    # pair, and the ranking window reuses that partitioning
    edge_pairs = (a_totals.where("is_edge").select("user_key", "subreddit")
                  .join(user_ids, "user_key", "left").join(sub_ids, "subreddit", "left"))
    cand_rest = read_table(spark, lake, GOLD_SNIPPET_CANDIDATES, GOLD_SNIPPET_CANDIDATES_SCHEMA, exclude_months=months)
    best = (cand_rest.unionByName(cand_new).join(edge_pairs, ["user_key", "subreddit"], "inner")
            .withColumn("rank", F.row_number().over(Window.partitionBy("user_key", "subreddit").orderBy(*order)).cast("int"))
            .where(F.col("rank") <= k))
    snip_src = best.withColumn("_delete", F.lit(False))
    if count_rows(lake, GOLD_SNIPPETS):  # slots of affected pairs that are no longer filled: delete
        old = read_table(spark, lake, GOLD_SNIPPETS, GOLD_SNIPPETS_SCHEMA).select("user_key", "subreddit", "rank")
        gone = (old.join(affected, ["user_key", "subreddit"], "left_semi")
                .join(best.select("user_key", "subreddit", "rank"), ["user_key", "subreddit", "rank"], "left_anti"))
        snip_src = snip_src.unionByName(gone.withColumn("_delete", F.lit(True)), allowMissingColumns=True)
    m_snip = upsert_table(spark, lake, GOLD_SNIPPETS, GOLD_SNIPPETS_SCHEMA, snip_src, ["user_key", "subreddit", "rank"],
                          run_id=run_id, stage_root=stage)
    steps("snippets")

    # ---- 4. user_images of these months
    images = (subs.where("is_image").select(
        "month", "user_key", F.col("subreddit_lc").alias("subreddit"), F.concat(F.lit("t3_"), "id").alias("post_id"),
        F.posexplode("image_urls").alias("image_index", "url"), F.col("created_utc").alias("created"), "nsfw")
        .join(user_ids, "user_key", "left").join(sub_ids, "subreddit", "left"))
    write_table(spark, lake, GOLD_USER_IMAGES, USER_IMAGES_SCHEMA, run_id=run_id, stage_root=stage, df=images,
                partition_by=["month"], months=months, compression=etl.parquet_compression)
    steps("user_images")

    # ---- 5. the monthly rows, last
    commit_files(lake, GOLD_PAIR_MONTHS, GOLD_PAIR_MONTHS_SCHEMA, list_staged(pairs_new_dir), run_id=run_id,
                 partition_by=["month"], months=months)
    commit_files(lake, GOLD_SNIPPET_CANDIDATES, GOLD_SNIPPET_CANDIDATES_SCHEMA, list_staged(cand_new_dir), run_id=run_id,
                 partition_by=["month"], months=months)

    steps("monthly_tables")
    counts = {
        "affected_pairs": _staged_rows(stage / "affected"), "affected_users": _staged_rows(stage / "user_ids"),
        "affected_subreddits": _staged_rows(stage / "sub_ids"), "new_users": u_next - u_start,
        "new_subreddits": s_next - s_start,
        "merge": {"users": _short(m_users), "subreddits": _short(m_subs), "edges": _short(m_edges), "snippets": _short(m_snip)},
    }
    for name in (GOLD_USERS, GOLD_SUBREDDITS, GOLD_EDGES, GOLD_SNIPPETS, GOLD_USER_IMAGES):
        counts[name] = count_rows(lake, name)
    import shutil

    shutil.rmtree(stage, ignore_errors=True)
    counts["step_seconds"] = steps.times
    return counts


def _short(m: dict) -> dict:
    return {k.replace("num_target_rows_", ""): v for k, v in (m or {}).items()
            if k in ("num_target_rows_inserted", "num_target_rows_updated", "num_target_rows_deleted", "created")}


def read_table_staged(spark: "SparkSession", stage_dir: str | Path, schema: pa.Schema) -> "DataFrame":
    """Staged (not yet committed) Parquet of a month-partitioned table, read with its schema."""
    from zipp.etl.delta import list_staged, spark_schema

    if not list_staged(stage_dir):
        return spark.createDataFrame([], spark_schema(schema))
    return spark.read.schema(spark_schema(schema)).parquet(str(stage_dir))
