"""Explicit schemas: what each era's JSON looks like, and the Arrow schemas of the ETL's tables.

Nothing is ever inferred. A file's era (from the month in its name) decides which JSON types
``created_utc`` may have; every other field has one reading rule for all eras:

- ``score`` must be a JSON integer (a string or float is quarantined as ``bad_type:score``);
- text fields keep JSON strings; a number is kept as its text (``"id": 5`` -> ``"5"``);
- other numbers/booleans are read leniently (a value of another type becomes null).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from zipp.tables import GOLD_EDGES, GOLD_SNIPPETS, TS  # noqa: F401  (re-exported for callers)

KINDS = ("comments", "submissions")
KIND_PREFIX = {"comments": "t1_", "submissions": "t3_"}

# ----------------------------------------------------------------------------- eras

CreatedRule = Literal["int", "int_or_string", "number"]


@dataclass(frozen=True)
class Era:
    name: str
    first: str  # first month, inclusive
    last: str  # last month, inclusive
    created: CreatedRule  # accepted JSON types of created_utc


ERAS: tuple[Era, ...] = (
    # up to 2015-11 created_utc is a JSON string in many files (2015-02 mixes both; RC_2005-12 has ints)
    Era("pushshift-strings", "0000-01", "2015-11", "int_or_string"),
    Era("pushshift", "2015-12", "2023-10", "int"),
    # Arctic-Shift: floats (1706745600.0), ints and numeric strings all occur; `_meta` appears
    Era("arctic-shift", "2023-11", "9999-12", "number"),
)


def era_for(month: str) -> Era:
    for era in ERAS:
        if era.first <= month <= era.last:
            return era
    raise ValueError(f"no era for month {month!r}")


# ----------------------------------------------------------------------------- JSON fields read per kind

# JSON field -> how it is read: "text" (lenient string), "int!" (strict integer), "int" (lenient),
# "bool" (lenient), "json" (nested value kept as JSON text for Python extraction), "created" (era rule)
INPUT_FIELDS: dict[str, dict[str, str]] = {
    "comments": {
        "id": "text", "author": "text", "author_fullname": "text", "subreddit": "text", "subreddit_id": "text",
        "link_id": "text", "parent_id": "text", "body": "text", "distinguished": "text",
        "score": "int!", "controversiality": "int", "gilded": "int", "stickied": "bool",
        "created_utc": "created", "retrieved_on": "int", "retrieved_utc": "int", "_meta": "json",
    },
    "submissions": {
        "id": "text", "author": "text", "author_fullname": "text", "subreddit": "text", "subreddit_id": "text",
        "title": "text", "selftext": "text", "url": "text", "domain": "text", "permalink": "text",
        "post_hint": "text", "distinguished": "text", "crosspost_parent": "text",
        "score": "int!", "num_comments": "int", "is_self": "bool", "is_video": "bool", "is_gallery": "bool",
        "over_18": "bool", "stickied": "bool", "promoted": "bool", "created_utc": "created", "retrieved_on": "int", "retrieved_utc": "int",
        "_meta": "json", "preview": "json", "media_metadata": "json", "gallery_data": "json",
    },
}
REQUIRED = ("id", "author", "subreddit", "created_utc")

# ----------------------------------------------------------------------------- table schemas

_META = [("source_file", pa.string()), ("line_no", pa.int64()), ("ingested_at", TS), ("month", pa.string())]

BRONZE_SCHEMAS: dict[str, pa.Schema] = {
    "comments": pa.schema([
        ("id", pa.string()), ("author", pa.string()), ("author_fullname", pa.string()),
        ("subreddit", pa.string()), ("subreddit_id", pa.string()), ("link_id", pa.string()), ("parent_id", pa.string()),
        ("body", pa.string()), ("score", pa.int64()), ("controversiality", pa.int64()), ("gilded", pa.int64()),
        ("distinguished", pa.string()), ("stickied", pa.bool_()),
        ("created_utc", pa.int64()),  # epoch seconds, whatever the JSON type was
        ("retrieved_on", pa.int64()),  # retrieved_on, else retrieved_utc
        ("retrieved_2nd_on", pa.int64()),  # Arctic-Shift _meta.retrieved_2nd_on
        *_META,
    ]),
    "submissions": pa.schema([
        ("id", pa.string()), ("author", pa.string()), ("author_fullname", pa.string()),
        ("subreddit", pa.string()), ("subreddit_id", pa.string()),
        ("title", pa.string()), ("selftext", pa.string()), ("url", pa.string()), ("domain", pa.string()),
        ("permalink", pa.string()), ("post_hint", pa.string()), ("distinguished", pa.string()),
        ("crosspost_parent", pa.string()),
        ("score", pa.int64()), ("num_comments", pa.int64()),
        ("is_self", pa.bool_()), ("is_video", pa.bool_()), ("is_gallery", pa.bool_()), ("over_18", pa.bool_()),
        ("stickied", pa.bool_()),
        ("created_utc", pa.int64()), ("retrieved_on", pa.int64()), ("retrieved_2nd_on", pa.int64()),
        ("preview_urls", pa.list_(pa.string())),  # preview.images[*].source.url, as in the dump (&amp;)
        ("gallery_urls", pa.list_(pa.string())),  # media_metadata[*].s.u in gallery order, as in the dump
        *_META,
    ]),
}

QUARANTINE_SCHEMA = pa.schema([
    ("source_file", pa.string()), ("kind", pa.string()), ("line_no", pa.int64()),
    ("reason", pa.string()),  # invalid_json, not_an_object, bad_type:<f>, missing:<f>, invalid_utf8, oversize, ...
    ("detail", pa.string()),  # the parser's message, short
    ("author", pa.string()),  # when the line still names one (lets `zipp forget` reach quarantine)
    ("raw", pa.binary()),  # the line's bytes, cut to etl.raw_cap_bytes
    ("raw_len", pa.int64()),  # the line's full length in bytes
    ("ingested_at", TS), ("month", pa.string()),
])

_SILVER_COMMON = [
    ("id", pa.string()), ("author", pa.string()), ("user_key", pa.string()),
    ("subreddit", pa.string()), ("subreddit_lc", pa.string()),
]
_SILVER_FLAGS = [
    ("is_deleted_author", pa.bool_()),  # author is [deleted] / [removed]
    ("is_removed_text", pa.bool_()),  # body/selftext is [deleted] / [removed]
    ("is_bot", pa.bool_()),
]
# silver `month` is the month of created_utc (not of the file): a re-crawled copy in the next month's
# file lands beside the original and the latest retrieval wins
_SILVER_META = [("source_file", pa.string()), ("line_no", pa.int64()), ("month", pa.string())]

SILVER_SCHEMAS: dict[str, pa.Schema] = {
    "comments": pa.schema([
        *_SILVER_COMMON, ("link_id", pa.string()), ("parent_id", pa.string()), ("body", pa.string()),
        ("score", pa.int64()), ("distinguished", pa.string()), ("stickied", pa.bool_()),
        ("created_utc", TS), ("retrieved_on", pa.int64()),
        *_SILVER_FLAGS, *_SILVER_META,
    ]),
    "submissions": pa.schema([
        *_SILVER_COMMON, ("title", pa.string()), ("selftext", pa.string()), ("url", pa.string()),
        ("domain", pa.string()), ("post_hint", pa.string()), ("score", pa.int64()), ("num_comments", pa.int64()),
        ("distinguished", pa.string()), ("stickied", pa.bool_()),
        ("created_utc", TS), ("retrieved_on", pa.int64()),
        *_SILVER_FLAGS,
        ("nsfw", pa.bool_()), ("is_gallery", pa.bool_()),
        ("is_image", pa.bool_()), ("image_urls", pa.list_(pa.string())),  # &amp; unescaped
        *_SILVER_META,
    ]),
}

# Incremental gold: per (silver) month, what each (user, subreddit) pair did -- possibly in several rows
# (one per bronze file), readers sum them. The final gold tables are recomputed from these only for
# the pairs a run touches.
GOLD_PAIR_MONTHS = "gold/user_subreddit_months"
GOLD_PAIR_MONTHS_SCHEMA = pa.schema([
    ("user_key", pa.string()), ("subreddit", pa.string()),
    ("n_submissions", pa.int64()), ("n_comments", pa.int64()), ("n_image_posts", pa.int64()),
    ("n_nsfw_submissions", pa.int64()), ("score_sum", pa.int64()),
    ("first_ts", TS), ("last_ts", TS), ("activity_months", pa.list_(pa.string())),
    ("month", pa.string()),
])
GOLD_SNIPPET_CANDIDATES = "gold/snippet_candidates"
GOLD_SNIPPET_CANDIDATES_SCHEMA = pa.schema([
    ("user_key", pa.string()), ("subreddit", pa.string()), ("snippet_id", pa.string()), ("kind", pa.string()),
    ("text", pa.string()), ("score", pa.int64()), ("created", TS), ("month", pa.string()),
])
# gold/user_images rows of a silver task, before ids are attached (staged only, never a table)
GOLD_IMAGE_CANDIDATES_SCHEMA = pa.schema([
    ("user_key", pa.string()), ("subreddit", pa.string()), ("post_id", pa.string()), ("image_index", pa.int32()),
    ("url", pa.string()), ("created", TS), ("nsfw", pa.bool_()), ("month", pa.string()),
])

# Bookkeeping of the ETL itself (not data): under <lake>/_etl/
ETL_FILES = "_etl/files"
ETL_FILES_SCHEMA = pa.schema([
    ("source_file", pa.string()),  # path relative to the input folder
    ("kind", pa.string()), ("month", pa.string()),
    ("size", pa.int64()), ("mtime_ns", pa.int64()), ("sha256", pa.string()),
    ("lines", pa.int64()), ("bronze_rows", pa.int64()), ("quarantine_rows", pa.int64()),
    ("truncated", pa.bool_()), ("status", pa.string()),  # ok | failed_gate
    ("first_ingested_at", TS), ("ingested_at", TS), ("run_id", pa.string()),
])
ETL_RUNS = "_etl/runs"
ETL_RUNS_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("command", pa.string()), ("started_at", TS), ("finished_at", TS),
    ("status", pa.string()), ("months", pa.list_(pa.string())), ("summary_json", pa.string()),
])
ETL_FORGOTTEN = "_etl/forgotten"
ETL_FORGOTTEN_SCHEMA = pa.schema([
    ("user_key", pa.string()),  # salted hash only: the names themselves are never stored
    ("requested_at", TS), ("run_id", pa.string()),
])
ETL_FORGET_LOG = "_etl/forget_log"
ETL_FORGET_LOG_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("requested_at", TS), ("n_authors", pa.int64()),
    ("table_name", pa.string()), ("rows_deleted", pa.int64()), ("files_vacuumed", pa.int64()),
])
# Which source (file) months hold rows created in which month: silver month M is rebuilt from the
# bronze partitions listed for M (a re-crawl in next month's file, an Arctic-Shift file of old rows).
ETL_MONTH_MAP = "_etl/month_map"
ETL_MONTH_MAP_SCHEMA = pa.schema([
    ("kind", pa.string()), ("file_month", pa.string()), ("created_month", pa.string()), ("rows", pa.int64()),
])
ETL_ID_SEQ = "_etl/id_watermarks"
ETL_ID_SEQ_SCHEMA = pa.schema([("id_map", pa.string()), ("next_id", pa.int64())])


def bronze_table(kind: str) -> str:
    return f"bronze/{kind}"


def silver_table(kind: str) -> str:
    return f"silver/{kind}"


# Columns with few distinct values per file: only these get Parquet dictionary encoding. Trying a
# dictionary on ids and texts first and falling back costs ~25% of the write time.
DICTIONARY_COLUMNS = frozenset({"subreddit", "subreddit_id", "subreddit_lc", "distinguished", "source_file", "kind",
                                "reason", "post_hint", "domain", "month", "user_key", "author"})


# Free text: no Parquet min/max statistics. Nobody filters on them, and computing them over long
# strings is ~30% of a bronze chunk's write time.
NO_STATISTICS_COLUMNS = frozenset({"body", "selftext", "title", "text", "raw", "detail", "url", "permalink", "image_urls",
                                   "preview_urls", "gallery_urls", "author_flair_text", "link_flair_text"})


def parquet_write_options(table: pa.Table | pa.Schema, compression: str) -> dict:
    """``pyarrow.parquet.write_table`` keyword arguments for an Arrow task's staged file."""
    names = table.names if isinstance(table, pa.Schema) else table.column_names
    return {"compression": None if compression == "none" else compression,
            "use_dictionary": [n for n in names if n in DICTIONARY_COLUMNS],
            "write_statistics": [n for n in names if n not in NO_STATISTICS_COLUMNS]}
