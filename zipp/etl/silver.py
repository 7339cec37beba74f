"""Silver: bronze rows cleaned, partitioned by the month of ``created_utc``.

- silver month M is rebuilt from every bronze partition (file month) holding rows created in M
  (``_etl/month_map``), so a re-crawled copy in the next month's file meets its original;
- one row per ``id``: the latest retrieval wins (``retrieved_on`` / Arctic-Shift
  ``_meta.retrieved_2nd_on``), ties go to the later file and line;
- ``created_utc`` as a timestamp, whatever its JSON type was;
- flags: ``is_deleted_author`` ([deleted]/[removed]), ``is_removed_text``, ``is_bot`` (config list,
  the ``*bot`` regex, minus ``not_bots``), ``nsfw`` (over_18), ``is_image`` with ``image_urls``
  (galleries in order, direct image links, post_hint image with preview fallback; ``&amp;`` unescaped);
- ``user_key``: salted hash of the author (:mod:`zipp.identity`); null for deleted authors. The salt
  travels only inside the pickled task function, never in a plan or a table.

How: indexed tasks (:func:`zipp.etl.tasks.run_indexed`), no Spark SQL shuffle. An id shuffle
through staged files (map: id/retrieval/position columns into id-hash bucket folders; reduce: one
task per bucket) finds the losing copies of duplicated ids; one task per bronze file reads it, drops the losers, derives the
columns with polars and writes the silver Parquet (and gold's monthly rows); one commit per table;
then distinct ids per month are counted on the committed table by another id shuffle.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from zipp.config import EtlConfig
from zipp.etl.delta import list_staged
from zipp.etl.schemas import KINDS, SILVER_SCHEMAS, bronze_table, silver_table
from zipp.etl.steps import Steps
from zipp.etl.tasks import parallelism, run_indexed, scan_files, task_count, write_by_month

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl
    from pyspark.sql import SparkSession

DELETED = ("[deleted]", "[removed]")
IMAGE_EXT = r"(?i)^https?://[^?#]+\.(jpe?g|png|gif|webp)([?#].*)?$"
IMAGE_HOST = r"(?i)^https?://(i\.redd\.it|i\.imgur\.com|preview\.redd\.it)/[^?#]+$"
NOT_IMAGE = r"(?i)\.(gifv|mp4|webm)([?#].*)?$"


class AuthorInfo:
    """author -> (user_key, is_bot), cached: authors repeat, hashing each once is enough."""

    def __init__(self, etl: EtlConfig, salt: str):
        self.salt = salt
        self.names = {a.lower() for a in etl.bot_authors}
        self.people = {a.lower() for a in etl.not_bots}
        self.regex = re.compile(etl.bot_regex) if etl.bot_regex else None
        self.cache: dict[str, tuple[str | None, bool]] = {}

    def __call__(self, author: str) -> tuple[str | None, bool]:
        hit = self.cache.get(author)
        if hit is None:
            from zipp.identity import user_key

            if author in DELETED:
                hit = (None, False)
            else:
                low = author.lower()
                bot = (low in self.names or bool(self.regex and self.regex.search(author))) and low not in self.people
                hit = (user_key(author, self.salt), bot)
            self.cache[author] = hit
        return hit


def transform(df: "pl.DataFrame", kind: str, months: set[str], losers: dict[str, set[int]], authors: AuthorInfo):
    """Bronze rows of one file -> silver rows (with ``month`` = month of created_utc), as polars."""
    import polars as pl

    df = df.with_columns(pl.from_epoch("created_utc", time_unit="s").dt.replace_time_zone("UTC").alias("_ts"))
    df = df.with_columns(pl.col("_ts").dt.strftime("%Y-%m").alias("month")).filter(pl.col("month").is_in(list(months)))
    gone = [(f, n) for f in df["source_file"].unique().to_list() for n in losers.get(f, ())]
    if gone:
        lz = pl.DataFrame({"source_file": [g[0] for g in gone], "line_no": [g[1] for g in gone]},
                          schema={"source_file": pl.String, "line_no": pl.Int64})
        df = df.join(lz, on=["source_file", "line_no"], how="anti")
    uniq = df["author"].unique().to_list()
    info = [authors(a) for a in uniq]
    amap = pl.DataFrame({"author": uniq, "user_key": [i[0] for i in info], "is_bot": [i[1] for i in info]},
                        schema={"author": pl.String, "user_key": pl.String, "is_bot": pl.Boolean})
    df = df.join(amap, on="author", how="left")
    text = "body" if kind == "comments" else "selftext"
    df = df.with_columns(
        pl.max_horizontal("retrieved_on", "retrieved_2nd_on").alias("retrieved_on"),
        pl.col("subreddit").str.to_lowercase().alias("subreddit_lc"),
        pl.col("_ts").cast(pl.Datetime("us", "UTC")).alias("created_utc"),
        pl.col("author").is_in(list(DELETED)).alias("is_deleted_author"),
        pl.col(text).is_in(list(DELETED)).fill_null(False).alias("is_removed_text"),
    )
    if kind == "submissions":
        url = pl.col("url")

        def unescape(e):
            return e.str.replace_all("&amp;", "&", literal=True)

        direct = ((url.str.contains(IMAGE_EXT) | url.str.contains(IMAGE_HOST)) & ~url.str.contains(NOT_IMAGE)).fill_null(False)
        hint = (pl.col("post_hint") == "image").fill_null(False)
        gallery = (pl.col("gallery_urls").list.len() > 0).fill_null(False)
        preview = (pl.col("preview_urls").list.len() > 0).fill_null(False)
        urls = (pl.when(gallery).then(pl.col("gallery_urls").list.eval(unescape(pl.element())))
                .when(direct).then(pl.concat_list(unescape(url)))
                .when(hint & preview).then(pl.concat_list(unescape(pl.col("preview_urls").list.first())))
                .when(hint & url.is_not_null()).then(pl.concat_list(unescape(url)))
                .otherwise(None))
        df = df.with_columns(urls.alias("image_urls"), pl.col("over_18").fill_null(False).alias("nsfw"))
        df = df.with_columns((pl.col("image_urls").list.len() > 0).fill_null(False).alias("is_image"))
    return df


def _facts(df, kind: str) -> list[dict]:
    import polars as pl

    eligible = (pl.col("user_key").is_not_null() & ~pl.col("is_deleted_author") & ~pl.col("is_bot")
                & pl.col("subreddit_lc").is_not_null())
    aggs = [pl.len().alias("rows"), eligible.sum().alias("eligible"),
            (pl.col("user_key").is_null() & ~pl.col("is_deleted_author")).sum().alias("missing_user_key"),
            pl.col("is_deleted_author").sum().alias("deleted_authors"), pl.col("is_bot").sum().alias("bots")]
    if kind == "submissions":
        aggs += [pl.col("is_image").sum().alias("images"), pl.col("nsfw").sum().alias("nsfw")]
    return df.group_by("month").agg(aggs).to_dicts()


def gold_partials(df, kind: str, k: int, max_chars: int):
    """What gold needs from these silver rows, computed in the same task: per (month, user, subreddit)
    the activity counts, the k best texts (a month's rows from several files give several rows per
    pair; gold sums / ranks them again), and for submissions the image rows of gold/user_images."""
    import polars as pl

    el = df.filter(pl.col("user_key").is_not_null() & ~pl.col("is_deleted_author") & ~pl.col("is_bot")
                   & pl.col("subreddit_lc").is_not_null()).with_columns(pl.col("subreddit_lc").alias("_sub"))
    is_sub = kind == "submissions"
    pairs = el.group_by("month", "user_key", "_sub").agg(
        pl.len().alias("n_submissions" if is_sub else "n_comments"),
        (pl.col("is_image").sum() if is_sub else pl.lit(0)).alias("n_image_posts"),
        (pl.col("nsfw").sum() if is_sub else pl.lit(0)).alias("n_nsfw_submissions"),
        pl.col("score").fill_null(0).sum().alias("score_sum"),
        pl.col("created_utc").min().alias("first_ts"), pl.col("created_utc").max().alias("last_ts"),
    ).with_columns(pl.lit(0).alias("n_comments" if is_sub else "n_submissions"),
                   pl.concat_list(pl.col("month")).alias("activity_months")).rename({"_sub": "subreddit"})
    text, prefix, label = ("title", "t3_", "title") if is_sub else ("body", "t1_", "comment")
    cands = el.filter(~pl.col("is_removed_text") & (pl.col(text).str.strip_chars().str.len_chars() > 0)).select(
        "month", "user_key", pl.col("_sub").alias("subreddit"), (pl.lit(prefix) + pl.col("id")).alias("snippet_id"),
        pl.lit(label).alias("kind"), pl.col(text).str.slice(0, max_chars).alias("text"), "score",
        pl.col("created_utc").alias("created"))
    cands = (cands.sort([pl.col("score").fill_null(0), "created", "snippet_id"], descending=[True, False, False])
             .group_by("month", "user_key", "subreddit", maintain_order=True).head(k))
    images = None
    if is_sub:
        images = (el.filter(pl.col("is_image")).select(
            "month", "user_key", pl.col("_sub").alias("subreddit"), (pl.lit("t3_") + pl.col("id")).alias("post_id"),
            pl.col("image_urls").alias("url"), pl.col("created_utc").alias("created"), "nsfw")
            .with_columns(pl.int_ranges(pl.col("url").list.len(), dtype=pl.Int32).alias("image_index"))
            .explode("url", "image_index"))
    return pairs, cands, images


def silver_file(task: int, kind: str, path: str, months: set[str], losers: dict[str, set[int]], etl: EtlConfig, salt: str,
                out: Path) -> pa.Table:
    """One bronze file -> its silver rows and gold's monthly rows, staged under ``out``; returns its
    facts (one row: kind, facts as JSON)."""
    import polars as pl

    from zipp.etl.schemas import GOLD_IMAGE_CANDIDATES_SCHEMA, GOLD_PAIR_MONTHS_SCHEMA, GOLD_SNIPPET_CANDIDATES_SCHEMA

    # polars reads the file on the task's one core in about half of pyarrow's single-threaded time
    df = transform(pl.read_parquet(path, hive_partitioning=False), kind, months, losers, AuthorInfo(etl, salt))
    part, comp = f"part-{task:06d}.parquet", etl.parquet_compression
    write_by_month(df, out / f"silver__{kind}", SILVER_SCHEMAS[kind], part, comp, key_sorted=False)
    # gold's monthly rows, sorted by user_key so a gold task reads only its key range's row groups
    pairs, cands, images = gold_partials(df, kind, etl.snippets_k, etl.snippet_max_chars)
    write_by_month(pairs, out / "gold_pairs", GOLD_PAIR_MONTHS_SCHEMA, f"{kind}-{part}", comp)
    write_by_month(cands, out / "gold_candidates", GOLD_SNIPPET_CANDIDATES_SCHEMA, f"{kind}-{part}", comp)
    if images is not None:
        write_by_month(images, out / "gold_images", GOLD_IMAGE_CANDIDATES_SCHEMA, part, comp)
    return pa.table({"kind": [kind], "facts": [json.dumps(_facts(df, kind))]})


_ID_BUCKET_ROWS = 5_000_000  # rows (narrow id columns, ~60 bytes each) per reduce task of an id shuffle


def _partition_by_id(files: list[str], columns: list[str], months: list[str] | None, buckets: int, out: Path,
                     task: int) -> pa.Table:
    """Map side of an id shuffle: ``columns`` of ``files`` (only the rows created in ``months`` when
    given) into one file per id-hash bucket under ``out``; returns the row count."""
    import polars as pl

    from zipp.etl.parse import month_bounds

    lf = scan_files(files).select(columns)
    if months is not None:
        created = pl.col("created_utc")
        lf = lf.filter(pl.any_horizontal([(created >= lo) & (created < hi) for lo, hi in (month_bounds(m, 0) for m in months)]))
    df = lf.with_columns((pl.col("id").hash(seed=0) % buckets).alias("_bucket")).collect()
    for (bucket,), part in df.partition_by("_bucket", as_dict=True).items():
        path = out / f"bucket={bucket}" / f"map-{task:05d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        part.drop("_bucket").write_parquet(path)
    return pa.table({"rows": [df.height]})


def _reduce_bucket(out: Path, bucket: int, reduce, schema: pa.Schema) -> pa.Table:
    """Reduce side of an id shuffle: ``reduce`` (polars frame -> polars frame) on one bucket's rows."""
    import polars as pl

    files = [f.path for f in list_staged(out / f"bucket={bucket}")]
    return reduce(pl.read_parquet(files)).to_arrow() if files else schema.empty_table()


