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
    images: str = "work/generated"  # generated images (PNG files named by content hash)

    @model_validator(mode="after")
    def _absolute(self) -> "PathsConfig":
        # Defaults not named in YAML are made absolute here too (see _absolute_paths).
        for name in type(self).model_fields:
            v = getattr(self, name)
            if "://" not in v and not Path(v).expanduser().is_absolute():
                object.__setattr__(self, name, str(Path(v).expanduser().absolute()))
        return self


class RunConfig(Section):
    """What `zipp run` does."""

    generate_dump: bool = True  # the embedded default: generate the synthetic dump into paths.dump first


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
    n_communities: int = Field(40, ge=1, le=50)  # interest communities (each with several subreddits)
    comments_per_user: float = Field(12.0, ge=0.0)  # mean comments per user per month (lognormal across users)
    submissions_per_user: float = Field(1.5, ge=0.0)  # mean submissions per user per month
    duplicate_rate: float = Field(0.01, ge=0.0, le=0.5)  # share of good lines re-emitted in the next month's file
    dead_image_rate: float = Field(0.03, ge=0.0, le=1.0)  # share of image URLs with no file in the mirror
    deleted_user_rate: float = Field(0.02, ge=0.0, le=1.0)  # users whose every line shows author "[deleted]"
    prompts_per_user: float = Field(3.0, ge=0.0)  # mean text-to-image prompts per user in prompts.parquet
    image_size: int = Field(64, ge=8, le=512)  # side of the mirrored PNGs
    zstd_level: int = Field(3, ge=1, le=19)  # compression level; the window is always 2 GiB (--long=31)

    @field_validator("months")
    @classmethod
    def _months(cls, v: str) -> str:
        parse_month_range(v)
        return v


DEFAULT_BOTS = (
    "AutoModerator", "TweetPoster", "RemindMeBot", "WikiTextBot", "sneakpeekbot", "imguralbumbot", "converter-bot",
    "TotesMessenger", "autotldr", "Mentioned_Videos", "GifReversingBot", "CommonMisspellingBot", "LinkFixerBot",
)


