"""The main job (`zipp run`): generated dump -> tables -> graph -> personas -> images -> report."""

from __future__ import annotations

from zipp.config import ZippConfig
from zipp.stage import Stage


def main_pipeline(cfg: ZippConfig) -> list[Stage]:
    from zipp.etl.stage import IngestStage
    from zipp.evaluation.stage import EvaluateStage
    from zipp.generate.stage import GenerateDumpStage
    from zipp.graph.stage import EmbedUsersStage, TrainStage
    from zipp.imagegen.stage import GenerateImagesStage
    from zipp.images.stage import EmbedImagesStage
    from zipp.personas.stage import PersonasStage
    from zipp.rewrite.stage import RewriteStage

    stages: list[Stage] = [GenerateDumpStage()] if cfg.run.generate_dump else []
    return stages + [
        IngestStage(),  # bronze -> silver -> gold, only new or changed months
        EmbedImagesStage(),  # gold/user_images -> gold/image_embeddings
        TrainStage(),  # GATv2 + ImageAlign on Ray Train
        EmbedUsersStage(),  # gold/user_embeddings + gold/user_subreddit_attention
        PersonasStage(),  # gold/personas
        RewriteStage(),  # gold/rewritten_prompts
        GenerateImagesStage(),  # gold/generated_images
        EvaluateStage(),  # <run>/report.{json,md}
    ]
