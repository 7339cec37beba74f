"""Pipeline stages of the graph area: ``train`` (Ray Train) and ``embed_users`` (export)."""

from __future__ import annotations

from zipp.stage import Resources, Stage, StageContext, StageResult


class TrainStage(Stage):
    """Build the graph from gold, train GATv2 (+ImageAlign) under Ray Train, export the best model.
    Retry-safe: a rerun with the same run folder resumes from the latest checkpoint and reuses the
    graph (and its split); a finished run only re-exports."""

    name = "train"
    resources = Resources(cpus=1)  # the driver; workers declare graph.num_workers x cpus_per_worker (+GPU)

    def run(self, ctx: StageContext) -> StageResult:
        from zipp.graph.train import run_training

        summary = run_training(ctx.cfg, ctx.run_dir, ctx.runtime)
        meta = summary["graph"]
        res = StageResult(rows_in=meta["num_edges"], rows_out=meta["num_train"], extra=summary)
        res.drop("duplicate_edges", meta.get("duplicates_dropped", 0))
        return res


class EmbedUsersStage(Stage):
    """Embeddings for every user + per-(user, subreddit) attention of the run's exported model."""

    name = "embed_users"
    resources = Resources(cpus=1)

    def run(self, ctx: StageContext) -> StageResult:
        from zipp.graph.infer import embed_users

        out = embed_users(ctx.cfg, ctx.run_dir, ctx.run_dir.name)
        return StageResult(rows_in=out["edges"], rows_out=out["users"], extra=out)
