"""Locally built tiny models for tests and the offline demo (random weights: outputs are not meaningful)."""
