"""Persona mining: a user's attention-ranked graph neighbourhood -> evidence under a token budget ->
a validated JSON persona + first-person prose (LLM or extractive) -> versioned ``gold/personas``.

Later stages read personas with :func:`latest_personas`.
"""

from __future__ import annotations


def latest_personas(lake, pinned=None, columns=None):
    """One row per user from gold/personas: the latest ``ok`` version, or the pinned one."""
    from zipp.personas.store import latest_personas as _latest

    return _latest(lake, pinned=pinned, columns=columns)


__all__ = ["latest_personas"]
