"""gold/personas: versions, latest/pinned reads, edits through the CLI, forget."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from zipp.cli import app
from zipp.identity import resolve_salt, user_key
from zipp.personas import latest_personas, store
from zipp.personas.backends import make_backend
from zipp.personas.evidence import EvidenceSource, resolve_plan
from zipp.personas.schema import example_persona


@pytest.fixture
def stored(planted_lake, pcfg, counter):
    """Extractive personas for 5 users written twice (versions 1 and 2), one v3 failed."""
    lake, truth = planted_lake
    cfg = pcfg(f"paths.lake={lake}")
    keys = truth.column("user_key").to_pylist()[:5]
    src = EvidenceSource(lake, cfg.personas, resolve_plan(lake, cfg.personas))
    backend = make_backend(cfg, counter)
    res = backend.personas([src.load(keys)[k] for k in keys])
    rows = store.result_rows(res, backend="extractive", model="extractive", config_hash="h1", run="a")
    store.append(lake, rows)
    store.append(lake, [{**r, "run": "b"} for r in rows])
    store.append(lake, [{**rows[0], "status": "failed", "error": "invalid output after 3 attempts: x", "persona_json": None,
                         "persona_text": None, "run": "c"}])
    return lake, cfg, keys


def test_latest_is_the_newest_ok_version_unless_pinned(stored):
    lake, cfg, keys = stored
    latest = latest_personas(lake)
    assert latest.num_rows == 5 and set(latest.column("version").to_pylist()) == {2}
    assert store.max_versions(lake)[keys[0]] == 3  # the failed v3 exists but is not served
    pinned = latest_personas(lake, pinned={keys[1]: 1})
    got = dict(zip(pinned.column("user_key").to_pylist(), pinned.column("version").to_pylist()))
    assert got[keys[1]] == 1 and got[keys[2]] == 2
    with pytest.raises(KeyError):
        latest_personas(lake, pinned={keys[1]: 9})


def test_cli_show_and_edit_by_key_and_by_author(stored, tmp_path):
    lake, cfg, keys = stored
    runner = CliRunner()
    out = runner.invoke(app, ["persona", "show", keys[0], "--lake", str(lake)])
    assert out.exit_code == 0, out.output
    assert "version 2" in out.output and '"interests"' in out.output
    out = runner.invoke(app, ["persona", "show", keys[0], "--lake", str(lake), "--all"])
    assert out.exit_code == 0 and out.output.count("\n") == 3 and "failed" in out.output

    edited = example_persona()
    edited["persona_text"] = "I'm a baker in Dublin and I photograph bread at dawn."
    f = tmp_path / "p.json"
    f.write_text(json.dumps(edited))
    # the planted authors hash to the planted keys with the configured salt
    author = "planted_user_0000"
    assert user_key(author, resolve_salt(cfg.etl)) == keys[0]
    out = runner.invoke(app, ["persona", "edit", author, "--file", str(f), "--lake", str(lake)])
    assert out.exit_code == 0, out.output
    assert "stored version 4" in out.output
    row = store.user_versions(lake, keys[0]).to_pylist()[-1]
    assert row["source"] == "edited" and row["status"] == "ok" and row["version"] == 4
    assert row["evidence"]  # provenance of the edited-from version is kept
    latest = {r["user_key"]: r for r in latest_personas(lake).to_pylist()}
    assert latest[keys[0]]["persona_text"] == edited["persona_text"]

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"interests": []}))
    out = runner.invoke(app, ["persona", "edit", keys[1], "--file", str(bad), "--lake", str(lake)])
    assert out.exit_code == 2 and "not a valid persona" in out.output
    out = runner.invoke(app, ["persona", "show", "nobody_at_all", "--lake", str(lake)])
    assert out.exit_code == 1


def test_forget_removes_every_version(stored):
    lake, cfg, keys = stored
    assert store.forget_personas(lake, [keys[0]]) == 3
    assert store.user_versions(lake, keys[0]).num_rows == 0
    assert latest_personas(lake).num_rows == 4