def id_shuffle(spark: "SparkSession", lake: str | Path, table: str, file_months: list[str], columns: list[str],
               row_months: list[str] | None, out_dir: Path, reduce, schema: pa.Schema, what: str) -> list:
    """Group the rows of ``table``'s ``file_months`` (only those created in ``row_months`` when given)
    by id without a Spark SQL shuffle, and run ``reduce`` on each group: map tasks write ``columns``
    into id-hash bucket folders under ``out_dir`` (every copy of an id lands in one folder; each file
    is read by one map task), then one task per folder returns ``reduce``'s rows (``schema``)."""
    from zipp.etl.delta import count_rows, table_files

    files = table_files(lake, table, file_months)
    if not files:
        return []
    buckets = task_count(spark, count_rows(lake, table, file_months), _ID_BUCKET_ROWS)
    n_map = max(1, min(len(files), 2 * parallelism(spark)))
    groups = [files[i::n_map] for i in range(n_map)]
    run_indexed(spark, n_map, lambda i: _partition_by_id(groups[i], columns, row_months, buckets, out_dir, i),
                pa.schema([("rows", pa.int64())]), f"zipp silver: {what}, map ({n_map} tasks, {buckets} buckets)")
    return run_indexed(spark, buckets, lambda i: _reduce_bucket(out_dir, i, reduce, schema), schema,
                       f"zipp silver: {what}, reduce ({buckets} tasks)")


