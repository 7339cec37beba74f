"""The persona: a JSON object validated with pydantic, plus a short first-person prose persona.

``parse_persona(text)`` finds the JSON object in a model reply (bare, or in a ```json fence),
validates it and returns ``(persona, None)`` or ``(None, reason)``; the reason is short and
specific so it can be fed back to the model on a retry.
"""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SCHEMA_VERSION = "persona-v1"
AGE_BANDS = ("under 18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+", "unknown")
_FIRST_PERSON = re.compile(r"\b(I|I'm|I've|I'd|I'll|my|My|me)\b")


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class Attribute(_Model):
    value: str = Field(min_length=1, max_length=80)  # "unknown" allowed
    confidence: float = Field(ge=0.0, le=1.0)


class AgeBand(Attribute):
    value: Literal[AGE_BANDS]  # type: ignore[valid-type]

    @field_validator("value", mode="before")
    @classmethod
    def _norm(cls, v):
        return v.strip().lower().replace("–", "-") if isinstance(v, str) else v


class Demographics(_Model):
    age_band: AgeBand
    gender: Attribute
    location: Attribute
    profession: Attribute


def _short_list(max_items: int):
    return Field(default_factory=list, max_length=max_items)


class Persona(_Model):
    demographics: Demographics
    interests: list[str] = Field(min_length=1, max_length=12)
    visual_aesthetics: list[str] = _short_list(8)
    affective_traits: list[str] = _short_list(8)
    persona_text: str = Field(min_length=20, max_length=1200)

    @field_validator("interests", "visual_aesthetics", "affective_traits")
    @classmethod
    def _items(cls, v: list[str]) -> list[str]:
        out = []
        for item in v:
            item = " ".join(str(item).split())
            if not item:
                raise ValueError("empty list item")
            if len(item) > 80:
                raise ValueError(f"list item longer than 80 characters: {item[:30]!r}...")
            if item.lower() not in (x.lower() for x in out):
                out.append(item)
        return out

    @field_validator("persona_text")
    @classmethod
    def _first_person(cls, v: str) -> str:
        if not _FIRST_PERSON.search(v):
            raise ValueError("persona_text must be written in the first person (I / my)")
        return v


def example_persona() -> dict:
    """The shape shown to the model (values are placeholders, not a real user)."""
    return {
        "demographics": {
            "age_band": {"value": "25-34", "confidence": 0.6},
            "gender": {"value": "unknown", "confidence": 0.0},
            "location": {"value": "Toronto, Canada", "confidence": 0.8},
            "profession": {"value": "nurse", "confidence": 0.5},
        },
        "interests": ["film photography", "hiking"],
        "visual_aesthetics": ["muted film colours", "misty landscapes"],
        "affective_traits": ["curious", "warm"],
        "persona_text": "I'm a nurse in Toronto who spends weekends hiking with an old film camera.",
    }


def _find_json_object(text: str) -> tuple[dict | None, str | None]:
    if not text or not text.strip():
        return None, "the reply was empty"
    start = text.find("{")
    if start < 0:
        return None, "the reply contains no JSON object (no '{')"
    decoder = json.JSONDecoder()
    last_err = None
    while start >= 0:
        try:
            obj, _ = decoder.raw_decode(text, start)
            if isinstance(obj, dict):
                return obj, None
            last_err = "the JSON value is not an object"
        except json.JSONDecodeError as e:
            last_err = f"invalid JSON: {e.msg} at character {e.pos - start}"
        start = text.find("{", start + 1)
    return None, last_err


def _format_errors(err: ValidationError, limit: int = 5) -> str:
    parts = []
    for e in err.errors()[:limit]:
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        parts.append(f"{loc}: {e['msg']}")
    more = len(err.errors()) - limit
    return "schema errors: " + "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def parse_persona(text: str) -> tuple[Persona | None, str | None]:
    obj, err = _find_json_object(text)
    if obj is None:
        return None, err
    try:
        return Persona.model_validate(obj), None
    except ValidationError as e:
        return None, _format_errors(e)


def persona_to_json(p: Persona) -> str:
    return json.dumps(p.model_dump(mode="json"), ensure_ascii=False, sort_keys=False)
