"""Metrics on embeddings and judgements. Pure numpy/scipy, no model loading: callers pass CLIP
embeddings (zipp.images.clip), so every metric is testable on exact small inputs."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.clip(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12, None)


def clip_score(image_emb: np.ndarray, text_emb: np.ndarray, w: float = 2.5) -> np.ndarray:
    """Per-pair CLIPScore (Hessel et al. 2021): 100 * w * max(cos(image, text), 0)."""
    cos = np.sum(_unit(image_emb) * _unit(text_emb), axis=-1)
    return 100.0 * w * np.maximum(cos, 0.0)


def cmmd(x: np.ndarray, y: np.ndarray, sigma: float = 10.0, scale: float = 1000.0) -> float:
    """CMMD (Jayasumana et al. 2024): unbiased MMD² with a Gaussian RBF kernel between two sets of
    CLIP embeddings, times ``scale``. 0 for identical distributions; needs ≥ 2 items per set."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2 or len(y) < 2:
        raise ValueError("CMMD needs at least two embeddings in each set")
    gamma = 1.0 / (2 * sigma**2)

    def k(a, b):
        d = np.sum(a**2, 1)[:, None] + np.sum(b**2, 1)[None, :] - 2 * a @ b.T
        return np.exp(-gamma * np.maximum(d, 0.0))

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    m, n = len(x), len(y)
    mmd = (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean()
    return float(scale * mmd)


@dataclass(frozen=True)
class BinomialResult:
    wins: int
    n: int
    rate: float
    p_value: float
    ci_low: float
    ci_high: float


def binomial_test(wins: int, n: int, p: float = 0.5, alpha: float = 0.05) -> BinomialResult:
    """Two-sided exact binomial test of wins out of n non-tied A/B judgements, with a Clopper-Pearson CI."""
    from scipy.stats import binomtest

    if n == 0:
        return BinomialResult(0, 0, float("nan"), 1.0, 0.0, 1.0)
    r = binomtest(wins, n, p, alternative="two-sided")
    ci = r.proportion_ci(confidence_level=1 - alpha, method="exact")
    return BinomialResult(wins, n, wins / n, float(r.pvalue), float(ci.low), float(ci.high))


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Cohen's κ between two raters' labels of the same items (1 = perfect, 0 = chance)."""
    if len(a) != len(b):
        raise ValueError("both raters must label the same items")
    if not a:
        return float("nan")
    cats = sorted(set(a) | set(b), key=str)
    idx = {c: i for i, c in enumerate(cats)}
    m = np.zeros((len(cats), len(cats)))
    for x, y in zip(a, b):
        m[idx[x], idx[y]] += 1
    n = m.sum()
    po = np.trace(m) / n
    pe = float((m.sum(0) * m.sum(1)).sum()) / n**2
    return 1.0 if pe == 1.0 else float((po - pe) / (1 - pe))


@dataclass
class IpfResult:
    weights: np.ndarray  # one per respondent, mean 1
    iterations: int
    converged: bool
    max_error: float  # largest |weighted share - target share| over all margins at the end
    effective_n: float  # Kish: (Σw)² / Σw²


def ipf(respondents: Sequence[Mapping[str, Hashable]], targets: Mapping[str, Mapping[Hashable, float]],
        max_iter: int = 100, tol: float = 1e-6, cap: float | None = 10.0) -> IpfResult:
    """Iterative proportional fitting (raking) of respondent weights to marginal targets.

    ``respondents``: one mapping per person, e.g. ``{"age_band": "25-34", "gender": "female"}``;
    ``targets``: per dimension the population of each category (any scale; normalised here).
    Respondents in a category missing from the targets get weight 0. Weights are capped at
    ``cap`` × mean between sweeps (the usual trimming) and normalised to mean 1.
    """
    n = len(respondents)
    w = np.ones(n)
    dims = list(targets)
    shares = {}
    for d in dims:
        tot = float(sum(targets[d].values()))
        shares[d] = {c: v / tot for c, v in targets[d].items()}
        present = {r.get(d) for r in respondents}
        missing = [c for c, s in shares[d].items() if s > 0 and c not in present]
        if missing:
            raise ValueError(f"IPF: no respondent in {d}={missing[:3]}; collapse categories or drop the margin")
    labels = {d: np.array([r.get(d) for r in respondents], dtype=object) for d in dims}
    for d in dims:
        w[~np.isin(labels[d], list(shares[d]))] = 0.0
    err = np.inf
    it = 0
    for it in range(1, max_iter + 1):
        for d in dims:
            total = w.sum()
            for c, s in shares[d].items():
                mask = labels[d] == c
                cur = w[mask].sum() / total
                if cur > 0:
                    w[mask] *= s / cur
        if cap is not None:
            mean = w[w > 0].mean()
            w = np.minimum(w, cap * mean)
        total = w.sum()
        err = max(abs(w[labels[d] == c].sum() / total - s) for d in dims for c, s in shares[d].items())
        if err < tol:
            break
    w = w * (n / w.sum())
    ess = float(w.sum() ** 2 / np.sum(w**2))
    return IpfResult(w, it, bool(err < tol), float(err), ess)


def pairwise_preference(score_a: np.ndarray, score_b: np.ndarray, tie_eps: float = 0.0) -> tuple[int, int, int]:
    """(wins of A, wins of B, ties) from per-item judge scores of the two systems."""
    d = np.asarray(score_a, np.float64) - np.asarray(score_b, np.float64)
    return int(np.sum(d > tie_eps)), int(np.sum(d < -tie_eps)), int(np.sum(np.abs(d) <= tie_eps))
