"""`zipp rewrite`."""

from __future__ import annotations

import typer


def _stage():
    from zipp.rewrite.stage import RewriteStage

    return RewriteStage


def register(app: typer.Typer) -> None:
    from zipp.cli_common import register_stage_command

    register_stage_command(
        app, "rewrite", _stage,
        "Rewrite base prompts for each user's latest persona (template or LLM; 0-shot or k-shot, e.g. "
        "rewrite.shots=3 rewrite.backend=llm) into gold/rewritten_prompts.",
        lambda res, _: f"rewrite: {res.rows_out} prompts rewritten for {res.extra.get('users', 0)} users; drops {res.drops or 'none'}",
    )
