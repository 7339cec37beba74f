"""``zipp generate-dump``: write a synthetic Reddit dump (see :mod:`zipp.generate`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("generate-dump")
    def generate_dump_cmd(
        ctx: typer.Context,
        out: Path = typer.Option(..., "--out", help="Output folder for RC_/RS_ files, prompts.parquet and truth/."),
        users: int | None = typer.Option(None, "--users", help="Number of persona users (generate.users)."),
        months: str | None = typer.Option(None, "--months", help="YYYY-MM or YYYY-MM:YYYY-MM (generate.months)."),
        seed: int | None = typer.Option(None, "--seed", help="Random seed (generate.seed)."),
        bad_rate: float | None = typer.Option(None, "--bad-rate", help="Share of malformed lines (generate.bad_rate)."),
        images: Path | None = typer.Option(None, "--images", help="Where the image mirror goes (default OUT/images; implies images on)."),
        fmt: str | None = typer.Option(None, "--format", help="pushshift or arctic (generate.format)."),
        overrides: list[str] | None = typer.Argument(None, help="key=value config overrides, e.g. generate.duplicate_rate=0.02"),
    ) -> None:
        """Generate a synthetic Pushshift/Arctic-Shift style dump with planted personas and ground truth."""
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        from zipp.config import ConfigError, load_config
        from zipp.generate import estimate_lines, generate_dump

        explicit = {"generate.users": users, "generate.months": months, "generate.seed": seed, "generate.bad_rate": bad_rate,
                    "generate.format": fmt, "generate.images": True if images is not None else None}
        console = Console(stderr=True)
        try:
            try:
                from zipp.cli_common import load_cli_config
            except ImportError:
                load_cli_config = None
            if load_cli_config is not None:
                cfg = load_cli_config(ctx, overrides, **explicit)
            else:
                extra = [f"{k}={json.dumps(v) if not isinstance(v, bool) else str(v).lower()}" for k, v in explicit.items() if v is not None]
                cfg = load_config(overrides=list(overrides or []) + extra)
        except ConfigError as e:
            console.print(f"[red]{e}[/red]")
            raise typer.Exit(2)
        g = cfg.generate
        total = max(1, estimate_lines(g))
        with Progress(TextColumn("[bold]generate-dump[/bold]"), BarColumn(), MofNCompleteColumn(), TextColumn("lines"),
                      TimeElapsedColumn(), console=console, transient=False) as bar:
            task = bar.add_task("lines", total=total)
            done = [0]

            def advance(n: int) -> None:
                done[0] += n
                if done[0] > total:
                    bar.update(task, total=done[0])
                bar.advance(task, n)

            summary = generate_dump(g, out, images_dir=images, progress=advance)
            bar.update(task, total=done[0], completed=done[0])
        console.print(f"wrote {summary['total_lines']:,} lines in {len(summary['files'])} files to {out} "
                      f"({summary['lines_per_s']:,} lines/s); truth in {Path(out) / 'truth'}")
        typer.echo(json.dumps(summary, indent=2))
