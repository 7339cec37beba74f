"""`kill -9` of a running `zipp ingest`: whatever was committed is whole months, and a rerun
completes the lake as if nothing had happened."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, all_tables, table_hash

from zipp import lake as lakeio

pytestmark = [pytest.mark.slow, pytest.mark.spark]


def test_killed_ingest_leaves_whole_months_and_a_rerun_completes(tmp_path, etl_cli):
    from zipp.config import GenerateConfig
    from zipp.generate import generate_dump

    dump, lake, runs = tmp_path / "dump", tmp_path / "lake", tmp_path / "runs"
    generate_dump(GenerateConfig(users=2000, months="2016-01:2016-04", bad_rate=0.005, images=False, seed=3), dump)
    truth = json.loads((dump / "truth" / "manifest.json").read_text())["files"]
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable)
    cmd = [sys.executable, "-m", "zipp.cli", "--conf-dir", str(REPO / "conf"), "ingest", "--input", str(dump),
           "--lake", str(lake), f"paths.runs={runs}", "etl.chunk_bytes=262144", "etl.gates=false"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:  # kill it once bronze is committed, in the middle of silver/gold
        deadline = time.time() + 300
        while time.time() < deadline and not (lake / "silver" / "comments" / "_delta_log").exists():
            if proc.poll() is not None:
                pytest.fail("ingest ended before it could be killed")
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    # every committed bronze month holds complete files
    for t in ("bronze/comments", "bronze/submissions"):
        if not lakeio.exists(lake, t):
            continue
        b = lakeio.read_arrow(lake, t, columns=["source_file"]).column("source_file").to_pylist()
        q = lakeio.read_arrow(lake, "quarantine", columns=["source_file"]).column("source_file").to_pylist()
        for name in set(b):
            assert b.count(name) + q.count(name) == truth[name]["total_lines"], name
    # rerun: complete and stable
    code, out = etl_cli("ingest", "--input", dump, "--lake", lake, f"paths.runs={runs}", "etl.gates=true")
    assert code == 0, out
    first = {t: table_hash(lake, t) for t in all_tables(lake) if not t.startswith("_etl")}
    code, out = etl_cli("ingest", "--input", dump, "--lake", lake, f"paths.runs={runs}", "etl.gates=false")
    assert code == 0, out
    assert {t: table_hash(lake, t) for t in first} == first
    leftovers = list(Path(lake, "_staging").glob("*"))
    assert all(time.time() - p.stat().st_mtime < 3600 for p in leftovers)  # only the killed run's, cleaned after a day
