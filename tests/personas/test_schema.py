"""Persona JSON: parsed from a reply, validated, with short reasons for the retry prompt."""

from __future__ import annotations

import json

from zipp.personas.schema import example_persona, parse_persona


def test_valid_persona_in_a_fence_parses():
    p, err = parse_persona("Sure!\n```json\n" + json.dumps(example_persona()) + "\n```")
    assert err is None and p.demographics.location.value == "Toronto, Canada"


def test_unknown_values_are_allowed():
    d = example_persona()
    d["demographics"]["age_band"] = {"value": "Unknown", "confidence": 0}
    p, err = parse_persona(json.dumps(d))
    assert err is None and p.demographics.age_band.value == "unknown"


def test_reasons_name_the_problem():
    assert parse_persona("")[1] == "the reply was empty"
    assert "no JSON object" in parse_persona("just words")[1]
    assert "invalid JSON" in parse_persona('{"demographics": ')[1]
    d = example_persona()
    d["demographics"]["age_band"]["value"] = "ancient"
    d["interests"] = []
    err = parse_persona(json.dumps(d))[1]
    assert "demographics.age_band.value" in err and "interests" in err
    d = example_persona()
    d["persona_text"] = "A nurse in Toronto who shoots film on weekends."
    assert "first person" in parse_persona(json.dumps(d))[1]
    d = example_persona()
    d["demographics"]["gender"]["confidence"] = 3
    assert "demographics.gender.confidence" in parse_persona(json.dumps(d))[1]
