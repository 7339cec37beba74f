"""Bronze: Spark runs the split (one task per file) and the parse (one task per chunk) as indexed
tasks (:mod:`zipp.etl.tasks`); each parse task writes its bronze and quarantine Parquet files and returns
one row of counts. The driver checks ``lines == bronze + quarantine`` per file and commits every
month of the run atomically (:func:`zipp.etl.delta.write_table`)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from zipp.config import EtlConfig
from zipp.etl.schemas import BRONZE_SCHEMAS, KINDS, QUARANTINE_SCHEMA, bronze_table, parquet_write_options
from zipp.etl.sources import SourceFile
from zipp.etl.split import Chunk
from zipp.tables import QUARANTINE

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

_CHUNK_ARROW = pa.schema([
    ("file_idx", pa.int64()), ("seq", pa.int64()), ("first_line_no", pa.int64()), ("n_lines", pa.int64()),
    ("path", pa.string()), ("offset", pa.int64()), ("length", pa.int64()),
    ("tail_reason", pa.string()), ("tail_detail", pa.string()),
    ("split_wait_s", pa.float64()),  # the file's, on each of its rows: time its split waited for staging room
])
_STATS_ARROW = pa.schema([
    ("file_idx", pa.int64()), ("seq", pa.int64()), ("lines", pa.int64()), ("bronze_rows", pa.int64()),
    ("quarantine_rows", pa.int64()), ("reasons", pa.string()), ("out_of_month", pa.int64()),
    ("min_created", pa.int64()), ("max_created", pa.int64()), ("bytes", pa.int64()), ("null_keys", pa.int64()),
    ("created_months", pa.string()),
])


@dataclass
class FileStats:
    source_file: str
    kind: str
    month: str
    bytes: int = 0  # decompressed
    lines: int = 0
    bronze_rows: int = 0
    quarantine_rows: int = 0
    out_of_month: int = 0
    null_keys: int = 0  # bronze rows lacking id/author/subreddit/created_utc, counted on the written table
    truncated: bool = False
    split_wait_s: float = 0.0  # the split waited this long for staging room (etl.max_staged_bytes)
    reasons: dict[str, int] = field(default_factory=dict)
    created_months: dict[str, int] = field(default_factory=dict)  # bronze rows per month of created_utc
    min_created: int | None = None
    max_created: int | None = None

    @property
    def quarantine_rate(self) -> float:
        return self.quarantine_rows / self.lines if self.lines else 0.0


@dataclass
class BronzeResult:
    files: list[FileStats]
    months: list[str]
    versions: dict[str, int]

    @property
    def lines(self) -> int:
        return sum(f.lines for f in self.files)

    @property
    def bronze_rows(self) -> int:
        return sum(f.bronze_rows for f in self.files)

    @property
    def quarantine_rows(self) -> int:
        return sum(f.quarantine_rows for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def reasons(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.files:
            for k, v in f.reasons.items():
                out[k] = out.get(k, 0) + v
        return out


def split_one(f: SourceFile, i: int, chunk_bytes: int, chunk_dir: str, max_staged_bytes: int, slots: int) -> pa.Table:
    """Task of the split job: file ``i`` cut into chunks (staged under ``chunk_dir`` for .zst, while
    the run's staged chunks stay under ``max_staged_bytes``: :class:`zipp.etl.split.StagingRoom`)."""
    from zipp.etl.split import StagingRoom, split_file

    room = StagingRoom(chunk_dir, max_staged_bytes, slots)
    mark = room.enter(i)
    try:
        chunks = split_file(f.path, i, chunk_bytes, Path(chunk_dir) / f"f{i:05d}", room)
    finally:
        mark.unlink(missing_ok=True)
    return pa.Table.from_pylist([{**c.to_dict(), "split_wait_s": room.waited_s} for c in chunks], schema=_CHUNK_ARROW)


def parse_one(c: Chunk, f: SourceFile, ingested_at_us: int, etl: EtlConfig, out_dir: str, forgotten: frozenset[str],
              salt: str) -> pa.Table:
    """Task of a parse job: one chunk -> its bronze and quarantine Parquet files; returns its counts.

    A chunk the split staged (a .zst's) is deleted once its files and counts are written: the staging
    folder then holds only the chunks in flight, not the whole decompressed month (100+ GB for a
    recent one). The counts stay beside it (``<chunk>.done``), so a retried or speculative attempt of
    the task returns them instead of failing on the missing chunk."""
    import pyarrow.parquet as pq

    from zipp.etl.parse import ParseOptions, drop_forgotten, parse_chunk, truncated_result
    from zipp.etl.split import read_chunk

    staged = c.path != f.path
    done = Path(c.path + ".done")

    def finished() -> pa.Table | None:
        return pa.Table.from_pylist([json.loads(done.read_text())], schema=_STATS_ARROW) if staged and done.exists() else None

    if (counts := finished()) is not None:
        return counts
    opts = ParseOptions(kind=f.kind, month=f.month, source_file=f.rel, ingested_at_us=ingested_at_us,
                        max_line_bytes=etl.max_line_bytes, raw_cap_bytes=etl.raw_cap_bytes,
                        month_slack_days=etl.month_slack_days)
    try:
        data = read_chunk(c)
    except FileNotFoundError:
        if (counts := finished()) is not None:  # another attempt finished it meanwhile
            return counts
        raise
    if c.tail_reason:
        res = truncated_result(data, c.first_line_no, c.tail_reason, c.tail_detail, opts)
    else:
        res = drop_forgotten(parse_chunk(data, c.first_line_no, opts), forgotten, salt, opts)
    name = f"f{c.file_idx:05d}-{c.seq:06d}.parquet"
    for table, tname in ((res.bronze, f"bronze__{f.kind}"), (res.quarantine, "quarantine")):
        if table.num_rows:
            d = Path(out_dir) / tname / f"month={f.month}"
            d.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, d / name, **parquet_write_options(table, etl.parquet_compression))
    stats = {
        "file_idx": c.file_idx, "seq": c.seq, "lines": res.lines, "bronze_rows": res.bronze.num_rows,
        "quarantine_rows": res.quarantine.num_rows, "reasons": json.dumps(res.reasons),
        "out_of_month": res.out_of_month, "min_created": res.min_created, "max_created": res.max_created,
        "bytes": len(data),
        "null_keys": sum(res.bronze.column(k).null_count for k in ("id", "author", "subreddit", "created_utc")),
        "created_months": json.dumps(res.created_months),
    }
    if staged:
        tmp = done.with_suffix(".done-tmp")
        tmp.write_text(json.dumps(stats))
        tmp.replace(done)
        Path(c.path).unlink(missing_ok=True)
    return pa.Table.from_pylist([stats], schema=_STATS_ARROW)