class EtlConfig(Section):
    """Spark ETL (zipp.etl): dump files -> bronze/quarantine -> silver -> gold, quality gates."""

    # Pseudonymous user keys: salt comes from the env var named here when it is set (clusters
    # keep it in a secret), else from `user_salt` (fine for the local demo). Never stored in tables.
    user_salt_env: str = "ZIPP_USER_SALT"
    user_salt: str = "zipp-local-dev-salt"

    # --- reading
    months: str | None = None  # restrict to YYYY-MM or YYYY-MM:YYYY-MM; None = every month found
    chunk_bytes: int = Field(64 * 2**20, ge=1024)  # decompressed bytes per Spark parse task (line-aligned)
    # decompressed chunks waiting for their parse task, at most (at least 4 chunks; 0 = no limit): on
    # few cores the split decompresses faster than the parse tasks read, and a month is 100+ GB
    max_staged_bytes: int = Field(8 * 2**30, ge=0)
    max_line_bytes: int = Field(2**20, ge=64)  # longer lines go to quarantine as `oversize`
    raw_cap_bytes: int = Field(4096, ge=0)  # quarantine keeps at most this many bytes of a bad line
    parquet_compression: Literal["snappy", "zstd", "lz4", "none"] = "snappy"
    staging: str | None = None  # scratch folder visible to all executors; None = <lake>/_staging

    # --- silver
    bot_authors: list[str] = Field(default_factory=lambda: list(DEFAULT_BOTS))  # exact names, any case
    bot_regex: str = r"(?i)(?<!ro)bot$"  # the `*bot` heuristic, sparing "...robot" (Java + Python syntax); "" = off
    not_bots: list[str] = Field(default_factory=list)  # names the regex would flag but that are people

    # --- gold
    min_interactions: int = Field(1, ge=1)  # edge kept when n_comments + n_submissions >= this
    snippets_k: int = Field(5, ge=1)
    snippet_max_chars: int = Field(500, ge=16)
    gold_bucket_rows: int = Field(500_000, ge=1000)  # monthly rows per gold key range (bounds a task's memory)

    # --- quality gates (great-expectations)
    gates: bool = True
    quarantine_max_rate: float = Field(0.05, ge=0.0, le=1.0)  # per source file
    month_slack_days: int = Field(3, ge=0)  # created_utc may fall this far outside the file's month
    # share of a file's rows allowed outside its month +- slack (re-crawls of last month's rows are normal)
    out_of_month_max_rate: float = Field(0.05, ge=0.0, le=1.0)

    @field_validator("months")
    @classmethod
    def _etl_months(cls, v: str | None) -> str | None:
        if v:
            parse_month_range(v)
        return v or None

    @field_validator("bot_regex")
    @classmethod
    def _regex(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(f"not a valid regular expression: {e}") from None
        return v


class ImagesConfig(Section):
    """Image fetching + CLIP embedding (zipp.images). Owned by the graph issue; add fields here."""

    # open_clip model name + pretrained tag, loaded with open_clip.create_model_and_transforms.
    # pretrained=null builds random weights (seeded by `seed`): outputs are labelled
    # "<model>/random-init" in model_id and are not meaningful.
    model: str = "zipp-tiny-clip"
    pretrained: str | None = None
    seed: int = 0
    batch_size: int = Field(32, ge=1)  # images per model forward
    actors: int = Field(1, ge=1)  # max embedding actors in the Ray Data pool
    actor_cpus: float = Field(1.0, gt=0)  # CPUs per actor (= torch threads when on CPU)
    num_gpus: float = Field(0.0, ge=0.0)  # GPUs per actor; used only when Ray reports GPUs
    memory_gb: float = Field(2.0, ge=0.0)  # declared stage memory
    commit_every: int = Field(20000, ge=1)  # URLs fetched + embedded + committed per shard (resume granularity)
    # fetching
    workers: int = Field(16, ge=1)  # concurrent downloads (threads)
    timeout_s: float = Field(10.0, gt=0)  # per request (connect + whole body)
    max_bytes: int = Field(20 * 2**20, ge=1)  # larger bodies -> status too_large
    retries: int = Field(3, ge=0)  # extra attempts on 5xx / 429 / timeouts / connection errors
    backoff_s: float = Field(0.5, ge=0.0)  # base of exponential backoff (x2 per attempt, +-50% jitter)
    per_host_rps: float | None = Field(20.0, gt=0)  # token bucket per original host; null = unlimited
    user_agent: str = "zipp-image-fetcher/0.1 (research; ZIPP)"
    # Offline demo: https://HOST/PATH?Q resolves to <mirror_dir>/HOST/PATH (served on loopback for
    # the stage's duration); mirror_base rewrites to <mirror_base>/HOST/PATH without a server.
    mirror_base: str | None = None
    mirror_dir: str | None = None

    @model_validator(mode="after")
    def _one_mirror(self) -> "ImagesConfig":
        if self.mirror_base and self.mirror_dir:
            raise ValueError("set at most one of images.mirror_base and images.mirror_dir (set the other to null)")
        return self


class GraphConfig(Section):
    """Graph build + edge-aware GATv2 training on Ray Train + embedding/attention export (zipp.graph)."""

    # --- graph build and split (per user; held-out edges never enter message passing)
    val_frac: float = Field(0.1, ge=0.0, lt=0.5)
    test_frac: float = Field(0.1, ge=0.0, lt=0.5)
    min_degree_holdout: int = Field(3, ge=2)  # users with fewer edges keep all of them for training
    split_seed: int = 0
    image_model_id: str | None = None  # which CLIP model's rows of gold/image_embeddings; None = the most frequent
    # --- model
    hidden_dim: int = Field(64, ge=4)
    heads: int = Field(4, ge=1)
    num_layers: int = Field(2, ge=1, le=4)
    subreddit_id_dim: int = Field(16, ge=0)  # learnable subreddit id embedding (0 = features only)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    attention_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    decoder: Literal["dot", "mlp"] = "dot"
    # FISM-style user history path: the weighted mean of the user's subreddits' context embeddings
    # (+ a subreddit target embedding) added after the GAT layers; inductive (no per-user parameter). 0 = off.
    # Off by default: on a 2000-user generated dump it did not raise test posting accuracy (within noise)
    # and lowered the top-attention/planted-interest match
    history_dim: int = Field(0, ge=0)
    last_layer_heads: int | None = Field(None, ge=1)  # heads of the last GAT layer (null: graph.heads)
    # attention logits + gamma * log1p(edge activity), gamma learned per head from 1: attention starts as
    # the user's activity share (see zipp.graph.model and bench/graph_quality.py)
    attention_activity_prior: bool = True
    subreddit_bias: bool = False  # learnable per-subreddit bias in the link decoder (popularity prior)
    image_align_weight: float = Field(0.1, ge=0.0)  # lambda of the ImageAlign InfoNCE term; 0 = GAT-only ablation
    image_align_temperature: float = Field(0.07, gt=0.0)  # initial value of the learnable temperature
    # --- sampling
    sampler: Literal["auto", "torch", "pyg"] = "auto"  # auto: PyG's sampler when pyg-lib/torch-sparse import, else pure torch
    fanout: list[int] = Field(default_factory=lambda: [10, 5])
    batch_size: int = Field(512, ge=2)
    neg_ratio: float = Field(1.0, gt=0.0)
    # training negatives drawn in proportion to (training degree + 1) ** this; 0 = uniform
    neg_popularity_exponent: float = Field(0.0, ge=0.0, le=1.0)
    # training positives: every edge alike (uniform) or drawn in proportion to log1p(activity) / activity
    # (log_activity: +0.8-1.7 points of test posting accuracy on a 10k-user generated dump)
    positive_weighting: Literal["uniform", "log_activity", "activity"] = "log_activity"
    exclude_seed_edges: bool = True  # a batch's supervision edges are removed from its own message passing
    loader_workers: int = Field(0, ge=0)
    # --- training (Ray Train TorchTrainer)
    epochs: int = Field(20, ge=1)
    steps_per_epoch: int | None = Field(None, ge=1)  # cap per rank (benchmarks, smoke runs); None = the whole slice
    lr: float = Field(0.003, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    patience: int = Field(3, ge=1)  # epochs without improvement of `early_stop_metric` before stopping
    early_stop_metric: Literal["val_auc", "val_acc", "val_hits"] = "val_auc"
    seed: int = 0
    num_workers: int = Field(1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: int = Field(1, ge=1)
    max_failures: int = Field(2, ge=0)
    checkpoints_to_keep: int = Field(2, ge=1)
    # --- evaluation and inference
    hits_k: int = Field(10, ge=1)
    eval_max_users: int = Field(5000, ge=1)  # users ranked for Hits@k per evaluation
    infer_batch_nodes: int = Field(4096, ge=1)  # destination nodes per layer-wise inference chunk
    infer_batch_edges: int = Field(1_000_000, ge=1)

    @model_validator(mode="after")
    def _check(self) -> "GraphConfig":
        if len(self.fanout) != self.num_layers or any(k < 1 for k in self.fanout):
            raise ValueError(f"fanout needs one positive entry per layer ({self.num_layers}), got {self.fanout}")
        if self.hidden_dim % self.heads:
            raise ValueError(f"hidden_dim ({self.hidden_dim}) must be divisible by heads ({self.heads})")
        return self


class PersonasOpenAIConfig(Section):
    """`personas.backend=openai`: any OpenAI-compatible chat-completions endpoint."""

    base_url_env: str = "ZIPP_LLM_BASE_URL"  # env var holding e.g. http://vllm-serve:8000/v1
    api_key_env: str = "ZIPP_LLM_API_KEY"  # env var holding the key (may be unset for local servers)
    base_url: str | None = None  # used when the env var is unset
    concurrency: int = Field(4, ge=1)  # in-flight requests per worker
    timeout_s: float = Field(120.0, gt=0)
    http_retries: int = Field(5, ge=0)  # on 429 / 5xx / connection errors
    backoff_s: float = Field(1.0, ge=0)  # first backoff; doubles, capped at backoff_max_s; Retry-After wins
    backoff_max_s: float = Field(30.0, ge=0)
    json_mode: bool = False  # send response_format={"type": "json_object"}


class PersonasVllmConfig(Section):
    """`personas.backend=vllm`: vllm.LLM in Ray Data actors (GPU images only)."""

    tensor_parallel_size: int = Field(1, ge=1)  # GPUs per replica; replicas = personas.workers
    dtype: str = "auto"
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    max_model_len: int | None = Field(None, ge=256)  # None: token_budget + (max_retries + 1) * max_new_tokens
    max_num_seqs: int | None = Field(None, ge=1)
    load_format: str = "auto"  # "dummy" = random weights from config.json (throughput benchmarks only)
    enforce_eager: bool = False
    ignore_eos: bool = False  # benchmarks: always generate max_new_tokens


class PersonasConfig(Section):
    """Persona mining (zipp.personas): evidence under a token budget -> LLM persona -> gold/personas."""

    backend: Literal["extractive", "transformers", "openai", "vllm"] = "extractive"
    # hub id, a local folder, or local:tiny-llama (random weights, built under paths.cache; NOT meaningful)
    model: str = "local:tiny-llama"
    tokenizer: str | None = None  # budget-counting tokenizer; None = the model's
    token_budget: int = Field(4096, ge=256)  # max tokens of a whole rendered prompt, by `tokenizer`
    ranking: Literal["attention", "tfidf"] = "attention"
    attention_layer: str | None = None  # None = the first layer in gold/user_subreddit_attention
    attention_run: str | None = None  # None = the only run there (several runs: set it)
    max_subreddits: int = Field(20, ge=1)
    snippets_per_subreddit: int = Field(8, ge=0)
    min_snippet_tokens: int = Field(16, ge=1)  # a truncated snippet keeps at least this many tokens
    max_new_tokens: int = Field(512, ge=8)
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int = 0
    max_retries: int = Field(2, ge=0)  # re-asks with the validation error; then status=failed
    retry_echo_tokens: int = Field(256, ge=0)  # how much of the bad reply is shown back on a retry
    multimodal: bool = False  # add the user's top images (the model must take images)
    # budget cost of one image when the model has no image processor to count with; a model with one
    # (e.g. Qwen2-VL) is counted per image by its processor from the image's pixel size instead
    image_tokens: int = Field(256, ge=1)
    max_images: int = Field(4, ge=0)
    image_budget_share: float = Field(0.25, ge=0, le=1)
    sample_users: int | None = Field(None, ge=1)  # None = every user
    sample_seed: int = 0
    redo_failed: bool = False  # resume also retries users whose row for this config hash failed
    batch_size: int = Field(16, ge=1)  # users per Ray Data batch
    workers: int = Field(1, ge=1)  # actors (vllm: replicas)
    cpus_per_worker: float = Field(1.0, gt=0)
    gpus_per_worker: float = Field(0.0, ge=0)
    write_every: int = Field(256, ge=1)  # rows per Delta append (the resume granularity)
    device: str = "auto"  # transformers backend: auto | cpu | cuda
    dtype: str = "auto"  # transformers backend torch dtype
    openai: PersonasOpenAIConfig = Field(default_factory=PersonasOpenAIConfig)
    vllm: PersonasVllmConfig = Field(default_factory=PersonasVllmConfig)


class RewriteConfig(Section):
    """Persona-conditioned prompt rewriting (zipp.rewrite)."""

    # template: deterministic, no LLM (the offline default and an evaluation baseline);
    # llm: the persona LLM backend (personas.backend/model) rewrites in the user's voice.
    backend: Literal["template", "llm"] = "template"
    shots: int = Field(0, ge=0, le=16)  # 0 = zero-shot; k>0 = k of the user's past prompts as examples
    base_prompts: str | None = None  # a .txt (one per line) or .json list; null = the packaged set
    n_base_prompts: int = Field(4, ge=1)  # per user
    user_prompts: str | None = None  # prompt history parquet (author, prompt, created); null = <paths.dump>/prompts.parquet
    sample_users: int | None = Field(32, ge=1)  # null = every user with a persona
    max_prompt_chars: int = Field(400, ge=20)
    seed: int = 0


class ImageGenConfig(Section):
    """Frozen diffusion model (zipp.imagegen). model: a hub id or a local pipeline folder;
    null builds a tiny random-weight pipeline under paths.cache (outputs not meaningful)."""

    model: str | None = None
    steps: int = Field(2, ge=1)
    guidance_scale: float = Field(5.0, ge=0.0)
    height: int = Field(64, ge=8)
    width: int = Field(64, ge=8)
    batch_size: int = Field(4, ge=1)
    seed: int = 0
    actors: int = Field(1, ge=1)
    actor_cpus: float = Field(1.0, gt=0)
    num_gpus: float = Field(0.0, ge=0.0)  # per actor, used only when Ray reports GPUs
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"


class EvaluationConfig(Section):
    """Report metrics (zipp.evaluation)."""

    cmmd_sigma: float = Field(10.0, gt=0)  # RBF bandwidth of CMMD, as in the CMMD paper
    alpha: float = Field(0.05, gt=0, lt=1)
    wpp_dir: str | None = None  # UN WPP 2024 CSVs for IPF raking; null = ../shared/data/wpp when present


class ZippConfig(Section):
    env: str = "local"
    paths: PathsConfig = Field(default_factory=PathsConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    etl: EtlConfig = Field(default_factory=EtlConfig)
    images: ImagesConfig = Field(default_factory=ImagesConfig)
    graph: GraphConfig = Field(default_factory=GraphConfig)
    personas: PersonasConfig = Field(default_factory=PersonasConfig)
    rewrite: RewriteConfig = Field(default_factory=RewriteConfig)
    imagegen: ImageGenConfig = Field(default_factory=ImageGenConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)

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


_REF = re.compile(r"\$\{([A-Za-z_][\w.]*)\}")


def _lookup(data: dict, dotted: str):
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"reference ${{{dotted}}}: no such key")
        node = node[part]
    return node


def _interpolate(data: dict, root: dict | None = None, where: str = "") -> dict:
    """Resolve ``${section.key}`` references in string values (e.g. ``${paths.dump}/images``)."""
    root = root if root is not None else data
    out = {}
    for k, v in data.items():
        key = f"{where}{k}"
        if isinstance(v, dict):
            out[k] = _interpolate(v, root, key + ".")
        elif isinstance(v, str) and "${" in v:
            for _ in range(10):  # references to references, without cycles
                new = _REF.sub(lambda m: str(_lookup(root, m.group(1))), v)
                if new == v:
                    break
                v = new
            else:
                raise ConfigError(f"{key}: reference cycle in {data[k]!r}")
            out[k] = v
        else:
            out[k] = v
    return out


def _absolute_paths(data: dict) -> dict:
    """Make the local paths of the ``paths`` section absolute against the current directory, once,
    at load time: Ray workers and Spark executors run in other directories, so a relative
    ``work/lake`` would name different folders in different processes. URIs (``s3://``) stay."""
    paths = data.get("paths")
    if not isinstance(paths, dict):
        return data
    fixed = {k: (str(Path(v).expanduser().absolute()) if isinstance(v, str) and "://" not in v and "${" not in v else v)
             for k, v in paths.items()}
    return {**data, "paths": fixed}


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
    data = _interpolate(_absolute_paths(data))
    try:
        return ZippConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_validation_error(e)) from None


def dump_config(cfg: ZippConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
