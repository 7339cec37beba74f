"""`zipp personas` (the batch job) and `zipp persona show|edit` (one user's versions)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import List, Optional

import typer

LAKE_HELP = "Lake root (default: paths.lake from config)."


def _resolve_user(cfg, user: str) -> str:
    """A user_key as is when it has personas, else the key of an author name (salted hash)."""
    from zipp.identity import resolve_salt, user_key
    from zipp.personas import store

    if re.fullmatch(r"[0-9a-f]{16}", user) and store.user_versions(cfg.paths.lake, user).num_rows:
        return user
    return user_key(user, resolve_salt(cfg.etl))


def register(app: typer.Typer) -> None:
    persona_app = typer.Typer(help="Show or edit one user's persona (versions in gold/personas).", no_args_is_help=True)
    app.add_typer(persona_app, name="persona")

    @app.command("personas")
    def personas_cmd(
        ctx: typer.Context,
        lake: Optional[str] = typer.Option(None, "--lake", help=LAKE_HELP),
        run: str = typer.Option("personas", "--run", help="Run name: stats go to <paths.runs>/<RUN>/stats/personas.json."),
        overrides: Optional[List[str]] = typer.Argument(
            None, help="key=value overrides, e.g. personas.backend=openai personas.model=ID personas.token_budget=2048"),
    ) -> None:
        """Mine personas for every user (or personas.sample_users of them) on Ray Data into gold/personas.

        Resumable: users that already have a persona for this config hash are skipped. A user that fails gets a status=failed row with the reason; the job goes on."""
        from rich.console import Console

        from zipp.cli_common import load_cli_config, open_context
        from zipp.personas.job import summary
        from zipp.personas.stage import PersonasStage
        from zipp.stage import run_stage

        cfg = load_cli_config(ctx, overrides, **{"paths.lake": lake})
        with open_context(cfg, run, "personas") as sctx:
            res = run_stage(PersonasStage(), sctx)
        s = summary(res)
        Console(stderr=True).print(
            f"[green]personas:[/green] {s['rows_out']} ok, {sum(res.drops.values())} failed, {s.get('skipped_done', 0)} already done "
            f"({s.get('users_per_s', 0)} users/s, {s.get('tokens_per_s', 0)} tokens/s); stats in {sctx.run_dir / 'stats' / 'personas.json'}"
        )

    @persona_app.command("show")
    def show(
        ctx: typer.Context,
        user: str = typer.Argument(..., help="user_key, or a Reddit author name (hashed with the configured salt)."),
        lake: Optional[str] = typer.Option(None, "--lake", help=LAKE_HELP),
        version: Optional[int] = typer.Option(None, "--version", help="A given version (default: the latest ok one)."),
        all_versions: bool = typer.Option(False, "--all", help="List every version instead."),
        as_json: bool = typer.Option(False, "--json", help="Print the whole row as JSON."),
    ) -> None:
        """Print a user's persona (JSON + prose) and where it came from."""
        from zipp.cli_common import load_cli_config
        from zipp.personas import store

        cfg = load_cli_config(ctx, None, **{"paths.lake": lake})
        key = _resolve_user(cfg, user)
        rows = store.user_versions(cfg.paths.lake, key).to_pylist()
        if not rows:
            typer.echo(f"no persona for user {user!r} (user_key {key})", err=True)
            raise typer.Exit(1)
        if all_versions:
            for r in rows:
                typer.echo(f"v{r['version']:<3} {r['status']:<6} {r['source']:<9} {r['backend']:<12} {r['created_at']:%Y-%m-%d %H:%M:%S} "
                           f"{r['evidence_tokens']}/{r['token_budget']} tok  {r['error'] or ''}")
            return
        if version is None:
            ok = [r for r in rows if r["status"] == "ok"]
            row = (ok or rows)[-1]
        else:
            match = [r for r in rows if r["version"] == version]
            if not match:
                typer.echo(f"user {key} has no version {version} (versions: {[r['version'] for r in rows]})", err=True)
                raise typer.Exit(1)
            row = match[0]
        if as_json:
            typer.echo(json.dumps(row, default=str, indent=2, ensure_ascii=False))
            return
        typer.echo(f"user_key {row['user_key']}  version {row['version']}  status {row['status']}  source {row['source']}")
        typer.echo(f"backend {row['backend']}  model {row['model']}  created {row['created_at']}  run {row['run']}")
        typer.echo(f"evidence {row['evidence_tokens']} / {row['token_budget']} tokens from {sum(1 for e in row['evidence'] if e['kind'] == 'subreddit')} "
                   f"communities, {sum(1 for e in row['evidence'] if e['kind'] == 'snippet')} snippets ({row['ranking']})")
        if row["status"] != "ok":
            typer.echo(f"error: {row['error']}")
            return
        typer.echo(json.dumps(store.persona_dict(row), indent=2, ensure_ascii=False))
        typer.echo("")
        typer.echo(row["persona_text"])

    @persona_app.command("edit")
    def edit(
        ctx: typer.Context,
        user: str = typer.Argument(..., help="user_key, or a Reddit author name (hashed with the configured salt)."),
        file: Path = typer.Option(..., "--file", "-f", exists=True, dir_okay=False, help="Persona JSON (or YAML) file, e.g. from `persona show --json`'s persona_json."),
        lake: Optional[str] = typer.Option(None, "--lake", help=LAKE_HELP),
        base: Optional[int] = typer.Option(None, "--base", help="Version whose evidence/provenance to keep (default: latest ok)."),
    ) -> None:
        """Store an edited persona as a new version (source=edited); later stages use it from then on."""
        import yaml

        from zipp.cli_common import load_cli_config
        from zipp.personas import store
        from zipp.personas.schema import Persona

        cfg = load_cli_config(ctx, None, **{"paths.lake": lake})
        key = _resolve_user(cfg, user)
        try:
            data = yaml.safe_load(file.read_text())
            if isinstance(data, dict) and isinstance(data.get("persona_json"), str):
                data = json.loads(data["persona_json"])
            persona = Persona.model_validate(data)
        except Exception as e:
            typer.echo(f"{file}: not a valid persona: {e}", err=True)
            raise typer.Exit(2)
        try:
            row = store.edit_persona(cfg.paths.lake, key, persona, base_version=base)
        except KeyError as e:
            typer.echo(str(e), err=True)
            raise typer.Exit(1)
        typer.echo(f"user_key {key}: stored version {row['version']} (source=edited)")
