"""Quality gates with great-expectations 1.x, as code.

Spark computes a small *facts* frame per layer (one row per file or per month, or one row of
totals) in a single aggregation; each suite validates its frame with GX's pandas engine (~0.1 s,
where a GX Spark validation takes ~18 s per suite here) and renders GX's HTML page to
``<run_dir>/quality/<suite>.html``. A failed suite raises :class:`QualityGateError` naming each
failed expectation and the rows that broke it; tables committed before the gate stay as they are.

Suites: ``bronze`` (per file: quarantine rate, created_utc inside month +- slack, lines reconcile;
per month: non-null keys), ``silver`` (per kind and month: unique ids, user_key set for every live
author, created_utc inside month +- slack), ``gold`` (monthly rows = eligible silver rows per kind;
edges = sum of their monthly rows; ids unique and non-null).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from pyspark.sql import SparkSession

    from zipp.etl.bronze import BronzeResult

log = logging.getLogger(__name__)


class QualityGateError(RuntimeError):
    def __init__(self, suite: str, failures: list[str], report: Path):
        self.suite, self.failures, self.report = suite, failures, report
        msg = f"quality gate '{suite}' failed ({len(failures)} expectation(s)); report: {report}\n" + "\n".join(
            f"  - {f}" for f in failures)
        super().__init__(msg)


@dataclass
class Check:
    """One expectation over a facts column: ``low <= column <= high`` (or ``column == other``)."""

    column: str
    low: float | None = None
    high: float | None = None
    equals: str | None = None
    meaning: str = ""

    def expectation(self):
        import great_expectations.expectations as gxe

        if self.equals:
            return gxe.ExpectColumnPairValuesToBeEqual(column_A=self.column, column_B=self.equals, meta={"meaning": self.meaning})
        return gxe.ExpectColumnValuesToBeBetween(column=self.column, min_value=self.low, max_value=self.high,
                                                 meta={"meaning": self.meaning})


_CTX: dict[str, Any] = {}


def _context():
    if "ctx" not in _CTX:
        logging.getLogger("great_expectations").setLevel(logging.WARNING)  # its import logs at INFO
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        ctx = gx.get_context(mode="ephemeral")
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        _CTX["ctx"] = ctx
        _CTX["batch"] = ctx.data_sources.add_pandas("zipp_facts").add_dataframe_asset("facts").add_batch_definition_whole_dataframe("all")
    return _CTX["ctx"], _CTX["batch"]


def validate(suite_name: str, facts: "pd.DataFrame", checks: list[Check], key: str, report_dir: Path) -> dict:
    """Validate ``facts`` with ``checks``; write the HTML report; raise QualityGateError on failure."""
    import great_expectations as gx
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    ctx, batch_def = _context()
    name = f"{suite_name}-{len(ctx.suites.all())}"
    suite = ctx.suites.add(gx.ExpectationSuite(name=name, meta={"zipp_suite": suite_name}))
    for c in checks:
        suite.add_expectation(c.expectation())
    result = batch_def.get_batch(batch_parameters={"dataframe": facts}).validate(
        suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [key]})
    report_dir.mkdir(parents=True, exist_ok=True)
    report = report_dir / f"{suite_name}.html"
    report.write_text(DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(result)))
    (report_dir / f"{suite_name}.facts.csv").write_text(facts.to_csv(index=False))
    failures = []
    for r, c in zip(result.results, checks):
        if not r.success:
            rows = [str(x.get(key)) for x in (r.result.get("unexpected_index_list") or [])][:10]
            what = f"{c.column} == {c.equals}" if c.equals else f"{c.low} <= {c.column} <= {c.high}"
            failures.append(f"{c.meaning or what} [{what}] broken by {key} in {rows}")
    log.info("gate %s: %d expectations on %d rows, %s", suite_name, len(checks), len(facts), "OK" if result.success else "FAILED")
    if failures:
        raise QualityGateError(suite_name, failures, report)
    return {"suite": suite_name, "success": True, "report": str(report), "rows": len(facts)}


# ----------------------------------------------------------------------------- facts + suites


def _month_bounds_sql(slack_days: int) -> tuple[str, str]:
    lo = f"to_timestamp(concat(month, '-01')) - INTERVAL {slack_days} DAYS"
    hi = f"add_months(to_timestamp(concat(month, '-01')), 1) + INTERVAL {slack_days} DAYS"
    return lo, hi


def gate_bronze(etl, bronze: "BronzeResult", report_dir: Path) -> dict:
    """Per file facts come from the parse tasks (counted on the Arrow tables they wrote)."""
    import pandas as pd

    facts = pd.DataFrame([{
        "key": f.source_file, "lines": f.lines, "accounted": f.bronze_rows + f.quarantine_rows,
        "quarantine_rate": f.quarantine_rate, "out_of_month_rate": (f.out_of_month / f.bronze_rows) if f.bronze_rows else 0.0,
        "null_keys": f.null_keys,
    } for f in bronze.files])
    if facts.empty:
        return {"suite": "bronze", "success": True, "rows": 0}
    return validate("bronze", facts, [
        Check("lines", equals="accounted", meaning="every line is a bronze row or a quarantine row"),
        Check("quarantine_rate", 0.0, etl.quarantine_max_rate, meaning=f"quarantine rate <= etl.quarantine_max_rate={etl.quarantine_max_rate}"),
        Check("out_of_month_rate", 0.0, etl.out_of_month_max_rate,
              meaning=f"created_utc within the file's month +- {etl.month_slack_days} days for all but "
                      f"etl.out_of_month_max_rate={etl.out_of_month_max_rate} of rows (a file named for another month?)"),
        Check("null_keys", 0, 0, meaning="id, author, subreddit, created_utc are never null in bronze"),
    ], "key", report_dir)


def gate_silver(etl, facts_by_kind: dict[str, list[dict]], report_dir: Path) -> dict:
    import pandas as pd

    rows = [{"key": f"{kind}:{r['month']}", "duplicate_ids": r["rows"] - r["ids"], "missing_user_key": r["missing_user_key"],
             "out_of_month_rate": (r["out_of_month"] / r["rows"]) if r["rows"] else 0.0}
            for kind, facts in facts_by_kind.items() for r in facts]
    if not rows:
        return {"suite": "silver", "success": True, "rows": 0}
    return validate("silver", pd.DataFrame(rows), [
        Check("duplicate_ids", 0, 0, meaning="ids are unique in silver (per month)"),
        Check("missing_user_key", 0, 0, meaning="every non-deleted author has a user_key"),
        Check("out_of_month_rate", 0.0, etl.out_of_month_max_rate, meaning="created_utc within the file's month +- slack"),
    ], "key", report_dir)


def gate_gold(spark: "SparkSession", lake: str | Path, months: list[str], silver: dict[str, list[dict]], gold: dict,
              report_dir: Path) -> dict:
    """``silver``: the silver facts per kind (their ``eligible`` counts are what gold must hold);
    ``gold``: build_gold's counts, whose ``expected_edges`` / ``expected_interactions`` the gold tasks
    summed over every pair's monthly rows (so the check needs no shuffle of the whole history)."""
    import pandas as pd
    import pyarrow.compute as pc
    from pyspark.sql import functions as F

    from zipp import lake as lakeio
    from zipp.etl.delta import read_table
    from zipp.etl.schemas import GOLD_PAIR_MONTHS
    from zipp.tables import GOLD_EDGES, GOLD_EDGES_SCHEMA

    pm_months = lakeio.read_arrow(lake, GOLD_PAIR_MONTHS, columns=["month", "n_comments", "n_submissions"],
                                  filters=[("month", "in", months)]) if lakeio.exists(lake, GOLD_PAIR_MONTHS) else None
    rows = []
    for kind, col in (("comments", "n_comments"), ("submissions", "n_submissions")):
        for r in silver.get(kind, []):
            got = 0
            if pm_months is not None:
                got = pc.sum(pm_months.filter(pc.equal(pm_months.column("month"), r["month"])).column(col)).as_py() or 0
            rows.append({"key": f"{kind}:{r['month']}", "expected": r["eligible"], "actual": int(got),
                         "duplicate_edges": 0, "null_ids": 0})
    edges = read_table(spark, lake, GOLD_EDGES, GOLD_EDGES_SCHEMA)
    e = edges.agg(F.count(F.lit(1)).alias("n"), F.countDistinct("user_id", "subreddit_id").alias("d"),
                  F.sum((F.col("user_id").isNull() | F.col("subreddit_id").isNull()).cast("long")).alias("nulls"),
                  F.sum(F.col("n_comments") + F.col("n_submissions")).alias("interactions")).first()
    rows.append({"key": "edges:rows", "expected": int(gold["expected_edges"]), "actual": int(e["n"] or 0),
                 "duplicate_edges": int(e["n"] or 0) - int(e["d"] or 0), "null_ids": int(e["nulls"] or 0)})
    rows.append({"key": "edges:interactions", "expected": int(gold["expected_interactions"]), "actual": int(e["interactions"] or 0),
                 "duplicate_edges": 0, "null_ids": 0})
    return validate("gold", pd.DataFrame(rows), [
        Check("actual", equals="expected", meaning="gold agrees with silver (monthly rows = eligible silver rows) "
                                                   "and with itself (edges = sum of monthly rows)"),
        Check("duplicate_edges", 0, 0, meaning="one edge per (user_id, subreddit_id)"),
        Check("null_ids", 0, 0, meaning="every edge has a user_id and a subreddit_id"),
    ], "key", report_dir)
