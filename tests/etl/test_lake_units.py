"""Delta commits and silver planning (without Spark): replaced months, the log, the month map; and
the gold id assignment (with Spark)."""

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


@pytest.mark.spark
def test_new_ids_are_dense_in_key_order_across_range_partitions(spark, tmp_path):
    from zipp.etl.gold import _assign_ids

    keys = spark.createDataFrame([(f"k{i:04d}",) for i in range(0, 300, 3)] + [("old1",), ("old2",)], "user_key string")
    existing = spark.createDataFrame([("old1", 7), ("old2", 3)], "user_key string, user_id long")
    got = {r["user_key"]: r["user_id"] for r in _assign_ids(keys, existing, "user_key", "user_id", 50, tmp_path).collect()}
    assert got.pop("old1") == 7 and got.pop("old2") == 3  # existing ids are kept
    assert spark.conf.get("spark.sql.shuffle.partitions") != "1"  # the new keys really span several partitions
    assert [got[k] for k in sorted(got)] == list(range(50, 150))  # dense, from start, in key order
    nothing_new = _assign_ids(keys.where("user_key LIKE 'old%'"), existing, "user_key", "user_id", 50, tmp_path / "b")
    assert sorted(r["user_id"] for r in nothing_new.collect()) == [3, 7]
