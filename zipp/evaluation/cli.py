"""`zipp evaluate`."""

from __future__ import annotations

import typer


def _stage():
    from zipp.evaluation.stage import EvaluateStage

    return EvaluateStage


def register(app: typer.Typer) -> None:
    from zipp.cli_common import register_stage_command

    register_stage_command(
        app, "evaluate", _stage,
        "CLIPScore, CLIP-judge win rate + binomial test, IPF to UN WPP, CMMD, persona accuracy -> <runs>/<run>/report.{json,md}.",
        lambda res, run_dir: (run_dir / "report.md").read_text(),
    )
