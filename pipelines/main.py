"""The main job (`zipp run`): generated dump -> tables -> graph -> personas -> images -> report."""

from __future__ import annotations

from zipp.config import ZippConfig
from zipp.stage import Stage


def main_pipeline(cfg: ZippConfig) -> list[Stage]:
    from zipp.generate.stage import GenerateDumpStage

    return [
        GenerateDumpStage(),
    ]
