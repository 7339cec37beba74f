"""`zipp nightly`: only new or changed months are rebuilt, the Delta log shows that only their
partitions were touched, gold is merged incrementally with stable ids, and a run that dies before
its commit leaves no partial month."""

from __future__ import annotations

import json
import os

import pytest
from conftest import REPO
from etl_dumps import comment, submission, ts, write_lines

from zipp import lake as lakeio
from zipp.etl.delta import commit_partitions
from zipp.identity import user_key

pytestmark = [pytest.mark.spark]

MONTH_TABLES = ("bronze/comments", "bronze/submissions", "quarantine", "silver/comments", "silver/submissions",
                "gold/user_images", "gold/user_subreddit_months", "gold/snippet_candidates")
MERGED = ("gold/users", "gold/subreddits", "gold/user_subreddit_edges", "gold/snippets")


def month_files(dump, month: str, authors: list[str], n: int = 6) -> None:
    t = ts(f"{month}-05")
    mm = month.replace("-", "")
    write_lines(dump / f"RC_{month}.zst", [comment(f"c{mm}{i}", authors[i % len(authors)], ["pics", "funny"][i % 2], t + i,
                                                  score=i) for i in range(n)])
    write_lines(dump / f"RS_{month}.zst", [submission(f"s{mm}{i}", authors[i % len(authors)], "pics", t + i,
                                                     url=f"https://i.redd.it/{month}{i}.png", post_hint="image") for i in range(2)])


def versions(lake) -> dict[str, int]:
    return {t: lakeio.version(lake, t) for t in MONTH_TABLES + MERGED}


@pytest.fixture(scope="module")
def nightly(tmp_path_factory, etl_cli):
    root = tmp_path_factory.mktemp("nightly")
    dump, lake, runs = root / "dump", root / "lake", root / "runs"
    month_files(dump, "2016-01", ["alice", "bob"])
    month_files(dump, "2016-02", ["alice", "carol"])

    def run(name: str, *extra: str) -> tuple[int, str]:
        return etl_cli("nightly", "--input", dump, "--lake", lake, "--run", name, f"paths.runs={runs}", "etl.gates=false", *extra)

    # the first run is the main job's stage (paths.dump -> paths.lake), the others the CLI
    from zipp.config import load_config
    from zipp.etl.stage import IngestStage
    from zipp.runtime import Runtime
    from zipp.stage import StageContext, run_stage

    cfg = load_config(overrides=[f"paths.dump={dump}", f"paths.lake={lake}", f"paths.runs={runs}", "etl.gates=false"],
                      conf_dir=REPO / "conf")
    result = run_stage(IngestStage(), StageContext(cfg=cfg, run_dir=runs / "n1", runtime=Runtime(cfg.runtime)))
    return {"dump": dump, "lake": lake, "run": run, "first": result, "runs": runs}


def test_first_nightly_ingests_everything_then_nothing(nightly):
    first = nightly["first"]
    assert first.extra["months"] == ["2016-01", "2016-02"]
    assert (first.rows_in, first.rows_out, first.drops) == (16, 16, {})
    stats = json.loads((nightly["runs"] / "n1" / "stats" / "etl_ingest.json").read_text())
    assert stats["rows_in"] == 16 and (nightly["runs"] / "n1" / "stats" / "etl_gold.json").is_file()
    before = versions(nightly["lake"])
    code, out = nightly["run"]("n2")
    assert code == 0 and "months: none" in out and "unchanged  RC_2016-01.zst" in out
    assert versions(nightly["lake"]) == before  # not one commit


