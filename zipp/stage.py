"""The one interface every pipeline step implements.

A stage has a ``name``, declared ``resources``, an optional ``setup()`` where heavy models load
once per worker, and a retry-safe ``run(ctx)`` that returns a :class:`StageResult` with rows in/out
and drops by reason. :func:`run_stage` adds timing, writes ``<run_dir>/stats/<name>.json`` and logs
one line per stage; stages never time or log their own totals.
"""

from __future__ import annotations

import json
import logging
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, Sequence

from zipp.config import ZippConfig
from zipp.runtime import Runtime

log = logging.getLogger("zipp.stage")


@dataclass(frozen=True)
class Resources:
    cpus: float = 1.0
    gpus: float = 0.0
    memory_gb: float = 0.0


@dataclass
class StageResult:
    rows_in: int = 0
    rows_out: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def drop(self, reason: str, n: int = 1) -> None:
        if n:
            self.drops[reason] = self.drops.get(reason, 0) + int(n)


@dataclass
class StageContext:
    cfg: ZippConfig
    run_dir: Path
    runtime: Runtime

    @property
    def lake(self) -> Path:
        return Path(self.cfg.paths.lake)


class Stage(ABC):
    name: ClassVar[str]
    resources: ClassVar[Resources] = Resources()

    def setup(self, ctx: StageContext) -> None:
        """Load heavy things (models, tokenizers) once per worker. Default: nothing."""

    @abstractmethod
    def run(self, ctx: StageContext) -> StageResult:
        """Do the work. Must be retry-safe: a rerun after a crash gives the same tables."""


def _fmt_drops(drops: dict[str, int]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(drops.items())) or "none"


def run_stage(stage: Stage, ctx: StageContext) -> StageResult:
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    stage.setup(ctx)
    result = stage.run(ctx)
    secs = time.perf_counter() - t0
    stats_dir = ctx.run_dir / "stats"
    stats_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "stage": stage.name,
        "resources": asdict(stage.resources),
        "started_at": started.isoformat(),
        "seconds": round(secs, 3),
        **asdict(result),
    }
    (stats_dir / f"{stage.name}.json").write_text(json.dumps(record, indent=2, default=str))
    log.info(
        "stage=%s rows_in=%d rows_out=%d drops=%s secs=%.1f",
        stage.name, result.rows_in, result.rows_out, _fmt_drops(result.drops), secs,
    )
    return result


def run_pipeline(stages: Sequence[Stage], ctx: StageContext) -> dict[str, StageResult]:
    """Run stages in order; each stage's own idempotence makes a rerun resume cheaply."""
    results: dict[str, StageResult] = {}
    for stage in stages:
        results[stage.name] = run_stage(stage, ctx)
    return results
