"""A failed quality gate fails the run with a clear message and a GX HTML report, and leaves the
tables written before it (bronze) as they are."""

from __future__ import annotations

import json

import pytest
from etl_dumps import comment, ts, write_lines

from zipp import lake as lakeio

pytestmark = [pytest.mark.spark]


def test_gate_failure_names_the_file_writes_the_report_and_keeps_bronze(tmp_path, etl_cli):
    dump, lake, runs = tmp_path / "dump", tmp_path / "lake", tmp_path / "runs"
    may = ts("2016-05-10")
    write_lines(dump / "RC_2016-05.zst", [comment("a1", "alice", "pics", may), b"{not json", comment("a2", "bob", "pics", may)])
    # named June, holding May: every row is outside June +- 3 days
    write_lines(dump / "RC_2016-06.zst", [comment(f"b{i}", "carol", "pics", may + i) for i in range(5)])
    code, out = etl_cli("ingest", "--input", dump, "--lake", lake, "--run", "gate", f"paths.runs={runs}",
                        "etl.quarantine_max_rate=0")
    assert code == 1
    assert "quality gate 'bronze' failed (2 expectation(s))" in out
    assert "quarantine rate <= etl.quarantine_max_rate=0.0" in out and "RC_2016-05.zst" in out
    assert "a file named for another month?" in out and "RC_2016-06.zst" in out
    report = runs / "gate" / "quality" / "bronze.html"
    html = report.read_text()
    assert "Unsuccessful Expectations" in html and "RC_2016-06.zst" in html and "quarantine_rate" in html
    manifest = json.loads((runs / "gate" / "manifest.json").read_text())
    assert manifest["status"] == "failed_gate" and "RC_2016-06.zst" in manifest["error"]
    # bronze stays, nothing after the gate was written, the files are marked as failed for nightly
    assert sorted(set(lakeio.read_arrow(lake, "bronze/comments").column("month").to_pylist())) == ["2016-05", "2016-06"]
    assert not lakeio.exists(lake, "silver/comments") and not lakeio.exists(lake, "gold/user_subreddit_edges")
    files = {r["source_file"]: r["status"] for r in lakeio.read_arrow(lake, "_etl/files").to_pylist()}
    assert files == {"RC_2016-05.zst": "failed_gate", "RC_2016-06.zst": "failed_gate"}
    runs_table = lakeio.read_arrow(lake, "_etl/runs").to_pylist()
    assert [r["status"] for r in runs_table] == ["failed_gate"]


def test_gold_gate_passes_a_clean_run_and_catches_a_missing_edge(tmp_path, etl_cli, spark):
    """The gold gate compares the committed edges with what the gold tasks summed from every pair's
    monthly rows: a clean run passes, an edge lost afterwards is named."""
    from deltalake import DeltaTable

    from zipp.etl.quality import QualityGateError, gate_gold
    from zipp.identity import user_key

    dump, lake, runs = tmp_path / "dump", tmp_path / "lake", tmp_path / "runs"
    t = ts("2016-05-10")
    write_lines(dump / "RC_2016-05.zst", [comment(f"c{i}", ["alice", "bob", "carol"][i % 3], ["pics", "funny"][i % 2], t + i)
                                          for i in range(12)])
    code, out = etl_cli("ingest", "--input", dump, "--lake", lake, "--run", "ok", f"paths.runs={runs}")
    assert code == 0, out
    manifest = json.loads((runs / "ok" / "manifest.json").read_text())
    gold = manifest["gold"]
    assert manifest["gates"]["gold"]["success"] and gold["expected_edges"] == 6 == gold["gold/user_subreddit_edges"]
    assert gold["expected_interactions"] == 12

    DeltaTable(str(lake / "gold/user_subreddit_edges")).delete(f"user_key = '{user_key('alice', 'zipp-local-dev-salt')}'")
    with pytest.raises(QualityGateError, match="gold"):
        gate_gold(spark, lake, ["2016-05"], {}, gold, tmp_path / "quality")
    assert "edges:rows" in (tmp_path / "quality" / "gold.html").read_text()
