"""Silver: bronze rows cleaned, in Spark, partitioned by the month of ``created_utc``.

- silver month M is rebuilt from every bronze partition (file month) holding rows created in M
  (``_etl/month_map``), so a re-crawled copy in the next month's file meets its original;
- one row per ``id``: the latest retrieval wins (``retrieved_on`` / Arctic-Shift
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

from dataclasses import dataclass
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
    w = Window.partitionBy("id").orderBy(
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


@dataclass
class SilverPlan:
    months: list[str]  # silver (created) months to rebuild
    sources: dict[str, list[str]]  # kind -> bronze (file) months to read
    month_map: list[dict]  # the map after this run, saved once silver is committed


def plan_silver(lake: str | Path, file_months: list[str], created: dict[tuple[str, str], dict[str, int]]) -> SilverPlan:
    """``created``: (kind, file month) -> rows per created month, for the file months just ingested.
    Silver months to rebuild = those the old and the new versions of these file months fed."""
    from zipp import lake as lakeio
    from zipp.etl.schemas import ETL_MONTH_MAP

    old = lakeio.read_arrow(lake, ETL_MONTH_MAP).to_pylist() if lakeio.exists(lake, ETL_MONTH_MAP) else []
    touched = {r["created_month"] for r in old if r["file_month"] in file_months}
    new_rows = [{"kind": k, "file_month": fm, "created_month": cm, "rows": n}
                for (k, fm), months in sorted(created.items()) for cm, n in sorted(months.items()) if n]
    touched |= {r["created_month"] for r in new_rows}
    month_map = [r for r in old if r["file_month"] not in file_months] + new_rows
    sources = {kind: sorted({r["file_month"] for r in month_map if r["kind"] == kind and r["created_month"] in touched})
               for kind in KINDS}
    return SilverPlan(months=sorted(touched), sources=sources, month_map=month_map)


def save_month_map(lake: str | Path, plan: SilverPlan) -> None:
    import pyarrow as pa

    from zipp import lake as lakeio
    from zipp.etl.schemas import ETL_MONTH_MAP, ETL_MONTH_MAP_SCHEMA

    rows = sorted(plan.month_map, key=lambda r: (r["kind"], r["file_month"], r["created_month"]))
    lakeio.write_arrow(lake, ETL_MONTH_MAP, pa.Table.from_pylist(rows, schema=ETL_MONTH_MAP_SCHEMA))


def build_silver(spark: "SparkSession", lake: str | Path, etl: EtlConfig, plan: SilverPlan, *, run_id: str,
                 stage_root: str | Path, salt: str) -> dict:
    """Rebuild silver/* for ``plan.months``; returns per kind the totals and per-month facts."""
    from pyspark.sql import functions as F

    from zipp.etl.delta import count_rows, read_table, write_table
    from zipp.etl.quality import silver_facts
    from zipp.etl.schemas import ETL_FORGOTTEN, ETL_FORGOTTEN_SCHEMA

    forgotten = None
    if count_rows(lake, ETL_FORGOTTEN):
        forgotten = read_table(spark, lake, ETL_FORGOTTEN, ETL_FORGOTTEN_SCHEMA).select("user_key").distinct()
    months = plan.months
    out = {}
    for kind in KINDS:
        bronze = read_table(spark, lake, bronze_table(kind), BRONZE_SCHEMAS[kind], plan.sources[kind])
        bronze = (bronze.withColumn("month", F.date_format(F.timestamp_seconds("created_utc"), "yyyy-MM"))
                  .where(F.col("month").isin(months)))
        write_table(spark, lake, silver_table(kind), SILVER_SCHEMAS[kind], run_id=run_id, stage_root=stage_root,
                    df=silver_frame(bronze, kind, etl, salt), partition_by=["month"], months=months,
                    compression=etl.parquet_compression)
        facts = silver_facts(read_table(spark, lake, silver_table(kind), SILVER_SCHEMAS[kind], months), etl, forgotten)
        totals = {k: sum(r[k] for r in facts) for k in (facts[0] if facts else {"rows": 0}) if k != "month"}
        n_in = sum(r["rows"] for r in plan.month_map if r["kind"] == kind and r["created_month"] in months)
        out[kind] = {"rows": 0, "deleted_authors": 0, "bots": 0, **totals, "bronze_rows": n_in,
                     "duplicates": n_in - totals.get("rows", 0), "facts": facts}
    save_month_map(lake, plan)
    return out
