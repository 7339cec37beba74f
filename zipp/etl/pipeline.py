"""An ETL run end to end: plan -> bronze (+gate) -> silver (+gate) -> gold (+gate) -> manifests.

Used by the CLI (``zipp ingest`` / ``zipp nightly``) and by the pipeline stages; each layer is a
:class:`zipp.stage.Stage` so ``run_stage`` writes its stats JSON and logs its one line.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from zipp.config import ZippConfig, parse_month_range

log = logging.getLogger("zipp.etl")


def new_run_id(command: str, now: datetime) -> str:
    return f"{command}-{now.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(2)}"


@dataclass
class EtlState:
    """What the layer stages of one run share: the plan, and each layer's outcome."""

    cfg: ZippConfig
    command: str  # ingest | nightly | run
    input_dir: Path
    lake: Path
    run_id: str = ""
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    plan: Any = None  # manifest.Plan
    ingested_at: dict[str, int] = field(default_factory=dict)
    bronze: Any = None  # bronze.BronzeResult
    silver: dict = field(default_factory=dict)
    silver_months: list[str] = field(default_factory=list)  # created months rebuilt in silver and gold
    gold: dict = field(default_factory=dict)
    gates: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    status: str = "running"
    error: str | None = None

    def __post_init__(self) -> None:
        self.run_id = self.run_id or new_run_id(self.command, self.started)

    @property
    def stage_root(self) -> Path:
        base = Path(self.cfg.etl.staging) if self.cfg.etl.staging else self.lake / "_staging"
        return base / self.run_id

    def make_plan(self) -> Any:
        from zipp.etl import manifest
        from zipp.etl.sources import discover

        if self.plan is None:
            wanted = parse_month_range(self.cfg.etl.months) if self.cfg.etl.months else None
            found, skipped = discover(self.input_dir, wanted)
            self.plan = manifest.plan(found, self.lake, nightly=self.command != "ingest", wanted_months=wanted)
            self.plan.skipped_names = skipped
            self.ingested_at = manifest.ingested_at_us(self.plan, self.lake, self.started)
            _clean_stale_staging(self.stage_root.parent)
        return self.plan

    def summary(self) -> dict:
        plan = self.plan
        out: dict[str, Any] = {
            "run_id": self.run_id, "command": self.command, "status": self.status, "error": self.error,
            "input": str(self.input_dir), "lake": str(self.lake), "started_at": self.started.isoformat(),
            "months": plan.months if plan else [], "timings_s": self.timings, "gates": self.gates,
        }
        if plan:
            out["files_considered"] = {d.file.rel: d.status for d in plan.decisions}
            out["unrecognised_names"] = plan.skipped_names
            out["missing_months"] = plan.missing_months
        if self.bronze:
            b = self.bronze
            out["bronze"] = {
                "lines": b.lines, "bronze_rows": b.bronze_rows, "quarantine_rows": b.quarantine_rows,
                "bytes": b.bytes, "reasons": b.reasons(), "versions": b.versions,
                "files": [{
                    "source_file": f.source_file, "kind": f.kind, "month": f.month, "lines": f.lines,
                    "bronze_rows": f.bronze_rows, "quarantine_rows": f.quarantine_rows, "reasons": f.reasons,
                    "out_of_month": f.out_of_month, "truncated": f.truncated, "empty": f.lines == 0,
                    "split_wait_s": f.split_wait_s,
                } for f in b.files],
            }
        out["silver_months"] = self.silver_months
        if self.silver:
            out["silver"] = {k: {a: b for a, b in v.items() if a != "facts"} for k, v in self.silver["kinds"].items()}
            out["silver_step_seconds"] = self.silver["step_seconds"]
        out["gold"] = self.gold
        return out


def _clean_stale_staging(root: Path, max_age_s: float = 24 * 3600) -> None:
    """Staging folders of runs killed long ago (their files were never committed)."""
    if not root.is_dir():
        return
    now = time.time()
    for p in root.iterdir():
        try:
            if p.is_dir() and now - p.stat().st_mtime > max_age_s:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def finish(state: EtlState, run_dir: Path) -> dict:
    """Write the run manifest (JSON in the run folder + a row in ``_etl/runs``) and, when the run
    succeeded, the file manifest; remove the run's staging folder."""
    from zipp.etl import manifest

    summary = state.summary()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "manifest.json").write_text(json.dumps(summary, indent=2, default=str))
    if state.plan is not None and state.bronze is not None:
        status = "ok" if state.status == "ok" else "failed_gate" if state.status == "failed_gate" else None
        if status:
            manifest.record_files(state.lake, state.plan, state.bronze.files, status, state.run_id,
                                  datetime.now(timezone.utc), state.ingested_at)
    if state.plan is not None and (state.plan.months or state.status != "ok"):
        manifest.record_run(state.lake, state.run_id, state.command, state.started, state.status, state.plan.months, summary)
    shutil.rmtree(state.stage_root, ignore_errors=True)
    return summary
