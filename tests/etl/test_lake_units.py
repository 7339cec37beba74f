"""Delta commits and silver planning (without Spark): replaced months, the log, the month map; and
the gold key ranges and id assignment (the bucket tasks, without Spark)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from zipp import lake as lakeio
from zipp.etl.delta import StagedFile, commit_files, commit_partitions, count_rows, list_staged
from zipp.etl.silver import plan_silver, save_month_map

SCHEMA = pa.schema([("id", pa.string()), ("n", pa.int64()), ("month", pa.string())])


def stage(tmp, name: str, month: str, ids: list[str]) -> StagedFile:
    d = tmp / "stage" / f"month={month}"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.parquet"
    pq.write_table(pa.table({"id": ids, "n": list(range(len(ids)))}), path)
    return StagedFile(str(path), {"month": month})


def test_commit_replaces_only_the_given_months_in_one_transaction(tmp_path):
    lake = tmp_path / "lake"
    v0 = commit_files(lake, "t", SCHEMA, [stage(tmp_path, "a", "2016-01", ["x", "y"]), stage(tmp_path, "b", "2016-02", ["z"])],
                      run_id="r1", partition_by=["month"], months=["2016-01", "2016-02"])
    v1 = commit_files(lake, "t", SCHEMA, [stage(tmp_path, "c", "2016-02", ["w", "v", "u"])], run_id="r2",
                      partition_by=["month"], months=["2016-02"])
    assert (v0, v1) == (0, 1)
    rows = lakeio.read_arrow(lake, "t").to_pylist()
    assert sorted((r["month"], r["id"]) for r in rows) == [("2016-01", "x"), ("2016-01", "y"), ("2016-02", "u"),
                                                           ("2016-02", "v"), ("2016-02", "w")]
    c = commit_partitions(lake, "t", 1)
    assert c["added"] == c["removed"] == {(("month", "2016-02"),)} and c["metadata"]["zipp.run"] == "r2"
    assert count_rows(lake, "t") == 5 and count_rows(lake, "t", ["2016-01"]) == 2
    # no staged file for a month: the month is emptied, others untouched
    commit_files(lake, "t", SCHEMA, [], run_id="r3", partition_by=["month"], months=["2016-01"])
    assert count_rows(lake, "t") == 3 and list_staged(tmp_path / "stage") == []


def test_silver_months_follow_old_and_new_created_months(tmp_path):
    lake = tmp_path / "lake"
    # January's file fed Jan; February's file fed Feb and (a re-crawl) Jan
    first = plan_silver(lake, ["2016-01", "2016-02"], {("comments", "2016-01"): {"2016-01": 10},
                                                       ("comments", "2016-02"): {"2016-02": 8, "2016-01": 1}})
    assert first.months == ["2016-01", "2016-02"] and first.sources["comments"] == ["2016-01", "2016-02"]
    save_month_map(lake, first)
    # February is re-delivered without the re-crawl and with a March straggler
    again = plan_silver(lake, ["2016-02"], {("comments", "2016-02"): {"2016-02": 7, "2016-03": 1}})
    assert again.months == ["2016-01", "2016-02", "2016-03"]  # January must drop the old re-crawl
    assert again.sources == {"comments": ["2016-01", "2016-02"], "submissions": []}


def _pair_rows(keys: list[str], month: str, subreddit: str = "pics") -> pa.Table:
    from datetime import UTC, datetime

    from zipp.etl.schemas import GOLD_PAIR_MONTHS_SCHEMA

    t = datetime(2016, 1, 5, tzinfo=UTC)
    n = len(keys)
    schema = GOLD_PAIR_MONTHS_SCHEMA.remove(GOLD_PAIR_MONTHS_SCHEMA.get_field_index("month"))
    return pa.table({"user_key": keys, "subreddit": [subreddit] * n, "n_submissions": [0] * n, "n_comments": [2] * n,
                     "n_image_posts": [0] * n, "n_nsfw_submissions": [0] * n, "score_sum": [5] * n,
                     "first_ts": [t] * n, "last_ts": [t] * n, "activity_months": [[month]] * n}, schema=schema)


def test_key_ranges_cover_every_key_once_and_in_order():
    import hashlib

    from zipp.etl.gold import key_bounds

    keys = sorted([hashlib.sha256(str(i).encode()).hexdigest()[:16] for i in range(2000)] + ["0" * 16, "f" * 16])
    for buckets in (1, 3, 8):
        bounds = [key_bounds(b, buckets) for b in range(buckets)]
        owner = [[b for b, (lo, hi) in enumerate(bounds) if k >= lo and (hi is None or k < hi)] for k in keys]
        assert all(len(o) == 1 for o in owner)  # every key in exactly one range
        owners = [o[0] for o in owner]
        assert owners == sorted(owners)  # ranges follow key order
        if buckets > 1:
            assert len({o[0] for o in owner}) == buckets  # a uniform hash fills every range


def test_new_ids_are_dense_in_key_order_across_key_ranges(tmp_path):
    """The two bucket tasks without Spark: existing users keep their ids, new ones are numbered from
    the start in key order across ranges; a pair under min_interactions becomes a delete."""
    import hashlib

    import polars as pl

    from zipp.etl.gold import GoldInputs, aggregate_bucket, key_bounds, new_id_offsets, plan_bucket

    keys = sorted(hashlib.sha256(f"u{i}".encode()).hexdigest()[:16] for i in range(120))
    old = keys[::10]
    (tmp_path / "pairs" / "month=2016-01").mkdir(parents=True)
    pq.write_table(_pair_rows(keys, "2016-01"), tmp_path / "pairs" / "month=2016-01" / "p.parquet")
    users = pa.table({"user_key": old, "user_id": [1000 + i for i in range(len(old))]})
    pq.write_table(users, tmp_path / "users.parquet")
    sub_ids = tmp_path / "sub_ids.parquet"
    pl.DataFrame({"subreddit": ["pics"], "subreddit_id": [0]}).write_parquet(sub_ids)
    inp = GoldInputs(new_pairs=[str(tmp_path / "pairs" / "month=2016-01" / "p.parquet")], old_run_pairs=[], rest_pairs=[],
                     new_cands=[], rest_cands=[], new_images=[], users=[str(tmp_path / "users.parquet")], snippets=[],
                     min_interactions=3)
    buckets = 4
    plan = [plan_bucket(b, buckets, inp, tmp_path / "p1") for b in range(buckets)]
    assert sum(p["affected_users"] for p in plan) == len(keys) and all(p["affected_users"] for p in plan)
    assert sum(p["new_users"] for p in plan) == len(keys) - len(old)
    assert pl.read_parquet(tmp_path / "p1")["subreddit"].unique().to_list() == ["pics"]
    offsets = new_id_offsets([p["new_users"] for p in plan], 50)
    for b in range(buckets):
        aggregate_bucket(b, buckets, offsets[b], str(sub_ids), inp, tmp_path / "p2")
    got = pl.read_parquet(tmp_path / "p2" / "users" / "upsert").sort("user_key")
    assert got["user_key"].to_list() == keys
    ids = dict(zip(got["user_key"], got["user_id"]))
    assert [ids[k] for k in old] == users["user_id"].to_pylist()  # existing ids are kept
    assert [ids[k] for k in keys if k not in old] == list(range(50, 50 + len(keys) - len(old)))  # dense, in key order
    assert all(key_bounds(b, buckets)[0] <= k for b in range(buckets) for k in
               pl.read_parquet(tmp_path / "p2" / "users" / "upsert" / f"b{b:05d}.parquet")["user_key"])
    # 2 comments < min_interactions=3: no edge to upsert, every pair is a delete
    assert pl.read_parquet(tmp_path / "p2" / "edges" / "upsert").height == 0
    assert pl.read_parquet(tmp_path / "p2" / "edges" / "delete").height == len(keys)
    assert (got["n_comments"] == 2).all() and (got["n_subreddits"] == 0).all()


def test_a_key_range_opens_only_the_files_whose_keys_it_meets(tmp_path):
    """Files whose recorded (min, max) user_key misses the range are not opened at all (here one that
    does not exist: opening it would fail); files of unknown range are read and filtered."""
    from zipp.etl.gold import GoldInputs, _scan, key_bounds, overlapping
    from zipp.etl.schemas import GOLD_PAIR_MONTHS_SCHEMA

    (tmp_path / "month=2016-01").mkdir()
    here = str(tmp_path / "month=2016-01" / "a.parquet")
    pq.write_table(_pair_rows(["1" * 16, "3" * 16, "9" * 16], "2016-01"), here)
    gone = str(tmp_path / "month=2016-01" / "gone.parquet")
    lo, hi = key_bounds(0, 2)  # ["00000000", "80000000")
    ranges = {gone: ("c" * 16, "f" * 16)}
    inp = GoldInputs(new_pairs=[], old_run_pairs=[], rest_pairs=[here, gone], new_cands=[], rest_cands=[], new_images=[],
                     users=[], snippets=[], key_ranges=ranges)
    rows = inp.scan(inp.rest_pairs, GOLD_PAIR_MONTHS_SCHEMA, lo, hi)
    assert rows["user_key"].to_list() == ["1" * 16, "3" * 16]
    with pytest.raises(Exception):
        _scan([here, gone], GOLD_PAIR_MONTHS_SCHEMA, lo, hi)
    edges = {"a": ("0", "1"), "b": ("7fffffff", "8"), "c": ("80000000", "9"), "d": ("9", "f")}
    assert overlapping(["a", "b", "c", "d", "x"], edges, lo, hi) == ["a", "b", "x"]
    assert overlapping(["a", "b", "c", "d", "x"], edges, *key_bounds(1, 2)) == ["c", "d", "x"]


def test_losing_copies_keep_the_latest_retrieval_then_the_later_file_and_line():
    import polars as pl

    from zipp.etl.silver import extra_copies, losing_copies

    rows = pl.DataFrame({
        "id": ["a", "a", "a", "b", "b", "c", "d", "d"],
        "retrieved_on": [10, 30, None, None, None, 5, 7, 7],
        "retrieved_2nd_on": [None, None, 40, None, None, None, None, None],  # Arctic-Shift's later re-crawl counts
        "source_file": ["RC_1", "RC_1", "RC_2", "RC_1", "RC_2", "RC_1", "RC_1", "RC_1"],
        "line_no": [1, 2, 3, 4, 5, 6, 7, 8],
        "month": ["2016-01"] * 8,
    })
    losers = sorted(losing_copies(rows).iter_rows())
    # a: line 3 (retrieved 40) wins; b: no retrieval at all, the later file wins; d: tie, the later line wins
    assert losers == [("RC_1", 1), ("RC_1", 2), ("RC_1", 4), ("RC_1", 7)]
    assert extra_copies(rows).to_dicts() == [{"month": "2016-01", "extra": 4}]  # 8 rows, 4 ids
    assert losing_copies(rows.filter(pl.col("line_no").is_in([1, 4, 6, 7]))).height == 0  # no id twice


def test_overlaps_are_the_points_two_or_more_spans_cover():
    import random

    from zipp.etl.silver import overlaps

    rng = random.Random(7)
    for _ in range(200):
        spans = [(a, a + rng.randint(0, 12)) for a in (rng.randint(0, 60) for _ in range(rng.randint(0, 6)))]
        covered = {x for x in range(80) if sum(lo <= x <= hi for lo, hi in spans) >= 2}
        got = overlaps(spans)
        assert {x for lo, hi in got for x in range(lo, hi + 1)} == covered
        assert all(a[1] + 1 < b[0] for a, b in zip(got, got[1:]))  # merged, in order


def test_shared_ids_are_where_files_id_spans_meet():
    import numpy as np
    import polars as pl

    from zipp.etl.silver import id_span, shared_ids

    def ids(lo, hi):  # base-36 ids, like Reddit's
        return [np.base_repr(n, 36).lower() for n in range(lo, hi)]

    a, b = ids(50_000, 52_000), ids(52_000, 54_000)
    # files in id order: no id can be in both, and no shuffle runs
    assert shared_ids([id_span(pl.Series(a)), id_span(pl.Series(b)), None]) is None
    # one stray old id in b (a late line) stretches b's span over all of a's; the trimmed spans (2 ids
    # off each end per 1,000) still miss each other, so the shared ids are the files' ends, not a's rows
    shared = shared_ids([id_span(pl.Series(a)), id_span(pl.Series(b + [a[700]]))])
    assert shared.regions == []
    assert sorted(pl.Series(a).filter(shared.mask(pl.Series(a))).to_list()) == sorted([a[0], a[1], a[700], a[-2], a[-1]])
    # spans that really overlap: the trimmed overlap is a region, and the mask finds the ids in it
    c = ids(51_000, 53_000)
    shared = shared_ids([id_span(pl.Series(a)), id_span(pl.Series(c))])
    assert shared.regions == [(51_002, 51_997)]
    # (plus the ends of both files: c's two lowest ids are in a's span, so a's copies of them are shared too)
    assert set(pl.Series(a).filter(shared.mask(pl.Series(a))).to_list()) == set(ids(51_000, 52_000)) | {a[0], a[1]}
    # ids that are not base-36 numbers are always shared, even between otherwise disjoint files
    shared = shared_ids([id_span(pl.Series(a + ["t1-x"])), id_span(pl.Series(b))])
    assert shared.regions == [] and shared.ids == ["t1-x"]
    assert shared.mask(pl.Series(["t1-x", a[0]])).to_list() == [True, False]


def test_tasks_holding_a_losing_copy_are_found_by_their_line_ranges():
    from zipp.etl.silver import tasks_holding

    task_lines = {0: [["RC_1", 1, 100]], 1: [["RC_1", 101, 200]], 2: [["RC_2", 1, 50], ["RC_1", 201, 300]], 3: []}
    assert tasks_holding(task_lines, {}) == []
    assert tasks_holding(task_lines, {"RC_1": {100, 250}}) == [0, 2]  # ends of a range count
    assert tasks_holding(task_lines, {"RC_2": {51}, "RC_3": {1}}) == []
    assert tasks_holding(task_lines, {"RC_1": set(range(101, 201))}) == [1]
