"""The one `zipp` command. Subcommands live next to the code they drive (``zipp/<area>/cli.py``,
each with ``register(app)``) and import heavy libraries only inside their command bodies, so
``zipp --help`` stays fast."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import List, Optional

import typer
from rich.console import Console

import zipp
from zipp.config import ConfigError, dump_config
from zipp.logs import setup_logging

app = typer.Typer(
    name="zipp",
    help="ZIPP: Reddit dump -> Delta lake -> graph -> personas -> personalized images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
console = Console(stderr=True)

# Areas that contribute subcommands, in pipeline order.
COMMAND_MODULES = [
    "zipp.generate.cli",
    "zipp.etl.cli",
    "zipp.images.cli",
    "zipp.graph.cli",
    "zipp.personas.cli",
    "zipp.rewrite.cli",
    "zipp.imagegen.cli",
    "zipp.evaluation.cli",
]


@app.callback()
def _root(
    ctx: typer.Context,
    env: Optional[str] = typer.Option(None, "--env", help="conf/env/<ENV>.yaml to layer on base.yaml (default: $ZIPP_ENV or local)."),
    conf_dir: Optional[str] = typer.Option(None, "--conf-dir", help="Config folder (default: $ZIPP_CONF_DIR, ./conf, or the repo's conf/)."),
    log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING."),
) -> None:
    setup_logging(log_level)
    ctx.obj = {"env": env, "conf_dir": conf_dir}


@app.command()
def version() -> None:
    """Print the zipp version and the key library versions."""
    from importlib.metadata import PackageNotFoundError, version as v

    typer.echo(f"zipp {zipp.__version__}")
    for pkg in ("torch", "pyspark", "ray", "torch-geometric", "deltalake", "transformers", "diffusers", "open-clip-torch"):
        try:
            typer.echo(f"  {pkg} {v(pkg)}")
        except PackageNotFoundError:
            typer.echo(f"  {pkg} (not installed)")


@config_app.command("show")
def config_show(
    ctx: typer.Context,
    overrides: Optional[List[str]] = typer.Argument(None, help="key=value overrides, e.g. graph.epochs=3"),
) -> None:
    """Print the effective config (base.yaml + env file + overrides) as YAML."""
    from zipp.cli_common import load_cli_config

    cfg = load_cli_config(ctx, overrides)
    typer.echo(dump_config(cfg))


@app.command("run")
def run_main(
    ctx: typer.Context,
    run: str = typer.Option("default", "--run", help="Run name: folder under paths.runs for stats, checkpoints, reports."),
    overrides: Optional[List[str]] = typer.Argument(None, help="key=value config overrides"),
) -> None:
    """Run the main job end to end on the configured dump (the embedded default generates one)."""
    from pipelines.main import main_pipeline
    from zipp.cli_common import load_cli_config, open_context
    from zipp.stage import run_pipeline

    cfg = load_cli_config(ctx, overrides)
    with open_context(cfg, run, "run") as sctx:
        results = run_pipeline(main_pipeline(cfg), sctx)
    console.print(f"[green]run {run!r} finished:[/green] " + ", ".join(f"{k}={r.rows_out}" for k, r in results.items()))
    console.print(f"stats: {sctx.run_dir / 'stats'}")


def _register_areas() -> None:
    # An area registers once its package exists; an import error inside it is not swallowed.
    for mod in COMMAND_MODULES:
        parent = mod.rsplit(".", 1)[0]
        if importlib.util.find_spec(parent) is not None and importlib.util.find_spec(mod) is not None:
            importlib.import_module(mod).register(app)


_register_areas()


def main() -> None:
    try:
        app()
    except ConfigError as e:
        console.print(f"[red]config error:[/red] {e}")
        sys.exit(2)


if __name__ == "__main__":
    main()