def _split_and_parse(spark: "SparkSession", files: list[SourceFile], etl: EtlConfig, chunk_dir: Path, parse):
    """Split (one task per file) and parse (one task per chunk) as Spark jobs that overlap: while the
    split job decompresses, parse jobs start on the chunks it has already published, on the free cores.
    ``parse(chunk)`` is the work of one parse task."""
    import threading

    from zipp.etl.split import published_chunks
    from zipp.etl.tasks import run_indexed

    split_rows: list = []
    failure: list[BaseException] = []
    # at least 4 chunks: parse jobs start on 2 published chunks, and the split must get to publish them
    max_staged = max(etl.max_staged_bytes, 4 * etl.chunk_bytes) if etl.max_staged_bytes else 0
    slots = spark.sparkContext.defaultParallelism
    for mark in (chunk_dir / "_abort", *(chunk_dir / "_splitting").glob("*")):  # an earlier attempt's
        mark.unlink(missing_ok=True)

    def split() -> None:
        try:
            split_rows.extend(run_indexed(
                spark, len(files), lambda i: split_one(files[i], i, etl.chunk_bytes, str(chunk_dir), max_staged, slots),
                _CHUNK_ARROW, f"zipp bronze: split {len(files)} files"))
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(e)

    def parse_batch(batch: list[Chunk]) -> list:
        return run_indexed(spark, len(batch), lambda j: parse(batch[j]), _STATS_ARROW, f"zipp bronze: parse {len(batch)} chunks")

    started: set[tuple[int, int]] = set()
    results: list = []
    jobs: list[threading.Thread] = []

    def launch(batch: list[Chunk]) -> None:
        started.update((c.file_idx, c.seq) for c in batch)

        def run() -> None:
            try:
                results.extend(parse_batch(batch))
            except BaseException as e:  # noqa: BLE001
                failure.append(e)
                chunk_dir.mkdir(parents=True, exist_ok=True)
                (chunk_dir / "_abort").touch()  # a split waiting for staging room stops: nothing will drain it

        t = threading.Thread(target=run, daemon=True)
        t.start()
        jobs.append(t)

    splitter = threading.Thread(target=split, daemon=True)
    splitter.start()
    while splitter.is_alive():
        splitter.join(0.2)
        ready = [c for c in published_chunks(chunk_dir) if (c.file_idx, c.seq) not in started]
        if len(ready) >= 2 and not failure:
            launch(sorted(ready, key=lambda c: (c.file_idx, c.seq)))
    if not failure:
        waited = {r["file_idx"]: r.pop("split_wait_s") for r in split_rows}
        if any(waited.values()):
            log.info("splits waited for staging room (etl.max_staged_bytes=%d): %s", max_staged,
                     ", ".join(f"{files[i].rel} {w:.1f} s" for i, w in sorted(waited.items()) if w))
        chunks = sorted((Chunk(**r) for r in split_rows), key=lambda c: (c.file_idx, c.seq))
        rest = [c for c in chunks if (c.file_idx, c.seq) not in started]
        if rest:
            launch(rest)
    for t in jobs:
        t.join()
    if failure:
        raise failure[0]
    return chunks, results, waited


