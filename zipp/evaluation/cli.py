"""`zipp evaluate`."""

from __future__ import annotations

from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate(
        ctx: typer.Context,
        lake: Optional[str] = typer.Option(None, "--lake", help="Lake root (default: paths.lake)."),
        run: str = typer.Option("default", "--run", help="Run folder: the report goes to <runs>/<run>/report.{json,md}."),
        overrides: Optional[List[str]] = typer.Argument(None, help="key=value overrides"),
    ) -> None:
        """CLIPScore, CLIP-judge win rate + binomial test, IPF to UN WPP, CMMD, persona accuracy -> report."""
        from zipp.cli_common import run_one_stage
        from zipp.evaluation.stage import EvaluateStage

        res, run_dir = run_one_stage(ctx, EvaluateStage, run, overrides, **{"paths.lake": lake})
        typer.echo((run_dir / "report.md").read_text())
