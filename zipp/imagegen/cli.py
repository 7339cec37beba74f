"""`zipp generate-images`."""

from __future__ import annotations

import typer


def _stage():
    from zipp.imagegen.stage import GenerateImagesStage

    return GenerateImagesStage


def register(app: typer.Typer) -> None:
    from zipp.cli_common import register_stage_command

    register_stage_command(
        app, "generate-images", _stage,
        "Render base and personalized images for gold/rewritten_prompts with the frozen diffusion model on "
        "Ray Data (e.g. imagegen.model=/models/sd imagegen.steps=30).",
        lambda res, _: f"generate-images: {res.rows_out} image rows ({res.extra.get('images_rendered', 0)} rendered) with {res.extra.get('model_id')}",
    )
