"""``zipp ingest``, ``zipp nightly``, ``zipp forget``. Heavy imports stay inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def _print_summary(summary: dict) -> None:
    echo = typer.echo
    echo(f"run {summary['run_id']} ({summary['command']}): {summary['status']}")
    echo(f"  months: {', '.join(summary.get('months') or []) or 'none (nothing new or changed)'}")
    for rel, why in (summary.get("files_considered") or {}).items():
        echo(f"    {why:>13}  {rel}")
    if summary.get("unrecognised_names"):
        echo(f"  not a dump file name, skipped: {', '.join(summary['unrecognised_names'])}")
    if summary.get("missing_months"):
        echo(f"  asked for but no file found: {', '.join(summary['missing_months'])}")
    b = summary.get("bronze")
    if b:
        echo(f"  bronze: {b['lines']} lines -> {b['bronze_rows']} bronze + {b['quarantine_rows']} quarantine "
             f"({b['bytes'] / 1e6:.1f} MB decompressed)")
        for reason, n in sorted(b["reasons"].items()):
            echo(f"    quarantine {reason}: {n}")
        for f in b["files"]:
            notes = [x for x, on in (("EMPTY", f["empty"]), ("TRUNCATED", f["truncated"])) if on]
            if f["out_of_month"]:
                notes.append(f"{f['out_of_month']} rows outside its month")
            echo(f"    {f['source_file']}: {f['lines']} lines = {f['bronze_rows']} bronze + {f['quarantine_rows']} quarantine"
                 + (f"  [{'; '.join(notes)}]" if notes else ""))
    if summary.get("silver_months"):
        echo(f"  silver/gold months (of created_utc): {', '.join(summary['silver_months'])}")
    for kind, s in (summary.get("silver") or {}).items():
        extra = f", images {s['images']}, nsfw {s['nsfw']}" if "images" in s else ""
        echo(f"  silver/{kind}: {s['rows']} rows ({s['duplicates']} duplicate ids dropped, "
             f"{s['deleted_authors']} deleted authors, {s['bots']} bots{extra})")
    g = summary.get("gold") or {}
    if g:
        echo("  gold: " + ", ".join(f"{k}={v}" for k, v in g.items() if k.startswith("gold/")))
        echo(f"    affected pairs {g.get('affected_pairs')}, new users {g.get('new_users')}, "
             f"new subreddits {g.get('new_subreddits')}; merges {g.get('merge')}")
    for name, gate in (summary.get("gates") or {}).items():
        echo(f"  gate {name}: OK ({gate.get('report', '')})")
    if summary.get("timings_s"):
        echo("  seconds: " + ", ".join(f"{k} {v}" for k, v in summary["timings_s"].items()))


def _run(ctx: typer.Context, command: str, input_dir: Path, lake: Path, months: Optional[str], run: Optional[str],
         overrides: Optional[List[str]]) -> None:
    from zipp.cli_common import load_cli_config, open_context
    from zipp.etl.pipeline import EtlState
    from zipp.etl.quality import QualityGateError
    from zipp.etl.stage import run_etl

    cfg = load_cli_config(ctx, overrides, **{"paths.dump": str(input_dir), "paths.lake": str(lake), "etl.months": months})
    state = EtlState(cfg=cfg, command=command, input_dir=Path(cfg.paths.dump), lake=Path(cfg.paths.lake))
    with open_context(cfg, run or state.run_id, command) as sctx:
        try:
            summary = run_etl(state, sctx)
        except QualityGateError as e:
            _print_summary(state.summary())
            typer.echo(f"FAILED: {e}", err=True)
            typer.echo(f"run manifest: {sctx.run_dir / 'manifest.json'}", err=True)
            raise typer.Exit(1) from None
    _print_summary(summary)
    typer.echo(f"run manifest: {sctx.run_dir / 'manifest.json'}")


def register(app: typer.Typer) -> None:
    @app.command("ingest")
    def ingest(
        ctx: typer.Context,
        input_dir: Path = typer.Option(..., "--input", help="Folder with RC_/RS_ .zst or Arctic-Shift .ndjson files."),
        lake: Path = typer.Option(..., "--lake", help="Lake root (Delta tables)."),
        months: Optional[str] = typer.Option(None, "--months", help="YYYY-MM or YYYY-MM:YYYY-MM (default: all found)."),
        run: Optional[str] = typer.Option(None, "--run", help="Run folder name under paths.runs (default: the run id)."),
        overrides: Optional[List[str]] = typer.Argument(None, help="key=value config overrides, e.g. etl.chunk_bytes=1000000"),
    ) -> None:
        """Rebuild bronze -> silver -> gold for the months found (or --months), with quality gates."""
        _run(ctx, "ingest", input_dir, lake, months, run, overrides)

    @app.command("nightly")
    def nightly(
        ctx: typer.Context,
        input_dir: Path = typer.Option(..., "--input", help="Folder with the monthly dump files."),
        lake: Path = typer.Option(..., "--lake", help="Lake root (Delta tables)."),
        run: Optional[str] = typer.Option(None, "--run", help="Run folder name under paths.runs."),
        overrides: Optional[List[str]] = typer.Argument(None, help="key=value config overrides"),
    ) -> None:
        """Ingest only months whose files are new or changed (size+mtime, then sha256); gold incrementally."""
        _run(ctx, "nightly", input_dir, lake, None, run, overrides)

    @app.command("forget")
    def forget_cmd(
        ctx: typer.Context,
        lake: Path = typer.Option(..., "--lake", help="Lake root (Delta tables)."),
        authors: Path = typer.Option(..., "--authors", help="Text file, one Reddit author name per line."),
        run: Optional[str] = typer.Option(None, "--run", help="Run folder name under paths.runs."),
        overrides: Optional[List[str]] = typer.Argument(None, help="key=value config overrides"),
    ) -> None:
        """Remove these authors from every table (bronze, quarantine, silver, gold, personas), then vacuum."""
        import json
        from datetime import datetime, timezone

        from zipp.cli_common import load_cli_config
        from zipp.etl.forget import forget, read_authors
        from zipp.etl.pipeline import new_run_id
        from zipp.identity import resolve_salt

        cfg = load_cli_config(ctx, overrides, **{"paths.lake": str(lake)})
        names = read_authors(authors)
        run_id = new_run_id("forget", datetime.now(timezone.utc))
        result = forget(cfg.paths.lake, names, resolve_salt(cfg.etl), run_id)
        run_dir = Path(cfg.paths.runs) / (run or run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "manifest.json").write_text(json.dumps(result, indent=2))
        typer.echo(f"forget {run_id}: {len(names)} authors, {result['rows_deleted']} rows deleted")
        for t, v in result["tables"].items():
            typer.echo(f"  {t}: {v['rows_deleted']} rows deleted, {v['files_vacuumed']} files vacuumed")
        typer.echo(f"run manifest: {run_dir / 'manifest.json'}")
