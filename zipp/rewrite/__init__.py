"""Persona-conditioned prompt rewriting: persona -> first-person roleplay instruction -> rewritten prompt."""
