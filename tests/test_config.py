from pathlib import Path

import pytest

from zipp.config import ConfigError, load_config, parse_month_range, parse_overrides

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_base_and_env_layers_merge():
    cfg = load_config(env="local", conf_dir=CONF)
    assert cfg.env == "local"
    assert cfg.runtime.ray_num_cpus == 2  # from env/local.yaml
    assert cfg.generate.months == "2015-11:2016-02"  # from base.yaml


def test_cluster_env_overrides_paths():
    cfg = load_config(env="cluster", conf_dir=CONF)
    assert cfg.runtime.ray_address == "auto"
    assert cfg.paths.lake.startswith("/mnt/")


def test_cli_overrides_are_typed():
    cfg = load_config(env="local", overrides=["generate.users=42", "generate.bad_rate=0.1", "runtime.ray_address=ray://h:10001"], conf_dir=CONF)
    assert cfg.generate.users == 42 and isinstance(cfg.generate.users, int)
    assert cfg.generate.bad_rate == pytest.approx(0.1)
    assert cfg.runtime.ray_address == "ray://h:10001"


def test_unknown_key_names_the_key():
    with pytest.raises(ConfigError) as e:
        load_config(env="local", overrides=["generate.userz=3"], conf_dir=CONF)
    assert "generate.userz" in str(e.value) and "unknown key" in str(e.value)


def test_wrong_type_names_key_and_value():
    with pytest.raises(ConfigError) as e:
        load_config(env="local", overrides=["generate.users=lots"], conf_dir=CONF)
    assert "generate.users" in str(e.value) and "lots" in str(e.value)


def test_out_of_range_value_rejected():
    with pytest.raises(ConfigError, match="generate.bad_rate"):
        load_config(env="local", overrides=["generate.bad_rate=2"], conf_dir=CONF)


def test_bad_month_range_rejected():
    with pytest.raises(ConfigError, match="generate.months"):
        load_config(env="local", overrides=["generate.months=2016-03:2016-01"], conf_dir=CONF)


def test_missing_env_file_is_an_error():
    with pytest.raises(ConfigError, match="no config file"):
        load_config(env="staging", conf_dir=CONF)


def test_malformed_override_and_yaml(tmp_path):
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["generate.users"])
    (tmp_path / "base.yaml").write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(conf_dir=tmp_path)


def test_parse_month_range_crosses_years():
    assert parse_month_range("2015-11:2016-02") == ["2015-11", "2015-12", "2016-01", "2016-02"]
    assert parse_month_range("2020-06") == ["2020-06"]
    with pytest.raises(ValueError):
        parse_month_range("2020-13")


def test_user_key_is_salted_and_stable(monkeypatch):
    from zipp.config import EtlConfig
    from zipp.identity import resolve_salt, user_key

    cfg = EtlConfig()
    monkeypatch.delenv(cfg.user_salt_env, raising=False)
    assert resolve_salt(cfg) == cfg.user_salt
    monkeypatch.setenv(cfg.user_salt_env, "s3cret")
    assert resolve_salt(cfg) == "s3cret"
    assert user_key("alice", "a") == user_key("alice", "a")
    assert user_key("alice", "a") != user_key("alice", "b") != user_key("Alice", "b")
    assert len(user_key("alice", "a")) == 16


def test_references_resolve_after_overrides():
    cfg = load_config(env="local", overrides=["paths.dump=/data/d", "images.mirror_dir=${paths.dump}/images"], conf_dir=CONF)
    assert cfg.images.mirror_dir == "/data/d/images"
    with pytest.raises(ConfigError, match="no such key"):
        load_config(env="local", overrides=["images.mirror_dir=${paths.nope}/x"], conf_dir=CONF)


def test_local_paths_become_absolute_so_every_worker_sees_the_same_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(env="local", overrides=["paths.lake=rel/lake", "paths.cache=s3://bucket/cache"], conf_dir=CONF)
    assert cfg.paths.lake == str(tmp_path / "rel" / "lake")
    assert cfg.paths.cache == "s3://bucket/cache"
    assert cfg.paths.images == str(tmp_path / "work" / "generated")  # a default not named in YAML files
    assert cfg.images.mirror_dir == str(tmp_path / "work" / "dump" / "images")  # references see the absolute path


def test_paths_work_moves_every_folder_not_named_on_its_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(env="local", overrides=["paths.work=/scratch/z", "paths.lake=s3://bucket/lake"], conf_dir=CONF)
    p = cfg.paths
    assert (p.dump, p.runs, p.cache, p.images) == ("/scratch/z/dump", "/scratch/z/runs", "/scratch/z/cache", "/scratch/z/generated")
    assert p.lake == "s3://bucket/lake" and cfg.images.mirror_dir == "/scratch/z/dump/images"
    assert load_config(env="local", overrides=["paths.work=w2"], conf_dir=CONF).paths.runs == str(tmp_path / "w2" / "runs")
