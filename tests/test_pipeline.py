"""The main job end to end, as `make run` runs it, on a small generated dump (tiny models)."""

import json

from typer.testing import CliRunner

from zipp.cli import app

STAGES = ["generate_dump", "etl_ingest", "embed_images", "train", "embed_users", "personas", "rewrite",
          "generate_images", "evaluate"]


def test_zipp_run_end_to_end_and_rerun_is_cheap(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["run", "--run", "e2e", "generate.users=120", "generate.months=2015-12:2016-01", "graph.epochs=2",
            "rewrite.sample_users=6", "rewrite.n_base_prompts=2", "personas.sample_users=40"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    stats = tmp_path / "work" / "runs" / "e2e" / "stats"
    for name in STAGES:
        assert (stats / f"{name}.json").is_file(), name
    ingest = json.loads((stats / "etl_ingest.json").read_text())
    truth = json.loads((tmp_path / "work" / "dump" / "truth" / "manifest.json").read_text())
    # every generated line is either a bronze row or a quarantine row
    assert ingest["rows_in"] == truth["total_lines"]
    assert ingest["rows_out"] + sum(ingest["drops"].values()) == ingest["rows_in"]
    report = json.loads((tmp_path / "work" / "runs" / "e2e" / "report.json").read_text())
    assert report["not_meaningful"] is True  # tiny random-weight models, labelled as such
    assert report["pairs"] == 6 * 2
    assert "Not meaningful" in (tmp_path / "work" / "runs" / "e2e" / "report.md").read_text()

    # A second run reuses the dump and skips finished work.
    r2 = CliRunner().invoke(app, args)
    assert r2.exit_code == 0, r2.output
    gen = json.loads((stats / "generate_dump.json").read_text())
    assert gen["extra"]["reused"] is True
    images = json.loads((stats / "generate_images.json").read_text())
    assert images["rows_out"] == 0 and images["drops"]["already_generated"] > 0

    # The single-stage commands on the same lake: a k-shot rewrite adds its own rows (another
    # config hash) with the users' past prompts as examples; evaluate prints the report.
    lake = tmp_path / "work" / "lake"
    r3 = CliRunner().invoke(app, ["rewrite", "--lake", str(lake), "--run", "e2e", "rewrite.shots=2",
                                  "rewrite.sample_users=6", "rewrite.n_base_prompts=2"])
    assert r3.exit_code == 0, r3.output
    from zipp import lake as lk
    from zipp.tables import GOLD_REWRITTEN_PROMPTS

    rows = lk.read_arrow(lake, GOLD_REWRITTEN_PROMPTS).to_pylist()
    kshot = [r for r in rows if r["shots"] > 0]
    assert kshot and all(len(r["examples"]) == r["shots"] <= 2 for r in kshot)
    assert len({r["config_hash"] for r in rows}) == 2
    r4 = CliRunner().invoke(app, ["evaluate", "--lake", str(lake), "--run", "e2e"])
    assert r4.exit_code == 0 and "Not meaningful" in r4.output
