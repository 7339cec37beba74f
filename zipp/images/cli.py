"""`zipp embed-images`: gold/user_images -> fetched, CLIP-embedded gold/image_embeddings."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("embed-images")
    def embed_images(
        ctx: typer.Context,
        lake: str | None = typer.Option(None, "--lake", help="Lake root (default: paths.lake)."),
        run: str = typer.Option("embed-images", "--run", help="Run name: stats go to paths.runs/RUN/stats/."),
        overrides: list[str] | None = typer.Argument(None, help="key=value overrides, e.g. images.workers=32 images.mirror_dir=work/dump/images"),
    ) -> None:
        """Download every gold/user_images URL (retries, timeouts, size cap, per-host rate limit) into
        the content-addressed cache, embed the images with open_clip on Ray Data actors, and upsert
        gold/image_embeddings. Reruns only redo missing, failed or other-model rows."""
        from rich.console import Console

        from zipp.cli_common import load_cli_config, open_context
        from zipp.images.stage import EmbedImagesStage
        from zipp.stage import run_stage

        cfg = load_cli_config(ctx, overrides, **{"paths.lake": lake})
        with open_context(cfg, run, "embed-images") as sctx:
            res = run_stage(EmbedImagesStage(cfg.images), sctx)
        console = Console(stderr=True)
        drops = ", ".join(f"{k}={v}" for k, v in sorted(res.drops.items())) or "none"
        console.print(
            f"[green]embed-images:[/green] {res.rows_in} (url, user) rows, {res.rows_out} written, "
            f"{res.extra.get('up_to_date', 0)} already up to date; failed: {drops}; model {res.extra['model_id']}"
        )
