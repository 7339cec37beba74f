"""ETL throughput bench (issue 3): one generated comments month of >= 1 GB uncompressed, all measured in
one run on the same cores, every figure printed.

  (a) zipp ingest: .zst -> bronze, and bronze -> silver + gold, separately (MB/s per core, local[N])
  (b) the peer a user would pick on one machine: DuckDB read_ndjson (explicit columns) -> edges, 1 thread,
      on the decompressed month (DuckDB cannot open the 2 GiB-window .zst)
  (c) the floor Reddit-dump scripts reach: python-zstandard read_to_iter + orjson, one process
  (d) the limits: python-zstandard decompression alone; Polars scan_ndjson with a schema -> edges, 1 thread
  + per-record time of the ingest at --scale x the data, and peak memory (PSS of driver, JVM and workers)
    (the decompressing worker's RSS follows the month size up to the dumps' 2 GiB zstd window: the decoder
    touches its window buffer as data flows; every other worker is bounded by etl.chunk_bytes)

    .venv/bin/python bench/etl.py                 # 1 GiB month, then 4x
    .venv/bin/python bench/etl.py --size-mb 200 --scale 2   # quicker
    .venv/bin/python bench/etl.py --size-mb 2300 --scale 2  # both months past the 2 GiB window: memory
                                                            # of month sizes real dumps have (~20 min)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

WORDS = ("the a of to and in is it you that was for on are with as I his they be at one have this from or had by "
         "not word but what some we can out other were all there when up use your how said an each she which do "
         "their time if will way about many then them write would like so these her long make thing see him two "
         "has look more day could go come did number sound no most people my over know water than call first who "
         "may down side been now find any new work part take get place made live where after back little only round "
         "man year came show every good me give our under name very through just form sentence great think say help "
         "low line differ turn cause much mean before move right boy old too same tell does set three want air well "
         "also play small end put home read hand port large spell add even land here must big high such follow act "
         "why ask men change went light kind off need house picture try us again animal point mother world near build "
         "self earth father head stand own page should country found answer school grow study still learn plant cover "
         "food sun four between state keep eye never last let thought city tree cross farm hard start might story saw "
         "far sea draw left late run don't while press close night real life few north").split()


# ----------------------------------------------------------------------------- data


def write_month(path: Path, target_mb: float, seed: int = 0, plain: Path | None = None) -> dict:
    """A Pushshift-shaped RC_ month (2016 field set), zstd with a 2 GiB window; optionally also plain."""
    import zstandard

    rng = np.random.default_rng(seed)
    n_users, n_subs = 200_000, 20_000
    words = np.array(WORDS)
    t0 = 1451606400
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=31, threads=2)
    out = open(path, "wb")
    comp = zstandard.ZstdCompressor(compression_params=params).stream_writer(out)
    plain_fh = open(plain, "wb") if plain else None
    total, lines, i = 0, 0, 0
    target = int(target_mb * 1e6)
    while total < target:
        n = 50_000
        users = rng.zipf(1.3, n) % n_users
        subs = rng.zipf(1.2, n) % n_subs
        score = rng.integers(-5, 200, n)
        lens = rng.integers(3, 90, n)
        created = t0 + rng.integers(0, 31 * 86400, n)
        flat = words[rng.integers(0, len(words), int(lens.sum()))]
        pos = np.concatenate(([0], np.cumsum(lens)))
        buf = []
        for k in range(n):
            body = " ".join(flat[pos[k]:pos[k + 1]])
            cid = np.base_repr(36**6 + i, 36).lower()
            buf.append(
                f'{{"author":"user_{users[k]}","author_flair_css_class":null,"author_flair_text":null,"body":"{body}",'
                f'"controversiality":0,"created_utc":{created[k]},"distinguished":null,"edited":false,"gilded":0,'
                f'"id":"{cid}","link_id":"t3_{np.base_repr(36**5 + (i // 7), 36).lower()}",'
                f'"parent_id":"t1_{np.base_repr(36**6 + max(i - 3, 0), 36).lower()}","retrieved_on":1454200000,'
                f'"score":{score[k]},"stickied":false,"subreddit":"sub_{subs[k]}","subreddit_id":"t5_{subs[k]:x}","ups":{score[k]}}}\n')
            i += 1
        data = "".join(buf).encode()
        comp.write(data)
        if plain_fh:
            plain_fh.write(data)
        total += len(data)
        lines += n
    comp.close()
    if plain_fh:
        plain_fh.close()
    return {"bytes": total, "lines": lines, "compressed": path.stat().st_size}


# ----------------------------------------------------------------------------- RSS sampling


class PeakRSS:
    """Peak memory of this process and all its descendants (JVM, Python workers), summed as PSS
    (proportional set size: pages shared by forked Python workers are not counted twice)."""

    # Reading a process's PSS walks its page tables: ~16 ms for the JVM, more for a worker holding the
    # 2 GiB zstd window. At 4 samples/s that was ~7% of the 2 cores, charged to the "driver" (the
    # bench's own process); one per second keeps it under 2%.
    def __init__(self, interval: float = 1.0):
        import psutil

        self.proc, self.interval, self.peak = psutil.Process(), interval, 0
        self.peaks: dict[str, int] = {}  # per kind of process: driver (this Python), jvm, workers
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            total, kinds = 0, {}
            for p in [self.proc, *self.proc.children(recursive=True)]:
                try:
                    pss = p.memory_full_info().pss
                    kind = "driver" if p.pid == self.proc.pid else "jvm" if "java" in p.name() else "workers"
                except psutil.Error:
                    continue
                total += pss
                kinds[kind] = kinds.get(kind, 0) + pss
            self.peak = max(self.peak, total)
            for k, v in kinds.items():
                self.peaks[k] = max(self.peaks.get(k, 0), v)
            time.sleep(self.interval)

    def cpu_seconds(self) -> float:
        """CPU time used so far by this process tree (live processes + reaped children)."""
        return sum(self.cpu_by_kind().values())

    def cpu_by_kind(self) -> dict[str, float]:
        """CPU seconds so far per kind of process: driver, jvm, workers (Python workers and their
        daemon; a worker that exited counts in its parent's reaped-children time)."""
        import psutil

        out: dict[str, float] = {}
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                t = p.cpu_times()
                kind = "driver" if p.pid == self.proc.pid else "jvm" if "java" in p.name() else "workers"
            except psutil.Error:
                continue
            own = t.user + t.system
            # the driver's reaped children are the JVM's and workers' own once they exit: not counted twice
            reaped = 0.0 if p.pid == self.proc.pid else t.children_user + t.children_system
            out[kind] = out.get(kind, 0.0) + own + reaped
        return out

    def __enter__(self) -> "PeakRSS":
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()


# ----------------------------------------------------------------------------- single-process peers (subprocesses)

PEERS = {
    "duckdb": """
import duckdb, time, sys
con = duckdb.connect(); con.execute("SET threads=1")
t = time.perf_counter()
n = con.execute('''SELECT count(*) FROM (SELECT author, subreddit, count(*) n, sum(score) s FROM read_ndjson(?,
    columns={author: 'VARCHAR', subreddit: 'VARCHAR', score: 'BIGINT', created_utc: 'BIGINT', id: 'VARCHAR',
             body: 'VARCHAR', link_id: 'VARCHAR', parent_id: 'VARCHAR', retrieved_on: 'BIGINT'}) GROUP BY 1, 2)''',
    [sys.argv[1]]).fetchall()[0][0]
print(time.perf_counter() - t, n)
""",
    "zstd_orjson": """
import zstandard, orjson, time, sys
from collections import Counter
t = time.perf_counter(); edges = Counter(); rest = b""
d = zstandard.ZstdDecompressor(max_window_size=2**31)
with open(sys.argv[1], "rb") as fh:
    for chunk in d.read_to_iter(fh, read_size=1 << 20, write_size=1 << 22):
        lines = (rest + chunk).split(b"\\n"); rest = lines.pop()
        for line in lines:
            o = orjson.loads(line)
            edges[(o["author"], o["subreddit"])] += 1
print(time.perf_counter() - t, len(edges))
""",
    "zstd_only": """
import zstandard, time, sys
t = time.perf_counter(); n = 0
d = zstandard.ZstdDecompressor(max_window_size=2**31)
with open(sys.argv[1], "rb") as fh:
    for chunk in d.read_to_iter(fh, read_size=1 << 20, write_size=1 << 22):
        n += len(chunk)
print(time.perf_counter() - t, n)
""",
    "polars": """
import polars as pl, time, sys
schema = {"author": pl.String, "subreddit": pl.String, "score": pl.Int64, "created_utc": pl.Int64, "id": pl.String,
          "body": pl.String, "link_id": pl.String, "parent_id": pl.String, "retrieved_on": pl.Int64}
t = time.perf_counter()
n = pl.scan_ndjson(sys.argv[1], schema=schema).group_by("author", "subreddit").agg(pl.len(), pl.col("score").sum()).collect().height
print(time.perf_counter() - t, n)
""",
}


def run_peer(name: str, path: Path) -> tuple[float, int]:
    env = dict(os.environ, POLARS_MAX_THREADS="1", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", PEERS[name], str(path)], capture_output=True, text=True, env=env, check=True)
    secs, n = out.stdout.split()[-2:]
    return float(secs), int(n)


# ----------------------------------------------------------------------------- zipp ingest


def run_ingest(spark, dump: Path, lake: Path, runs: Path, cores: int, gates: bool) -> dict:
    from zipp.config import load_config
    from zipp.etl.pipeline import EtlState, finish
    from zipp.etl.stage import BronzeStage, GoldStage, SilverStage
    from zipp.runtime import Runtime
    from zipp.stage import StageContext, run_stage

    cfg = load_config(overrides=[f"paths.dump={dump}", f"paths.lake={lake}", f"paths.runs={runs}",
                                 f"etl.gates={str(gates).lower()}", f"runtime.spark_master=local[{cores}]"],
                      conf_dir=REPO / "conf")
    state = EtlState(cfg=cfg, command="ingest", input_dir=dump, lake=lake)
    rt = Runtime(cfg.runtime)
    ctx = StageContext(cfg=cfg, run_dir=runs / state.run_id, runtime=rt)
    out = {}
    state.make_plan()  # hashing the input is outside the timings
    with PeakRSS() as rss:
        load0, k0, t = os.getloadavg()[0], rss.cpu_by_kind(), time.perf_counter()
        c0 = sum(k0.values())
        run_stage(BronzeStage(state), ctx)
        out["bronze_s"], k1 = time.perf_counter() - t, rss.cpu_by_kind()
        c1 = sum(k1.values())
        out["bronze_cpu_by_process"] = {k: round(v - k0.get(k, 0.0), 2) for k, v in k1.items()}
        t = time.perf_counter()
        run_stage(SilverStage(state), ctx)
        run_stage(GoldStage(state), ctx)
        out["silver_gold_s"], c2 = time.perf_counter() - t, rss.cpu_seconds()
        out["bronze_cpu_s"], out["silver_gold_cpu_s"] = c1 - c0, c2 - c1
        out["load"] = (load0, os.getloadavg()[0])
        out["steps"] = {"bronze": state.timings.get("bronze"), "silver": state.silver.get("step_seconds"),
                        "gold": state.gold.get("step_seconds")}
    state.status = "ok"
    finish(state, ctx.run_dir)
    out["peak_rss_gb"] = rss.peak / 2**30
    out["peak_rss_gb_by_process"] = {k: round(v / 2**30, 2) for k, v in sorted(rss.peaks.items())}
    out["rows"] = state.bronze.bronze_rows
    out["edges"] = state.gold.get("gold/user_subreddit_edges")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=float, default=1100, help="uncompressed size of the month (default 1100 MB)")
    ap.add_argument("--scale", type=int, default=4, help="second ingest at this many times the data (0: skip)")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--driver-memory", default="2g",
                    help="Spark driver (= local executor) heap. Spark's shuffles use what the heap offers before "
                         "spilling, so the JVM's peak follows this cap, not the month's size (default 2g)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "etl")
    ap.add_argument("--gates", action="store_true", help="run the quality gates inside the timings too")
    ap.add_argument("--keep", action="store_true", help="keep the generated data and lakes")
    args = ap.parse_args()

    out = args.out
    shutil.rmtree(out, ignore_errors=True)
    (out / "dump1").mkdir(parents=True)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start (other users' work counts); "
          f"spark local[{args.cores}], driver heap {args.driver_memory}")
    t = time.perf_counter()
    info = write_month(out / "dump1" / "RC_2016-01.zst", args.size_mb, plain=out / "RC_2016-01.ndjson")
    mb = info["bytes"] / 1e6
    print(f"generated RC_2016-01.zst: {info['lines']:,} lines, {mb:,.0f} MB uncompressed, "
          f"{info['compressed'] / 1e6:,.0f} MB zstd (2 GiB window) in {time.perf_counter() - t:.0f} s")

    res: dict = {"mb": mb, "lines": info["lines"], "cores": args.cores, "driver_memory": args.driver_memory}
    for name in ("zstd_only", "zstd_orjson", "duckdb", "polars"):
        path = out / ("RC_2016-01.ndjson" if name in ("duckdb", "polars") else "dump1/RC_2016-01.zst")
        secs, n = run_peer(name, path)
        res[name] = {"s": secs, "mb_s": mb / secs, "groups": n}
        print(f"  {name:12s} {secs:7.1f} s  {mb / secs:7.1f} MB/s (1 thread)")
    (out / "RC_2016-01.ndjson").unlink()

    from zipp.config import RuntimeConfig
    from zipp.runtime import get_spark

    t = time.perf_counter()
    spark, _ = get_spark(RuntimeConfig(spark_master=f"local[{args.cores}]", spark_driver_memory=args.driver_memory,
                                       spark_shuffle_partitions=2 * args.cores))
    print(f"spark session started in {time.perf_counter() - t:.1f} s (not in the timings)")
    if args.gates:
        import great_expectations  # noqa: F401  (its import alone takes ~10 s: kept out of the timings)
    warm = out / "warm"
    warm.mkdir()
    write_month(warm / "RC_2016-01.zst", 5)
    run_ingest(spark, warm, out / "warm_lake", out / "runs", args.cores, args.gates)  # JIT, workers, imports

    r1 = run_ingest(spark, out / "dump1", out / "lake1", out / "runs", args.cores, args.gates)
    res["ingest_1x"] = r1
    if args.scale:
        shutil.rmtree(out / "lake1", ignore_errors=True)
        (out / "dumpN").mkdir()
        info_n = write_month(out / "dumpN" / "RC_2016-01.zst", args.size_mb * args.scale, seed=1)
        shutil.rmtree(out / "dump1", ignore_errors=True)
        rn = run_ingest(spark, out / "dumpN", out / "lakeN", out / "runs", args.cores, args.gates)
        rn["mb"], rn["lines"] = info_n["bytes"] / 1e6, info_n["lines"]
        res["ingest_scaled"] = rn
    spark.stop()

    c = args.cores
    b_mbsc = mb / r1["bronze_s"] / c
    floor = res["zstd_orjson"]["mb_s"]
    print("\n=== results (MB = uncompressed bytes / 1e6) ===")
    print(f"(a) zipp ingest .zst -> bronze      : {r1['bronze_s']:7.1f} s  {mb / r1['bronze_s']:7.1f} MB/s  {b_mbsc:6.1f} MB/s/core")
    total = r1["bronze_s"] + r1["silver_gold_s"]
    print(f"(a) zipp ingest bronze -> silver+gold: {r1['silver_gold_s']:7.1f} s  (+{100 * r1['silver_gold_s'] / r1['bronze_s']:.0f}% of bronze time)")
    print(f"(a) zipp ingest end to end           : {total:7.1f} s  {mb / total / c:6.1f} MB/s/core  ({r1['rows']:,} rows, {r1['edges']:,} edges)")
    print(f"(b) DuckDB read_ndjson -> edges      : {res['duckdb']['s']:7.1f} s  {res['duckdb']['mb_s']:6.1f} MB/s/core")
    print(f"(c) zstandard + orjson (floor)       : {res['zstd_orjson']['s']:7.1f} s  {floor:6.1f} MB/s/core")
    print(f"(d) zstandard decompression alone    : {res['zstd_only']['s']:7.1f} s  {res['zstd_only']['mb_s']:6.1f} MB/s/core")
    print(f"(d) Polars scan_ndjson -> edges      : {res['polars']['s']:7.1f} s  {res['polars']['mb_s']:6.1f} MB/s/core")
    print("ratios:")
    print(f"  bronze MB/s/core / (c) floor       : {b_mbsc / floor:5.2f}   (target >= 0.5)")
    print(f"  silver+gold time / bronze time     : {r1['silver_gold_s'] / r1['bronze_s']:5.2f}   (target <= 0.5)")
    print(f"  bronze MB/s/core / DuckDB          : {b_mbsc / res['duckdb']['mb_s']:5.2f}")
    print(f"  end-to-end MB/s/core / DuckDB      : {mb / total / c / res['duckdb']['mb_s']:5.2f}")
    print(f"  peak memory at 1x ({mb:,.0f} MB)   : {r1['peak_rss_gb']:5.2f} GB (PSS: driver + JVM + Python workers)")
    print("load-independent (CPU seconds used by driver + JVM + workers, all cores):")
    print(f"  bronze: {r1['bronze_cpu_s']:.1f} CPU s = {mb / r1['bronze_cpu_s']:.1f} MB per CPU second "
          f"(= MB/s/core with {c} free cores; {mb / r1['bronze_cpu_s'] / floor:.2f} x the floor)")
    print(f"  bronze CPU by process: {json.dumps(r1['bronze_cpu_by_process'])}")
    print(f"  silver+gold: {r1['silver_gold_cpu_s']:.1f} CPU s = {100 * r1['silver_gold_cpu_s'] / r1['bronze_cpu_s']:.0f}% of bronze's CPU")
    print(f"  load average (1 min) around the 1x ingest: {r1['load'][0]:.1f} -> {r1['load'][1]:.1f}")
    print(f"  step seconds at 1x: {json.dumps(r1['steps'])}")
    if args.scale:
        rn = res["ingest_scaled"]
        per1 = total / res["lines"] * 1e6
        tn = rn["bronze_s"] + rn["silver_gold_s"]
        pern = tn / rn["lines"] * 1e6
        print(f"  at {args.scale}x ({rn['mb']:,.0f} MB): bronze {rn['bronze_s']:.1f} s ({rn['mb'] / rn['bronze_s'] / c:.1f} MB/s/core), "
              f"silver+gold {rn['silver_gold_s']:.1f} s")
        print(f"  per-record time {args.scale}x / 1x     : {pern:.2f} / {per1:.2f} us = {pern / per1:5.2f}   (target <= 1.2)")
        print(f"  peak memory at {args.scale}x           : {rn['peak_rss_gb']:5.2f} GB  ({rn['peak_rss_gb'] / r1['peak_rss_gb']:.2f}x of 1x)")
        print(f"  peak memory by process, 1x -> {args.scale}x: " + ", ".join(
            f"{k} {r1['peak_rss_gb_by_process'].get(k, 0):.2f} -> {v:.2f} GB" for k, v in rn["peak_rss_gb_by_process"].items()))
        cpn = (rn["bronze_cpu_s"] + rn["silver_gold_cpu_s"]) / rn["lines"] * 1e6
        cp1 = (r1["bronze_cpu_s"] + r1["silver_gold_cpu_s"]) / res["lines"] * 1e6
        print(f"  CPU per record {args.scale}x / 1x      : {cpn:.2f} / {cp1:.2f} us = {cpn / cp1:5.2f}; "
              f"load around the {args.scale}x ingest: {rn['load'][0]:.1f} -> {rn['load'][1]:.1f}")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    (args.out / "results.json").write_text(json.dumps(res, indent=2, default=str))
    if not args.keep:
        for p in args.out.iterdir():
            if p.name != "results.json":
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()


if __name__ == "__main__":
    main()