def losing_copies(rows: "pl.DataFrame") -> "pl.DataFrame":
    """(source_file, line_no) of every copy of a duplicated id but the one silver keeps: the latest
    retrieval wins, then the later file, then the later line."""
    import polars as pl

    dup = rows.filter(pl.col("id").is_duplicated()).with_columns(pl.max_horizontal("retrieved_on", "retrieved_2nd_on").alias("_r"))
    dup = dup.sort(["id", pl.col("_r").is_not_null(), "_r", "source_file", "line_no"],
                   descending=[False, True, True, True, True], nulls_last=True)
    return dup.filter(pl.int_range(pl.len()).over("id") > 0).select("source_file", "line_no")


def ids_per_month(rows: "pl.DataFrame") -> "pl.DataFrame":
    import polars as pl

    return rows.group_by("month").agg(pl.col("id").n_unique().cast(pl.Int64).alias("ids"))


def find_losers(spark: "SparkSession", lake: str | Path, kind: str, sources: list[str], months: list[str],
                stage_dir: Path) -> dict[str, set[int]]:
    """(source_file -> line numbers) of the copies that lose the dedup: ids seen more than once in the
    rows created in ``months``. An id shuffle of the id/retrieval/position columns only (see
    :func:`id_shuffle`); each bucket's task returns the losing copies of its ids (rare)."""
    cols = ["id", "retrieved_on", "retrieved_2nd_on", "source_file", "line_no", "created_utc"]
    out: dict[str, set[int]] = {}
    for r in id_shuffle(spark, lake, bronze_table(kind), sources, cols, months, stage_dir, losing_copies,
                        pa.schema([("source_file", pa.string()), ("line_no", pa.int64())]), f"duplicated {kind} ids"):
        out.setdefault(r["source_file"], set()).add(int(r["line_no"]))
    return out


