"""Per-user text-to-image prompt histories (the k-shot examples for prompt rewriting)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from zipp.generate import vocab as V
from zipp.generate.population import Users, rng_for

SCHEMA = pa.schema([("author", pa.string()), ("prompt", pa.string()), ("created", pa.timestamp("us", tz="UTC"))])


def make_prompt(c: V.Community, aesthetic: str, r: list[float], city: str | None) -> str:
    subject = c.subjects[int(r[0] * len(c.subjects))]
    styles = V.AESTHETIC_STYLE[aesthetic]
    style = styles[int(r[1] * len(styles))]
    extra = V.PROMPT_EXTRAS[int(r[2] * len(V.PROMPT_EXTRAS))]
    if city and r[3] < 0.1:
        subject = f"{subject} in {city}"
    if r[4] < 0.15:
        subject = subject[0].upper() + subject[1:]
    text = f"{subject}, {style}"
    return f"{text}, {extra}" if extra else text


def write_prompts(path: Path, users: Users, n_communities: int, seed: int, per_user: float, t0: int, t1: int, chunk: int = 20000) -> int:
    """Write ``path`` (author, prompt, created); returns the number of prompts written."""
    rng = rng_for(seed, 0, 2)
    comms = V.COMMUNITIES[:n_communities]
    n = users.n
    if per_user > 0:
        counts = np.where(rng.random(n) < 0.25, 0, rng.geometric(min(1.0, 1.0 / max(per_user / 0.75, 1e-9)), n))
    else:
        counts = np.zeros(n, dtype=np.int64)
    total = 0
    with pq.ParquetWriter(path, SCHEMA) as w:
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            m = int(counts[lo:hi].sum())
            R = rng.random((m, 8)).tolist()
            times = rng.integers(t0, t1, m) * 1_000_000
            authors, prompts, created = [], [], []
            j = 0
            for u in range(lo, hi):
                k = int(counts[u])
                if not k:
                    continue
                ints = users.interests[u]
                iw = users.interest_w[u]
                cdf = np.cumsum(iw[ints >= 0]).tolist()
                aes = [a for a in users.aesthetics[u].tolist() if a >= 0]
                ts = sorted(times[j : j + k].tolist())
                for q in range(k):
                    r = R[j + q]
                    ci = next((i for i, c in enumerate(cdf) if r[5] * cdf[-1] < c), len(cdf) - 1)
                    a = V.AESTHETICS[aes[int(r[6] * len(aes))]]
                    authors.append(users.names[u])
                    prompts.append(make_prompt(comms[int(ints[ci])], a, r, users.city[u]))
                    created.append(ts[q])
                j += k
            total += len(authors)
            if authors:
                w.write_table(pa.table({"author": authors, "prompt": prompts, "created": pa.array(created, pa.timestamp("us", tz="UTC"))}, schema=SCHEMA))
    return total
