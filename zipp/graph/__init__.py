"""User–subreddit graph learning: graph build (``build``), pure-torch neighbour sampler
(``sampler``), edge-aware GATv2 + ImageAlign (``model``), Ray Train training (``train``),
layer-wise inference and evaluation (``layerwise``, ``evaluate``) and the embedding / attention
export (``infer``). Stages in ``stage``, commands in ``cli``."""
