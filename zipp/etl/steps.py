"""Step timings inside a layer (reported in the layer's stats; the stage total is timed by run_stage)."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("zipp.etl.steps")


class Steps:
    def __init__(self, layer: str):
        self.layer, self.times, self._t = layer, {}, time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = round(now - self._t, 2)
        log.debug("%s: %s %.2fs", self.layer, name, now - self._t)
        self._t = now
