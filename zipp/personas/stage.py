"""Pipeline stage: mine personas for the lake's users (zipp.personas.job)."""

from __future__ import annotations

from zipp.stage import Resources, Stage, StageContext, StageResult


class PersonasStage(Stage):
    """Reads gold attention/snippets/edges (+ images), writes gold/personas. Retry-safe: users that
    already have a row for this config hash are skipped, so a rerun only does what is missing."""

    name = "personas"
    resources = Resources(cpus=1)

    def setup(self, ctx: StageContext) -> None:
        from zipp.personas.job import preflight

        preflight(ctx.cfg)  # builds the local tiny tokenizer/model once; checks the backend can run

    def run(self, ctx: StageContext) -> StageResult:
        from zipp.personas.job import run_personas

        return run_personas(ctx.cfg, ctx.runtime, run=ctx.run_dir.name)