def distinct_ids(spark: "SparkSession", lake: str | Path, kind: str, months: list[str], stage_dir: Path) -> dict[str, int]:
    """Distinct ids per month of the committed silver table: the independent check of the dedup
    (an id shuffle, so per-bucket counts add up)."""
    out: dict[str, int] = {}
    for r in id_shuffle(spark, lake, silver_table(kind), months, ["id", "month"], None, stage_dir, ids_per_month,
                        pa.schema([("month", pa.string()), ("ids", pa.int64())]), f"distinct {kind} ids"):
        out[r["month"]] = out.get(r["month"], 0) + int(r["ids"])
    return out


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
    """Rebuild silver/* for ``plan.months``. Returns ``kinds`` (per kind: totals and per-month facts),
    ``step_seconds`` and ``gold_partials`` (staged folders of the monthly gold rows, for build_gold)."""
    from zipp.etl.delta import table_files, write_table

    months = plan.months
    steps = Steps("silver")
    ids_dir = Path(stage_root) / f"silver-ids-{uuid.uuid4().hex[:6]}"
    losers = {kind: find_losers(spark, lake, kind, plan.sources[kind], months, ids_dir / f"losers-{kind}")
              if plan.sources[kind] else {} for kind in KINDS}
    steps("find_duplicates")
    tasks = [(kind, path) for kind in KINDS for path in table_files(lake, bronze_table(kind), plan.sources[kind])]
    out_dir = Path(stage_root) / f"silver-{uuid.uuid4().hex[:6]}"
    facts: dict[str, dict[str, dict]] = {kind: {} for kind in KINDS}
    if tasks:
        wanted = set(months)
        rows = run_indexed(spark, len(tasks), lambda i: silver_file(i, *tasks[i], wanted, losers[tasks[i][0]], etl, salt, out_dir),
                           pa.schema([("kind", pa.string()), ("facts", pa.string())]), f"zipp silver: {len(tasks)} bronze files")
        for r in rows:  # sum the per-file facts per (kind, month)
            for f in json.loads(r["facts"]):
                acc = facts[r["kind"]].setdefault(f["month"], {"month": f["month"]})
                for k, v in f.items():
                    if k != "month":
                        acc[k] = acc.get(k, 0) + int(v or 0)
    steps("transform")
    kinds: dict = {}
    for kind in KINDS:
        write_table(spark, lake, silver_table(kind), SILVER_SCHEMAS[kind], run_id=run_id, stage_root=stage_root,
                    staged_dir=out_dir / f"silver__{kind}", partition_by=["month"], months=months)
        # independent check of the dedup: distinct ids per month, on the committed table
        ids = distinct_ids(spark, lake, kind, months, ids_dir / f"distinct-{kind}")
        kf = sorted(facts[kind].values(), key=lambda r: r["month"])
        for r in kf:
            r["ids"] = ids.get(r["month"], 0)
            r["out_of_month"] = 0  # rows sit in the month of their created_utc by construction
        totals = {k: sum(r[k] for r in kf) for k in (kf[0] if kf else {}) if k != "month"}
        n_in = sum(r["rows"] for r in plan.month_map if r["kind"] == kind and r["created_month"] in months)
        kinds[kind] = {"rows": 0, "deleted_authors": 0, "bots": 0, **totals, "bronze_rows": n_in,
                       "duplicates": n_in - totals.get("rows", 0), "facts": kf}
        steps(f"{kind}_commit")
    save_month_map(lake, plan)
    shutil.rmtree(ids_dir, ignore_errors=True)
    return {"kinds": kinds, "step_seconds": steps.times,
            "gold_partials": {"pairs": str(out_dir / "gold_pairs"), "candidates": str(out_dir / "gold_candidates"),
                              "images": str(out_dir / "gold_images")}}
