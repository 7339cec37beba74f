"""Typed configuration.

One root object (`ZippConfig`) made of sections, loaded from ``conf/base.yaml`` merged with
``conf/env/<env>.yaml`` and then ``key=value`` overrides from the command line
(``graph.epochs=3``). Every section forbids unknown keys, so a typo fails at start with the
offending key and why, instead of being silently ignored.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

_MONTH_RANGE = re.compile(r"^\d{4}-\d{2}(:\d{4}-\d{2})?$")


class ConfigError(ValueError):
    """Raised for any invalid configuration; the message names the key and the reason."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def parse_month_range(spec: str) -> list[str]:
    """'2015-11:2016-02' -> ['2015-11', '2015-12', '2016-01', '2016-02']."""
    if not _MONTH_RANGE.match(spec):
        raise ValueError(f"expected YYYY-MM or YYYY-MM:YYYY-MM, got {spec!r}")
    start, _, end = spec.partition(":")
    end = end or start
    y0, m0 = map(int, start.split("-"))
    y1, m1 = map(int, end.split("-"))
    for m in (m0, m1):
        if not 1 <= m <= 12:
            raise ValueError(f"month out of range in {spec!r}")
    if (y1, m1) < (y0, m0):
        raise ValueError(f"range end before start in {spec!r}")
    out = []
    y, m = y0, m0
    while (y, m) <= (y1, m1):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


class PathsConfig(Section):
    """Where things live. Relative paths resolve against the current directory."""

    work: str = "work"  # root for the embedded default run
    dump: str = "work/dump"  # input: monthly RC_/RS_ files
    lake: str = "work/lake"  # Delta tables (bronze/silver/gold/quarantine)
    runs: str = "work/runs"  # per-run folders: stats JSON, manifests, checkpoints, reports
    cache: str = "work/cache"  # content-addressed downloads, local tiny models


class RuntimeConfig(Section):
    spark_master: str = "local[2]"
    spark_driver_memory: str = "4g"
    spark_shuffle_partitions: int = Field(8, ge=1)
    spark_conf: dict[str, str] = Field(default_factory=dict)
    ray_address: str | None = None  # RAY_ADDRESS env wins; None starts a local cluster
    ray_num_cpus: int | None = Field(None, ge=1)
    ray_object_store_gb: float = Field(2.0, gt=0)


class GenerateConfig(Section):
    users: int = Field(500, ge=1)
    months: str = "2015-11:2016-02"
    seed: int = 0
    bad_rate: float = Field(0.0, ge=0.0, le=0.5)
    format: Literal["pushshift", "arctic"] = "pushshift"
    images: bool = True  # also write the image mirror folder the URLs resolve to

    @field_validator("months")
    @classmethod
    def _months(cls, v: str) -> str:
        parse_month_range(v)
        return v


class EtlConfig(Section):
    """Spark ETL (zipp.etl). Owned by the ETL issue; add fields here."""

    # Pseudonymous user keys: salt comes from the env var named here when it is set (clusters
    # keep it in a secret), else from `user_salt` (fine for the local demo). Never stored in tables.
    user_salt_env: str = "ZIPP_USER_SALT"
    user_salt: str = "zipp-local-dev-salt"


class ImagesConfig(Section):
    """Image fetching + CLIP embedding (zipp.images). Owned by the graph issue; add fields here."""


class GraphConfig(Section):
    """Graph build + GATv2 training (zipp.graph). Owned by the graph issue; add fields here."""


class PersonasConfig(Section):
    """Persona mining (zipp.personas). Owned by the persona issue; add fields here."""


class ZippConfig(Section):
    env: str = "local"
    paths: PathsConfig = Field(default_factory=PathsConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    etl: EtlConfig = Field(default_factory=EtlConfig)
    images: ImagesConfig = Field(default_factory=ImagesConfig)
    graph: GraphConfig = Field(default_factory=GraphConfig)
    personas: PersonasConfig = Field(default_factory=PersonasConfig)

    @model_validator(mode="after")
    def _check(self) -> "ZippConfig":
        return self


# ----------------------------------------------------------------------------- loading


def default_conf_dir() -> Path:
    """ZIPP_CONF_DIR, else ./conf (ray job working dirs), else the repo's conf/ next to the package."""
    env = os.environ.get("ZIPP_CONF_DIR")
    if env:
        return Path(env)
    if Path("conf/base.yaml").is_file():
        return Path("conf")
    return Path(__file__).resolve().parents[1] / "conf"


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def parse_overrides(overrides: list[str] | None) -> dict:
    """['graph.epochs=3', 'paths.lake=/x'] -> nested dict. Values are parsed as YAML scalars."""
    tree: dict[str, Any] = {}
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not re.fullmatch(r"[A-Za-z_][\w.]*", key):
            raise ConfigError(f"override {item!r}: expected key=value with a dotted key, e.g. graph.epochs=3")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = tree
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p!r} is set both as a value and as a section")
        node[parts[-1]] = value
    return tree


def _format_validation_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see `zipp config show`)"
        lines.append(f"  {key}: {msg} (got {e.get('input')!r})" if e["type"] != "extra_forbidden" else f"  {key}: {msg}")
    return "invalid config:\n" + "\n".join(lines)


def load_config(env: str | None = None, overrides: list[str] | None = None, conf_dir: str | Path | None = None) -> ZippConfig:
    """Load base.yaml + env/<env>.yaml + overrides into a validated ZippConfig."""
    conf = Path(conf_dir) if conf_dir else default_conf_dir()
    env = env or os.environ.get("ZIPP_ENV", "local")
    data: dict = {}
    base = conf / "base.yaml"
    if base.is_file():
        data = _read_yaml(base)
    env_file = conf / "env" / f"{env}.yaml"
    if env_file.is_file():
        data = _deep_merge(data, _read_yaml(env_file))
    elif env != "local":
        raise ConfigError(f"env: no config file {env_file} for env {env!r}")
    data = _deep_merge(data, parse_overrides(overrides))
    data["env"] = env
    try:
        return ZippConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_validation_error(e)) from None


def dump_config(cfg: ZippConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
