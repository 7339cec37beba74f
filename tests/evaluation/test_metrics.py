import numpy as np
import pytest

from zipp.evaluation.metrics import binomial_test, clip_score, cmmd, cohen_kappa, ipf, pairwise_preference


def test_clip_score_bounds():
    a = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    t = np.array([[2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    assert clip_score(a, t).tolist() == pytest.approx([250.0, 0.0, 0.0])


def test_cmmd_separates_shifted_distributions():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 8)), rng.normal(size=(200, 8))
    z = rng.normal(loc=3.0, size=(200, 8))
    same, shifted = cmmd(x, y, sigma=1.0), cmmd(x, z, sigma=1.0)
    assert abs(same) < 0.05 * shifted
    assert shifted > 0
    with pytest.raises(ValueError):
        cmmd(x[:1], y)


def test_binomial_test_matches_exact_values():
    r = binomial_test(60, 100)
    assert r.p_value == pytest.approx(0.056887933640, rel=1e-6)
    assert r.ci_low < 0.6 < r.ci_high
    assert binomial_test(0, 0).p_value == 1.0


def test_cohen_kappa_textbook_example():
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> kappa 0.4
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(["a", "b"], ["a", "b"]) == 1.0


def test_ipf_matches_every_margin():
    people = [{"age": a, "sex": s} for a, s in [("y", "f"), ("y", "m"), ("y", "m"), ("o", "f"), ("o", "m"), ("o", "m"), ("o", "m")]]
    targets = {"age": {"y": 60, "o": 40}, "sex": {"f": 50, "m": 50}}
    fit = ipf(people, targets, tol=1e-9, cap=None)
    w = fit.weights
    assert fit.converged
    assert w.mean() == pytest.approx(1.0)
    young = sum(wi for wi, p in zip(w, people) if p["age"] == "y") / w.sum()
    female = sum(wi for wi, p in zip(w, people) if p["sex"] == "f") / w.sum()
    assert young == pytest.approx(0.6, abs=1e-6) and female == pytest.approx(0.5, abs=1e-6)
    assert 1 <= fit.effective_n <= len(people)


def test_ipf_rejects_an_empty_target_cell():
    with pytest.raises(ValueError, match="no respondent"):
        ipf([{"sex": "f"}], {"sex": {"f": 1, "m": 1}})


def test_pairwise_preference_counts_ties():
    assert pairwise_preference(np.array([1, 2, 3.0]), np.array([0, 2, 4.0])) == (1, 1, 1)


@pytest.mark.realdata
def test_wpp_world_adult_marginals(shared_data):
    from zipp.evaluation.wpp import adult_marginals

    m = adult_marginals(shared_data / "wpp")
    adults = sum(m["age_band"].values())
    assert sum(m["gender"].values()) == pytest.approx(adults, rel=1e-9)
    assert 5.0e9 < adults < 6.5e9  # ~5.6 billion adults in 2023
    assert 0.48 < m["gender"]["female"] / adults < 0.52
    assert m["age_band"]["25-34"] > m["age_band"]["65+"]
    with pytest.raises(ValueError, match="no rows"):
        adult_marginals(shared_data / "wpp", location="Atlantis")
