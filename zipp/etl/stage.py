"""Pipeline stages of the ETL. ``BronzeStage`` / ``SilverStage`` / ``GoldStage`` share an
:class:`~zipp.etl.pipeline.EtlState` (plan and outcomes) and each runs its quality gate after its
commit; :class:`IngestStage` is the three in one for the main job (``zipp run``): it reads
``paths.dump``, writes ``paths.lake`` and, like ``zipp nightly``, rebuilds only new or changed months.
"""

from __future__ import annotations

import time
from pathlib import Path

from zipp.etl.pipeline import EtlState, finish
from zipp.stage import Resources, Stage, StageContext, StageResult


def _state_for(ctx: StageContext, command: str) -> EtlState:
    return EtlState(cfg=ctx.cfg, command=command, input_dir=Path(ctx.cfg.paths.dump), lake=Path(ctx.cfg.paths.lake))


class BronzeStage(Stage):
    """Dump files of the planned months -> bronze/comments, bronze/submissions, quarantine."""

    name = "etl_bronze"
    resources = Resources(cpus=2, memory_gb=2)

    def __init__(self, state: EtlState):
        self.state = state

    def run(self, ctx: StageContext) -> StageResult:
        from zipp.etl.bronze import run_bronze
        from zipp.etl.quality import gate_bronze

        st = self.state
        plan = st.make_plan()
        t0 = time.perf_counter()
        spark = ctx.runtime.spark
        st.bronze = run_bronze(spark, st.lake, st.cfg.etl, plan.files, plan.months, run_id=st.run_id,
                               stage_root=st.stage_root, ingested_at=st.ingested_at)
        st.timings["bronze"] = round(time.perf_counter() - t0, 2)
        b = st.bronze
        res = StageResult(rows_in=b.lines, rows_out=b.bronze_rows, drops=dict(b.reasons()),
                          extra={"months": plan.months, "files": len(plan.files), "bytes": b.bytes,
                                 "quarantine_rows": b.quarantine_rows,
                                 "empty_files": [f.source_file for f in b.files if f.lines == 0],
                                 "truncated_files": [f.source_file for f in b.files if f.truncated]})
        if st.cfg.etl.gates and plan.months:
            st.gates["bronze"] = gate_bronze(st.cfg.etl, b, ctx.run_dir / "quality")
        return res


class SilverStage(Stage):
    name = "etl_silver"
    resources = Resources(cpus=2, memory_gb=2)

    def __init__(self, state: EtlState):
        self.state = state

    def run(self, ctx: StageContext) -> StageResult:
        from zipp.etl.quality import gate_silver
        from zipp.etl.silver import build_silver, plan_silver
        from zipp.identity import resolve_salt

        st = self.state
        file_months = st.make_plan().months
        if not file_months or st.bronze is None:
            return StageResult(extra={"months": []})
        t0 = time.perf_counter()
        spark = ctx.runtime.spark
        created: dict[tuple[str, str], dict[str, int]] = {}
        for f in st.bronze.files:
            acc = created.setdefault((f.kind, f.month), {})
            for m, n in f.created_months.items():
                acc[m] = acc.get(m, 0) + n
        plan = plan_silver(st.lake, file_months, created)
        st.silver_months = plan.months
        st.silver = build_silver(spark, st.lake, st.cfg.etl, plan, run_id=st.run_id, stage_root=st.stage_root,
                                 salt=resolve_salt(st.cfg.etl))
        months = plan.months
        st.timings["silver"] = round(time.perf_counter() - t0, 2)
        kinds = st.silver["kinds"]
        rows_in = sum(v["bronze_rows"] for v in kinds.values())
        rows_out = sum(v["rows"] for v in kinds.values())
        res = StageResult(rows_in=rows_in, rows_out=rows_out, drops={"duplicate_id": rows_in - rows_out},
                          extra={"months": months, "step_seconds": st.silver["step_seconds"],
                                 **{k: {a: b for a, b in v.items() if a != "facts"} for k, v in kinds.items()}})
        if st.cfg.etl.gates:
            st.gates["silver"] = gate_silver(st.cfg.etl, {k: v["facts"] for k, v in kinds.items()}, ctx.run_dir / "quality")
        return res


class GoldStage(Stage):
    name = "etl_gold"
    resources = Resources(cpus=2, memory_gb=2)

    def __init__(self, state: EtlState):
        self.state = state

    def run(self, ctx: StageContext) -> StageResult:
        from zipp.etl.gold import build_gold
        from zipp.etl.quality import gate_gold
        from zipp.tables import GOLD_EDGES

        st = self.state
        months = st.silver_months
        if not months:
            return StageResult(extra={"months": []})
        t0 = time.perf_counter()
        spark = ctx.runtime.spark
        st.gold = build_gold(spark, st.lake, st.cfg.etl, months, run_id=st.run_id, stage_root=st.stage_root,
                             partials=st.silver["gold_partials"])
        st.timings["gold"] = round(time.perf_counter() - t0, 2)
        silver_rows = sum(v["rows"] for v in st.silver["kinds"].values())
        res = StageResult(rows_in=silver_rows, rows_out=st.gold.get(GOLD_EDGES, 0), extra={"months": months, **st.gold})
        if st.cfg.etl.gates:
            facts = {k: v["facts"] for k, v in st.silver["kinds"].items()}
            st.gates["gold"] = gate_gold(spark, st.lake, months, facts, st.gold, ctx.run_dir / "quality")
        return res


def layer_stages(state: EtlState) -> list[Stage]:
    return [BronzeStage(state), SilverStage(state), GoldStage(state)]


def run_etl(state: EtlState, ctx: StageContext) -> dict:
    """Run the three layers, then always write the run manifest; re-raises a failed gate."""
    from zipp.etl.quality import QualityGateError
    from zipp.stage import run_stage

    try:
        for stage in layer_stages(state):
            run_stage(stage, ctx)
        state.status = "ok"
    except QualityGateError as e:
        state.status, state.error = "failed_gate", str(e)
        raise
    except BaseException as e:
        state.status, state.error = "failed", f"{type(e).__name__}: {e}"
        raise
    finally:
        finish(state, ctx.run_dir)
    return state.summary()


class IngestStage(Stage):
    """Main-job stage: ``paths.dump`` -> ``paths.lake``, rebuilding only months that are new or changed
    (all of them on the first run). rows_in = lines read, rows_out = bronze rows, drops = quarantine reasons."""

    name = "etl_ingest"
    resources = Resources(cpus=2, memory_gb=4)

    def run(self, ctx: StageContext) -> StageResult:
        state = _state_for(ctx, "nightly")
        run_etl(state, ctx)
        b = state.bronze
        if b is None:
            return StageResult(extra={"months": []})
        return StageResult(rows_in=b.lines, rows_out=b.bronze_rows, drops=dict(b.reasons()),
                           extra={"months": state.plan.months, "silver": state.silver, "gold": state.gold,
                                  "run_id": state.run_id})
