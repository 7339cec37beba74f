"""Silver: bronze rows cleaned per month, in Spark.

- one row per ``id`` per month: the latest retrieval wins (``retrieved_on`` / Arctic-Shift
  ``_meta.retrieved_2nd_on``), ties go to the later file and line;
- ``created_utc`` as a timestamp, whatever its JSON type was;
- flags: ``is_deleted_author`` ([deleted]/[removed]), ``is_removed_text``, ``is_bot`` (config list,
  AutoModerator, the ``*bot`` regex, minus ``not_bots``), ``nsfw`` (over_18), ``is_image`` with
  ``image_urls`` (galleries in order, direct image links, post_hint image with preview fallback;
  ``&amp;`` unescaped);
- ``user_key``: salted hash of the author (:mod:`zipp.identity`) computed in a pandas UDF so the salt
  never appears in a plan or a table; null for deleted authors.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd  # pandas UDF type hints are resolved from this module's globals

from zipp.config import EtlConfig
from zipp.etl.schemas import BRONZE_SCHEMAS, KINDS, SILVER_SCHEMAS, bronze_table, silver_table

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import Column, DataFrame, SparkSession

DELETED = ("[deleted]", "[removed]")
IMAGE_EXT = r"(?i)^https?://[^?#]+\.(jpe?g|png|gif|webp)([?#].*)?$"
IMAGE_HOST = r"(?i)^https?://(i\.redd\.it|i\.imgur\.com|preview\.redd\.it)/[^?#]+$"
NOT_IMAGE = r"(?i)\.(gifv|mp4|webm)([?#].*)?$"


def user_key_udf(salt: str):
    """A pandas UDF author -> user_key; the salt travels inside the pickled function only."""
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("string")
    def user_key(authors: pd.Series) -> pd.Series:
        from zipp.identity import user_key as key

        return pd.Series([key(a, salt) if isinstance(a, str) else None for a in authors], dtype=object)

    return user_key


def _unescape(c: "Column") -> "Column":
    from pyspark.sql import functions as F

    return F.regexp_replace(c, "&amp;", "&")


def is_bot(author: "Column", etl: EtlConfig) -> "Column":
    from pyspark.sql import functions as F

    names = [a.lower() for a in etl.bot_authors + ["AutoModerator"]]
    flag = F.lower(author).isin(names)
    if etl.bot_regex:
        flag = flag | author.rlike(etl.bot_regex)
    if etl.not_bots:
        flag = flag & ~F.lower(author).isin([a.lower() for a in etl.not_bots])
    return F.coalesce(flag, F.lit(False))


def silver_frame(bronze: "DataFrame", kind: str, etl: EtlConfig, salt: str) -> "DataFrame":
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    retrieved = F.greatest(F.col("retrieved_on"), F.col("retrieved_2nd_on"))
    w = Window.partitionBy("month", "id").orderBy(
        retrieved.desc_nulls_last(), F.col("source_file").desc(), F.col("line_no").desc())
    df = (bronze.withColumn("_rank", F.row_number().over(w)).where(F.col("_rank") == 1).drop("_rank")
          .withColumn("retrieved_on", retrieved))
    deleted = F.col("author").isin(*DELETED)
    text = F.col("body") if kind == "comments" else F.col("selftext")
    df = df.select(
        "*",
        F.lower("subreddit").alias("subreddit_lc"),
        F.timestamp_seconds("created_utc").alias("created_ts"),
        deleted.alias("is_deleted_author"),
        F.coalesce(text.isin(*DELETED), F.lit(False)).alias("is_removed_text"),
        (is_bot(F.col("author"), etl) & ~deleted).alias("is_bot"),
        F.when(~deleted, user_key_udf(salt)(F.col("author"))).alias("user_key"),
    ).drop("created_utc").withColumnRenamed("created_ts", "created_utc")
    if kind == "submissions":
        url = F.col("url")
        direct = url.rlike(IMAGE_EXT) | url.rlike(IMAGE_HOST)
        direct = F.coalesce(direct & ~url.rlike(NOT_IMAGE), F.lit(False))
        hint = F.coalesce(F.col("post_hint") == "image", F.lit(False))
        gallery = F.coalesce(F.size("gallery_urls") > 0, F.lit(False))
        preview = F.coalesce(F.size("preview_urls") > 0, F.lit(False))
        urls = (F.when(gallery, F.transform("gallery_urls", _unescape))
                .when(direct, F.array(_unescape(url)))
                .when(hint & preview, F.array(_unescape(F.col("preview_urls")[0])))
                .when(hint & url.isNotNull(), F.array(_unescape(url))))
        df = df.withColumn("image_urls", urls).withColumn("is_image", F.coalesce(F.size("image_urls") > 0, F.lit(False)))
        df = df.withColumn("nsfw", F.coalesce(F.col("over_18"), F.lit(False)))
    return df


def build_silver(spark: "SparkSession", lake: str | Path, etl: EtlConfig, months: list[str], *, run_id: str,
                 stage_root: str | Path, salt: str) -> dict:
    """Rebuild silver/* for ``months`` from bronze; returns per kind the totals and per-month facts."""
    from zipp.etl.delta import count_rows, read_table, write_table
    from zipp.etl.quality import silver_facts

    out = {}
    for kind in KINDS:
        bronze = read_table(spark, lake, bronze_table(kind), BRONZE_SCHEMAS[kind], months)
        write_table(spark, lake, silver_table(kind), SILVER_SCHEMAS[kind], run_id=run_id, stage_root=stage_root,
                    df=silver_frame(bronze, kind, etl, salt), partition_by=["month"], months=months,
                    compression=etl.parquet_compression)
        facts = silver_facts(read_table(spark, lake, silver_table(kind), SILVER_SCHEMAS[kind], months), etl)
        totals = {k: sum(r[k] for r in facts) for k in (facts[0] if facts else {"rows": 0}) if k != "month"}
        n_bronze = count_rows(lake, bronze_table(kind), months)
        out[kind] = {"rows": 0, "deleted_authors": 0, "bots": 0, **totals, "bronze_rows": n_bronze,
                     "duplicates": n_bronze - totals.get("rows", 0), "facts": facts}
    return out
