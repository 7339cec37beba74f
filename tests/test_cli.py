import subprocess
import sys

from typer.testing import CliRunner

from zipp.cli import app

runner = CliRunner()


def test_version_lists_libraries():
    r = runner.invoke(app, ["version"])
    assert r.exit_code == 0, r.output
    assert "zipp 0.1.0" in r.output and "torch" in r.output


def test_config_show_applies_overrides():
    r = runner.invoke(app, ["config", "show", "generate.users=77"])
    assert r.exit_code == 0, r.output
    assert "users: 77" in r.output


def _command_paths(cmd, prefix=()):
    yield prefix
    if getattr(cmd, "commands", None):  # a group (typer's groups are not click.Group subclasses)
        for name, sub in cmd.commands.items():
            yield from _command_paths(sub, prefix + (name,))


def test_every_subcommand_has_help():
    import typer

    paths = list(_command_paths(typer.main.get_command(app)))
    flat = {" ".join(p) for p in paths}
    assert {"version", "run", "config show", "generate-dump"} <= flat
    for path in paths:
        r = runner.invoke(app, [*path, "--help"])
        assert r.exit_code == 0, (path, r.output)
        assert "Usage" in r.output


def test_console_script_reports_config_errors_with_exit_2():
    # Through the real entry point: a typo exits 2 and names the key.
    r = subprocess.run([sys.executable, "-c", "from zipp.cli import main; main()", "config", "show", "generate.nope=1"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "generate.nope" in r.stderr


def test_commands_sharing_a_run_folder_each_keep_their_config(make_config):
    """`zipp train --run r1 graph.epochs=3` then `zipp embed-users --run r1`: the second command's
    config must not overwrite the record of the first (the one that trained the model)."""
    import yaml

    from zipp.cli_common import open_context

    with open_context(make_config("graph.epochs=3"), "r1", "train") as ctx:
        run_dir = ctx.run_dir
    with open_context(make_config("graph.epochs=7"), "r1", "embed-users") as ctx:
        assert ctx.run_dir == run_dir
    epochs = {p.stem: yaml.safe_load(p.read_text())["graph"]["epochs"] for p in (run_dir / "configs").glob("*.yaml")}
    assert epochs == {"train": 3, "embed-users": 7}
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["graph"]["epochs"] == 3
