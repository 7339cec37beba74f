"""Persona accuracy against planted ground truth (zipp.personas.synthetic, or a generated dump's
truth/users.parquet with the same columns: user_key, interests, country, city, age_band, profession)."""

from __future__ import annotations

import json
from typing import Mapping

import pyarrow as pa


def _norm(s: str | None) -> str:
    return (s or "").strip().lower().removeprefix("r/").replace(" ", "").replace("_", "")


def score_personas(personas: pa.Table, truth: pa.Table, sub_to_interest: Mapping[str, str], k: int = 6) -> dict:
    """Location, interest, age and profession recovery over the users present in both tables.

    - ``location_country_acc``: users with a planted home: the persona's location names its country;
    - ``location_city_acc``: ... and its city;
    - ``location_unknown_when_none``: users without a home whose location is "unknown";
    - ``top_interest_acc``: the user's primary planted interest is among the first ``k`` persona
      interests (persona interests are mapped to interests through their subreddit when they name one);
    - ``interest_recall``: mean fraction of planted interests among the first ``k``;
    - ``age_band_acc`` / ``profession_acc``: over users who stated them in their text.
    """
    mapping = {_norm(s): it for s, it in sub_to_interest.items()}
    pers = {r["user_key"]: r for r in personas.to_pylist() if r.get("status") == "ok"}
    n = loc_n = loc_ok = city_ok = none_n = none_ok = top_ok = age_n = age_ok = prof_n = prof_ok = 0
    recall = 0.0
    for t in truth.to_pylist():
        row = pers.get(t["user_key"])
        if row is None:
            continue
        n += 1
        p = json.loads(row["persona_json"])
        loc = p["demographics"]["location"]["value"].lower()
        if t.get("country"):
            loc_n += 1
            loc_ok += t["country"].lower() in loc
            city_ok += bool(t.get("city")) and t["city"].lower() in loc
        else:
            none_n += 1
            none_ok += loc == "unknown"
        got = []
        for it in p["interests"][:k]:
            got.append(mapping.get(_norm(it), it.lower()))
        planted = [i.lower() for i in t["interests"]]
        top_ok += planted[0] in got
        recall += sum(i in got for i in planted) / len(planted)
        if t.get("said_age"):
            age_n += 1
            age_ok += p["demographics"]["age_band"]["value"] == t["age_band"]
        if t.get("said_profession"):
            prof_n += 1
            prof_ok += _norm(p["demographics"]["profession"]["value"]) == _norm(t["profession"])

    def frac(a, b):
        return round(a / b, 3) if b else None

    return {
        "users": n, "location_country_acc": frac(loc_ok, loc_n), "location_city_acc": frac(city_ok, loc_n),
        "location_unknown_when_none": frac(none_ok, none_n), "top_interest_acc": frac(top_ok, n),
        "interest_recall": frac(recall, n), "age_band_acc": frac(age_ok, age_n), "profession_acc": frac(prof_ok, prof_n),
    }


def truth_from_dump(dump, salt: str) -> tuple[pa.Table, dict[str, str]]:
    """A generated dump's ``truth/users.parquet`` (+ ``truth/subreddits.parquet``) in the shape
    :func:`score_personas` takes: user_key (salted like the ETL does), interests (primary first),
    country, city, age_band, profession, said_age / said_profession (the user wrote such a cue)."""
    from pathlib import Path

    import pyarrow.parquet as pq

    from zipp.identity import user_key

    d = Path(dump) / "truth"
    users = pq.read_table(d / "users.parquet").to_pylist()
    rows = []
    for u in users:
        if u.get("is_bot") or u.get("is_deleted_alias") or not u.get("interests"):
            continue
        rows.append({
            "user_key": user_key(u["author"], salt), "interests": list(u["interests"]), "country": u.get("country"),
            "city": u.get("city"), "age_band": u.get("age_band"), "profession": u.get("profession"),
            "said_age": bool(u.get("n_cues_age")), "said_profession": bool(u.get("n_cues_profession")),
            "said_location": bool(u.get("n_cues_location")) or bool(u.get("location_share")),
        })
    subs = pq.read_table(d / "subreddits.parquet").to_pylist()
    mapping = {s["subreddit"].lower(): s["community"] for s in subs if s["community"] not in ("general", "location")}
    return pa.Table.from_pylist(rows), mapping
