"""``extractive``: no LLM. A deterministic persona read off the packed evidence (the same evidence,
under the same budget, an LLM would get): top communities -> interests, location subreddits and
"I live in ..." cues -> location, "I'm 34" / "(25F)" cues -> age band and gender, "I work as a ..."
cues -> profession, image-posting communities -> visual aesthetics, a small word list -> mood.
It is the offline default and a baseline for evaluation."""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from typing import Sequence

from zipp.personas import lexicon
from zipp.personas.backends.base import Backend, PersonaResult
from zipp.personas.evidence import Evidence, EvidenceError, UserInputs
from zipp.personas.prompt import prompt_hash
from zipp.personas.schema import Persona

MAX_INTERESTS = 6


def _vote(scores: dict) -> tuple[str | None, float]:
    if not scores:
        return None, 0.0
    best = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    total = sum(scores.values())
    return best[0], round(min(0.95, best[1] / (total + 0.5)), 2)


def extract_persona(ev: Evidence, shares: dict[str, float]) -> Persona:
    snippets = [html.unescape(i.body) for i in ev.items if i.kind == "snippet"]
    communities = [i.subreddit for i in ev.items if i.kind == "subreddit"]
    stats_images = {i.subreddit for i in ev.items if i.kind == "subreddit" and ' image_posts="0"' not in i.text}

    # location: location communities weighted by share, plus explicit cues in the user's text
    loc_scores: dict[tuple, float] = defaultdict(float)
    place_subs = set()
    for s in communities:
        p = lexicon.place_of_subreddit(s)
        if p is not None:
            place_subs.add(s)
            loc_scores[p] += 0.5 + 2.0 * shares.get(s, 0.0)
    for text in snippets:
        for m in lexicon.PLACE_CUE.finditer(text):
            loc_scores[lexicon.PLACES[(m.group(1) or m.group(2)).lower()]] += 1.0
    # a city vote also counts for its country
    by_country: dict[str, float] = defaultdict(float)
    for (city, country), v in loc_scores.items():
        by_country[country] += v
    country, conf = _vote(by_country)
    location = "unknown"
    if country:
        cities = {city: v for (city, c), v in loc_scores.items() if c == country and city}
        city, _ = _vote(cities)
        location = f"{city}, {country}" if city else country

    ages: Counter = Counter()
    genders: Counter = Counter()
    profs: Counter = Counter()
    pos = neg = questions = exclaims = 0
    for text in snippets:
        for rx in lexicon.AGE_CUES:
            for m in rx.finditer(text):
                age = int(m.group(1))
                if 13 <= age <= 99:
                    ages[lexicon.age_band(age)] += 1
        for rx, g in lexicon.GENDER_CUES:
            genders[g] += len(rx.findall(text))
        for m in lexicon.PROFESSION_CUE.finditer(text):
            profs[(m.group(1) or m.group(2)).lower()] += 1
        for m in lexicon.DECADE_CUE.finditer(text):
            lo = int(m.group(1)) * 10
            if lo >= 10:
                for band in {lexicon.age_band(max(lo, 13)), lexicon.age_band(lo + 9)}:
                    ages[band] += 0.5
        words = [w.strip(".,!?;:()\"'").lower() for w in text.split()]
        pos += sum(w in lexicon.POSITIVE for w in words)
        neg += sum(w in lexicon.NEGATIVE for w in words)
        questions += text.count("?") > 0
        exclaims += text.count("!") > 0
    age, age_conf = _vote(dict(ages))
    gender, gender_conf = _vote({k: v for k, v in genders.items() if v})
    prof, prof_conf = _vote(dict(profs))

    interests = [s.replace("_", " ") for s in communities if s not in place_subs][:MAX_INTERESTS]
    if not interests:
        interests = [s.replace("_", " ") for s in communities][:MAX_INTERESTS] or ["unknown"]
    aesthetics = [f"images like those in r/{s}" for s in communities if s in stats_images][:4]
    n = max(1, len(snippets))
    traits = []
    if pos >= 2 and pos >= 2 * neg:
        traits.append("enthusiastic")
    if neg >= 2 and neg > pos:
        traits.append("critical")
    if questions / n >= 0.3:
        traits.append("curious")
    if exclaims / n >= 0.3:
        traits.append("expressive")

    who = []
    if age:
        who.append(f"in my {'late teens' if age == 'under 18' else age.replace('-', ' to ')} age range")
    if prof:
        who.append(f"working as a {prof}")
    if location != "unknown":
        who.append(f"based in {location}")
    lead = "I'm " + ", ".join(who) + "." if who else "I'm a Reddit regular."
    top = ", ".join(f"r/{s}" for s in communities[:3])
    text = f"{lead} I spend most of my time in {top}." if top else lead

    def attr(value, confidence):
        return {"value": value or "unknown", "confidence": confidence if value else 0.0}

    return Persona.model_validate({
        "demographics": {
            "age_band": attr(age, age_conf),
            "gender": attr(gender, gender_conf),
            "location": attr(None if location == "unknown" else location, conf),
            "profession": attr(prof, prof_conf),
        },
        "interests": interests,
        "visual_aesthetics": aesthetics,
        "affective_traits": traits,
        "persona_text": text,
    })


class ExtractiveBackend(Backend):
    name = "extractive"

    @property
    def model_name(self) -> str:
        return "extractive"

    def personas(self, inputs: Sequence[UserInputs]) -> list[PersonaResult]:
        out = []
        for inp in inputs:
            try:
                ev = self._pack_first(inp)
            except EvidenceError as e:
                out.append(PersonaResult(inp.user_key, inp.user_id, "failed", error=str(e), ranking=inp.ranking))
                continue
            persona = extract_persona(ev, {c.subreddit: c.share for c in inp.communities})
            out.append(PersonaResult(
                inp.user_key, inp.user_id, "ok", persona=persona, evidence=ev, ranking=inp.ranking, attempts=1,
                prompt_tokens=ev.prompt_tokens, completion_tokens=0, prompt_hash=prompt_hash(ev.messages, ev.images),
            ))
        return out
