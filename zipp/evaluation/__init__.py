"""Evaluation: CLIPScore, CMMD, pairwise judging, IPF raking to UN WPP marginals, binomial tests, Cohen's kappa."""
