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

How: indexed tasks (:func:`zipp.etl.tasks.run_indexed`), no Spark SQL shuffle. One task per bronze
file reads it, keeps the rows created in the run's months, drops the losing copies of ids it holds
twice, derives the columns with polars and writes the silver Parquet (and gold's monthly rows); it
also reports where its ids lie (:func:`id_span`). Copies of one id in two files can only be ids whose
spans overlap (:func:`shared_ids`): Reddit ids are base-36 numbers and the dumps come in id order,
so usually there are none and nothing more runs. Otherwise an id shuffle of those ids alone, through
staged files (map: id/retrieval/position columns into id-hash bucket folders; reduce: one task per
bucket), finds the losing copies, and the tasks of the files that hold one run again. One commit per
table; then distinct ids per month: per file in its task, and across files by the same shuffle over
the committed rows of the shared ids.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from dataclasses import dataclass, field
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

    MAX_CACHED = 2_000_000  # authors; past this the cache starts over (bounds a long-lived worker's memory)

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
            if len(self.cache) >= self.MAX_CACHED:
                self.cache.clear()
            self.cache[author] = hit
        return hit


_AUTHOR_INFO: dict[tuple, AuthorInfo] = {}


def author_info(etl: EtlConfig, salt: str) -> AuthorInfo:
    """The worker process's AuthorInfo for this salt and bot rules: Spark reuses its Python workers,
    so an author seen by an earlier task of the run is not hashed again (most of a month's
    authors recur in every file of it)."""
    key = (salt, tuple(etl.bot_authors), tuple(etl.not_bots), etl.bot_regex)
    if key not in _AUTHOR_INFO:
        _AUTHOR_INFO.clear()
        _AUTHOR_INFO[key] = AuthorInfo(etl, salt)
    return _AUTHOR_INFO[key]


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
    aggs = [pl.len().alias("rows"), pl.col("id").n_unique().alias("ids"), eligible.sum().alias("eligible"),
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
    """One bronze file -> its silver rows and gold's monthly rows, staged under ``out`` (files named by
    ``task``: a rerun replaces them); returns one row: the task, its facts, the span of its ids and
    the line ranges it holds (JSON)."""
    import polars as pl

    from zipp.etl.schemas import GOLD_IMAGE_CANDIDATES_SCHEMA, GOLD_PAIR_MONTHS_SCHEMA, GOLD_SNIPPET_CANDIDATES_SCHEMA

    part, comp = f"part-{task:06d}.parquet", etl.parquet_compression
    for old in out.glob(f"*/month=*/*{part}"):  # an earlier run of this task (a rerun drops rows, maybe whole months)
        old.unlink()
    # polars reads the file on the task's one core in about half of pyarrow's single-threaded time
    df = transform(pl.read_parquet(path, hive_partitioning=False), kind, months, losers, author_info(etl, salt))
    span = id_span(df["id"])
    local = losing_copies(df)  # copies of an id within this file
    if local.height:
        df = df.join(local, on=["source_file", "line_no"], how="anti")
    write_by_month(df, out / f"silver__{kind}", SILVER_SCHEMAS[kind], part, comp, key_sorted=False)
    # gold's monthly rows, sorted by user_key so a gold task reads only its key range's row groups;
    # staged only (the gold tasks write the tables' files per key range), so not compressed
    pairs, cands, images = gold_partials(df, kind, etl.snippets_k, etl.snippet_max_chars)
    write_by_month(pairs, out / "gold_pairs", GOLD_PAIR_MONTHS_SCHEMA, f"{kind}-{part}", "none")
    write_by_month(cands, out / "gold_candidates", GOLD_SNIPPET_CANDIDATES_SCHEMA, f"{kind}-{part}", "none")
    if images is not None:
        write_by_month(images, out / "gold_images", GOLD_IMAGE_CANDIDATES_SCHEMA, part, "none")
    lines = df.group_by("source_file").agg(pl.col("line_no").min().alias("lo"), pl.col("line_no").max().alias("hi"))
    return pa.table({"task": [task], "kind": [kind], "facts": [json.dumps(_facts(df, kind))], "span": [json.dumps(span)],
                     "lines": [json.dumps(lines.rows())]})


_SILVER_FILE_SCHEMA = pa.schema([("task", pa.int64()), ("kind", pa.string()), ("facts", pa.string()), ("span", pa.string()),
                                 ("lines", pa.string())])


# ----------------------------------------------------------------------------- ids in more than one file

_TRIM = 16  # ids at each end of a file's sorted ids left out of its trimmed span: strays (late lines, old ids)


def numeric_ids(ids: "pl.Series") -> "pl.Series":
    """Reddit ids are base-36 numbers: as Int64, null where an id is not one (or too long). Any
    deterministic function of the id would be correct here: copies of one id must land together."""
    return ids.str.to_integer(base=36, strict=False)


def id_span(ids: "pl.Series") -> dict | None:
    """Where a file's ids lie: ``min``/``max`` of the numeric ids; ``lo``/``hi`` the same without the
    lowest and highest (1 per 1,000, at least 1, at most ``_TRIM``: one stray old id would otherwise
    stretch the span over other files); ``out`` the ids outside [lo, hi]; ``odd`` the ids that are
    not numbers."""
    if ids.len() == 0:
        return None
    num = numeric_ids(ids)
    odd = ids.filter(num.is_null()).unique().sort().to_list()
    parsed = num.drop_nulls().sort()
    if parsed.len() == 0:
        return {"min": None, "max": None, "lo": None, "hi": None, "out": odd, "odd": odd}
    q = min(max(1, parsed.len() // 1000), _TRIM) if parsed.len() > 2 else 0  # one stray per file is common
    lo, hi = parsed[q], parsed[parsed.len() - 1 - q]
    out = ids.filter(((num < lo) | (num > hi)).fill_null(True)).unique().sort().to_list()
    return {"min": parsed[0], "max": parsed[-1], "lo": lo, "hi": hi, "out": out, "odd": odd}


def overlaps(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of the number line covered by two or more of the closed ``spans``, merged, in order."""
    out: list[tuple[int, int]] = []
    reach = None
    for lo, hi in sorted(spans):
        if reach is not None and lo <= reach:
            a, b = lo, min(hi, reach)
            if out and a <= out[-1][1] + 1:
                out[-1] = (out[-1][0], max(out[-1][1], b))
            else:
                out.append((a, b))
        reach = hi if reach is None else max(reach, hi)
    return out


@dataclass
class SharedIds:
    """The ids that may have copies in more than one file: numeric ``regions`` (closed) and single ``ids``."""

    regions: list[tuple[int, int]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)

    def mask(self, ids: "pl.Series") -> "pl.Series":
        import numpy as np
        import polars as pl

        hit = ids.is_in(self.ids).fill_null(False) if self.ids else pl.Series(np.zeros(ids.len(), dtype=bool))
        if self.regions:
            num = numeric_ids(ids)
            v = num.fill_null(0).to_numpy()
            starts = np.array([r[0] for r in self.regions], dtype=np.int64)
            ends = np.array([r[1] for r in self.regions], dtype=np.int64)
            i = np.searchsorted(starts, v, side="right") - 1
            inside = (i >= 0) & (v <= ends[np.maximum(i, 0)]) & num.is_not_null().to_numpy()
            hit = hit | pl.Series(inside)
        return hit


def shared_ids(spans: list[dict | None]) -> SharedIds | None:
    """What of the files' ids (:func:`id_span` each) may sit in more than one of them; None: nothing.
    Copies of an id in two files lie in both files' spans, so where no two spans meet every id is
    in one file only. Where they meet, the trimmed spans' overlaps and every file's stray ids."""
    spans = [s for s in spans if s]
    odd = sorted({i for s in spans for i in s["odd"]})
    if not overlaps([(s["min"], s["max"]) for s in spans if s["min"] is not None]):
        return SharedIds(ids=odd) if odd else None
    return SharedIds(regions=overlaps([(s["lo"], s["hi"]) for s in spans if s["lo"] is not None]),
                     ids=sorted({i for s in spans for i in s["out"]}))


_ID_BUCKET_ROWS = 5_000_000  # rows (narrow id columns, ~60 bytes each) per reduce task of an id shuffle


def _partition_by_id(files: list[str], columns: list[str], months: list[str] | None, shared: SharedIds, buckets: int,
                     out: Path, task: int) -> pa.Table:
    """Map side of an id shuffle: ``columns`` of the rows of ``files`` with a ``shared`` id (created in
    ``months`` when given) into one file per id-hash bucket under ``out``; returns the row count."""
    import polars as pl

    from zipp.etl.parse import month_bounds

    lf = scan_files(files).select(columns)
    if months is not None:
        created = pl.col("created_utc")
        lf = lf.filter(pl.any_horizontal([(created >= lo) & (created < hi) for lo, hi in (month_bounds(m, 0) for m in months)]))
    df = lf.collect()
    df = df.filter(shared.mask(df["id"])).with_columns((pl.col("id").hash(seed=0) % buckets).alias("_bucket"))
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
               row_months: list[str] | None, shared: SharedIds, out_dir: Path, reduce, schema: pa.Schema, what: str) -> list:
    """Group the rows of ``table``'s ``file_months`` whose id is ``shared`` (only those created in
    ``row_months`` when given) by id without a Spark SQL shuffle, and run ``reduce`` on each group:
    map tasks write ``columns`` into id-hash bucket folders under ``out_dir`` (every copy of an id
    lands in one folder; each file is read by one map task), then one task per folder returns
    ``reduce``'s rows (``schema``)."""
    from zipp.etl.delta import count_rows, table_files

    files = table_files(lake, table, file_months)
    if not files:
        return []
    buckets = task_count(spark, count_rows(lake, table, file_months), _ID_BUCKET_ROWS)
    n_map = max(1, min(len(files), 2 * parallelism(spark)))
    groups = [files[i::n_map] for i in range(n_map)]
    mapped = run_indexed(spark, n_map, lambda i: _partition_by_id(groups[i], columns, row_months, shared, buckets, out_dir, i),
                         pa.schema([("rows", pa.int64())]), f"zipp silver: {what}, map ({n_map} tasks, {buckets} buckets)")
    if not sum(r["rows"] for r in mapped):
        return []
    return run_indexed(spark, buckets, lambda i: _reduce_bucket(out_dir, i, reduce, schema), schema,
                       f"zipp silver: {what}, reduce ({buckets} tasks)")


def losing_copies(rows: "pl.DataFrame") -> "pl.DataFrame":
    """(source_file, line_no) of every copy of a duplicated id but the one silver keeps: the latest
    retrieval wins, then the later file, then the later line."""
    import polars as pl

    if rows["id"].n_unique() == rows.height:  # the usual case, at a quarter of is_duplicated's cost
        return pl.DataFrame(schema={"source_file": rows.schema["source_file"], "line_no": rows.schema["line_no"]})
    dup = rows.filter(pl.col("id").is_duplicated()).with_columns(pl.max_horizontal("retrieved_on", "retrieved_2nd_on").alias("_r"))
    dup = dup.sort(["id", pl.col("_r").is_not_null(), "_r", "source_file", "line_no"],
                   descending=[False, True, True, True, True], nulls_last=True)
    return dup.filter(pl.int_range(pl.len()).over("id") > 0).select("source_file", "line_no")


def extra_copies(rows: "pl.DataFrame") -> "pl.DataFrame":
    """Per month, the rows beyond one per id."""
    import polars as pl

    return rows.group_by("month").agg((pl.len() - pl.col("id").n_unique()).cast(pl.Int64).alias("extra"))


def find_losers(spark: "SparkSession", lake: str | Path, kind: str, sources: list[str], months: list[str],
                shared: SharedIds, stage_dir: Path) -> dict[str, set[int]]:
    """(source_file -> line numbers) of the copies that lose the dedup among the rows created in
    ``months`` whose id is ``shared``: an id shuffle of the id/retrieval/position columns only (see
    :func:`id_shuffle`); each bucket's task returns the losing copies of its ids."""
    cols = ["id", "retrieved_on", "retrieved_2nd_on", "source_file", "line_no", "created_utc"]
    out: dict[str, set[int]] = {}
    for r in id_shuffle(spark, lake, bronze_table(kind), sources, cols, months, shared, stage_dir, losing_copies,
                        pa.schema([("source_file", pa.string()), ("line_no", pa.int64())]), f"duplicated {kind} ids"):
        out.setdefault(r["source_file"], set()).add(int(r["line_no"]))
    return out


def copies_across_files(spark: "SparkSession", lake: str | Path, kind: str, months: list[str], shared: SharedIds,
                        stage_dir: Path) -> dict[str, int]:
    """Per month, the committed silver rows beyond one per ``shared`` id: the check of the dedup across
    files (each task counted its own distinct ids)."""
    out: dict[str, int] = {}
    for r in id_shuffle(spark, lake, silver_table(kind), months, ["id", "month"], None, shared, stage_dir, extra_copies,
                        pa.schema([("month", pa.string()), ("extra", pa.int64())]), f"{kind} ids in several files"):
        out[r["month"]] = out.get(r["month"], 0) + int(r["extra"])
    return out


def tasks_holding(task_lines: dict[int, list], losers: dict[str, set[int]]) -> list[int]:
    """The tasks whose line ranges ([source_file, first, last] each) hold one of ``losers``
    (binary search: a re-crawled month can have millions of losers over thousands of tasks)."""
    import numpy as np

    sorted_lines = {f: np.sort(np.fromiter(lines, dtype=np.int64, count=len(lines))) for f, lines in losers.items()}
    out = []
    for task, lines in sorted(task_lines.items()):
        for f, lo, hi in lines:
            arr = sorted_lines.get(f)
            if arr is not None and np.searchsorted(arr, lo) < np.searchsorted(arr, hi, side="right"):
                out.append(task)
                break
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
    tasks = [(kind, path) for kind in KINDS for path in table_files(lake, bronze_table(kind), plan.sources[kind])]
    out_dir = Path(stage_root) / f"silver-{uuid.uuid4().hex[:6]}"
    wanted = set(months)

    def run(indices: list[int], losers: dict[str, dict[str, set[int]]]) -> dict[int, dict]:
        rows = run_indexed(spark, len(indices), lambda j: silver_file(indices[j], *tasks[indices[j]], wanted,
                                                                      losers.get(tasks[indices[j]][0], {}), etl, salt, out_dir),
                           _SILVER_FILE_SCHEMA, f"zipp silver: {len(indices)} bronze files")
        return {r["task"]: r for r in rows}

    done = run(list(range(len(tasks))), {})
    steps("transform")
    # copies of one id in two files: only where the files' id spans meet (usually nowhere)
    shared = {kind: shared_ids([json.loads(r["span"]) for r in done.values() if r["kind"] == kind]) for kind in KINDS}
    losers = {kind: find_losers(spark, lake, kind, plan.sources[kind], months, shared[kind], ids_dir / f"losers-{kind}")
              if shared[kind] else {} for kind in KINDS}
    redo = [i for kind in KINDS for i in tasks_holding(
        {i: json.loads(r["lines"]) for i, r in done.items() if r["kind"] == kind}, losers[kind])]
    if redo:
        done.update(run(redo, losers))
    steps("duplicates")
    facts: dict[str, dict[str, dict]] = {kind: {} for kind in KINDS}
    for r in done.values():  # sum the per-file facts per (kind, month)
        for f in json.loads(r["facts"]):
            acc = facts[r["kind"]].setdefault(f["month"], {"month": f["month"]})
            for k, v in f.items():
                if k != "month":
                    acc[k] = acc.get(k, 0) + int(v or 0)
    kinds: dict = {}
    for kind in KINDS:
        write_table(spark, lake, silver_table(kind), SILVER_SCHEMAS[kind], run_id=run_id, stage_root=stage_root,
                    staged_dir=out_dir / f"silver__{kind}", partition_by=["month"], months=months)
        # the check of the dedup: distinct ids per month = each file's own, less copies across files
        extra = copies_across_files(spark, lake, kind, months, shared[kind], ids_dir / f"check-{kind}") if shared[kind] else {}
        kf = sorted(facts[kind].values(), key=lambda r: r["month"])
        for r in kf:
            r["ids"] -= extra.get(r["month"], 0)
            r["out_of_month"] = 0  # rows sit in the month of their created_utc by construction
        totals = {k: sum(r[k] for r in kf) for k in (kf[0] if kf else {}) if k != "month"}
        n_in = sum(r["rows"] for r in plan.month_map if r["kind"] == kind and r["created_month"] in months)
        kinds[kind] = {"rows": 0, "deleted_authors": 0, "bots": 0, **totals, "bronze_rows": n_in,
                       "duplicates": n_in - totals.get("rows", 0), "facts": kf,
                       # copies of an id in two files: the losers, and the per-file tasks that ran again to drop them
                       "cross_file_losers": sum(len(v) for v in losers[kind].values()),
                       "files_rerun": sum(tasks[i][0] == kind for i in redo)}
        steps(f"{kind}_commit")
    save_month_map(lake, plan)
    shutil.rmtree(ids_dir, ignore_errors=True)
    return {"kinds": kinds, "step_seconds": steps.times,
            "gold_partials": {"pairs": str(out_dir / "gold_pairs"), "candidates": str(out_dir / "gold_candidates"),
                              "images": str(out_dir / "gold_images")}}
