"""`zipp train` and `zipp embed-users` (heavy imports stay inside the command bodies)."""

from __future__ import annotations

from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train(
        ctx: typer.Context,
        lake: Optional[str] = typer.Option(None, "--lake", help="Lake root with gold/* tables (default: paths.lake)."),
        run: str = typer.Option("default", "--run", help="Run name: folder under paths.runs (graph, checkpoints, metrics, model)."),
        overrides: Optional[List[str]] = typer.Argument(None, help="key=value overrides, e.g. graph.epochs=5 graph.num_workers=2"),
    ) -> None:
        """Train the edge-aware GATv2 (+ImageAlign) on the user-subreddit graph under Ray Train.

        Resumes from the run's latest checkpoint when the run folder already has one (also after resubmitting a killed job). Writes <run>/metrics.jsonl and <run>/model/."""
        from rich.console import Console

        from zipp.cli_common import load_cli_config, open_context
        from zipp.graph.infer import check_run_name
        from zipp.graph.stage import TrainStage
        from zipp.stage import run_stage

        cfg = load_cli_config(ctx, overrides, **{"paths.lake": lake})
        check_run_name(run)
        with open_context(cfg, run, "train") as sctx:
            res = run_stage(TrainStage(), sctx)
        test = res.extra["test"]
        Console(stderr=True).print(
            f"[green]train {run!r}:[/green] best epoch {res.extra['best_epoch']} of {res.extra['last_epoch']}; "
            f"test acc {test.get('test_acc', float('nan')):.3f} (popularity {test.get('test_pop_acc', float('nan')):.3f}), "
            f"AUC {test.get('test_auc', float('nan')):.3f}, Hits@{cfg.graph.hits_k} {test.get('test_hits', float('nan')):.3f}\n"
            f"model: {sctx.run_dir / 'model'}"
        )

    @app.command("embed-users")
    def embed_users(
        ctx: typer.Context,
        run: str = typer.Option(..., "--run", help="Trained run whose <run>/model/model.pt to use."),
        lake: Optional[str] = typer.Option(None, "--lake", help="Lake root (default: paths.lake)."),
        overrides: Optional[List[str]] = typer.Argument(None, help="key=value overrides, e.g. graph.infer_batch_nodes=8192"),
    ) -> None:
        """Write gold/user_embeddings and gold/user_subreddit_attention for every user of the lake.

        Inductive: users added after training get embeddings too. Rerunning replaces this run's rows."""
        from rich.console import Console

        from zipp.cli_common import load_cli_config, open_context
        from zipp.graph.infer import check_run_name
        from zipp.graph.stage import EmbedUsersStage
        from zipp.stage import run_stage

        cfg = load_cli_config(ctx, overrides, **{"paths.lake": lake})
        check_run_name(run)
        with open_context(cfg, run, "embed-users") as sctx:
            res = run_stage(EmbedUsersStage(), sctx)
        Console(stderr=True).print(
            f"[green]embed-users {run!r}:[/green] {res.extra['users']} users ({res.extra['new_users']} new), "
            f"{res.extra['attention_rows']} attention rows"
        )