def test_new_month_touches_only_its_partitions(nightly):
    lake = nightly["lake"]
    ids_before = {r["user_key"]: r["user_id"] for r in lakeio.read_arrow(lake, "gold/users").to_pylist()}
    edges_before = {(r["user_key"], r["subreddit"]): r for r in lakeio.read_arrow(lake, "gold/user_subreddit_edges").to_pylist()}
    before = versions(lake)
    month_files(nightly["dump"], "2016-03", ["alice", "dave"])
    code, out = nightly["run"]("n3")
    assert code == 0 and "months: 2016-03" in out and "new  RC_2016-03.zst" in out
    for t in MONTH_TABLES:  # every commit since: adds and removes only month=2016-03 files
        for v in range(before[t] + 1, lakeio.version(lake, t) + 1):
            c = commit_partitions(lake, t, v)
            assert c["added"] | c["removed"] <= {(("month", "2016-03"),)}, (t, c)
            assert c["metadata"]["zipp.months"] == "2016-03"
    for t in MERGED:
        ops = {commit_partitions(lake, t, v)["operation"] for v in range(before[t] + 1, lakeio.version(lake, t) + 1)}
        assert ops == {"MERGE"}, t
    ids_after = {r["user_key"]: r["user_id"] for r in lakeio.read_arrow(lake, "gold/users").to_pylist()}
    assert all(ids_after[k] == v for k, v in ids_before.items())  # stable ids
    assert ids_after[user_key("dave", "zipp-local-dev-salt")] == max(ids_before.values()) + 1
    edges = {(r["user_key"], r["subreddit"]): r for r in lakeio.read_arrow(lake, "gold/user_subreddit_edges").to_pylist()}
    alice = user_key("alice", "zipp-local-dev-salt")
    assert edges[(alice, "pics")]["active_months"] == 3
    assert edges[(alice, "pics")]["n_submissions"] == edges_before[(alice, "pics")]["n_submissions"] + 1
    bob = user_key("bob", "zipp-local-dev-salt")
    assert edges[(bob, "pics")] == edges_before[(bob, "pics")]  # untouched pair, untouched row


def test_changed_file_rebuilds_its_month_and_gold_follows(nightly):
    lake = nightly["lake"]
    # February is re-delivered without carol: her February rows and edges must go
    write_lines(nightly["dump"] / "RC_2016-02.zst", [comment("x1", "alice", "pics", ts("2016-02-07"))])
    write_lines(nightly["dump"] / "RS_2016-02.zst", [])
    code, out = nightly["run"]("n4")
    assert code == 0 and "months: 2016-02" in out and "changed  RC_2016-02.zst" in out
    carol = user_key("carol", "zipp-local-dev-salt")
    edges = lakeio.read_arrow(lake, "gold/user_subreddit_edges").to_pylist()
    assert not [e for e in edges if e["user_key"] == carol]
    users = {r["user_key"]: r for r in lakeio.read_arrow(lake, "gold/users").to_pylist()}
    assert users[carol]["n_comments"] == 0 and users[carol]["user_id"] >= 0  # id kept, append-only map
    assert not [s for s in lakeio.read_arrow(lake, "gold/snippets").to_pylist() if s["user_key"] == carol]


def test_run_dying_before_commit_leaves_no_partial_month_and_reruns_cleanly(nightly):
    lake = nightly["lake"]
    month_files(nightly["dump"], "2016-04", ["erin"])
    before = versions(lake)
    os.environ["ZIPP_ETL_FAIL_BEFORE_COMMIT"] = "silver/comments"
    try:
        with pytest.raises(RuntimeError, match="injected failure"):
            nightly["run"]("n5")
    finally:
        del os.environ["ZIPP_ETL_FAIL_BEFORE_COMMIT"]
    assert lakeio.version(lake, "silver/comments") == before["silver/comments"]
    assert "2016-04" not in set(lakeio.read_arrow(lake, "silver/comments").column("month").to_pylist())
    assert lakeio.version(lake, "bronze/comments") == before["bronze/comments"] + 1  # bronze stays
    code, out = nightly["run"]("n6")  # the failed month is still new for the manifest
    assert code == 0 and "months: 2016-04" in out
    months = lakeio.read_arrow(lake, "silver/comments").column("month").to_pylist()
    assert months.count("2016-04") == 6


def test_monthly_tables_hold_a_file_per_key_range_with_its_range_on_record(nightly):
    """The gold tasks write the monthly tables as one file per (month, key range), and the Delta log
    keeps each file's user_key range: a later run's key range opens only the files it meets, not
    every file of the history."""
    import re

    import pyarrow.parquet as pq

    from zipp.etl.delta import key_ranges, table_files

    lake = nightly["lake"]
    for name in ("gold/user_subreddit_months", "gold/snippet_candidates"):
        files, ranges = table_files(lake, name), key_ranges(lake, name)
        assert files and sorted(ranges) == sorted(files)
        by_month: dict[str, list] = {}
        for f in files:
            keys = pq.read_table(f, columns=["user_key"]).column("user_key").to_pylist()
            assert ranges[f] == (min(keys), max(keys))
            by_month.setdefault(re.search(r"month=([0-9-]+)", f).group(1), []).append(ranges[f])
        assert {"2016-01", "2016-02", "2016-03"} <= set(by_month)  # every month the runs so far built
        for month, rs in by_month.items():
            rs.sort()
            assert all(a[1] < b[0] for a, b in zip(rs, rs[1:])), (name, month, rs)  # the ranges do not meet
        assert max(len(rs) for rs in by_month.values()) > 1  # (4 key ranges here: more than one file a month)
