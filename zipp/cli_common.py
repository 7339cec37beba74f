"""Helpers shared by the subcommands: config from CLI options, run folders."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, List, Optional

import typer

from zipp.config import ZippConfig, dump_config, load_config
from zipp.runtime import Runtime
from zipp.stage import StageContext


def load_cli_config(ctx: typer.Context | None, overrides: list[str] | None, **explicit: Any) -> ZippConfig:
    """Config from the root options (--env, --conf-dir), then key=value overrides, then explicit
    command options given as dotted keys (``**{"paths.lake": lake}``); None means 'not given'."""
    obj = (ctx.find_root().obj if ctx is not None else None) or {}
    extra = [f"{k}={_yaml_scalar(v)}" for k, v in explicit.items() if v is not None]
    return load_config(env=obj.get("env"), overrides=list(overrides or []) + extra, conf_dir=obj.get("conf_dir"))


def _yaml_scalar(v: Any) -> str:
    import json

    if isinstance(v, (Path,)):
        v = str(v)
    return json.dumps(v) if not isinstance(v, bool) else str(v).lower()


@contextmanager
def open_context(cfg: ZippConfig, run: str, command: str | None = None) -> Iterator[StageContext]:
    """The run folder (created) and runtime for one command. Several commands share a run folder
    (``zipp train --run r1`` then ``zipp embed-users --run r1``), each with its own overrides: each
    leaves its config in ``configs/<command>.yaml``, and ``config.yaml`` stays the first one's."""
    run_dir = Path(cfg.paths.runs) / run
    (run_dir / "configs").mkdir(parents=True, exist_ok=True)
    command = command or "python"
    text = dump_config(cfg)
    (run_dir / "configs" / f"{command}.yaml").write_text(text)
    if not (run_dir / "config.yaml").exists():
        (run_dir / "config.yaml").write_text(text)
    with Runtime(cfg.runtime) as rt:
        yield StageContext(cfg=cfg, run_dir=run_dir, runtime=rt)


def run_one_stage(ctx: typer.Context, stage_factory, run: str, overrides: list[str] | None, **explicit: Any):
    """Load config, open the run folder and runtime, run one stage; returns (result, run_dir)."""
    from zipp.stage import run_stage

    cfg = load_cli_config(ctx, overrides, **explicit)
    with open_context(cfg, run, ctx.info_name if ctx is not None else None) as sctx:
        res = run_stage(stage_factory(), sctx)
    return res, sctx.run_dir


def register_stage_command(app: typer.Typer, name: str, load_stage, doc: str, summarize) -> None:
    """Add ``zipp NAME --lake L --run R [key=value…]`` that runs one stage and echoes ``summarize(res, run_dir)``.

    ``load_stage`` imports and returns the Stage class lazily so ``zipp --help`` stays fast."""

    def command(
        ctx: typer.Context,
        lake: Optional[str] = typer.Option(None, "--lake", help="Lake root (default: paths.lake)."),
        run: str = typer.Option("default", "--run", help="Run folder under paths.runs (stats, reports)."),
        overrides: Optional[List[str]] = typer.Argument(None, help="key=value config overrides"),
    ) -> None:
        res, run_dir = run_one_stage(ctx, load_stage(), run, overrides, **{"paths.lake": lake})
        typer.echo(summarize(res, run_dir))

    command.__doc__ = doc
    app.command(name)(command)
