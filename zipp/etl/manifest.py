"""What has been ingested: the file manifest (``_etl/files``: size, mtime, sha256 and counts of every
ingested file) and the run log (``_etl/runs``). Nightly planning compares the input folder with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from zipp import lake as lakeio
from zipp.etl.schemas import ETL_FILES, ETL_FILES_SCHEMA, ETL_RUNS, ETL_RUNS_SCHEMA
from zipp.etl.sources import SourceFile


def load_files(lake: str | Path) -> dict[str, dict]:
    if not lakeio.exists(lake, ETL_FILES):
        return {}
    return {r["source_file"]: r for r in lakeio.read_arrow(lake, ETL_FILES).to_pylist()}


@dataclass
class FileDecision:
    file: SourceFile
    status: str  # new | changed | failed_before | unchanged | forced
    sha256: str | None = None


@dataclass
class Plan:
    """Months to (re)build and the files they hold; ``decisions`` says why, file by file."""

    months: list[str]
    files: list[SourceFile]
    decisions: list[FileDecision] = field(default_factory=list)
    skipped_names: list[str] = field(default_factory=list)
    missing_months: list[str] = field(default_factory=list)  # asked for, no file found

    def sha(self, rel: str) -> str | None:
        for d in self.decisions:
            if d.file.rel == rel:
                return d.sha256
        return None


def plan(found: list[SourceFile], lake: str | Path, *, nightly: bool, wanted_months: list[str] | None = None) -> Plan:
    """ingest (nightly=False): every month found (within ``wanted_months``) is rebuilt.
    nightly: only months with a new or changed file (size or mtime differ and the sha256 too) or a
    file whose last run failed its gates."""
    known = load_files(lake)
    decisions = []
    for f in found:
        m = known.get(f.rel)
        if not nightly:
            decisions.append(FileDecision(f, "forced", f.sha256()))
        elif m is None:
            decisions.append(FileDecision(f, "new", f.sha256()))
        elif m["status"] != "ok":
            decisions.append(FileDecision(f, "failed_before", f.sha256()))
        elif m["size"] == f.size and m["mtime_ns"] == f.mtime_ns:
            decisions.append(FileDecision(f, "unchanged", m["sha256"]))
        else:
            sha = f.sha256()
            decisions.append(FileDecision(f, "unchanged" if sha == m["sha256"] and m["size"] == f.size else "changed", sha))
    months = sorted({d.file.month for d in decisions if d.status != "unchanged"})
    files = [f for f in found if f.month in months]
    for d in decisions:  # every file of a month that is rebuilt needs its hash for the manifest
        if d.file.month in months and d.sha256 is None:
            d.sha256 = d.file.sha256()
    missing = sorted(set(wanted_months or []) - {f.month for f in found})
    return Plan(months=months, files=files, decisions=decisions, missing_months=missing)


def ingested_at_us(plan_: Plan, lake: str | Path, now: datetime) -> dict[str, int]:
    """Per file: when this exact content was first ingested (a rerun of an unchanged file keeps the
    value, so reruns write identical rows), else now."""
    known = load_files(lake)
    now_us = int(now.timestamp() * 1_000_000)
    out = {}
    for f in plan_.files:
        m = known.get(f.rel)
        if m is not None and m["sha256"] == plan_.sha(f.rel) and m["first_ingested_at"] is not None:
            out[f.rel] = int(m["first_ingested_at"].timestamp() * 1_000_000)
        else:
            out[f.rel] = now_us
    return out


def record_files(lake: str | Path, plan_: Plan, file_stats: list, status: str, run_id: str, now: datetime,
                 ingested_at: dict[str, int]) -> None:
    known = load_files(lake)
    for s in file_stats:
        f = next(x for x in plan_.files if x.rel == s.source_file)
        first = datetime.fromtimestamp(ingested_at[f.rel] / 1e6, timezone.utc)
        known[f.rel] = {
            "source_file": f.rel, "kind": f.kind, "month": f.month, "size": f.size, "mtime_ns": f.mtime_ns,
            "sha256": plan_.sha(f.rel), "lines": s.lines, "bronze_rows": s.bronze_rows,
            "quarantine_rows": s.quarantine_rows, "truncated": s.truncated, "status": status,
            "first_ingested_at": first, "ingested_at": now, "run_id": run_id,
        }
    for d in plan_.decisions:  # unchanged content with a new mtime: remember the new mtime
        m = known.get(d.file.rel)
        if d.status == "unchanged" and m is not None and m["mtime_ns"] != d.file.mtime_ns:
            m["mtime_ns"] = d.file.mtime_ns
    rows = sorted(known.values(), key=lambda r: r["source_file"])
    lakeio.write_arrow(lake, ETL_FILES, pa.Table.from_pylist(rows, schema=ETL_FILES_SCHEMA))


def record_run(lake: str | Path, run_id: str, command: str, started: datetime, status: str, months: list[str],
               summary: dict) -> None:
    row = {"run_id": run_id, "command": command, "started_at": started, "finished_at": datetime.now(timezone.utc),
           "status": status, "months": months, "summary_json": json.dumps(summary, default=str)}
    lakeio.write_arrow(lake, ETL_RUNS, pa.Table.from_pylist([row], schema=ETL_RUNS_SCHEMA),
                       mode="append" if lakeio.exists(lake, ETL_RUNS) else "overwrite")
