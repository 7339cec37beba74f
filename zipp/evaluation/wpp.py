"""UN World Population Prospects 2024 marginals for IPF raking.

Reads ``wpp2024_population_by_age5_sex_2023.csv`` (persons by 5-year age group and sex, per UN
location) and folds the 5-year groups into the persona age bands (18-24, 25-34, …, 65+). 18-24
takes 2/5 of the 15-19 group (ages 18 and 19), assuming ages are spread evenly within a group.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

AGE5_FILE = "wpp2024_population_by_age5_sex_2023.csv"
BANDS = (("18-24", 18, 24), ("25-34", 25, 34), ("35-44", 35, 44), ("45-54", 45, 54), ("55-64", 55, 64), ("65+", 65, 200))


def _overlap(a0: int, a1: int, b0: int, b1: int) -> float:
    """Share of the single-year ages a0..a1 that lie in b0..b1."""
    lo, hi = max(a0, b0), min(a1, b1)
    return max(0, hi - lo + 1) / (a1 - a0 + 1)


def adult_marginals(wpp_dir: str | Path, location: str = "World") -> dict[str, dict[str, float]]:
    """{"age_band": {band: persons}, "gender": {"female": persons, "male": persons}} for adults 18+."""
    path = Path(wpp_dir) / AGE5_FILE
    age: dict[str, float] = defaultdict(float)
    sex: dict[str, float] = defaultdict(float)
    found = False
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["location"] != location:
                continue
            found = True
            a0 = int(row["age_start"])
            a1 = int(row["age_end"]) if row["age_end"] not in ("", "NA") else 200
            pop = float(row["population"])
            for band, b0, b1 in BANDS:
                share = _overlap(a0, min(a1, 200), b0, b1)
                if share <= 0:
                    continue
                if row["sex"] == "both":
                    age[band] += pop * share
                else:
                    sex[row["sex"]] += pop * share
    if not found:
        raise ValueError(f"WPP: no rows for location {location!r} in {path}")
    return {"age_band": dict(age), "gender": dict(sex)}
