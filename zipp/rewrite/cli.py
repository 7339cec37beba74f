"""`zipp rewrite`."""

from __future__ import annotations

from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("rewrite")
    def rewrite(
        ctx: typer.Context,
        lake: Optional[str] = typer.Option(None, "--lake", help="Lake root (default: paths.lake)."),
        run: str = typer.Option("default", "--run", help="Run folder for stats."),
        overrides: Optional[List[str]] = typer.Argument(None, help="key=value overrides, e.g. rewrite.shots=3 rewrite.backend=llm"),
    ) -> None:
        """Rewrite base prompts for each user's latest persona (template or LLM; 0-shot or k-shot) into gold/rewritten_prompts."""
        from zipp.cli_common import run_one_stage
        from zipp.rewrite.stage import RewriteStage

        res, _ = run_one_stage(ctx, RewriteStage, run, overrides, **{"paths.lake": lake})
        typer.echo(f"rewrite: {res.rows_out} prompts rewritten for {res.extra.get('users', 0)} users; drops {res.drops or 'none'}")
