from typer.testing import CliRunner

from zipp.cli import app

runner = CliRunner()


def test_train_and_embed_users_are_registered_with_help():
    r = runner.invoke(app, ["train", "--help"])
    assert r.exit_code == 0, r.output
    assert "GATv2" in r.output and "--lake" in r.output and "--run" in r.output
    r = runner.invoke(app, ["embed-users", "--help"])
    assert r.exit_code == 0, r.output
    assert "user_embeddings" in r.output and "--run" in r.output


def test_train_rejects_unknown_graph_keys_before_starting_anything(tmp_path):
    r = runner.invoke(app, ["train", "--lake", str(tmp_path), "--run", "x", "graph.epoch=3"])
    assert r.exit_code != 0
    assert "graph.epoch" in str(r.exception) or "graph.epoch" in r.output


def test_train_reports_a_missing_lake(tmp_path):
    r = runner.invoke(app, ["train", "--lake", str(tmp_path / "lake"), "--run", "x", f"paths.runs={tmp_path / 'runs'}"])
    assert r.exit_code != 0
    assert isinstance(r.exception, FileNotFoundError) and "run the ETL first" in str(r.exception)