def run_bronze(spark: "SparkSession", lake: str | Path, etl: EtlConfig, files: list[SourceFile], months: list[str],
               *, run_id: str, stage_root: str | Path, ingested_at: dict[str, int]) -> BronzeResult:
    """Ingest ``files`` (all of ``months``' files) into bronze/* and quarantine, replacing those months."""
    from zipp import lake as lakeio
    from zipp.etl.delta import write_table
    from zipp.etl.schemas import ETL_FORGOTTEN
    from zipp.identity import resolve_salt

    forgotten = frozenset()
    if lakeio.exists(lake, ETL_FORGOTTEN):
        forgotten = frozenset(lakeio.read_arrow(lake, ETL_FORGOTTEN, columns=["user_key"]).column("user_key").to_pylist())

    stage_root = Path(stage_root)
    chunk_dir, out_dir = stage_root / "chunks", stage_root / "bronze-out"
    stats = {i: FileStats(f.rel, f.kind, f.month) for i, f in enumerate(files)}
    chunks: list[Chunk] = []
    stat_rows: list = []
    waited: dict[int, float] = {}
    if files:
        salt = resolve_salt(etl)
        chunks, stat_rows, waited = _split_and_parse(spark, files, etl, chunk_dir, lambda c: parse_one(
            c, files[c.file_idx], ingested_at[files[c.file_idx].rel], etl, str(out_dir), forgotten, salt))
    expected = {i: 0 for i in stats}
    for i, w in waited.items():
        stats[i].split_wait_s = round(w, 2)
    for c in chunks:
        expected[c.file_idx] += c.n_lines
        if c.tail_reason:
            stats[c.file_idx].truncated = True
    for r in stat_rows:
        s = stats[r["file_idx"]]
        for k in ("lines", "bytes", "bronze_rows", "quarantine_rows", "out_of_month", "null_keys"):
            setattr(s, k, getattr(s, k) + r[k])
        for k, v in json.loads(r["reasons"]).items():
            s.reasons[k] = s.reasons.get(k, 0) + v
        for k, v in json.loads(r["created_months"]).items():
            s.created_months[k] = s.created_months.get(k, 0) + v
        if r["min_created"] is not None:
            s.min_created = r["min_created"] if s.min_created is None else min(s.min_created, r["min_created"])
            s.max_created = r["max_created"] if s.max_created is None else max(s.max_created, r["max_created"])
    for i, s in stats.items():  # the reconciliation the issue asks for, per file, always
        if not (s.lines == expected[i] == s.bronze_rows + s.quarantine_rows):
            raise RuntimeError(f"{s.source_file}: {expected[i]} lines split, {s.lines} parsed, "
                               f"{s.bronze_rows} bronze + {s.quarantine_rows} quarantine: counts do not reconcile")
    versions = {}
    for kind in KINDS:
        versions[bronze_table(kind)] = write_table(
            spark, lake, bronze_table(kind), BRONZE_SCHEMAS[kind], run_id=run_id, stage_root=stage_root,
            staged_dir=out_dir / f"bronze__{kind}", partition_by=["month"], months=months)
    versions[QUARANTINE] = write_table(
        spark, lake, QUARANTINE, QUARANTINE_SCHEMA, run_id=run_id, stage_root=stage_root,
        staged_dir=out_dir / "quarantine", partition_by=["month"], months=months)
    return BronzeResult(files=list(stats.values()), months=months, versions=versions)
