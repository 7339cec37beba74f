"""The extractive backend recovers planted location and interests from ranked evidence alone."""

from __future__ import annotations

import json

from zipp.personas import store
from zipp.personas.backends import make_backend
from zipp.personas.evaluate import score_personas
from zipp.personas.evidence import EvidenceSource, UserInputs, resolve_plan
from zipp.personas.synthetic import build_lake, subreddit_interest


def _run(lake, cfg, counter, keys):
    src = EvidenceSource(lake, cfg.personas, resolve_plan(lake, cfg.personas))
    inputs = src.load(keys)
    backend = make_backend(cfg, counter)
    backend.setup()
    return backend.personas([inputs[k] for k in keys])


def test_extractive_recovers_planted_location_and_interests(tmp_path, pcfg, counter):
    lake = tmp_path / "lake"
    truth = build_lake(lake, n_users=80, seed=3)
    cfg = pcfg(f"paths.lake={lake}")
    results = _run(lake, cfg, counter, truth.column("user_key").to_pylist())
    assert all(r.status == "ok" for r in results)
    table = store.to_table(store.result_rows(results, backend="extractive", model="extractive", config_hash="h", run="t"))
    m = score_personas(table, truth, subreddit_interest())
    assert m["users"] == 80
    assert m["location_country_acc"] >= 0.8 and m["location_city_acc"] >= 0.7
    assert m["location_unknown_when_none"] >= 0.5
    assert m["top_interest_acc"] >= 0.85 and m["interest_recall"] >= 0.75
    assert m["age_band_acc"] >= 0.7 and m["profession_acc"] >= 0.6


def test_extractive_is_deterministic_and_evidence_only(tmp_path, pcfg, counter):
    lake = tmp_path / "lake"
    truth = build_lake(lake, n_users=6, seed=4)
    keys = truth.column("user_key").to_pylist()
    cfg = pcfg(f"paths.lake={lake}", "personas.token_budget=1100")
    a = _run(lake, cfg, counter, keys)
    b = _run(lake, cfg, counter, keys)
    assert [r.persona.model_dump() for r in a] == [r.persona.model_dump() for r in b]
    for r in a:
        used = {e["subreddit"] for e in r.evidence.accounting() if e["kind"] == "subreddit"}
        for interest in r.persona.interests:
            assert interest.replace(" ", "_") in used  # nothing outside the packed evidence
        assert r.prompt_tokens <= 1100 and r.completion_tokens == 0


def test_user_without_evidence_fails_with_reason(pcfg, counter, planted_lake):
    lake, _ = planted_lake
    cfg = pcfg(f"paths.lake={lake}")
    backend = make_backend(cfg, counter)
    [r] = backend.personas([UserInputs("0" * 16, None, "attention", [])])
    assert r.status == "failed" and r.error.startswith("no evidence")
    assert json.dumps(store.result_rows([r], backend="extractive", model="m", config_hash="h", run="t")[0]["evidence"]) == "[]"
