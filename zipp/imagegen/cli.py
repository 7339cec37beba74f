"""`zipp generate-images`."""

from __future__ import annotations

from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("generate-images")
    def generate_images(
        ctx: typer.Context,
        lake: Optional[str] = typer.Option(None, "--lake", help="Lake root (default: paths.lake)."),
        run: str = typer.Option("default", "--run", help="Run folder for stats."),
        overrides: Optional[List[str]] = typer.Argument(None, help="key=value overrides, e.g. imagegen.model=/models/sd imagegen.steps=30"),
    ) -> None:
        """Render base and personalized images for gold/rewritten_prompts with the frozen diffusion model (Ray Data)."""
        from zipp.cli_common import run_one_stage
        from zipp.imagegen.stage import GenerateImagesStage

        res, _ = run_one_stage(ctx, GenerateImagesStage, run, overrides, **{"paths.lake": lake})
        typer.echo(f"generate-images: {res.rows_out} image rows ({res.extra.get('images_rendered', 0)} rendered) with {res.extra.get('model_id')}")
